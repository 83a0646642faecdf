"""The CloudTrail service facade: LookupEvents, and ListPublicKeys (the keys that sign the
audit digests, with their validity periods, from the registry of writers)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from strongroom.audit.lookup import EventLookup
from strongroom.audit.signing import public_der
from strongroom.audit.writers import read_registry
from strongroom.clock import Clock
from strongroom.policy.operation_checks import Authorization, reference_checks
from strongroom.protocol.errors import ServiceError
from strongroom.store.engine import Store
from strongroom.types import Caller, ServiceSpec

# LookupEvents answers invalid input with its own exceptions (the model lists them), by
# the member at fault; any other violation stays a ValidationException.
_LOOKUP_ERRORS = {
    "lookupAttributes": "InvalidLookupAttributesException",
    "maxResults": "InvalidMaxResultsException",
    "eventCategory": "InvalidEventCategoryException",
}
_AT = re.compile(r" at '([A-Za-z]+)")


def invalid_input(operation: str, error: ServiceError) -> ServiceError:
    if operation != "LookupEvents" or error.code != "ValidationException":
        return error
    found = _AT.search(error.message)
    code = _LOOKUP_ERRORS.get(found.group(1)) if found else None
    return ServiceError(code, error.message) if code else error


class PublicKeys:
    """ListPublicKeys: every key a writer registered with, valid from the start of the
    first writer that used it to the last digest of the last one (now, for the key in use)."""

    def __init__(self, store: Store, clock: Clock, current: str) -> None:
        self._store = store
        self._clock = clock
        self._current = current  # the fingerprint this deployment signs with now

    def list_public_keys(self, caller: Caller, params: Mapping[str, Any]) -> dict[str, Any]:
        if params.get("NextToken"):
            # Every key fits one page: no token was ever given out.
            raise ServiceError("InvalidTokenException", "The token is not valid.")
        start: datetime | None = params.get("StartTime")
        end: datetime | None = params.get("EndTime")
        if start is not None and end is not None and start > end:
            raise ServiceError(
                "InvalidTimeRangeException", "Start time must be earlier than or equal to end time."
            )
        now = self._clock.now()
        periods: dict[str, tuple[bytes, datetime, datetime]] = {}
        for row in read_registry(self._store) or ():
            last = (
                now
                if row.fingerprint == self._current
                else (row.closed or row.last_digest or row.started)
            )
            known = periods.get(row.fingerprint)
            if known is None:
                periods[row.fingerprint] = (row.public_key, row.started, last)
            else:
                periods[row.fingerprint] = (
                    known[0],
                    min(known[1], row.started),
                    max(known[2], last),
                )
        keys: list[dict[str, Any]] = []
        for print_, (raw, valid_from, valid_to) in periods.items():
            if (end is not None and valid_from > end) or (start is not None and valid_to < start):
                continue
            keys.append(
                {
                    "Value": public_der(Ed25519PublicKey.from_public_bytes(raw)),
                    "ValidityStartTime": valid_from,
                    "ValidityEndTime": valid_to,
                    "Fingerprint": print_,
                }
            )
        keys.sort(key=lambda key: key["ValidityStartTime"])
        return {"PublicKeyList": keys}


def cloudtrail_spec(lookup: EventLookup, keys: PublicKeys) -> ServiceSpec:
    handlers = {"LookupEvents": lookup.lookup_events, "ListPublicKeys": keys.list_public_keys}
    checks = reference_checks(Authorization("cloudtrail"), tuple(handlers))
    return ServiceSpec("cloudtrail", handlers, checks=checks, invalid_input=invalid_input)
