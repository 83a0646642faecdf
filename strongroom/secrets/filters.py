"""ListSecrets / BatchGetSecretValue filters.

A request's ``Filters`` compile once into a :class:`SecretPredicate`, which is then asked
about each secret through the few :class:`SecretFacts` the filters can see.

Matching, per filter key (API reference ``Filter``; AWS-run tests where noted):

- ``name``, ``tag-key``, ``tag-value``, ``primary-region``, ``owning-service``: plain
  prefix of the attribute, case-sensitive. ``name`` values are not split into words:
  ``"testing1 one"`` matches no ``testing1/one-...`` secret (LocalStack AWS-validated
  ``test_list_secrets_filtering``).
- ``description``: documented as a prefix match, but AWS matches words: every word of the
  value must be a case-insensitive prefix of some word of the description (``"a secret"``
  matches "an secret" but not "asecret"; LocalStack AWS-validated test, moto AWS-run
  ``test_with_filter_with_value_with_multiple_words``).
- ``all``: the same word matching, against the name, the description, each tag key and
  each tag value, with all words of the value inside ONE of those attributes ("d t"
  matches a description "DescTwo", not a name "Dx" plus a tag "Ty"; moto AWS-run
  ``test_with_all_filter`` and the AWS blog on enhanced search).

How values and filters combine:

- Values of one filter OR; filters AND, including two filters on the same key (moto
  AWS-run ``test_with_duplicate_filter_keys``).
- A leading ``!`` negates that one value: the value then matches exactly the secrets the
  bare value does not (``name=!/`` is every name not starting with ``/``; ``description=!a``
  every secret without an a-word, including secrets without a description; LocalStack
  AWS-validated). Only the first ``!`` negates; ``!!x`` is the negation of ``!x``.
- Decision (unverified against AWS): a negated value is just one more alternative of its
  filter, so ``["a", "!b"]`` means "a OR not b", the literal reading of "values OR" and
  what moto does. "a AND NOT b" is two filters: ``[{name: [a]}, {name: [!b]}]``.
- Decision: on attributes with several values (tags, the ``all`` attributes) a negated
  value is the complement of the whole test: ``tag-key=!env`` keeps secrets with NO tag key
  starting with ``env`` (untagged secrets included), not secrets with some other tag.
- A value that splits into no words (``"+"``, ``""``) matches nothing under ``all`` and
  ``description`` (moto AWS-run: searching ``+`` finds nothing), so its negation matches
  everything. Under the prefix keys ``""`` is a prefix of everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from strongroom.protocol.errors import ServiceError, validation_error


@dataclass(frozen=True)
class SecretFacts:
    """What filters look at, one per secret."""

    name: str
    description: str | None = None
    tags: Sequence[tuple[str, str]] = ()  # (key, value)
    primary_region: str | None = None  # set only for replicated secrets (primary or replica)
    owning_service: str | None = None


# --- word splitting ---------------------------------------------------------------------

_SEPARATORS = frozenset("/_+=.@-")
# A word starts at an uppercase letter followed by a lowercase one, never at the start:
# MyTest -> My|Test, COMPANYthings -> COMPAN|Ythings, COMPANY stays whole (moto AWS-run
# test_with_all_filter_special_characters: "company" and "Ythings" match, "N", "pany",
# "things" do not).
# A word also ends where letters meet digits ("credsDatabase892" -> creds|Database|892, as
# the user guide's "Find secrets" page describes).
_CAMEL_BOUNDARY = re.compile(r"(?<=.)(?=[A-Z][a-z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])")
# Whitespace and ":" always separate (the same page: punctuation such as ":").
_TOKEN_SEPARATORS = re.compile(r"[\s:]+")


def split_words(text: str) -> list[str]:
    """Split ``text`` into words the way AWS's secret search does (case preserved).

    Whitespace and ``:`` separate tokens. A token with exactly one kind of separator
    among ``/ _ + = . @ -`` is cut at it (``prod/AppBeta/x``, ``prod+AppBeta+x``, ...), a
    token mixing two kinds stays one word, and every resulting piece is cut before each
    capitalised term and where letters and digits meet. Separators are never words:
    ``"+"`` has none.
    """
    words: list[str] = []
    for token in _TOKEN_SEPARATORS.split(text):
        if not token:
            continue
        separators = [c for c in _SEPARATORS if c in token]
        if len(separators) > 1:
            # Only one separator kind at a time is recognised (moto's reading of the AWS-run
            # test above); a mixed token is kept whole, not camel-split either.
            words.append(token)
            continue
        pieces = token.split(separators[0]) if separators else [token]
        for piece in pieces:
            words.extend(word for word in _CAMEL_BOUNDARY.split(piece) if word)
    return words


def _folded_words(text: str) -> tuple[str, ...]:
    # Split before folding: the case boundaries are what define the words.
    return tuple(word.lower() for word in split_words(text))


def _words_match(query: tuple[str, ...], attribute: tuple[str, ...]) -> bool:
    """Every query word is a prefix of some attribute word (both already folded)."""
    return bool(query) and all(any(w.startswith(q) for w in attribute) for q in query)


# --- compiled filters ---------------------------------------------------------------------


class _View:
    """One secret's facts, with its word lists split at most once per predicate call."""

    def __init__(self, facts: SecretFacts) -> None:
        self.facts = facts

    @cached_property
    def description_words(self) -> tuple[str, ...] | None:
        description = self.facts.description
        return None if description is None else _folded_words(description)

    @cached_property
    def attribute_words(self) -> tuple[tuple[str, ...], ...]:
        """Words of each attribute ``all`` searches, one tuple per attribute."""
        texts = [self.facts.name]
        if self.facts.description is not None:
            texts.append(self.facts.description)
        for key, value in self.facts.tags:
            texts += (key, value)
        return tuple(_folded_words(text) for text in texts)


@dataclass(frozen=True)
class _Value:
    text: str  # without the negating "!"
    negated: bool
    words: tuple[str, ...]  # folded words of text, for the word-matching keys


def _match_description(value: _Value, view: _View) -> bool:
    words = view.description_words
    return words is not None and _words_match(value.words, words)


def _match_all(value: _Value, view: _View) -> bool:
    return any(_words_match(value.words, words) for words in view.attribute_words)


def _optional_prefix(attribute: str | None, prefix: str) -> bool:
    return attribute is not None and attribute.startswith(prefix)


_Matcher = Callable[[_Value, _View], bool]

# In the botocore model's enum order, so the "unknown key" message lists them as AWS does.
_MATCHERS: dict[str, _Matcher] = {
    "description": _match_description,
    "name": lambda value, view: view.facts.name.startswith(value.text),
    "tag-key": lambda value, view: any(k.startswith(value.text) for k, _ in view.facts.tags),
    "tag-value": lambda value, view: any(v.startswith(value.text) for _, v in view.facts.tags),
    "primary-region": lambda value, view: _optional_prefix(view.facts.primary_region, value.text),
    "owning-service": lambda value, view: _optional_prefix(view.facts.owning_service, value.text),
    "all": _match_all,
}
FILTER_KEYS: tuple[str, ...] = tuple(_MATCHERS)


@dataclass(frozen=True)
class _Filter:
    matcher: _Matcher
    values: tuple[_Value, ...]

    def matches(self, view: _View) -> bool:
        # "!" flips one value's verdict; the values of a filter OR (see module docstring).
        return any(self.matcher(value, view) != value.negated for value in self.values)


class SecretPredicate:
    """The compiled form of a request's ``Filters``: call it with a secret's facts."""

    def __init__(self, filters: Sequence[_Filter]) -> None:
        self._filters = tuple(filters)

    def __call__(self, facts: SecretFacts) -> bool:
        view = _View(facts)
        return all(f.matches(view) for f in self._filters)


def compile_filters(filters: Sequence[Mapping[str, Any]]) -> SecretPredicate:
    """Validate ``filters`` (as in the API: ``[{"Key": "name", "Values": ["a", "!b"]}]``).

    The model layer has already checked lengths, patterns and the key enum; this checks
    what the model cannot express, with moto's texts (PEER: AWS's own are unrecorded):
    a filter without ``Key`` -> InvalidParameterException "Invalid filter key"; without
    ``Values`` -> InvalidParameterException "Invalid filter values for key: <key>".
    An empty ``filters`` matches every secret.
    """
    compiled: list[_Filter] = []
    for index, raw in enumerate(filters, start=1):
        key = raw.get("Key")
        if key is None:
            raise ServiceError("InvalidParameterException", "Invalid filter key")
        matcher = _MATCHERS.get(key) if isinstance(key, str) else None
        if matcher is None:
            # Normally stopped by the model's enum check; same AWS message if it was not.
            raise validation_error(
                f"1 validation error detected: Value '{key}' at 'filters.{index}.member.key' "
                "failed to satisfy constraint: Member must satisfy enum value set: "
                f"[{', '.join(FILTER_KEYS)}]"
            )
        values = raw.get("Values")
        if (
            not isinstance(values, list | tuple)
            or not values
            or not all(isinstance(v, str) for v in values)
        ):
            raise ServiceError("InvalidParameterException", f"Invalid filter values for key: {key}")
        compiled.append(_Filter(matcher, tuple(_compile_value(v) for v in values)))
    return SecretPredicate(compiled)


def _compile_value(raw: str) -> _Value:
    negated = raw.startswith("!")
    text = raw[1:] if negated else raw
    return _Value(text=text, negated=negated, words=_folded_words(text))
