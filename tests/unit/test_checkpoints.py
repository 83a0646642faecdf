"""A server's store checkpoints SQLite's write-ahead log on a thread of its own, not inside
the commit that crosses the size threshold (which would hold up every waiting write)."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import insert, text

from strongroom.store import schema
from strongroom.store.engine import Store


def _settings_rows(store: Store, count: int) -> None:
    with store.write() as conn:
        conn.execute(
            insert(schema.settings),
            [{"name": f"k{i}", "value": b"x" * 1024} for i in range(count)],
        )


def test_commits_do_not_checkpoint_and_the_background_thread_does(tmp_path: Path) -> None:
    database = tmp_path / "s.db"
    store = Store(f"sqlite:///{database}", background_checkpoints=True)
    try:
        store.migrate()
        with store.read() as conn:
            assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 0
        before = database.stat().st_size
        _settings_rows(store, 3000)  # ~3 MiB: far past SQLite's 1,000-page threshold
        deadline = time.monotonic() + 10
        while database.stat().st_size < before + 2_000_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert database.stat().st_size >= before + 2_000_000  # the pages reached the database
    finally:
        store.dispose()


def test_without_background_checkpoints_sqlite_checkpoints_on_commit(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    try:
        store.migrate()
        with store.read() as conn:
            assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 1000
    finally:
        store.dispose()
