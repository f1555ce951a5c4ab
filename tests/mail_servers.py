"""Mail servers on a free port for tests: just enough SMTP to talk to Django's backend."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterable


class GreetingSmtpServer:
    """Just enough of a mail server for a connection to open: a greeting,
    then 250 to EHLO and 221 to QUIT."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.sock.accept()
                with conn, conn.makefile("rwb") as stream:
                    stream.write(b"220 test ESMTP\r\n")
                    stream.flush()
                    for line in stream:
                        reply = (
                            b"221 bye\r\n" if line.upper().startswith(b"QUIT") else b"250 ok\r\n"
                        )
                        stream.write(reply)
                        stream.flush()
                        if reply.startswith(b"221"):
                            break

    def close(self) -> None:
        # Wakes the accept() blocked in the thread; a bare close() would not.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class MailServer(GreetingSmtpServer):
    """A mail server that takes messages but refuses the addresses given (550
    to their RCPT), offering SMTPUTF8 if asked. It keeps every command line
    (``commands``), each message's recipients (``received``) and bytes
    (``messages``)."""

    def __init__(self, refused: Iterable[str] = (), *, smtputf8: bool = False) -> None:
        self.refused = set(refused)
        self.extensions = [b"SMTPUTF8", b"8BITMIME"] if smtputf8 else []
        self.commands: list[bytes] = []
        self.received: list[list[str]] = []
        self.messages: list[bytes] = []
        super().__init__()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.sock.accept()
                with conn, conn.makefile("rwb") as stream:
                    self._session(stream)

    def _session(self, stream) -> None:
        stream.write(b"220 test ESMTP\r\n")
        stream.flush()
        recipients: list[str] = []
        for line in stream:
            self.commands.append(line.rstrip())
            command = line.decode().strip()
            verb = command.split(" ", 1)[0].split(":", 1)[0].upper()
            if verb == "EHLO":
                lines = [b"test", *self.extensions]
                reply = b"".join(b"250-" + e + b"\r\n" for e in lines[:-1])
                reply += b"250 " + lines[-1] + b"\r\n"
            elif verb == "RCPT":
                address = command.split("<", 1)[1].split(">", 1)[0]
                if address in self.refused:
                    reply = b"550 no such mailbox\r\n"
                else:
                    recipients.append(address)
                    reply = b"250 ok\r\n"
            elif verb == "DATA":
                stream.write(b"354 go on\r\n")
                stream.flush()
                self.messages.append(b"".join(iter(stream.readline, b".\r\n")))
                self.received.append(recipients)
                reply = b"250 queued\r\n"
            elif verb == "QUIT":
                stream.write(b"221 bye\r\n")
                stream.flush()
                return
            else:
                if verb in ("MAIL", "RSET"):
                    recipients = []
                reply = b"250 ok\r\n"
            stream.write(reply)
            stream.flush()
