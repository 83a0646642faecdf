# long module: both ends of one protocol (the keyholder serving the socket and the
# worker link that watches it), kept together so that they change together.
"""The keyholder: the one process that holds the unsealed root key, and never hands it out.

``strongroom server`` is the keyholder, and only the keyholder: it never serves HTTP; its
worker processes do (at least one, spawned by uvicorn's supervisor running in it). It
unseals (or stays sealed, for Shamir), makes itself non-dumpable (``PR_SET_DUMPABLE`` 0,
``RLIMIT_CORE`` 0: no core file, no ``ptrace`` or ``/proc/<pid>/mem`` by other processes
of the user), then serves its workers. The root key stays in this process: workers seal
and open values through it.

Each worker reaches it over its own *channel* (keys/channel.py), a socket pair the
keyholder made for that worker and the worker inherited when it was spawned: there is no
path to connect to it, so no other process can. Every connection below is opened over
it. The socket ``keyholder.sock`` in the data directory (0600; every peer checked with
``SO_PEERCRED`` to run as the same user) serves anyone else of the user the status and
unseal input only (the shares or passphrase are the credential), and nothing else.

Each worker keeps one *watch* connection open, on which the keyholder pushes the seal
state, ``{"type": "state", "sealed": false}`` or ``{"sealed": true}`` (never a key). A
worker acknowledges each push once it has applied it (built or dropped its deployment),
and an unseal or seal is answered only after every worker acknowledged, so once
``unseal`` returns every worker serves, and once ``seal`` returns none does (and then the
workers are replaced by fresh processes: ``on_sealed``). While unsealed, a worker's
barrier (keys/remote_barrier.py) keeps a *barrier* connection on which it asks, one JSON
line each way::

    {"op": "seal" | "open", "data": b64, "aad": b64} -> {"ok": true, "data": b64} | {"ok": false}

While a file or PKCS#11 deployment is sealed, a worker checks an operator's unseal (or
seal) request against the deployment's credentials and policies on a *verify*
connection: the keyholder answers ``{"ok": true}`` once it has loaded the provider's key
for that connection alone (or ``{"ok": false, "code": ...}``), serves seal and open on it
as on a barrier connection, and drops the key when the connection closes. The key
itself is never sent, sealed or not.

Operator requests arrive on short connections, one JSON line each way::

    {"op": "status"}
    {"op": "unseal", "share": "..."} | {"op": "unseal", "passphrase": "..."}
    {"op": "unseal"}  (file/pkcs11: fetch the key again)  | {"op": "unseal", "reset": true}
    {"op": "seal"}    (workers only: the HTTP layer has authenticated and audited it)

Watch, barrier, verify and seal are served on a worker's channel only. Nothing here logs
a key, a share or a passphrase.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import ctypes.util
import fcntl
import hashlib
import itertools
import json
import logging
import os
import resource
import socket
import stat
import struct
import tempfile
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strongroom.keys.channel import Connect, channel_pair, receive_connections
from strongroom.keys.envelope import Barrier, DecryptionError
from strongroom.keys.providers import SealConfig, SealError, Unsealer

log = logging.getLogger("strongroom.keyholder")

SOCKET_NAME = "keyholder.sock"
ACK_TIMEOUT = 30.0  # seconds a worker has to apply a pushed state
REQUEST_TIMEOUT = 60.0  # an unseal may run scrypt or talk to an HSM
LINE_LIMIT = 64 * 1024
# How long the keyholder keeps its copy of a worker's end of a new channel when the worker
# never uses it: the copy must outlive the spawn that passes it on, and no more.
CHANNEL_HANDOFF = 60.0
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path holds 108 bytes with the terminating NUL


class KeyholderError(Exception):
    """The keyholder socket could not be served or reached. Safe to show."""


# Operations that hand out the use of the root key, or stop the service: workers only.
_FAMILY_ONLY = frozenset({"watch", "barrier", "verify", "seal"})
# Providers whose key is recovered without anyone's input (so it can be loaded to check an
# operator's credentials while sealed).
KEY_PROVIDERS = ("file", "pkcs11")


def _not_a_worker(op: str, status: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "ok": False,
        "code": "AccessDeniedException",
        "message": f"{op} through the server's authenticated endpoint (strongroom {op})",
        **status,
    }


def socket_path(data_dir: Path) -> Path:
    """The keyholder's socket: in the data directory, or, when that path is longer than a
    Unix socket address allows, in this user's private runtime directory under a name
    derived from the data directory (the keyholder and its workers derive the same)."""
    path = data_dir / SOCKET_NAME
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        return path
    digest = hashlib.sha256(os.fsencode(data_dir.resolve())).hexdigest()[:24]
    return runtime_dir() / f"keyholder-{digest}.sock"


def runtime_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"strongroom-{os.getuid()}"


def _private_runtime_dir(directory: Path) -> None:
    """Create ``directory`` 0700, or accept it only if it is ours and private: another
    user must not be able to stand in for our keyholder."""
    directory.mkdir(mode=0o700, exist_ok=True)
    info = directory.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise KeyholderError(
            f"{directory} is not a private directory of this user; remove it and start again"
        )


def is_serving(path: Path) -> bool:
    """Whether a keyholder (a running server) answers on ``path``."""
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


class DataDirLock:
    """An exclusive ``flock`` on the data directory: one server (or one offline rekey)
    at a time. Released when the process ends, however it ends."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir
        self._fd: int | None = None

    def __repr__(self) -> str:
        return f"DataDirLock({str(self._data_dir)!r}, held={self._fd is not None})"

    def acquire(self) -> None:
        fd = os.open(self._data_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise KeyholderError(
                f"{self._data_dir} is in use by a running Strongroom server or rekey; stop it first"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _peer_uid(sock: Any) -> tuple[int, int] | None:
    """(pid, uid) of a Unix socket's peer, where the platform tells (Linux)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    raw = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", raw)
    return pid, uid


_PR_SET_DUMPABLE = 4


def make_undumpable() -> bool:
    """No core dumps of this process, and no ``ptrace``/``/proc/<pid>/mem`` access by other
    processes of the same user (Linux). Returns whether the kernel agreed."""
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        return bool(libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


@dataclass(eq=False)
class _Watcher:
    writer: asyncio.StreamWriter
    pending: dict[int, asyncio.Future[bool]] = field(default_factory=dict)


class Keyholder:
    """Holds the root key (or not: sealed) and serves it to the workers.

    ``start()`` binds the socket in the calling thread and serves it from a daemon
    thread with its own event loop; ``stop()`` ends that and removes the socket.
    """

    def __init__(
        self,
        data_dir: Path,
        config: SealConfig,
        unsealer: Unsealer,
        root_key: bytes | None,
        *,
        on_sealed: Callable[[], None] | None = None,
    ) -> None:
        self._path = socket_path(data_dir)
        self._on_sealed = on_sealed  # after every worker dropped its deployment
        self._config = config
        self._unsealer = unsealer
        self._barrier = Barrier(root_key) if root_key is not None else None
        self._watchers: set[_Watcher] = set()
        self._barrier_links: set[asyncio.StreamWriter] = set()
        self._channels: set[socket.socket] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._seq = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._inode: int | None = None

    def __repr__(self) -> str:
        return f"Keyholder(provider={self._config.provider!r}, sealed={self.sealed})"

    @property
    def sealed(self) -> bool:
        return self._barrier is None

    @property
    def path(self) -> Path:
        return self._path

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        if not make_undumpable():
            log.warning("could not make the keyholder non-dumpable (PR_SET_DUMPABLE)")
        path = self._path
        if path.parent == runtime_dir():
            _private_runtime_dir(path.parent)
        if is_serving(path):
            raise KeyholderError(
                f"another Strongroom server is already serving {path.parent}; stop it first"
            )
        path.unlink(missing_ok=True)  # a stale socket from a server that did not stop
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)
        try:
            sock.bind(str(path))
        except OSError as problem:
            sock.close()
            raise KeyholderError(f"cannot create {path}: {problem.strerror}") from None
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        self._inode = path.stat().st_ino
        sock.listen(128)
        sock.setblocking(False)
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run, args=(sock, ready), name="strongroom-keyholder", daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise KeyholderError("the keyholder did not start")

    def worker_channel(self) -> socket.socket:
        """A new channel for one worker process, which it must inherit as it is spawned
        (keys/channel.py); the keyholder serves what arrives on it as its family. The
        keyholder keeps its copy of the returned end until the worker first uses it (or
        ``CHANNEL_HANDOFF`` seconds), so that a worker that is gone closes the channel."""
        loop = self._loop
        if loop is None or loop.is_closed():
            raise KeyholderError("the keyholder is not running")
        mine, theirs = channel_pair()
        mine.setblocking(False)
        loop.call_soon_threadsafe(self._add_channel, mine, theirs)
        return theirs

    def stop(self) -> None:
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._barrier = None
        with contextlib.suppress(OSError):
            if self._inode is not None and self._path.stat().st_ino == self._inode:
                self._path.unlink()

    def _run(self, sock: socket.socket, ready: threading.Event) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve(sock, ready))
        finally:
            self._loop.close()

    async def _serve(self, sock: socket.socket, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        self._lock = asyncio.Lock()
        server = await asyncio.start_unix_server(self._on_connection, sock=sock, limit=LINE_LIMIT)
        ready.set()
        async with server:
            await self._stopping.wait()
            for watcher in list(self._watchers):
                watcher.writer.close()
            self._watchers.clear()
            self._drop_barrier_links()
            for channel in list(self._channels):
                self._close_channel(channel)
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # --- worker channels -------------------------------------------------------------------

    def _add_channel(self, channel: socket.socket, handed: socket.socket) -> None:
        assert self._loop is not None
        self._channels.add(channel)
        handoff = self._loop.call_later(CHANNEL_HANDOFF, handed.close)
        self._loop.add_reader(channel.fileno(), self._on_channel, channel, handed, handoff)

    def _close_channel(self, channel: socket.socket) -> None:
        assert self._loop is not None
        if channel in self._channels:
            self._channels.discard(channel)
            self._loop.remove_reader(channel.fileno())
            channel.close()

    def _on_channel(
        self, channel: socket.socket, handed: socket.socket, handoff: asyncio.TimerHandle
    ) -> None:
        received = receive_connections(channel)
        if received is None:
            handoff.cancel()
            handed.close()
            self._close_channel(channel)
            return
        if received:
            handoff.cancel()  # the worker has its end: drop ours, so its exit is seen
            handed.close()
        for conn in received:
            task = asyncio.ensure_future(self._on_family_connection(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _on_family_connection(self, conn: socket.socket) -> None:
        try:
            reader, writer = await asyncio.open_unix_connection(sock=conn, limit=LINE_LIMIT)
        except OSError:
            conn.close()
            return
        await self._serve_connection(reader, writer, family=True)

    # --- connections -------------------------------------------------------------------------

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """A connection on the socket path: never a worker (they use their channels)."""
        peer = _peer_uid(writer.get_extra_info("socket"))
        if peer is not None and peer[1] != os.getuid():
            log.warning("refused a keyholder connection from uid %d (pid %d)", peer[1], peer[0])
            writer.close()
            return
        await self._serve_connection(reader, writer, family=False, peer=peer)

    async def _serve_connection(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        family: bool,
        peer: tuple[int, int] | None = None,
    ) -> None:
        try:
            line = await reader.readline()
            request = json.loads(line) if line else None
            if not isinstance(request, dict):
                return
            op = request.get("op")
            if not family and (op in _FAMILY_ONLY or self._fetches_key(request)):
                pid = peer[0] if peer else "unknown"
                log.warning("refused %r on the socket path (pid %s): not a worker", op, pid)
                if op in ("seal", "unseal"):
                    refusal = _not_a_worker(str(op), self._status())
                    writer.write(json.dumps(refusal).encode() + b"\n")
                    await writer.drain()
                return
            if op == "watch":
                await self._watch(reader, writer)
                return
            if op == "barrier":
                await self._serve_barrier(reader, writer)
                return
            if op == "verify":
                await self._serve_verification(reader, writer)
                return
            reply = await self._command(request)
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, ValueError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def _fetches_key(self, request: Mapping[str, Any]) -> bool:
        """An unseal that makes the keyholder fetch a file or PKCS#11 key by itself: the
        operator's signature authorizes that, checked by a worker."""
        return (
            request.get("op") == "unseal"
            and self.sealed
            and self._config.provider in KEY_PROVIDERS
            and not request.get("reset")
        )

    async def _command(self, request: Mapping[str, Any]) -> dict[str, Any]:
        assert self._lock is not None
        op = request.get("op")
        async with self._lock:
            if op == "status":
                return {"ok": True, **self._status()}
            if op == "seal":
                return await self._seal()
            if op == "unseal":
                return await self._unseal(request)
        return {
            "ok": False,
            "code": "InvalidRequestException",
            "message": "unknown keyholder operation",
            **self._status(),
        }

    def _status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "sealed": self.sealed,
            "provider": self._config.provider,
            "progress": self._unsealer.progress,
            "threshold": self._unsealer.threshold,
            "workers": len(self._watchers),
        }
        if self._config.shares is not None:
            status["shares"] = self._config.shares
        return status

    async def _unseal(self, request: Mapping[str, Any]) -> dict[str, Any]:
        if not self.sealed:
            return {"ok": True, **self._status()}
        if request.get("reset"):
            self._unsealer.reset()
            log.info("unseal progress was reset")
            return {"ok": True, **self._status()}
        submission = {name: request[name] for name in ("share", "passphrase") if name in request}
        loop = asyncio.get_running_loop()
        try:
            key = await loop.run_in_executor(None, self._unsealer.submit, submission)
        except SealError as refused:
            log.warning("an unseal attempt was refused: %s", refused)
            return {
                "ok": False,
                "code": "InvalidRequestException",
                "message": str(refused),
                **self._status(),
            }
        if key is None:
            log.info(
                "unseal share accepted (%d of %d)",
                self._unsealer.progress,
                self._unsealer.threshold,
            )
            return {"ok": True, **self._status()}
        self._barrier = Barrier(key)
        log.info("unsealed")
        await self._broadcast()
        return {"ok": True, **self._status()}

    async def _seal(self) -> dict[str, Any]:
        if not self.sealed:
            self._barrier = None
            self._unsealer.reset()
            log.info("sealed")
            self._drop_barrier_links()
            await self._broadcast()
            if self._on_sealed is not None:
                self._on_sealed()
        return {"ok": True, **self._status()}

    # --- the barrier, served to workers ----------------------------------------------------

    def _drop_barrier_links(self) -> None:
        for link in list(self._barrier_links):
            link.close()
        self._barrier_links.clear()

    async def _serve_barrier(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Seal and open values for a worker until it goes away or the keyholder seals."""
        if self.sealed:
            return
        await self._barrier_requests(reader, writer, lambda: self._barrier)

    async def _serve_verification(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """A barrier for one connection, with the provider's key loaded for it alone: a
        worker opens a sealed file or PKCS#11 deployment with it just long enough to
        authenticate, authorize and audit an operator's request. Such a key is recovered
        without anyone's input anyway; a share or passphrase deployment has none before
        its unseal. The key goes when the connection does."""
        barrier, refusal = await self._verification_barrier()
        writer.write(json.dumps(refusal or {"ok": True, **self._status()}).encode() + b"\n")
        await writer.drain()
        if barrier is not None:
            await self._barrier_requests(reader, writer, lambda: barrier)

    async def _verification_barrier(self) -> tuple[Barrier | None, dict[str, Any] | None]:
        assert self._lock is not None
        if self._config.provider not in KEY_PROVIDERS:
            return None, {
                "ok": False,
                "code": "InvalidRequestException",
                "message": f"a {self._config.provider} deployment has no key before its unseal",
                **self._status(),
            }
        async with self._lock:
            if self._barrier is not None:
                return self._barrier, None
            loop = asyncio.get_running_loop()
            try:
                key = await loop.run_in_executor(None, self._unsealer.submit, {})
            except SealError as problem:
                return None, {
                    "ok": False,
                    "code": "ServiceUnavailableException",
                    "message": str(problem),
                    **self._status(),
                }
        assert key is not None  # a file or PKCS#11 unsealer needs no shares
        return Barrier(key), None

    async def _barrier_requests(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        barrier: Callable[[], Barrier | None],
    ) -> None:
        """Answer seal and open requests with ``barrier()`` until the worker goes away or
        the keyholder seals (which closes every such connection)."""
        self._barrier_links.add(writer)
        try:
            while line := await reader.readline():
                reply = self._barrier_op(json.loads(line), barrier())
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        finally:
            self._barrier_links.discard(writer)

    @staticmethod
    def _barrier_op(request: Any, barrier: Barrier | None) -> dict[str, Any]:
        if barrier is None:
            return {"ok": False, "code": "Sealed"}
        if not isinstance(request, dict) or request.get("op") not in ("seal", "open"):
            return {"ok": False, "code": "InvalidRequest"}
        try:
            data = base64.b64decode(request["data"], validate=True)
            aad = base64.b64decode(request["aad"], validate=True)
        except (KeyError, TypeError, ValueError):
            return {"ok": False, "code": "InvalidRequest"}
        try:
            result = barrier.seal(data, aad) if request["op"] == "seal" else barrier.open(data, aad)
        except DecryptionError:
            return {"ok": False, "code": "DecryptionError"}
        return {"ok": True, "data": base64.b64encode(result).decode("ascii")}

    # --- watchers -------------------------------------------------------------------------

    async def _watch(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._lock is not None
        watcher = _Watcher(writer)
        async with self._lock:
            self._watchers.add(watcher)
            await self._push(watcher, next(self._seq), expect_ack=False)
        try:
            while line := await reader.readline():
                ack = json.loads(line)
                if isinstance(ack, dict) and ack.get("type") == "ack":
                    future = watcher.pending.pop(int(ack.get("seq", 0)), None)
                    if future is not None and not future.done():
                        future.set_result(bool(ack.get("ok")))
        finally:
            self._watchers.discard(watcher)
            for future in watcher.pending.values():
                if not future.done():
                    future.set_result(False)

    def _state_message(self, seq: int) -> bytes:
        message: dict[str, Any] = {"type": "state", "seq": seq, "sealed": self.sealed}
        return json.dumps(message).encode() + b"\n"

    async def _push(self, watcher: _Watcher, seq: int, *, expect_ack: bool) -> None:
        if expect_ack:
            watcher.pending[seq] = asyncio.get_running_loop().create_future()
        try:
            watcher.writer.write(self._state_message(seq))
            await watcher.writer.drain()
        except ConnectionError:
            self._watchers.discard(watcher)
            pending = watcher.pending.pop(seq, None)
            if pending is not None and not pending.done():
                pending.set_result(False)

    async def _broadcast(self) -> None:
        """Push the state to every worker and wait (bounded) until each applied it."""
        seq = next(self._seq)
        watchers = list(self._watchers)
        for watcher in watchers:
            await self._push(watcher, seq, expect_ack=True)
        futures = [w.pending[seq] for w in watchers if seq in w.pending]
        if not futures:
            return
        done, pending = await asyncio.wait(futures, timeout=ACK_TIMEOUT)
        failed = len(pending) + sum(1 for future in done if not future.result())
        if failed:
            log.error("%d worker(s) did not apply the new seal state; check the server log", failed)


# --- the worker side ---------------------------------------------------------------------------


class KeyholderLink:
    """A worker's connection to the keyholder: applies pushed states (sealed or not; the
    key itself never comes), forwards operator requests."""

    def __init__(
        self,
        connect: Connect,
        on_unsealed: Callable[[], Awaitable[None]],
        on_sealed: Callable[[], Awaitable[None]],
        on_lost: Callable[[], Awaitable[None]],
    ) -> None:
        self._connect = connect
        self._on_unsealed = on_unsealed
        self._on_sealed = on_sealed
        self._on_lost = on_lost
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def __repr__(self) -> str:
        return f"KeyholderLink({self._connect!r})"

    async def start(self) -> None:
        """Connect, and apply the current state before returning."""
        try:
            reader, writer = await _open(self._connect)
        except OSError as problem:
            raise KeyholderError(f"cannot reach the keyholder: {problem.strerror}") from None
        self._writer = writer
        writer.write(json.dumps({"op": "watch"}).encode() + b"\n")
        await writer.drain()
        first = await reader.readline()
        if not first:
            raise KeyholderError("the keyholder closed the connection")
        await self._apply(first)
        self._task = asyncio.create_task(self._listen(reader))

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            self._writer.close()

    async def _listen(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                await self._apply(line)
        except (ConnectionError, ValueError):
            pass
        if not self._closing:
            await self._on_lost()

    async def _apply(self, line: bytes) -> None:
        message = json.loads(line)
        ok = True
        try:
            if message.get("sealed", True):
                await self._on_sealed()
            else:
                await self._on_unsealed()
        except Exception:
            log.exception("could not apply the keyholder's seal state")
            ok = False
        if message.get("seq") is not None and self._writer is not None:
            self._writer.write(
                json.dumps({"type": "ack", "seq": message["seq"], "ok": ok}).encode() + b"\n"
            )
            await self._writer.drain()

    async def request(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """Send one operator request to the keyholder and return its reply."""
        return await request(self._connect, message)


async def _open(connect: Connect) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_unix_connection(sock=connect(), limit=LINE_LIMIT)


async def request(connect: Connect, message: Mapping[str, Any]) -> dict[str, Any]:
    try:
        reader, writer = await _open(connect)
    except OSError as problem:
        raise KeyholderError(f"cannot reach the keyholder: {problem.strerror}") from None
    try:
        writer.write(json.dumps(dict(message)).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT)
    except (OSError, TimeoutError):
        raise KeyholderError("the keyholder did not answer") from None
    finally:
        writer.close()
    if not line:
        raise KeyholderError("the keyholder did not answer")
    reply = json.loads(line)
    if not isinstance(reply, dict):
        raise KeyholderError("the keyholder answered nonsense")
    return reply
