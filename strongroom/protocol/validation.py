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
    checker = _Checker()
    checker.check(shape, value, "", sensitive=False)
    if checker.count:
        plural = "s" if checker.count > 1 else ""
        raise error(
            f"{checker.count} validation error{plural} detected: " + "; ".join(checker.listed)
        )


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


class _Checker:
    """One walk over decoded input, collecting constraint violations."""

    def __init__(self) -> None:
        self.count = 0
        self.listed: list[str] = []

    def check(self, shape: Shape, value: Any, path: str, sensitive: bool) -> None:
        # Sensitivity is inherited: nothing under a sensitive shape is ever echoed.
        sensitive = sensitive or is_sensitive(shape)
        kind = shape.type_name
        if kind == "structure":
            self._structure(shape, value, path, sensitive)
        elif kind == "list":
            self._check_length(shape, len(value), value, path, sensitive)
            for index, item in enumerate(value, 1):
                self.check(shape.member, item, item_path(path, index), sensitive)
        elif kind == "map":
            self._check_length(shape, len(value), value, path, sensitive)
            hide_keys = sensitive or is_sensitive(shape.key)
            for key, item in value.items():
                self.check(shape.key, key, key_path(path), sensitive)
                self.check(shape.value, item, entry_path(path, str(key), hide_keys), sensitive)
        elif kind == "string":
            self._string(shape, value, path, sensitive)
        elif kind in INT_RANGES or kind in ("float", "double"):
            self._check_range(shape, value, path, sensitive)
        elif kind == "blob":
            # Raw bytes are never echoed, so the value is withheld even when not sensitive.
            self._check_length(shape, len(value), value, path, sensitive=True)

    def _structure(self, shape: Shape, value: Any, path: str, sensitive: bool) -> None:
        if shape.is_document_type:
            return
        required = set(shape.required_members)
        for name, member in shape.members.items():
            item = value.get(name)
            member_at = member_path(path, name)
            if item is None:
                if name in required:
                    self._violation(member_at, "null", "Member must not be null")
                continue
            self.check(member, item, member_at, sensitive)

    def _string(self, shape: Shape, value: str, path: str, sensitive: bool) -> None:
        too_long = self._check_length(shape, len(value), value, path, sensitive)
        pattern = shape.metadata.get("pattern")
        # An over-long value is already rejected; skipping the regex bounds its cost.
        if pattern is not None and not too_long:
            compiled = _compile(pattern)
            if compiled is not None and compiled.fullmatch(value) is None:
                self._violation(
                    path,
                    _echo(value, shape, sensitive),
                    f"Member must satisfy regular expression pattern: {pattern}",
                )
        enum = shape.enum
        if enum and value not in enum:
            self._violation(
                path,
                _echo(value, shape, sensitive),
                f"Member must satisfy enum value set: [{', '.join(enum)}]",
            )

    def _check_length(
        self, shape: Shape, length: int, value: Any, path: str, sensitive: bool
    ) -> bool:
        """Record min/max length violations; true if the value is too long."""
        low = shape.metadata.get("min")
        high = shape.metadata.get("max")
        if low is not None and length < low:
            self._violation(
                path,
                _echo(value, shape, sensitive),
                f"Member must have length greater than or equal to {_number(low)}",
            )
        if high is not None and length > high:
            self._violation(
                path,
                _echo(value, shape, sensitive),
                f"Member must have length less than or equal to {_number(high)}",
            )
            return True
        return False

    def _check_range(self, shape: Shape, value: float, path: str, sensitive: bool) -> None:
        low = shape.metadata.get("min")
        high = shape.metadata.get("max")
        if low is not None and value < low:
            self._violation(
                path,
                _echo(value, shape, sensitive),
                f"Member must have value greater than or equal to {_number(low)}",
            )
        if high is not None and value > high:
            self._violation(
                path,
                _echo(value, shape, sensitive),
                f"Member must have value less than or equal to {_number(high)}",
            )

    def _violation(self, path: str, echoed: str | None, constraint: str) -> None:
        self.count += 1
        if len(self.listed) < MAX_LISTED:
            subject = "Value" if echoed is None else f"Value {echoed}"
            self.listed.append(f"{subject} at '{path}' failed to satisfy constraint: {constraint}")


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
