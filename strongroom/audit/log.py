# long module: the writer thread's group commit, chaining, rotation, digests and recovery share
# one lock and one state; splitting them would spread that state.
"""The audit log: hash-chained JSON lines under ``<data-dir>/audit/``, made durable by
group commit, rotated by size and age, signed by periodic digests, pruned by retention.

Format: docs/audit-format.md (v1).

``AuditLog.write(event)`` returns only once the event's record is on disk. One writer
thread drains the queue: it appends every waiting record, syncs the file once, then
releases all their callers together (group commit), so N concurrent requests cost one
sync, not N. If the append or the sync fails, every caller of that batch gets
:class:`AuditWriteError` (the pipeline answers 500 and rolls the request back), the file
is cut back to its last durable byte, and the log stays *poisoned*: each later batch
first tries to recover (truncate, then continue the chain in a fresh file) and fails
without appending anything until that works. A record is therefore either durable and
chained, or gone; the chain never holds a record nobody waited for in its middle.

A writer is one open of a deployment (one process lifetime, or one unseal): its files go
to ``logs/<writer>/`` and its digests to ``digests/<writer>/``, so workers and nodes
never share a file.

Requests served on an event loop (``write_async``) hand their records to the writer once
per turn of the loop, not one by one. The loop thread lets go of the GIL whenever it waits
on SQLite, and a writer woken by each record would then take it and sync one record at a
time: a sync per request, which costs more CPU than the request itself. Handed over per
turn, a batch holds every record the loop produced meanwhile, with no added wait.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import orjson

from strongroom.audit import integrity
from strongroom.audit.integrity import DIGESTS, INTEGRITY, LOGS, ZERO_HASH
from strongroom.audit.sink import Event
from strongroom.audit.writers import Link, Registration, WriterRegistry
from strongroom.clock import Clock, SystemClock

log = logging.getLogger("strongroom.audit")

T = TypeVar("T")

MIB = 1024 * 1024
# Retention never deletes a file written to in the last rotation period (plus this much):
# such a file might still be some live writer's current file.
RETENTION_SAFETY = 60.0


_MIN_FREE_BYTES = 1024 * 1024  # less than this left: a group commit may not fit


class AuditWriteError(Exception):
    """The event was not recorded durably; the request it describes must fail."""


@dataclass(frozen=True)
class AuditLogOptions:
    rotate_bytes: int = 64 * MIB  # start a new file once this one would grow past it
    rotate_seconds: float = 86400.0  # ... or once it is this old
    digest_interval: float = 300.0  # seconds between signed digests (written even when idle)
    retention_days: float | None = None  # delete whole files older than this; None: keep all
    retention_check_interval: float = 3600.0

    def __post_init__(self) -> None:
        if self.rotate_bytes < 1:
            raise ValueError("audit_rotate_bytes must be at least 1")
        if self.rotate_seconds <= 0:
            raise ValueError("audit_rotate_seconds must be positive")
        if self.digest_interval <= 0:
            raise ValueError("audit_digest_interval must be positive")
        if self.retention_days is not None and self.retention_days <= 0:
            raise ValueError("audit_retention_days must be positive (or unset: keep forever)")


class Signer(Protocol):
    @property
    def fingerprint(self) -> str: ...

    @property
    def public_bytes(self) -> bytes: ...

    def sign(self, data: bytes) -> bytes: ...


class Disk:
    """The system calls that make records durable (and undo a failed append); tests
    replace them to simulate a failing disk."""

    def write(self, fd: int, data: memoryview) -> int:
        return os.write(fd, data)

    def sync(self, fd: int) -> None:
        # fdatasync: the data and the new file length, without the mtime-only metadata.
        os.fdatasync(fd)

    def truncate(self, fd: int, length: int) -> None:
        os.ftruncate(fd, length)
        os.fsync(fd)


class _Batch:
    """Records that become durable (or fail) together."""

    __slots__ = ("_gate", "error", "records", "waiters")

    def __init__(self) -> None:
        self.records: list[bytes] = []
        # Held until the batch is settled; a blocked caller (write_many) waits by taking
        # it and handing it on. A plain lock rather than an Event (a Condition and a lock,
        # built in Python code) since one is made for every batch.
        self._gate = threading.Lock()
        self._gate.acquire()
        self.error: BaseException | None = None
        # Requests served on an event loop wait on a future, not on a blocked thread.
        self.waiters: dict[asyncio.AbstractEventLoop, list[asyncio.Future[_Batch]]] = {}

    def wait(self) -> None:
        """Return once the batch is settled (durable, or failed)."""
        with self._gate:
            pass

    def settle(self) -> None:
        """Called once, by the writer thread, when the batch is durable or has failed."""
        self._gate.release()
        for loop, futures in self.waiters.items():
            # One wake-up per loop and batch, however many requests it carries. (try, not
            # contextlib.suppress: three calls of Python code less, once a batch.)
            try:  # noqa: SIM105
                loop.call_soon_threadsafe(_settle, self, futures)
            except RuntimeError:  # the loop has closed
                pass


def _settle(batch: _Batch, futures: list[asyncio.Future[_Batch]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(batch)


class _Staged:
    """The records an event loop produced during its current turn, and their waiters."""

    __slots__ = ("futures", "records")

    def __init__(self) -> None:
        self.records: list[bytes] = []
        self.futures: list[asyncio.Future[_Batch]] = []


class _Call(Generic[T]):
    """Work run on the writer thread (a digest or retention on demand)."""

    def __init__(self, work: Callable[[], T]) -> None:
        self.work = work
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.work()
        except BaseException as problem:
            self.error = problem
        finally:
            self.done.set()


def _record(event: Event) -> bytes:
    """``integrity.normalize(event)``: its one pass made here for a dict of plain JSON
    values (every request's events), which saves a call per record on the event loop. A
    record given as bytes is already in canonical form (audit/templates.py)."""
    if type(event) is bytes:
        return event
    if not isinstance(event, dict) and not isinstance(event, Mapping):
        raise AuditWriteError("an event is a mapping, or its canonical record as bytes")
    if INTEGRITY in event:
        raise AuditWriteError(f"an event must not carry its own {INTEGRITY}")
    if type(event) is dict:
        try:
            return _dumps(event, option=_PLAIN_ONLY)
        except TypeError:  # not plain: normalize's round trip decides
            pass
    try:
        # A dict is serialized as it is (normalize never changes it); a Mapping is copied.
        return integrity.normalize(event if type(event) is dict else dict(event))
    except (TypeError, ValueError) as problem:  # orjson.JSONEncodeError is a TypeError
        raise AuditWriteError(f"the event cannot be serialized: {problem}") from problem


_dumps = orjson.dumps
_PLAIN_ONLY = integrity.PLAIN_ONLY


def _raise_failure(batch: _Batch) -> None:
    if batch.error is not None:
        raise AuditWriteError(f"the audit record was not written: {batch.error}") from (batch.error)


@dataclass
class _Coverage:
    """A log file's records since the previous digest: one ``logFiles`` entry."""

    path: str
    first_sequence: int
    last_sequence: int
    last_hash: str
    byte_length: int
    # The hash of the file's durable bytes, read when a digest is written: the writer
    # thread updates it with byte_length, after each batch, so the two always agree (a
    # copy and a hex digest per batch would be made for the one digest that reads it).
    hasher: Any

    def entry(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "firstSequence": self.first_sequence,
            "lastSequence": self.last_sequence,
            "lastHash": self.last_hash,
            "byteLength": self.byte_length,
            "sha256": self.hasher.copy().hexdigest(),
        }


class _LogFile:
    def __init__(self, path: Path, fd: int, rotate_at: datetime, status: os.stat_result) -> None:
        self.path = path
        self.text = str(path)  # for os.stat once a batch (a Path converts in Python code)
        self.name = path.name
        self.fd = fd
        self.rotate_at = rotate_at  # a new file starts at this time (rotation by age)
        # What the descriptor is (never changes): the file at ``path`` must still be it.
        self.identity = (status.st_dev, status.st_ino)
        self.size = 0  # bytes known durable
        self.hasher = hashlib.sha256()  # over those bytes
        self.damaged = False  # bytes past ``size`` may exist (a failed append)


class AuditLog:
    """An :class:`~strongroom.audit.sink.AuditSink` writing the tamper-evident log."""

    def __init__(
        self,
        directory: Path,
        signer: Signer,
        *,
        clock: Clock | None = None,
        options: AuditLogOptions | None = None,
        disk: Disk | None = None,
        writer: str | None = None,
        registry: WriterRegistry | None = None,
    ) -> None:
        self.directory = directory
        self.options = options or AuditLogOptions()
        self._signer = signer
        self._clock = clock or SystemClock()
        self._disk = disk or Disk()
        self.writer = writer or integrity.new_writer_id(self._clock.now())
        self._lines = integrity.RecordLines(self.writer)
        _make_dirs(directory)
        # Guarded by the condition: what callers hand to the writer thread.
        self._cond = threading.Condition()
        self._batch = _Batch()
        self._calls: list[_Call[Any]] = []
        self._closing = False
        # Per event loop, touched only by that loop's thread: see write_async.
        self._staged: dict[asyncio.AbstractEventLoop, _Staged] = {}
        # Owned by the writer thread.
        self._sequence = 0
        self._last_hash = ZERO_HASH
        self._file: _LogFile | None = None
        self._failure: BaseException | None = None
        self._coverage: dict[str, _Coverage] = {}
        self._digest_sequence = 0
        self._previous_digest = ZERO_HASH
        # Digests and retention are scheduled on the injected clock, so a test moves a
        # ManualClock and calls run_due() instead of sleeping through an interval.
        self._digest_start = now = self._clock.now()
        self._next_digest = now + timedelta(seconds=self.options.digest_interval)
        self._next_retention = now
        self.records_written = 0
        self.batches_written = 0
        # The first digest, at open: it names the writer before this one (through the
        # registry, which orders every writer) and anchors this writer's chain in time.
        self._registry = registry
        self._link: Link | None = None
        self._opened = now
        if registry is None:
            self._digest()
        else:
            try:
                registry.register(
                    Registration(
                        self.writer,
                        now,
                        signer.public_bytes,
                        signer.fingerprint,
                        self.options.digest_interval,
                    ),
                    self._first_digest,
                )
            except BaseException:
                # Not registered: leave no digest behind that names a writer verify would
                # then find missing from the registry.
                shutil.rmtree(directory / DIGESTS / self.writer, ignore_errors=True)
                raise
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"AuditLog({str(self.directory)!r}, writer={self.writer!r})"

    @property
    def fingerprint(self) -> str:
        """The fingerprint of the key this log's digests are signed with."""
        return self._signer.fingerprint

    def problem(self) -> str | None:
        """Why records cannot be written now, or None: the last append failed (and no
        later one succeeded yet), the directory is not writable, or its disk is full."""
        failure = self._failure
        if failure is not None:
            return f"the last audit write failed: {failure}"
        if not os.access(self.directory, os.W_OK):
            return f"the audit directory {self.directory} is not writable"
        free = os.statvfs(self.directory)
        if free.f_bavail * free.f_frsize < _MIN_FREE_BYTES:
            return f"the disk of the audit directory {self.directory} is full"
        return None

    # --- the sink --------------------------------------------------------------------------

    def write(self, event: Event) -> None:
        """Append ``event``; returns once its record is durable, else raises
        :class:`AuditWriteError`."""
        self.write_many((event,))

    def write_many(self, events: Sequence[Event]) -> None:
        """Append ``events`` in order, all in one group commit; returns once every record
        is durable, else raises (then none of them is)."""
        batch = self._enqueue(events)
        batch.wait()
        _raise_failure(batch)

    async def write_async(self, event: Event) -> None:
        """:meth:`write` for a caller on an event loop: the loop serves other requests
        while the record becomes durable."""
        await self.write_many_async((event,))

    async def write_many_async(self, events: Sequence[Event]) -> None:
        """:meth:`write_many` for a caller on an event loop: the records join the loop's
        current turn's batch (all durable together, or none)."""
        if self._closing:
            raise AuditWriteError("the audit log is closed")
        records = list(map(_record, events))  # (no comprehension's frame, once a request)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_Batch] = loop.create_future()
        staged = self._staged.get(loop)
        if staged is None:
            # The hand-over runs once the loop has run every callback now ready: each
            # request of this turn has staged its record by then.
            staged = self._staged[loop] = _Staged()
            loop.call_soon(self._hand_over, loop)
        staged.records.extend(records)
        staged.futures.append(future)
        _raise_failure(await future)

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        staged = self._staged.pop(loop)
        with self._cond:
            if self._closing:
                closed = AuditWriteError("the audit log is closed")
                for future in staged.futures:
                    if not future.done():  # not cancelled
                        future.set_exception(closed)
                return
            batch = self._batch
            batch.records.extend(staged.records)
            batch.waiters.setdefault(loop, []).extend(staged.futures)
            self._cond.notify()

    def _enqueue(self, events: Sequence[Event]) -> _Batch:
        records = [_record(event) for event in events]
        with self._cond:
            if self._closing:
                raise AuditWriteError("the audit log is closed")
            batch = self._batch
            batch.records.extend(records)
            self._cond.notify()
        return batch

    def close(self) -> None:
        """Write what is queued, a final digest, and stop. Later writes fail."""
        with self._cond:
            already = self._closing
            self._closing = True
            self._cond.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()
        if self._registry is not None and not already:
            try:
                self._registry.closed(self.writer, self._clock.now())
            except Exception:
                log.exception("could not record the close of audit writer %s", self.writer)

    # --- on demand (tests, operators) ------------------------------------------------------

    def write_digest(self) -> Path:
        """Write a digest now (covering what was logged since the last one); its path."""
        return self._call(self._digest)

    def apply_retention(self) -> list[Path]:
        """Delete what retention allows now; the paths removed."""
        return self._call(self._retain)

    @property
    def sequence(self) -> int:
        """The sequence of the last durable record."""
        return self._sequence

    def run_due(self) -> None:
        """Have the writer thread run the digest and retention that are due by the clock
        now, and return once it has (the writer otherwise wakes for them on its own)."""
        self._call(lambda: None)

    def _call(self, work: Callable[[], T]) -> T:
        call = _Call(work)
        with self._cond:
            if self._closing:
                raise AuditWriteError("the audit log is closed")
            self._calls.append(call)
            self._cond.notify()
        call.done.wait()
        if call.error is not None:
            raise call.error
        return call.result  # type: ignore[return-value]

    # --- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._batch.records or self._calls or self._closing):
                    wait = self._seconds_to_wakeup()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                batch: _Batch | None = None
                if self._batch.records:
                    batch, self._batch = self._batch, _Batch()
                calls, self._calls = self._calls, []
                closing = self._closing
            now = self._clock.now()  # one reading a turn: rotation by age, what is due
            if batch is not None:
                self._commit(batch, now)
            self._housekeeping(now)
            for call in calls:
                call.run()
            if closing:
                self._finish()
                return

    def _seconds_to_wakeup(self) -> float:
        """Seconds until the next digest or retention check is due."""
        due = self._next_digest
        if self.options.retention_days is not None and self._next_retention < due:
            due = self._next_retention
        return (due - self._clock.now()).total_seconds()

    def _housekeeping(self, now: datetime) -> None:
        if now >= self._next_digest:
            try:
                self._digest()
            except Exception:
                log.exception("audit digest failed; retrying")
                retry = min(self.options.digest_interval, 60.0)
                self._next_digest = now + timedelta(seconds=retry)
        if self.options.retention_days is not None and now >= self._next_retention:
            self._next_retention = now + timedelta(seconds=self.options.retention_check_interval)
            try:
                removed = self._retain()
                if removed:
                    log.info("audit retention removed %d file(s)", len(removed))
            except Exception:
                log.exception("audit retention failed; retrying later")

    def _finish(self) -> None:
        try:
            self._digest()
        except Exception:
            log.exception("final audit digest failed")
        if self._file is not None and self._file.damaged:
            try:
                self._truncate(self._file)
            except OSError:
                log.exception("could not cut %s back to its last durable record", self._file.path)
        self._close_file()

    # --- appending ---------------------------------------------------------------------------

    def _commit(self, batch: _Batch, now: datetime) -> None:
        try:
            if self._failure is not None:
                self._recover()
            data, last_hash = self._lines.batch(batch.records, self._sequence, self._last_hash)
            sequence = self._sequence + len(batch.records)
            file = self._file_for(len(data), now)
            self._append(file, data)
        except Exception as problem:
            if self._failure is None:
                self._failure = problem
            batch.error = problem
            log.error("audit log write failed (%s); requests fail until it recovers", problem)
        else:
            first = self._sequence + 1
            self._sequence, self._last_hash = sequence, last_hash
            file.size += len(data)
            file.hasher.update(data)
            coverage = self._coverage.get(file.name)
            if coverage is None:
                coverage = _Coverage(
                    integrity.log_path(self.writer, file.name), first, 0, "", 0, file.hasher
                )
                self._coverage[file.name] = coverage
            coverage.last_sequence = sequence
            coverage.last_hash = last_hash
            coverage.byte_length = file.size
            self.records_written += len(batch.records)
            self.batches_written += 1
        finally:
            batch.settle()

    def _file_for(self, size: int, now: datetime) -> _LogFile:
        """The file the next ``size`` bytes go to, rotating by size or age."""
        current = self._file
        if (
            current is not None
            and current.size > 0
            and (current.size + size > self.options.rotate_bytes or now >= current.rotate_at)
        ):
            self._close_file()
            current = None
        if current is None:
            current = self._open_file(self._sequence + 1)
        return current

    def _open_file(self, first_sequence: int) -> _LogFile:
        directory = self.directory / LOGS / self.writer
        _make_dirs(directory)
        path = directory / integrity.log_file_name(first_sequence)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            status = os.fstat(fd)
            if status.st_size:
                # Only this writer names files after its own sequences, and a failed append
                # is cut back before a file is left: something else wrote here.
                raise AuditWriteError(f"{path} already holds data it should not")
            # Held while the file is current: retention in other processes sees it is live.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _sync_directory(directory)
        except BaseException:
            os.close(fd)
            raise
        opened = self._clock.now()
        self._file = _LogFile(
            path, fd, opened + timedelta(seconds=self.options.rotate_seconds), status
        )
        return self._file

    def _append(self, file: _LogFile, data: bytes) -> None:
        file.damaged = True
        try:
            view = memoryview(data)
            while view:
                written = self._disk.write(file.fd, view)
                if written <= 0:
                    raise OSError(f"short write to {file.path}")
                view = view[written:]
            self._disk.sync(file.fd)
            _check_in_place(file)
        except BaseException as problem:
            self._failure = problem
            try:
                self._truncate(file)
            except OSError as again:
                log.error(
                    "could not cut %s back to its last durable record (%s); the log stays "
                    "unwritable until that works",
                    file.path,
                    again,
                )
            raise
        file.damaged = False

    def _truncate(self, file: _LogFile) -> None:
        self._disk.truncate(file.fd, file.size)
        file.damaged = False

    def _recover(self) -> None:
        """After a failure: cut the file back, and continue the chain in a fresh file
        (a descriptor whose sync failed is not trusted again)."""
        file = self._file
        if file is not None:
            if file.damaged:
                self._truncate(file)
            self._close_file()
        self._failure = None
        log.warning("audit log recovering after a failed write; continuing in a new file")

    def _close_file(self) -> None:
        if self._file is not None:
            try:
                os.close(self._file.fd)
            except OSError:
                log.exception("closing %s failed", self._file.path)
            self._file = None

    # --- digests -----------------------------------------------------------------------------

    def _first_digest(self, link: Link | None) -> tuple[int, str]:
        """Digest 1, naming ``link`` (called by the registry while it holds its order;
        again, replacing it, if the registry has to retry)."""
        self._link = link
        self._digest_sequence, self._previous_digest = 0, ZERO_HASH
        self._digest_start = self._opened
        self._digest()
        return self._digest_sequence, self._previous_digest

    def _digest(self) -> Path:
        """Sign what was appended since the previous digest (possibly nothing: digests are
        periodic, so a missing one is noticed) and chain to it."""
        end = self._clock.now()
        number = self._digest_sequence + 1
        digest: dict[str, Any] = {
            "version": integrity.DIGEST_VERSION,
            "writer": self.writer,
            "digestSequence": number,
            "digestStartTime": integrity.iso(self._digest_start),
            "digestEndTime": integrity.iso(end),
            "digestIntervalSeconds": self.options.digest_interval,
            "previousDigestHash": self._previous_digest,
            "logFiles": [coverage.entry() for coverage in self._coverage.values()],
            "publicKeyFingerprint": self._signer.fingerprint,
            "signatureAlgorithm": integrity.SIGNATURE_ALGORITHM,
        }
        if number == 1:
            digest["previousWriter"] = self._link.as_dict() if self._link else None
        signature = self._signer.sign(integrity.signing_input(digest))
        digest["signature"] = base64.b64encode(signature).decode("ascii")
        directory = self.directory / DIGESTS / self.writer
        _make_dirs(directory)
        path = directory / integrity.digest_file_name(number)
        _write_atomically(path, orjson.dumps(digest, option=orjson.OPT_INDENT_2) + b"\n")
        self._digest_sequence = number
        self._previous_digest = integrity.digest_hash(digest)
        self._digest_start = end
        self._coverage.clear()
        self._next_digest = end + timedelta(seconds=self.options.digest_interval)
        if self._registry is not None and number > 1:
            self._registry.digested(self.writer, number, self._previous_digest, end)
        return path

    # --- retention ---------------------------------------------------------------------------

    def _retain(self) -> list[Path]:
        days = self.options.retention_days
        if days is None:
            return []
        now = self._clock.now().timestamp()
        cutoff = min(now - days * 86400.0, now - self.options.rotate_seconds - RETENTION_SAFETY)
        removed: list[Path] = []
        for writer in integrity.writers(self.directory):
            removed.extend(self._retire(writer, cutoff))
        return removed

    def _retire(self, writer: str, cutoff: float) -> list[Path]:
        """Delete the oldest whole files of ``writer`` older than ``cutoff``, and the
        digests that cover only them, so that what remains still verifies: the removed
        part is always a prefix of the chain and of the digests."""
        own = writer == self.writer
        files = integrity.log_files(self.directory, writer)
        digest_dir = self.directory / DIGESTS / writer
        digests: list[tuple[Path, set[str], float]] = []
        if digest_dir.is_dir():
            for path in sorted(digest_dir.iterdir()):
                if not integrity.DIGEST_NAME.match(path.name):
                    continue
                try:
                    document = orjson.loads(path.read_bytes())
                    names = {Path(entry["path"]).name for entry in document["logFiles"]}
                    ended = _timestamp(document["digestEndTime"])
                except (OSError, ValueError, KeyError, TypeError):
                    log.warning("retention leaves %s alone: %s is unreadable", writer, path)
                    return []
                digests.append((path, names, ended))

        def expired(index: int) -> bool:
            path = files[index]
            if own and (
                (self._file is not None and path.name == self._file.name)
                or path.name in self._coverage
            ):
                return False
            try:
                if path.stat().st_mtime >= cutoff:
                    return False
            except FileNotFoundError:
                return True
            return not (index == len(files) - 1 and not own and _is_locked(path))

        count = 0
        while count < len(files) and expired(count):
            count += 1
        existing = {path.name for path in files}
        while True:
            gone = {path.name for path in files[:count]}
            kept = existing - gone
            if count and any(names & gone and names & kept for _, names, _ in digests):
                count -= 1
                continue
            break
        doomed: list[tuple[Path, set[str]]] = []
        for path, names, ended in digests:
            # A digest goes when every file it covers is gone: removed now, or missing
            # already (an interrupted earlier pass) and the digest itself is old enough.
            if names & kept or (names - gone and ended >= cutoff):
                break
            doomed.append((path, names))
        if not (count == len(files) and not own):
            # Empty (idle) digests after the last one that signed a removed file stay: they
            # chain what remains. With the whole writer gone, they go too.
            while doomed and not doomed[-1][1]:
                doomed.pop()
        doomed_digests = [path for path, _ in doomed]
        removed: list[Path] = []
        for path in [*files[:count], *doomed_digests]:
            try:
                path.unlink()
                removed.append(path)
            except FileNotFoundError:
                pass
        if count == len(files) and len(doomed_digests) == len(digests) and not own:
            for directory in (self.directory / LOGS / writer, digest_dir):
                with contextlib.suppress(OSError):  # not empty: something new arrived
                    directory.rmdir()
            if self._registry is not None and removed:
                # verify must not take a writer retention removed for one deleted.
                self._registry.retired(writer, self._clock.now())
        return removed


def _timestamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _check_in_place(file: _LogFile) -> None:
    """The records just synced are where readers look: the path still names this file
    (not moved away, deleted, or its directory replaced). (The descriptor's own identity
    was read when the file was opened: it cannot change.)"""
    try:
        there = os.stat(file.text)
    except OSError as problem:
        raise OSError(f"{file.path} is gone: {problem}") from problem
    if file.identity != (there.st_dev, there.st_ino):
        raise OSError(f"{file.path} was replaced while being written")


def _is_locked(path: Path) -> bool:
    """Is some live writer holding ``path`` as its current file?"""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _make_dirs(path: Path) -> None:
    """Create ``path`` and missing parents (0700), syncing each new entry's parent."""
    missing: list[Path] = []
    probe = path
    while not probe.is_dir():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            if not directory.is_dir():
                raise
            continue
        _sync_directory(directory.parent)


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    _sync_directory(path.parent)
