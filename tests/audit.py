"""Helpers for tests that read a data directory's audit trail: the `strongroom audit` CLI
and the records as written."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import orjson

from tests.server import STRONGROOM


def audit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``strongroom audit ARGS``; ``env`` is added to this process's environment."""
    return subprocess.run(
        [str(STRONGROOM), "audit", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def audit_records(data_dir: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted((data_dir / "audit" / "logs").glob("*/*.jsonl")):
        for line in path.read_bytes().splitlines(keepends=True):
            if line.endswith(b"\n"):  # a torn last line after a crash is not a record
                found.append(orjson.loads(line))
    return found
