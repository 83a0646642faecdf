"""Console passwords: scrypt hashes, constant-time checks, AWS's default password policy.

A stored hash reads ``scrypt$<log2 N>$<r>$<p>$<salt>$<key>`` (salt and key in unpadded
base64), so the cost can be raised later without breaking existing hashes. No function
here logs, returns or puts into an exception the password it is given.
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
LOG2_N = 15  # N = 32768, r = 8: 32 MiB of memory per hash
R = 8
P = 1
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


def hash_password(password: str) -> str:
    salt = os.urandom(SALT_BYTES)
    key = _kdf(salt, LOG2_N, R, P).derive(password.encode())
    return "$".join((_SCHEME, str(LOG2_N), str(R), str(P), _b64(salt), _b64(key)))


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded``, compared in constant time."""
    try:
        scheme, log2_n, r, p, salt, key = encoded.split("$")
        if scheme != _SCHEME:
            return False
        kdf = _kdf(_unb64(salt), int(log2_n), int(r), int(p))
        expected = _unb64(key)
    except (ValueError, binascii.Error):
        return False
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
