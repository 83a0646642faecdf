"""GetRandomPassword (spec 3.12) end to end with boto3 against a real server.

Character classes are checked over many calls, so a flag that is ignored even part of
the time shows up.
"""

from __future__ import annotations

import string
from typing import Any

import pytest

from tests.aws import aws_error

UPPER, LOWER, DIGITS, PUNCT = (
    set(string.ascii_uppercase),
    set(string.ascii_lowercase),
    set(string.digits),
    set(string.punctuation),
)
# The punctuation ExcludePunctuation removes, as the API reference lists it.
AWS_PUNCTUATION = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
CALLS = 40

TOO_SHORT = "Password length is too short based on the required types."
TYPE_EMPTY = "All characters of the desired type have been excluded."
ALL_EXCLUDED = "All characters have been excluded from selection."


def passwords(sm: Any, count: int = CALLS, **kwargs: Any) -> list[str]:
    result = []
    for _ in range(count):
        answer = sm.get_random_password(**kwargs)
        assert set(answer) == {"RandomPassword", "ResponseMetadata"}
        result.append(answer["RandomPassword"])
    return result


def test_punctuation_set_is_the_documented_one() -> None:
    assert PUNCT == AWS_PUNCTUATION
    assert len(AWS_PUNCTUATION) == 32


def test_default_is_32_characters_of_every_type(sm: Any) -> None:
    generated = passwords(sm)
    for password in generated:
        assert len(password) == 32
        chars = set(password)
        assert chars & UPPER and chars & LOWER and chars & DIGITS and chars & PUNCT
        assert chars <= UPPER | LOWER | DIGITS | PUNCT  # no space unless asked
    assert len(set(generated)) == len(generated)


@pytest.mark.parametrize(
    ("flag", "excluded"),
    [
        ("ExcludeUppercase", UPPER),
        ("ExcludeLowercase", LOWER),
        ("ExcludeNumbers", DIGITS),
        ("ExcludePunctuation", PUNCT),
    ],
)
def test_each_exclude_flag_is_respected(sm: Any, flag: str, excluded: set[str]) -> None:
    kept = [chars for chars in (UPPER, LOWER, DIGITS, PUNCT) if chars is not excluded]
    for password in passwords(sm, **{flag: True}):
        assert len(password) == 32
        assert not set(password) & excluded
        for chars in kept:
            assert set(password) & chars  # the remaining types are still required


def test_all_exclude_flags_but_one(sm: Any) -> None:
    for password in passwords(
        sm, ExcludeUppercase=True, ExcludeLowercase=True, ExcludePunctuation=True, PasswordLength=20
    ):
        assert len(password) == 20
        assert set(password) <= DIGITS


def test_include_space(sm: Any) -> None:
    generated = passwords(sm, PasswordLength=200, IncludeSpace=True)
    assert any(" " in password for password in generated)
    for password in generated:
        assert set(password) <= UPPER | LOWER | DIGITS | PUNCT | {" "}
    # Explicitly off: never a space.
    for password in passwords(sm, PasswordLength=200, IncludeSpace=False):
        assert " " not in password


def test_space_alone_is_a_valid_pool(sm: Any) -> None:
    password = sm.get_random_password(
        PasswordLength=8,
        IncludeSpace=True,
        ExcludeUppercase=True,
        ExcludeLowercase=True,
        ExcludeNumbers=True,
        ExcludePunctuation=True,
    )["RandomPassword"]
    assert password == " " * 8


def test_exclude_characters_is_honoured(sm: Any) -> None:
    banned = set("abcdefABCDEF012345!@#$%^&*()\"'\\/`")
    for password in passwords(sm, PasswordLength=64, ExcludeCharacters="".join(sorted(banned))):
        assert len(password) == 64
        assert not set(password) & banned
        chars = set(password)
        assert chars & UPPER and chars & LOWER and chars & DIGITS and chars & PUNCT


def test_require_each_included_type_at_minimum_length(sm: Any) -> None:
    for password in passwords(sm, PasswordLength=4, RequireEachIncludedType=True):
        assert len(password) == 4
        assert sorted(
            next(i for i, chars in enumerate((UPPER, LOWER, DIGITS, PUNCT)) if c in chars)
            for c in password
        ) == [0, 1, 2, 3]


def test_without_require_each_included_type_types_may_be_missing(sm: Any) -> None:
    generated = passwords(sm, 60, PasswordLength=4, RequireEachIncludedType=False)
    assert all(len(password) == 4 for password in generated)

    def complete(password: str) -> bool:
        return all(set(password) & chars for chars in (UPPER, LOWER, DIGITS, PUNCT))

    # With every type required each one would be complete; here most are not.
    assert sum(not complete(password) for password in generated) > 10
    # A length shorter than the number of types is then allowed.
    assert (
        len(
            sm.get_random_password(PasswordLength=2, RequireEachIncludedType=False)[
                "RandomPassword"
            ]
        )
        == 2
    )


@pytest.mark.parametrize("length", [1, 4096])
def test_length_bounds_accepted(sm: Any, length: int) -> None:
    kwargs: dict[str, Any] = {"PasswordLength": length}
    if length == 1:
        kwargs.update(ExcludeUppercase=True, ExcludeLowercase=True, ExcludePunctuation=True)
    password = sm.get_random_password(**kwargs)["RandomPassword"]
    assert len(password) == length
    if length == 1:
        assert password in DIGITS


@pytest.mark.parametrize(
    ("length", "constraint"),
    [
        (4097, "Member must have value less than or equal to 4096"),
        (0, "Member must have value greater than or equal to 1"),
    ],
)
def test_length_beyond_bounds_is_a_validation_error(raw: Any, length: int, constraint: str) -> None:
    error = aws_error(
        lambda: raw.get_random_password(PasswordLength=length), code="ValidationException"
    )
    assert error["Message"] == (
        f"1 validation error detected: Value '{length}' at 'passwordLength' failed to "
        f"satisfy constraint: {constraint}"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"PasswordLength": 3}, TOO_SHORT, id="shorter-than-required-types"),
        pytest.param(
            {"PasswordLength": 2, "ExcludeNumbers": True},
            TOO_SHORT,
            id="shorter-than-remaining-types",
        ),
        pytest.param(
            {
                "ExcludeUppercase": True,
                "ExcludeLowercase": True,
                "ExcludeNumbers": True,
                "ExcludePunctuation": True,
            },
            ALL_EXCLUDED,
            id="every-type-excluded",
        ),
        pytest.param(
            {"ExcludeCharacters": string.digits},
            TYPE_EMPTY,
            id="required-type-emptied-by-exclude-characters",
        ),
        pytest.param(
            {
                "ExcludeCharacters": string.ascii_letters + string.digits + string.punctuation,
                "RequireEachIncludedType": False,
            },
            ALL_EXCLUDED,
            id="every-character-excluded",
        ),
    ],
)
def test_impossible_combinations(sm: Any, kwargs: dict[str, Any], message: str) -> None:
    aws_error(
        lambda: sm.get_random_password(**kwargs), code="InvalidParameterException", message=message
    )


def test_type_emptied_by_exclude_characters_is_skipped_when_not_required(sm: Any) -> None:
    for password in passwords(
        sm, 10, ExcludeCharacters=string.digits, RequireEachIncludedType=False
    ):
        assert not set(password) & DIGITS
        assert len(password) == 32
