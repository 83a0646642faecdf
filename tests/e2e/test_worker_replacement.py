"""After a seal the supervisor replaces every worker (a fresh process up, then the old one
retired): no client sees a connection dropped while that happens. A steady stream of
GetSecretValue from several clients, on fresh connections and on keep-alive ones, runs
across a seal and an unseal, and every request gets an HTTP answer (a 503 while sealed is
an answer; a reset or an empty reply is not)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.e2e.test_key_lifecycle import worker_pids
from tests.e2e.test_operator_seal import DEV
from tests.e2e.test_seal import run
from tests.server import ServerProcess

SECRET = "stream/value"
FRESH_CLIENTS = 3  # a new connection for every request
KEEP_ALIVE_CLIENTS = 3  # one connection for as long as the server keeps it open
# A keep-alive client's pause between requests, as an application's between two reads:
# its connection is idle then, which is when a worker that stops closes it.
THINK_TIME = 0.02


def signed_get(url: str) -> tuple[bytes, dict[str, str]]:
    """One signed GetSecretValue, sent again and again (a signature holds for minutes)."""
    body = json.dumps({"SecretId": SECRET}).encode()
    request = AWSRequest(
        "POST",
        url + "/",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "secretsmanager.GetSecretValue",
        },
    )
    SigV4Auth(Credentials("test", "test"), "secretsmanager", "us-east-1").add_auth(request)
    headers = {k: v for k, v in request.prepare().headers.items() if k.lower() != "content-length"}
    return body, headers


class Stream:
    """Clients sending GetSecretValue until stopped; each outcome is an HTTP status, or
    the name of the error that came instead of one."""

    def __init__(self, server: ServerProcess) -> None:
        self._port = server.port
        self._request = signed_get(server.url)
        self.outcomes: Counter[int | str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._client, args=(keep_alive,), daemon=True)
            for keep_alive in [False] * FRESH_CLIENTS + [True] * KEEP_ALIVE_CLIENTS
        ]

    def __enter__(self) -> Stream:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def answered(self, status: int) -> int:
        with self._lock:
            return self.outcomes[status]

    def wait_for(self, status: int, more: int, timeout: float = 120) -> None:
        target = self.answered(status) + more
        deadline = time.monotonic() + timeout
        while self.answered(status) < target:
            assert time.monotonic() < deadline, f"no {status} answers: {self.outcomes}"
            time.sleep(0.05)

    def _client(self, keep_alive: bool) -> None:
        body, headers = self._request
        conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=30)
        while not self._stop.is_set():
            outcome: int | str
            try:
                # http.client reconnects by itself once a response said `connection: close`.
                conn.request("POST", "/", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                outcome = response.status
            except (OSError, http.client.HTTPException) as dropped:
                outcome = type(dropped).__name__
                conn.close()
            if keep_alive:
                time.sleep(THINK_TIME)
            else:
                conn.close()
            with self._lock:
                self.outcomes[outcome] += 1


@pytest.fixture
def streamed(new_server: Callable[..., ServerProcess], tmp_path: Path) -> Iterator[ServerProcess]:
    server = new_server("--dev", "--data-dir", str(tmp_path / "data"), "--workers", "2")
    server.client().create_secret(Name=SECRET, SecretString="s3cr3t")
    yield server


def test_no_request_is_dropped_while_workers_are_replaced(streamed: ServerProcess) -> None:
    server = streamed
    assert server.process is not None
    keyholder = server.process.pid
    old = worker_pids(keyholder)
    assert len(old) == 2
    with Stream(server) as stream:
        stream.wait_for(200, 200)
        run("seal", "--url", server.url, env=DEV)
        stream.wait_for(503, 20)
        run("unseal", "--url", server.url, env=DEV)
        # The replacement that followed the seal: both old workers gone, two new ones.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            now = worker_pids(keyholder)
            gone = not any(Path(f"/proc/{pid}").exists() for pid in old)
            if len(now) == 2 and not set(now) & set(old) and gone:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"the workers were not replaced: {old} -> {now}")
        stream.wait_for(200, 200)  # served by the new workers, the stream still running
    answered = {outcome for outcome in stream.outcomes if isinstance(outcome, int)}
    assert answered == {200, 503}, stream.outcomes
    dropped = {k: n for k, n in stream.outcomes.items() if isinstance(k, str)}
    assert not dropped, f"requests without an HTTP answer: {dropped} of {stream.outcomes}"
