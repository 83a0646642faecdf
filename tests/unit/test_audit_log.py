"""The audit log writer: hash chain, group commit, failures, rotation, digests, retention."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from strongroom.audit import integrity
from strongroom.audit.log import AuditLog, AuditLogOptions, AuditWriteError, Disk
from strongroom.audit.signing import (
    AuditSigningKey,
    fingerprint,
    read_public_key,
    write_public_key,
)
from strongroom.audit.verify import verify_audit
from strongroom.clock import ManualClock


@pytest.fixture
def key() -> AuditSigningKey:
    return AuditSigningKey.generate()


@pytest.fixture
def audit_dir(tmp_path: Path, key: AuditSigningKey) -> Path:
    directory = tmp_path / "audit"
    write_public_key(directory, key)
    return directory


@pytest.fixture
def opened(audit_dir: Path, key: AuditSigningKey) -> Iterator[Any]:
    logs: list[AuditLog] = []

    def open_log(**kwargs: Any) -> AuditLog:
        options = kwargs.pop("options", None)
        log = AuditLog(audit_dir, key, options=options, **kwargs)
        logs.append(log)
        return log

    yield open_log
    for log in logs:
        log.close()


def event(n: int | str, **extra: Any) -> dict[str, Any]:
    return {
        "eventVersion": "1.08",
        "eventTime": "2026-01-01T00:00:00Z",
        "eventSource": "secretsmanager.amazonaws.com",
        "eventName": "GetSecretValue",
        "requestID": str(n),
        "requestParameters": {"SecretId": f"app/{n}"},
        **extra,
    }


def records(audit_dir: Path, writer: str) -> list[dict[str, Any]]:
    found = []
    for path in integrity.log_files(audit_dir, writer):
        found.extend(orjson.loads(line) for line in path.read_bytes().splitlines())
    return found


def assert_intact(audit_dir: Path, *, warnings: bool = False) -> None:
    # The test holds the key: verify anchors on it, not on the file beside the logs.
    result = verify_audit(audit_dir, read_public_key(audit_dir / "signing-key.pub"))
    assert result.ok, [str(f) for f in result.errors]
    if not warnings:
        assert not result.warnings, [str(f) for f in result.warnings]


def test_records_are_chained_as_the_format_says(opened: Any, audit_dir: Path) -> None:
    log = opened()
    for n in range(5):
        log.write(event(n, when=datetime(2026, 1, 1, tzinfo=UTC)))  # non-JSON types normalized
    lines = records(audit_dir, log.writer)
    assert integrity.WRITER_NAME.match(log.writer)
    previous = integrity.ZERO_HASH
    for n, line in enumerate(lines, start=1):
        marks = line.pop(integrity.INTEGRITY)
        assert marks["writer"] == log.writer and marks["sequence"] == n
        assert marks["previousHash"] == previous
        canonical = orjson.dumps(line, option=orjson.OPT_SORT_KEYS)
        assert marks["hash"] == integrity.record_hash(previous, canonical)
        previous = marks["hash"]
    assert [line["requestID"] for line in lines] == ["0", "1", "2", "3", "4"]
    path = integrity.log_files(audit_dir, log.writer)[0]
    assert path.name == "000000000001.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in (audit_dir, audit_dir / "logs", path.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    log.close()
    assert_intact(audit_dir)


def test_an_event_that_cannot_be_recorded_is_refused(opened: Any) -> None:
    log = opened()
    with pytest.raises(AuditWriteError):
        log.write({"eventName": "x", "blob": object()})
    with pytest.raises(AuditWriteError):
        log.write({"eventName": "x", integrity.INTEGRITY: {}})
    log.write(event(1))
    assert log.sequence == 1


class WatchedDisk(Disk):
    """Counts syncs and remembers how many bytes were synced."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.written = 0
        self.synced = 0
        self.syncs = 0

    def write(self, fd: int, data: memoryview) -> int:
        written = super().write(fd, data)
        with self.lock:
            self.written += written
        return written

    def sync(self, fd: int) -> None:
        super().sync(fd)
        with self.lock:
            self.synced = self.written
            self.syncs += 1


def test_group_commit_makes_every_write_durable_before_it_returns(
    opened: Any, audit_dir: Path
) -> None:
    disk = WatchedDisk()
    log = opened(disk=disk)
    threads, per_thread = 16, 40
    problems: list[str] = []
    start = threading.Barrier(threads)

    def work(worker: int) -> None:
        start.wait()
        for n in range(per_thread):
            marker = f"{worker}-{n}-{uuid.uuid4().hex}"
            log.write(event(marker))
            path = integrity.log_files(audit_dir, log.writer)[0]
            with disk.lock:
                synced = disk.synced
            if marker.encode() not in path.read_bytes()[:synced]:
                problems.append(f"{marker} returned before it was synced")

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert not problems
    total = threads * per_thread
    lines = records(audit_dir, log.writer)
    assert [r[integrity.INTEGRITY]["sequence"] for r in lines] == list(range(1, total + 1))
    assert len({r["requestID"] for r in lines}) == total
    assert log.records_written == total
    assert disk.syncs == log.batches_written < total  # several records per sync
    log.close()
    assert_intact(audit_dir)


def test_async_writes_of_one_loop_turn_share_one_sync(opened: Any, audit_dir: Path) -> None:
    """Records written from an event loop reach the writer once per turn of the loop, so a
    burst of requests costs one sync, and each returns only once its record is synced."""
    disk = WatchedDisk()
    log = opened(disk=disk)
    problems: list[str] = []

    async def request(marker: str) -> None:
        # Let go of the GIL, as a request waiting on SQLite does: the writer thread could
        # run now, and must still not sync this turn's records one at a time.
        time.sleep(0.001)
        await log.write_async(event(marker))
        path = integrity.log_files(audit_dir, log.writer)[0]
        with disk.lock:
            synced = disk.synced
        if marker.encode() not in path.read_bytes()[:synced]:
            problems.append(f"{marker} returned before it was synced")

    async def burst(turn: int) -> None:
        await asyncio.gather(*(request(f"{turn}-{n}") for n in range(50)))

    for turn in range(3):
        asyncio.run(burst(turn))
    assert not problems
    assert log.records_written == 150
    assert disk.syncs == log.batches_written == 3  # one per burst, not one per record
    lines = records(audit_dir, log.writer)
    assert [r["requestID"] for r in lines] == [f"{t}-{n}" for t in range(3) for n in range(50)]
    log.close()
    assert_intact(audit_dir)


def test_an_async_write_is_refused_once_the_log_closes(opened: Any) -> None:
    log = opened()

    async def staged_then_closed() -> None:
        # Staged in this turn, handed over after close(): refused, not lost in silence.
        pending = asyncio.ensure_future(log.write_async(event("staged")))
        await asyncio.sleep(0)  # the write has staged its record
        log.close()
        with pytest.raises(AuditWriteError, match="closed"):
            await pending
        with pytest.raises(AuditWriteError, match="closed"):
            await log.write_async(event("after"))

    asyncio.run(staged_then_closed())
    assert log.records_written == 0


class FailingDisk(Disk):
    """A disk whose next write, sync or truncate fails on demand."""

    def __init__(self) -> None:
        self.fail_write = False  # write half of the data, then fail
        self.fail_sync = False
        self.fail_truncate = False

    def write(self, fd: int, data: memoryview) -> int:
        if self.fail_write:
            os.write(fd, data[: max(1, len(data) // 2)])
            raise OSError(5, "Input/output error (simulated)")
        return super().write(fd, data)

    def sync(self, fd: int) -> None:
        if self.fail_sync:
            raise OSError(5, "Input/output error (simulated)")
        super().sync(fd)

    def truncate(self, fd: int, length: int) -> None:
        if self.fail_truncate:
            raise OSError(5, "Input/output error (simulated)")
        super().truncate(fd, length)


def log_bytes(audit_dir: Path, writer: str) -> bytes:
    return b"".join(p.read_bytes() for p in integrity.log_files(audit_dir, writer))


@pytest.mark.parametrize("failure", ["fail_sync", "fail_write"])
def test_a_failed_append_raises_leaves_no_trace_and_the_chain_verifies(
    opened: Any, audit_dir: Path, failure: str
) -> None:
    disk = FailingDisk()
    log = opened(disk=disk)
    for n in range(3):
        log.write(event(n))
    before = log_bytes(audit_dir, log.writer)
    setattr(disk, failure, True)
    with pytest.raises(AuditWriteError, match="simulated"):
        log.write(event("lost"))
    assert log_bytes(audit_dir, log.writer) == before  # cut back: no half line, no record
    assert log.sequence == 3
    setattr(disk, failure, False)
    log.write(event("after"))
    lines = records(audit_dir, log.writer)
    assert [r["requestID"] for r in lines] == ["0", "1", "2", "after"]
    assert [r[integrity.INTEGRITY]["sequence"] for r in lines] == [1, 2, 3, 4]
    # The sequence after the failure continues in a fresh file.
    assert [p.name for p in integrity.log_files(audit_dir, log.writer)] == [
        "000000000001.jsonl",
        "000000000004.jsonl",
    ]
    log.close()
    assert_intact(audit_dir)


def test_a_failed_sync_fails_every_async_write_of_its_batch(opened: Any, audit_dir: Path) -> None:
    disk = FailingDisk()
    log = opened(disk=disk)
    log.write(event("before"))
    before = log_bytes(audit_dir, log.writer)
    disk.fail_sync = True

    async def burst() -> list[BaseException | None]:
        return await asyncio.gather(
            *(log.write_async(event(f"lost-{n}")) for n in range(5)), return_exceptions=True
        )

    outcomes = asyncio.run(burst())
    assert all(isinstance(o, AuditWriteError) and "simulated" in str(o) for o in outcomes)
    assert log_bytes(audit_dir, log.writer) == before
    assert log.sequence == 1
    disk.fail_sync = False
    asyncio.run(log.write_async(event("after")))
    assert [r["requestID"] for r in records(audit_dir, log.writer)] == ["before", "after"]
    log.close()
    assert_intact(audit_dir)


def test_the_log_stays_poisoned_until_the_failed_append_is_undone(
    opened: Any, audit_dir: Path
) -> None:
    disk = FailingDisk()
    log = opened(disk=disk)
    log.write(event(1))
    disk.fail_sync = disk.fail_truncate = True
    with pytest.raises(AuditWriteError):
        log.write(event("lost"))
    disk.fail_sync = False  # syncing works again, but the torn bytes are still there
    for n in range(3):
        with pytest.raises(AuditWriteError):
            log.write(event(f"refused-{n}"))
    assert b"refused" not in log_bytes(audit_dir, log.writer)
    disk.fail_truncate = False
    log.write(event(2))
    lines = records(audit_dir, log.writer)
    assert [r["requestID"] for r in lines] == ["1", "2"]
    log.close()
    assert_intact(audit_dir)


def test_a_log_directory_replaced_by_a_file_fails_closed_until_restored(
    opened: Any, audit_dir: Path
) -> None:
    log = opened()
    log.write(event(1))
    directory = audit_dir / "logs" / log.writer
    moved = directory.with_name("moved-away")
    directory.rename(moved)
    directory.write_bytes(b"")
    for n in range(2):
        with pytest.raises(AuditWriteError):
            log.write(event(f"refused-{n}"))
    directory.unlink()
    moved.rename(directory)
    log.write(event(2))
    assert [r["requestID"] for r in records(audit_dir, log.writer)] == ["1", "2"]
    log.close()
    assert_intact(audit_dir)


def test_files_rotate_by_size_and_the_chain_runs_across_them(opened: Any, audit_dir: Path) -> None:
    log = opened(options=AuditLogOptions(rotate_bytes=2000))
    for n in range(30):
        log.write(event(n))
    files = integrity.log_files(audit_dir, log.writer)
    assert len(files) > 5
    first_sequences = []
    for path in files:
        assert path.stat().st_size <= 2000
        first = orjson.loads(path.read_bytes().splitlines()[0])[integrity.INTEGRITY]["sequence"]
        first_sequences.append(first)
        assert path.name == integrity.log_file_name(first)
    assert first_sequences == sorted(first_sequences) and first_sequences[0] == 1
    log.close()
    assert_intact(audit_dir)


def test_files_rotate_by_age(opened: Any, audit_dir: Path) -> None:
    clock = ManualClock(datetime.now(UTC))
    options = AuditLogOptions(rotate_seconds=3600, digest_interval=3600)
    log = opened(clock=clock, options=options)
    log.write(event(1))
    clock.advance(timedelta(minutes=59))
    log.write(event(2))
    clock.advance(timedelta(minutes=2))
    log.write(event(3))
    names = [p.name for p in integrity.log_files(audit_dir, log.writer)]
    assert names == ["000000000001.jsonl", "000000000003.jsonl"]
    log.close()
    assert_intact(audit_dir)


def digests(audit_dir: Path, writer: str) -> list[dict[str, Any]]:
    directory = audit_dir / "digests" / writer
    return [orjson.loads(p.read_bytes()) for p in sorted(directory.glob("*.json"))]


def test_digests_sign_what_was_appended_since_the_previous_one(
    opened: Any, audit_dir: Path, key: AuditSigningKey
) -> None:
    log = opened(options=AuditLogOptions(rotate_bytes=1500))
    # Digest 1 is written at open, empty: it anchors the writer (and its link) in time.
    opening = digests(audit_dir, log.writer)
    assert [d["logFiles"] for d in opening] == [[]]
    assert opening[0]["previousWriter"] is None  # no registry: no writer before it
    for n in range(4):
        log.write(event(n))
    first_path = log.write_digest()
    assert first_path.name == "00000002.json"
    idle = log.write_digest()  # nothing new: written anyway, signing nothing
    assert idle.name == "00000003.json"
    for n in range(4, 9):
        log.write(event(n))
    log.close()  # the final digest
    empty, first, quiet, second = digests(audit_dir, log.writer)
    assert empty["logFiles"] == quiet["logFiles"] == []
    assert quiet["previousDigestHash"] == integrity.digest_hash(first)
    for digest in (first, second):
        key.public_key.verify(
            base64.b64decode(digest["signature"]), integrity.signing_input(digest)
        )
        assert digest["publicKeyFingerprint"] == fingerprint(key.public_key)
        assert digest["signatureAlgorithm"] == "Ed25519" and digest["version"] == 2
        assert digest["digestIntervalSeconds"] == 300.0
    assert empty["previousDigestHash"] == integrity.ZERO_HASH
    assert first["previousDigestHash"] == integrity.digest_hash(empty)
    assert second["previousDigestHash"] == integrity.digest_hash(quiet)
    assert first["logFiles"][0]["firstSequence"] == 1
    assert first["logFiles"][-1]["lastSequence"] == 4
    assert second["logFiles"][0]["firstSequence"] == 5
    assert second["logFiles"][-1]["lastSequence"] == 9
    for entry in second["logFiles"]:
        data = (audit_dir / entry["path"]).read_bytes()[: entry["byteLength"]]
        assert integrity.hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert stat.S_IMODE(first_path.stat().st_mode) == 0o600
    assert_intact(audit_dir)


def test_digests_are_written_every_interval_even_when_idle(opened: Any, audit_dir: Path) -> None:
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    log = opened(options=AuditLogOptions(digest_interval=300), clock=clock)
    log.write(event(1))
    directory = audit_dir / "digests" / log.writer

    def count() -> int:
        return len(list(directory.glob("*.json"))) if directory.is_dir() else 0

    assert count() == 1  # at open
    clock.advance(timedelta(seconds=299))
    log.run_due()
    assert count() == 1  # not due yet
    clock.advance(timedelta(seconds=1))
    log.run_due()
    assert count() == 2
    clock.advance(timedelta(seconds=300))
    log.run_due()
    assert count() == 3  # idle: written anyway, so a missing one is noticed
    log.write(event(2))
    clock.advance(timedelta(seconds=300))
    log.run_due()
    assert count() == 4
    assert_intact(audit_dir)


def test_writes_after_close_are_refused(opened: Any) -> None:
    log = opened()
    log.write(event(1))
    log.close()
    with pytest.raises(AuditWriteError, match="closed"):
        log.write(event(2))


def age(path: Path, days: float) -> None:
    moment = time.time() - days * 86400
    os.utime(path, (moment, moment))


def test_retention_deletes_whole_old_files_and_what_remains_verifies(
    opened: Any, audit_dir: Path
) -> None:
    old = opened(options=AuditLogOptions(rotate_bytes=1))  # one file per record
    for n in range(1, 7):
        old.write(event(n))
        if n in (2, 4):
            old.write_digest()  # digest 2: files 1-2; digest 3: files 3-4
    old.close()  # digest 4: files 5-6 (digest 1, empty, was written at open)
    files = integrity.log_files(audit_dir, old.writer)
    assert len(files) == 6
    for path in files[:3]:
        age(path, 10)
    before = {str(p.relative_to(audit_dir)) for p in audit_dir.rglob("*") if p.is_file()}
    # A log with retention prunes when it opens (then every retention_check_interval).
    pruner = opened(options=AuditLogOptions(retention_days=5, rotate_seconds=60))
    pruner.apply_retention()
    after = {str(p.relative_to(audit_dir)) for p in audit_dir.rglob("*") if p.is_file()}
    # File 3 is old too, but digest 3 also signs file 4 (recent): it stays with it.
    assert before - after == {
        f"logs/{old.writer}/000000000001.jsonl",
        f"logs/{old.writer}/000000000002.jsonl",
        f"digests/{old.writer}/00000001.json",
        f"digests/{old.writer}/00000002.json",
    }
    result = verify_audit(audit_dir)
    assert result.ok, [str(f) for f in result.errors]
    [summary] = [w for w in result.writers if w.writer == old.writer]
    assert summary.first_sequence == 3
    # Tampering is still found after retention: a removed middle digest.
    (audit_dir / "digests" / old.writer / "00000003.json").rename(audit_dir / "spare.json")
    assert not verify_audit(audit_dir).ok
    (audit_dir / "spare.json").rename(audit_dir / "digests" / old.writer / "00000003.json")
    for path in integrity.log_files(audit_dir, old.writer):
        age(path, 10)
    pruner.apply_retention()
    assert old.writer not in integrity.writers(audit_dir)  # the whole writer went
    assert_intact(audit_dir)


def test_retention_spares_a_live_writers_current_file(opened: Any, audit_dir: Path) -> None:
    live = opened()
    live.write(event(1))
    current = integrity.log_files(audit_dir, live.writer)[0]
    age(current, 10)
    pruner = opened(options=AuditLogOptions(retention_days=5, rotate_seconds=60))
    assert pruner.apply_retention() == []
    assert current.exists()
    live.write(event(2))
    live.close()
    assert_intact(audit_dir)


def test_retention_keeps_a_writers_own_unsigned_records(opened: Any, audit_dir: Path) -> None:
    log = opened(options=AuditLogOptions(rotate_bytes=1, retention_days=5, rotate_seconds=60))
    for n in range(3):
        log.write(event(n))
    for path in integrity.log_files(audit_dir, log.writer):
        age(path, 10)
    assert log.apply_retention() == []  # not yet in a digest: the next digest names them
    log.write_digest()
    log.write(event(3))  # a new current file
    removed = log.apply_retention()
    assert sorted(p.name for p in removed) == [
        "000000000001.jsonl",
        "000000000002.jsonl",
        "000000000003.jsonl",
        "00000001.json",  # the empty one written at open
        "00000002.json",
    ]
    log.close()
    assert_intact(audit_dir)
