"""Wire protocols behind one small interface, so the pipeline stays protocol-blind.

JSON 1.1 services are addressed by ``X-Amz-Target``; Query services (IAM, STS) by the
``Action`` form field and, since every client sends every service to the same endpoint,
by the service named in the SigV4 credential scope; REST-JSON services (Lambda) by the
method and path (:class:`strongroom.protocol.rest_json.RestRoutes`).

A wire's ``serialize`` answers headers and body; a status other than 200 (REST-JSON's
``responseCode`` and ``statusCode`` members) travels as the pseudo-header
:data:`STATUS_HEADER`, which the pipeline takes out before answering.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import parse_qsl

from botocore.model import OperationModel, ServiceModel

from strongroom.protocol import json_codec, rest_json
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.rest_routes import RestRoutes
from strongroom.protocol.sigv4 import HttpRequest

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
STATUS_HEADER = ":status"


class Wire(Protocol):
    def parse(self, operation: OperationModel, request: HttpRequest) -> dict[str, Any]: ...

    def serialize(
        self, operation: OperationModel, output: Mapping[str, Any] | None, request_id: str
    ) -> tuple[dict[str, str], bytes]: ...

    def error(self, error: ServiceError, request_id: str) -> tuple[int, dict[str, str], bytes]: ...


class JsonWire:
    def parse(self, operation: OperationModel, request: HttpRequest) -> dict[str, Any]:
        return json_codec.parse_input(operation, request.body)

    def serialize(
        self, operation: OperationModel, output: Mapping[str, Any] | None, request_id: str
    ) -> tuple[dict[str, str], bytes]:
        return (
            {"Content-Type": json_codec.CONTENT_TYPE},
            json_codec.serialize_output(operation, output),
        )

    def error(self, error: ServiceError, request_id: str) -> tuple[int, dict[str, str], bytes]:
        return error.status, json_codec.error_headers(error), json_codec.error_body(error)


# The same failures carry other names in the Query protocol (IAM, STS).
_QUERY_CODES = {
    "AccessDeniedException": "AccessDenied",
    "UnrecognizedClientException": "InvalidClientTokenId",
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "MissingAuthenticationTokenException": "MissingAuthenticationToken",
    "IncompleteSignatureException": "IncompleteSignature",
    "ExpiredTokenException": "ExpiredToken",
    "UnknownOperationException": "InvalidAction",
    "SerializationException": "MalformedInput",
    "ValidationException": "ValidationError",
}


class QueryWire:
    def __init__(self, model: ServiceModel | None) -> None:
        self._model = model

    def parse(self, operation: OperationModel, request: HttpRequest) -> dict[str, Any]:
        from strongroom.protocol import query_codec  # type: ignore[attr-defined,unused-ignore]

        parsed: dict[str, Any] = query_codec.parse_input(operation, request.body, request.query)
        return parsed

    def serialize(
        self, operation: OperationModel, output: Mapping[str, Any] | None, request_id: str
    ) -> tuple[dict[str, str], bytes]:
        from strongroom.protocol import query_codec  # type: ignore[attr-defined,unused-ignore]

        return (
            {"Content-Type": query_codec.CONTENT_TYPE},
            query_codec.serialize_output(operation, output, request_id),
        )

    def error(self, error: ServiceError, request_id: str) -> tuple[int, dict[str, str], bytes]:
        from strongroom.protocol import query_codec  # type: ignore[attr-defined,unused-ignore]

        if error.code in _QUERY_CODES:
            error = ServiceError(
                _QUERY_CODES[error.code], error.message, error.status, error.sender_fault
            )
        status = error.status
        if error.status == 400:
            status = query_codec.error_status(self._model, error.code)
        return (
            status,
            query_codec.error_headers(error),
            query_codec.error_body(error, request_id, self._model),
        )


class RestJsonWire:
    def __init__(self, model: ServiceModel) -> None:
        self._model = model
        self.routes = RestRoutes(model)

    def parse(self, operation: OperationModel, request: HttpRequest) -> dict[str, Any]:
        return rest_json.parse_input(operation, request)

    def serialize(
        self, operation: OperationModel, output: Mapping[str, Any] | None, request_id: str
    ) -> tuple[dict[str, str], bytes]:
        status, headers, body = rest_json.serialize_output(operation, output)
        if status != 200:
            headers[STATUS_HEADER] = str(status)
        return headers, body

    def error(self, error: ServiceError, request_id: str) -> tuple[int, dict[str, str], bytes]:
        return rest_json.error_response(error, self._model)


def wire_code(wire: Wire | None, code: str) -> str:
    """An error's code as the client receives it over ``wire``."""
    return _QUERY_CODES.get(code, code) if isinstance(wire, QueryWire) else code


def wire_for(model: ServiceModel) -> Wire:
    protocol = model.metadata.get("protocol")
    if protocol == "query":
        return QueryWire(model)
    if protocol == "rest-json":
        return RestJsonWire(model)
    return JsonWire()


def looks_like_query(request: HttpRequest, headers: Mapping[str, str]) -> bool:
    return headers.get("content-type", "").startswith(FORM_CONTENT_TYPE) or (
        request.method == "GET" and "Action=" in request.query
    )


def query_action(request: HttpRequest) -> str | None:
    for source in (request.body.decode("utf-8", "replace"), request.query):
        for name, value in parse_qsl(source, keep_blank_values=True):
            if name == "Action":
                return value
    return None
