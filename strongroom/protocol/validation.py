"""Constraint validation of decoded input against botocore shapes, shared by every codec.

A codec first decodes the wire format into Python values keyed by model member names
(stopping at the first value of the wrong type, with its protocol's error); then
:func:`validate` walks the decoded input against the model and collects every
constraint violation (required, length, range, pattern, enum), answered together the
way AWS's Coral framework answers them:

    2 validation errors detected: Value 'x y' at 'userName' failed to satisfy
    constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+; ...

Paths are the members' model names with the first letter lower-cased, list elements
``tags.3.member`` and map values ``tags.<key>.member``. A value under a shape marked
``sensitive`` (or raw bytes) is never quoted; nor is a map key of a sensitive key shape.
The path helpers are public so a codec's own type errors name places the same way.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from botocore.model import Shape

from strongroom.protocol.errors import ServiceError
from strongroom.protocol.model import planned_on_first_use, shape_plan

# Beyond this an echoed value is cut: messages stay readable and a huge input cannot
# inflate the error response.
MAX_ECHO = 100
# The count in the message covers every violation; only this many are spelled out, so
# an input full of bad list elements cannot produce a response many times its size.
MAX_LISTED = 20

INT_RANGES = {
    "byte": (-(2**7), 2**7 - 1),
    "short": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
}
_SCALAR_TYPES = frozenset({"string", "boolean", "float", "double", *INT_RANGES})


def validate(shape: Shape, value: Any, error: Callable[[str], ServiceError]) -> None:
    """Raise ``error(message)`` if decoded ``value`` breaks a constraint of ``shape``.

    ``error`` builds the protocol's error: ``ValidationException`` for the JSON
    protocols, ``ValidationError`` for the Query protocol.
    """
    check = checker_for(shape)
    if check is None:
        return
    found = _Violations()
    check(value, "", found)
    if found.count:
        plural = "s" if found.count > 1 else ""
        raise error(f"{found.count} validation error{plural} detected: " + "; ".join(found.listed))


# ----------------------------------------------------------------------------- paths


def member_path(path: str, name: str) -> str:
    """The path of member ``name`` of the structure at ``path``."""
    return f"{path}.{camel(name)}" if path else camel(name)


def item_path(path: str, index: int) -> str:
    """The path of the ``index``-th (from 1) element of the list at ``path``."""
    return f"{path}.{index}.member"


def key_path(path: str) -> str:
    """The path of a key of the map at ``path``."""
    return f"{path}.key"


def entry_path(path: str, key: str, sensitive: bool) -> str:
    """The path of the value under ``key`` in the map at ``path``; a sensitive key is hidden."""
    return f"{path}.{_path_segment(key, sensitive)}.member"


def camel(name: str) -> str:
    # Coral lower-cases only the first letter: "RotationLambdaARN" -> "rotationLambdaARN".
    return name[:1].lower() + name[1:]


def is_sensitive(shape: Shape) -> bool:
    return bool(shape.metadata.get("sensitive"))


def _path_segment(key: str, sensitive: bool) -> str:
    if sensitive:
        return "*"
    return key if len(key) <= MAX_ECHO else key[:MAX_ECHO] + "..."


# ------------------------------------------------------------------------------ walk


class _Violations:
    """The constraint violations one walk over decoded input found."""

    __slots__ = ("count", "listed")

    def __init__(self) -> None:
        self.count = 0
        self.listed: list[str] = []

    def add(self, path: str, echoed: str | None, constraint: str) -> None:
        self.count += 1
        if len(self.listed) < MAX_LISTED:
            subject = "Value" if echoed is None else f"Value {echoed}"
            self.listed.append(f"{subject} at '{path}' failed to satisfy constraint: {constraint}")


# The check of one shape: (decoded value, its path, where violations go). None: the shape
# (and everything under it) has no constraint to check.
Check = Callable[[Any, str, _Violations], None]
_CHECK = "_strongroom_check"  # the slot in a shape's __dict__ holding its root check


def checker_for(shape: Shape) -> Check | None:
    """The check of ``shape`` as a root (nothing around it sensitive), worked out once per
    shape object: botocore's models are loaded once and their shapes cached, so a request
    only runs the plan (which members to look at, their paths, their constraints)."""
    return shape_plan(shape, _CHECK, lambda root: _plan(root, False, frozenset()))


def _plan(shape: Shape, sensitive: bool, active: frozenset[str]) -> Check | None:
    """The check of ``shape`` under an ancestor that is (or is not) ``sensitive``.
    ``active`` names the shapes being planned around it: a recursive shape is planned
    lazily, on first use."""
    # Sensitivity is inherited: nothing under a sensitive shape is ever echoed.
    sensitive = sensitive or is_sensitive(shape)
    kind = shape.type_name
    if kind in ("structure", "list", "map"):
        if shape.name in active:
            return planned_on_first_use(lambda: _plan(shape, sensitive, frozenset()))
        active = active | {shape.name}
    if kind == "structure":
        return _structure(shape, sensitive, active)
    if kind == "list":
        return _list(shape, sensitive, active)
    if kind == "map":
        return _map(shape, sensitive, active)
    if kind == "string":
        return _string(shape, sensitive)
    if kind in INT_RANGES or kind in ("float", "double"):
        return _range(shape, sensitive)
    if kind == "blob":
        # Raw bytes are never echoed, so the value is withheld even when not sensitive.
        return _length_only(_length(shape, sensitive=True))
    return None


def _structure(shape: Shape, sensitive: bool, active: frozenset[str]) -> Check | None:
    if shape.is_document_type:
        return None
    required = set(shape.required_members)
    # (name, path segment, required, check): members with nothing to check are left out.
    members = []
    for name, member in shape.members.items():
        check = _plan(member, sensitive, active)
        if check is not None or name in required:
            members.append((name, camel(name), name in required, check))
    if not members:
        return None
    plan = tuple(members)

    def check_structure(value: Any, path: str, found: _Violations) -> None:
        for name, segment, needed, check in plan:
            item = value.get(name)
            if item is None:
                if needed:
                    found.add(f"{path}.{segment}" if path else segment, "null", _NOT_NULL)
                continue
            if check is not None:
                check(item, f"{path}.{segment}" if path else segment, found)

    return check_structure


def _list(shape: Shape, sensitive: bool, active: frozenset[str]) -> Check | None:
    length = _length(shape, sensitive)
    check_item = _plan(shape.member, sensitive, active)
    if check_item is None:
        return None if length is None else _length_only(length)

    def check_list(value: Any, path: str, found: _Violations) -> None:
        if length is not None:
            length(value, len(value), path, found)
        for index, item in enumerate(value, 1):
            check_item(item, f"{path}.{index}.member", found)

    return check_list


def _map(shape: Shape, sensitive: bool, active: frozenset[str]) -> Check | None:
    length = _length(shape, sensitive)
    check_key = _plan(shape.key, sensitive, active)
    check_value = _plan(shape.value, sensitive, active)
    if check_key is None and check_value is None:
        return None if length is None else _length_only(length)
    hide_keys = sensitive or is_sensitive(shape.key)

    def check_map(value: Any, path: str, found: _Violations) -> None:
        if length is not None:
            length(value, len(value), path, found)
        for key, item in value.items():
            if check_key is not None:
                check_key(key, f"{path}.key", found)
            if check_value is not None:
                check_value(item, entry_path(path, str(key), hide_keys), found)

    return check_map


def _string(shape: Shape, sensitive: bool) -> Check | None:
    length = _length(shape, sensitive)
    pattern = shape.metadata.get("pattern")
    compiled = _compile(pattern) if pattern is not None else None
    enum = shape.enum
    if length is None and compiled is None and not enum:
        return None
    pattern_rule = f"Member must satisfy regular expression pattern: {pattern}"
    enum_rule = f"Member must satisfy enum value set: [{', '.join(enum)}]"

    def check_string(value: str, path: str, found: _Violations) -> None:
        # An over-long value is already rejected; skipping the regex bounds its cost.
        too_long = length(value, len(value), path, found) if length is not None else False
        if compiled is not None and not too_long and compiled.fullmatch(value) is None:
            found.add(path, _echo(value, shape, sensitive), pattern_rule)
        if enum and value not in enum:
            found.add(path, _echo(value, shape, sensitive), enum_rule)

    return check_string


# Checks the length of a value: (value, its length, path, found) -> true if too long.
Length = Callable[[Any, int, str, _Violations], bool]


def _length(shape: Shape, sensitive: bool) -> Length | None:
    """Record min/max length violations; true if the value is too long."""
    low = shape.metadata.get("min")
    high = shape.metadata.get("max")
    if low is None and high is None:
        return None
    low_rule = f"Member must have length greater than or equal to {_number(low or 0)}"
    high_rule = f"Member must have length less than or equal to {_number(high or 0)}"

    def check_length(value: Any, length: int, path: str, found: _Violations) -> bool:
        if low is not None and length < low:
            found.add(path, _echo(value, shape, sensitive), low_rule)
        if high is not None and length > high:
            found.add(path, _echo(value, shape, sensitive), high_rule)
            return True
        return False

    return check_length


def _length_only(length: Length | None) -> Check | None:
    if length is None:
        return None
    check_length = length

    def check_size(value: Any, path: str, found: _Violations) -> None:
        check_length(value, len(value), path, found)

    return check_size


def _range(shape: Shape, sensitive: bool) -> Check | None:
    low = shape.metadata.get("min")
    high = shape.metadata.get("max")
    if low is None and high is None:
        return None
    low_rule = f"Member must have value greater than or equal to {_number(low or 0)}"
    high_rule = f"Member must have value less than or equal to {_number(high or 0)}"

    def check_range(value: float, path: str, found: _Violations) -> None:
        if low is not None and value < low:
            found.add(path, _echo(value, shape, sensitive), low_rule)
        if high is not None and value > high:
            found.add(path, _echo(value, shape, sensitive), high_rule)

    return check_range


_NOT_NULL = "Member must not be null"


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str] | None:
    """The model's Java regex as a Python one, or None when Python cannot honour it.

    ``re.ASCII`` because Java's ``\\d``, ``\\w`` and ``\\s`` are ASCII-only by default.
    A pattern Python rejects (``\\p{L}``, surrogate ranges) or reads differently (a
    nested-set warning, where Java means set intersection) is skipped: refusing valid
    input would be worse than not checking it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            return re.compile(pattern, re.ASCII)
        except (re.error, FutureWarning):
            return None


def _echo(value: Any, shape: Shape, sensitive: bool) -> str | None:
    """The value as AWS quotes it in a message, or None to withhold it."""
    if sensitive:
        return None
    if isinstance(value, list):
        if not _plain(shape.member):
            return None
        text = "[" + ", ".join(_scalar_text(item) for item in value) + "]"
    elif isinstance(value, dict):
        if not (_plain(shape.key) and _plain(shape.value)):
            return None
        text = "{" + ", ".join(f"{k}={_scalar_text(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, str | int | float):
        text = _scalar_text(value)
    else:
        return None
    if len(text) > MAX_ECHO:
        text = text[:MAX_ECHO] + "..."
    return f"'{text}'"


def _plain(shape: Shape) -> bool:
    """True if values of ``shape`` are scalars that may be quoted in a message."""
    return shape.type_name in _SCALAR_TYPES and not is_sensitive(shape)


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"  # as Java prints it
    return str(value)


def _number(limit: float) -> str:
    return str(int(limit)) if float(limit).is_integer() else str(limit)
