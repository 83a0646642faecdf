"""Pre-built HTTP/1.1 requests, byte for byte as wrk will send them.

SigV4 requests are signed here with botocore's own signer, so the server verifies the
signature exactly as it would an SDK's. A signature is valid for 15 minutes (the allowed
clock skew): pools are signed right before the runs that use them.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bench.secretdata import secret_value


def raw_request(method: str, path: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items() if name.lower() != "host"]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class RequestFactory(Protocol):
    """Makes one request of an operation ("get", "describe", "put") on one secret."""

    # A write sent twice is a replay, not a second write (an idempotency token).
    unique_writes: bool

    def request(self, operation: str, name: str) -> bytes: ...


class SecretsManagerRequests:
    """SigV4-signed AWS JSON 1.1 Secrets Manager requests."""

    OPERATIONS = {"get": "GetSecretValue", "describe": "DescribeSecret", "put": "PutSecretValue"}
    unique_writes = True  # ClientRequestToken

    def __init__(
        self,
        host: str,
        access_key: str = "test",
        secret_key: str = "test",  # noqa: S107 - the dev server's documented credential
        region: str = "us-east-1",
    ) -> None:
        self._host = host
        self._signer = SigV4Auth(Credentials(access_key, secret_key), "secretsmanager", region)

    def request(self, operation: str, name: str) -> bytes:
        params: dict[str, Any] = {"SecretId": name}
        if operation == "put":
            # A unique token: each request is a new version, never an idempotent replay.
            params["SecretString"] = secret_value()
            params["ClientRequestToken"] = str(uuid.uuid4())
        body = orjson.dumps(params)
        signed = AWSRequest(
            method="POST",
            url=f"http://{self._host}/",
            data=body,
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": f"secretsmanager.{self.OPERATIONS[operation]}",
            },
        )
        self._signer.add_auth(signed)
        return raw_request("POST", "/", self._host, dict(signed.headers.items()), body)


class KvRequests:
    """OpenBao KV v2 requests at mount secret/, with a token header."""

    unique_writes = False  # every write of a KV v2 secret makes a new version

    def __init__(self, host: str, token: str) -> None:
        self._host = host
        self._token = token

    def request(self, operation: str, name: str) -> bytes:
        headers = {"X-Vault-Token": self._token}
        if operation == "get":
            return raw_request("GET", f"/v1/secret/data/{name}", self._host, headers, b"")
        if operation == "describe":
            return raw_request("GET", f"/v1/secret/metadata/{name}", self._host, headers, b"")
        if operation == "put":
            body = orjson.dumps({"data": {"value": secret_value()}})
            headers["Content-Type"] = "application/json"
            return raw_request("POST", f"/v1/secret/data/{name}", self._host, headers, body)
        raise ValueError(f"unknown operation {operation!r}")
