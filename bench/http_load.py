"""The HTTP load generator, in its own process: keep-alive HTTP/1.1 over raw
asyncio sockets, one request in flight per connection (like wrk).

Driven by bench.procs.Driver: each stdin line {"port", "paths", "cookies",
"connections", "seconds"} runs one timed round; connection i sends
cookie i (mod their number) and walks the paths from its own offset.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.procs import serve_commands


async def _response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def round_of(
    *, port: int, paths: list[str], cookies: list[str], connections: int, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()
    deadline = started + seconds

    async def connection(n: int) -> None:
        nonlocal errors
        cookie = f"Cookie: sessionid={cookies[n % len(cookies)]}\r\n" if cookies else ""
        requests = [
            (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{cookie}\r\n").encode() for path in paths
        ]
        i = n
        while time.perf_counter() < deadline:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                while time.perf_counter() < deadline:
                    t0 = time.perf_counter()
                    writer.write(requests[i % len(requests)])
                    i += 1
                    status = await _response(reader)
                    if status != 200:
                        errors += 1
                        continue
                    latencies.append(time.perf_counter() - t0)
            except (asyncio.IncompleteReadError, ConnectionError):
                errors += 1  # the server closed the connection: open another
            finally:
                writer.close()

    await asyncio.gather(*(connection(n) for n in range(connections)))
    return {
        "count": len(latencies),
        "seconds": time.perf_counter() - started,
        "latencies": [round(x, 7) for x in latencies],
        "errors": errors,
    }


if __name__ == "__main__":
    loop = asyncio.new_event_loop()
    serve_commands(lambda command: loop.run_until_complete(round_of(**command)))
