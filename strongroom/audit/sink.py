"""Where audit events go. A sink that cannot write makes the request fail (fail closed)."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import orjson


class AuditSink(Protocol):
    def write(self, event: Mapping[str, Any]) -> None: ...


class JsonLinesSink:
    """Appends one JSON line per event to ``<dir>/events.jsonl`` and syncs it to disk
    before the response leaves."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._path = directory / "events.jsonl"
        self._lock = threading.Lock()

    def write(self, event: Mapping[str, Any]) -> None:
        line = orjson.dumps(event) + b"\n"
        with self._lock:
            fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
