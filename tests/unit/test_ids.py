"""strongroom/ids.py: request and event ids look like AWS's (version 4 UUIDs) and do not
repeat, in one process or across a fork."""

from __future__ import annotations

import os
import uuid

from strongroom.ids import unique_id, unique_id_pair


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


def test_ids_are_the_text_uuid_gives_for_the_same_random_bits() -> None:
    import random

    import strongroom.ids as ids

    state = random.Random(20261129)
    saved = ids._bits
    try:
        for _ in range(2_000):
            bits = state.getrandbits(128)
            ids._bits = lambda _k, b=bits: b
            assert unique_id() == str(uuid.UUID(int=bits, version=4))
        for bits in (0, 2**128 - 1):
            ids._bits = lambda _k, b=bits: b
            assert unique_id() == str(uuid.UUID(int=bits, version=4))
    finally:
        ids._bits = saved


def test_a_pair_is_two_ids_from_twice_the_bits() -> None:
    import random

    import strongroom.ids as ids

    state = random.Random(20261207)
    saved = ids._bits
    try:
        for bits in [state.getrandbits(256) for _ in range(1_000)] + [0, 2**256 - 1]:
            ids._bits = lambda _k, b=bits: b
            assert unique_id_pair() == (
                str(uuid.UUID(int=bits >> 128, version=4)),
                str(uuid.UUID(int=bits & (2**128 - 1), version=4)),
            )
    finally:
        ids._bits = saved
    pairs = [unique_id_pair() for _ in range(20_000)]
    assert len({text for pair in pairs for text in pair}) == 40_000
    for first, second in pairs[:100]:
        for text in (first, second):
            assert uuid.UUID(text).version == 4 and str(uuid.UUID(text)) == text
