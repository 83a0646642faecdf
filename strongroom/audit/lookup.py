"""CloudTrail ``LookupEvents`` over the audit log files (format: docs/audit-format.md).

The files are the source of truth; a lookup scans the writers whose lifetime overlaps
the time range. Results come newest first, keyed by (eventTime, eventID) so a NextToken
is a stable position even while new events arrive.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from strongroom.audit.corrections import CORRECTION, is_correction
from strongroom.clock import Clock
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.pagination import TokenCodec
from strongroom.types import Caller

DEFAULT_WINDOW = timedelta(days=90)
PAGE = 50
INTEGRITY = "strongroomIntegrity"


def _error(code: str, message: str) -> ServiceError:
    return ServiceError(code, message)


def _event_time(event: Mapping[str, Any]) -> datetime:
    return datetime.strptime(event["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _writer_start(writer: str) -> datetime | None:
    try:
        return datetime.strptime(writer.split("-", 1)[0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def iter_events(audit_dir: Path, *, not_after: datetime | None = None) -> Iterator[dict[str, Any]]:
    """Every event in the log files, skipping writers that started after ``not_after``."""
    logs = audit_dir / "logs"
    if not logs.is_dir():
        return
    for writer_dir in sorted(logs.iterdir()):
        started = _writer_start(writer_dir.name)
        if not_after is not None and started is not None and started > not_after:
            continue
        for path in sorted(writer_dir.glob("*.jsonl")):
            with path.open("rb") as handle:
                for line in handle:
                    if not line.endswith(b"\n"):
                        break  # a record still being written, or a torn tail after a crash
                    try:
                        yield orjson.loads(line)
                    except orjson.JSONDecodeError:
                        continue


def username(identity: Mapping[str, Any]) -> str | None:
    """LookupEvents' Username: the IAM user's name, the session name of an assumed role
    (as CloudTrail's event history shows it), "root"; none for a service's own events and
    for requests whose signature was not verified."""
    if identity.get("userName"):
        return str(identity["userName"])
    arn = str(identity.get("arn", ""))
    if arn.endswith(":root"):
        return "root"
    if ":assumed-role/" in arn:
        return arn.rsplit("/", 1)[-1]  # the session name, as CloudTrail reports it
    if ":user/" in arn:
        return arn.rsplit("/", 1)[-1]
    return None


def _resources(event: Mapping[str, Any]) -> list[dict[str, str]]:
    return [
        {"ResourceType": r.get("type", ""), "ResourceName": r.get("ARN", "")}
        for r in event.get("resources") or []
    ]


def _matches(event: Mapping[str, Any], key: str, value: str) -> bool:
    identity = event.get("userIdentity") or {}
    if key == "EventId":
        return bool(event.get("eventID") == value)
    if key == "EventName":
        return bool(event.get("eventName") == value)
    if key == "ReadOnly":  # "true" or "false", matched exactly like every attribute
        return str(bool(event.get("readOnly"))).lower() == value
    if key == "Username":
        return username(identity) == value
    if key == "EventSource":
        return bool(event.get("eventSource") == value)
    if key == "AccessKeyId":
        return bool(identity.get("accessKeyId") == value)
    if key == "ResourceType":
        return any(r["ResourceType"] == value for r in _resources(event))
    if key == "ResourceName":
        return any(r["ResourceName"] == value for r in _resources(event))
    return False


def _visible_to(event: Mapping[str, Any], account_id: str) -> bool:
    """An account sees the events it is the recipient of: a cross-account call is written
    once per account (audit/events.py ``cross_account_copies``), each seeing its own copy."""
    return bool(event.get("recipientAccountId") == account_id)


class EventLookup:
    def __init__(self, audit_dir: Path, clock: Clock, tokens: TokenCodec) -> None:
        self._dir = audit_dir
        self._clock = clock
        self._tokens = tokens

    def lookup_events(self, caller: Caller, params: Mapping[str, Any]) -> dict[str, Any]:
        attributes = params.get("LookupAttributes") or []
        if len(attributes) > 1:
            raise _error(
                "InvalidLookupAttributesException",
                "You can specify only one lookup attribute at a time.",
            )
        if params.get("EventCategory") == "insight":
            # Strongroom records management events only: there are no Insights events.
            return {"Events": []}
        limit = params.get("MaxResults") or PAGE
        key = attributes[0]["AttributeKey"] if attributes else None
        value = attributes[0]["AttributeValue"] if attributes else None
        asked_start: datetime | None = params.get("StartTime")
        asked_end: datetime | None = params.get("EndTime")
        scope = (
            "LookupEvents|"
            + hashlib.sha256(
                orjson.dumps(
                    [
                        caller.account_id,
                        caller.region,
                        key,
                        value,
                        asked_start.timestamp() if asked_start else None,
                        asked_end.timestamp() if asked_end else None,
                    ]
                )
            ).hexdigest()
        )
        state = self._tokens.decode(scope, params["NextToken"]) if params.get("NextToken") else None
        # Without an EndTime the window ends "now": for the next pages, the now of the first.
        if asked_end is not None:
            end = asked_end
        elif state is not None and state.get("end") is not None:
            end = datetime.fromtimestamp(float(state["end"]), UTC)
        else:
            end = self._clock.now()
        start = asked_start or (end - DEFAULT_WINDOW)
        if start > end:
            raise _error(
                "InvalidTimeRangeException",
                "Start time must be earlier than or equal to end time.",
            )
        before = (str(state["time"]), str(state["id"])) if state is not None else None
        # By eventID: a correction (audit/corrections.py) takes its original's place, or
        # removes it when the corrected event no longer matches.
        found: dict[str, tuple[str, str, dict[str, Any]]] = {}
        for event in iter_events(self._dir, not_after=end):
            if is_correction(event):
                found.pop(str(event.get("eventID")), None)
            if not _visible_to(event, caller.account_id):
                continue
            if event.get("awsRegion") != caller.region:
                continue
            moment = _event_time(event)
            if not start <= moment <= end:
                continue
            if key is not None and value is not None and not _matches(event, key, value):
                continue
            position = (event["eventTime"], event["eventID"])
            if before is not None and position >= before:
                continue
            found[position[1]] = (*position, event)
        ordered = sorted(found.values(), key=lambda item: (item[0], item[1]), reverse=True)
        page = ordered[:limit]
        token = None
        if len(ordered) > limit:
            last = page[-1]
            token = self._tokens.encode(
                scope, {"time": last[0], "id": last[1], "end": end.timestamp()}
            )
        return {"Events": [self._entry(event) for _, _, event in page], "NextToken": token}

    @staticmethod
    def _entry(event: dict[str, Any]) -> dict[str, Any]:
        identity = event.get("userIdentity") or {}
        public = {k: v for k, v in event.items() if k not in (INTEGRITY, CORRECTION)}
        return {
            "EventId": event.get("eventID"),
            "EventName": event.get("eventName"),
            "ReadOnly": str(bool(event.get("readOnly"))).lower(),
            "AccessKeyId": identity.get("accessKeyId"),
            "EventTime": _event_time(event),
            "EventSource": event.get("eventSource"),
            "Username": username(identity),
            "Resources": _resources(event),
            "CloudTrailEvent": orjson.dumps(public).decode(),
        }
