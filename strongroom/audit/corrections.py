"""Correction records: how a request reads as exactly one event with its final outcome.

A write's audit record is made durable *before* its changes commit (fail closed). If the
commit then fails (a full disk, a lost database), the record already written says the
request succeeded. The writer then appends a *correction*: the same event (same
``eventID`` and ``requestID``) with its final outcome (``InternalServiceError``, no
``responseElements``) and one extra member::

    "strongroomCorrection": {"reason": "..."}

Every reader applies it (docs/audit-format.md): the correction takes the place of the
record it corrects, so ``LookupEvents`` and ``strongroom audit tail`` show the request
once, as it ended; ``strongroom audit verify`` checks that each correction follows the
one record it corrects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

CORRECTION = "strongroomCorrection"
COMMIT_FAILED = "the request's changes did not commit after its record was written"


def is_correction(event: Mapping[str, Any]) -> bool:
    return CORRECTION in event


def corrected(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``events`` with each correction in the place of the record it corrects (a
    correction whose original is not among them stands where it is)."""
    events = list(events)
    final = {event.get("eventID"): event for event in events if CORRECTION in event}
    if not final:
        return events
    shown: set[Any] = set()
    result: list[dict[str, Any]] = []
    for event in events:
        event_id = event.get("eventID")
        if event_id in final:
            if event_id not in shown:
                shown.add(event_id)
                result.append(final[event_id])
            continue
        result.append(event)
    return result
