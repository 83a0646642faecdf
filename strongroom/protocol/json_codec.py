"""AWS JSON 1.1 bodies, read and written by walking botocore shapes.

The server-side mirror of botocore's ``JSONSerializer`` and JSON response parser: one
generic walker per direction, driven by the service model, with no per-operation code.

Input is checked in two passes folded into one walk, the way AWS's Coral framework
answers: a JSON value of the wrong type stops the walk with a ``SerializationException``;
constraint violations (required, length, range, pattern, enum) are collected over the
whole input and answered together as one ``ValidationException``.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson
from botocore.model import OperationModel, Shape

from strongroom.protocol.errors import ServiceError, serialization_error, validation_error

CONTENT_TYPE = "application/x-amz-json-1.1"

# Beyond this an echoed value is cut: messages stay readable and a huge input cannot
# inflate the error response.
_MAX_ECHO = 100
# The count in the message covers every violation; only this many are spelled out, so
# a body full of bad list elements cannot produce a response many times its size.
_MAX_LISTED = 20

_INT_RANGES = {
    "byte": (-(2**7), 2**7 - 1),
    "short": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
}
_SCALAR_TYPES = frozenset({"string", "boolean", "float", "double", *_INT_RANGES})
# botocore sends non-finite floats as these strings, since JSON has no literal for them.
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


# ---------------------------------------------------------------------------- input


def parse_input(operation: OperationModel, body: bytes) -> dict[str, Any]:
    """The operation's input from a request body, keyed by model member names.

    Raises :class:`ServiceError` (``SerializationException`` or ``ValidationException``).
    """
    if body.strip():
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise serialization_error(
                f"The request body is not valid JSON (at character {exc.pos})."
            ) from None
    else:
        document = {}
    if not isinstance(document, dict):
        raise serialization_error(f"The request body must be a JSON object, not {_kind(document)}.")
    shape = operation.input_shape
    if shape is None:
        return {}
    reader = _Reader()
    parsed: dict[str, Any] = reader.read(shape, document, "", sensitive=False)
    if reader.count:
        plural = "s" if reader.count > 1 else ""
        raise validation_error(
            f"{reader.count} validation error{plural} detected: " + "; ".join(reader.listed)
        )
    return parsed


class _Reader:
    """One walk over a parsed JSON document, collecting constraint violations."""

    def __init__(self) -> None:
        self.count = 0
        self.listed: list[str] = []

    def read(self, shape: Shape, value: Any, path: str, sensitive: bool) -> Any:
        # Sensitivity is inherited: nothing under a sensitive shape is ever echoed.
        sensitive = sensitive or bool(shape.metadata.get("sensitive"))
        kind = shape.type_name
        if kind == "structure":
            return self._structure(shape, value, path, sensitive)
        if kind == "list":
            return self._list(shape, value, path, sensitive)
        if kind == "map":
            return self._map(shape, value, path, sensitive)
        if kind == "string":
            return self._string(shape, value, path, sensitive)
        if kind == "boolean":
            if not isinstance(value, bool):
                raise _type_error(path, "a boolean", value)
            return value
        if kind in _INT_RANGES:
            return self._integer(shape, value, path, sensitive)
        if kind in ("float", "double"):
            return self._float(shape, value, path, sensitive)
        if kind == "blob":
            return self._blob(shape, value, path, sensitive)
        if kind == "timestamp":
            return _timestamp(value, path)
        return value

    def _structure(self, shape: Shape, value: Any, path: str, sensitive: bool) -> Any:
        if shape.is_document_type:
            return value
        if not isinstance(value, dict):
            raise _type_error(path, "an object", value)
        required = set(shape.required_members)
        parsed: dict[str, Any] = {}
        # Walking the model's members, not the input's keys, drops unknown members.
        for name, member in shape.members.items():
            raw = value.get(member.serialization.get("name", name))
            member_path = f"{path}.{_camel(name)}" if path else _camel(name)
            if raw is None:  # an explicit null means the member is absent, as in Coral
                if name in required:
                    self._violation(member_path, "null", "Member must not be null")
                continue
            parsed[name] = self.read(member, raw, member_path, sensitive)
        return parsed

    def _list(self, shape: Shape, value: Any, path: str, sensitive: bool) -> list[Any]:
        if not isinstance(value, list):
            raise _type_error(path, "a list", value)
        self._check_length(shape, len(value), value, path, sensitive)
        parsed: list[Any] = []
        for index, item in enumerate(value, 1):
            item_path = f"{path}.{index}.member"
            if item is None:
                raise _type_error(item_path, _expected(shape.member), item)
            parsed.append(self.read(shape.member, item, item_path, sensitive))
        return parsed

    def _map(self, shape: Shape, value: Any, path: str, sensitive: bool) -> dict[Any, Any]:
        if not isinstance(value, dict):
            raise _type_error(path, "an object", value)
        self._check_length(shape, len(value), value, path, sensitive)
        parsed: dict[Any, Any] = {}
        for key, item in value.items():
            key_value = self.read(shape.key, key, f"{path}.key", sensitive)
            item_path = f"{path}.{_path_segment(key, sensitive or _is_sensitive(shape.key))}.member"
            if item is None:
                raise _type_error(item_path, _expected(shape.value), item)
            parsed[key_value] = self.read(shape.value, item, item_path, sensitive)
        return parsed

    def _string(self, shape: Shape, value: Any, path: str, sensitive: bool) -> str:
        if not isinstance(value, str):
            raise _type_error(path, "a string", value)
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
        return value

    def _integer(self, shape: Shape, value: Any, path: str, sensitive: bool) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # 5.0 is still an integer; 5.5 is not
        if not isinstance(value, int) or isinstance(value, bool):
            raise _type_error(path, "an integer", value)
        low, high = _INT_RANGES[shape.type_name]
        if not low <= value <= high:
            raise serialization_error(
                f"Number at '{path}' is outside the range of the {shape.type_name} type."
            )
        self._check_range(shape, value, path, sensitive)
        return value

    def _float(self, shape: Shape, value: Any, path: str, sensitive: bool) -> float:
        if isinstance(value, str) and value in _NON_FINITE:
            value = _NON_FINITE[value]
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _type_error(path, "a number", value)
        self._check_range(shape, value, path, sensitive)
        return float(value)

    def _blob(self, shape: Shape, value: Any, path: str, sensitive: bool) -> bytes:
        if not isinstance(value, str):
            raise _type_error(path, "a base64-encoded string", value)
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise serialization_error(f"Value at '{path}' is not valid base64.") from None
        # Raw bytes are never echoed, so the value is withheld even when not sensitive.
        self._check_length(shape, len(data), data, path, sensitive=True)
        return data

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
        if len(self.listed) < _MAX_LISTED:
            subject = "Value" if echoed is None else f"Value {echoed}"
            self.listed.append(f"{subject} at '{path}' failed to satisfy constraint: {constraint}")


def _timestamp(value: Any, path: str) -> datetime:
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                return parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        raise serialization_error(f"Value at '{path}' is not a valid timestamp.") from None
    raise _type_error(path, "a timestamp", value)


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


def _type_error(path: str, expected: str, value: Any) -> ServiceError:
    # The offending value is never quoted: it may be secret material in the wrong place.
    where = f" at '{path}'" if path else ""
    return serialization_error(f"Expected {expected}{where} but found {_kind(value)}.")


def _expected(shape: Shape) -> str:
    return {
        "structure": "an object",
        "list": "a list",
        "map": "an object",
        "string": "a string",
        "boolean": "a boolean",
        "blob": "a base64-encoded string",
        "timestamp": "a timestamp",
        "float": "a number",
        "double": "a number",
    }.get(shape.type_name, "an integer")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _camel(name: str) -> str:
    # Coral lower-cases only the first letter: "RotationLambdaARN" -> "rotationLambdaARN".
    return name[:1].lower() + name[1:]


def _is_sensitive(shape: Shape) -> bool:
    return bool(shape.metadata.get("sensitive"))


def _path_segment(key: str, sensitive: bool) -> str:
    if sensitive:
        return "*"
    return key if len(key) <= _MAX_ECHO else key[:_MAX_ECHO] + "..."


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
    if len(text) > _MAX_ECHO:
        text = text[:_MAX_ECHO] + "..."
    return f"'{text}'"


def _plain(shape: Shape) -> bool:
    """True if values of ``shape`` are scalars that may be quoted in a message."""
    return shape.type_name in _SCALAR_TYPES and not _is_sensitive(shape)


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"  # as Java prints it
    return str(value)


def _number(limit: float) -> str:
    return str(int(limit)) if float(limit).is_integer() else str(limit)


# --------------------------------------------------------------------------- output


def serialize_output(operation: OperationModel, output: Mapping[str, Any] | None) -> bytes:
    """The response body for ``output``: members of the output shape that are not None.

    A value of the wrong Python type is a server bug and raises :class:`TypeError`.
    """
    shape = operation.output_shape
    if shape is None or output is None:
        return b"{}"
    return orjson.dumps(_write(shape, output, shape.name))


def _write(shape: Shape, value: Any, path: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        if shape.is_document_type:
            return value
        _require(isinstance(value, Mapping), path, "a mapping", value)
        written: dict[str, Any] = {}
        for name, member in shape.members.items():
            item = value.get(name)
            if item is not None:
                key = member.serialization.get("name", name)
                written[key] = _write(member, item, f"{path}.{name}")
        return written
    if kind == "list":
        _require(
            isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray),
            path,
            "a sequence",
            value,
        )
        return [_write(shape.member, item, f"{path}[{i}]") for i, item in enumerate(value)]
    if kind == "map":
        _require(isinstance(value, Mapping), path, "a mapping", value)
        return {
            _write(shape.key, key, f"{path}.<key>"): _write(shape.value, item, f"{path}[{key!r}]")
            for key, item in value.items()
        }
    if kind == "string":
        _require(isinstance(value, str), path, "a str", value)
        return value
    if kind == "boolean":
        _require(isinstance(value, bool), path, "a bool", value)
        return value
    if kind in _INT_RANGES:
        _require(isinstance(value, int) and not isinstance(value, bool), path, "an int", value)
        return value
    if kind in ("float", "double"):
        _require(_is_number(value), path, "a number", value)
        if math.isfinite(value):
            return value
        # Mirrors botocore: JSON has no literal for these.
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if kind == "timestamp":
        if isinstance(value, datetime):
            return _epoch_seconds(value)
        _require(_is_number(value), path, "a datetime or epoch seconds", value)
        return value
    if kind == "blob":
        if isinstance(value, str):
            value = value.encode()
        _require(isinstance(value, bytes | bytearray | memoryview), path, "bytes", value)
        return base64.b64encode(value).decode("ascii")
    return value


def _epoch_seconds(value: datetime) -> float:
    """Epoch seconds with millisecond precision, as AWS writes timestamps."""
    if value.tzinfo is None:  # naive datetimes in this codebase are UTC
        value = value.replace(tzinfo=UTC)
    # Integer milliseconds first, so the float is rounded once (1569534789.046, not ...0459).
    return ((value - _EPOCH) // _MILLISECOND) / 1000


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _require(condition: bool, path: str, expected: str, value: Any) -> None:
    if not condition:
        # Only the type is named: the value may be secret material.
        raise TypeError(f"{path}: expected {expected}, got {type(value).__name__}")


# --------------------------------------------------------------------------- errors


def error_body(error: ServiceError) -> bytes:
    """The AWS JSON error body; botocore reads ``__type`` and ``Message`` from it."""
    return orjson.dumps({"__type": error.code, "Message": error.message})


def error_headers(error: ServiceError) -> dict[str, str]:
    # Go v2, JS v3 and smithy-rs SDKs read the code from this header before the body.
    return {"x-amzn-ErrorType": error.code, "Content-Type": CONTENT_TYPE}
