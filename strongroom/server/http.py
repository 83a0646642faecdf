"""The HTTP/1.1 protocol the server speaks: uvicorn's httptools protocol, with the writes
of one response leaving in one system call, bounded in connections and in the time a
client may take to send a request, and answering malformed HTTP in AWS's error shape.

This subclasses uvicorn internals (pyproject.toml bounds uvicorn's version for it). To
measure what it saves, or to serve without it should a uvicorn release break it, set
``STRONGROOM_HTTP=httptools``: the server then runs uvicorn's own protocol unchanged,
without the header and body timeouts and the connection limit (docs/limits.md); the body
limits, enforced by the application, still hold.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Connection events go where uvicorn logs its own (configured by uvicorn's log config).
log = logging.getLogger("uvicorn.error")


class _Coalescing:
    """A transport whose writes made in one turn of the event loop go out together.

    uvicorn writes a response's status line and headers, then its body: two ``send``
    system calls (and, on loopback, two trips through the receiver's TCP stack) for a
    response that fits one. Everything else is the real transport's."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))


def _forwarded(name: str) -> property:
    """The real transport's attribute ``name``."""
    return property(lambda coalescing: getattr(coalescing._transport, name))


# Everything else is the real transport's: every attribute of a Transport is a property
# that forwards it. Not a __getattr__: a class with one has every attribute read go through
# it (about 700 machine instructions more each, unspecialized), a dozen a request here.
for _name in dir(asyncio.Transport):
    if not _name.startswith("__") and not hasattr(_Coalescing, _name):
        setattr(_Coalescing, _name, _forwarded(_name))


@dataclass(frozen=True)
class ConnectionLimits:
    """What one worker allows its clients (settings ``header_timeout``, ``body_timeout``,
    ``max_connections``; docs/limits.md)."""

    header_timeout: float = 10.0  # from a connection's (or request's) first byte to its headers
    body_timeout: float = 30.0  # from the headers to the body's last byte
    max_connections: int = 1000  # open at once; more are closed as they arrive


def _aws_error(status: int, code: str, message: str) -> bytes:
    """A whole HTTP response in the AWS JSON error shape, closing the connection."""
    body = orjson.dumps({"__type": code, "message": message})
    reason = {400: b"Bad Request", 408: b"Request Timeout"}[status]
    return b"".join(
        (
            b"HTTP/1.1 %d %s\r\n" % (status, reason),
            b"content-type: application/x-amz-json-1.1\r\n",
            b"x-amzn-errortype: " + code.encode() + b"\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        )
    )


_NOTHING_YET = "a request"
_HEADERS = "its request headers"
_BODY = "its request body"
_NEVER = math.inf


def configure(limits: ConnectionLimits) -> None:
    """Set this worker's limits (from its settings) before it accepts connections."""
    HttpProtocol.limits = limits


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's ``httptools`` protocol over a :class:`_Coalescing` transport.

    A request must arrive in time: its headers within ``header_timeout`` of its first byte
    (or of the connection, for a client that sends nothing), its body within
    ``body_timeout`` of the headers. Rather than a timer per request (armed and cancelled
    on the hot path), each connection keeps a deadline, a float, and one sweep per worker
    closes the connections past theirs."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    _deadline = math.inf
    _waiting_for = ""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Coalescing(transport, self.loop))  # type: ignore[arg-type]
        if len(self.connections) > self.limits.max_connections:
            log.warning(
                "refused a connection from %s: %d connections are open, the limit",
                self._peer(),
                self.limits.max_connections,
            )
            self.transport.abort()
            return
        self._expect(_NOTHING_YET, self.limits.header_timeout)
        _Sweeper.ensure(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline != math.inf and self._waiting_for not in ("", _NOTHING_YET):
            log.info("client %s left before sending %s", self._peer(), self._waiting_for)
            self._deadline = math.inf
        super().connection_lost(exc)

    # The three below run on every request: _expect written out in each (no extra frame).
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._waiting_for = _HEADERS
        self._deadline = self.loop.time() + self.limits.header_timeout

    def on_headers_complete(self) -> None:
        self._waiting_for = _BODY
        self._deadline = self.loop.time() + self.limits.body_timeout
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        # Until the next request begins, uvicorn's keep-alive timeout is the one that runs.
        self._deadline = _NEVER
        super().on_message_complete()

    def _expect(self, what: str, timeout: float) -> None:
        self._waiting_for = what
        self._deadline = self.loop.time() + timeout

    def timed_out(self) -> None:
        """Past its deadline: answer 408 (unless a response started) and close."""
        waited = self._waiting_for
        self._deadline = math.inf
        self._waiting_for = ""
        log.info("closed the connection of %s: it did not send %s in time", self._peer(), waited)
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(
                _aws_error(
                    408, "RequestTimeoutException", f"The client did not send {waited} in time."
                )
            )
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers malformed HTTP in plain text; SDKs parse AWS's JSON error shape.
        self.transport.write(
            _aws_error(400, "BadRequestException", "The request is not valid HTTP/1.1.")
        )
        self.transport.close()

    def _peer(self) -> str:
        return self.client[0] if self.client else "unknown"


class _Sweeper:
    """Closes, every so often, each connection of this worker that is past its deadline."""

    _ATTRIBUTE = "_strongroom_sweeper"

    def __init__(self, protocol: HttpProtocol) -> None:
        self._loop = protocol.loop
        self._connections = protocol.connections
        limits = protocol.limits
        self._interval = max(0.05, min(1.0, limits.header_timeout / 4, limits.body_timeout / 4))
        self._loop.call_later(self._interval, self._sweep)

    @classmethod
    def ensure(cls, protocol: HttpProtocol) -> None:
        state = protocol.server_state
        if getattr(state, cls._ATTRIBUTE, None) is None:
            setattr(state, cls._ATTRIBUTE, cls(protocol))

    def _sweep(self) -> None:
        now = self._loop.time()
        late = [c for c in self._connections if isinstance(c, HttpProtocol) and c._deadline < now]
        for connection in late:
            connection.timed_out()
        self._loop.call_later(self._interval, self._sweep)


HTTP_ENV = "STRONGROOM_HTTP"


def http_protocol() -> type[HttpToolsProtocol] | str:
    """What uvicorn serves HTTP/1.1 with: :class:`HttpProtocol`, or uvicorn's own
    ``httptools`` protocol when ``STRONGROOM_HTTP=httptools`` (a hidden switch, for the
    benchmark and as a way out)."""
    if os.environ.get(HTTP_ENV, "").strip().lower() == "httptools":
        return "httptools"
    return HttpProtocol
