"""SigV4 verification, held against the reference signer: botocore itself.

Requests are signed with ``botocore.auth.SigV4Auth`` / ``SigV4QueryAuth`` (or by real
botocore clients), turned into the :class:`HttpRequest` a server receives (raw path and
query as on the wire, header bytes decoded latin-1 as ASGI servers do), and must verify;
every single mutation must then fail with AWS's error code and text.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from unittest import mock
from urllib.parse import quote, urlsplit

import botocore.session
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials
from botocore.httpsession import URLLib3Session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.protocol.errors import ServiceError, invalid_signature
from strongroom.protocol.sigv4 import (
    HttpRequest,
    SigningKeyCache,
    SigV4Credential,
    parse_credential,
    verify,
)

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLE//SESSION+TOKEN="
NOW = dt.datetime(2026, 11, 29, 15, 0, 0, tzinfo=dt.UTC)
ENDPOINT = "http://127.0.0.1:8420"
MISMATCH = invalid_signature().message
INVALID = "InvalidSignatureException"
INCOMPLETE = "IncompleteSignatureException"
MISSING = "MissingAuthenticationTokenException"
JSON_HEADERS = (
    ("X-Amz-Target", "secretsmanager.GetSecretValue"),
    ("Content-Type", "application/x-amz-json-1.1"),
)
JSON_BODY = b'{"SecretId": "MyApp/DBCredentials"}'


# --- from botocore to what a server receives ------------------------------------------------


def frozen(when: dt.datetime) -> Any:
    """Make botocore sign at ``when`` (it reads a naive UTC clock)."""
    naive = when.astimezone(dt.UTC).replace(tzinfo=None)
    return mock.patch("botocore.auth.get_current_datetime", return_value=naive)


def wire_text(value: str | bytes) -> str:
    # botocore's endpoint sends header values UTF-8 encoded; servers decode bytes as latin-1.
    raw = value if isinstance(value, bytes) else value.encode("utf-8")
    return raw.decode("latin-1")


def wire_host(url: str) -> str:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}[parts.scheme]
    assert parts.hostname is not None
    if parts.port is None or parts.port == default:
        return parts.hostname
    return f"{parts.hostname}:{parts.port}"


def to_wire(
    url: str, method: str, headers: list[tuple[str, str | bytes]], body: bytes | str | None
) -> HttpRequest:
    """The request as an HTTP server receives it, with the headers the HTTP stack adds."""
    parts = urlsplit(url)
    target = (parts.path or "/") + parts.query
    assert target.isascii() and " " not in target, "botocore only ever sends encoded targets"
    data = body.encode("utf-8") if isinstance(body, str) else (body or b"")
    received: list[tuple[str, str]] = [("Host", wire_host(url))]
    received += [(name, wire_text(value)) for name, value in headers]
    received.append(("Accept-Encoding", "identity"))  # unsigned, added by urllib3
    if data and not any(name.lower() == "content-length" for name, _ in received):
        received.append(("Content-Length", str(len(data))))
    return HttpRequest(method, parts.path or "/", parts.query, received, data)


def prepared_to_wire(prepared: AWSPreparedRequest) -> HttpRequest:
    return to_wire(prepared.url, prepared.method, list(prepared.headers.items()), prepared.body)


def sign(
    method: str = "POST",
    url: str = ENDPOINT + "/",
    *,
    headers: tuple[tuple[str, str], ...] = JSON_HEADERS,
    body: bytes = JSON_BODY,
    params: dict[str, str] | None = None,
    secret: str = SECRET,
    token: str | None = None,
    service: str = "secretsmanager",
    region: str = "us-east-1",
    when: dt.datetime = NOW,
    payload_signing: bool = True,
    presign_expires: int | None = None,
) -> HttpRequest:
    """Sign with botocore and return what the server receives."""
    request = AWSRequest(method=method, url=url, data=body, params=params or {})
    signed_headers = HTTPHeaders()  # botocore's own header type: keeps repeated names
    for name, value in headers:
        signed_headers[name] = value
    request.headers = signed_headers
    if not payload_signing:
        request.context["payload_signing_enabled"] = False
    credentials = Credentials(AKID, secret, token)
    signer = (
        SigV4Auth(credentials, service, region)
        if presign_expires is None
        else SigV4QueryAuth(credentials, service, region, expires=presign_expires)
    )
    with frozen(when):
        signer.add_auth(request)
    prepared = request.prepare()  # final URL (params encoded) and body, as sent
    # Headers from the signed request: a prepared request would fold repeated names.
    return to_wire(prepared.url, method, list(request.headers.items()), prepared.body)


class _Sent(Exception):
    def __init__(self, request: AWSPreparedRequest) -> None:
        super().__init__("captured")
        self.request = request


_SESSION = botocore.session.get_session()


def client_request(
    service: str,
    call: Callable[[Any], object],
    *,
    region: str = "us-east-1",
    token: str | None = None,
    when: dt.datetime = NOW,
) -> HttpRequest:
    """The request a real botocore client sends for ``call`` (captured before sending)."""
    client = _SESSION.create_client(
        service,
        region_name=region,
        endpoint_url=ENDPOINT,
        aws_access_key_id=AKID,
        aws_secret_access_key=SECRET,
        aws_session_token=token,
    )

    def capture(request: AWSPreparedRequest, **_: object) -> None:
        raise _Sent(request)

    client.meta.events.register("before-send", capture)
    with frozen(when), pytest.raises(_Sent) as sent:
        call(client)
    return prepared_to_wire(sent.value.request)


def presigned_url(service: str, operation: str, params: dict[str, str], expires: int) -> str:
    client = _SESSION.create_client(
        service,
        region_name="eu-west-1",
        endpoint_url=ENDPOINT,
        aws_access_key_id=AKID,
        aws_secret_access_key=SECRET,
    )
    with frozen(NOW):
        url: str = client.generate_presigned_url(operation, Params=params, ExpiresIn=expires)
    return url


# --- mutating a received request ------------------------------------------------------------


def header(request: HttpRequest, name: str) -> str:
    return next(value for key, value in request.headers if key.lower() == name.lower())


def with_header(request: HttpRequest, name: str, value: str | None) -> HttpRequest:
    """Replace every ``name`` header by one with ``value`` (``None`` removes it)."""
    kept = [(key, val) for key, val in request.headers if key.lower() != name.lower()]
    if value is not None:
        kept.append((name, value))
    return dataclasses.replace(request, headers=kept)


def with_authorization(request: HttpRequest, old: str, new: str) -> HttpRequest:
    authorization = header(request, "Authorization")
    assert old in authorization
    return with_header(request, "Authorization", authorization.replace(old, new))


def with_query_param(request: HttpRequest, name: str, value: str | None) -> HttpRequest:
    pairs = [p for p in request.query.split("&") if p.split("=", 1)[0] != name]
    if value is not None:
        pairs.append(f"{name}={value}")
    return dataclasses.replace(request, query="&".join(pairs))


def flip_last(signature: str) -> str:
    return signature[:-1] + ("0" if signature[-1] != "0" else "1")


def with_signature(request: HttpRequest, change: Callable[[str], str]) -> HttpRequest:
    signature = parse_credential(request).signature
    return with_authorization(request, f"Signature={signature}", f"Signature={change(signature)}")


def accepted(request: HttpRequest, now: dt.datetime = NOW, **kwargs: Any) -> SigV4Credential:
    credential = parse_credential(request)
    verify(request, credential, SECRET, now, **kwargs)
    return credential


def rejected(
    request: HttpRequest,
    code: str,
    message: str | None = None,
    *,
    secret: str = SECRET,
    now: dt.datetime = NOW,
    **kwargs: Any,
) -> ServiceError:
    with pytest.raises(ServiceError) as info:
        verify(request, parse_credential(request), secret, now, **kwargs)
    error = info.value
    assert error.code == code, error.message
    if message is not None:
        assert error.message == message
    assert secret not in str(error) and secret not in repr(error)
    return error


# --- the AWS documentation's published vectors ----------------------------------------------


DOC_AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date, "
    "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
)
DOC_REQUEST = HttpRequest(
    method="GET",
    path="/",
    query="Action=ListUsers&Version=2010-05-08",
    headers=[
        ("Host", "iam.amazonaws.com"),
        ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
        ("X-Amz-Date", "20150830T123600Z"),
        ("Authorization", DOC_AUTHORIZATION),
    ],
    body=b"",
)
DOC_NOW = dt.datetime(2015, 8, 30, 12, 36, tzinfo=dt.UTC)


def test_the_aws_documentation_example_verifies() -> None:
    # "GET /?Action=ListUsers&Version=2010-05-08" from the SigV4 signing documentation.
    credential = parse_credential(DOC_REQUEST)
    assert credential == SigV4Credential(
        access_key_id="AKIDEXAMPLE",
        date="20150830",
        region="us-east-1",
        service="iam",
        signed_headers=("content-type", "host", "x-amz-date"),
        signature="5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
        amz_date="20150830T123600Z",
        security_token=None,
        presigned=False,
        expires=None,
    )
    verify(DOC_REQUEST, credential, SECRET, DOC_NOW)
    rejected(DOC_REQUEST, INVALID, MISMATCH, secret=SECRET[:-1], now=DOC_NOW)


def test_the_aws_documentation_signing_key() -> None:
    key = SigningKeyCache().signing_key(SECRET, "20150830", "us-east-1", "iam")
    assert key.hex() == "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"


def test_the_older_aws_documentation_post_example_verifies() -> None:
    # The 2011 "Signed Signature Version 4 Requests Examples" page: a POST with a form body.
    request = HttpRequest(
        "POST",
        "/",
        "",
        [
            ("host", "iam.amazonaws.com"),
            ("Content-type", "application/x-www-form-urlencoded; charset=utf-8"),
            ("x-amz-date", "20110909T233600Z"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20110909/us-east-1/iam/aws4_request, "
                "SignedHeaders=content-type;host;x-amz-date, "
                "Signature=ced6826de92d2bdeed8f846f0bf508e8559e98e4b0199114b84c54174deb456c",
            ),
        ],
        b"Action=ListUsers&Version=2010-05-08",
    )
    accepted(request, now=dt.datetime(2011, 9, 9, 23, 36, tzinfo=dt.UTC))


# --- botocore-signed requests verify ---------------------------------------------------------


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


SIGNED_CASES: dict[str, dict[str, Any]] = {
    "json 1.1 POST": {},
    "GET without body": {"method": "GET", "headers": (), "body": b""},
    "PUT binary body": {"method": "PUT", "url": ENDPOINT + "/blob", "body": bytes(range(256)) * 9},
    "DELETE": {"method": "DELETE", "url": ENDPOINT + "/things/1", "body": b""},
    "PATCH": {"method": "PATCH", "url": ENDPOINT + "/things/1"},
    "HEAD": {"method": "HEAD", "url": ENDPOINT + "/things/1", "body": b""},
    "empty path": {"method": "GET", "url": ENDPOINT, "body": b""},
    "encoded space in path": {"url": ENDPOINT + "/a%20b/c%20"},
    "encoded unicode in path": {"url": ENDPOINT + "/caf%C3%A9/%E2%9C%93/%F0%9F%94%91"},
    "encoded reserved chars in path": {"url": ENDPOINT + "/arn%3Aaws%3Ax/%2F/a%2Bb%26c%3D%25"},
    "dot segments and repeated slashes": {"url": ENDPOINT + "/a/./b/../c//d/"},
    "sub-delims and unreserved in path": {"url": ENDPOINT + "/A-Z_a.z~09/!$'()*,;=:@"},
    "trailing slash": {"url": ENDPOINT + "/dir/"},
    "query with repeated keys and empty values": {
        "method": "GET",
        "url": ENDPOINT + "/?b=2&a=1&a=0&empty=&flag&z=%20&%C3%A9=%E2%9C%93",
        "body": b"",
    },
    "query from params (form-encoded on the wire)": {
        "method": "GET",
        "url": ENDPOINT + "/list",
        "params": {"k": "a b+c/d~e", "é": "ü ✓", "empty": "", "Marker": "x=y&z"},
        "body": b"",
    },
    "header values with extra spaces and tabs": {
        "headers": (*JSON_HEADERS, ("X-Spaces", "  a   b \t c  "), ("X-Tab", "\tx\t")),
    },
    "mixed-case header names": {"headers": (("x-AMZ-target", "t"), ("CONTENT-type", "c/d"))},
    "repeated header names": {
        "headers": (*JSON_HEADERS, ("X-Rep", "1"), ("X-Rep", "  2  two "), ("x-rep", "3")),
    },
    "non-ascii header value": {"headers": (*JSON_HEADERS, ("X-Meta", "café ✓ 🔑"))},
    "session token": {"token": TOKEN},
    "x-amz-content-sha256 header": {
        "headers": (*JSON_HEADERS, ("X-Amz-Content-SHA256", _sha256(JSON_BODY))),
    },
    "Date header instead of X-Amz-Date": {
        "headers": (*JSON_HEADERS, ("Date", "Thu, 01 Jan 1970 00:00:00 GMT")),
    },
    "other region and service": {"region": "ap-southeast-2", "service": "kms"},
    "large body": {"body": b"x" * 1_000_000},
}


@pytest.mark.parametrize("case", SIGNED_CASES.values(), ids=SIGNED_CASES.keys())
def test_botocore_signed_requests_verify(case: dict[str, Any]) -> None:
    request = sign(**case)
    credential = accepted(request)
    assert credential.access_key_id == AKID
    assert credential.presigned is False
    assert credential.security_token == case.get("token")
    accepted(request, cache=SigningKeyCache())


def test_repeated_headers_are_joined_in_order() -> None:
    request = sign(headers=(*JSON_HEADERS, ("X-Rep", "1"), ("X-Rep", "2")))
    reordered = [*[h for h in request.headers if h[0] != "X-Rep"], ("X-Rep", "2"), ("X-Rep", "1")]
    rejected(dataclasses.replace(request, headers=reordered), INVALID, MISMATCH)


def test_the_date_header_is_read_as_utc() -> None:
    request = sign(headers=(*JSON_HEADERS, ("Date", "whatever")))
    assert header(request, "Date") == "Sun, 29 Nov 2026 15:00:00 -0000"  # botocore's formatdate
    assert parse_credential(request).amz_date == "20261129T150000Z"


REAL_CLIENT_CALLS: dict[str, tuple[str, Callable[[Any], object]]] = {
    "secretsmanager GetSecretValue": (
        "secretsmanager",
        lambda c: c.get_secret_value(SecretId="MyApp/DB creds"),
    ),
    "secretsmanager CreateSecret": (
        "secretsmanager",
        lambda c: c.create_secret(Name="n", SecretString='{"password": "P@ss w0rd ✓"}'),
    ),
    "lambda with ARN in path and query": (
        "lambda",
        lambda c: c.get_function_configuration(
            FunctionName="arn:aws:lambda:us-east-1:000000000000:function:my fn",
            Qualifier="v 1+2",
        ),
    ),
    "iam query protocol": ("iam", lambda c: c.list_users(PathPrefix="/a b/")),
    "sts query protocol": ("sts", lambda c: c.get_caller_identity()),
    "kms binary blob": ("kms", lambda c: c.decrypt(CiphertextBlob=bytes(range(256)))),
}


@pytest.mark.parametrize("token", [None, TOKEN], ids=["long-term", "session"])
@pytest.mark.parametrize("call", REAL_CLIENT_CALLS.values(), ids=REAL_CLIENT_CALLS.keys())
def test_real_client_requests_verify(
    call: tuple[str, Callable[[Any], object]], token: str | None
) -> None:
    service, operation = call
    request = client_request(service, operation, region="eu-central-1", token=token)
    credential = accepted(request, service=service)
    assert (credential.region, credential.service) == ("eu-central-1", service)
    assert credential.security_token == token
    if request.body:
        tampered = request.body[:-1] + bytes([request.body[-1] ^ 1])
        rejected(dataclasses.replace(request, body=tampered), INVALID, MISMATCH)


def test_real_client_lambda_path_is_double_encoded() -> None:
    request = client_request("lambda", REAL_CLIENT_CALLS["lambda with ARN in path and query"][1])
    assert "%3A" in request.path and "%20" in request.path  # encoded once on the wire
    accepted(request)
    # The same path encoded differently is a different request.
    rejected(dataclasses.replace(request, path=request.path.replace("%3A", ":")), INVALID)


@pytest.fixture
def capturing_server() -> Iterator[tuple[str, list[HttpRequest]]]:
    received: list[HttpRequest] = []

    class Handler(BaseHTTPRequestHandler):
        def _capture(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            path, _, query = self.path.partition("?")
            # http.server decodes the request line and headers as latin-1, like ASGI servers.
            received.append(
                HttpRequest(
                    self.command, path, query, list(self.headers.items()), self.rfile.read(length)
                )
            )
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _capture

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def test_requests_received_over_a_socket_verify(
    capturing_server: tuple[str, list[HttpRequest]],
) -> None:
    # The real HTTP stack (botocore's urllib3 session) to a real server: no simulation.
    base, received = capturing_server
    session = URLLib3Session()
    cases: list[dict[str, Any]] = [
        {"method": "POST", "url": base + "/", "headers": JSON_HEADERS, "body": JSON_BODY},
        {"method": "GET", "url": base + "/caf%C3%A9/a%20b/./x//y", "body": b""},
        {"method": "GET", "url": base + "/q", "params": {"k": "a b+c", "é": "✓"}, "body": b""},
        {"method": "PUT", "url": base + "/b", "headers": (("X-S", "  a   b  "),)},
        {"method": "POST", "url": base + "/", "headers": (("X-Meta", "café ✓"),)},
    ]
    for case in cases:
        request = AWSRequest(
            method=case["method"],
            url=case["url"],
            data=case.get("body", bytes(range(256))),
            params=case.get("params", {}),
            headers=dict(case.get("headers", ())),
        )
        with frozen(NOW):
            SigV4Auth(Credentials(AKID, SECRET, TOKEN), "secretsmanager", "us-east-1").add_auth(
                request
            )
        prepared = request.prepare()
        for name, value in list(prepared.headers.items()):
            prepared.headers[name] = value.encode("utf-8")  # as botocore's endpoint does
        session.send(prepared)
        accepted(received[-1])
    assert len(received) == len(cases)


# --- presigned (query string) requests -------------------------------------------------------


def test_presigned_request_verifies() -> None:
    request = sign(
        "GET", ENDPOINT + "/?Action=Get&Name=a%20b", headers=(), body=b"", presign_expires=3600
    )
    assert "X-Amz-Signature=" in request.query
    credential = accepted(request)
    assert credential.presigned is True
    assert credential.expires == 3600
    assert credential.security_token is None
    accepted(request, now=NOW + dt.timedelta(seconds=3600))
    rejected(request, INVALID, "Request has expired", now=NOW + dt.timedelta(seconds=3601))


def test_presigned_request_with_session_token() -> None:
    request = sign("GET", headers=(), body=b"", token=TOKEN, presign_expires=60)
    assert accepted(request).security_token == TOKEN
    rejected(with_query_param(request, "X-Amz-Security-Token", "other"), INVALID, MISMATCH)


def test_botocore_presigned_urls_verify() -> None:
    # botocore presigns with the operation's method (POST for these protocols).
    sts = urlsplit(presigned_url("sts", "get_caller_identity", {}, 900))
    request = HttpRequest("POST", sts.path, sts.query, [("Host", sts.netloc)], b"")
    accepted(request, service="sts")
    rejected(dataclasses.replace(request, method="GET"), INVALID, MISMATCH)

    url = presigned_url("secretsmanager", "get_secret_value", {"SecretId": "My App/x+y"}, 900)
    parts = urlsplit(url)
    headers = [("Host", parts.netloc), *JSON_HEADERS]
    request = HttpRequest("POST", parts.path, parts.query, headers, b"")
    accepted(request)
    rejected(with_query_param(request, "SecretId", "Other"), INVALID, MISMATCH)


def test_presigned_expires_up_to_a_week() -> None:
    request = sign("GET", headers=(), body=b"", presign_expires=604800)
    accepted(request, now=NOW + dt.timedelta(days=7))
    rejected(request, INVALID, "Request has expired", now=NOW + dt.timedelta(days=7, seconds=1))


@pytest.mark.parametrize(
    ("expires", "message"),
    [
        (
            "604801",
            "X-Amz-Expires must be less than a week (in seconds); that is, "
            "the given X-Amz-Expires must be less than 604800 seconds",
        ),
        ("-1", "X-Amz-Expires must be non-negative"),
        ("soon", "X-Amz-Expires should be a number"),
        ("1_000", "X-Amz-Expires should be a number"),
        ("", "X-Amz-Expires should be a number"),
    ],
)
def test_presigned_expires_must_be_valid(expires: str, message: str) -> None:
    request = with_query_param(sign("GET", presign_expires=60), "X-Amz-Expires", expires)
    with pytest.raises(ServiceError) as info:
        parse_credential(request)
    assert (info.value.code, info.value.message) == (INCOMPLETE, message)


def test_presigned_without_expires_gets_the_fifteen_minute_window() -> None:
    request = with_query_param(sign("GET", presign_expires=60), "X-Amz-Expires", None)
    assert parse_credential(request).expires is None
    rejected(
        request,
        INVALID,
        "Signature expired: 20261129T150000Z is now earlier than 20261129T150100Z "
        "(20261129T151600Z - 15 min.)",
        now=NOW + dt.timedelta(minutes=16),
    )


def test_presigned_from_the_future_is_not_yet_current() -> None:
    request = sign("GET", presign_expires=3600, when=NOW + dt.timedelta(minutes=16))
    rejected(
        request,
        INVALID,
        "Signature not yet current: 20261129T151600Z is still later than 20261129T151500Z "
        "(20261129T150000Z + 15 min.)",
    )


def test_presigned_tampering_is_rejected() -> None:
    request = sign("GET", ENDPOINT + "/?Name=a", headers=(), body=b"", presign_expires=3600)
    rejected(with_query_param(request, "Name", "b"), INVALID, MISMATCH)
    rejected(with_query_param(request, "Extra", "1"), INVALID, MISMATCH)
    rejected(with_query_param(request, "X-Amz-Expires", "7200"), INVALID, MISMATCH)
    rejected(dataclasses.replace(request, path="/other"), INVALID, MISMATCH)
    flipped = flip_last(parse_credential(request).signature)
    rejected(with_query_param(request, "X-Amz-Signature", flipped), INVALID, MISMATCH)


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        (
            ("X-Amz-Signature",),
            "AWS query-string parameters must include 'X-Amz-Signature'. "
            "Re-examine the query-string parameters.",
        ),
        (
            ("X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date"),
            "AWS query-string parameters must include 'X-Amz-Credential'. "
            "AWS query-string parameters must include 'X-Amz-Signature'. "
            "AWS query-string parameters must include 'X-Amz-SignedHeaders'. "
            "AWS query-string parameters must include 'X-Amz-Date'. "
            "Re-examine the query-string parameters.",
        ),
    ],
)
def test_presigned_missing_parameters(drop: tuple[str, ...], message: str) -> None:
    request = sign("GET", presign_expires=60)
    for name in drop:
        request = with_query_param(request, name, None)
    rejected(request, INCOMPLETE, message)


def test_presigned_unknown_algorithm_is_missing_authentication() -> None:
    request = with_query_param(sign("GET", presign_expires=60), "X-Amz-Algorithm", "AWS4-X")
    rejected(request, MISSING, "Missing Authentication Token")


def test_header_and_query_authentication_together_are_refused() -> None:
    presigned = sign("GET", presign_expires=60)
    both = with_header(presigned, "Authorization", header(sign(), "Authorization"))
    rejected(both, INVALID, MISMATCH)


# --- single mutations of a header-signed request ---------------------------------------------


@pytest.fixture
def signed() -> HttpRequest:
    return sign(headers=(*JSON_HEADERS, ("X-Extra", "e")), token=TOKEN)


MUTATIONS: dict[str, Callable[[HttpRequest], HttpRequest]] = {
    "body byte changed": lambda r: dataclasses.replace(r, body=r.body.replace(b"MyApp", b"MyApq")),
    "body appended": lambda r: dataclasses.replace(r, body=r.body + b" "),
    "body emptied": lambda r: dataclasses.replace(r, body=b""),
    "signed header changed": lambda r: with_header(
        r, "X-Amz-Target", "secretsmanager.DeleteSecret"
    ),
    "signed header removed": lambda r: with_header(r, "X-Extra", None),
    "signed header repeated": lambda r: dataclasses.replace(
        r, headers=[*r.headers, ("X-Extra", "e")]
    ),
    "host changed": lambda r: with_header(r, "Host", "attacker.example"),
    "x-amz-date changed": lambda r: with_header(r, "X-Amz-Date", "20261129T150001Z"),
    "security token changed": lambda r: with_header(r, "X-Amz-Security-Token", "other"),
    "method changed": lambda r: dataclasses.replace(r, method="PUT"),
    "path changed": lambda r: dataclasses.replace(r, path="/other"),
    "query added": lambda r: dataclasses.replace(r, query="a=1"),
    "region in scope": lambda r: with_authorization(r, "/us-east-1/", "/us-west-2/"),
    "service in scope": lambda r: with_authorization(r, "/secretsmanager/", "/kms/"),
    "signed headers list shortened": lambda r: with_authorization(r, ";x-extra", ""),
    "signature last char flipped": lambda r: with_signature(r, flip_last),
    "signature upper-cased": lambda r: with_signature(r, str.upper),
    "signature truncated": lambda r: with_signature(r, lambda sig: sig[:-2]),
    "signature not ascii": lambda r: with_signature(r, lambda sig: sig[:-1] + "é"),
}


@pytest.mark.parametrize("mutate", MUTATIONS.values(), ids=MUTATIONS.keys())
def test_each_mutation_is_rejected(signed: HttpRequest, mutate: Callable[..., HttpRequest]) -> None:
    accepted(signed)
    rejected(mutate(signed), INVALID, MISMATCH)


def test_unsigned_headers_may_change(signed: HttpRequest) -> None:
    accepted(with_header(signed, "User-Agent", "something else"))
    accepted(with_header(signed, "Accept-Encoding", None))
    accepted(dataclasses.replace(signed, headers=[*signed.headers, ("X-Not-Signed", "x")]))


def test_the_access_key_binds_through_its_secret(signed: HttpRequest) -> None:
    # The access key id is not in the string to sign: what binds it is that the caller
    # verifies with the secret of *that* key.
    other_key = with_authorization(signed, f"={AKID}/", "=AKIDOTHER/")
    assert parse_credential(other_key).access_key_id == "AKIDOTHER"
    rejected(other_key, INVALID, MISMATCH, secret="the secret of AKIDOTHER")


def test_wrong_secret(signed: HttpRequest) -> None:
    rejected(signed, INVALID, MISMATCH, secret="another secret")


def test_expected_service(signed: HttpRequest) -> None:
    accepted(signed, service="secretsmanager")
    rejected(
        signed, INVALID, "Credential should be scoped to correct service: 'kms'.", service="kms"
    )


def test_signature_is_compared_in_constant_time(signed: HttpRequest) -> None:
    with mock.patch.object(hmac, "compare_digest", wraps=hmac.compare_digest) as compare:
        accepted(signed)
    compare.assert_called_once()


# --- the clock -------------------------------------------------------------------------------


def test_fifteen_minutes_either_way_is_accepted(signed: HttpRequest) -> None:
    accepted(signed, now=NOW + dt.timedelta(minutes=15))
    accepted(signed, now=NOW - dt.timedelta(minutes=15))
    accepted(signed, now=NOW + dt.timedelta(minutes=15, microseconds=999_999))


def test_signature_expired_has_the_aws_text() -> None:
    request = sign(when=dt.datetime(2013, 5, 24, tzinfo=dt.UTC))
    rejected(
        request,
        INVALID,
        "Signature expired: 20130524T000000Z is now earlier than 20130524T001000Z "
        "(20130524T002500Z - 15 min.)",
        now=dt.datetime(2013, 5, 24, 0, 25, tzinfo=dt.UTC),
    )


def test_signature_not_yet_current_has_the_aws_text() -> None:
    request = sign(when=dt.datetime(2013, 5, 24, 0, 30, tzinfo=dt.UTC))
    rejected(
        request,
        INVALID,
        "Signature not yet current: 20130524T003000Z is still later than 20130524T002000Z "
        "(20130524T000500Z + 15 min.)",
        now=dt.datetime(2013, 5, 24, 0, 5, tzinfo=dt.UTC),
    )


def test_now_in_another_timezone_is_converted(signed: HttpRequest) -> None:
    accepted(signed, now=NOW.astimezone(dt.timezone(dt.timedelta(hours=-8))))


def test_naive_now_is_a_programming_error(signed: HttpRequest) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify(signed, parse_credential(signed), SECRET, NOW.replace(tzinfo=None))


def test_scope_date_must_match_the_request_date(signed: HttpRequest) -> None:
    request = with_authorization(signed, f"{AKID}/20261129/", f"{AKID}/20261128/")
    rejected(
        request,
        INVALID,
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '20261128' != '20261129', from '20261129T150000Z'.",
    )


# --- malformed authentication ----------------------------------------------------------------


def test_no_authentication_at_all() -> None:
    request = HttpRequest("POST", "/", "", [("Host", "h"), *JSON_HEADERS], JSON_BODY)
    rejected(request, MISSING, "Missing Authentication Token")


def _without_param(authorization: str, name: str) -> str:
    algorithm, params = authorization.split(" ", 1)
    kept = [p for p in params.split(", ") if not p.startswith(name + "=")]
    return f"{algorithm} {', '.join(kept)}"


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("Credential", "Authorization header requires 'Credential' parameter."),
        ("Signature", "Authorization header requires 'Signature' parameter."),
        ("SignedHeaders", "Authorization header requires 'SignedHeaders' parameter."),
    ],
)
def test_missing_authorization_parameter(signed: HttpRequest, missing: str, message: str) -> None:
    request = with_header(
        signed, "Authorization", _without_param(header(signed, "Authorization"), missing)
    )
    rejected(request, INCOMPLETE, f"{message} Authorization=AWS4-HMAC-SHA256")


def test_everything_missing_lists_every_part(signed: HttpRequest) -> None:
    request = with_header(
        with_header(signed, "X-Amz-Date", None), "Authorization", "AWS4-HMAC-SHA256"
    )
    rejected(
        request,
        INCOMPLETE,
        "Authorization header requires 'Credential' parameter. "
        "Authorization header requires 'Signature' parameter. "
        "Authorization header requires 'SignedHeaders' parameter. "
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        "Authorization=AWS4-HMAC-SHA256",
    )


def test_missing_date(signed: HttpRequest) -> None:
    rejected(
        with_header(signed, "X-Amz-Date", None),
        INCOMPLETE,
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        "Authorization=AWS4-HMAC-SHA256",
    )


@pytest.mark.parametrize("value", ["2026-11-29T15:00:00Z", "20261329T150000Z", "20261129T1500Z"])
def test_malformed_date(signed: HttpRequest, value: str) -> None:
    rejected(
        with_header(signed, "X-Amz-Date", value),
        INCOMPLETE,
        f"Date must be in ISO-8601 'basic format'. Got '{value}'. "
        "See http://en.wikipedia.org/wiki/ISO_8601",
    )


@pytest.mark.parametrize(
    ("authorization", "shown"),
    [
        (
            "AWS4-HMAC-SHA512 Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=0",
            "AWS4-HMAC-SHA512",
        ),
        ("AWS4-ECDSA-P256-SHA256 Credential=x", "AWS4-ECDSA-P256-SHA256"),
        ("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "Bearer"),
        ("AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=", "AWS"),
        ("0123456789abcdef0123456789abcdef", ""),  # a bare token is never echoed
        ("", ""),
    ],
)
def test_unsupported_algorithm(signed: HttpRequest, authorization: str, shown: str) -> None:
    error = rejected(
        with_header(signed, "Authorization", authorization),
        INCOMPLETE,
        f"Unsupported AWS 'algorithm': '{shown}'.",
    )
    assert authorization not in error.message or not authorization


def test_host_must_be_signed(signed: HttpRequest) -> None:
    request = with_authorization(
        signed, "SignedHeaders=content-type;host;", "SignedHeaders=content-type;"
    )
    rejected(
        request,
        INVALID,
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
    )


def test_parameter_without_equal_sign(signed: HttpRequest) -> None:
    request = with_authorization(signed, "SignedHeaders=", "SignedHeaders ")
    error = rejected(request, INCOMPLETE)
    assert error.message.endswith(
        "not a valid key=value pair (missing equal-sign) in Authorization header."
    )


@pytest.mark.parametrize(
    ("old", "new", "code", "message"),
    [
        (
            "/aws4_request",
            "",
            INCOMPLETE,
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            "keyid/date/region/service/term, got 'AKIDEXAMPLE/20261129/us-east-1/secretsmanager'",
        ),
        (
            "/aws4_request",
            "/aws5_request",
            INVALID,
            "Credential should be scoped with a valid terminator: 'aws4_request', "
            "not 'aws5_request'.",
        ),
        ("/us-east-1/", "//", INVALID, "Credential should be scoped to a valid region, not ''."),
        (
            "/us-east-1/",
            "/us_east/",
            INVALID,
            "Credential should be scoped to a valid region, not 'us_east'.",
        ),
        (
            "/us-east-1/",
            "/-us-east-1/",
            INVALID,
            "Credential should be scoped to a valid region, not '-us-east-1'.",
        ),
    ],
)
def test_malformed_credential(
    signed: HttpRequest, old: str, new: str, code: str, message: str
) -> None:
    rejected(with_authorization(signed, old, new), code, message)


def test_region_that_could_break_an_arn_is_refused(signed: HttpRequest) -> None:
    request = with_authorization(signed, "/us-east-1/", "/us-east-1:0:x/")
    rejected(
        request, INVALID, "Credential should be scoped to a valid region, not 'us-east-1:0:x'."
    )


@pytest.mark.parametrize("separator", [",", " ", " , ", ",\t"])
def test_parameter_separators_aws_accepts(signed: HttpRequest, separator: str) -> None:
    request = with_header(
        signed, "Authorization", header(signed, "Authorization").replace(", ", separator)
    )
    accepted(request)


def test_any_whitespace_may_follow_the_algorithm(signed: HttpRequest) -> None:
    authorization = header(signed, "Authorization")
    accepted(with_header(signed, "Authorization", authorization.replace(" ", "\t", 1)))
    accepted(with_header(signed, "Authorization", "  " + authorization + "  "))


def test_repeated_parameter_last_wins(signed: HttpRequest) -> None:
    authorization = header(signed, "Authorization")
    accepted(
        with_header(
            signed,
            "Authorization",
            authorization.replace("Signature=", "Signature=0000, Signature="),
        )
    )


# --- the payload hash ------------------------------------------------------------------------


def test_content_sha256_must_match_the_body() -> None:
    request = sign(headers=(*JSON_HEADERS, ("X-Amz-Content-SHA256", _sha256(JSON_BODY))))
    swapped = dataclasses.replace(request, body=b'{"SecretId": "Other"}')
    # The signature covers the declared hash, so only the body check can catch this.
    rejected(
        swapped,
        INVALID,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    )


def test_unsigned_payload_is_refused_by_default() -> None:
    request = sign(payload_signing=False)
    assert header(request, "X-Amz-Content-SHA256") == "UNSIGNED-PAYLOAD"
    rejected(request, INVALID, "UNSIGNED-PAYLOAD is not accepted here; sign the payload.")
    accepted(request, allow_unsigned_payload=True)
    # That is what it means: the body is not authenticated.
    accepted(dataclasses.replace(request, body=b"anything"), allow_unsigned_payload=True)


@pytest.mark.parametrize(
    "value", ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "abc", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"]
)
def test_unsupported_content_sha256(value: str) -> None:
    request = sign(headers=(*JSON_HEADERS, ("X-Amz-Content-SHA256", value)))
    rejected(
        request,
        INCOMPLETE,
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value.",
    )


# --- the secret never leaks ------------------------------------------------------------------

LEAKY = "LEAKY-SECRET-wJalrXUtnFEMI/K7MDENG"


def test_secret_never_appears_in_errors() -> None:
    request = sign(secret=LEAKY, token=TOKEN)
    failures = [
        dataclasses.replace(request, body=b"x"),
        with_authorization(request, "/us-east-1/", "/us west/"),
        with_authorization(request, f"{AKID}/20261129/", f"{AKID}/20261128/"),
        with_header(request, "X-Amz-Date", "bad"),
        with_header(request, "Authorization", "AWS4-HMAC-SHA256"),
        with_header(request, "Authorization", f"Basic {LEAKY}"),
        with_header(request, "Authorization", LEAKY),
    ]
    for failing in failures:
        for now in (NOW, NOW + dt.timedelta(hours=1), NOW - dt.timedelta(hours=1)):
            with pytest.raises(ServiceError) as info:
                verify(failing, parse_credential(failing), LEAKY, now, cache=SigningKeyCache())
            for text in (
                str(info.value),
                repr(info.value),
                info.value.message,
                *map(str, info.value.args),
            ):
                assert LEAKY not in text
    with pytest.raises(ServiceError):
        verify(request, parse_credential(request), LEAKY + "x", NOW)


def test_reprs_hide_bodies_tokens_and_secrets() -> None:
    request = sign(token=TOKEN, body=b'{"SecretString": "hunter2"}')
    credential = parse_credential(request)
    assert "hunter2" not in repr(request)
    assert TOKEN not in repr(request)
    assert TOKEN not in repr(credential)
    assert credential.security_token == TOKEN


def test_a_secret_that_is_not_valid_utf8_does_not_raise_with_it() -> None:
    request = sign()
    odd = "secret\ud800"
    with pytest.raises(ServiceError) as info:
        verify(request, parse_credential(request), odd, NOW)
    assert info.value.code == INVALID


# --- the signing-key cache -------------------------------------------------------------------


def _strings_in(value: object, seen: set[int] | None = None) -> Iterator[str | bytes]:
    seen = set() if seen is None else seen
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, str | bytes):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings_in(key, seen)
            yield from _strings_in(item, seen)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _strings_in(item, seen)
    elif hasattr(value, "__dict__"):
        yield from _strings_in(vars(value), seen)


def test_cache_hits_and_misses() -> None:
    cache = SigningKeyCache()
    first = cache.signing_key(SECRET, "20261129", "us-east-1", "secretsmanager")
    again = cache.signing_key(SECRET, "20261129", "us-east-1", "secretsmanager")
    assert first == again
    assert (cache.hits, cache.misses, len(cache)) == (1, 1, 1)
    for args in [
        ("other", "20261129", "us-east-1", "secretsmanager"),
        (SECRET, "20261130", "us-east-1", "secretsmanager"),
        (SECRET, "20261129", "eu-west-1", "secretsmanager"),
        (SECRET, "20261129", "us-east-1", "kms"),
    ]:
        assert cache.signing_key(*args) != first
    assert (cache.hits, cache.misses, len(cache)) == (1, 5, 5)


def test_verify_uses_the_cache(signed: HttpRequest) -> None:
    cache = SigningKeyCache()
    accepted(signed, cache=cache)
    accepted(signed, cache=cache)
    assert (cache.hits, cache.misses) == (1, 1)
    rejected(signed, INVALID, MISMATCH, secret="wrong", cache=cache)  # a wrong secret misses
    assert (cache.hits, cache.misses) == (1, 2)


def test_cache_is_a_bounded_lru() -> None:
    cache = SigningKeyCache(maxsize=2)
    cache.signing_key(SECRET, "d1", "r", "s")
    cache.signing_key(SECRET, "d2", "r", "s")
    cache.signing_key(SECRET, "d1", "r", "s")  # d1 is now the most recent
    cache.signing_key(SECRET, "d3", "r", "s")  # evicts d2
    assert len(cache) == 2
    hits = cache.hits
    cache.signing_key(SECRET, "d1", "r", "s")
    assert cache.hits == hits + 1
    cache.signing_key(SECRET, "d2", "r", "s")
    assert cache.hits == hits + 1 and len(cache) == 2
    with pytest.raises(ValueError):
        SigningKeyCache(maxsize=0)


def test_cache_holds_no_secret() -> None:
    cache = SigningKeyCache()
    key = cache.signing_key(SECRET, "20261129", "us-east-1", "secretsmanager")
    assert SECRET not in repr(cache) and key.hex() not in repr(cache)
    assert repr(cache) == "SigningKeyCache(size=1, maxsize=1024)"
    plain_hash = hashlib.sha256(SECRET.encode()).digest()
    for text in _strings_in(cache):
        if isinstance(text, str):
            assert SECRET not in text
        else:
            assert SECRET.encode() not in text and plain_hash not in text


def test_cache_is_thread_safe() -> None:
    cache = SigningKeyCache(maxsize=4)
    expected = {d: SigningKeyCache().signing_key(SECRET, d, "r", "s") for d in map(str, range(8))}
    errors: list[str] = []

    def work(offset: int) -> None:
        for i in range(300):
            date = str((i + offset) % 8)
            if cache.signing_key(SECRET, date, "r", "s") != expected[date]:
                errors.append(date)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cache) <= 4
    assert cache.hits + cache.misses == 12 * 300


# --- properties over generated requests ------------------------------------------------------

_segment = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=0, max_size=12
).map(lambda s: quote(s, safe="-_.~!$'()*,;=:@"))
_header_value = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"], exclude_characters="\r\n"),
    max_size=20,
).map(lambda s: f"  {s} \t ")
_param_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=10)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    segments=st.lists(_segment, max_size=5),
    params=st.dictionaries(_param_text, _param_text, max_size=4),
    values=st.lists(_header_value, max_size=3),
    body=st.binary(max_size=300),
    token=st.none() | st.just(TOKEN),
)
def test_any_botocore_signed_request_verifies(
    method: str,
    segments: list[str],
    params: dict[str, str],
    values: list[str],
    body: bytes,
    token: str | None,
) -> None:
    url = ENDPOINT + "/" + "/".join(segments)
    headers = tuple((f"X-H{i}", value) for i, value in enumerate(values))
    request = sign(method, url, headers=headers, body=body, params=params, token=token)
    accepted(request)


@settings(max_examples=100, deadline=None)
@given(body=st.binary(min_size=1, max_size=200), data=st.data())
def test_any_body_change_is_rejected(body: bytes, data: st.DataObject) -> None:
    request = sign(body=body)
    index = data.draw(st.integers(0, len(body) - 1))
    flip = data.draw(st.integers(1, 255))
    tampered = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
    rejected(dataclasses.replace(request, body=tampered), INVALID, MISMATCH)
