"""Identifiers that must be unique but need not be unguessable: request and event ids.

``uuid.uuid4()`` reads the kernel's random source on every call, which costs a system
call (and a trip through the GIL) on every request, twice. These come from a generator
seeded from that source once per process. Keys, tokens and anything else that must be
unpredictable keep using ``os.urandom``/``secrets``.
"""

from __future__ import annotations

import os
import random

_random = random.Random()  # seeded from os.urandom
os.register_at_fork(after_in_child=_random.seed)  # a forked worker must not repeat its parent
# Bound once: reseeding after a fork reseeds this same generator.
_bits = _random.getrandbits


# uuid.UUID(int=n, version=4) sets these bits: version 4, RFC 4122 variant.
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & (2**128 - 1)
_SET = (0x4000 << 64) | (0x8000 << 48)
# The five groups of the text (8-4-4-4-12 digits). Python 3.11 builds a slice object for
# each ``digits[a:b]`` written out; these are built once.
_G1, _G2, _G3, _G4, _G5 = slice(8), slice(8, 12), slice(12, 16), slice(16, 20), slice(20, 32)
# unique_id_pair: two ids from one draw, the second's groups 32 digits on.
_H1, _H2, _H3, _H4, _H5 = slice(32, 40), slice(40, 44), slice(44, 48), slice(48, 52), slice(52, 64)
_CLEAR_2 = _CLEAR << 128 | _CLEAR
_SET_2 = _SET << 128 | _SET


def unique_id() -> str:
    """A version 4 UUID, as AWS request ids and CloudTrail event ids look: the text
    ``str(uuid.UUID(int=n, version=4))`` gives, formatted directly (a third of the cost)."""
    digits = "%032x" % (_bits(128) & _CLEAR | _SET)
    return f"{digits[_G1]}-{digits[_G2]}-{digits[_G3]}-{digits[_G4]}-{digits[_G5]}"


def unique_id_pair() -> tuple[str, str]:
    """Two ids as :func:`unique_id` makes them (a record's request and event ids), from
    one draw of twice the bits: one call, one formatting, instead of two of each."""
    digits = "%064x" % (_bits(256) & _CLEAR_2 | _SET_2)
    return (
        f"{digits[_G1]}-{digits[_G2]}-{digits[_G3]}-{digits[_G4]}-{digits[_G5]}",
        f"{digits[_H1]}-{digits[_H2]}-{digits[_H3]}-{digits[_H4]}-{digits[_H5]}",
    )
