"""Shamir's secret sharing over GF(2^8): the field, split/combine, and the share text."""

from __future__ import annotations

import itertools
import os
import random
import string
from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.keys import shamir
from strongroom.keys.shamir import Share, ShareError, combine, decode_share, encode_share, split


def seeded(seed: int) -> Callable[[int], bytes]:
    rng = random.Random(seed)
    return lambda n: bytes(rng.randrange(256) for _ in range(n))


def fixed(values: bytes) -> Callable[[int], bytes]:
    def random_bytes(n: int) -> bytes:
        assert n == len(values)
        return values

    return random_bytes


# --- the field -------------------------------------------------------------------------------


def slow_mul(a: int, b: int) -> int:
    """Carry-less multiplication modulo x^8 + x^4 + x^3 + x + 1, bit by bit."""
    product = 0
    while b:
        if b & 1:
            product ^= a
        a <<= 1
        if a & 0x100:
            a ^= 0x11B
        b >>= 1
    return product


def test_multiplication_matches_the_aes_field_for_every_pair() -> None:
    for a in range(256):
        for b in range(256):
            assert shamir.gf_mul(a, b) == slow_mul(a, b)


def test_every_non_zero_element_has_an_inverse_and_division_undoes_multiplication() -> None:
    for a in range(1, 256):
        inverses = [b for b in range(1, 256) if shamir.gf_mul(a, b) == 1]
        assert len(inverses) == 1
        for b in range(1, 256):
            assert shamir.gf_div(shamir.gf_mul(a, b), b) == a
    assert shamir.gf_div(0, 7) == 0
    with pytest.raises(ZeroDivisionError):
        shamir.gf_div(5, 0)


# --- split and combine -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shares", "threshold"),
    [(1, 1), (2, 2), (3, 2), (3, 3), (5, 3), (6, 2), (6, 4), (7, 7), (8, 5)],
)
def test_any_threshold_of_the_shares_recover_the_secret(shares: int, threshold: int) -> None:
    secret = os.urandom(32)
    parts = split(secret, shares, threshold)
    assert [part.index for part in parts] == list(range(1, shares + 1))
    for size in range(threshold, shares + 1):
        for subset in itertools.combinations(parts, size):
            assert combine(list(subset)) == secret
            assert combine(list(reversed(subset))) == secret


@pytest.mark.parametrize(("shares", "threshold"), [(2, 2), (3, 2), (5, 3), (6, 4), (7, 7)])
def test_fewer_than_threshold_shares_give_a_wrong_secret(shares: int, threshold: int) -> None:
    secret = os.urandom(32)
    parts = split(secret, shares, threshold)
    for size in range(1, threshold):
        for subset in itertools.combinations(parts, size):
            assert combine(list(subset)) != secret


def test_one_share_of_a_two_of_n_split_is_uniform_whatever_the_secret() -> None:
    # With threshold 2 the share at x is s + a*x; over every coefficient a, each share
    # value appears exactly once, for every secret s: a share alone says nothing.
    cases = [(x, secret) for x in (1, 2, 3, 17) for secret in range(256)]
    cases += [(255, secret) for secret in (0x00, 0x01, 0xFF)]
    for x, secret in cases:
        values = Counter(
            split(bytes([secret]), max(x, 2), 2, random_bytes=fixed(bytes([a])))[x - 1].value[0]
            for a in range(256)
        )
        assert len(values) == 256


def test_two_shares_of_a_three_of_n_split_are_uniform_whatever_the_secret() -> None:
    for secret in (0x00, 0xA5):
        pairs = Counter()
        for a, b in itertools.product(range(256), repeat=2):
            parts = split(bytes([secret]), 4, 3, random_bytes=fixed(bytes([a, b])))
            pairs[(parts[1].value[0], parts[3].value[0])] += 1
        assert len(pairs) == 65536  # every pair of share values, each exactly once


def test_the_secret_is_the_constant_term() -> None:
    parts = split(b"\x2a", 3, 2, random_bytes=fixed(b"\x00"))
    assert all(part.value == b"\x2a" for part in parts)  # a zero slope: every share is s


@settings(max_examples=60, deadline=None)
@given(
    secret=st.binary(min_size=1, max_size=48),
    shares=st.integers(min_value=2, max_value=12),
    data=st.data(),
)
def test_random_splits_recombine(secret: bytes, shares: int, data: st.DataObject) -> None:
    threshold = data.draw(st.integers(min_value=2, max_value=shares))
    parts = split(secret, shares, threshold)
    chosen = data.draw(st.permutations(parts))[:threshold]
    assert combine(chosen) == secret


def test_many_shares_and_high_indexes() -> None:
    secret = os.urandom(32)
    parts = split(secret, 255, 3)
    assert combine([parts[254], parts[127], parts[0]]) == secret
    assert combine(parts[200:203]) == secret


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        split(b"", 3, 2)
    for shares, threshold in [(3, 4), (0, 0), (256, 2), (3, 0)]:
        with pytest.raises(ValueError):
            split(b"k", shares, threshold)
    with pytest.raises(ValueError, match="threshold of 1"):
        split(b"k", 3, 1)
    with pytest.raises(ValueError, match="wrong number"):
        split(b"key", 3, 2, random_bytes=lambda _n: b"")


def test_combine_refuses_duplicates_mixed_lengths_and_nothing() -> None:
    parts = split(os.urandom(16), 3, 2)
    with pytest.raises(ShareError, match="twice"):
        combine([parts[0], parts[0]])
    with pytest.raises(ShareError, match="lengths"):
        combine([parts[0], Share(2, b"short")])
    with pytest.raises(ShareError):
        combine([])
    with pytest.raises(ShareError):
        Share(0, b"x")
    with pytest.raises(ShareError):
        Share(256, b"x")


# --- the text form -----------------------------------------------------------------------------


def test_share_text_round_trips_and_carries_set_and_index() -> None:
    set_id = shamir.new_set_id()
    for part in split(os.urandom(32), 5, 3):
        text = encode_share(part, set_id)
        assert text.startswith(f"srs1-{set_id}-{part.index:03d}-")
        assert decode_share(text) == (set_id, part)
        # Pasted with spaces, a newline or in upper case: still the same share.
        assert decode_share(f"  {text.upper()}\n") == (set_id, part)
        assert decode_share(text[:20] + " " + text[20:]) == (set_id, part)


def test_every_single_character_typo_is_detected() -> None:
    part = split(bytes(range(32)), 5, 3, random_bytes=seeded(7))[3]
    text = encode_share(part, "0badcafe")
    for position, original in enumerate(text):
        for replacement in string.hexdigits.lower() + "-xz":
            if replacement == original:
                continue
            typo = text[:position] + replacement + text[position + 1 :]
            with pytest.raises(ShareError):
                decode_share(typo)


def test_swapped_neighbours_dropped_and_doubled_characters_are_detected() -> None:
    part = split(bytes(range(32)), 5, 3, random_bytes=seeded(11))[1]
    text = encode_share(part, "12345678")
    for position in range(len(text) - 1):
        swapped = text[:position] + text[position + 1] + text[position] + text[position + 2 :]
        if swapped != text:
            with pytest.raises(ShareError):
                decode_share(swapped)
        with pytest.raises(ShareError):
            decode_share(text[:position] + text[position + 1 :])
        with pytest.raises(ShareError):
            decode_share(text[:position] + text[position] + text[position:])


def test_errors_and_reprs_never_show_the_share() -> None:
    part = split(os.urandom(32), 3, 2)[0]
    text = encode_share(part, "abcdef01")
    assert part.value.hex() not in repr(part)
    for broken in (text[:-1] + ("0" if text[-1] != "0" else "1"), text[:40], "hello " + text):
        with pytest.raises(ShareError) as raised:
            decode_share(broken)
        assert part.value.hex()[:16] not in str(raised.value)
        assert part.value.hex()[:16] not in repr(raised.value)


def test_not_a_share_at_all() -> None:
    with pytest.raises(ShareError, match="not a Strongroom unseal share"):
        decode_share("correct horse battery staple")
    with pytest.raises(ShareError, match="index"):
        # a well-formed text whose index is out of range (its checksum is irrelevant)
        decode_share("srs1-00000000-000-00-00000000")
    with pytest.raises(ValueError):
        encode_share(Share(1, b"x"), "not-hex!")
