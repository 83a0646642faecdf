"""strongroom/server/http.py: the writes of one turn of the event loop leave in one call
of the real transport, in order; closing sends what is pending first; aborting drops it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from strongroom.server.http import _Coalescing


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False
        self.buffered = 7

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000)}.get(name, default)

    reading = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


def run(steps: Any) -> None:
    asyncio.run(steps())


def test_the_writes_of_one_turn_leave_together_and_in_order() -> None:
    real = FakeTransport()

    async def steps() -> None:
        transport = _Coalescing(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        transport.write(bytearray(b"{}"))
        assert real.writes == []  # not yet: the turn is not over
        assert transport.get_write_buffer_size() == 7 + 40
        await asyncio.sleep(0)
        assert real.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
        transport.write(b"next")
        await asyncio.sleep(0)
        assert real.writes[1:] == [b"next"]

    run(steps)


def test_close_sends_what_is_pending_first() -> None:
    real = FakeTransport()

    async def steps() -> None:
        transport = _Coalescing(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        transport.close()
        assert real.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\n"] and real.closed
        await asyncio.sleep(0)  # the scheduled flush finds nothing left
        assert len(real.writes) == 1

    run(steps)


def test_abort_drops_what_is_pending_and_a_closed_transport_gets_nothing() -> None:
    real = FakeTransport()

    async def steps() -> None:
        transport = _Coalescing(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"lost")
        transport.abort()
        await asyncio.sleep(0)
        assert real.writes == [] and real.aborted
        other = FakeTransport()
        late = _Coalescing(other, asyncio.get_running_loop())  # type: ignore[arg-type]
        late.write(b"after the peer left")
        other.closed = True  # the connection was lost before the turn ended
        await asyncio.sleep(0)
        assert other.writes == []

    run(steps)


def test_everything_else_is_the_real_transports() -> None:
    real = FakeTransport()

    async def steps() -> None:
        transport = _Coalescing(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        assert transport.get_extra_info("peername") == ("127.0.0.1", 5000)
        assert transport.is_closing() is False
        transport.pause_reading()  # uvicorn's flow control
        assert real.reading is False
        transport.resume_reading()
        assert real.reading is True
        transport.writelines([b"a", b"b"])
        await asyncio.sleep(0)
        assert real.writes == [b"ab"]

    run(steps)


def test_the_hidden_switch_serves_uvicorns_own_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    from strongroom.server.http import HTTP_ENV, HttpProtocol, http_protocol

    monkeypatch.delenv(HTTP_ENV, raising=False)
    assert http_protocol() is HttpProtocol
    monkeypatch.setenv(HTTP_ENV, "httptools")
    assert http_protocol() == "httptools"


def _served(protocol_class: Any, raw: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers the app's scope held, and what the client was sent, for ``raw``."""
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    scopes: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    real = FakeTransport()

    async def steps() -> None:
        config = Config(app=app, log_config=None, lifespan="off", date_header=False)
        config.load()
        protocol = protocol_class(config, ServerState(), {}, asyncio.get_running_loop())
        protocol.connection_made(real)
        protocol.data_received(raw)
        for _ in range(10):
            await asyncio.sleep(0)
        protocol.connection_lost(None)

    run(steps)
    return scopes[0]["headers"], b"".join(real.writes)


@pytest.mark.parametrize(
    "headers",
    [
        b"Host: a\r\nContent-Length: 2\r\n",
        b"HOST: a \t\r\nX-Amz-Target:  secretsmanager.GetSecretValue\t \r\nContent-Length: 2\r\n",
        b"Host: a\r\nX-M: 1\r\nx-m: 2 \r\nContent-Length: 2\r\nExpect: 100-Continue \r\n",
        b"Host: a\r\nContent-Length: 2\r\nexpect: nothing\r\n",
    ],
)
def test_headers_reach_the_app_as_uvicorns_own_protocol_gives_them(headers: bytes) -> None:
    """Whatever HttpProtocol overrides of uvicorn's protocol, the app sees the headers as
    uvicorn gives them (lowercased names, trimmed values), and Expect: 100-continue is
    answered."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from strongroom.server.http import HttpProtocol

    raw = b"POST / HTTP/1.1\r\n" + headers + b"\r\n{}"
    ours = _served(HttpProtocol, raw)
    assert ours == _served(HttpToolsProtocol, raw)
    seen, sent = ours
    assert all(name == name.lower() and not value.endswith((b" ", b"\t")) for name, value in seen)
    assert sent.startswith(b"HTTP/1.1 100 Continue") == (b"100-Continue" in headers)
