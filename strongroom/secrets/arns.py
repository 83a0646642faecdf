"""Secret names and ARNs."""

from __future__ import annotations

import random
import re
import string
from typing import NamedTuple

from strongroom.protocol.errors import validation_error

_NAME = re.compile(r"[A-Za-z0-9/_+=.@!-]+")
_SUFFIX_ALPHABET = string.ascii_letters + string.digits
INVALID_NAME = (
    "Invalid name. Must be a valid name containing alphanumeric characters, "
    "or any of the following: -/_+=.@!"
)


def check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise validation_error(INVALID_NAME)


def new_suffix(rng: random.Random) -> str:
    return "".join(rng.choice(_SUFFIX_ALPHABET) for _ in range(6))


def secret_arn(region: str, account_id: str, name: str, suffix: str) -> str:
    return f"arn:aws:secretsmanager:{region}:{account_id}:secret:{name}-{suffix}"


def with_region(arn: str, region: str) -> str:
    parts = arn.split(":", 5)
    parts[3] = region
    return ":".join(parts)


class SecretRef(NamedTuple):
    """What a ``SecretId`` names: a full ARN, a partial ARN (no suffix), or a name. A
    NamedTuple, not a frozen dataclass: every request that names a secret parses one, and
    a frozen dataclass sets each field through ``object.__setattr__``."""

    account_id: str | None
    region: str | None
    name_or_arn_tail: str
    is_arn: bool


# tuple.__new__ makes one from its fields in this order, without the generated __new__'s
# Python frame (which costs more than the tuple: about 1.8k instructions a request).
assert SecretRef._fields == ("account_id", "region", "name_or_arn_tail", "is_arn")


def parse_secret_id(secret_id: str) -> SecretRef:
    if secret_id.startswith("arn:"):
        parts = secret_id.split(":", 6)
        if len(parts) != 7 or parts[2] != "secretsmanager" or parts[5] != "secret":
            raise validation_error(INVALID_NAME)
        return tuple.__new__(SecretRef, (parts[4], parts[3], parts[6], True))
    check_name(secret_id)
    return tuple.__new__(SecretRef, (None, None, secret_id, False))
