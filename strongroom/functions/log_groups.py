"""Where the functions' invocation logs are kept: one log group per function name (per
account and Region), as CloudWatch Logs keeps ``/aws/lambda/<name>``, and each
invocation's log sealed under its group's key.

A rotation function may print anything, a secret value included, so no log is stored in
plaintext: each group has its own 256-bit data key, sealed by the root barrier and bound
to the group's ARN (:data:`strongroom.functions.repository.ROOT_SEALED`, so a rekey
re-wraps it), and each log is AES-256-GCM under it, bound to the group's ARN and the
invocation's request id, with :class:`~strongroom.functions.repository.CodeVault`, the
machinery that seals the functions' code. A log moved to another group or invocation does
not open. The group outlives its function (deleting a function keeps its logs, as in
AWS); ``DeleteLogGroup`` removes it with its key.

Retention is CloudWatch's: a group without one keeps its logs forever; with one, the
purge job (:func:`strongroom.server.jobs.purge_function_logs`) deletes each invocation
whose last event is older than the retention.

Rows an older version stored in plaintext are sealed by :meth:`LogGroups.seal_plaintext`
once the deployment is open (the migration has no root key): idempotent, so every
worker may run it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import Connection, delete, func, insert, select, update

from strongroom.clock import DAY_MS, Clock, now_ms
from strongroom.functions.common import LOG_GROUP, log_stream
from strongroom.functions.repository import CodeVault
from strongroom.functions.runtime import Outcome
from strongroom.store import schema
from strongroom.store.engine import Store

log = logging.getLogger("strongroom.functions")

# PutRetentionPolicy's retentionInDays: the values CloudWatch Logs accepts (botocore's
# ``logs`` model, shape Days).
RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip


def group_arn(region: str, account: str, function_name: str) -> str:
    return f"arn:aws:logs:{region}:{account}:log-group:{LOG_GROUP}{function_name}"


@dataclass(frozen=True)
class LogGroup:
    arn: str
    account_id: str
    region: str
    function_name: str
    retention_days: int | None
    created_ms: int
    data_key: bytes = field(repr=False)

    @property
    def name(self) -> str:
        return LOG_GROUP + self.function_name


class StoredLog(NamedTuple):
    """One attempt of an invocation's log, opened. Every attempt of a request (an
    asynchronous invocation's retries) is in one log stream, named by its first."""

    request_id: str
    function_name: str
    started_ms: int
    duration_ms: int
    attempt: int = 1
    log: str = ""  # "" when only its metadata was read
    first_ms: int | None = None  # the request's first attempt's start, when not this one

    @property
    def stream(self) -> str:
        return log_stream(
            self.request_id, self.started_ms if self.first_ms is None else self.first_ms
        )

    @property
    def ended_ms(self) -> int:
        return self.started_ms + self.duration_ms


class GroupSummary(NamedTuple):
    group: LogGroup
    stored_bytes: int


class PurgedLog(NamedTuple):
    """What the purge job reports of an invocation log it deleted."""

    group: LogGroup
    stream: str


def _group(row: Any) -> LogGroup:
    return LogGroup(
        row.arn,
        row.account_id,
        row.region,
        row.function_name,
        row.retention_days,
        row.created_ms,
        row.data_key,
    )


class LogGroups:
    def __init__(self, store: Store, vault: CodeVault, clock: Clock) -> None:
        self._store = store
        self._vault = vault
        self._clock = clock

    # ------------------------------------------------------------------ groups

    def find(self, account: str, region: str, function_name: str) -> LogGroup | None:
        with self._store.read() as conn:
            return _find(conn, account, region, function_name)

    def listing(self, account: str, region: str) -> list[GroupSummary]:
        g, t = schema.lambda_log_groups, schema.lambda_invocations
        size = (
            select(func.coalesce(func.sum(t.c.stored_bytes), 0))
            .where(
                t.c.account_id == g.c.account_id,
                t.c.region == g.c.region,
                t.c.function_name == g.c.function_name,
            )
            .scalar_subquery()
        )
        with self._store.read() as conn:
            rows = conn.execute(
                select(g, size.label("size"))
                .where(g.c.account_id == account, g.c.region == region)
                .order_by(g.c.function_name)
            ).all()
        return [GroupSummary(_group(row), int(row.size or 0)) for row in rows]

    def set_retention(self, group: LogGroup, days: int | None) -> None:
        g = schema.lambda_log_groups
        with self._store.write() as conn:
            conn.execute(update(g).where(g.c.arn == group.arn).values(retention_days=days))

    def delete_group(self, group: LogGroup) -> None:
        """The group, its key and every log in it."""
        g, t = schema.lambda_log_groups, schema.lambda_invocations
        with self._store.write() as conn:
            conn.execute(delete(t).where(*_of(t, group)))
            conn.execute(delete(g).where(g.c.arn == group.arn))

    def delete_stream(self, group: LogGroup, request_id: str) -> None:
        t = schema.lambda_invocations
        with self._store.write() as conn:
            conn.execute(delete(t).where(*_of(t, group), t.c.request_id == request_id))

    # ------------------------------------------------------------------ logs

    def record(
        self,
        function_arn: str,
        account: str,
        region: str,
        function_name: str,
        request_id: str,
        outcome: Outcome,
        attempt: int = 1,
    ) -> None:
        """Keep one invocation's log (one attempt's, for an asynchronous invocation), sealed
        under its group's key; the group is made, with a new key, by its first log."""
        with self._store.write() as conn:
            group = _find(conn, account, region, function_name) or self._create(
                conn, account, region, function_name
            )
            key = self._vault.log_key(group.arn, group.data_key)
            g = schema.lambda_log_groups
            conn.execute(update(g).where(g.c.arn == group.arn).values(logged=g.c.logged + 1))
            sequence = conn.execute(select(g.c.logged).where(g.c.arn == group.arn)).scalar_one()
            conn.execute(
                insert(schema.lambda_invocations).values(
                    request_id=request_id,
                    attempt=attempt,
                    sequence=sequence,
                    function_arn=function_arn,
                    account_id=account,
                    region=region,
                    function_name=function_name,
                    started_ms=outcome.started_ms,
                    duration_ms=outcome.duration_ms,
                    outcome=outcome.kind,
                    log="",
                    sealed=self._vault.seal_log(key, group.arn, request_id, outcome.log, attempt),
                    stored_bytes=len(outcome.log.encode()),
                )
            )

    def logs(
        self,
        group: LogGroup,
        *,
        opened: bool = True,
        only: Callable[[StoredLog], bool] | None = None,
    ) -> list[StoredLog]:
        """The group's invocation logs, oldest first (those ``only`` keeps, judged on their
        metadata before any is opened); opened (decrypted) unless only their metadata is
        wanted (``DescribeLogStreams``, ``DeleteLogStream``)."""
        t = schema.lambda_invocations
        columns = [t.c.request_id, t.c.function_name, t.c.started_ms, t.c.duration_ms, t.c.attempt]
        if opened:
            columns += [t.c.sealed, t.c.log]
        with self._store.read() as conn:
            rows = conn.execute(
                select(*columns)
                .where(*_of(t, group))
                # Logs of one time (a test clock, one millisecond) in the order recorded.
                .order_by(t.c.started_ms, func.coalesce(t.c.sequence, 0), t.c.request_id)
            ).all()
        first: dict[str, int] = {}
        for row in rows:  # oldest first: a request's first attempt names its stream
            first.setdefault(row.request_id, row.started_ms)
        found = [
            (
                StoredLog(
                    row.request_id,
                    row.function_name,
                    row.started_ms,
                    row.duration_ms,
                    row.attempt,
                    first_ms=first[row.request_id],
                ),
                row,
            )
            for row in rows
        ]
        if only is not None:
            found = [(stored, row) for stored, row in found if only(stored)]
        if not opened:
            return [stored for stored, _row in found]
        key = self._vault.log_key(group.arn, group.data_key) if found else b""
        return [
            stored._replace(
                # A row an older version wrote, not sealed yet (the pass runs at open).
                log=row.log
                if row.sealed is None
                else self._vault.open_log(key, group.arn, row.request_id, row.sealed, row.attempt)
            )
            for stored, row in found
        ]

    # ------------------------------------------------------------------ maintenance

    def purge_expired(self, observe: Callable[[PurgedLog], None]) -> int:
        """Delete the invocation logs older than their group's retention (a log stream whose
        last event, of any attempt, is before now minus the retention); ``observe`` is told
        of each (to audit it)."""
        g, t = schema.lambda_log_groups, schema.lambda_invocations
        now = now_ms(self._clock)
        with self._store.write() as conn:
            groups = [
                _group(row)
                for row in conn.execute(select(g).where(g.c.retention_days.is_not(None)))
            ]
            done = 0
            for group in groups:
                assert group.retention_days is not None
                cutoff = now - group.retention_days * DAY_MS
                old = conn.execute(
                    select(t.c.request_id, func.min(t.c.started_ms))
                    .where(*_of(t, group))
                    .group_by(t.c.request_id)
                    .having(func.max(t.c.started_ms + t.c.duration_ms) < cutoff)
                ).all()
                for request_id, started_ms in old:
                    conn.execute(delete(t).where(t.c.request_id == request_id))
                    observe(PurgedLog(group, log_stream(request_id, started_ms)))
                done += len(old)
        return done

    def seal_plaintext(self) -> int:
        """Seal the logs an older version stored in plaintext, and empty their plaintext
        column; their groups are made as needed. Idempotent (only rows not sealed yet are
        touched) and safe in every worker at once (one write transaction). Freed space is
        overwritten and the WAL checkpointed, so the plaintext does not linger in the
        files."""
        t = schema.lambda_invocations
        with self._store.read() as conn:  # the common case: nothing to do, no write lock
            legacy = select(t.c.request_id).where(t.c.sealed.is_(None)).limit(1)
            if conn.execute(legacy).first() is None:
                return 0
        done = 0
        with self._store.write() as conn:
            if self._store.dialect == "sqlite":  # freed space overwritten, not left behind
                conn.exec_driver_sql("PRAGMA secure_delete=ON")
            rows = conn.execute(select(t).where(t.c.sealed.is_(None))).all()
            keys: dict[tuple[str, str, str], tuple[LogGroup, bytes]] = {}
            for row in rows:
                which = (row.account_id, row.region, row.function_name)
                found = keys.get(which)
                if found is None:
                    group = _find(
                        conn, row.account_id, row.region, row.function_name
                    ) or self._create(
                        conn,
                        row.account_id,
                        row.region,
                        row.function_name,
                        created_ms=_first_started(conn, row),
                    )
                    found = (group, self._vault.log_key(group.arn, group.data_key))
                    keys[which] = found
                group, key = found
                conn.execute(
                    update(t)
                    .where(t.c.request_id == row.request_id, t.c.sealed.is_(None))
                    .values(
                        sealed=self._vault.seal_log(key, group.arn, row.request_id, row.log),
                        stored_bytes=len(row.log.encode()),
                        log="",
                    )
                )
                done += 1
        if done:
            self._checkpoint()
            log.info("%d invocation log(s) stored in plaintext sealed", done)
        return done

    def _checkpoint(self) -> None:
        """Copy the rewritten pages into the database file and empty the WAL, so the old
        page images (with the plaintext) are gone; best effort: a reader may hold the WAL,
        and the background checkpoints then finish the job."""
        if self._store.dialect != "sqlite":
            return
        try:
            raw = self._store.engine.raw_connection()
            try:
                cursor = raw.cursor()
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                cursor.close()
            finally:
                raw.close()
        except Exception:
            log.warning("could not checkpoint after sealing plaintext logs", exc_info=True)

    def _create(
        self,
        conn: Connection,
        account: str,
        region: str,
        function_name: str,
        created_ms: int | None = None,
    ) -> LogGroup:
        arn = group_arn(region, account, function_name)
        _key, sealed = self._vault.new_log_key(arn)
        created = now_ms(self._clock) if created_ms is None else created_ms
        conn.execute(
            insert(schema.lambda_log_groups).values(
                arn=arn,
                account_id=account,
                region=region,
                function_name=function_name,
                data_key=sealed,
                retention_days=None,
                created_ms=created,
            )
        )
        return LogGroup(arn, account, region, function_name, None, created, sealed)


def _of(t: Any, group: LogGroup) -> tuple[Any, ...]:
    """The conditions that select a group's invocation rows."""
    return (
        t.c.account_id == group.account_id,
        t.c.region == group.region,
        t.c.function_name == group.function_name,
    )


def _find(conn: Connection, account: str, region: str, function_name: str) -> LogGroup | None:
    g = schema.lambda_log_groups
    row = conn.execute(
        select(g).where(
            g.c.account_id == account, g.c.region == region, g.c.function_name == function_name
        )
    ).first()
    return _group(row) if row is not None else None


def _first_started(conn: Connection, row: Any) -> int:
    t = schema.lambda_invocations
    first = conn.execute(
        select(func.min(t.c.started_ms)).where(
            t.c.account_id == row.account_id,
            t.c.region == row.region,
            t.c.function_name == row.function_name,
        )
    ).scalar_one()
    return int(first if first is not None else row.started_ms)
