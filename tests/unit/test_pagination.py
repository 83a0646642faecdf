"""NextToken encoding: round trips, and every kind of tampering is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import string
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.protocol.errors import ServiceError
from strongroom.protocol.pagination import (
    MAX_TOKEN_LENGTH,
    TokenCodec,
    request_scope,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
SCOPE = request_scope("ListSecrets", {"Filters": [{"Key": "name", "Values": ["a"]}]})
STATE = {"after": ["prod/db", 1700000000.125], "n": 3, "deleted": False}
ALPHABET = string.ascii_letters + string.digits + "-_"

codec = TokenCodec(KEY)


def assert_invalid(token: Any, scope: str = SCOPE, key: bytes = KEY) -> None:
    with pytest.raises(ServiceError) as raised:
        TokenCodec(key).decode(scope, token)
    assert raised.value.code == "InvalidNextTokenException"
    assert raised.value.message == "The NextToken value is invalid."
    assert raised.value.status == 400


def forge(body: bytes, scope: str = SCOPE, key: bytes = KEY) -> str:
    """A token with a valid tag over ``body``, following the documented wire format."""
    scope_bytes = scope.encode("utf-8", "surrogatepass")
    message = b"strongroom/next-token\x00" + len(scope_bytes).to_bytes(4, "big")
    tag = hmac.new(key, message + scope_bytes + body, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(body + tag).rstrip(b"=").decode()


# --- round trips ----------------------------------------------------------------------------


def test_round_trip() -> None:
    token = codec.encode(SCOPE, STATE)
    assert codec.decode(SCOPE, token) == STATE


def test_token_shape() -> None:
    token = codec.encode(SCOPE, STATE)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)  # urlsafe, no padding
    assert 1 <= len(token) <= MAX_TOKEN_LENGTH


def test_encoding_is_deterministic_and_scoped() -> None:
    assert codec.encode(SCOPE, STATE) == codec.encode(SCOPE, dict(reversed(STATE.items())))
    assert codec.encode(SCOPE, STATE) != codec.encode("ListSecrets:other", STATE)
    assert codec.encode(SCOPE, STATE) != TokenCodec(OTHER_KEY).encode(SCOPE, STATE)


def test_forge_helper_matches_the_codec() -> None:
    # Guards the white-box tests below: they forge tokens in exactly the codec's format.
    body = b"\x01" + json.dumps(STATE, sort_keys=True, separators=(",", ":")).encode()
    assert forge(body) == codec.encode(SCOPE, STATE)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=20), json_values, max_size=6), st.text(max_size=80))
def test_round_trip_any_state_any_scope(state: dict[str, Any], scope: str) -> None:
    try:
        token = codec.encode(scope, state)
    except ValueError:
        # Only a state too big for 4096 characters may be refused (non-ASCII is escaped).
        assert len(json.dumps(state, separators=(",", ":"))) > 2900
        return
    assert codec.decode(scope, token) == state


def test_empty_state_round_trips() -> None:
    assert codec.decode(SCOPE, codec.encode(SCOPE, {})) == {}


def test_lone_surrogates_do_not_break_encoding() -> None:
    # A client's JSON can carry "\ud800"; it may reach a scope or a state.
    state = {"after": "\ud800x"}
    assert codec.decode("S\udfff", codec.encode("S\udfff", state)) == state
    assert request_scope("ListSecrets", {"Filters": ["\ud800"]}).startswith("ListSecrets:")
    assert_invalid(codec.encode("S\udfff", state), scope="S\udffe")


# --- tampering ------------------------------------------------------------------------------

TOKEN = codec.encode(SCOPE, STATE)


def test_every_single_character_change_is_refused() -> None:
    for index, original in enumerate(TOKEN):
        for replacement in ALPHABET:
            if replacement != original:
                assert_invalid(TOKEN[:index] + replacement + TOKEN[index + 1 :])


def test_every_bit_flip_in_the_bytes_is_refused() -> None:
    raw = base64.urlsafe_b64decode(TOKEN + "=" * (-len(TOKEN) % 4))
    for index in range(len(raw)):
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[index] ^= 1 << bit
            assert_invalid(base64.urlsafe_b64encode(bytes(flipped)).rstrip(b"=").decode())


def test_every_truncation_is_refused() -> None:
    for end in range(len(TOKEN)):
        assert_invalid(TOKEN[:end])
    for start in range(1, len(TOKEN)):
        assert_invalid(TOKEN[start:])


@pytest.mark.parametrize("suffix", ["A", "AA", "AAAA", "=", "==", " ", "\n", ".", "é"])
def test_appended_text_is_refused(suffix: str) -> None:
    assert_invalid(TOKEN + suffix)


@pytest.mark.parametrize("noise", ["!", "=", " ", "+", "/", "\x00", "é"])
def test_characters_the_decoder_would_skip_are_refused(noise: str) -> None:
    middle = len(TOKEN) // 2
    assert_invalid(TOKEN[:middle] + noise + TOKEN[middle:])


def test_standard_base64_alphabet_is_refused() -> None:
    # A token whose urlsafe form contains "-" or "_" must not be accepted as "+" or "/".
    token = next(
        t for t in (codec.encode(SCOPE, {"i": i}) for i in range(1000)) if "-" in t or "_" in t
    )
    assert_invalid(token.replace("-", "+").replace("_", "/"))


def test_wrong_scope_is_refused() -> None:
    assert_invalid(TOKEN, scope="ListSecrets:other")
    assert_invalid(TOKEN, scope=SCOPE + " ")
    assert_invalid(TOKEN, scope="")


def test_scope_boundary_cannot_shift() -> None:
    # The scope's length is signed, so bytes cannot move between scope and body.
    token = codec.encode("ab", {"x": 1})
    assert_invalid(token, scope="a")
    assert_invalid(token, scope="abc")


def test_other_key_is_refused() -> None:
    assert_invalid(TOKEN, key=OTHER_KEY)


def test_token_swapped_between_requests_is_refused() -> None:
    other_scope = request_scope("ListSecrets", {"Filters": [{"Key": "name", "Values": ["b"]}]})
    assert_invalid(codec.encode(other_scope, STATE))
    assert_invalid(codec.encode(request_scope("ListSecretVersionIds", {}), STATE), scope=SCOPE)


@pytest.mark.parametrize("token", ["", "A", "AA", "AAAA", "A" * 43, "A" * 44, "A" * 4097])
def test_junk_is_refused(token: str) -> None:
    assert_invalid(token)


@pytest.mark.parametrize("token", [None, 17, b"abc", ["x"]])
def test_non_strings_are_refused(token: Any) -> None:
    assert_invalid(token)


def test_unknown_version_is_refused_even_with_a_valid_tag() -> None:
    body = json.dumps(STATE, sort_keys=True, separators=(",", ":")).encode()
    assert codec.decode(SCOPE, forge(b"\x01" + body)) == STATE
    assert_invalid(forge(b"\x02" + body))
    assert_invalid(forge(b"\x00" + body))


@pytest.mark.parametrize("payload", [b"[1,2]", b'"s"', b"null", b"3", b"{", b"\xff\xfe", b""])
def test_signed_non_object_payload_is_refused(payload: bytes) -> None:
    assert_invalid(forge(b"\x01" + payload))


# --- limits and keys ------------------------------------------------------------------------


def test_oversized_state_cannot_be_encoded() -> None:
    with pytest.raises(ValueError, match="too large"):
        codec.encode(SCOPE, {"blob": "x" * 4000})
    # Just under the limit still works and round trips.
    state = {"blob": "x" * 2980}
    token = codec.encode(SCOPE, state)
    assert len(token) <= MAX_TOKEN_LENGTH
    assert codec.decode(SCOPE, token) == state


def test_state_must_be_json() -> None:
    with pytest.raises(TypeError):
        codec.encode(SCOPE, {"x": object()})
    with pytest.raises(ValueError):
        codec.encode(SCOPE, {"x": float("nan")})


def test_short_keys_are_rejected() -> None:
    with pytest.raises(ValueError):
        TokenCodec(b"k" * 31)
    TokenCodec(b"k" * 32)


def test_repr_hides_the_key() -> None:
    assert KEY.hex() not in repr(codec)
    assert repr(KEY) not in repr(codec)


# --- request_scope ------------------------------------------------------------------------------


def test_request_scope() -> None:
    filters = [{"Key": "name", "Values": ["a"]}]
    scope = request_scope("ListSecrets", {"Filters": filters, "SortOrder": "asc"})
    assert scope.startswith("ListSecrets:")
    assert scope == request_scope("ListSecrets", {"SortOrder": "asc", "Filters": filters})
    assert scope != request_scope("ListSecrets", {"Filters": filters, "SortOrder": "desc"})
    assert scope != request_scope("BatchGetSecretValue", {"Filters": filters, "SortOrder": "asc"})
    assert scope != request_scope("ListSecrets", {"Filters": filters})


def test_fingerprints_are_keyed_scoped_and_apart_from_tokens() -> None:
    codec = TokenCodec(b"k" * 32)
    print_ = codec.fingerprint("throttle", "user:1:bob")
    assert print_ == TokenCodec(b"k" * 32).fingerprint("throttle", "user:1:bob")  # any worker
    assert len(print_) == 64 and int(print_, 16) >= 0
    assert print_ != codec.fingerprint("throttle", "user:1:alice")
    assert print_ != codec.fingerprint("other", "user:1:bob")
    assert print_ != TokenCodec(b"o" * 32).fingerprint("throttle", "user:1:bob")
    # No token's tag is a fingerprint: the scopes never meet.
    token = codec.encode("throttle", {"n": 1})
    assert print_ not in token and codec.decode("throttle", token) == {"n": 1}
