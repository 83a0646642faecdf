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

from collections.abc import Mapping
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, NamedTuple


class OnBehalf(NamedTuple):
    """A call a service made to another with the caller's identity (CloudTrail:
    ``userIdentity.invokedBy``): built into an event with the request's facts.
    (Immutable; a NamedTuple rather than a frozen dataclass: made in a fraction of the
    time, once or twice a request.)"""

    invoked_by: str  # e.g. "secretsmanager.amazonaws.com"
    event_source: str  # e.g. "kms.amazonaws.com"
    event_name: str  # e.g. "Decrypt"
    request_parameters: Mapping[str, Any]  # already in CloudTrail's spelling, no secrets
    resources: tuple[str, ...]  # ARNs


Derived = OnBehalf | dict[str, Any]  # a dict: a complete service event (build_service_event)

_CURRENT: ContextVar[list[Derived] | None] = ContextVar("strongroom_derived", default=None)


class collecting:  # lower case: used as a function, ``with collecting() as found``
    """A scope whose reports go to the list ``with`` gives. A class rather than a
    @contextmanager generator: entered once a request, it then costs no generator, no
    helper object and no extra frames."""

    __slots__ = ("_token",)

    def __enter__(self) -> list[Derived]:
        found: list[Derived] = []
        self._token: Token[list[Derived] | None] = _CURRENT.set(found)
        return found

    def __exit__(
        self,
        kind: type[BaseException] | None,
        problem: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        _CURRENT.reset(self._token)


def on_behalf(call: OnBehalf) -> None:
    found = _CURRENT.get()
    if found is not None:
        found.append(call)


def service_event(event: dict[str, Any]) -> None:
    found = _CURRENT.get()
    if found is not None:
        found.append(event)
