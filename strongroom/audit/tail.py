"""``strongroom audit tail``: the newest events across every writer, one line each.

Reads the log files directly (no server, no key needed). Events never hold a secret
value (sensitive members are dropped when the event is built), and a line shows only
who, what, on which resource and how it ended.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from strongroom.audit import integrity
from strongroom.audit.corrections import CORRECTION, corrected, is_correction
from strongroom.audit.integrity import INTEGRITY

# requestParameters members that name what a request was about, by service.
_RESOURCE_MEMBERS = ("SecretId", "Name", "KeyId", "AliasName", "UserName", "RoleArn")


def _complete_lines(path: Path, start: int, stop: int | None) -> tuple[list[bytes], int]:
    """The whole lines of ``path`` between byte ``start`` and ``stop`` (or its end) and
    the offset after the last one; a line still being written is left for later."""
    with path.open("rb") as handle:
        handle.seek(start)
        data = handle.read() if stop is None else handle.read(max(0, stop - start))
    end = data.rfind(b"\n") + 1
    return data[:end].splitlines(), start + end


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


def _order(event: Mapping[str, Any]) -> tuple[str, str, int]:
    marks = event.get(INTEGRITY) or {}
    return (str(event.get("eventTime", "")), str(marks.get("writer", "")), marks.get("sequence", 0))


def recent(
    audit_dir: Path, count: int, *, upto: Mapping[Path, int] | None = None
) -> list[dict[str, Any]]:
    """The newest ``count`` events in time order (files read only up to ``upto``)."""
    if count <= 0:
        return []
    events: list[dict[str, Any]] = []
    for writer in integrity.writers(audit_dir):
        found: list[dict[str, Any]] = []
        for path in reversed(integrity.log_files(audit_dir, writer)):
            stop = upto.get(path) if upto is not None else None
            if upto is not None and stop is None:
                continue  # appeared after the snapshot: the follower shows it
            lines, _ = _complete_lines(path, 0, stop)
            parsed = [event for event in map(_parse, lines) if event is not None]
            found = parsed[-(count - len(found)) :] + found
            if len(found) >= count:
                break
        events.extend(found)
    events.sort(key=_order)
    return corrected(events)[-count:]


class Follower:
    """Remembers how far every log file was read; :meth:`poll` returns what is new."""

    def __init__(self, audit_dir: Path) -> None:
        self.audit_dir = audit_dir
        self.positions: dict[Path, int] = {}
        for path in self._files():
            _, self.positions[path] = _complete_lines(path, 0, None)

    def _files(self) -> list[Path]:
        return [
            path
            for writer in integrity.writers(self.audit_dir)
            for path in integrity.log_files(self.audit_dir, writer)
        ]

    def poll(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for path in self._files():
            start = self.positions.get(path, 0)
            try:
                if path.stat().st_size <= start:
                    continue
                lines, self.positions[path] = _complete_lines(path, start, None)
            except FileNotFoundError:  # removed by retention meanwhile
                continue
            events.extend(event for event in map(_parse, lines) if event is not None)
        events.sort(key=_order)
        return events


def principal(event: Mapping[str, Any]) -> str:
    identity = event.get("userIdentity") or {}
    for name in ("arn", "principalId", "accessKeyId", "invokedBy"):
        if identity.get(name):
            return str(identity[name])
    return str(identity.get("type") or "-")


def resource(event: Mapping[str, Any]) -> str:
    for item in event.get("resources") or []:
        if isinstance(item, dict) and item.get("ARN"):
            return str(item["ARN"])
    parameters = event.get("requestParameters") or {}
    if isinstance(parameters, dict):
        for name in _RESOURCE_MEMBERS:
            for key in (name, name[0].lower() + name[1:]):
                if parameters.get(key):
                    return str(parameters[key])
    return "-"


def format_line(event: Mapping[str, Any]) -> str:
    """``time  principal  service:Event  resource  OK | ErrorCode: message``"""
    source = str(event.get("eventSource", "-")).split(".", 1)[0]
    outcome = "OK"
    if event.get("errorCode"):
        message = " ".join(str(event.get("errorMessage") or "").split())
        outcome = f"{event['errorCode']}: {message}" if message else str(event["errorCode"])
    if is_correction(event):
        # Followed live, the request's first line was shown already: this one replaces it.
        outcome += f"  (corrects event {event.get('eventID')}: {event[CORRECTION].get('reason')})"
    return "  ".join(
        [
            str(event.get("eventTime", "-")),
            principal(event),
            f"{source}:{event.get('eventName', '-')}",
            resource(event),
            outcome,
        ]
    )
