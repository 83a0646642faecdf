"""Audit forwarding from a real server: every event reaches an HTTP receiver (a SIEM's
ndjson endpoint) or a syslog socket, a receiver that is down or stuck never holds up a
request, nothing spooled in the log files is lost, and with several workers each event is
sent once (one worker holds the forwarder's lock)."""

from __future__ import annotations

import re
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from botocore.exceptions import ClientError

from tests.server import STRONGROOM, ServerProcess, free_port

StartServer = Callable[..., ServerProcess]
SYSLOG_LINE = re.compile(
    rb"^<86>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z \S+ strongroom - audit - (\{.*\})$",
    re.DOTALL,
)


class Receiver:
    """An HTTP endpoint standing in for a SIEM. With ``hold``, every POST waits for that
    event to be set before it is accepted (a stuck receiver); with ``delay``, it takes that
    long to accept each (a slow one)."""

    def __init__(
        self, port: int = 0, hold: threading.Event | None = None, delay: float = 0.0
    ) -> None:
        self.records: list[dict[str, Any]] = []
        self.bodies: list[bytes] = []
        self.arrived = threading.Event()  # a POST came in (accepted or not yet)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.arrived.set()
                if hold is not None:
                    hold.wait(120)
                time.sleep(delay)
                with receiver._lock:
                    receiver.bodies.append(body)
                    receiver.records.extend(orjson.loads(line) for line in body.splitlines())
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ingest"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def request_ids(self) -> Counter[str]:
        with self._lock:
            return Counter(str(r.get("requestID")) for r in self.records if r.get("requestID"))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(port: int = 0, hold: threading.Event | None = None, delay: float = 0.0) -> Receiver:
        made.append(Receiver(port, hold, delay))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def wait_until(condition: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {condition}")
        time.sleep(0.1)


def delivered(receiver: Receiver, ids: set[str]) -> Callable[[], bool]:
    return lambda: ids <= set(receiver.request_ids())


def request_id(response: dict[str, Any]) -> str:
    return str(response["ResponseMetadata"]["RequestId"])


def secret(sm: Any) -> tuple[str, str, str]:
    """A new secret: its name, its value and the CreateSecret request id."""
    name = f"forward/{uuid.uuid4().hex[:8]}"
    value = f"v-{uuid.uuid4().hex}"
    return name, value, request_id(sm.create_secret(Name=name, SecretString=value))


def test_events_reach_the_http_receiver_once_and_survive_a_restart(
    new_server: StartServer, receivers: Callable[..., Receiver], tmp_path: Path
) -> None:
    receiver = receivers()
    data_dir = tmp_path / "data"
    env = {"STRONGROOM_AUDIT_FORWARD_HTTP": receiver.url}
    server = new_server("--dev", "--data-dir", str(data_dir), env=env)
    sm = server.client()
    name, value, created = secret(sm)
    read = request_id(sm.get_secret_value(SecretId=name))
    forger = server.client(aws_access_key_id="test", aws_secret_access_key="wrong")
    with pytest.raises(ClientError) as refused:
        forger.get_secret_value(SecretId=name)
    denied = request_id(refused.value.response)

    wait_until(delivered(receiver, {created, read, denied}))
    by_id = {str(r["requestID"]): r for r in receiver.records if r.get("requestID")}
    assert by_id[created]["eventName"] == "CreateSecret"
    assert by_id[read]["eventName"] == "GetSecretValue"
    assert by_id[read]["userIdentity"]["arn"] == "arn:aws:iam::000000000000:user/admin"
    assert by_id[denied]["errorCode"] == "InvalidSignatureException"
    assert "strongroomIntegrity" in by_id[read]  # the record as logged, chain marks included

    server.stop()
    server = new_server("--dev", "--data-dir", str(data_dir), env=env)
    after = {request_id(server.client().get_secret_value(SecretId=name)) for _ in range(3)}
    wait_until(delivered(receiver, after))
    counts = receiver.request_ids()
    # At least once for everything; a duplicate only of what was in flight at the restart.
    assert all(counts[request] == 1 for request in after), counts
    assert all(counts[request] >= 1 for request in (created, read, denied))
    assert all(value.encode() not in body for body in receiver.bodies)
    # The forwarder's state beside the log does not disturb its verification.
    assert (data_dir / "audit" / "forward" / "http.cursor.json").is_file()
    verified = subprocess.run(
        [str(STRONGROOM), "audit", "verify", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_stuck_receiver_holds_up_no_request_and_loses_nothing(
    new_server: StartServer, receivers: Callable[..., Receiver], tmp_path: Path
) -> None:
    hold = threading.Event()
    receiver = receivers(hold=hold)
    server = new_server(
        "--dev",
        "--data-dir",
        str(tmp_path / "data"),
        env={"STRONGROOM_AUDIT_FORWARD_HTTP": receiver.url},
    )
    sm = server.client()
    try:
        name, _, created = secret(sm)
        wait_until(receiver.arrived.is_set)  # the forwarder is now stuck in a POST ...
        reads = [request_id(sm.get_secret_value(SecretId=name)) for _ in range(20)]
        assert receiver.request_ids() == Counter()  # ... and every request returned anyway
        assert not hold.is_set()
    finally:
        hold.set()
    wait_until(delivered(receiver, {created, *reads}))


def test_a_receiver_that_is_down_gets_the_spooled_events_once_it_is_up(
    new_server: StartServer, receivers: Callable[..., Receiver], tmp_path: Path
) -> None:
    port = free_port()  # nothing listens here yet: connections are refused
    server = new_server(
        "--dev",
        "--data-dir",
        str(tmp_path / "data"),
        env={"STRONGROOM_AUDIT_FORWARD_HTTP": f"http://127.0.0.1:{port}/ingest"},
    )
    sm = server.client()
    name, _, created = secret(sm)
    reads = [request_id(sm.get_secret_value(SecretId=name)) for _ in range(20)]
    wait_until(lambda: "audit forwarding to http failed" in server.log())
    receiver = receivers(port)
    wait_until(delivered(receiver, {created, *reads}))
    counts = receiver.request_ids()
    assert all(counts[request] == 1 for request in (created, *reads)), counts


def test_syslog_over_udp_receives_rfc5424_lines(new_server: StartServer, tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(60)
        address = f"udp://127.0.0.1:{sock.getsockname()[1]}"
        server = new_server(
            "--dev",
            "--data-dir",
            str(tmp_path / "data"),
            env={"STRONGROOM_AUDIT_FORWARD_SYSLOG": address},
        )
        sm = server.client()
        name, value, created = secret(sm)
        read = request_id(sm.get_secret_value(SecretId=name))
        seen: dict[str, dict[str, Any]] = {}
        datagrams = []
        while not {created, read} <= set(seen):
            datagram = sock.recv(65536)
            datagrams.append(datagram)
            match = SYSLOG_LINE.match(datagram)
            assert match, datagram[:200]
            event = orjson.loads(match.group(2))
            seen[str(event.get("requestID"))] = event
    assert seen[created]["eventName"] == "CreateSecret"
    assert seen[read]["eventName"] == "GetSecretValue"
    assert all(value.encode() not in datagram for datagram in datagrams)


def test_with_two_workers_each_event_is_forwarded_once(
    new_server: StartServer, receivers: Callable[..., Receiver], tmp_path: Path
) -> None:
    # A slow receiver keeps each batch unacknowledged (its cursor not yet advanced) for a
    # while: a second forwarder sending meanwhile would send the same records again.
    receiver = receivers(delay=0.5)
    server = new_server(
        "--dev",
        "--data-dir",
        str(tmp_path / "data"),
        "--workers",
        "2",
        env={"STRONGROOM_AUDIT_FORWARD_HTTP": receiver.url},
    )
    name, _, created = secret(server.client())
    ids: list[str] = [created]
    lock = threading.Lock()

    def load() -> None:
        # Each thread its own connections. Both workers' forwarders read every worker's
        # log files, so without the lock each event would go out twice.
        client = server.client()
        for _ in range(10):
            got = request_id(client.get_secret_value(SecretId=name))
            with lock:
                ids.append(got)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_until(delivered(receiver, set(ids)))
    time.sleep(3)  # time enough for a second forwarder to send its copies, were there one
    counts = receiver.request_ids()
    assert [request for request in ids if counts[request] != 1] == [], counts
