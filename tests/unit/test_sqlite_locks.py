"""A store keeps SQLite's locks on the WAL index for as long as it is open.

Closing any descriptor of a file drops every POSIX lock the process holds on it. The row
cache's WAL-index watch once closed its descriptor of the ``-shm`` file as soon as it had
mapped it, dropping the process's shared "DMS" lock: the next process to open the
database believed itself alone and truncated the file under the first (SIGBUS), or SQLite
answered "locking protocol". Another process sees the lock here as SQLite's would."""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from strongroom.store import schema
from strongroom.store.engine import Store

# unix VFS: the WAL-index locks start at byte 120 of the -shm file, 8 of them, then "DMS"
# (held shared by every process with the database open; exclusive means "alone").
DMS = 128
FLOCK = "hhqqi"  # struct flock on Linux x86-64: l_type, l_whence, l_start, l_len, l_pid

PROBE = f"""
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
wanted = struct.pack({FLOCK!r}, fcntl.F_WRLCK, 0, {DMS}, 1, 0)
found = fcntl.fcntl(fd, fcntl.F_GETLK, wanted)
kind, _whence, _start, _length, pid = struct.unpack({FLOCK!r}, found)
print(pid if kind != fcntl.F_UNLCK else 0)
"""


def dms_holder(db: Path) -> int:
    """Which process another process finds holding the DMS lock (0: none, or no file)."""
    if not Path(f"{db}-shm").exists():
        return 0
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, f"{db}-shm"], capture_output=True, text=True, check=True
    )
    return int(probe.stdout)


def test_an_open_store_keeps_its_wal_index_lock_until_disposed(tmp_path: Path) -> None:
    db = tmp_path / "strongroom.db"
    store = Store(f"sqlite:///{db}")
    try:
        store.migrate()
        store.enable_cache(100)  # maps the -shm file's header through its own descriptor
        with store.read() as conn:
            conn.execute(select(schema.settings)).all()
        assert dms_holder(db) == os.getpid()
        cache = store.cache
        assert cache is not None
        cache.refresh()
        assert dms_holder(db) == os.getpid()
    finally:
        store.dispose()
    assert dms_holder(db) == 0  # closed: nothing of this process holds the file (or it is gone)


def test_the_probe_sees_a_lock_of_this_process(tmp_path: Path) -> None:
    """The probe itself: a lock this process takes is seen by another."""
    shm = tmp_path / "x.db-shm"
    shm.write_bytes(b"\0" * 256)
    fd = os.open(shm, os.O_RDWR)
    try:
        fcntl.fcntl(fd, fcntl.F_SETLK, struct.pack(FLOCK, fcntl.F_RDLCK, 0, DMS, 1, 0))
        assert dms_holder(tmp_path / "x.db") == os.getpid()
    finally:
        os.close(fd)
    assert dms_holder(tmp_path / "x.db") == 0
