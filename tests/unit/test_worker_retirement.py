"""A retiring worker (server/workers.py) stops accepting, answers what still arrives on
its connections with ``connection: close``, and ends once they are closed. In process:
uvicorn's server on a thread, over a socket only it holds."""

from __future__ import annotations

import asyncio
import http.client
import signal
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send
from uvicorn import Config

from strongroom.server.http import HttpProtocol
from strongroom.server.workers import Worker


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http"
    await PlainTextResponse("answered")(scope, receive, send)


@pytest.fixture
def worker() -> Iterator[tuple[Worker, int, threading.Thread]]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    # The protocol the server serves with (server/http.py, over uvicorn's httptools one).
    server = Worker(Config(app, lifespan="off", log_level="warning", http=HttpProtocol))
    thread = threading.Thread(
        target=lambda: asyncio.run(server.serve(sockets=[listener])), daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    yield server, port, thread
    server.should_exit = True
    thread.join(timeout=30)


def get(conn: http.client.HTTPConnection) -> http.client.HTTPResponse:
    conn.request("GET", "/")
    response = conn.getresponse()
    assert response.read() == b"answered"
    return response


def refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_a_retiring_worker_answers_its_open_connections_and_accepts_no_more(
    worker: tuple[Worker, int, threading.Thread],
) -> None:
    server, port, thread = worker
    kept = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    assert get(kept).getheader("connection") is None  # keep-alive
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    assert get(idle).status == 200

    server._retire(signal.SIGUSR1, None)  # as the supervisor's RETIRE arrives
    deadline = time.monotonic() + 30
    while not refuses(port):  # its listener closed: new connections go elsewhere
        assert time.monotonic() < deadline, "the retiring worker still accepts"
        time.sleep(0.02)
    # The next request on a connection it holds is answered, and closes it.
    answer = get(kept)
    assert (answer.status, answer.getheader("connection")) == (200, "close")
    assert thread.is_alive()  # still waiting for the idle connection's next request
    answer = get(idle)
    assert (answer.status, answer.getheader("connection")) == (200, "close")
    thread.join(timeout=30)  # no connection left: it has shut down
    assert not thread.is_alive()


def test_a_worker_stopped_with_the_server_closes_idle_connections_at_once(
    worker: tuple[Worker, int, threading.Thread],
) -> None:
    """SIGTERM: uvicorn's shutdown, no drain (no other worker would take the clients)."""
    server, port, thread = worker
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    assert get(idle).status == 200
    server.should_exit = True  # what uvicorn's SIGTERM handler sets
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert idle.sock is not None
    assert idle.sock.recv(1) == b""  # closed by the server, unasked
