"""GetRandomPassword generation: deterministic through seeded generators."""

from __future__ import annotations

import random
import secrets
import string
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.protocol.errors import ServiceError
from strongroom.secrets import passwords
from strongroom.secrets.passwords import generate_password

UPPER, LOWER, DIGITS, PUNCT = (
    string.ascii_uppercase,
    string.ascii_lowercase,
    string.digits,
    string.punctuation,
)
# The list the API reference gives for ExcludePunctuation.
AWS_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

TOO_SHORT = "Password length is too short based on the required types."
TYPE_EMPTY = "All characters of the desired type have been excluded."
ALL_EXCLUDED = "All characters have been excluded from selection."


def seeded(seed: int) -> random.Random:
    return random.Random(seed)


def many(count: int = 200, **kwargs: object) -> list[str]:
    return [generate_password(rng=seeded(seed), **kwargs) for seed in range(count)]  # type: ignore[arg-type]


def invalid(message: str, **kwargs: object) -> None:
    with pytest.raises(ServiceError) as raised:
        generate_password(rng=seeded(0), **kwargs)  # type: ignore[arg-type]
    assert raised.value.code == "InvalidParameterException"
    assert raised.value.message == message
    assert raised.value.status == 400


def test_punctuation_is_the_documented_set() -> None:
    assert sorted(PUNCT) == sorted(AWS_PUNCTUATION)
    assert len(PUNCT) == 32


def test_default_password() -> None:
    for password in many():
        assert len(password) == 32
        assert set(password) <= set(UPPER + LOWER + DIGITS + PUNCT)
        for chars in (UPPER, LOWER, DIGITS, PUNCT):
            assert set(password) & set(chars)


def test_whole_pool_is_used() -> None:
    # 4096 draws from 94 characters miss one with probability ~e^-43.
    assert set(generate_password(4096, rng=seeded(1))) == set(UPPER + LOWER + DIGITS + PUNCT)


@pytest.mark.parametrize(
    ("flag", "chars"),
    [
        ("exclude_uppercase", UPPER),
        ("exclude_lowercase", LOWER),
        ("exclude_numbers", DIGITS),
        ("exclude_punctuation", PUNCT),
    ],
)
def test_each_exclude_flag(flag: str, chars: str) -> None:
    passwords_ = many(**{flag: True})
    others = {UPPER, LOWER, DIGITS, PUNCT} - {chars}
    for password in passwords_:
        assert not set(password) & set(chars)
        for other in others:  # the remaining types are still required
            assert set(password) & set(other)


def test_only_one_type() -> None:
    for password in many(exclude_uppercase=True, exclude_lowercase=True, exclude_punctuation=True):
        assert password.isdigit()


def test_exclude_characters_never_appear() -> None:
    excluded = "xyzDje@?!.0O1lI"  # the LocalStack AWS-validated case, plus look-alikes
    for password in many(length=120, exclude_characters=excluded):
        assert len(password) == 120
        assert not set(password) & set(excluded)


def test_space_only_when_asked() -> None:
    assert all(" " not in p for p in many(length=200))
    with_space = many(count=50, length=2000, include_space=True)
    assert all(" " in p for p in with_space)  # missing from 2000 draws of 95: ~e^-21
    assert all(len(p) == 2000 for p in with_space)


def test_space_is_never_required() -> None:
    # With only the space left, nothing is required and every character is a space.
    only_space = dict(
        exclude_uppercase=True,
        exclude_lowercase=True,
        exclude_numbers=True,
        exclude_punctuation=True,
        include_space=True,
    )
    assert generate_password(5, rng=seeded(0), **only_space) == "     "  # type: ignore[arg-type]
    # Four required types fill a four-character password; a space cannot squeeze in.
    for password in many(length=4, include_space=True):
        assert " " not in password


def test_excluded_space_is_not_included() -> None:
    for password in many(length=300, include_space=True, exclude_characters=" "):
        assert " " not in password


def test_required_types_fill_a_minimal_password() -> None:
    for password in many(length=4):
        assert sorted(password_type(c) for c in password) == ["digit", "lower", "punct", "upper"]


def password_type(char: str) -> str:
    for name, chars in (("upper", UPPER), ("lower", LOWER), ("digit", DIGITS), ("punct", PUNCT)):
        if char in chars:
            return name
    return "space"


def test_required_characters_are_not_positional() -> None:
    # In a 4-character password each type occurs once; a generator that puts required
    # characters at fixed places would put e.g. the uppercase one always at the same index.
    positions: dict[str, Counter[int]] = {
        t: Counter() for t in ("upper", "lower", "digit", "punct")
    }
    for password in many(count=800, length=4):
        for index, char in enumerate(password):
            positions[password_type(char)][index] += 1
    for counts in positions.values():
        assert set(counts) == {0, 1, 2, 3}
        assert min(counts.values()) > 140  # 200 expected per position


def test_first_character_type_varies_in_long_passwords() -> None:
    first = Counter(password_type(p[0]) for p in many(count=400))
    assert set(first) == {"upper", "lower", "digit", "punct"}


def test_rare_required_character_lands_anywhere() -> None:
    # Only "7" is left as a digit, so it is (almost) only there because it is required.
    positions = Counter(
        p.index("7") for p in many(count=400, length=10, exclude_characters="012345689")
    )
    assert len(positions) == 10


def test_require_each_off_allows_missing_types() -> None:
    passwords_ = many(count=300, length=4, require_each_included_type=False)
    assert any(len({password_type(c) for c in p}) < 4 for p in passwords_)
    assert all(set(p) <= set(UPPER + LOWER + DIGITS + PUNCT) for p in passwords_)
    # And with it off, a length below the number of types is fine.
    assert len(generate_password(1, require_each_included_type=False, rng=seeded(0))) == 1


def test_seeded_rng_is_deterministic_and_default_is_not() -> None:
    assert generate_password(rng=seeded(42)) == generate_password(rng=seeded(42))
    assert generate_password(rng=seeded(42)) != generate_password(rng=seeded(43))
    # The default source is the OS CSPRNG, not a seeded or shared Mersenne Twister.
    assert isinstance(passwords._SYSTEM_RANDOM, secrets.SystemRandom)
    assert generate_password() != generate_password()


def test_default_rng_is_used_when_none_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_SYSTEM_RANDOM", seeded(7))
    assert generate_password() == generate_password(rng=seeded(7))


# --- refusals ------------------------------------------------------------------------------


def test_too_short_for_required_types() -> None:
    invalid(TOO_SHORT, length=3)
    invalid(TOO_SHORT, length=1)
    invalid(TOO_SHORT, length=2, exclude_numbers=True)
    assert len(generate_password(3, exclude_numbers=True, rng=seeded(0))) == 3


def test_everything_excluded_by_flags() -> None:
    invalid(
        ALL_EXCLUDED,
        exclude_uppercase=True,
        exclude_lowercase=True,
        exclude_numbers=True,
        exclude_punctuation=True,
    )
    invalid(
        ALL_EXCLUDED,
        exclude_uppercase=True,
        exclude_lowercase=True,
        exclude_numbers=True,
        exclude_punctuation=True,
        include_space=True,
        exclude_characters=" ",
    )


def test_everything_excluded_by_characters_without_required_types() -> None:
    invalid(
        ALL_EXCLUDED,
        exclude_characters=UPPER + LOWER + DIGITS + PUNCT,
        require_each_included_type=False,
    )


def test_required_type_emptied_by_exclude_characters() -> None:
    invalid(TYPE_EMPTY, exclude_characters=DIGITS)
    invalid(TYPE_EMPTY, exclude_characters=PUNCT, length=2)  # checked before the length
    # Switching the type off instead is fine, and so is not requiring it.
    assert not set(
        generate_password(exclude_characters=DIGITS, exclude_numbers=True, rng=seeded(0))
    ) & set(DIGITS)
    for password in many(exclude_characters=DIGITS, require_each_included_type=False):
        assert not set(password) & set(DIGITS)


@pytest.mark.parametrize(
    ("length", "constraint"),
    [
        (0, "greater than or equal to 1"),
        (-5, "greater than or equal to 1"),
        (4097, "less than or equal to 4096"),
    ],
)
def test_length_bounds(length: int, constraint: str) -> None:
    with pytest.raises(ServiceError) as raised:
        generate_password(length, rng=seeded(0))
    assert raised.value.code == "ValidationException"
    assert raised.value.message == (
        f"1 validation error detected: Value '{length}' at 'passwordLength' failed to "
        f"satisfy constraint: Member must have value {constraint}"
    )


def test_length_bounds_inclusive() -> None:
    assert len(generate_password(4096, rng=seeded(0))) == 4096
    assert len(generate_password(1, require_each_included_type=False, rng=seeded(0))) == 1


# --- the whole contract, for arbitrary settings ---------------------------------------------


@given(
    length=st.integers(1, 40),
    exclude=st.text(
        alphabet=st.sampled_from(UPPER[:3] + LOWER[:3] + DIGITS + PUNCT + " "), max_size=60
    ),
    flags=st.fixed_dictionaries(
        {
            "exclude_uppercase": st.booleans(),
            "exclude_lowercase": st.booleans(),
            "exclude_numbers": st.booleans(),
            "exclude_punctuation": st.booleans(),
            "include_space": st.booleans(),
            "require_each_included_type": st.booleans(),
        }
    ),
    seed=st.integers(0, 2**32),
)
def test_contract(length: int, exclude: str, flags: dict[str, bool], seed: int) -> None:
    kinds = {
        UPPER: flags["exclude_uppercase"],
        LOWER: flags["exclude_lowercase"],
        DIGITS: flags["exclude_numbers"],
        PUNCT: flags["exclude_punctuation"],
    }
    types = [set(chars) - set(exclude) for chars, off in kinds.items() if not off]
    allowed = set().union(*types) | ({" "} - set(exclude) if flags["include_space"] else set())
    required = types if flags["require_each_included_type"] else []

    try:
        password = generate_password(length, exclude, rng=seeded(seed), **flags)
    except ServiceError as error:
        assert error.code == "InvalidParameterException"
        if any(not t for t in required):
            assert error.message == TYPE_EMPTY
        elif not allowed:
            assert error.message == ALL_EXCLUDED
        else:
            assert len(required) > length
            assert error.message == TOO_SHORT
        return

    assert all(required) and allowed and len(required) <= length  # no refusal was due
    assert len(password) == length
    assert set(password) <= allowed
    for chars in required:
        assert set(password) & chars
