"""The registry of audit writers: every writer that ever opened the log, in a durable order.

A writer (one open of a deployment: a worker's lifetime, one unseal, on any node) registers
before it logs anything, inside one write transaction of the shared database: it takes the
next ordinal, names the writer registered before it and that writer's latest digest, and
writes its own first digest carrying that link (``previousWriter``). So the writers form
one chain across workers, restarts and nodes (they share the database), and the database,
outside the audit directory, lists every writer, the key it signs with and the last digest
it wrote. ``strongroom audit verify`` checks the files against it: a writer deleted whole
(first, middle or last), a digest removed from the end of a writer, a replaced key.

Updates after registration (each digest, the close, retention's removal of a whole
writer) are handed to one small thread per registry, so the audit writer thread never
waits on the database (a write batch holding the database's write lock may be waiting on
it).
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from strongroom.clock import from_ms, to_ms
from strongroom.store import schema
from strongroom.store.engine import Store

log = logging.getLogger("strongroom.audit")


@dataclass(frozen=True)
class Link:
    """What a writer's first digest names: the writer registered before it and the latest
    digest that writer had registered then (None: it had written none yet)."""

    writer: str
    digest_sequence: int | None
    digest_hash: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "writer": self.writer,
            "digestSequence": self.digest_sequence,
            "digestHash": self.digest_hash,
        }


@dataclass(frozen=True)
class WriterRow:
    ordinal: int
    writer: str
    node: str
    started: datetime
    previous_writer: str | None
    public_key: bytes  # raw Ed25519
    fingerprint: str
    digest_interval: float  # seconds
    last_digest_sequence: int | None
    last_digest_hash: str | None
    last_digest: datetime | None
    closed: datetime | None
    retired: datetime | None


@dataclass(frozen=True)
class Registration:
    writer: str
    started: datetime
    public_key: bytes
    fingerprint: str
    digest_interval: float


# Given the link (None for the very first writer), write the writer's first digest and
# return its (sequence, hash).
FirstDigest = Callable[[Link | None], tuple[int, str]]


class WriterRegistry(Protocol):
    def register(self, registration: Registration, first_digest: FirstDigest) -> None:
        """Take the next place in the order and write the first digest, atomically."""

    def digested(self, writer: str, sequence: int, digest_hash: str, at: datetime) -> None:
        """A digest was written (must not block)."""

    def retired(self, writer: str, at: datetime) -> None:
        """Retention removed every file of ``writer`` (must not block)."""

    def closed(self, writer: str, at: datetime) -> None:
        """The writer wrote its last digest and stopped (may block: it is closing)."""


class StoreRegistry:
    """The registry in the deployment's database (table ``audit_writers``)."""

    def __init__(self, store: Store, node: str | None = None) -> None:
        self._store = store
        self.node = node or socket.gethostname()
        self._updates: queue.SimpleQueue[tuple[str, str, dict[str, Any]] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"StoreRegistry(node={self.node!r})"

    def register(self, registration: Registration, first_digest: FirstDigest) -> None:
        for _attempt in range(5):
            try:
                with self._store.write() as conn:
                    last = conn.execute(
                        select(schema.audit_writers)
                        .order_by(schema.audit_writers.c.ordinal.desc())
                        .limit(1)
                    ).first()
                    link = (
                        Link(last.writer, last.last_digest_sequence, last.last_digest_hash)
                        if last is not None
                        else None
                    )
                    sequence, hashed = first_digest(link)
                    conn.execute(
                        insert(schema.audit_writers).values(
                            ordinal=(last.ordinal + 1) if last is not None else 1,
                            writer=registration.writer,
                            node=self.node,
                            started_ms=to_ms(registration.started),
                            previous_writer=link.writer if link else None,
                            public_key=registration.public_key,
                            fingerprint=registration.fingerprint,
                            digest_interval_ms=int(registration.digest_interval * 1000),
                            last_digest_sequence=sequence,
                            last_digest_hash=hashed,
                            last_digest_ms=to_ms(registration.started),
                        )
                    )
                return
            except IntegrityError:
                # A database without SQLite's write lock: another writer took the ordinal.
                continue
        raise RuntimeError("could not register the audit writer")

    def digested(self, writer: str, sequence: int, digest_hash: str, at: datetime) -> None:
        self._submit(
            writer,
            {
                "last_digest_sequence": sequence,
                "last_digest_hash": digest_hash,
                "last_digest_ms": to_ms(at),
            },
        )

    def retired(self, writer: str, at: datetime) -> None:
        self._submit(writer, {"retired_ms": to_ms(at)})

    def closed(self, writer: str, at: datetime) -> None:
        self._submit(writer, {"closed_ms": to_ms(at)})
        self.flush()

    def flush(self) -> None:
        """Wait until every update handed over so far is in the database."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._updates.put(None)
            thread.join()

    def _submit(self, writer: str, values: dict[str, Any]) -> None:
        self._updates.put(("update", writer, values))
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="audit-registry", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._updates.get()
            if item is None:
                return
            _, writer, values = item
            try:
                with self._store.write() as conn:
                    conn.execute(
                        update(schema.audit_writers)
                        .where(schema.audit_writers.c.writer == writer)
                        .values(**values)
                    )
            except Exception:
                log.exception("could not record audit writer %s in the registry", writer)


def read_registry(store: Store) -> list[WriterRow] | None:
    """Every registered writer in order; None when the database has no registry."""
    try:
        with store.read() as conn:
            rows = conn.execute(
                select(schema.audit_writers).order_by(schema.audit_writers.c.ordinal)
            ).all()
    except (OperationalError, ProgrammingError):
        return None
    return [
        WriterRow(
            ordinal=row.ordinal,
            writer=row.writer,
            node=row.node,
            started=from_ms(row.started_ms),
            previous_writer=row.previous_writer,
            public_key=bytes(row.public_key),
            fingerprint=row.fingerprint,
            digest_interval=row.digest_interval_ms / 1000,
            last_digest_sequence=row.last_digest_sequence,
            last_digest_hash=row.last_digest_hash,
            last_digest=from_ms(row.last_digest_ms),
            closed=from_ms(row.closed_ms),
            retired=from_ms(row.retired_ms),
        )
        for row in rows
    ]
