"""The CloudTrail service facade: LookupEvents."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.audit.lookup import EventLookup, LookupCaller
from strongroom.policy.operation_checks import Authorization, reference_checks
from strongroom.protocol.service import ServiceSpec


def cloudtrail_spec(lookup: EventLookup) -> ServiceSpec:
    def lookup_events(caller: Any, params: Mapping[str, Any]) -> Mapping[str, Any]:
        return lookup.lookup_events(LookupCaller(caller.account_id, caller.region), params)

    handlers = {"LookupEvents": lookup_events}
    checks = reference_checks(Authorization("cloudtrail"), tuple(handlers))
    return ServiceSpec("cloudtrail", handlers, checks=checks)
