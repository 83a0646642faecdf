"""The registry of audit writers and periodic digests, on a deployment whose time is a
ManualClock (no sleeping): writers opened together get one durable order, each links to
the one before it, and a writer that stops signing for longer than a period is a gap
`strongroom audit verify` reports."""

from __future__ import annotations

import subprocess
import threading
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import orjson

from strongroom.audit import integrity
from strongroom.audit.log import AuditLogOptions
from strongroom.audit.writers import Link, Registration, StoreRegistry, WriterRow, read_registry
from strongroom.clock import ManualClock
from strongroom.server.deployment import Deployment, initialize, open_deployment
from strongroom.store.engine import Store, sqlite_url
from tests.audit import audit

PERIOD = 300.0


def opened(data_dir: Path, clock: ManualClock) -> Deployment:
    return open_deployment(data_dir, clock=clock, audit=AuditLogOptions(digest_interval=PERIOD))


def first_digest(data_dir: Path, writer: str) -> dict[str, object]:
    path = data_dir / "audit" / "digests" / writer / "00000001.json"
    document: dict[str, object] = orjson.loads(path.read_bytes())
    return document


def verify(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return audit("verify", "--data-dir", str(data_dir))


def test_writers_registering_together_get_one_order_each_naming_the_one_before(
    tmp_path: Path,
) -> None:
    """The registration is one write transaction: concurrent writers (workers of any node
    sharing the database) each take the next ordinal and name the writer before them."""
    data_dir = tmp_path / "data"
    clock = ManualClock()
    initialize(data_dir, dev=True, clock=clock)
    deployment = opened(data_dir, clock)
    registry = StoreRegistry(deployment.store, node="test-node")
    links: dict[str, Link | None] = {}
    lock = threading.Lock()

    def register(n: int) -> None:
        name = f"writer-{n}"

        def first(link: Link | None) -> tuple[int, str]:
            with lock:
                links[name] = link
            return 1, f"{n:064x}"

        registry.register(Registration(name, clock.now(), b"k" * 32, "f" * 64, PERIOD), first)

    threads = [threading.Thread(target=register, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        rows = read_registry(deployment.store)
        assert rows is not None
        assert [row.ordinal for row in rows] == list(range(1, 10))
        assert rows[0].writer == deployment.audit.writer
        for before, after in pairwise(rows):
            link = links[after.writer]
            assert link is not None
            assert after.previous_writer == before.writer == link.writer
            assert link.digest_hash == before.last_digest_hash
    finally:
        deployment.close()


def test_each_writer_links_to_the_last_digest_of_the_one_before(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    clock = ManualClock()
    initialize(data_dir, dev=True, clock=clock)
    writers = []
    for _ in range(3):
        deployment = opened(data_dir, clock)
        writers.append(deployment.audit.writer)
        clock.advance(timedelta(seconds=PERIOD))
        deployment.audit.run_due()
        deployment.close()
    assert first_digest(data_dir, writers[0])["previousWriter"] is None
    for before, after in pairwise(writers):
        link = first_digest(data_dir, after)["previousWriter"]
        assert isinstance(link, dict) and link["writer"] == before
        last = sorted((data_dir / "audit" / "digests" / before).glob("*.json"))[-1]
        assert link["digestSequence"] == int(last.stem)
        assert link["digestHash"] == integrity.digest_hash(orjson.loads(last.read_bytes()))
    rows = read_registry_of(data_dir)
    assert [row.writer for row in rows] == writers
    assert all(row.closed is not None for row in rows)
    result = verify(data_dir)
    assert result.returncode == 0, result.stdout


def read_registry_of(data_dir: Path) -> list[WriterRow]:
    store = Store(sqlite_url(data_dir))
    try:
        return read_registry(store) or []
    finally:
        store.dispose()


def test_digests_are_periodic_while_idle_and_a_stop_is_a_gap(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    clock = ManualClock()
    initialize(data_dir, dev=True, clock=clock)
    deployment = opened(data_dir, clock)
    writer = deployment.audit.writer
    directory = data_dir / "audit" / "digests" / writer
    try:
        for _ in range(3):  # idle periods: a digest each, signing nothing
            clock.advance(timedelta(seconds=PERIOD))
            deployment.audit.run_due()
        assert len(list(directory.glob("*.json"))) == 4
        fine = verify(data_dir)
        assert fine.returncode == 0, fine.stdout
        # The writer stops signing for three periods (stopped, suspended): the next
        # digest spans them, and verify reports the gap.
        clock.advance(timedelta(seconds=3 * PERIOD + 1))
        deployment.audit.run_due()
    finally:
        deployment.close()
    gap = verify(data_dir)
    assert gap.returncode == 1
    assert "time gap: no digest from" in gap.stdout
    assert "this writer signs every 300 s" in gap.stdout
    newest = orjson.loads(sorted(directory.glob("*.json"))[-2].read_bytes())
    assert newest["digestIntervalSeconds"] == PERIOD


def test_a_registry_row_keeps_the_writers_key_and_last_digest(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    clock = ManualClock()
    initialize(data_dir, dev=True, clock=clock)
    deployment = opened(data_dir, clock)
    writer = deployment.audit.writer
    deployment.close()
    [row] = read_registry_of(data_dir)
    assert row.writer == writer and row.fingerprint == deployment.audit.fingerprint
    digests = sorted((data_dir / "audit" / "digests" / writer).glob("*.json"))
    last = orjson.loads(digests[-1].read_bytes())
    assert row.last_digest_sequence == last["digestSequence"]
    assert row.last_digest_hash == integrity.digest_hash(last)
    assert row.digest_interval == PERIOD
