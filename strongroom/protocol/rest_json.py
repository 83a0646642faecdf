"""AWS REST-JSON (Lambda), read and written from botocore's model.

The server-side mirror of botocore's ``RestJSONSerializer`` and ``RestJSONParser``: an
operation is found by its HTTP method and URI template (``/2015-03-31/functions/
{FunctionName}/invocations``); its input members come from where the model binds them
(``location``: ``uri``, ``querystring``, ``header``, ``headers``), the rest from the
JSON body, or the whole body when the input names a ``payload`` member. Output goes the
same way back: ``statusCode`` members set the HTTP status (else the operation's
``responseCode``), ``header`` members become headers, a ``payload`` blob is the raw body.
Body members are read and written by :mod:`strongroom.protocol.json_codec`'s walkers,
and the whole input is validated by the shared walker, so no operation has wire code.

Errors carry the code in ``x-amzn-ErrorType`` and ``{"Type": ..., "message": ...}`` in
the body, with the status the model gives the error shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson
from botocore.model import OperationModel, ServiceModel, Shape

from strongroom.protocol import json_codec
from strongroom.protocol.errors import ServiceError, modeled_errors, serialization_error
from strongroom.protocol.errors import validation_error as _validation_error
from strongroom.protocol.model import shape_plan
from strongroom.protocol.rest_routes import RestRoutes, group_name, route
from strongroom.protocol.sigv4 import HttpRequest
from strongroom.protocol.validation import INT_RANGES, validate

__all__ = ["RestRoutes", "error_response", "parse_input", "serialize_output"]

CONTENT_TYPE = "application/json"
# The status REST services answer the common errors with (no model lists them).
_COMMON_STATUS = {
    "AccessDeniedException": 403,
    "UnrecognizedClientException": 403,
    "InvalidSignatureException": 403,
    "IncompleteSignatureException": 403,
    "MissingAuthenticationTokenException": 403,
    "ExpiredTokenException": 403,
    "UnknownOperationException": 404,
}
_BOUND = frozenset({"uri", "querystring", "header", "headers", "statusCode"})


# --------------------------------------------------------------------------- input


def parse_input(operation: OperationModel, request: HttpRequest) -> dict[str, Any]:
    """The operation's input from the request's path, query, headers and body, keyed by
    model member names, validated against the model."""
    shape = operation.input_shape
    if shape is None:
        return {}
    payload = shape.serialization.get("payload")
    parsed: dict[str, Any] = {}
    if payload:
        member = shape.members[payload]
        if member.type_name == "blob":
            if request.body:
                parsed[payload] = request.body
        elif member.type_name == "string":
            if request.body:
                parsed[payload] = request.body.decode("utf-8", "replace")
        elif request.body.strip():
            parsed[payload] = json_codec.read_document(
                member, json_codec.decode_document(request.body)
            )
    else:
        document = json_codec.decode_document(request.body)
        unbound = _unbound_names(shape)
        parsed.update(
            json_codec.read_document(
                shape, {key: value for key, value in document.items() if key in unbound}
            )
        )
    parsed.update(_bound_members(operation, shape, request))
    validate(shape, parsed, _validation_error)
    return parsed


def _unbound_names(shape: Shape) -> frozenset[str]:
    """The wire names of the members that travel in the JSON body."""

    def build(root: Shape) -> frozenset[str]:
        return frozenset(
            member.serialization.get("name", name)
            for name, member in root.members.items()
            if member.serialization.get("location") not in _BOUND
        )

    return shape_plan(shape, "_strongroom_rest_body_names", build)


def _bound_members(operation: OperationModel, shape: Shape, request: HttpRequest) -> dict[str, Any]:
    found: dict[str, Any] = {}
    labels: dict[str, str] = {}
    planned = route(operation)
    matched = planned.pattern.fullmatch(request.path)
    if matched is not None:
        labels = {name: unquote(value) for name, value in matched.groupdict().items()}
    query = parse_qsl(request.query, keep_blank_values=True)
    headers = {name.lower(): value for name, value in request.headers}
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = str(member.serialization.get("name", name))
        if location == "uri":
            if group_name(wire) in labels:
                found[name] = labels[group_name(wire)]
        elif location == "querystring":
            if member.type_name == "map":
                bound = {
                    str(m.serialization.get("name", n))
                    for n, m in shape.members.items()
                    if m.serialization.get("location") == "querystring" and n != name
                }
                found[name] = {key: value for key, value in query if key not in bound} or None
                if found[name] is None:
                    del found[name]
                continue
            values = [value for key, value in query if key == wire]
            if not values:
                continue
            if member.type_name == "list":
                found[name] = [_scalar(member.member, value, wire) for value in values]
            else:
                found[name] = _scalar(member, values[0], wire)
        elif location == "header":
            value = headers.get(wire.lower())
            if value is not None:
                found[name] = _scalar(member, value, wire)
        elif location == "headers":
            prefix = wire.lower()
            prefixed = {
                key[len(prefix) :]: value
                for key, value in headers.items()
                if key.startswith(prefix)
            }
            if prefixed:
                found[name] = prefixed
    return found


def _scalar(shape: Shape, raw: str, where: str) -> Any:
    kind = shape.type_name
    if kind in INT_RANGES:
        try:
            value = int(raw)
        except ValueError:
            raise serialization_error(f"Value at '{where}' is not an integer.") from None
        low, high = INT_RANGES[kind]
        if not low <= value <= high:
            raise serialization_error(f"Number at '{where}' is outside the range of {kind}.")
        return value
    if kind == "boolean":
        if raw.lower() not in ("true", "false"):
            raise serialization_error(f"Value at '{where}' is not a boolean.")
        return raw.lower() == "true"
    if kind in ("float", "double"):
        try:
            return float(raw)
        except ValueError:
            raise serialization_error(f"Value at '{where}' is not a number.") from None
    if kind == "timestamp":
        try:
            return parsedate_to_datetime(raw).astimezone(UTC)
        except (TypeError, ValueError):
            try:
                return datetime.fromisoformat(raw).astimezone(UTC)
            except ValueError:
                raise serialization_error(f"Value at '{where}' is not a timestamp.") from None
    return raw


# --------------------------------------------------------------------------- output


def serialize_output(
    operation: OperationModel, output: Mapping[str, Any] | None
) -> tuple[int, dict[str, str], bytes]:
    """The status, headers and body of a response with ``output``."""
    status = int(operation.http.get("responseCode", 200))
    headers: dict[str, str] = {}
    shape = operation.output_shape
    if shape is None or output is None:
        return status, headers, b"" if status == 204 else b"{}"
    body_members: dict[str, Any] = {}
    for name, member in shape.members.items():
        value = output.get(name)
        if value is None:
            continue
        location = member.serialization.get("location")
        if location == "statusCode":
            status = int(value)
        elif location == "header":
            headers[str(member.serialization.get("name", name))] = _header_value(value)
        elif location == "headers":
            prefix = str(member.serialization.get("name", name))
            headers.update({prefix + key: str(item) for key, item in value.items()})
        else:
            body_members[name] = value
    payload = shape.serialization.get("payload")
    if payload:
        value = body_members.get(payload)
        member = shape.members[payload]
        if member.type_name in ("blob", "string"):
            body = value.encode() if isinstance(value, str) else bytes(value or b"")
            headers.setdefault("Content-Type", "application/octet-stream")
            return status, headers, body
        body = json_codec.write_shape(member, value) if value is not None else b"{}"
    elif status == 204:
        body = b""
    else:
        body = json_codec.write_shape(shape, body_members)
    headers["Content-Type"] = CONTENT_TYPE
    return status, headers, body


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_datetime(value.astimezone(UTC), usegmt=True)
    return str(value)


# --------------------------------------------------------------------------- errors


def error_response(error: ServiceError, model: ServiceModel) -> tuple[int, dict[str, str], bytes]:
    """A REST-JSON error: the code in ``x-amzn-ErrorType``, the status the model gives the
    error's shape (when the error does not carry its own), the message in the body."""
    status = error.status
    if status == 400:
        status = modeled_errors(model).get(error.code, (_COMMON_STATUS.get(error.code, 400), True))[
            0
        ]
    body = orjson.dumps({"Type": "User" if status < 500 else "Service", "message": error.message})
    return status, {"x-amzn-ErrorType": error.code, "Content-Type": CONTENT_TYPE}, body
