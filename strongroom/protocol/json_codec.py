"""AWS JSON 1.1 bodies, read and written by walking botocore shapes.

The server-side mirror of botocore's ``JSONSerializer`` and JSON response parser: one
generic walker per direction, driven by the service model, with no per-operation code.
The walk of each shape is planned once (member names, wire names, paths, checks) and
kept on the botocore shape object, so a request runs only the plan.

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
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson
from botocore.model import OperationModel, Shape

from strongroom.protocol.errors import ServiceError, serialization_error, validation_error
from strongroom.protocol.limits import MAX_JSON_DEPTH, depth_exceeds, nested_too_deep
from strongroom.protocol.model import planned_on_first_use, shape_plan
from strongroom.protocol.validation import (
    INT_RANGES,
    camel,
    entry_path,
    is_sensitive,
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
    document = decode_document(body)
    shape = operation.input_shape
    if shape is None:
        return {}
    parsed = read_document(shape, document)
    validate(shape, parsed, validation_error)
    return parsed


def decode_document(body: bytes) -> dict[str, Any]:
    """A request body as a JSON object (an empty body is ``{}``), or the
    ``SerializationException`` AWS answers."""
    if body.strip():
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise serialization_error(
                f"The request body is not valid JSON (at character {exc.pos})."
            ) from None
        # Counting brackets is nearly free; only a body with many walks the document.
        if body.count(b"{") + body.count(b"[") > MAX_JSON_DEPTH and depth_exceeds(document):
            raise nested_too_deep()
    else:
        document = {}
    if not isinstance(document, dict):
        raise serialization_error(f"The request body must be a JSON object, not {_kind(document)}.")
    return document


def read_document(shape: Shape, document: Any) -> dict[str, Any]:
    """The members of structure ``shape`` from a decoded JSON value, unvalidated."""
    parsed: dict[str, Any] = _reader(shape)(document, "")
    return parsed


# How to decode one shape: (JSON value, its path) -> the Python value, or a
# SerializationException naming the path. Worked out once per shape object (botocore's
# models are loaded once and their shapes cached), so a request only runs the plan.
Reader = Callable[[Any, str], Any]
_READER = "_strongroom_json_reader"  # the slot in a shape's __dict__ holding its reader


def _reader(shape: Shape) -> Reader:
    """The reader of ``shape`` as the root of an input (nothing around it sensitive)."""
    return shape_plan(shape, _READER, lambda root: _read_plan(root, False, frozenset()))


def _read_plan(shape: Shape, sensitive: bool, active: frozenset[str]) -> Reader:
    """The reader of ``shape`` under an ancestor that is (or is not) ``sensitive``.
    ``active`` names the shapes being planned around it: a recursive shape is planned
    lazily, on first use."""
    # Sensitivity is inherited: a map key under a sensitive shape is not named in a path.
    sensitive = sensitive or is_sensitive(shape)
    kind = shape.type_name
    if kind in ("structure", "list", "map"):
        if shape.name in active:
            return planned_on_first_use(lambda: _read_plan(shape, sensitive, frozenset()))
        active = active | {shape.name}
    if kind == "structure":
        return _read_structure(shape, sensitive, active)
    if kind == "list":
        return _read_list(shape, sensitive, active)
    if kind == "map":
        return _read_map(shape, sensitive, active)
    if kind == "string":
        return _read_string
    if kind == "boolean":
        return _read_boolean
    if kind in INT_RANGES:
        low, high = INT_RANGES[kind]
        return partial(_read_integer, low, high, kind)
    if kind in ("float", "double"):
        return _read_number
    if kind == "blob":
        return _read_blob
    if kind == "timestamp":
        return _timestamp
    return _as_is


def _read_structure(shape: Shape, sensitive: bool, active: frozenset[str]) -> Reader:
    if shape.is_document_type:
        return _as_is
    # (model name, wire name, path segment, reader) in model order. Walking the model's
    # members, not the input's keys, drops unknown members.
    plan = tuple(
        (
            name,
            member.serialization.get("name", name),
            camel(name),
            _read_plan(member, sensitive, active),
        )
        for name, member in shape.members.items()
    )

    def read_structure(value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise _type_error(path, "an object", value)
        parsed: dict[str, Any] = {}
        for name, wire_name, segment, read in plan:
            raw = value.get(wire_name)
            if raw is None:  # an explicit null means the member is absent, as in Coral
                continue
            parsed[name] = read(raw, f"{path}.{segment}" if path else segment)
        return parsed

    return read_structure


def _read_list(shape: Shape, sensitive: bool, active: frozenset[str]) -> Reader:
    read_item = _read_plan(shape.member, sensitive, active)
    expected = _expected(shape.member)

    def read_list(value: Any, path: str) -> Any:
        if not isinstance(value, list):
            raise _type_error(path, "a list", value)
        parsed: list[Any] = []
        for index, item in enumerate(value, 1):
            item_at = f"{path}.{index}.member"
            if item is None:
                raise _type_error(item_at, expected, item)
            parsed.append(read_item(item, item_at))
        return parsed

    return read_list


def _read_map(shape: Shape, sensitive: bool, active: frozenset[str]) -> Reader:
    read_key = _read_plan(shape.key, sensitive, active)
    read_value = _read_plan(shape.value, sensitive, active)
    expected = _expected(shape.value)
    hide_keys = sensitive or is_sensitive(shape.key)

    def read_map(value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise _type_error(path, "an object", value)
        parsed: dict[Any, Any] = {}
        for key, item in value.items():
            key_value = read_key(key, f"{path}.key")
            item_at = entry_path(path, key, hide_keys)
            if item is None:
                raise _type_error(item_at, expected, item)
            parsed[key_value] = read_value(item, item_at)
        return parsed

    return read_map


def _read_string(value: Any, path: str) -> Any:
    if not isinstance(value, str):
        raise _type_error(path, "a string", value)
    return value


def _read_boolean(value: Any, path: str) -> Any:
    if not isinstance(value, bool):
        raise _type_error(path, "a boolean", value)
    return value


def _read_number(value: Any, path: str) -> float:
    if isinstance(value, str) and value in _NON_FINITE:
        value = _NON_FINITE[value]
    if not _is_number(value):
        raise _type_error(path, "a number", value)
    return float(value)


def _read_blob(value: Any, path: str) -> bytes:
    if not isinstance(value, str):
        raise _type_error(path, "a base64-encoded string", value)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise serialization_error(f"Value at '{path}' is not valid base64.") from None


def _as_is(value: Any, path: str) -> Any:
    return value


def _read_integer(low: int, high: int, kind: str, value: Any, path: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 5.0 is still an integer; 5.5 is not
    if not isinstance(value, int) or isinstance(value, bool):
        raise _type_error(path, "an integer", value)
    if not low <= value <= high:
        raise serialization_error(f"Number at '{path}' is outside the range of the {kind} type.")
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


def write_shape(shape: Shape, value: Mapping[str, Any]) -> bytes:
    """``value`` written as JSON with ``shape``'s writer (see :func:`serialize_output`)."""
    try:
        return orjson.dumps(_writer(shape)(value))
    except _WrongType as wrong:
        # Only the type is named: the value may be secret material.
        raise TypeError(
            f"{shape.name}{''.join(reversed(wrong.where))}: expected {wrong.expected}, "
            f"got {wrong.got}"
        ) from None


def serialize_output(operation: OperationModel, output: Mapping[str, Any] | None) -> bytes:
    """The response body for ``output``: members of the output shape that are not None.

    A value of the wrong Python type is a server bug and raises :class:`TypeError`.
    """
    shape = operation.output_shape
    if shape is None or output is None:
        return b"{}"
    return write_shape(shape, output)


class _WrongType(Exception):
    """An output value of the wrong Python type; each level it passes through on the way
    out adds its place (``.Member``, ``[3]``), so a path is only built for an error."""

    def __init__(self, expected: str, value: Any) -> None:
        super().__init__(expected)
        self.expected = expected
        self.got = type(value).__name__
        self.where: list[str] = []


# How to write one shape: Python value -> the JSON-ready value. Worked out once per shape
# object, like the readers.
Writer = Callable[[Any], Any]
_WRITER = "_strongroom_json_writer"  # the slot in a shape's __dict__ holding its writer


def _writer(shape: Shape) -> Writer:
    return shape_plan(shape, _WRITER, lambda root: _write_plan(root, frozenset()))


def _write_plan(shape: Shape, active: frozenset[str]) -> Writer:
    kind = shape.type_name
    if kind in ("structure", "list", "map"):
        if shape.name in active:
            return planned_on_first_use(lambda: _write_plan(shape, frozenset()))
        active = active | {shape.name}
    if kind == "structure":
        return _write_structure(shape, active)
    if kind == "list":
        return _write_list(shape, active)
    if kind == "map":
        return _write_map(shape, active)
    if kind == "string":
        return _write_string
    if kind == "boolean":
        return _write_boolean
    if kind in INT_RANGES:
        return _write_integer
    if kind in ("float", "double"):
        return _write_number
    if kind == "timestamp":
        return _write_timestamp
    if kind == "blob":
        return _write_blob
    return _write_as_is


def _write_structure(shape: Shape, active: frozenset[str]) -> Writer:
    if shape.is_document_type:
        return _write_as_is
    # (model name, wire name, writer); None for a string, checked in line.
    plan = tuple(
        (
            name,
            member.serialization.get("name", name),
            None if writer is _write_string else writer,
        )
        for name, member in shape.members.items()
        for writer in (_write_plan(member, active),)
    )

    def write_structure(value: Any) -> Any:
        if type(value) is not dict and not isinstance(value, Mapping):
            raise _WrongType("a mapping", value)
        written: dict[str, Any] = {}
        for name, key, write in plan:
            item = value.get(name)
            if item is None:
                continue
            if write is None:
                if not isinstance(item, str):
                    wrong = _WrongType("a str", item)
                    wrong.where.append(f".{name}")
                    raise wrong
                written[key] = item
            else:
                try:
                    written[key] = write(item)
                except _WrongType as wrong:
                    wrong.where.append(f".{name}")
                    raise
        return written

    return write_structure


def _write_list(shape: Shape, active: frozenset[str]) -> Writer:
    write_item = _write_plan(shape.member, active)

    def write_list(value: Any) -> Any:
        if type(value) is not list and (
            not isinstance(value, Sequence) or isinstance(value, (str, bytes, bytearray))
        ):
            raise _WrongType("a sequence", value)
        try:
            return [write_item(item) for item in value]
        except _WrongType:
            pass
        # Again, one by one, to name the element (writing has no side effects).
        for index, item in enumerate(value):
            try:
                write_item(item)
            except _WrongType as wrong:
                wrong.where.append(f"[{index}]")
                raise
        raise AssertionError("unreachable: an element failed once")  # pragma: no cover

    return write_list


def _write_map(shape: Shape, active: frozenset[str]) -> Writer:
    write_key = _write_plan(shape.key, active)
    write_value = _write_plan(shape.value, active)

    def write_map(value: Any) -> Any:
        if type(value) is not dict and not isinstance(value, Mapping):
            raise _WrongType("a mapping", value)
        written = {}
        for key, item in value.items():
            try:
                written_key = write_key(key)
            except _WrongType as wrong:
                wrong.where.append(".<key>")
                raise
            try:
                written[written_key] = write_value(item)
            except _WrongType as wrong:
                wrong.where.append(f"[{key!r}]")
                raise
        return written

    return write_map


def _write_string(value: Any) -> Any:
    if not isinstance(value, str):
        raise _WrongType("a str", value)
    return value


def _write_boolean(value: Any) -> Any:
    if not isinstance(value, bool):
        raise _WrongType("a bool", value)
    return value


def _write_integer(value: Any) -> Any:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _WrongType("an int", value)
    return value


def _write_number(value: Any) -> Any:
    if not _is_number(value):
        raise _WrongType("a number", value)
    if math.isfinite(value):
        return value
    # Mirrors botocore: JSON has no literal for these.
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _write_timestamp(value: Any) -> Any:
    if isinstance(value, datetime):
        return _epoch_seconds(value)
    if not _is_number(value):
        raise _WrongType("a datetime or epoch seconds", value)
    return value


def _write_blob(value: Any) -> Any:
    if isinstance(value, str):
        value = value.encode()
    if not isinstance(value, bytes | bytearray | memoryview):
        raise _WrongType("bytes", value)
    return base64.b64encode(value).decode("ascii")


def _write_as_is(value: Any) -> Any:
    return value


def _epoch_seconds(value: datetime) -> float:
    """Epoch seconds with millisecond precision, as AWS writes timestamps."""
    if value.tzinfo is None:  # naive datetimes in this codebase are UTC
        value = value.replace(tzinfo=UTC)
    # Integer milliseconds first, so the float is rounded once (1569534789.046, not ...0459).
    return ((value - _EPOCH) // _MILLISECOND) / 1000


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --------------------------------------------------------------------------- errors


def error_body(error: ServiceError) -> bytes:
    """The AWS JSON error body; botocore reads ``__type`` and ``Message`` from it."""
    return orjson.dumps({"__type": error.code, "Message": error.message})


def error_headers(error: ServiceError) -> dict[str, str]:
    # Go v2, JS v3 and smithy-rs SDKs read the code from this header before the body.
    return {"x-amzn-ErrorType": error.code, "Content-Type": CONTENT_TYPE}
