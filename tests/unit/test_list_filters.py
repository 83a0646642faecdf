"""ListSecrets / BatchGetSecretValue filter matching.

Cases marked AWS come from tests that were run against AWS: LocalStack's
``test_list_secrets_filtering`` (markers.aws.validated) and moto's ``@aws_verified``
list tests (``test_with_all_filter``, ``test_with_all_filter_special_characters``,
``test_with_filter_with_value_with_multiple_words``, ``test_with_duplicate_filter_keys``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.protocol.errors import ServiceError
from strongroom.protocol.model import service_model
from strongroom.secrets.filters import (
    FILTER_KEYS,
    SecretFacts,
    SecretPredicate,
    compile_filters,
    split_words,
)


def matching(filters: Sequence[dict[str, Any]], secrets: Sequence[SecretFacts]) -> list[str]:
    predicate = compile_filters(filters)
    return [s.name for s in secrets if predicate(s)]


def f(key: str, *values: str) -> dict[str, Any]:
    return {"Key": key, "Values": list(values)}


# --- split_words ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("test", ["test"]),
        ("my test", ["my", "test"]),
        ("my  \t test\n", ["my", "test"]),
        ("Mytest", ["Mytest"]),
        ("MyTest", ["My", "Test"]),
        ("myTest", ["my", "Test"]),
        ("MyTestPhrase", ["My", "Test", "Phrase"]),
        ("ThisTestSecret", ["This", "Test", "Secret"]),
        # A capitalised term starts at the uppercase letter right before lowercase (AWS).
        ("COMPANYthings", ["COMPAN", "Ythings"]),
        ("COMPANY", ["COMPANY"]),
        ("SecretFTag", ["SecretF", "Tag"]),
        ("myAPI", ["myAPI"]),
        ("Secret2Go", ["Secret", "2", "Go"]),
        # Issue 23 item 2: letters and digits part, ":" separates (user guide, "Find
        # secrets": "credsDatabase892" is creds, Database and 892).
        ("credsDatabase892", ["creds", "Database", "892"]),
        ("team:payments:db", ["team", "payments", "db"]),
        ("v2:AppBeta", ["v", "2", "App", "Beta"]),
        # One kind of separator splits (AWS: each of these is found by "AppBeta" and "Beta").
        ("prod/AppBeta/x1", ["prod", "App", "Beta", "x", "1"]),
        ("prod_AppBeta_x1", ["prod", "App", "Beta", "x", "1"]),
        ("prod+AppBeta+x1", ["prod", "App", "Beta", "x", "1"]),
        ("prod=AppBeta=x1", ["prod", "App", "Beta", "x", "1"]),
        ("prod.AppBeta.x1", ["prod", "App", "Beta", "x", "1"]),
        ("prod@AppBeta@x1", ["prod", "App", "Beta", "x", "1"]),
        ("prod-AppBeta-x1", ["prod", "App", "Beta", "x", "1"]),
        ("uat/COMPANYthings/x1", ["uat", "COMPAN", "Ythings", "x", "1"]),
        ("/leading//double/", ["leading", "double"]),
        # Two kinds in one token: kept whole, not even camel-split.
        ("prod-AppBeta/x1", ["prod-AppBeta/x1"]),
        ("my/secret+Value", ["my/secret+Value"]),
        # ...but whitespace still separates tokens, each judged alone.
        ("prod-AppBeta/x1 and my_Test", ["prod-AppBeta/x1", "and", "my", "Test"]),
        # Separators alone are no words (AWS: searching "+" finds nothing).
        ("+", []),
        ("/", []),
        ("", []),
        ("   ", []),
    ],
)
def test_split_words(text: str, words: list[str]) -> None:
    assert split_words(text) == words


@given(st.text(alphabet=st.sampled_from("aZ9 /_+=.@-:!"), max_size=30))
def test_split_words_never_yields_empty_or_spaced_words(text: str) -> None:
    words = split_words(text)
    assert all(words)
    assert not any(c.isspace() for w in words for c in w)
    # Splitting never invents characters: the words appear in order in the text.
    rest = text
    for word in words:
        position = rest.find(word)
        assert position >= 0
        rest = rest[position + len(word) :]


# --- keys -----------------------------------------------------------------------------------


def test_filter_keys_are_the_models_enum() -> None:
    # The botocore model is the source of truth; a new key there must be handled here.
    model_keys = service_model("secretsmanager").shape_for("FilterNameStringType").enum
    assert list(FILTER_KEYS) == model_keys


# --- name -----------------------------------------------------------------------------------

SLASHED = [
    SecretFacts("testing1/one-12345", description="a secret"),
    SecretFacts("/testing2/two-12345", description="an secret"),
    SecretFacts("testing3/three-12345", description="asecret"),
    SecretFacts("/testing4/four-12345", description="thesecret"),
]


def test_name_is_a_prefix_match() -> None:  # AWS
    assert matching([f("name", "/")], SLASHED) == ["/testing2/two-12345", "/testing4/four-12345"]


def test_name_negated() -> None:  # AWS
    assert matching([f("name", "!/")], SLASHED) == ["testing1/one-12345", "testing3/three-12345"]


def test_name_is_not_split_into_words() -> None:  # AWS
    assert matching([f("name", "testing1 one")], SLASHED) == []
    assert matching([f("name", "one")], SLASHED) == []


def test_name_is_case_sensitive() -> None:  # DOC: "Data" finds DatabaseSecret only
    secrets = [SecretFacts("DatabaseSecret"), SecretFacts("databaseSecret"), SecretFacts("MyData")]
    assert matching([f("name", "Data")], secrets) == ["DatabaseSecret"]


def test_name_values_or() -> None:
    secrets = [SecretFacts("foo"), SecretFacts("bar"), SecretFacts("baz")]
    assert matching([f("name", "foo", "bar")], secrets) == ["foo", "bar"]


def test_empty_prefix_matches_every_name() -> None:
    secrets = [SecretFacts("foo"), SecretFacts("bar")]
    assert matching([f("name", "")], secrets) == ["foo", "bar"]
    assert matching([f("name", "!")], secrets) == []


def test_only_the_first_bang_negates() -> None:
    secrets = [SecretFacts("!x"), SecretFacts("x"), SecretFacts("y")]
    assert matching([f("name", "!!x")], secrets) == ["x", "y"]


# --- description ----------------------------------------------------------------------------


def test_description_word_prefix() -> None:  # AWS
    assert matching([f("description", "a")], SLASHED) == [
        "testing1/one-12345",
        "/testing2/two-12345",
        "testing3/three-12345",
    ]


def test_description_negated() -> None:  # AWS
    assert matching([f("description", "!a")], SLASHED) == ["/testing4/four-12345"]
    assert matching([f("description", "!c")], SLASHED) == [s.name for s in SLASHED]


def test_description_every_word_must_match() -> None:  # AWS
    assert matching([f("description", "a secret")], SLASHED) == [
        "testing1/one-12345",
        "/testing2/two-12345",
    ]


def test_description_and_name_filters_and() -> None:  # AWS
    assert matching([f("description", "a"), f("name", "secret")], SLASHED) == []
    assert matching([f("description", "a"), f("name", "an")], SLASHED) == []


WORDY = [
    SecretFacts("foo", description="one two"),
    SecretFacts("bar", description="one and two"),
    SecretFacts("baz", description="one"),
    SecretFacts("qux", description="two"),
    SecretFacts("none", description="unrelated"),
]


def test_description_multiple_words() -> None:  # AWS
    assert matching([f("description", "one two")], WORDY) == ["foo", "bar"]
    assert matching([f("description", "o t")], WORDY) == ["foo", "bar"]
    # "unrelated" contains a t, but no word starts with one.
    assert matching([f("description", "t")], WORDY) == ["foo", "bar", "qux"]


def test_description_words_in_any_order_any_case() -> None:  # DOC example
    secrets = [
        SecretFacts("a", description="My Description"),
        SecretFacts("b", description="my description"),
        SecretFacts("c", description="My basic description"),
        SecretFacts("d", description="Description of my secret"),
        SecretFacts("e", description="Mine, not described"),
        SecretFacts("f", description="my descriptions"),
    ]
    assert matching([f("description", "My Description")], secrets) == ["a", "b", "c", "d", "f"]


def test_duplicate_keys_and() -> None:  # AWS
    secrets = [
        SecretFacts("foo", description="one two"),
        SecretFacts("bar", description="one"),
        SecretFacts("baz", description="two"),
        SecretFacts("qux", description="unrelated"),
    ]
    assert matching([f("description", "one"), f("description", "two")], secrets) == ["foo"]


def test_description_missing() -> None:
    secrets = [SecretFacts("nodesc"), SecretFacts("desc", description="alpha")]
    assert matching([f("description", "a")], secrets) == ["desc"]
    # A secret without a description is not described by "a", so "!a" keeps it.
    assert matching([f("description", "!a")], secrets) == ["nodesc"]


def test_description_value_without_words_matches_nothing() -> None:
    secrets = [SecretFacts("x", description="plus + minus")]
    assert matching([f("description", "+")], secrets) == []
    assert matching([f("description", "!+")], secrets) == ["x"]


def test_description_camel_words() -> None:
    secrets = [SecretFacts("x", description="DescTwo")]
    assert matching([f("description", "two")], secrets) == ["x"]
    assert matching([f("description", "esc")], secrets) == []


# --- tags, primary-region, owning-service ---------------------------------------------------


TAGGED = [
    SecretFacts("production", tags=[("Production", "Prod1")]),
    SecretFacts("lower", tags=[("prod", "prod")]),
    SecretFacts("spaced", tags=[("1 Prod", "1 Prod")]),
    SecretFacts("untagged"),
    SecretFacts("two-tags", tags=[("env", "dev"), ("Prod1", "x")]),
]


def test_tag_key_prefix_case_sensitive() -> None:  # DOC: Prod finds Production and Prod1
    assert matching([f("tag-key", "Prod")], TAGGED) == ["production", "two-tags"]


def test_tag_value_prefix_case_sensitive() -> None:  # DOC
    assert matching([f("tag-value", "Prod")], TAGGED) == ["production"]
    assert matching([f("tag-value", "prod")], TAGGED) == ["lower"]


def test_tag_key_negated_means_no_such_tag() -> None:
    # "two-tags" has a key not starting with Prod ("env"), but it HAS one that does.
    assert matching([f("tag-key", "!Prod")], TAGGED) == ["lower", "spaced", "untagged"]


def test_tag_key_and_value_are_independent_filters() -> None:
    secrets = [
        SecretFacts("foo", tags=[("right", "right")]),
        SecretFacts("bar", tags=[("right", "wrong")]),
        SecretFacts("baz", tags=[("wrong", "right")]),
        SecretFacts("qux", tags=[("wrong", "wrong")]),
    ]
    assert matching([f("tag-key", "right"), f("tag-value", "right")], secrets) == ["foo"]


def test_primary_region_only_replicated_secrets() -> None:
    secrets = [
        SecretFacts("plain"),
        SecretFacts("primary", primary_region="us-east-1"),
        SecretFacts("replica", primary_region="eu-west-1"),
    ]
    assert matching([f("primary-region", "us-")], secrets) == ["primary"]
    assert matching([f("primary-region", "")], secrets) == ["primary", "replica"]
    assert matching([f("primary-region", "US-")], secrets) == []
    assert matching([f("primary-region", "!us-")], secrets) == ["plain", "replica"]


def test_owning_service_prefix_case_sensitive() -> None:
    secrets = [
        SecretFacts("mine"),
        SecretFacts("rds", owning_service="rds"),
        SecretFacts("svc", owning_service="my-service"),
    ]
    assert matching([f("owning-service", "my-ser")], secrets) == ["svc"]
    assert matching([f("owning-service", "My-ser")], secrets) == []
    assert matching([f("owning-service", "n/a")], secrets) == []
    assert matching([f("owning-service", "!rds")], secrets) == ["mine", "svc"]


# --- all ------------------------------------------------------------------------------------

U = "4e7a9c"  # the AWS-run tests append a random 6-hex suffix like this
ALL_SECRETS = [
    SecretFacts(f"SecretOne{U}"),
    SecretFacts(f"SecretTwo{U}", description="DescTwo"),
    SecretFacts(f"Thirdsecret{U}"),
    SecretFacts(f"SecretFTag{U}", tags=[("1", "foo")]),
    SecretFacts(f"SecretFValue{U}", tags=[("foo", "v")]),
    SecretFacts(f"none{U}"),
]
ONE, TWO, THIRD, FTAG, FVALUE, NONE = (s.name for s in ALL_SECRETS)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("SecretOne", [ONE]),  # full match: both words in the name
        ("foo", [FTAG, FVALUE]),  # tag value, tag key
        ("Secret", [ONE, TWO, FTAG, FVALUE]),
        ("secret", [ONE, TWO, FTAG, FVALUE]),  # case-insensitive
        ("sec", [ONE, TWO, FTAG, FVALUE]),  # word prefix...
        ("ret", []),  # ...not substring: "Thirdsecret" is one word
        ("SomeSecret", []),  # every word must match
        ("d", [TWO]),  # the description's "Desc"
        ("d t", [TWO]),  # Desc + Two, both in the description
        ("t", [TWO, THIRD, FTAG]),  # Two, Thirdsecret, Tag
    ],
)
def test_all(value: str, expected: list[str]) -> None:  # AWS
    assert matching([f("all", value)], ALL_SECRETS) == expected


SPECIAL = [f"prod{sep}AppBeta{sep}{U}" for sep in "/_+=.@-"]
UPPER_FULL = f"uat/COMPANY/{U}"
UPPER_PARTIAL = f"uat/COMPANYthings/{U}"
SPECIAL_SECRETS = [SecretFacts(n) for n in [*SPECIAL, UPPER_FULL, UPPER_PARTIAL]]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["AppBeta"], SPECIAL),
        (["Beta"], SPECIAL),
        (["AppBeta", "prod"], SPECIAL),
        (["+"], []),
        ([U], [*SPECIAL, UPPER_FULL, UPPER_PARTIAL]),
        (["company"], [UPPER_FULL]),
        (["things"], []),
        (["Ythings"], [UPPER_PARTIAL]),
        (["N"], []),
        (["pany"], []),
    ],
)
def test_all_special_characters(values: list[str], expected: list[str]) -> None:  # AWS
    assert matching([f("all", *values)], SPECIAL_SECRETS) == expected


def test_all_words_must_share_one_attribute() -> None:
    # "d" is in the name and "t" in a tag, but no single attribute has both.
    split = [
        SecretFacts("Dx", tags=[("Ty", "z")]),
        SecretFacts("Dx Ty"),
        SecretFacts("q", description="x", tags=[("dog", "tail")]),
        SecretFacts("r", tags=[("dog tail", "")]),
    ]
    assert matching([f("all", "d t")], split) == ["Dx Ty", "r"]


def test_all_searches_each_attribute_kind() -> None:
    secrets = [
        SecretFacts("by-name-alpha"),
        SecretFacts("x1", description="alpha"),
        SecretFacts("x2", tags=[("alphaKey", "v")]),
        SecretFacts("x3", tags=[("k", "Alpha value")]),
        SecretFacts("x4", description="beta", tags=[("k", "v")]),
    ]
    assert matching([f("all", "ALPHA")], secrets) == ["by-name-alpha", "x1", "x2", "x3"]


def test_all_negated_is_the_complement() -> None:
    assert matching([f("all", "!d t")], ALL_SECRETS) == [ONE, THIRD, FTAG, FVALUE, NONE]
    assert matching([f("all", "!+")], ALL_SECRETS) == [s.name for s in ALL_SECRETS]


def test_all_and_another_filter() -> None:
    assert matching([f("all", "secret"), f("tag-key", "foo")], ALL_SECRETS) == [FVALUE]


# --- combining negation inside one filter (decision: every value is an OR alternative) ---


def test_negated_value_is_one_more_alternative() -> None:
    # "one" OR NOT "two": foo and bar have "one" (and "two"), baz has "one", none lacks "two".
    assert matching([f("description", "one", "!two")], WORDY) == ["foo", "bar", "baz", "none"]


def test_two_negations_in_one_filter_or() -> None:
    # NOT one OR NOT two: only secrets with both words drop out.
    assert matching([f("description", "!one", "!two")], WORDY) == ["baz", "qux", "none"]


def test_and_not_needs_two_filters() -> None:
    assert matching([f("description", "one"), f("description", "!two")], WORDY) == ["baz"]


# --- validation -----------------------------------------------------------------------------


def test_no_filters_match_everything() -> None:
    predicate = compile_filters([])
    assert isinstance(predicate, SecretPredicate)
    assert predicate(SecretFacts("anything"))


def test_missing_key() -> None:
    with pytest.raises(ServiceError) as raised:
        compile_filters([{"Values": ["foo"]}])
    assert raised.value.code == "InvalidParameterException"
    assert raised.value.message == "Invalid filter key"


@pytest.mark.parametrize("values", [None, [], "foo", [1], ["ok", None]])
def test_bad_values(values: Any) -> None:
    raw: dict[str, Any] = {"Key": "description"}
    if values is not None:
        raw["Values"] = values
    with pytest.raises(ServiceError) as raised:
        compile_filters([f("name", "ok"), raw])
    assert raised.value.code == "InvalidParameterException"
    assert raised.value.message == "Invalid filter values for key: description"


def test_unknown_key_is_a_validation_error() -> None:
    with pytest.raises(ServiceError) as raised:
        compile_filters([f("name", "x"), f("invalid", "foo")])
    assert raised.value.code == "ValidationException"
    assert raised.value.message == (
        "1 validation error detected: Value 'invalid' at 'filters.2.member.key' failed to "
        "satisfy constraint: Member must satisfy enum value set: [description, name, tag-key, "
        "tag-value, primary-region, owning-service, all]"
    )


def test_values_may_be_a_tuple() -> None:
    assert compile_filters([{"Key": "name", "Values": ("a",)}])(SecretFacts("ab"))


# --- properties -----------------------------------------------------------------------------

names = st.text(alphabet=st.sampled_from("abAB/-_ 1"), min_size=1, max_size=12)
facts = st.builds(
    SecretFacts,
    name=names,
    description=st.none() | names,
    tags=st.lists(st.tuples(names, names), max_size=3),
    primary_region=st.none() | st.sampled_from(["us-east-1", "eu-west-1"]),
    owning_service=st.none() | st.sampled_from(["rds", "appflow"]),
)
values = st.text(alphabet=st.sampled_from("abAB/- 1"), max_size=6)


@given(facts, st.sampled_from(FILTER_KEYS), values)
def test_negation_is_the_complement(secret: SecretFacts, key: str, value: str) -> None:
    positive = compile_filters([f(key, value)])(secret)
    assert compile_filters([f(key, "!" + value)])(secret) != positive


@given(facts, st.sampled_from(FILTER_KEYS), st.lists(values, min_size=1, max_size=4))
def test_values_or(secret: SecretFacts, key: str, vals: list[str]) -> None:
    combined = compile_filters([f(key, *vals)])(secret)
    assert combined == any(compile_filters([f(key, v)])(secret) for v in vals)


@given(
    facts,
    st.lists(st.tuples(st.sampled_from(FILTER_KEYS), values), min_size=1, max_size=4),
)
def test_filters_and(secret: SecretFacts, filters: list[tuple[str, str]]) -> None:
    combined = compile_filters([f(k, v) for k, v in filters])(secret)
    assert combined == all(compile_filters([f(k, v)])(secret) for k, v in filters)


@given(facts, values)
def test_all_covers_name_description_and_tags(secret: SecretFacts, value: str) -> None:
    # "all" finds a secret iff one of its attributes, on its own, would be found.
    def found(s: SecretFacts) -> bool:
        return compile_filters([f("all", value)])(s)

    singles = [SecretFacts(secret.name)]
    if secret.description is not None:
        singles.append(SecretFacts("", description=secret.description))
    singles += [SecretFacts("", tags=[(k, "")]) for k, _ in secret.tags]
    singles += [SecretFacts("", tags=[("", v)]) for _, v in secret.tags]
    assert found(secret) == any(found(s) for s in singles)


@given(facts, st.sampled_from(["description", "all"]), values)
def test_word_keys_ignore_the_values_case(secret: SecretFacts, key: str, value: str) -> None:
    # Single-case spellings split alike, so they must find the same secrets.
    lower = compile_filters([f(key, value.lower())])(secret)
    assert lower == compile_filters([f(key, value.upper())])(secret)
