"""boto3 clients that talk to a deployment's pipeline in this process, without a server.

Requests are signed by botocore as usual, at the deployment's clock (a ManualClock), and
handed to ``Pipeline.handle`` instead of the network; the response goes back through
botocore's parsers. Tests of expiry and schedules move the clock instead of sleeping, and
see exactly what an SDK sees.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HTTPHeaders
from botocore.config import Config

from strongroom.clock import Clock
from strongroom.protocol.sigv4 import HttpRequest
from strongroom.server.deployment import Deployment

ENDPOINT = "http://strongroom.test"


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_kwargs: Any) -> Iterator[bytes]:
        yield self._data


def _text(value: str | bytes) -> str:
    # What an HTTP server sees: header bytes read as latin-1 (see strongroom.protocol.sigv4).
    return (value if isinstance(value, bytes) else value.encode("utf-8")).decode("latin-1")


def to_pipeline(request: AWSPreparedRequest) -> HttpRequest:
    parts = urlsplit(request.url)
    headers = [("Host", parts.netloc)] + [
        (name, _text(value)) for name, value in request.headers.items()
    ]
    body = request.body or b""
    data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    return HttpRequest(request.method, parts.path or "/", parts.query, headers, data)


@contextmanager
def signing_at(clock: Clock) -> Iterator[None]:
    """botocore signs at ``clock``'s time (it reads a naive UTC clock)."""

    def now(*_args: Any, **_kwargs: Any) -> dt.datetime:
        return clock.now().astimezone(dt.UTC).replace(tzinfo=None)

    with mock.patch("botocore.auth.get_current_datetime", now):
        yield


def client(
    deployment: Deployment,
    service: str,
    *,
    key: str = "test",
    secret: str = "test",
    token: str | None = None,
    region: str = "us-east-1",
    source_ip: str = "127.0.0.1",
    validate: bool = True,
) -> Any:
    """A boto3 client of ``service`` whose requests ``deployment.pipeline`` serves;
    ``validate=False`` leaves the validating to the server."""
    made = boto3.session.Session().client(
        service,
        region_name=region,
        endpoint_url=ENDPOINT,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(retries={"max_attempts": 1}, parameter_validation=validate),
    )

    def send(request: AWSPreparedRequest, **_kwargs: Any) -> AWSResponse:
        answer = deployment.pipeline.handle(to_pipeline(request), source_ip)
        return AWSResponse(
            request.url, answer.status, HTTPHeaders.from_dict(answer.headers), _Body(answer.body)
        )

    made.meta.events.register("before-send", send)
    return made


def credentials_client(deployment: Deployment, service: str, credentials: dict[str, Any]) -> Any:
    """A client signing with STS ``Credentials`` (AccessKeyId, SecretAccessKey, SessionToken)."""
    return client(
        deployment,
        service,
        key=credentials["AccessKeyId"],
        secret=credentials["SecretAccessKey"],
        token=credentials.get("SessionToken"),
    )
