"""Audit forwarding: at-least-once delivery from the log files, never on the request path."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest

from strongroom.audit.forward import Forwarder, HttpDestination, SyslogDestination
from strongroom.server.config import Settings, load_settings


class Receiver:
    """An HTTP endpoint standing in for a SIEM; can be told to fail."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, object]]] = []
        self.fail = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail:
                    self.send_response(503)
                else:
                    receiver.batches.append([orjson.loads(x) for x in body.splitlines()])
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ingest"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def events(self) -> list[str]:
        return [str(e["eventID"]) for batch in self.batches for e in batch]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def write_log(audit: Path, writer: str, ids: list[str], *, torn_tail: bool = False) -> Path:
    path = audit / "logs" / writer / "000000000001.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as handle:
        for event_id in ids:
            handle.write(orjson.dumps({"eventID": event_id, "eventName": "GetSecretValue"}) + b"\n")
        if torn_tail:
            handle.write(b'{"eventID": "half')
    return path


def test_delivers_every_complete_record_once(tmp_path: Path, receiver: Receiver) -> None:
    write_log(tmp_path, "20261129T000000Z-1-aaaa", ["a1", "a2"])
    write_log(tmp_path, "20261129T000001Z-2-bbbb", ["b1"], torn_tail=True)
    forwarder = Forwarder(tmp_path, HttpDestination(receiver.url))
    assert forwarder.forward_once() == 3
    assert forwarder.forward_once() == 0
    assert sorted(receiver.events) == ["a1", "a2", "b1"]


def test_failed_delivery_is_retried_and_nothing_is_lost(tmp_path: Path, receiver: Receiver) -> None:
    write_log(tmp_path, "20261129T000000Z-1-aaaa", ["a1"])
    forwarder = Forwarder(tmp_path, HttpDestination(receiver.url))
    receiver.fail = True
    with pytest.raises(OSError):
        forwarder.forward_once()
    assert receiver.events == []
    receiver.fail = False
    assert forwarder.forward_once() == 1
    assert receiver.events == ["a1"]


def test_resumes_from_the_cursor_after_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    path = write_log(tmp_path, "20261129T000000Z-1-aaaa", ["a1"])
    Forwarder(tmp_path, HttpDestination(receiver.url)).forward_once()
    write_log(tmp_path, "20261129T000000Z-1-aaaa", ["a2"])
    assert path.read_bytes().count(b"\n") == 2
    Forwarder(tmp_path, HttpDestination(receiver.url)).forward_once()  # a new process
    assert receiver.events == ["a1", "a2"]
    cursor = tmp_path / "forward" / "http.cursor.json"
    assert cursor.stat().st_mode & 0o777 == 0o600


def test_background_thread_delivers_and_only_one_lock_holder_works(
    tmp_path: Path, receiver: Receiver
) -> None:
    write_log(tmp_path, "20261129T000000Z-1-aaaa", ["a1", "a2", "a3"])
    first = Forwarder(tmp_path, HttpDestination(receiver.url), poll_interval=0.05)
    second = Forwarder(tmp_path, HttpDestination(receiver.url), poll_interval=0.05)
    first.start()
    second.start()
    try:
        for _ in range(200):
            if len(receiver.events) >= 3:
                break
            threading.Event().wait(0.02)
    finally:
        first.stop()
        second.stop()
    assert sorted(receiver.events) == ["a1", "a2", "a3"]
    assert first.delivered + second.delivered == 3
    assert 0 in (first.delivered, second.delivered)


def test_syslog_over_udp_sends_rfc5424(tmp_path: Path) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    port = sock.getsockname()[1]
    write_log(tmp_path, "20261129T000000Z-1-aaaa", ["a1"])
    Forwarder(tmp_path, SyslogDestination(f"udp://127.0.0.1:{port}")).forward_once()
    message = sock.recv(65536)
    sock.close()
    assert message.startswith(b"<86>1 ")  # authpriv.info
    assert b" strongroom - audit - " in message
    assert orjson.loads(message.split(b" - audit - ", 1)[1])["eventID"] == "a1"


def test_rejects_unknown_schemes() -> None:
    with pytest.raises(ValueError):
        HttpDestination("ftp://example.invalid/")
    with pytest.raises(ValueError):
        SyslogDestination("http://127.0.0.1:514")


def test_forwarding_settings_come_from_the_environment_and_are_checked() -> None:
    settings = load_settings(
        {},
        {
            "STRONGROOM_AUDIT_FORWARD_HTTP": "https://siem.example/ingest",
            "STRONGROOM_AUDIT_FORWARD_SYSLOG": "udp://127.0.0.1:5514",
        },
    )
    assert [d.name for d in settings.audit_destinations()] == ["http", "syslog"]
    assert load_settings({}, {}).audit_destinations() == []
    assert load_settings({}, {"STRONGROOM_AUDIT_FORWARD_HTTP": ""}).audit_destinations() == []
    for bad in ("ftp://x/", "http://", "tcp://:514", "unix://"):
        name = "HTTP" if bad.startswith(("ftp", "http")) else "SYSLOG"
        with pytest.raises(ValueError):
            load_settings({}, {f"STRONGROOM_AUDIT_FORWARD_{name}": bad})


def test_readme_names_the_audit_settings_the_server_has() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("\n## The audit trail\n") : readme.index("\n## Layout\n")]
    table = set(re.findall(r"^\| `(audit_[a-z_]+)` \|", section, re.MULTILINE))
    environment = {name.lower() for name in re.findall(r"STRONGROOM_([A-Z_]+)", section)}
    assert {"audit_forward_http", "audit_forward_syslog", "audit_retention_days"} <= table
    assert table | environment <= set(Settings.__dataclass_fields__)
