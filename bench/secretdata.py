"""The benchmark's secrets: their names and ~100-byte values, the same for every target."""

from __future__ import annotations

import secrets

VALUE_BYTES = 100
_HEAD = '{"username":"svc-bench","password":"'
_TAIL = '"}'
_FILLER = VALUE_BYTES - len(_HEAD) - len(_TAIL)


def secret_name(index: int) -> str:
    return f"bench/secret-{index:07d}"


def secret_value() -> str:
    """A fresh random JSON credential of exactly VALUE_BYTES characters."""
    return _HEAD + secrets.token_urlsafe(_FILLER)[:_FILLER] + _TAIL
