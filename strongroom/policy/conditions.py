"""Condition operators, compiled once per policy and evaluated against request-context keys.

Semantics ("IAM JSON policy elements: Condition operators", "Conditions with multiple
context keys or values", "Single-valued vs. multivalued context keys", IAM User Guide):

- Keys under one operator, and operators in one block, are ANDed (the evaluator does
  that across :class:`Condition` objects). Several values for one key are ORed; for a
  negated operator (``StringNotEquals``, ``NotIpAddress``, ``ArnNotLike``, ...) they are
  NORed: the request value must match none of them.
- A key missing from the request makes the condition false, except for negated
  operators, which are then true ("If the policy condition requires that the key is not
  matched, such as StringNotLike or ArnNotLike, and the right key is not present, the
  condition is true"). ``...IfExists`` makes any operator true on a missing key;
  ``Null`` tests presence itself.
- ``ForAnyValue:`` is true if some request value satisfies the operator, false when the
  key is missing or empty. ``ForAllValues:`` is true if every request value does, and
  true when the key is missing or empty. With a negated operator, "satisfies" means
  "matches none of the policy values".
- Without a set prefix, a key with several values in the request matches if any of its
  values matches, and a negated operator is exactly the negation of its positive form.
  (AWS says multivalued keys need a set operator and does not document the bare form;
  this reading keeps ``StringNotEquals`` equal to ``not StringEquals``.)
- An empty value list in the request (``"aws:TagKeys": []``) is the same as a missing key;
  so, for ``ForAnyValue:`` and ``ForAllValues:``, is a list of empty strings (``[""]``),
  which AWS treats as a null data set.
- Policy variables are substituted in String, ARN and Bool values only; under the other
  operators ``${...}`` is literal text, which is not a valid number, date, address or
  base64 value and so matches nothing.

Values that cannot be read as the operator's type (a request value that is not a number
for ``NumericEquals``, a malformed address for ``IpAddress``) match nothing.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Protocol

from strongroom.policy.dates import parse_date
from strongroom.policy.document import split_operator
from strongroom.policy.matching import PatternMatcher
from strongroom.policy.variables import (
    ContextKeys,
    Template,
    arn_template,
    like_template,
    text_template,
)

# Each negated operator and the positive operator it negates.
NEGATIONS: Mapping[str, str] = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
    "NotIpAddress": "IpAddress",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


class _Matcher(Protocol):
    def __call__(self, value: str, keys: ContextKeys, /) -> bool:
        """Whether one request value matches any of the policy values."""


class _Text:
    """StringEquals, StringEqualsIgnoreCase, Bool: exact comparison, optionally case-folded."""

    __slots__ = ("_dynamic", "_fold", "_static")

    def __init__(self, templates: list[Template], *, fold: bool) -> None:
        self._fold = fold
        self._static = frozenset(self._norm(t.static) for t in templates if t.static is not None)
        self._dynamic = [t for t in templates if t.static is None]

    def _norm(self, text: str) -> str:
        return text.lower() if self._fold else text

    def __call__(self, value: str, keys: ContextKeys, /) -> bool:
        if self._fold:
            value = value.lower()
        if value in self._static:
            return True
        for template in self._dynamic:
            rendered = template.render(keys, str)  # None: a null value, matching nothing
            if rendered is not None and self._norm(rendered) == value:
                return True
        return False


class _Compare:
    """Numeric, Date, Binary and IP operators: typed comparison of parsed values."""

    __slots__ = ("_compare", "_parse", "_values")

    def __init__(
        self,
        wanted: Iterable[Any],
        parse: Callable[[str], Any],
        compare: Callable[[Any, Any], bool],
    ) -> None:
        self._values = [value for value in wanted if value is not None]
        self._parse = parse
        self._compare = compare

    def __call__(self, value: str, keys: ContextKeys, /) -> bool:
        parsed = self._parse(value)
        if parsed is None:
            return False
        compare = self._compare
        return any(compare(parsed, wanted) for wanted in self._values)


# --------------------------------------------------------------------------- value types

_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")


@lru_cache(maxsize=4096)
def parse_number(text: str) -> Decimal | None:
    if not _NUMBER.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid numbers
        return None


@lru_cache(maxsize=1024)
def parse_binary(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


Address = tuple[int, int]
"""An IP address as (version, integer)."""
Network = tuple[int, int, int]
"""A CIDR block as (version, network address as integer, netmask as integer)."""


@lru_cache(maxsize=4096)
def parse_address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return address.version, int(address)


def parse_network(text: str) -> Network | None:
    """A CIDR block; an address without a prefix is a /32 (or /128) block."""
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    return network.version, int(network.network_address), int(network.netmask)


def _in_network(address: Address, network: Network) -> bool:
    return address[0] == network[0] and address[1] & network[2] == network[1]


_ORDERINGS: Mapping[str, Callable[[Any, Any], bool]] = {
    "Equals": operator.eq,
    "LessThan": operator.lt,
    "LessThanEquals": operator.le,
    "GreaterThan": operator.gt,
    "GreaterThanEquals": operator.ge,
}


def _matcher(base: str, values: tuple[str, ...], variables: bool) -> _Matcher:
    """The positive matcher for ``base`` (never a negated operator)."""
    if base in ("StringEquals", "StringEqualsIgnoreCase", "Bool"):
        return _Text(
            [text_template(v, variables=variables) for v in values],
            fold=base != "StringEquals",
        )
    if base == "StringLike":
        return PatternMatcher([like_template(v, variables=variables) for v in values])
    if base in ("ArnEquals", "ArnLike"):
        # AWS documents both as the same segment-wise, case-sensitive wildcard match.
        return PatternMatcher(
            [arn_template(v, variables=variables, resource_part_only=False) for v in values]
        )
    if base.startswith("Numeric"):
        return _Compare(
            (parse_number(v) for v in values),
            parse_number,
            _ORDERINGS[base.removeprefix("Numeric")],
        )
    if base.startswith("Date"):
        return _Compare(
            (parse_date(v) for v in values), parse_date, _ORDERINGS[base.removeprefix("Date")]
        )
    if base == "BinaryEquals":
        return _Compare((parse_binary(v) for v in values), parse_binary, operator.eq)
    if base == "IpAddress":
        return _Compare((parse_network(v) for v in values), parse_address, _in_network)
    raise ValueError(f"no matcher for condition operator {base}")


class Condition:
    """One operator applied to one condition key with its policy values."""

    __slots__ = (
        "_any",
        "_if_exists",
        "_matcher",
        "_negated",
        "_null",
        "_prefix",
        "key",
        "operator",
    )

    def __init__(
        self, operator_name: str, key: str, values: tuple[str, ...], *, variables: bool
    ) -> None:
        prefix, base, if_exists = split_operator(operator_name)
        self.operator = operator_name
        self.key = key.lower()
        self._prefix = prefix
        self._if_exists = if_exists
        self._null: tuple[bool, ...] | None = None
        self._matcher: _Matcher | None = None
        self._negated = base in NEGATIONS
        if base == "Null":
            # "true": the key must be absent; "false": present. Several values are ORed.
            self._null = tuple(value.lower() == "true" for value in values)
        else:
            self._matcher = _matcher(NEGATIONS.get(base, base), values, variables)

    def __call__(self, keys: ContextKeys) -> bool:
        present = keys.get(self.key)
        if self._null is not None:
            return (not present) in self._null
        if present and self._prefix is not None and not any(present):
            # Every value is the empty string: for a set operator that is a null data set
            # ("Single-valued vs. multivalued context keys"), as if the key were missing.
            present = None
        if not present:
            if self._if_exists or self._prefix == "ForAllValues":
                return True
            if self._prefix == "ForAnyValue":
                return False
            return self._negated
        matcher = self._matcher
        assert matcher is not None
        negated = self._negated
        if self._prefix is None:
            for value in present:
                if matcher(value, keys):
                    return not negated
            return negated
        if self._prefix == "ForAnyValue":
            return any(matcher(value, keys) != negated for value in present)
        return all(matcher(value, keys) != negated for value in present)

    def __repr__(self) -> str:
        return f"Condition({self.operator!r}, {self.key!r})"


def compile_conditions(
    block: Mapping[str, Mapping[str, tuple[str, ...]]], *, variables: bool
) -> tuple[Condition, ...]:
    """Every (operator, key) pair of a statement's Condition block; all must hold."""
    return tuple(
        Condition(operator_name, key, values, variables=variables)
        for operator_name, keys in block.items()
        for key, values in keys.items()
    )
