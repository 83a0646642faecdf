"""Where audit events go. A sink that cannot write makes the request fail (fail closed).

The one sink is :class:`strongroom.audit.log.AuditLog`: hash-chained, group-committed,
signed JSON lines (docs/audit-format.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

# An event: its members, or its record already serialized in canonical form
# (integrity.canonical's bytes, as audit/templates.py renders them; written as they are).
Event = Mapping[str, Any] | bytes


class AuditSink(Protocol):
    def write(self, event: Event) -> None:
        """Record ``event``; return only once the record is durable, else raise."""

    def write_many(self, events: Sequence[Event]) -> None:
        """Record ``events`` together: all durable when this returns, else none is."""

    async def write_async(self, event: Event) -> None:
        """:meth:`write`, awaited on an event loop instead of blocking a thread."""

    async def write_many_async(self, events: Sequence[Event]) -> None:
        """:meth:`write_many`, awaited on an event loop instead of blocking a thread."""
