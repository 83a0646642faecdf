# long module: the AWS Query protocol in both directions (form parsing, XML writing) walks one
# model the same way; the halves share their naming rules.
"""The AWS Query protocol (IAM, STS): form-encoded requests, XML responses.

The server-side mirror of botocore's ``QuerySerializer`` and ``QueryParser``: one generic
walker per direction, driven by the service model, with no per-operation code.

Requests are ``application/x-www-form-urlencoded`` (a POST body, or the URL query of a
GET) whose names spell the path to each value the way ``QuerySerializer`` writes them::

    Action=CreateUser&Version=2010-05-08&UserName=alice
    &Tags.member.1.Key=team&Tags.member.1.Value=platform     (list of structures)
    &Attributes.entry.1.key=k&Attributes.entry.1.value=v     (map)

Structure members are ``A.B`` (a member's ``locationName`` overrides its name), list
elements ``A.member.N`` (the member's ``locationName`` overrides ``member``; a flattened
list drops it: ``A.N``), map entries ``A.entry.N.key`` / ``A.entry.N.value`` (key and
value ``locationName`` honoured; flattened maps drop ``entry``). Booleans are ``true`` /
``false``, timestamps ISO 8601, blobs base64. An empty list is sent as ``A=``.

Input is checked in two passes, as AWS answers: decoding stops at the first value that
cannot be read as its member's type (``MalformedInput``); then the shared walker in
:mod:`strongroom.protocol.validation` collects every constraint violation into one
``ValidationError`` (the Query protocol's name for JSON's ``ValidationException``).

Responses are ``<{Operation}Response xmlns="{namespace}">``, holding the output under
the output shape's ``resultWrapper`` (``<{Operation}Result>``) and then
``<ResponseMetadata><RequestId>``; errors are ``<ErrorResponse>`` with ``<Error>``
(``Type``, ``Code``, ``Message``) and ``<RequestId>``.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape, quoteattr

from botocore.model import OperationModel, ServiceModel, Shape

from strongroom.models import service_model
from strongroom.protocol.errors import ServiceError, modeled_errors, validation_error
from strongroom.protocol.validation import (
    INT_RANGES,
    entry_path,
    is_sensitive,
    item_path,
    key_path,
    member_path,
    validate,
)

CONTENT_TYPE = "text/xml"

_INTEGER = re.compile(r"[+-]?[0-9]+")
# Unambiguous, so a long run of digits cannot make the match backtrack quadratically.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# botocore writes non-finite floats as these words.
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
# xsd:boolean, which AWS's Query services accept: case-sensitive, "1" and "0" included.
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}
# A list or map index: a positive decimal without leading zeros ("01" would alias "1").
_INDEX = re.compile(r"[1-9][0-9]*")
# Deeper names than this cannot be meant for any model; refusing them bounds the walk's
# recursion, which follows the (possibly recursive) shapes as deep as the names go.
_MAX_NAME_PARTS = 100
# Characters XML 1.0 cannot carry at all, not even as character references.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

# Statuses of the errors common to every Query API, which no service model lists
# (the AWS "Common Errors" reference pages; AccessDenied as IAM and STS answer it).
_COMMON_STATUS = {
    "AccessDenied": 403,
    "ExpiredToken": 403,
    "IncompleteSignature": 400,
    "InternalFailure": 500,
    "InvalidAction": 400,
    "InvalidClientTokenId": 403,
    "InvalidParameterCombination": 400,
    "InvalidParameterValue": 400,
    "InvalidQueryParameter": 400,
    "MalformedInput": 400,
    "MalformedQueryString": 404,
    "MissingAction": 400,
    "MissingAuthenticationToken": 403,
    "MissingParameter": 400,
    "OptInRequired": 403,
    "RequestExpired": 400,
    "ServiceUnavailable": 503,
    "SignatureDoesNotMatch": 403,
    "Throttling": 400,
    "ValidationError": 400,
}


# ---------------------------------------------------------------------------- errors
# The Query protocol's own client errors, as AWS's Query services answer them.


def _validation_error(message: str) -> ServiceError:
    return validation_error(message, "query")


def malformed_input(message: str) -> ServiceError:
    """A value that cannot be read as its member's type (``"abc"`` for an integer)."""
    return ServiceError("MalformedInput", message)


def malformed_query_string(message: str) -> ServiceError:
    return ServiceError("MalformedQueryString", message, status=404)


def missing_action() -> ServiceError:
    return ServiceError("MissingAction", "Missing Action")


def invalid_action(action: str, version: str | None) -> ServiceError:
    return ServiceError(
        "InvalidAction",
        f"Could not find operation {action} for version {version or 'NO_VERSION_SPECIFIED'}",
    )


# ----------------------------------------------------------------------------- input


class _Node:
    """The form's names as a tree: ``Tags.member.1.Key=x`` is root/Tags/member/1/Key."""

    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.value: str | None = None
        self.children: dict[str, _Node] = {}


def _form(body: bytes, query: str) -> _Node:
    """The parameters of the URL query and the body, which must not name one twice."""
    root = _Node()
    for source in (query, body):
        try:
            text = source.decode("utf-8") if isinstance(source, bytes) else source
            pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise malformed_query_string(
                "The request parameters are not valid UTF-8 form encoding."
            ) from None
        for name, value in pairs:
            parts = name.split(".")
            if len(parts) > _MAX_NAME_PARTS:
                raise malformed_query_string(
                    f"A parameter name has more than {_MAX_NAME_PARTS} parts."
                )
            node = root
            for part in parts:
                child = node.children.get(part)
                if child is None:
                    child = node.children[part] = _Node()
                node = child
            if node.value is not None:
                # Which value counts would be a guess; a signer and a reader could disagree.
                raise malformed_query_string(f"The parameter {name} appears more than once.")
            node.value = value
    return root


def operation_name(body: bytes, query: str) -> tuple[str | None, str | None]:
    """``(Action, Version)`` of a request: from the form body, else the URL query (GET).

    Raises :class:`ServiceError` (``MalformedQueryString``) for an undecodable form.
    """
    root = _form(body, query)
    action = root.children.get("Action")
    version = root.children.get("Version")
    return (
        action.value if action is not None else None,
        version.value if version is not None else None,
    )


def parse_input(operation: OperationModel, body: bytes, query: str = "") -> dict[str, Any]:
    """The operation's input from a form body (and URL query), keyed by model member names.

    Names the model does not know (``Action``, ``Version``, ``X-Amz-*``) are ignored.
    Raises :class:`ServiceError` (``MalformedQueryString``, ``MalformedInput`` or
    ``ValidationError``).
    """
    root = _form(body, query)
    shape = operation.input_shape
    if shape is None:
        return {}
    parsed: dict[str, Any] = _read(shape, root, "", sensitive=False)
    validate(shape, parsed, _validation_error)
    return parsed


def _member_key(shape: Shape, name: str) -> str:
    """The name a structure member goes by on the wire (botocore's ``_member_key_name``).

    A flattened list whose member has a ``locationName`` is spelled with that name.
    """
    if shape.type_name == "list" and shape.serialization.get("flattened"):
        member_name = shape.member.serialization.get("name")
        if member_name is not None:
            return str(member_name)
    return str(shape.serialization.get("name", name))


def _member_node(node: _Node, member: Shape, name: str) -> _Node | None:
    child = node.children.get(_member_key(member, name))
    if child is None:
        # botocore sends an empty flattened list under the member's own name even when
        # its elements would be spelled with the list member's locationName.
        child = node.children.get(str(member.serialization.get("name", name)))
        if child is not None and (member.type_name != "list" or child.value != ""):
            return None
    return child


def _read(shape: Shape, node: _Node, path: str, sensitive: bool) -> Any:
    """The value at ``node`` decoded as ``shape``; an unreadable value stops the walk."""
    sensitive = sensitive or is_sensitive(shape)
    kind = shape.type_name
    if kind == "structure":
        _aggregate(node, path, "a structure")
        parsed: dict[str, Any] = {}
        # Walking the model's members, not the form's names, ignores unknown names.
        for name, member in shape.members.items():
            child = _member_node(node, member, name)
            if child is not None:
                parsed[name] = _read(member, child, member_path(path, name), sensitive)
        return parsed
    if kind == "list":
        return _list(shape, node, path, sensitive)
    if kind == "map":
        return _map(shape, node, path, sensitive)
    text = node.value
    if text is None:
        raise malformed_input(f"Expected {_expected(shape)} at '{path}' but found a structure.")
    if kind == "string":
        return text
    if kind == "boolean":
        if text not in _BOOLEANS:
            raise malformed_input(f"Value at '{path}' is not a boolean (true or false).")
        return _BOOLEANS[text]
    if kind in INT_RANGES:
        return _integer(shape, text, path)
    if kind in ("float", "double"):
        if text in _NON_FINITE:
            return _NON_FINITE[text]
        if _DECIMAL.fullmatch(text) is None:
            raise malformed_input(f"Value at '{path}' is not a number.")
        return float(text)
    if kind == "timestamp":
        return _timestamp(text, path)
    if kind == "blob":
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise malformed_input(f"Value at '{path}' is not valid base64.") from None
    return text


def _aggregate(node: _Node, path: str, expected: str) -> None:
    """A structure, list or map may be sent empty (``A=``) but never as a scalar."""
    if node.value and not node.children:
        where = f" at '{path}'" if path else ""
        raise malformed_input(f"Expected {expected}{where} but found a value.")


def _indexed(node: _Node | None, path: str) -> list[tuple[int, _Node]]:
    """The numbered children of a list's or map's node, in index order."""
    if node is None:
        return []
    items: list[tuple[int, _Node]] = []
    for index, child in node.children.items():
        if _INDEX.fullmatch(index) is None:
            raise malformed_input(f"'{index[:20]}' is not a valid index at '{path}'.")
        items.append((int(index), child))
    items.sort(key=lambda item: item[0])
    return items


def _elements(shape: Shape, node: _Node, path: str, kind: str, name: str) -> _Node | None:
    """The node holding the numbered elements of a list or map: its own if flattened,
    else its only child, ``name`` (``member`` or ``entry``)."""
    _aggregate(node, path, f"a {kind}")
    if shape.serialization.get("flattened"):
        return node
    strays = node.children.keys() - {name}
    if strays:
        raise malformed_input(
            f"Elements of the {kind} at '{path}' are named '{name}', not '{min(strays)[:20]}'."
        )
    return node.children.get(name)


def _list(shape: Shape, node: _Node, path: str, sensitive: bool) -> list[Any]:
    member_name = str(shape.member.serialization.get("name", "member"))
    items = _elements(shape, node, path, "list", member_name)
    return [
        _read(shape.member, child, item_path(path, index), sensitive)
        for index, child in _indexed(items, path)
    ]


def _map(shape: Shape, node: _Node, path: str, sensitive: bool) -> dict[Any, Any]:
    entries = _elements(shape, node, path, "map", "entry")
    key_name = str(shape.key.serialization.get("name", "key"))
    value_name = str(shape.value.serialization.get("name", "value"))
    hide_keys = sensitive or is_sensitive(shape.key)
    parsed: dict[Any, Any] = {}
    for index, entry in _indexed(entries, path):
        key_node = entry.children.get(key_name)
        value_node = entry.children.get(value_name)
        if key_node is None or value_node is None:
            missing = key_name if key_node is None else value_name
            raise malformed_input(f"Entry {index} of the map at '{path}' has no {missing}.")
        key = _read(shape.key, key_node, key_path(path), sensitive)
        value_at = entry_path(path, str(key), hide_keys)
        parsed[key] = _read(shape.value, value_node, value_at, sensitive)
    return parsed


def _integer(shape: Shape, text: str, path: str) -> int:
    if _INTEGER.fullmatch(text) is None:
        raise malformed_input(f"Value at '{path}' is not an integer.")
    low, high = INT_RANGES[shape.type_name]
    # int() refuses thousands of digits (leading zeros count); twenty exceed every type.
    digits = text.lstrip("+-").lstrip("0") or "0"
    magnitude = int(digits) if len(digits) <= 20 else 2**64
    value = -magnitude if text.startswith("-") else magnitude
    if not low <= value <= high:
        raise malformed_input(
            f"Number at '{path}' is outside the range of the {shape.type_name} type."
        )
    return value


def _timestamp(text: str, path: str) -> datetime:
    """ISO 8601 as botocore sends it; epoch seconds and RFC 822 as its other formats."""
    try:
        if _DECIMAL.fullmatch(text):
            return datetime.fromtimestamp(float(text), UTC)
        # "2024-01-02T03:04:05Z" starts with its year; "Tue, 02 Jan 2024 ..." does not.
        iso = text[:4].isdigit()
        parsed = datetime.fromisoformat(text) if iso else parsedate_to_datetime(text)
    except (ValueError, TypeError, OverflowError, OSError):
        raise malformed_input(f"Value at '{path}' is not a valid timestamp.") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _expected(shape: Shape) -> str:
    return {
        "string": "a string",
        "boolean": "a boolean",
        "blob": "a base64-encoded string",
        "timestamp": "a timestamp",
        "float": "a number",
        "double": "a number",
    }.get(shape.type_name, "an integer")


# ---------------------------------------------------------------------------- output


def serialize_output(
    operation: OperationModel, output: Mapping[str, Any] | None, request_id: str
) -> bytes:
    """The XML response body for ``output``: members of the output shape that are not None.

    A value of the wrong Python type is a server bug and raises :class:`TypeError`.
    """
    name = operation.name
    xml = _Xml()
    xml.open(f"{name}Response", _namespace(operation.service_model))
    shape = operation.output_shape
    if shape is not None:
        # botocore looks the result up by this name, so it is written even when empty.
        wrapper = shape.serialization.get("resultWrapper")
        if wrapper:
            xml.open(str(wrapper))
        if output is not None:
            _require(isinstance(output, Mapping), shape.name, "a mapping", output)
            _members(xml, shape, output, shape.name)
        if wrapper:
            xml.close(str(wrapper))
    xml.open("ResponseMetadata")
    xml.leaf("RequestId", request_id)
    xml.close("ResponseMetadata")
    xml.close(f"{name}Response")
    return xml.bytes()


class _Xml:
    """XML text built from model-given tag names and escaped values."""

    def __init__(self) -> None:
        self._parts: list[str] = []

    def open(self, tag: str, namespace: str | None = None) -> None:
        if namespace:
            self._parts.append(f"<{tag} xmlns={quoteattr(namespace)}>")
        else:
            self._parts.append(f"<{tag}>")

    def close(self, tag: str) -> None:
        self._parts.append(f"</{tag}>")

    def leaf(self, tag: str, text: str) -> None:
        self._parts.append(f"<{tag}>{_escape(text)}</{tag}>")

    def bytes(self) -> bytes:
        return "".join(self._parts).encode("utf-8")


def _escape(text: str) -> str:
    # A carriage return is written as a reference: a parser would fold "\r\n" into "\n".
    # Characters XML cannot carry at all become U+FFFD rather than break the document.
    return escape(_NOT_XML.sub("\ufffd", text), {"\r": "&#13;"})


def _members(xml: _Xml, shape: Shape, value: Mapping[str, Any], path: str) -> None:
    for name, member in shape.members.items():
        item = value.get(name)
        if item is not None:
            _member(xml, _member_key(member, name), member, item, f"{path}.{name}")


def _member(xml: _Xml, tag: str, shape: Shape, value: Any, path: str) -> None:
    """``value`` as the element(s) named ``tag``: one element, or one per item if flattened."""
    flattened = shape.serialization.get("flattened")
    if flattened and shape.type_name == "list":
        for index, item in enumerate(_sequence(value, path)):
            _element(xml, tag, shape.member, item, f"{path}[{index}]")
    elif flattened and shape.type_name == "map":
        _require(isinstance(value, Mapping), path, "a mapping", value)
        for key, item in value.items():
            xml.open(tag)
            _entry(xml, shape, key, item, path)
            xml.close(tag)
    else:
        _element(xml, tag, shape, value, path)


def _element(xml: _Xml, tag: str, shape: Shape, value: Any, path: str) -> None:
    kind = shape.type_name
    if kind == "structure":
        _require(isinstance(value, Mapping), path, "a mapping", value)
        xml.open(tag)
        _members(xml, shape, value, path)
        xml.close(tag)
    elif kind == "list":
        member_tag = str(shape.member.serialization.get("name", "member"))
        xml.open(tag)
        for index, item in enumerate(_sequence(value, path)):
            _element(xml, member_tag, shape.member, item, f"{path}[{index}]")
        xml.close(tag)
    elif kind == "map":
        _require(isinstance(value, Mapping), path, "a mapping", value)
        xml.open(tag)
        for key, item in value.items():
            xml.open("entry")
            _entry(xml, shape, key, item, path)
            xml.close("entry")
        xml.close(tag)
    else:
        xml.leaf(tag, _text(shape, value, path))


def _entry(xml: _Xml, shape: Shape, key: Any, value: Any, path: str) -> None:
    key_tag = str(shape.key.serialization.get("name", "key"))
    value_tag = str(shape.value.serialization.get("name", "value"))
    _element(xml, key_tag, shape.key, key, f"{path}.<key>")
    # A secret map key stays out of the TypeError message, which ends up in logs.
    label = "*" if is_sensitive(shape) or is_sensitive(shape.key) else repr(key)
    _element(xml, value_tag, shape.value, value, f"{path}[{label}]")


def _sequence(value: Any, path: str) -> Sequence[Any]:
    _require(
        isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray),
        path,
        "a sequence",
        value,
    )
    return value  # type: ignore[no-any-return]


def _text(shape: Shape, value: Any, path: str) -> str:
    kind = shape.type_name
    if kind == "string":
        _require(isinstance(value, str), path, "a str", value)
        return str(value)
    if kind == "boolean":
        _require(isinstance(value, bool), path, "a bool", value)
        return "true" if value else "false"
    if kind in INT_RANGES:
        _require(isinstance(value, int) and not isinstance(value, bool), path, "an int", value)
        return str(value)
    if kind in ("float", "double"):
        _require(_is_number(value), path, "a number", value)
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(float(value))
    if kind == "timestamp":
        return _timestamp_text(shape, value, path)
    if kind == "blob":
        if isinstance(value, str):
            value = value.encode()
        _require(isinstance(value, bytes | bytearray | memoryview), path, "bytes", value)
        return base64.b64encode(value).decode("ascii")
    _require(isinstance(value, str), path, "a str", value)
    return str(value)


def _timestamp_text(shape: Shape, value: Any, path: str) -> str:
    if isinstance(value, datetime):
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    else:
        _require(_is_number(value), path, "a datetime or epoch seconds", value)
        moment = datetime.fromtimestamp(value, UTC)
    style = str(shape.serialization.get("timestampFormat", "iso8601")).lower()
    if style == "unixtimestamp":
        return _number_text(round(moment.timestamp(), 3))
    if style == "rfc822":
        return format_datetime(moment.replace(microsecond=0), usegmt=True)
    # ISO 8601 in UTC, to the millisecond as AWS writes it (2011-07-15T23:28:33.359Z).
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    milliseconds = moment.microsecond // 1000
    return f"{text}.{milliseconds:03d}Z" if milliseconds else f"{text}Z"


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _require(condition: bool, path: str, expected: str, value: Any) -> None:
    if not condition:
        # Only the type is named: the value may be secret material.
        raise TypeError(f"{path}: expected {expected}, got {type(value).__name__}")


def _namespace(service: ServiceModel | None) -> str | None:
    namespace = service.metadata.get("xmlNamespace") if service is not None else None
    return str(namespace) if namespace else None


# ---------------------------------------------------------------------------- errors


def error_body(error: ServiceError, request_id: str, service: ServiceModel | None) -> bytes:
    """The AWS Query error body; botocore reads ``Error/Code`` and ``Error/Message``.

    ``service`` gives the ``xmlns``; None (the service is not known yet) omits it.
    """
    xml = _Xml()
    xml.open("ErrorResponse", _namespace(service))
    xml.open("Error")
    xml.leaf("Type", "Sender" if error.sender_fault else "Receiver")
    xml.leaf("Code", error.code)
    xml.leaf("Message", error.message)
    xml.close("Error")
    xml.leaf("RequestId", request_id)
    xml.close("ErrorResponse")
    return xml.bytes()


def error_headers(error: ServiceError) -> dict[str, str]:
    return {"Content-Type": CONTENT_TYPE}


def error_status(service: ServiceModel | None, code: str) -> int:
    """The HTTP status AWS answers error ``code`` with: the model's error shape says
    (``"error": {"code": "NoSuchEntity", "httpStatusCode": 404}``), else the common
    Query errors' table (also before the service is known), else 400."""
    modeled = modeled_errors(service).get(code) if service is not None else None
    if modeled is not None:
        return modeled[0]
    return _COMMON_STATUS.get(code, 400)


def modeled_error(service: str | ServiceModel, code: str, message: str) -> ServiceError:
    """Error ``code`` of ``service`` (its name, or its model) with the HTTP status and fault
    its model declares (else the common Query errors' table, else 400): how IAM and STS
    build their errors, so no status is written as a literal."""
    model = service_model(service) if isinstance(service, str) else service
    status = error_status(model, code)
    modeled = modeled_errors(model).get(code)
    sender_fault = modeled[1] if modeled is not None else status < 500
    return ServiceError(code, message, status=status, sender_fault=sender_fault)
