"""The CloudTrail service facade: LookupEvents."""

from __future__ import annotations

from strongroom.audit.lookup import EventLookup
from strongroom.policy.operation_checks import Authorization, reference_checks
from strongroom.types import ServiceSpec


def cloudtrail_spec(lookup: EventLookup) -> ServiceSpec:
    handlers = {"LookupEvents": lookup.lookup_events}
    checks = reference_checks(Authorization("cloudtrail"), tuple(handlers))
    return ServiceSpec("cloudtrail", handlers, checks=checks)
