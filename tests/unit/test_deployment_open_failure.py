"""A deployment that fails to open part-way closes what it had opened: a worker tries
again (server/sealing.py), and no try may leave a store, its checkpoint thread, an audit
writer or a descriptor of the data directory behind."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from strongroom.clock import ManualClock
from strongroom.functions.log_groups import LogGroups
from strongroom.server.deployment import initialize, open_deployment


def _descriptors_under(directory: Path) -> list[str]:
    found = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(directory)):
            found.append(target)
    return found


def test_a_failed_open_leaves_nothing_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = tmp_path / "data"
    clock = ManualClock()
    initialize(data_dir, dev=True)
    threads_before = set(threading.enumerate())

    def fails(_self: object) -> None:  # the last step before the services are assembled
        raise RuntimeError("injected: sealing the plaintext logs failed")

    monkeypatch.setattr(LogGroups, "seal_plaintext", fails)
    for _ in range(3):  # as a worker's retries would
        with pytest.raises(RuntimeError, match="injected"):
            open_deployment(data_dir, clock=clock)
    assert _descriptors_under(data_dir) == []
    leftover = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    assert leftover == []

    monkeypatch.undo()
    opened = open_deployment(data_dir, clock=clock)  # the next try opens cleanly
    try:
        assert _descriptors_under(data_dir) != []
    finally:
        opened.close()
    assert _descriptors_under(data_dir) == []
