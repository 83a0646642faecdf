"""strongroom/ids.py: request and event ids look like AWS's (version 4 UUIDs) and do not
repeat, in one process or across a fork."""

from __future__ import annotations

import os
import uuid

from strongroom.ids import unique_id


def test_ids_are_version_4_uuids_in_canonical_form() -> None:
    for _ in range(100):
        text = unique_id()
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text


def test_ids_do_not_repeat() -> None:
    ids = {unique_id() for _ in range(50_000)}
    assert len(ids) == 50_000


def test_a_forked_child_does_not_repeat_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.close(read)
        os.write(write, ",".join(unique_id() for _ in range(20)).encode())
        os._exit(0)
    os.close(write)
    parent = {unique_id() for _ in range(20)}
    with os.fdopen(read, "rb") as pipe:
        child = set(pipe.read().decode().split(","))
    os.waitpid(pid, 0)
    assert len(child) == 20
    assert not parent & child
