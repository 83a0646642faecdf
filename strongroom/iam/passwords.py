"""Console passwords: scrypt hashes, constant-time checks, AWS's default password policy.

A stored hash reads ``scrypt$<log2 N>$<r>$<p>$<salt>$<key>`` (salt and key in unpadded
base64), so the cost can be raised later without breaking existing hashes: a hash made
with less than today's cost still verifies (within a floor) and is replaced on the next
successful sign-in (:func:`needs_rehash`). A hash naming parameters outside the floor and
ceiling (a planted ``N=2``, or one so large it would exhaust memory) never matches. No
function here logs, returns or puts into an exception the password it is given.
"""

from __future__ import annotations

import base64
import binascii
import os
import string
from functools import lru_cache

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from strongroom.protocol.errors import ServiceError

_SCHEME = "scrypt"
LOG2_N = 17  # N = 131072, r = 8, p = 1: OWASP's minimum for scrypt; 128 MiB per hash
R = 8
P = 1
# What a stored hash may name: from the earlier default (2^15) to what memory allows.
MIN_LOG2_N, MAX_LOG2_N = 15, 20
MIN_R, MAX_R = 8, 16
MIN_P, MAX_P = 1, 4
SALT_BYTES = 16
KEY_BYTES = 32

# AWS's default password policy (IAM User Guide, "Set an account password policy for IAM
# users"): 8 to 128 characters, at least three of uppercase, lowercase, digits, and other
# characters. The account name and email rule has no meaning here.
MIN_LENGTH = 8
MAX_LENGTH = 128


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _kdf(salt: bytes, log2_n: int, r: int, p: int) -> Scrypt:
    return Scrypt(salt=salt, length=KEY_BYTES, n=2**log2_n, r=r, p=p)


def _parameters(encoded: str) -> tuple[int, int, int, bytes, bytes]:
    """(log2 N, r, p, salt, key) of a stored hash within the floor and ceiling; raises
    ValueError (or binascii.Error) for anything else."""
    scheme, log2_n, r, p, salt, key = encoded.split("$")
    cost = int(log2_n), int(r), int(p)
    if scheme != _SCHEME or not (
        MIN_LOG2_N <= cost[0] <= MAX_LOG2_N
        and MIN_R <= cost[1] <= MAX_R
        and MIN_P <= cost[2] <= MAX_P
    ):
        raise ValueError("not a scrypt hash this version accepts")
    decoded_salt, decoded_key = _unb64(salt), _unb64(key)
    if len(decoded_salt) < SALT_BYTES or len(decoded_key) != KEY_BYTES:
        raise ValueError("not a scrypt hash this version accepts")
    return (*cost, decoded_salt, decoded_key)


def needs_rehash(encoded: str) -> bool:
    """Whether ``encoded`` was made with less than today's cost (re-hash on sign-in)."""
    try:
        log2_n, r, p, _salt, _key = _parameters(encoded)
    except (ValueError, binascii.Error):
        return True
    return (log2_n, r, p) < (LOG2_N, R, P)


def hash_password(password: str) -> str:
    salt = os.urandom(SALT_BYTES)
    key = _kdf(salt, LOG2_N, R, P).derive(password.encode())
    return "$".join((_SCHEME, str(LOG2_N), str(R), str(P), _b64(salt), _b64(key)))


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded``, compared in constant time."""
    try:
        log2_n, r, p, salt, expected = _parameters(encoded)
    except (ValueError, binascii.Error):
        burn_time(password)  # as slow as a real check
        return False
    kdf = _kdf(salt, log2_n, r, p)
    try:
        kdf.verify(password.encode(), expected)
    except InvalidKey:
        return False
    return True


@lru_cache(maxsize=1)
def _decoy() -> str:
    return hash_password(base64.b64encode(os.urandom(18)).decode())


def burn_time(password: str) -> None:
    """Spend what a real check costs, so an unknown user answers as slowly as a known one."""
    verify_password(password, _decoy())


def check_policy(password: str) -> None:
    """Raise PasswordPolicyViolation unless ``password`` meets the default password policy."""
    classes = (
        any(c in string.ascii_uppercase for c in password),
        any(c in string.ascii_lowercase for c in password),
        any(c in string.digits for c in password),
        any(not c.isascii() or not c.isalnum() for c in password),
    )
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH or sum(classes) < 3:
        raise ServiceError(
            "PasswordPolicyViolation", "Password does not conform to the account password policy."
        )
