"""Shamir's secret sharing over GF(2^8), and the text form of an unseal share.

Each byte of the secret is the constant term of its own random polynomial of degree
K-1 over GF(2^8) (the AES field, x^8 + x^4 + x^3 + x + 1); share ``i`` holds every
polynomial evaluated at ``x = i``. Any K shares determine the polynomials, so Lagrange
interpolation at ``x = 0`` gives the secret back; K-1 shares are consistent with every
possible secret, so they tell nothing about it.

A share travels as text that names its share set (the split it came from), its index
and a checksum, so a share from another split, a mistyped character or a truncated
paste is refused before it is counted::

    srs1-<set: 8 hex>-<index: 3 digits>-<value: hex>-<checksum: 8 hex>

Python cannot promise constant-time table lookups; the shares are combined once per
unseal, in the keyholder process only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

MAX_SHARES = 255  # the non-zero elements of GF(2^8)
_PREFIX = "srs1"
_TEXT = re.compile(r"srs1-([0-9a-f]{8})-([0-9]{3})-((?:[0-9a-f]{2})+)-([0-9a-f]{8})")
_SET_ID = re.compile(r"[0-9a-f]{8}")


def _tables() -> tuple[list[int], list[int]]:
    exp = [0] * 510
    log = [0] * 256
    value = 1
    for power in range(255):
        exp[power] = value
        log[value] = power
        # multiply by the generator 3: value * 2 (reduced) XOR value
        doubled = value << 1
        if doubled & 0x100:
            doubled ^= 0x11B
        value = doubled ^ value
    for power in range(255, 510):  # so exp[log a + log b] needs no modulo
        exp[power] = exp[power - 255]
    return exp, log


_EXP, _LOG = _tables()


def gf_mul(a: int, b: int) -> int:
    """Multiplication in GF(2^8)."""
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


def gf_div(a: int, b: int) -> int:
    """Division in GF(2^8); ``b`` must not be zero."""
    if b == 0:
        raise ZeroDivisionError("division by zero in GF(2^8)")
    if a == 0:
        return 0
    return _EXP[_LOG[a] + 255 - _LOG[b]]


class ShareError(ValueError):
    """A share was refused. The message never contains the share."""


@dataclass(frozen=True)
class Share:
    """One point of every polynomial: ``index`` is x (1..255), ``value`` the y bytes."""

    index: int
    value: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.index <= MAX_SHARES:
            raise ShareError(f"a share index must be 1..{MAX_SHARES}, not {self.index}")


def split(
    secret: bytes,
    shares: int,
    threshold: int,
    *,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> list[Share]:
    """Split ``secret`` into ``shares`` shares, any ``threshold`` of which recover it."""
    if not secret:
        raise ValueError("the secret must not be empty")
    if not 1 <= threshold <= shares <= MAX_SHARES:
        raise ValueError(f"need 1 <= threshold <= shares <= {MAX_SHARES}")
    if threshold == 1 and shares > 1:
        raise ValueError("a threshold of 1 would make every share the secret itself")
    randomness = random_bytes((threshold - 1) * len(secret))
    if len(randomness) != (threshold - 1) * len(secret):
        raise ValueError("random_bytes returned the wrong number of bytes")
    # coefficients[b] = [secret byte b, then threshold-1 random coefficients]
    coefficients = [
        [byte, *randomness[b * (threshold - 1) : (b + 1) * (threshold - 1)]]
        for b, byte in enumerate(secret)
    ]
    result = []
    for x in range(1, shares + 1):
        value = bytearray(len(secret))
        for b, poly in enumerate(coefficients):
            y = 0
            for coefficient in reversed(poly):  # Horner: y = y*x + c
                y = gf_mul(y, x) ^ coefficient
            value[b] = y
        result.append(Share(x, bytes(value)))
    return result


def combine(shares: Sequence[Share]) -> bytes:
    """The secret the polynomials through ``shares`` take at x = 0.

    With fewer shares than the threshold this is a wrong value, not an error: the math
    cannot tell. Callers check the result (Strongroom keeps a verification blob).
    """
    if not shares:
        raise ShareError("no shares to combine")
    length = len(shares[0].value)
    if length == 0 or any(len(share.value) != length for share in shares):
        raise ShareError("the shares have different lengths: they come from different splits")
    indexes = [share.index for share in shares]
    if len(set(indexes)) != len(indexes):
        raise ShareError("the same share index was given twice")
    # Lagrange basis at 0: l_i = prod_{j != i} x_j / (x_j - x_i); subtraction is XOR.
    weights = []
    for i, xi in enumerate(indexes):
        weight = 1
        for j, xj in enumerate(indexes):
            if i != j:
                weight = gf_mul(weight, gf_div(xj, xj ^ xi))
        weights.append(weight)
    secret = bytearray(length)
    for share, weight in zip(shares, weights, strict=True):
        for b, y in enumerate(share.value):
            secret[b] ^= gf_mul(y, weight)
    return bytes(secret)


# --- text form ------------------------------------------------------------------------------


def new_set_id() -> str:
    """A random name for one split, so shares of another split are told apart."""
    return os.urandom(4).hex()


def _checksum(set_id: str, index: int, value: bytes) -> str:
    material = f"{_PREFIX}|{set_id}|{index}|".encode() + value
    return hashlib.sha256(material).hexdigest()[:8]


def commitment(share: Share, set_id: str) -> str:
    """What ``seal.json`` keeps of each share, so a forged share (even one with a
    recomputed checksum) is refused when it is submitted, not after K of them. A share's
    value is as random as the key, so its SHA-256 reveals nothing usable about it."""
    material = f"strongroom-share-commitment|{set_id}|{share.index}|".encode() + share.value
    return hashlib.sha256(material).hexdigest()


def encode_share(share: Share, set_id: str) -> str:
    if not _SET_ID.fullmatch(set_id):
        raise ValueError("a share set id is 8 lowercase hex digits")
    checksum = _checksum(set_id, share.index, share.value)
    return f"{_PREFIX}-{set_id}-{share.index:03d}-{share.value.hex()}-{checksum}"


def decode_share(text: str) -> tuple[str, Share]:
    """The share set id and the share in ``text``; raises :class:`ShareError` (whose
    message never repeats the text) when it is not a well-formed, intact share."""
    cleaned = "".join(text.split()).lower()
    if not cleaned.startswith(_PREFIX + "-"):
        raise ShareError("this is not a Strongroom unseal share (they start with 'srs1-')")
    match = _TEXT.fullmatch(cleaned)
    if match is None:
        raise ShareError("the share is malformed: a character is missing, extra or not a hex digit")
    set_id, index_text, value_hex, checksum = match.groups()
    index = int(index_text)
    if not 1 <= index <= MAX_SHARES:
        raise ShareError("the share's index is out of range: it was mistyped")
    value = bytes.fromhex(value_hex)
    if not hmac.compare_digest(checksum, _checksum(set_id, index, value)):
        raise ShareError("the share's checksum does not match: it was mistyped or altered")
    return set_id, Share(index, value)
