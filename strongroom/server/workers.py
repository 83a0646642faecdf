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
import logging
import os
import signal
import socket
import threading
from types import FrameType

from uvicorn import Config, Server
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

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

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.retiring = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # Signals reach the main thread only; a worker always runs its server there.
        if threading.current_thread() is threading.main_thread():
            signal.signal(RETIRE, self._retire)
        await super().startup(sockets=sockets)

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
    """uvicorn's worker process, serving with a :class:`Worker`."""

    @property
    def server(self) -> Server:
        if self._server is None:
            self._server = Worker(config=self.config)
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

    def _spawn(self) -> WorkerProcess:
        process = WorkerProcess(self.config, self.sockets)
        process.start()
        return process

    def init_processes(self) -> None:
        for _ in range(self.processes_num):
            self.processes.append(self._spawn())

    def restart_all(self) -> None:
        retired: list[Process] = []
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
                    if not self.should_exit.is_set():
                        log.error(
                            "New child process [%s] was not ready in time; keeping worker "
                            "[%s] and aborting the restart.",
                            new.pid,
                            old.pid,
                        )
                    return
                self._retire(old)
                retired.append(old)
                self.processes[idx] = new
        finally:
            for old in retired:
                old.join()
                if isinstance(old, WorkerProcess):
                    old.close_pipes()

    @staticmethod
    def _retire(process: Process) -> None:
        if isinstance(process, WorkerProcess):
            process.retire()
        else:  # not one of ours: it knows no RETIRE
            process.terminate()

    # uvicorn's, spawning a WorkerProcess where uvicorn spawns its Process.
    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for idx, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung: kill it
            process.join()
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
