"""AWS JSON 1.1 bodies, read and written by walking botocore shapes.

The server-side mirror of botocore's ``JSONSerializer`` and JSON response parser: one
generic walker per direction, driven by the service model, with no per-operation code.

Input is checked in two passes, the way AWS's Coral framework answers: decoding stops
at the first JSON value of the wrong type with a ``SerializationException``; then the
shared walker in :mod:`strongroom.protocol.validation` collects constraint violations
(required, length, range, pattern, enum) over the whole input and answers them together
as one ``ValidationException``.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from botocore.model import OperationModel, Shape

from strongroom.protocol.errors import ServiceError, serialization_error, validation_error
from strongroom.protocol.validation import (
    INT_RANGES,
    entry_path,
    is_sensitive,
    item_path,
    key_path,
    member_path,
    validate,
)

CONTENT_TYPE = "application/x-amz-json-1.1"

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
    parsed: dict[str, Any] = _read(shape, document, "", sensitive=False)
    validate(shape, parsed, validation_error)
    return parsed


def _read(shape: Shape, value: Any, path: str, sensitive: bool) -> Any:
    """``value`` decoded as ``shape``; a value of the wrong type stops the walk."""
    # Sensitivity is inherited: a map key under a sensitive shape is not named in a path.
    sensitive = sensitive or is_sensitive(shape)
    kind = shape.type_name
    if kind == "structure":
        return _structure(shape, value, path, sensitive)
    if kind == "list":
        if not isinstance(value, list):
            raise _type_error(path, "a list", value)
        parsed: list[Any] = []
        for index, item in enumerate(value, 1):
            item_at = item_path(path, index)
            if item is None:
                raise _type_error(item_at, _expected(shape.member), item)
            parsed.append(_read(shape.member, item, item_at, sensitive))
        return parsed
    if kind == "map":
        return _map(shape, value, path, sensitive)
    if kind == "string":
        if not isinstance(value, str):
            raise _type_error(path, "a string", value)
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _type_error(path, "a boolean", value)
        return value
    if kind in INT_RANGES:
        return _integer(shape, value, path)
    if kind in ("float", "double"):
        if isinstance(value, str) and value in _NON_FINITE:
            value = _NON_FINITE[value]
        if not _is_number(value):
            raise _type_error(path, "a number", value)
        return float(value)
    if kind == "blob":
        if not isinstance(value, str):
            raise _type_error(path, "a base64-encoded string", value)
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise serialization_error(f"Value at '{path}' is not valid base64.") from None
    if kind == "timestamp":
        return _timestamp(value, path)
    return value


def _structure(shape: Shape, value: Any, path: str, sensitive: bool) -> Any:
    if shape.is_document_type:
        return value
    if not isinstance(value, dict):
        raise _type_error(path, "an object", value)
    parsed: dict[str, Any] = {}
    # Walking the model's members, not the input's keys, drops unknown members.
    for name, member in shape.members.items():
        raw = value.get(member.serialization.get("name", name))
        if raw is None:  # an explicit null means the member is absent, as in Coral
            continue
        parsed[name] = _read(member, raw, member_path(path, name), sensitive)
    return parsed


def _map(shape: Shape, value: Any, path: str, sensitive: bool) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise _type_error(path, "an object", value)
    hide_keys = sensitive or is_sensitive(shape.key)
    parsed: dict[Any, Any] = {}
    for key, item in value.items():
        key_value = _read(shape.key, key, key_path(path), sensitive)
        item_at = entry_path(path, key, hide_keys)
        if item is None:
            raise _type_error(item_at, _expected(shape.value), item)
        parsed[key_value] = _read(shape.value, item, item_at, sensitive)
    return parsed


def _integer(shape: Shape, value: Any, path: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 5.0 is still an integer; 5.5 is not
    if not isinstance(value, int) or isinstance(value, bool):
        raise _type_error(path, "an integer", value)
    low, high = INT_RANGES[shape.type_name]
    if not low <= value <= high:
        raise serialization_error(
            f"Number at '{path}' is outside the range of the {shape.type_name} type."
        )
    return value


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
    if kind in INT_RANGES:
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
