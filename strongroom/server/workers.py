"""The worker processes' lifecycle: uvicorn's supervisor, with workers that retire
without dropping a connection.

All workers accept from one listening socket, bound by the supervisor (``strongroom
server``, the keyholder) and inherited by each. To replace them (after every seal, or on
SIGHUP) uvicorn starts a new worker, then stops the old one with SIGTERM, whose shutdown
closes every connection that has no request in progress: an idle keep-alive connection
whose client is sending its next request just then, or a fresh connection the old worker
accepted a moment ago and has not read yet, is closed unanswered (the client sees a reset
or an empty reply). So a worker being replaced is *retired* instead (:data:`RETIRE`):

1. it stops accepting: it closes its copy of the listening socket, which stays open in the
   supervisor and the other workers, so what waits to be accepted goes to a live worker;
2. it answers every request that still arrives on a connection it holds, with
   ``connection: close``, so the client's next request opens a new connection;
3. once every connection closed (or after uvicorn's keep-alive timeout, when an idle
   connection would have been closed anyway), it shuts down as on SIGTERM.

A worker stopped with the server (SIGTERM, SIGINT) shuts down as uvicorn's does: no other
worker is left to take over its clients.

This subclasses uvicorn internals (pyproject.toml bounds uvicorn's version).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import threading
from types import FrameType
from typing import Any

from uvicorn import Config, Server
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from strongroom.server.accept import (
    NOT_ACCEPTING,
    SLOTS,
    ConnectionCounts,
    OneAtATimeListener,
)

log = logging.getLogger("uvicorn.error")

# Tells a worker to retire. Its handler is installed before the worker reports itself
# started; a worker still starting has no connection, and SIGUSR1's default action, the
# end of the process, drops nothing.
RETIRE = signal.SIGUSR1
_CONNECTION_CLOSE = (b"connection", b"close")
# Past uvicorn's keep-alive timeout an idle connection would have been closed anyway.
_DRAIN_MARGIN = 1.0
_DRAIN_POLL = 0.02


class Worker(Server):
    """A worker's server: uvicorn's, which retires on :data:`RETIRE`."""

    def __init__(self, config: Config, counts: Any = None, slot: int = 0) -> None:
        super().__init__(config)
        self.retiring = False
        self._shared_counts, self._slot = counts, slot

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # Signals reach the main thread only; a worker always runs its server there.
        if threading.current_thread() is threading.main_thread():
            signal.signal(RETIRE, self._retire)
        if sockets is None or self.config.ssl is not None:
            await super().startup(sockets=sockets)
            return
        # uvicorn's startup without its servers, which would take whole bursts of
        # connections from the shared socket: ours accept one at a time (accept.py).
        await super().startup(sockets=[])
        loop = asyncio.get_running_loop()
        config, state = self.config, self.server_state

        def create_protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=state, app_state=self.lifespan.state, _loop=loop
            )

        counts = (
            None
            if self._shared_counts is None
            else ConnectionCounts(self._shared_counts, self._slot, state.connections)
        )
        self.servers = [
            OneAtATimeListener(loop, sock, create_protocol, config.backlog, counts)  # type: ignore[misc]
            for sock in sockets
        ]

    def _retire(self, _signum: int, _frame: FrameType | None) -> None:
        self.retiring = True
        self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.retiring:
            await self._drain(sockets)
        await super().shutdown(sockets=sockets)

    async def _drain(self, sockets: list[socket.socket] | None) -> None:
        """Accept nothing more; answer what arrives on the open connections, each answer
        closing its connection; return once none is left (bounded)."""
        log.info("Retiring: no new connections; answering those open, then closing them")
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        state = self.server_state
        # Every response started from now on says so and closes its connection (uvicorn's
        # response cycle reads `connection: close` among its headers). The main loop, which
        # refreshes these headers every second, has ended.
        state.default_headers = [*state.default_headers, _CONNECTION_CLOSE]
        for connection in list(state.connections):
            cycle = getattr(connection, "cycle", None)
            if cycle is not None and not cycle.response_complete:
                cycle.keep_alive = False  # in progress, its headers taken before the change
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.timeout_keep_alive + _DRAIN_MARGIN
        while state.connections and not self.force_exit and loop.time() < deadline:
            await asyncio.sleep(_DRAIN_POLL)
        if state.connections:
            log.info("Retiring: closing %d idle connection(s)", len(state.connections))


class WorkerProcess(Process):
    """uvicorn's worker process, serving with a :class:`Worker` that publishes its count
    of connections in slot ``slot`` of ``counts`` (shared memory, passed to the child with
    this object when it is spawned)."""

    def __init__(
        self, config: Config, sockets: list[socket.socket], counts: Any, slot: int
    ) -> None:
        super().__init__(config, sockets)
        self.counts, self.slot = counts, slot

    @property
    def server(self) -> Server:
        if self._server is None:
            self._server = Worker(config=self.config, counts=self.counts, slot=self.slot)
        return self._server

    def retire(self) -> None:
        """Ask the worker to retire (it exits once it has); :meth:`join` waits for it."""
        if self.process.exitcode is None:
            assert self.process.pid is not None
            os.kill(self.process.pid, RETIRE)
            log.info("Retiring child process [%s]", self.process.pid)

    def close_pipes(self) -> None:
        self.parent_conn.close()
        self.child_conn.close()


class Supervisor(Multiprocess):
    """uvicorn's supervisor with :class:`WorkerProcess` workers; a restart retires each
    old worker once its replacement is ready, and waits for them all at the end (their
    drains overlap, each new worker starts while the old ones still answer)."""

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets)
        # Each worker's count of open connections, by which they share out new ones
        # (accept.py); a slot per worker, its replacement taking another while it retires.
        self.counts = multiprocessing.get_context("spawn").RawArray(ctypes.c_int, SLOTS)
        self.counts[:] = [NOT_ACCEPTING] * SLOTS
        self._retiring: list[WorkerProcess] = []

    def _spawn(self) -> WorkerProcess:
        held = {p.slot for p in (*self.processes, *self._retiring) if isinstance(p, WorkerProcess)}
        slot = next(i for i in range(SLOTS) if i not in held)  # at most 2 x 64 workers held
        self.counts[slot] = NOT_ACCEPTING  # until the worker listens
        process = WorkerProcess(self.config, self.sockets, self.counts, slot)
        process.start()
        return process

    def _forget(self, process: Process) -> None:
        """``process`` exited: nobody accepts for its slot (a worker clears its own when it
        stops accepting; one killed could not)."""
        if isinstance(process, WorkerProcess):
            self.counts[process.slot] = NOT_ACCEPTING

    def init_processes(self) -> None:
        for _ in range(self.processes_num):
            self.processes.append(self._spawn())

    def restart_all(self) -> None:
        retired = self._retiring
        try:
            for idx, old in enumerate(self.processes):
                if self.should_exit.is_set():
                    return
                new = self._spawn()
                ready = new.wait_until_ready(
                    self.config.timeout_worker_healthcheck, self.should_exit
                )
                if not ready:
                    new.kill()
                    new.join()
                    self._forget(new)
                    if not self.should_exit.is_set():
                        log.error(
                            "New child process [%s] was not ready in time; keeping worker "
                            "[%s] and aborting the restart.",
                            new.pid,
                            old.pid,
                        )
                    return
                self._retire(old)
                if isinstance(old, WorkerProcess):
                    retired.append(old)
                self.processes[idx] = new
        finally:
            for old in retired:
                old.join()
                old.close_pipes()
                self._forget(old)
            retired.clear()

    @staticmethod
    def _retire(process: Process) -> None:
        if isinstance(process, WorkerProcess):
            process.retire()
        else:  # not one of ours: it knows no RETIRE
            process.terminate()
            process.join()

    # uvicorn's, spawning a WorkerProcess where uvicorn spawns its Process.
    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for idx, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung: kill it
            process.join()
            self._forget(process)
            if process.exitcode == STARTUP_FAILURE:
                # Broken before it served (the app, the socket): every restart would fail too.
                log.error(
                    "Child process [%s] failed to start, stopping the parent process.", process.pid
                )
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            log.info("Child process [%s] died (exit code %s)", process.pid, process.exitcode)
            self.processes[idx] = self._spawn()

    def handle_ttin(self) -> None:
        log.info("Received SIGTTIN, increasing the number of processes.")
        self.processes_num += 1
        self.processes.append(self._spawn())
