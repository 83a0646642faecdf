"""REST-JSON (Lambda) read and written from botocore's model (strongroom/protocol/rest_json.py)."""

from __future__ import annotations

import json

import pytest

from strongroom.models import service_model
from strongroom.protocol import rest_json
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.sigv4 import HttpRequest

MODEL = service_model("lambda")
ROUTES = rest_json.RestRoutes(MODEL)


def request(
    method: str, path: str, query: str = "", body: bytes = b"", **headers: str
) -> HttpRequest:
    return HttpRequest(method, path, query, list(headers.items()), body)


@pytest.mark.parametrize(
    ("method", "path", "query", "operation"),
    [
        ("POST", "/2015-03-31/functions", "", "CreateFunction"),
        ("GET", "/2015-03-31/functions/", "", "ListFunctions"),
        ("GET", "/2015-03-31/functions/my-fn", "", "GetFunction"),
        ("GET", "/2015-03-31/functions/my-fn/configuration", "", "GetFunctionConfiguration"),
        ("PUT", "/2015-03-31/functions/my-fn/configuration", "", "UpdateFunctionConfiguration"),
        ("PUT", "/2015-03-31/functions/my-fn/code", "", "UpdateFunctionCode"),
        ("DELETE", "/2015-03-31/functions/my-fn", "", "DeleteFunction"),
        ("POST", "/2015-03-31/functions/my-fn/invocations", "", "Invoke"),
        ("POST", "/2015-03-31/functions/my-fn/policy", "", "AddPermission"),
        ("GET", "/2015-03-31/functions/my-fn/policy", "", "GetPolicy"),
        ("DELETE", "/2015-03-31/functions/my-fn/policy/sid-1", "", "RemovePermission"),
        (
            "GET",
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af",
            "",
            "GetFunction",
        ),
    ],
)
def test_routes_find_the_most_literal_template(
    method: str, path: str, query: str, operation: str
) -> None:
    assert ROUTES.match(method, path, query) == operation


def test_unknown_routes_and_prefixes() -> None:
    assert ROUTES.match("PATCH", "/2015-03-31/functions/x", "") is None
    assert ROUTES.serves_path("/2015-03-31/functions") and not ROUTES.serves_path("/other")


def test_members_come_from_where_the_model_binds_them() -> None:
    operation = MODEL.operation_model("Invoke")
    parsed = rest_json.parse_input(
        operation,
        request(
            "POST",
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af/invocations",
            "Qualifier=%24LATEST",
            b'{"a": 1}',
            **{"X-Amz-Invocation-Type": "Event", "X-Amz-Log-Type": "Tail"},
        ),
    )
    assert parsed == {
        "FunctionName": "arn:aws:lambda:us-east-1:000000000000:function:f",
        "Qualifier": "$LATEST",
        "InvocationType": "Event",
        "LogType": "Tail",
        "Payload": b'{"a": 1}',
    }
    listed = rest_json.parse_input(
        MODEL.operation_model("ListFunctions"),
        request("GET", "/2015-03-31/functions/", "MaxItems=5&Marker=m"),
    )
    assert listed == {"MaxItems": 5, "Marker": "m"}


def test_body_members_are_read_and_uri_copies_in_the_body_ignored() -> None:
    body = json.dumps({"FunctionName": "from-body", "Timeout": 9}).encode()
    parsed = rest_json.parse_input(
        MODEL.operation_model("UpdateFunctionConfiguration"),
        request("PUT", "/2015-03-31/functions/from-path/configuration", "", body),
    )
    assert parsed == {"FunctionName": "from-path", "Timeout": 9}


def test_input_is_validated_and_typed() -> None:
    with pytest.raises(ServiceError) as invalid:
        rest_json.parse_input(
            MODEL.operation_model("ListFunctions"),
            request("GET", "/2015-03-31/functions/", "MaxItems=0"),
        )
    assert invalid.value.code == "ValidationException"
    with pytest.raises(ServiceError) as wrong:
        rest_json.parse_input(
            MODEL.operation_model("ListFunctions"),
            request("GET", "/2015-03-31/functions/", "MaxItems=many"),
        )
    assert wrong.value.code == "SerializationException"


def test_output_status_headers_and_payload() -> None:
    status, headers, body = rest_json.serialize_output(
        MODEL.operation_model("Invoke"),
        {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "LogResult": "U1RBUlQ=",
            "Payload": b"{}",
        },
    )
    assert status == 200 and body == b"{}"
    assert headers["X-Amz-Function-Error"] == "Unhandled"
    assert headers["X-Amz-Log-Result"] == "U1RBUlQ="
    status, _headers, body = rest_json.serialize_output(
        MODEL.operation_model("Invoke"), {"StatusCode": 202}
    )
    assert (status, body) == (202, b"")
    status, _headers, body = rest_json.serialize_output(
        MODEL.operation_model("AddPermission"), {"Statement": "{}"}
    )
    assert status == 201 and json.loads(body) == {"Statement": "{}"}
    status, _headers, body = rest_json.serialize_output(
        MODEL.operation_model("RemovePermission"), {}
    )
    assert (status, body) == (204, b"")


def test_errors_take_the_modeled_status_and_code_header() -> None:
    status, headers, body = rest_json.error_response(
        ServiceError("ResourceNotFoundException", "Function not found: x"), MODEL
    )
    assert status == 404 and headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    assert json.loads(body) == {"Type": "User", "message": "Function not found: x"}
    assert rest_json.error_response(ServiceError("ResourceConflictException", "m"), MODEL)[0] == 409
    assert rest_json.error_response(ServiceError("AccessDeniedException", "m"), MODEL)[0] == 403


def test_body_limits_follow_the_route() -> None:
    from strongroom.protocol.limits import DEFAULT_LIMIT, BodyLimits

    limits = BodyLimits(["lambda"])
    assert limits.limit_rest("POST", "/2015-03-31/functions") == 72 * 1024 * 1024
    assert limits.limit_rest("PUT", "/2015-03-31/functions/f/code") == 72 * 1024 * 1024
    assert limits.limit_rest("POST", "/2015-03-31/functions/f/invocations") == 8 * 1024 * 1024
    assert limits.limit_rest("GET", "/2015-03-31/functions/f") == DEFAULT_LIMIT
    assert limits.limit_rest("POST", "/2015-03-31/functions/f/policy") == DEFAULT_LIMIT
