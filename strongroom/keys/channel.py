"""How a process reaches the keyholder: by the socket path (anyone of the user: the status
and unseal input only), or over a worker's inherited channel (its own family: the seal
state, the barrier, verification, seal).

A worker's channel is one end of a ``SOCK_SEQPACKET`` socket pair the keyholder made for
that worker alone and the worker inherited when it was spawned (there is no path to
connect to it). To open a connection, the worker makes a socket pair, passes one end to
the keyholder over the channel (``SCM_RIGHTS``) and keeps the other: the keyholder serves
what arrives that way as its family, and everything that arrives on the path as a
stranger. No process id is trusted; no ``/proc`` is read."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

Connect = Callable[[], socket.socket]
"""Opens one connection to the keyholder (blocking, with no timeout set)."""

_OPEN = b"connect"  # the one message a channel carries, with one file descriptor


def connect_path(path: Path) -> socket.socket:
    """A connection to the keyholder's socket path: what any process of the user gets."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        raise
    return sock


def by_path(path: Path) -> Connect:
    """A :data:`Connect` by the socket path."""

    def connect() -> socket.socket:
        return connect_path(path)

    return connect


def channel_pair() -> tuple[socket.socket, socket.socket]:
    """(the keyholder's end, the worker's end) of a new worker channel. Both are
    close-on-exec: the worker's end reaches its process only as multiprocessing passes
    it (``spawnv_passfds``), never another program the keyholder runs."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def receive_connections(channel: socket.socket) -> list[socket.socket] | None:
    """The connections a worker passed on ``channel`` (non-blocking; empty when nothing
    is waiting), or ``None`` once the worker is gone."""
    try:
        message, fds, _flags, _address = socket.recv_fds(channel, len(_OPEN), 4)
    except (BlockingIOError, InterruptedError):
        return []
    except OSError:
        return None
    received = []
    for fd in fds:
        try:
            conn = socket.socket(fileno=fd)
        except OSError:
            os.close(fd)
            continue
        if conn.family != socket.AF_UNIX or conn.type != socket.SOCK_STREAM:
            conn.close()
            continue
        received.append(conn)
    if not message and not received:
        return None  # end of file: the worker closed its end (or exited)
    return received


class WorkerChannel:
    """A worker's end of its channel to the keyholder, inherited when it was spawned.
    Thread-safe: each :meth:`connect` is one ``sendmsg``."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"WorkerChannel(fd={self._sock.fileno()})"

    def connect(self) -> socket.socket:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with self._lock:
                socket.send_fds(self._sock, [_OPEN], [theirs.fileno()])
        except OSError:
            mine.close()
            raise
        finally:
            theirs.close()  # the keyholder has its own copy now
        return mine

    def close(self) -> None:
        self._sock.close()
