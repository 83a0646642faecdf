"""Opaque, tamper-proof NextToken values.

A token carries a small JSON state (e.g. the sort key of the last item returned) and is
bound to a *scope*: the operation plus whatever in the request must not change between
pages (filters, sort), see :func:`request_scope`. Clients cannot forge, edit or move a
token to another request; anything that does not verify is the AWS error
InvalidNextTokenException "The NextToken value is invalid." (the model's documentation
of the error shape; AWS's own message text is unrecorded).

Wire format, urlsafe base64 without padding::

    token = b64(version || payload || tag)
    tag   = HMAC-SHA256(key, DOMAIN || len(scope) || scope || version || payload)

``version`` is one byte, ``payload`` the canonical JSON of the state, ``len(scope)`` four
bytes big-endian. The state is signed, not encrypted: put nothing in it the caller may not
see (names and dates of items it has already been shown are fine).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any

from strongroom.protocol.errors import ServiceError

MAX_TOKEN_LENGTH = 4096  # the model's NextToken bound
MIN_KEY_LENGTH = 32

_VERSION = b"\x01"
_DOMAIN = b"strongroom/next-token\x00"  # keeps these tags apart from other uses of the key
_TAG_LENGTH = hashlib.sha256().digest_size
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]+")


def invalid_next_token() -> ServiceError:
    return ServiceError("InvalidNextTokenException", "The NextToken value is invalid.")


def _canonical_json(value: Any) -> bytes:
    # ASCII-only output: even a lone surrogate from a client's JSON escapes cleanly.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def request_scope(operation: str, request: Mapping[str, Any]) -> str:
    """A scope for ``operation`` and the request members that must stay fixed across pages,
    e.g. ``request_scope("ListSecrets", {"Filters": ..., "SortOrder": ...})``."""
    return f"{operation}:{hashlib.sha256(_canonical_json(dict(request))).hexdigest()}"


class TokenCodec:
    """Encodes and verifies NextToken values under one secret ``key`` (≥ 32 bytes)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_LENGTH:
            raise ValueError(f"pagination key must be at least {MIN_KEY_LENGTH} bytes")
        self._key = bytes(key)

    def __repr__(self) -> str:
        return "TokenCodec(key=<redacted>)"

    def _tag(self, scope: str, body: bytes) -> bytes:
        scope_bytes = scope.encode("utf-8", "surrogatepass")  # injective, never raises
        message = _DOMAIN + len(scope_bytes).to_bytes(4, "big") + scope_bytes + body
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def fingerprint(self, scope: str, text: str) -> str:
        """A keyed digest of ``text`` under ``scope`` (hex): equal texts give equal digests
        in every process of the deployment, and nobody without the key can test a guess
        against one (a stored digest of what someone typed stays theirs). Its scope keeps it
        apart from every token's tag."""
        return self._tag("fingerprint:" + scope, text.encode("utf-8", "surrogatepass")).hex()

    def encode(self, scope: str, state: Mapping[str, Any]) -> str:
        """A token for ``state`` (JSON-serialisable), valid only under ``scope``."""
        body = _VERSION + _canonical_json(dict(state))
        token = base64.urlsafe_b64encode(body + self._tag(scope, body)).rstrip(b"=").decode()
        if len(token) > MAX_TOKEN_LENGTH:
            # A server bug, not a client error: keep pagination state small.
            raise ValueError(f"pagination state too large for a {MAX_TOKEN_LENGTH}-char token")
        return token

    def decode(self, scope: str, token: str) -> dict[str, Any]:
        """The state inside ``token``, or InvalidNextTokenException if it does not verify."""
        raw = _strict_b64decode(token)
        if raw is None or len(raw) <= len(_VERSION) + _TAG_LENGTH:
            raise invalid_next_token()
        body, tag = raw[:-_TAG_LENGTH], raw[-_TAG_LENGTH:]
        # Verify before looking at the contents: nothing unauthenticated is parsed.
        if not hmac.compare_digest(tag, self._tag(scope, body)):
            raise invalid_next_token()
        if body[: len(_VERSION)] != _VERSION:
            raise invalid_next_token()  # a genuine token from a format we no longer read
        try:
            state = json.loads(body[len(_VERSION) :])
        except ValueError:
            raise invalid_next_token() from None
        if not isinstance(state, dict):
            raise invalid_next_token()
        return state


def _strict_b64decode(token: object) -> bytes | None:
    """Decode only the exact text :meth:`TokenCodec.encode` produces, else ``None``.

    The stdlib decoder skips unknown characters and ignores the spare low bits of the
    last character; refusing both means no two token strings decode to the same bytes.
    """
    if (
        not isinstance(token, str)
        or len(token) > MAX_TOKEN_LENGTH
        or not _TOKEN_CHARS.fullmatch(token)
    ):
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != token:
        return None
    return raw
