"""Workers share out a burst of new connections: a client pool that opens 64 at once gets
them served by both workers, not one worker holding nearly all of them (as it did when each
worker's event loop accepted whole bursts: splits of 2/62 and 0/64 were seen, and the
throughput of every keep-alive connection on the loaded worker halved)."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.test_key_lifecycle import worker_pids
from tests.server import ServerProcess, socket_owner

BURST = 64
HEALTH = b"GET /_strongroom/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.fixture
def two_workers(new_server: Callable[..., ServerProcess], tmp_path: Path) -> ServerProcess:
    return new_server("--dev", "--data-dir", str(tmp_path / "data"), "--workers", "2")


@contextlib.contextmanager
def burst(port: int) -> Iterator[list[socket.socket]]:
    """``BURST`` connections opened at once, each answered once (so each was accepted)."""
    conns = [socket.socket() for _ in range(BURST)]
    try:
        for conn in conns:
            conn.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                conn.connect(("127.0.0.1", port))
        for conn in conns:
            conn.setblocking(True)
            conn.settimeout(30)
            conn.sendall(HEALTH)
        for conn in conns:
            assert conn.recv(65536).startswith(b"HTTP/1.1 200"), "a connection was not served"
        yield conns
    finally:
        for conn in conns:
            conn.close()


def held_by(port: int, conns: list[socket.socket], workers: list[int]) -> dict[int, int]:
    """How many of ``conns`` each worker serves."""
    held = dict.fromkeys(workers, 0)
    for conn in conns:
        owner = socket_owner(port, conn.getsockname()[1], workers)
        if owner is not None:
            held[owner] += 1
    return held


def wait_until_both_accept(port: int, workers: list[int], timeout: float = 120) -> None:
    """The server answers as soon as one worker is up; the other may still be starting
    (and takes no connection until it is). Open connections one by one until each worker
    holds one."""
    conns: list[socket.socket] = []
    deadline = time.monotonic() + timeout
    try:
        while min(held_by(port, conns, workers).values()) == 0:
            assert time.monotonic() < deadline, "the second worker never accepted"
            conn = socket.create_connection(("127.0.0.1", port), timeout=30)
            conns.append(conn)
            conn.sendall(HEALTH)
            assert conn.recv(65536).startswith(b"HTTP/1.1 200")
            if len(conns) > 4:  # the other worker is not accepting yet: start over
                for old in conns:
                    old.close()
                conns.clear()
                time.sleep(0.2)
    finally:
        for conn in conns:
            conn.close()
    time.sleep(0.5)  # the workers see those connections close


def test_a_burst_of_connections_is_shared_by_the_workers(two_workers: ServerProcess) -> None:
    server = two_workers
    assert server.process is not None
    workers = worker_pids(server.process.pid)
    assert len(workers) == 2
    wait_until_both_accept(server.port, workers)
    for _ in range(3):
        with burst(server.port) as conns:
            held = held_by(server.port, conns, workers)
            assert sum(held.values()) == BURST, held
            # Even: 32 each; SLACK lets one be ahead by a connection or two while the other
            # is busy. Nowhere near the 2/62 of a worker taking the whole burst.
            assert min(held.values()) >= BURST // 4, held
        time.sleep(0.5)  # the workers see the burst's connections close
