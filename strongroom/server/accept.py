"""Accepting connections from the listening socket all workers share, one at a time.

Every worker waits on the same listening socket, and the kernel wakes them all when
connections arrive. The event loop's own server (uvloop's, asyncio's) then accepts in a
loop until nothing is left waiting, so the first worker to run takes a whole burst: a
client pool opening 64 connections at once was seen split 2/62 or 0/64 between two
workers, one worker's core saturated while the other's idled, and throughput halved for
as long as those keep-alive connections lived.

Here a worker accepts one connection per turn of its event loop, and only while it holds
no more open connections than the least loaded other worker (plus :data:`SLACK`): each
worker publishes its count in a small array the supervisor shares with them all
(:class:`ConnectionCounts`), read when a connection waits. A worker with more defers,
looking again shortly; the others, woken by the same connection, take it. A worker that
cannot take it (stopped, stuck, dead before the supervisor noticed) holds the others back
at most :data:`MAX_DEFERRAL_S`: past that they accept regardless, for as long as
connections keep waiting, so balancing never costs a burst more than that in waiting.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections.abc import Callable, Sized
from typing import Any

log = logging.getLogger("uvicorn.error")

# accept() failing for want of descriptors or memory: waiting lets connections close
# before trying again, as asyncio's own server does.
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_RETRY_AFTER_S = 0.1
# A worker accepts while it holds at most SLACK connections more than the least loaded.
SLACK = 1
DEFER_S = 0.001  # how soon a worker that deferred looks again
MAX_DEFERRAL_S = 0.1
SLOTS = 128  # workers (--workers is at most 64) and their replacements while they retire
NOT_ACCEPTING = -1


class ConnectionCounts:
    """One worker's view of the counts of open connections every worker publishes.

    ``counts`` is shared memory (a ``multiprocessing`` ``RawArray`` of :data:`SLOTS` ints)
    made by the supervisor, which gives each worker a slot of its own; a slot no worker
    accepts for holds :data:`NOT_ACCEPTING`. Plain loads and stores of aligned ints: a
    count read a moment stale only shifts one connection."""

    def __init__(self, counts: Any, slot: int, connections: Sized) -> None:
        self._counts = counts
        self._slot = slot
        self._connections = connections

    def should_accept(self) -> bool:
        mine = self._counts[self._slot] = len(self._connections)
        counts, slot = self._counts, self._slot
        others = [c for i, c in enumerate(counts) if c >= 0 and i != slot]
        return not others or mine <= min(others) + SLACK

    def leave(self) -> None:
        self._counts[self._slot] = NOT_ACCEPTING


class OneAtATimeListener:
    """Serves ``protocol_factory`` on the connections of ``sock``, accepting one per turn
    of the event loop; ``close`` / ``wait_closed`` as an ``asyncio.Server``'s."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        backlog: int,
        counts: ConnectionCounts | None = None,
    ) -> None:
        self._loop = loop
        self._counts = counts
        self._deferred_since = self._last_look = 0.0
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol_factory = protocol_factory
        self._serving = True
        self._pending: set[asyncio.Task[object]] = set()
        sock.setblocking(False)
        sock.listen(backlog)  # bound, not yet listening: the event loop's server would listen
        loop.add_reader(self._fd, self._accept_one)

    def _accept_one(self) -> None:
        if self._counts is not None and not self._counts.should_accept():
            now = time.monotonic()
            if now - self._last_look > 10 * DEFER_S:  # a new wait, not the one going on
                self._deferred_since = now
            self._last_look = now
            if now - self._deferred_since < MAX_DEFERRAL_S:
                self._loop.remove_reader(self._fd)
                self._loop.call_later(DEFER_S, self._resume)
                return
        try:
            conn, _ = self._sock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # another worker took it, or the client gave up meanwhile
        except OSError as error:
            if error.errno not in _OUT_OF_RESOURCES:
                raise
            log.warning("Cannot accept connections (%s); retrying shortly", error.strerror)
            self._loop.remove_reader(self._fd)
            self._loop.call_later(_RETRY_AFTER_S, self._resume)
            return
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        task = self._loop.create_task(self._attach(conn))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _attach(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._protocol_factory, conn)
        except OSError:  # the client went away before its transport was made
            conn.close()

    def _resume(self) -> None:
        if self._serving:
            self._loop.add_reader(self._fd, self._accept_one)

    def close(self) -> None:
        """Accept nothing more (the socket itself is closed by its owner)."""
        if self._serving:
            self._serving = False
            self._loop.remove_reader(self._fd)
            if self._counts is not None:
                self._counts.leave()

    async def wait_closed(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
