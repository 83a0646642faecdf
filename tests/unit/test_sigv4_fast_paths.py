"""SigV4's shortcuts agree with the general code they bypass.

``verify`` builds the canonical request without per-character work when the signed header
values need no trimming (``_canonical_request_fast``), reuses what ``parse_credential`` read
of the same request, remembers parsed dates, and signs with precomputed HMAC pads. Each is
checked here against the general path over many request shapes: the same bytes, and the
same acceptance or the same AWS error code and message.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.protocol import sigv4
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.sigv4 import HttpRequest, SigningKeyCache, SigV4Credential
from tests.unit.test_sigv4 import (
    DOC_NOW,
    DOC_REQUEST,
    ENDPOINT,
    JSON_HEADERS,
    NOW,
    SECRET,
    TOKEN,
    sign,
    with_header,
)

# Values with everything trimming cares about: runs of spaces, tabs, line breaks, commas
# next to spaces, non-ASCII (latin-1 decoded UTF-8 and not), controls, DEL.
_PIECES = [
    " ", "  ", "\t", "\n", "\r\n ", ",", ", ", " ,", ",,", "é", "Ã©", "\xa0", "\x85",
    "\x1f", "\x7f", "a", "B", "=", ";", ":", "/", "%20", "+", "\u2003", "\u0100",
]  # fmt: skip
_value = st.lists(st.sampled_from(_PIECES), max_size=8).map("".join)


def _outcome(request: HttpRequest, **kwargs: Any) -> object:
    """What parse_credential and verify make of a fresh copy of ``request``."""
    fresh = HttpRequest(
        request.method, request.path, request.query, list(request.headers), request.body
    )
    try:
        credential = sigv4.parse_credential(fresh)
        sigv4.verify(fresh, credential, SECRET, kwargs.pop("now", NOW), **kwargs)
    except ServiceError as error:
        return (error.code, error.message)
    return "accepted"


def _both_paths(request: HttpRequest, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> object:
    """The outcome with the fast canonical request, asserted equal to the general path's."""
    fast = _outcome(request, **kwargs)
    with monkeypatch.context() as patch:
        patch.setattr(sigv4, "_canonical_request_fast", lambda *args: None)
        general = _outcome(request, **kwargs)
    assert fast == general
    return fast


def _canonical_both(request: HttpRequest) -> tuple[bytes | None, bytes] | None:
    """(fast, general) canonical requests of ``request``, or None if it does not parse."""
    try:
        credential = sigv4.parse_credential(request)
    except ServiceError:
        return None
    headers = sigv4._header_map(request.headers)
    payload_hash = hashlib.sha256(request.body).hexdigest()
    args = (request, credential, headers, payload_hash)
    return sigv4._canonical_request_fast(*args), sigv4._canonical_request_general(*args)


def _shapes() -> Iterator[tuple[str, HttpRequest]]:
    plain = sign()
    yield "botocore json", plain
    yield "session token", sign(token=TOKEN)
    yield "runs of spaces", sign(headers=(*JSON_HEADERS, ("X-Extra", "  a  b \t c ")))
    yield "repeated header", sign(headers=(*JSON_HEADERS, ("X-M", "a"), ("X-M", "b")))
    yield "comma space in a value", sign(headers=(*JSON_HEADERS, ("X-M", "a, b")))
    yield "utf-8 value", sign(headers=(*JSON_HEADERS, ("X-U", "café ☕")))
    yield "empty value", sign(headers=(*JSON_HEADERS, ("X-E", "")))
    yield "query string", sign("GET", ENDPOINT + "/", params={"b": "2", "a": "1 2", "ü": "+"})
    yield "odd path", sign("GET", ENDPOINT + "/a/b/../c//d%20e/", params={"x": "y"})
    yield "unsigned payload", sign(payload_signing=False)
    yield "presigned", sign(presign_expires=300)
    yield "presigned with token", sign(presign_expires=300, token=TOKEN)
    yield "aws documentation", DOC_REQUEST
    yield "multi-line value", with_header(plain, "X-Amz-Target", "a\r\n b")
    yield "tab in value", with_header(plain, "X-Amz-Target", "a\tb")
    yield "leading space", with_header(plain, "X-Amz-Target", " secretsmanager.GetSecretValue")
    yield "trailing space", with_header(plain, "X-Amz-Target", "secretsmanager.GetSecretValue ")
    yield "double space", with_header(plain, "X-Amz-Target", "secretsmanager.  GetSecretValue")
    yield "nbsp", with_header(plain, "X-Amz-Target", "a\xa0b")
    yield "nel", with_header(plain, "X-Amz-Target", "a\x85b")
    yield "del", with_header(plain, "X-Amz-Target", "a\x7fb")
    yield (
        "uppercase header names",
        dataclasses.replace(
            plain, headers=[(name.upper(), value) for name, value in plain.headers]
        ),
    )
    authorization = dict((n.lower(), v) for n, v in plain.headers)["authorization"]
    yield (
        "uppercase signed header names",
        with_header(
            plain, "Authorization", authorization.replace("SignedHeaders=", "SignedHeaders=Host;")
        ),
    )
    yield "signed header missing", with_header(plain, "X-Amz-Target", None)
    yield (
        "signed header repeated",
        dataclasses.replace(plain, headers=[*plain.headers, ("X-Amz-Target", "again")]),
    )
    yield (
        "wrong signature",
        with_header(
            plain, "Authorization", authorization[:-1] + ("0" if authorization[-1] != "0" else "1")
        ),
    )
    yield "lowercase method", dataclasses.replace(plain, method="post")
    yield "latin-1 method", dataclasses.replace(plain, method="PÖST")
    yield "non latin-1 method", dataclasses.replace(plain, method="P\u0100ST")
    yield "non latin-1 header value", with_header(plain, "X-Amz-Target", "\u0100")
    yield "body changed", dataclasses.replace(plain, body=plain.body + b" ")
    yield "query added", dataclasses.replace(plain, query="a=1&b")


SHAPES = dict(_shapes())


@pytest.mark.parametrize("request_", SHAPES.values(), ids=SHAPES.keys())
def test_fast_canonical_request_is_the_general_one(request_: HttpRequest) -> None:
    both = _canonical_both(request_)
    assert both is not None
    fast, general = both
    assert fast is None or fast == general


@pytest.mark.parametrize("request_", SHAPES.values(), ids=SHAPES.keys())
def test_both_paths_accept_and_refuse_alike(
    request_: HttpRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = DOC_NOW if request_ is DOC_REQUEST else NOW
    for kwargs in ({}, {"allow_unsigned_payload": True}, {"cache": SigningKeyCache()}):
        _both_paths(request_, monkeypatch, now=now, **kwargs)


def test_what_botocore_sends_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("botocore json", "session token", "query string", "presigned", "unsigned payload"):
        both = _canonical_both(SHAPES[name])
        assert both is not None and both[0] is not None, name
    for name in ("runs of spaces", "multi-line value", "comma space in a value", "utf-8 value"):
        both = _canonical_both(SHAPES[name])
        assert both is not None and both[0] is None, name
    assert _both_paths(SHAPES["botocore json"], monkeypatch) == "accepted"
    assert _both_paths(SHAPES["runs of spaces"], monkeypatch) == "accepted"
    assert _both_paths(SHAPES["wrong signature"], monkeypatch) == (
        "InvalidSignatureException",
        sigv4.invalid_signature().message,
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(_value, min_size=1, max_size=3), repeat=st.booleans())
def test_any_header_values_take_either_path_alike(values: list[str], repeat: bool) -> None:
    # Signed as botocore would (it trims what it signs), then received with the raw values.
    extra = tuple((f"X-H{i}", value) for i, value in enumerate(values))
    if repeat:
        extra = (*extra, ("X-H0", values[-1]))
    try:
        request = sign(headers=(*JSON_HEADERS, *extra))
    except ValueError:
        return  # a value http.client refuses to send (a bare line break)
    both = _canonical_both(request)
    assert both is not None
    fast, general = both
    assert fast is None or fast == general
    raw = [(name, value) for name, value in request.headers if not name.startswith("X-H")]
    received = dataclasses.replace(request, headers=[*raw, *extra])
    both = _canonical_both(received)
    assert both is not None
    fast, general = both
    assert fast is None or fast == general


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*_PIECES, "Credential=x", "a=b", "=", "\u3000"])).map("".join))
def test_authorization_items_split_as_the_regex_does(rest: str) -> None:
    # parse_credential splits the AWS4 parameters with str.split() after making commas spaces.
    expected = [item for item in re.split(r"[\s,]+", rest) if item]
    assert rest.replace(",", " ").split() == expected


def test_a_received_request_is_built_as_its_init_would() -> None:
    plain = sign(token=TOKEN)
    args = (plain.method, plain.path, plain.query, list(plain.headers), plain.body)
    made, built = sigv4.received(*args), HttpRequest(*args)
    assert vars(made) == vars(built)
    assert made == built and repr(made) == repr(built)
    assert sigv4.parse_credential(made) == sigv4.parse_credential(built)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.path = "/x"  # type: ignore[misc]


# --- what parse_credential read is reused, and only for the same request ---------------------


def test_a_request_is_parsed_once() -> None:
    request = sign(token=TOKEN)
    credential = sigv4.parse_credential(request)
    assert sigv4.parse_credential(request) is credential
    copy = dataclasses.replace(request)
    assert copy._read is None
    assert sigv4.parse_credential(copy) == credential
    assert copy == request
    assert "_read" not in repr(request) and TOKEN not in repr(request)


def test_swapped_headers_are_read_again() -> None:
    request = sign()
    credential = sigv4.parse_credential(request)
    other = sign(when=NOW + dt.timedelta(seconds=1))
    object.__setattr__(request, "headers", other.headers)
    assert sigv4.parse_credential(request) != credential
    assert sigv4.parse_credential(request).amz_date == "20261129T150001Z"


def test_the_credential_is_built_as_its_init_would() -> None:
    for request in (sign(token=TOKEN), sign(presign_expires=300)):
        credential = sigv4.parse_credential(request)
        fields = {f.name: getattr(credential, f.name) for f in dataclasses.fields(SigV4Credential)}
        assert vars(credential) == fields
        rebuilt = SigV4Credential(**fields)
        assert rebuilt == credential and hash(rebuilt) == hash(credential)
        assert repr(rebuilt) == repr(credential)
        with pytest.raises(dataclasses.FrozenInstanceError):
            credential.region = "x"  # type: ignore[misc]


def test_remembered_dates_are_the_parsed_ones() -> None:
    parse = sigv4._parse_amz_date
    for value in ("20261129T150000Z", "20240229T235959Z"):
        assert parse(value) == parse(value) == parse.__wrapped__(value)
    for bad in ("20261329T150000Z", "20250229T000000Z", "2026112T150000Z"):
        for _ in range(2):  # a refusal is not remembered: it raises every time
            with pytest.raises(ServiceError) as info:
                parse(bad)
            assert info.value.code == "IncompleteSignatureException"
            assert bad in info.value.message


# --- signing -------------------------------------------------------------------------------


def test_precomputed_hmac_is_hmac() -> None:
    for key in (b"", b"k", bytes(range(32)), bytes(range(64)), bytes(65)):
        signer = sigv4._Signer(key)
        for message in (b"", b"m", bytes(range(256)) * 3):
            first = signer.hexdigest(message)  # signing again starts from the keyed state
            assert signer.hexdigest(message) == first
            assert first == hmac.new(key, message, hashlib.sha256).hexdigest()
        assert repr(signer) == "_Signer()"


def test_cached_and_uncached_signing_keys_agree() -> None:
    cache = SigningKeyCache()
    for args in [
        (SECRET, "20261129", "us-east-1", "secretsmanager"),
        ("other", "20150830", "eu-west-1", "iam"),
        ("s\ud800", "d", "r", "s"),
    ]:
        assert cache.signing_key(*args) == sigv4._derive_signing_key(*args)
        assert cache.signing_key(*args) == cache._signer(*args).key
    credential = sigv4.parse_credential(DOC_REQUEST)
    sigv4.verify(DOC_REQUEST, credential, SECRET, DOC_NOW)
    sigv4.verify(DOC_REQUEST, credential, SECRET, DOC_NOW, cache=cache)


def test_cache_fingerprints_are_salted_per_cache() -> None:
    first, second = SigningKeyCache(), SigningKeyCache()
    first.signing_key(SECRET, "d", "r", "s")
    second.signing_key(SECRET, "d", "r", "s")
    (one,), (two,) = first._keys, second._keys
    assert one[0] != two[0]  # no fingerprint recomputable without the cache's salt
    unkeyed = (
        hashlib.sha256(SECRET.encode()).digest(),
        hashlib.blake2s(SECRET.encode()).digest(),
    )
    assert one[0] not in unkeyed and two[0] not in unkeyed
