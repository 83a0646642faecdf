"""Identifiers that must be unique but need not be unguessable: request and event ids.

``uuid.uuid4()`` reads the kernel's random source on every call, which costs a system
call (and a trip through the GIL) on every request, twice. These come from a generator
seeded from that source once per process. Keys, tokens and anything else that must be
unpredictable keep using ``os.urandom``/``secrets``.
"""

from __future__ import annotations

import os
import random
import uuid

_random = random.Random()  # seeded from os.urandom
os.register_at_fork(after_in_child=_random.seed)  # a forked worker must not repeat its parent


def unique_id() -> str:
    """A version 4 UUID, as AWS request ids and CloudTrail event ids look."""
    return str(uuid.UUID(int=_random.getrandbits(128), version=4))
