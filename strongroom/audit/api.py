"""The CloudTrail service facade: LookupEvents."""

from __future__ import annotations

from strongroom.audit.lookup import EventLookup
from strongroom.types import ServiceSpec


def cloudtrail_spec(lookup: EventLookup) -> ServiceSpec:
    return ServiceSpec("cloudtrail", {"LookupEvents": lookup.lookup_events})
