"""The HTTP/1.1 protocol the server speaks: uvicorn's httptools protocol, with the writes
of one response leaving in one system call.

This subclasses uvicorn internals (pyproject.toml bounds uvicorn's version for it). To
measure what it saves, or to serve without it should a uvicorn release break it, set
``STRONGROOM_HTTP=httptools``: the server then runs uvicorn's own protocol unchanged.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


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

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's ``httptools`` protocol over a :class:`_Coalescing` transport."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Coalescing(transport, self.loop))  # type: ignore[arg-type]


HTTP_ENV = "STRONGROOM_HTTP"


def http_protocol() -> type[HttpToolsProtocol] | str:
    """What uvicorn serves HTTP/1.1 with: :class:`HttpProtocol`, or uvicorn's own
    ``httptools`` protocol when ``STRONGROOM_HTTP=httptools`` (a hidden switch, for the
    benchmark and as a way out)."""
    if os.environ.get(HTTP_ENV, "").strip().lower() == "httptools":
        return "httptools"
    return HttpProtocol
