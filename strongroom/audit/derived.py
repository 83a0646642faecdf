"""Events a request causes besides its own record, collected while its operation runs.

A domain reports what it did on the caller's behalf (Secrets Manager's KMS calls) or what
the service did as a consequence (Organizations' ``CreateAccountResult``) by calling
:func:`on_behalf` or :func:`service_event`; it never writes the audit log. The pipeline
opens a :func:`collecting` scope around the operation and writes what was collected in
the same durable batch as the request's own record: one group commit, never a second
durable write per request. Outside a scope (a background job, a test calling a service
directly) the reports are dropped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OnBehalf:
    """A call a service made to another with the caller's identity (CloudTrail:
    ``userIdentity.invokedBy``): built into an event with the request's facts."""

    invoked_by: str  # e.g. "secretsmanager.amazonaws.com"
    event_source: str  # e.g. "kms.amazonaws.com"
    event_name: str  # e.g. "Decrypt"
    request_parameters: Mapping[str, Any]  # already in CloudTrail's spelling, no secrets
    resources: tuple[str, ...]  # ARNs


Derived = OnBehalf | dict[str, Any]  # a dict: a complete service event (build_service_event)

_CURRENT: ContextVar[list[Derived] | None] = ContextVar("strongroom_derived", default=None)


@contextmanager
def collecting() -> Iterator[list[Derived]]:
    """A scope whose reports go to the list yielded."""
    found: list[Derived] = []
    token = _CURRENT.set(found)
    try:
        yield found
    finally:
        _CURRENT.reset(token)


def on_behalf(call: OnBehalf) -> None:
    found = _CURRENT.get()
    if found is not None:
        found.append(call)


def service_event(event: dict[str, Any]) -> None:
    found = _CURRENT.get()
    if found is not None:
        found.append(event)
