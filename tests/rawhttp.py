"""Raw AWS JSON 1.1 requests, signed with botocore's own SigV4 signer, sent over a fresh
TCP connection each time: for tests of the wire protocol and of authentication."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

JSON_11 = "application/x-amz-json-1.1"


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: Mapping[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_code(self) -> str:
        return str(self.json()["__type"])

    @property
    def message(self) -> str:
        return str(self.json()["Message"])


def token() -> str:
    """A ClientRequestToken: raw requests must bring their own (SDKs fill it in)."""
    return str(uuid.uuid4())


def send(
    url: str,
    target: str | None,
    body: Mapping[str, Any] | bytes,
    *,
    access_key: str = "test",
    secret_key: str = "test",
    service: str = "secretsmanager",
    region: str = "us-east-1",
    sign: bool = True,
    signed_at: dt.datetime | None = None,
    headers: Mapping[str, str] | None = None,
    after_signing: Callable[[bytes], bytes] | None = None,
    headers_after_signing: Mapping[str, str] | None = None,
    while_connected: Callable[[int], None] | None = None,
) -> RawResponse:
    """POST one request; ``signed_at`` (UTC) fakes the signer's clock; ``after_signing``
    rewrites the body and ``headers_after_signing`` replaces headers once the signature
    is computed (a tampered request); ``while_connected`` is called with the client's
    local port after the response is read, before the connection closes."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request_headers = {"Content-Type": JSON_11}
    if target is not None:
        request_headers["X-Amz-Target"] = target
    request_headers.update(headers or {})
    request = AWSRequest("POST", url + "/", data=data, headers=request_headers)
    if sign:
        signer = SigV4Auth(Credentials(access_key, secret_key), service, region)
        if signed_at is None:
            signer.add_auth(request)
        else:
            naive = signed_at.astimezone(dt.UTC).replace(tzinfo=None)
            with mock.patch.object(botocore.auth, "get_current_datetime", lambda *_a, **_k: naive):
                signer.add_auth(request)
    prepared = request.prepare()
    payload = prepared.body if isinstance(prepared.body, bytes) else data
    if after_signing is not None:
        payload = after_signing(payload)
    wire_headers = {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}
    for name, value in (headers_after_signing or {}).items():
        wire_headers = {k: v for k, v in wire_headers.items() if k.lower() != name.lower()}
        wire_headers[name] = value
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        connection.request("POST", "/", body=payload, headers=wire_headers)
        response = connection.getresponse()
        result = RawResponse(
            response.status,
            {name.lower(): value for name, value in response.getheaders()},
            response.read(),
        )
        if while_connected is not None:
            assert connection.sock is not None
            while_connected(int(connection.sock.getsockname()[1]))
        return result
    finally:
        connection.close()
