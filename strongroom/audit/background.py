"""The unit of work of something the server does on its own (a background job, a rotation
step): its writes commit only once the audit records it produced are durable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from strongroom.audit.log import AuditLog
from strongroom.store.engine import Store

T = TypeVar("T")
Record = dict[str, Any]


def audited(store: Store, log: AuditLog, work: Callable[[Callable[[Record], None]], T]) -> T:
    """Run ``work`` in one transaction; ``work`` hands each audit record it makes to the
    callable it is given. They are written (and synced) before the commit: if they cannot
    be, the transaction rolls back and nothing changed (fail closed)."""
    records: list[Record] = []
    with store.unit_of_work() as unit:
        result = work(records.append)
        for record in records:
            log.write(record)  # raises: the unit rolls back
        unit.commit()
    return result
