"""A TCP proxy between one process and a server it depends on (RabbitMQ,
PostgreSQL), to break that one link for real.

The server keeps running for everyone else (other tests use it too); only
the connections through this proxy are affected:

- ``hold()``: what the client sends (its acks, its heartbeats) stops reaching
  the broker, while the broker's side keeps flowing, so the client goes on
  receiving and handling messages whose acks never arrive;
- ``cut()``: every connection is dropped at once, anything held is thrown
  away, and new connections are refused until ``reopen()``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Self
from urllib.parse import urlsplit, urlunsplit

from tests.events.broker import AMQP_URL
from tests.grpc_server import ServerThread

CHUNK = 65536


class _Link:
    """One client connection and its connection to the broker."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream
        self.held: list[bytes] = []
        self.tasks: list[asyncio.Task] = []

    def abort(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.held.clear()
        for writer in (self.client, self.upstream):
            writer.transport.abort()


class TcpProxy:
    """Listens on 127.0.0.1 (a port of its own) and forwards to ``upstream``."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._thread = ServerThread()
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._holding = False
        self.port = 0
        self._thread.run(self._listen())

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.transport.abort()
            return
        link = _Link(writer, up_writer)
        self._links.add(link)
        link.tasks = [
            asyncio.create_task(self._pump(link, reader, up_writer, upstream=True)),
            asyncio.create_task(self._pump(link, up_reader, writer, upstream=False)),
        ]

    async def _pump(
        self,
        link: _Link,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        upstream: bool,
    ) -> None:
        try:
            while data := await reader.read(CHUNK):
                if upstream and (self._holding or link.held):
                    link.held.append(data)
                    continue
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        # One side went away: so does the other, and nothing held is delivered.
        self._links.discard(link)
        link.held.clear()
        for end in (link.client, link.upstream):
            end.transport.abort()

    async def _hold(self) -> None:
        self._holding = True

    async def _release(self) -> None:
        self._holding = False
        for link in list(self._links):
            held, link.held = link.held, []
            for data in held:
                link.upstream.write(data)

    async def _cut(self) -> None:
        self._holding = False
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for link in list(self._links):
            link.abort()
        self._links.clear()

    def hold(self) -> None:
        """From now on, keep what clients send instead of passing it to the broker."""
        self._thread.run(self._hold())

    def release(self) -> None:
        """Pass on what was held, and everything after it."""
        self._thread.run(self._release())

    def cut(self) -> None:
        """Drop every connection (and what was held) and refuse new ones."""
        self._thread.run(self._cut())

    def reopen(self) -> None:
        """Accept connections again, on the same port."""
        self._thread.run(self._listen())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.cut()
        self._thread.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BrokerProxy(TcpProxy):
    """A TcpProxy to the broker in AMQP_URL."""

    def __init__(self, upstream_url: str = AMQP_URL) -> None:
        self._url_parts = urlsplit(upstream_url)
        super().__init__((self._url_parts.hostname or "127.0.0.1", self._url_parts.port or 5672))

    @property
    def url(self) -> str:
        """AMQP_URL for the process to cut off: the broker, through this proxy."""
        parts = self._url_parts
        netloc = f"{parts.username or 'guest'}:{parts.password or 'guest'}@127.0.0.1:{self.port}"
        return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
