"""Forward audit records to a SIEM (HTTP) or syslog without ever blocking a request.

The log files are the spool: a forwarder tails them from a cursor kept on disk, sends
batches, and advances the cursor only after the destination accepted them. A slow or
dead destination makes the forwarder lag, never the server; after a restart it resumes
where it stopped (at-least-once delivery). With several workers, one holds the
forwarder's lock file and does the work; another takes over if it dies.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import urlparse

import orjson

log = logging.getLogger("strongroom.audit.forward")

BATCH = 500
MAX_BACKOFF = 60.0


class Destination(Protocol):
    name: str

    def send(self, records: Sequence[bytes]) -> None:
        """Deliver ``records`` (JSON lines without newline) or raise."""


class HttpDestination:
    """POSTs batches as newline-delimited JSON; any 2xx answer is an acknowledgement."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"audit forwarding URL must be http(s)://host/...: {url}")
        self.url = url
        self.name = "http"
        self._timeout = timeout

    def send(self, records: Sequence[bytes]) -> None:
        body = b"\n".join(records) + b"\n"
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/x-ndjson", "User-Agent": "strongroom-audit"},
        )
        with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
            if not 200 <= response.status < 300:
                raise OSError(f"{self.url} answered {response.status}")


class SyslogDestination:
    """RFC 5424 messages over UDP (RFC 5426), TCP (octet-counted frames, RFC 6587) or a
    Unix datagram socket: ``udp://host:port``, ``tcp://host:port``, ``unix:///dev/log``."""

    FACILITY_AUTHPRIV = 10
    SEVERITY_INFO = 6
    MAX_DATAGRAM = 65000  # below the UDP payload limit; a larger record cannot be sent

    def __init__(self, address: str) -> None:
        parsed = urlparse(address)
        if parsed.scheme not in ("udp", "tcp", "unix"):
            raise ValueError(f"syslog address must be udp://, tcp:// or unix://: {address}")
        if parsed.scheme == "unix" and not parsed.path:
            raise ValueError(f"syslog address names no socket: {address}")
        if parsed.scheme != "unix" and not parsed.hostname:
            raise ValueError(f"syslog address names no host: {address}")
        self._scheme = parsed.scheme
        self._path = parsed.path
        self._host_port = (parsed.hostname or "", parsed.port or 514)
        self._host = socket.gethostname()
        self.name = "syslog"

    def _message(self, record: bytes) -> bytes:
        priority = self.FACILITY_AUTHPRIV * 8 + self.SEVERITY_INFO
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        # HEADER (PRI VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID), no STRUCTURED-DATA,
        # then the record (one JSON object) as MSG.
        return f"<{priority}>1 {stamp} {self._host} strongroom - audit - ".encode() + record

    def send(self, records: Sequence[bytes]) -> None:
        if self._scheme == "tcp":
            with socket.create_connection(self._host_port, timeout=10) as stream:
                for record in records:
                    message = self._message(record)
                    stream.sendall(str(len(message)).encode() + b" " + message)
            return
        if self._scheme == "unix":
            family, target = socket.AF_UNIX, self._path
            address: str | tuple[str, int] = target
        else:
            family, _, _, _, resolved = socket.getaddrinfo(
                *self._host_port, type=socket.SOCK_DGRAM
            )[0]
            address = (str(resolved[0]), int(resolved[1]))
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            for record in records:
                message = self._message(record)
                if len(message) > self.MAX_DATAGRAM:
                    # Datagram syslog cannot carry it; the log file (and HTTP) still has it.
                    log.warning("audit record of %d bytes too large for syslog", len(message))
                    continue
                sock.sendto(message, address)


def destination_for(kind: str, address: str) -> Destination:
    return HttpDestination(address) if kind == "http" else SyslogDestination(address)


class Forwarder:
    def __init__(
        self, audit_dir: Path, destination: Destination, *, poll_interval: float = 1.0
    ) -> None:
        self._logs = audit_dir / "logs"
        state = audit_dir / "forward"
        audit_dir.mkdir(exist_ok=True, mode=0o700)
        state.mkdir(exist_ok=True, mode=0o700)
        self._cursor_path = state / f"{destination.name}.cursor.json"
        self._lock_path = state / f"{destination.name}.lock"
        self._destination = destination
        self._poll = poll_interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"audit-forward-{destination.name}", daemon=True
        )
        self.delivered = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the batch being sent (if any). A batch still unacknowledged when
        the process exits is sent again after the restart (at-least-once)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    # Cursor: {relative log path: byte offset of the first record not yet delivered}

    def _load_cursor(self) -> dict[str, int]:
        try:
            return {k: int(v) for k, v in orjson.loads(self._cursor_path.read_bytes()).items()}
        except FileNotFoundError:
            return {}

    def _save_cursor(self, cursor: dict[str, int]) -> None:
        temporary = self._cursor_path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(orjson.dumps(cursor))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self._cursor_path)

    def _run(self) -> None:
        lock: IO[bytes] | None = None
        backoff = self._poll
        while not self._stop.is_set():
            if lock is None:
                lock = self._try_lock()
                if lock is None:
                    self._stop.wait(self._poll * 5)  # another worker forwards
                    continue
            try:
                sent = self.forward_once()
                backoff = self._poll
                if not sent:
                    self._stop.wait(self._poll)
            except Exception as problem:
                log.warning(
                    "audit forwarding to %s failed (%s); retrying in %.0fs",
                    self._destination.name,
                    problem,
                    backoff,
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
        if lock is not None:
            lock.close()

    def _try_lock(self) -> IO[bytes] | None:
        try:
            handle = open(self._lock_path, "ab")  # noqa: SIM115 - held for the thread's life
        except OSError as problem:
            log.warning("audit forwarding to %s: no lock (%s)", self._destination.name, problem)
            return None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another worker (or node on this disk) holds it
            handle.close()
            return None
        return handle

    def forward_once(self) -> int:
        """Send what is pending (one batch per file); returns how many records went."""
        if not self._logs.is_dir():
            return 0
        cursor = self._load_cursor()
        paths = sorted(self._logs.glob("*/*.jsonl"))
        present = {str(path.relative_to(self._logs)) for path in paths}
        if set(cursor) - present:  # files removed by retention: forget their positions
            cursor = {key: offset for key, offset in cursor.items() if key in present}
            self._save_cursor(cursor)
        sent = 0
        for path in paths:
            key = str(path.relative_to(self._logs))
            offset = cursor.get(key, 0)
            try:
                if path.stat().st_size <= offset:
                    continue
                records, end = _read_complete_lines(path, offset, BATCH)
            except FileNotFoundError:  # removed by retention meanwhile
                continue
            if not records:
                continue
            self._destination.send(records)
            cursor[key] = end
            self._save_cursor(cursor)
            sent += len(records)
            self.delivered += len(records)
        return sent


def start_forwarders(audit_dir: Path, destinations: Sequence[Destination]) -> list[Forwarder]:
    """One forwarder thread per destination (every worker starts them; a lock file per
    destination lets one worker at a time do the sending)."""
    started = []
    for destination in destinations:
        forwarder = Forwarder(audit_dir, destination)
        forwarder.start()
        started.append(forwarder)
    return started


def stop_forwarders(forwarders: Sequence[Forwarder]) -> None:
    for forwarder in forwarders:
        forwarder.stop()


def _read_complete_lines(path: Path, offset: int, limit: int) -> tuple[list[bytes], int]:
    records: list[bytes] = []
    with path.open("rb") as handle:
        handle.seek(offset)
        for line in handle:
            if not line.endswith(b"\n"):
                break  # still being written
            records.append(line[:-1])
            offset += len(line)
            if len(records) == limit:
                break
    return records, offset
