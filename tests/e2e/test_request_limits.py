"""What a client may send before it is authenticated: body sizes (docs/limits.md), JSON
nesting, the time to send a request, the number of open connections, malformed HTTP and
paths nothing serves. Raw sockets, since SDKs cannot send what these refuse."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.rawhttp import JSON_11, send, token
from tests.server import ServerProcess

# Long enough that a reply arriving before it proves the server did not wait for a body.
PATIENCE = 20.0


def connect(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def split_response(raw: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:])
    }
    return status, headers, json.loads(body) if body else None


def headers_of(target: str, extra: str = "") -> bytes:
    return (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {JSON_11}\r\n"
        f"X-Amz-Target: {target}\r\n{extra}\r\n"
    ).encode()


# ------------------------------------------------------------------------ body limits


def test_a_body_announced_too_large_is_refused_before_it_is_read(server: ServerProcess) -> None:
    with connect(server) as sock:
        # 16 MiB announced, not a byte of it sent: the answer comes without waiting for it.
        sock.sendall(headers_of("secretsmanager.GetSecretValue", "Content-Length: 16777216\r\n"))
        status, headers, body = split_response(read_all(sock))
    assert status == 413
    assert headers["connection"] == "close"
    assert headers["x-amzn-errortype"] == "RequestEntityTooLargeException"
    assert body["__type"] == "RequestEntityTooLargeException"
    assert "65536 bytes" in body["Message"]


def test_a_chunked_body_is_cut_off_at_its_limit(server: ServerProcess) -> None:
    chunk = b"x" * 32768
    with connect(server) as sock:
        sock.sendall(headers_of("secretsmanager.GetSecretValue", "Transfer-Encoding: chunked\r\n"))
        # Three chunks pass the 64 KiB limit; no terminating chunk is ever sent.
        for _ in range(3):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        status, _, body = split_response(read_all(sock))
    assert status == 413
    assert body["__type"] == "RequestEntityTooLargeException"


def test_a_query_request_gets_its_services_limit(server: ServerProcess) -> None:
    request = (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sts/aws4_request, "
        b"SignedHeaders=host, Signature=00\r\nContent-Length: 1048576\r\n\r\n"
    )
    with connect(server) as sock:
        sock.sendall(request)
        raw = read_all(sock)
    assert raw.startswith(b"HTTP/1.1 413 ")
    assert b"<Code>RequestEntityTooLargeException</Code>" in raw


def test_the_largest_secret_value_still_fits(sm: Any, name: str) -> None:
    # 65,536 characters that JSON escapes as six bytes each: the largest body a secret
    # value can take on the wire.
    value = "\x01" * 65536
    sm.create_secret(Name=name, SecretString=value)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == value


def test_json_nested_deeper_than_any_model_is_refused(server: ServerProcess, sm: Any) -> None:
    name = f"test/nested-{token()[:8]}"
    body = b'{"Name": "%s", "SecretString": "v", "ClientRequestToken": "%s", "Extra": %s%s}' % (
        name.encode(),
        token().encode(),
        b"[" * 200,
        b"]" * 200,
    )
    response = send(server.url, "secretsmanager.CreateSecret", body)
    assert response.status == 400
    assert response.error_code == "SerializationException"
    assert "deeper than 32 levels" in response.message
    assert sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"] == []


# ------------------------------------------------------------------- malformed or unserved


def test_malformed_http_is_answered_in_the_aws_error_shape(server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        status, headers, body = split_response(read_all(sock))
    assert status == 400
    assert headers["content-type"] == JSON_11
    assert body["__type"] == "BadRequestException"


@pytest.mark.parametrize(("method", "path"), [("GET", "/nowhere"), ("DELETE", "/")])
def test_unserved_paths_and_methods_answer_in_the_aws_error_shape(
    server: ServerProcess, method: str, path: str
) -> None:
    with connect(server) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        status, headers, body = split_response(read_all(sock))
    assert status == 404
    assert headers["content-type"] == JSON_11
    assert body["__type"] == "UnknownOperationException"
    assert f"no {method} {path}" in body["Message"]


# -------------------------------------------------------------------------- slow clients


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that gives clients half a second for headers and for a body."""
    log = tmp_path_factory.mktemp("impatient") / "server.log"
    process = ServerProcess(
        ["--dev"],
        log,
        env={"STRONGROOM_HEADER_TIMEOUT": "0.5", "STRONGROOM_BODY_TIMEOUT": "0.5"},
    ).start()
    yield process
    process.stop()


def log_lines(server: ServerProcess, having: str) -> list[str]:
    return [line for line in server.log().splitlines() if having in line]


def wait_for(condition: Callable[[], bool]) -> None:
    """Poll the server's log: its line may be written just after the socket closed."""
    for _ in range(400):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("the server never logged it")


def test_a_client_trickling_its_headers_is_cut_off(impatient: ServerProcess) -> None:
    before = len(log_lines(impatient, "did not send its request headers in time"))
    with connect(impatient) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        status, _, body = split_response(read_all(sock))
    assert status == 408
    assert body["__type"] == "RequestTimeoutException"
    wait_for(
        lambda: len(log_lines(impatient, "did not send its request headers in time")) == before + 1
    )
    assert "Traceback" not in impatient.log()


def test_a_client_trickling_its_body_is_cut_off(impatient: ServerProcess) -> None:
    before = len(log_lines(impatient, "did not send its request body in time"))
    with connect(impatient) as sock:
        sock.sendall(headers_of("secretsmanager.ListSecrets", "Content-Length: 100\r\n") + b"{")
        status, _, body = split_response(read_all(sock))
    assert status == 408
    assert body["__type"] == "RequestTimeoutException"
    wait_for(
        lambda: len(log_lines(impatient, "did not send its request body in time")) == before + 1
    )
    assert "Traceback" not in impatient.log()


def test_a_client_that_leaves_mid_body_is_one_log_line(impatient: ServerProcess) -> None:
    before = len(log_lines(impatient, "left before sending its request body"))
    with connect(impatient) as sock:
        sock.sendall(headers_of("secretsmanager.ListSecrets", "Content-Length: 100\r\n") + b"{")
    wait_for(
        lambda: len(log_lines(impatient, "left before sending its request body")) == before + 1
    )
    assert "Traceback" not in impatient.log()
    assert "Exception in ASGI application" not in impatient.log()


def test_a_prompt_client_is_served_by_the_impatient_server(impatient: ServerProcess) -> None:
    client = impatient.client()
    assert client.list_secrets()["SecretList"] == []


def test_connections_past_the_limit_are_closed(new_server: Any) -> None:
    server = new_server("--dev", env={"STRONGROOM_MAX_CONNECTIONS": "4"})
    held = [connect(server) for _ in range(4)]
    try:
        for sock in held:  # each answered, so each is counted (and kept alive)
            sock.sendall(b"GET /_strongroom/health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        with connect(server) as extra:
            # Closed at once, without an answer: nothing of it was read.
            assert read_all(extra) == b""
        assert len(log_lines(server, "the limit")) == 1
        held.pop().close()
        assert server.client().list_secrets()["SecretList"] == []
    finally:
        for sock in held:
            sock.close()
