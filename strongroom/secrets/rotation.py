"""Rotation, Secrets Manager's side: RotateSecret, CancelRotateSecret, and the durable
state a scheduler (:mod:`strongroom.rotation`) claims and reports back to.

The protocol is AWS's (user guide, "How rotation works"): RotateSecret stores the function
and the schedule; a rotation creates version ``ClientRequestToken`` labelled AWSPENDING
without a value, then the function is invoked for ``createSecret``, ``setSecret``,
``testSecret`` and ``finishSecret``; ``finishSecret`` moves AWSCURRENT to the new version
and the service takes AWSPENDING off it. A rotation is in progress while AWSPENDING is on a
version other than AWSCURRENT's.

Every state change the scheduler makes is one transaction with its claim (the row of
``secret_rotations``, :mod:`.rotation_state`), so a due rotation starts exactly once
however many workers look; ``observe`` hears of each CloudTrail service event inside that
transaction (the caller audits them before it commits).

A manual change abandons the rotation in progress (user guide, CloudTrail's
``RotationAbandoned``): a new value that takes AWSCURRENT, from a request that is not the
rotation's own, takes AWSPENDING off the rotation's version and drops the rotation's claim,
so the worker running it stops at its next step. A request is the rotation's own when it
carries the rotation's ``RotationToken`` (PutSecretValue), which is handed to the function
in each step's event and refused on any other secret or after the claim ended. The token is
minted with the claim and known only to the worker holding it; the store keeps its digest
as the claim's id (:func:`token_digest`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets as stdlib_secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from strongroom.audit.derived import service_event
from strongroom.audit.events import build_service_event
from strongroom.clock import from_ms, to_ms
from strongroom.protocol.errors import ServiceError
from strongroom.secrets import labels
from strongroom.secrets import repository as repo
from strongroom.secrets import rotation_state as state
from strongroom.secrets.common import (
    _NEED_TOKEN,
    Output,
    Params,
    _invalid_parameter,
    bad_rotation_token,
    token_in_use,
)
from strongroom.secrets.repository import SecretRecord, VersionRecord
from strongroom.secrets.rotation_state import RotationRow
from strongroom.secrets.schedules import Schedule, parse_rules, stored
from strongroom.secrets.versions import Versions
from strongroom.types import Caller

SERVICE_PRINCIPAL = "secretsmanager.amazonaws.com"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
# A rotation that fails is tried again after these delays, then waits for its next window.
RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=5))
# How long a worker holds a claim on one step: a function runs at most 15 minutes
# (Lambda's limit), plus margin. A claim not renewed by then was abandoned.
STEP_LEASE = timedelta(minutes=20)
CLAIM_BATCH = 16
# The start is drawn at least this long before its window closes, so a sweep (every few
# seconds) that comes a little late still starts the rotation inside the window.
START_MARGIN = timedelta(minutes=5)

_IN_PROGRESS = "A previous rotation isn't complete. That rotation will be reattempted."
_NO_FUNCTION = "No Lambda rotation function ARN is associated with this secret."
CANNOT_INVOKE = (
    "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function "
    "policy grants access to the principal secretsmanager.amazonaws.com."
)


@dataclass(frozen=True)
class RotationClaim:
    """One rotation a worker has claimed: what it invokes, and the claim it reports with."""

    secret_id: int
    arn: str
    account_id: str
    region: str
    lambda_arn: str
    token: str
    claim_id: str  # the store's key of the claim: the digest of its RotationToken
    # The RotationToken handed to the function: only this worker holds it (the store keeps
    # its digest); a credential, so never in a repr.
    rotation_token: str = field(repr=False)
    attempt: int
    steps: tuple[str, ...] = STEPS
    test: bool = False  # RotateImmediately=false's test: testSecret on a copy of the value

    def event(self, step: str) -> dict[str, str]:
        """The function's input for ``step``, as Secrets Manager sends it."""
        return {
            "Step": step,
            "SecretId": self.arn,
            "ClientRequestToken": self.token,
            "RotationToken": self.rotation_token,
        }


def new_rotation_token() -> str:
    """A RotationToken: 128 random bits in UUID form (the model wants 36 to 256 characters
    of letters, digits and hyphens), good only while the claim it is minted for holds."""
    return str(uuid.UUID(bytes=stdlib_secrets.token_bytes(16)))


def token_digest(token: str) -> str:
    """What the store keeps of a RotationToken, as its claim's ``claim_id``: the first 128
    bits of its SHA-256, in hex. The token is 128 random bits, so the digest cannot be
    turned back into it: someone who reads the store (a dump, a backup) cannot forge the
    token of a running rotation.

    A claim written before the store held digests (its token was its ``claim_id`` in UUID
    form) matches no token now: a rotation running across that upgrade has no valid token,
    its function's PutSecretValue with one is refused, and the rotation is retried under a
    new claim once its lease runs out (the worker holding it went with the upgrade)."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class RotationEvent:
    """A CloudTrail service event of a rotation (``RotationStarted``, ...)."""

    name: str
    record: SecretRecord
    details: dict[str, Any] = field(default_factory=dict)


Observe = Callable[[RotationEvent], None]


def rotation_record(event: RotationEvent, time: datetime) -> dict[str, Any]:
    """The CloudTrail record of a rotation event: a service event of Secrets Manager on the
    secret's account, the secret in ``resources`` and, as AWS writes it,
    ``additionalEventData.SecretId``."""
    arn = event.record.arn
    return build_service_event(
        time=time,
        event_source=SERVICE_PRINCIPAL,
        event_name=event.name,
        account_id=event.record.account_id,
        region=event.record.region,
        invoked_by=SERVICE_PRINCIPAL,
        resources=[arn],
        details=event.details,
        additional={"SecretId": arn},
    )


def _ignore(_event: RotationEvent) -> None:
    return None


def in_progress(stages: labels.Stages) -> bool:
    pending = stages.get(labels.PENDING)
    return pending is not None and pending != stages.get(labels.CURRENT)


class SecretRotation(Versions):
    # --- the operations ---------------------------------------------------------------------

    def rotate_secret(self, caller: Caller, params: Params) -> Output:
        token = params.get("ClientRequestToken")
        if token is None:
            raise _invalid_parameter(_NEED_TOKEN)
        given_rules = params.get("RotationRules")
        schedule = parse_rules(given_rules) if given_rules else None
        immediately = params.get("RotateImmediately", True) is not False
        with self._write() as conn:
            record = self._mutable(conn, caller, params["SecretId"])
            if schedule is None and record.rotation_rules:
                schedule = stored(record.rotation_rules)
            function = params.get("RotationLambdaARN") or record.rotation_lambda_arn
            if not function:
                raise ServiceError("InvalidRequestException", _NO_FUNCTION)
            if not self._may_invoke(function, record):
                raise ServiceError("AccessDeniedException", CANNOT_INVOKE)
            stages = repo.stages(conn, record.id)
            if in_progress(stages):
                row = state.get(conn, record.id)
                if stages[labels.PENDING] == token and row is not None and row.token == token:
                    return {"ARN": record.arn, "Name": record.name, "VersionId": token}
                raise ServiceError("InvalidRequestException", _IN_PROGRESS)
            now = self._clock.now()
            if immediately:
                if repo.version(conn, record.id, token) is not None:
                    raise token_in_use(token, record.arn)
                self._add_placeholder(conn, record, token, stages)
                row = RotationRow(record.id, state.SCHEDULED, token, to_ms(now), None, None, 0,
                                  None, None, None)  # fmt: skip
                window_end = _end_of(schedule.window_after_rotation(now) if schedule else None)
            else:
                row = RotationRow(record.id, state.SCHEDULED, None, None, None, None, 0, None,
                                  None, None)  # fmt: skip
                window_end = self._plan(conn, record, row, schedule, now, rotated=False)
                if labels.CURRENT in stages:
                    # "Secrets Manager tests the rotation configuration by running the
                    # testSecret step": on a version holding a copy of the value, labelled
                    # AWSPENDING, removed afterwards (RotateSecret API reference).
                    row.kind, row.token, row.due_ms = state.TEST, str(uuid.uuid4()), to_ms(now)
                    self._add_test_copy(conn, record, row.token, stages, caller)
            state.put(conn, row)
            self._changed(
                conn,
                record,
                rotation_enabled=True,
                rotation_lambda_arn=function,
                rotation_rules=dict(schedule.rules) if schedule else None,
                next_rotation_ms=window_end,
            )
        return {
            "ARN": record.arn,
            "Name": record.name,
            "VersionId": token if immediately else None,
        }

    def cancel_rotate_secret(self, caller: Caller, params: Params) -> Output:
        with self._write() as conn:
            record = self._mutable(conn, caller, params["SecretId"])
            row = state.get(conn, record.id)
            if row is not None and row.kind == state.TEST and row.token is not None:
                self._drop_test_copy(conn, record, row.token)  # the service's own version
            stages = repo.stages(conn, record.id)
            pending = stages.get(labels.PENDING) if in_progress(stages) else None
            state.remove(conn, record.id)
            self._changed(conn, record, rotation_enabled=False, next_rotation_ms=None)
        return {"ARN": record.arn, "Name": record.name, "VersionId": pending}

    def _may_invoke(self, function: str, record: SecretRecord) -> bool:
        if self._functions is None:
            return False
        return self._functions.may_invoke(
            function,
            service_principal=SERVICE_PRINCIPAL,
            source_account=record.account_id,
            source_arn=record.arn,
        )

    def _add_placeholder(
        self, conn: Connection, record: SecretRecord, token: str, stages: labels.Stages
    ) -> None:
        """Version ``token`` without a value, labelled AWSPENDING: a rotation's first act."""
        self._make_room(conn, record, stages)
        repo.insert_version(
            conn, record.id, VersionRecord(token, self._now_ms(), None, None, None, None)
        )
        repo.replace_stages(conn, record.id, stages, labels.attach(stages, token, [labels.PENDING]))

    def _add_test_copy(
        self,
        conn: Connection,
        record: SecretRecord,
        token: str,
        stages: labels.Stages,
        caller: Caller,
    ) -> None:
        current = repo.version(conn, record.id, stages[labels.CURRENT])
        assert current is not None
        value = self._open(conn, record, current, caller)
        self._add_version(conn, record, token, value, [labels.PENDING], caller)

    def _drop_test_copy(self, conn: Connection, record: SecretRecord, token: str) -> None:
        stages = repo.stages(conn, record.id)
        left = (
            labels.detach(stages, labels.PENDING) if stages.get(labels.PENDING) == token else stages
        )
        repo.replace_stages(conn, record.id, stages, left)
        if token not in left.values():
            repo.delete_versions(conn, record.id, [token])

    # --- the scheduler's side -----------------------------------------------------------------

    def has_due_rotations(self) -> bool:
        with self._store.read() as conn:
            return state.any_due(conn, self._now_ms())

    def claim_rotations(self, observe: Observe = _ignore) -> list[RotationClaim]:
        """Claim the rotations that are due, and take over those whose claim was abandoned
        (its lease ran out): each is started (``RotationStarted``) or abandoned
        (``RotationAbandoned``, tried again later) in this one transaction."""
        claims: list[RotationClaim] = []
        with self._write() as conn:
            now = self._clock.now()
            for row in state.due(conn, to_ms(now), CLAIM_BATCH):
                record = repo.find_by_id(conn, row.secret_id)
                if record is None or not record.rotation_enabled:
                    state.remove(conn, row.secret_id)
                    continue
                if row.state == state.RUNNING:
                    observe(RotationEvent("RotationAbandoned", record, {"step": row.step}))
                    if row.kind == state.TEST:
                        self._end_test(conn, record, row, now)
                    else:
                        self._retry_later(conn, record, row, now, f"abandoned in {row.step}")
                    continue
                if record.scheduled_for_deletion or not record.rotation_lambda_arn:
                    self._plan(conn, record, row, self._schedule_of(record), now, rotated=True)
                    state.put(conn, row)
                    continue
                if row.kind == state.TEST:
                    claim = self._claim(record, row, now, ("testSecret",))
                    state.put(conn, row)
                    observe(RotationEvent("TestRotationStarted", record, {}))
                else:
                    claim = self._start(conn, record, row, now)
                    observe(RotationEvent("RotationStarted", record, {"attempt": claim.attempt}))
                claims.append(claim)
        return claims

    def _start(
        self, conn: Connection, record: SecretRecord, row: RotationRow, now: datetime
    ) -> RotationClaim:
        stages = repo.stages(conn, record.id)
        if in_progress(stages):
            # An unfinished rotation is reattempted with its own version.
            row.token = stages[labels.PENDING]
        elif row.token is None or repo.version(conn, record.id, row.token) is None:
            row.token = str(uuid.uuid4())
            self._add_placeholder(conn, record, row.token, stages)
        elif stages.get(labels.PENDING) != row.token:
            if stages.get(labels.CURRENT) == row.token:
                row.token = str(uuid.uuid4())
                self._add_placeholder(conn, record, row.token, stages)
            else:
                repo.replace_stages(
                    conn, record.id, stages, labels.attach(stages, row.token, [labels.PENDING])
                )
        claim = self._claim(record, row, now, STEPS)
        state.put(conn, row)
        return claim

    @staticmethod
    def _claim(
        record: SecretRecord, row: RotationRow, now: datetime, steps: tuple[str, ...]
    ) -> RotationClaim:
        row.state, row.step, row.attempt = state.RUNNING, steps[0], row.attempt + 1
        rotation_token = new_rotation_token()
        row.claim_id = token_digest(rotation_token)
        row.lease_until_ms = to_ms(now + STEP_LEASE)
        assert record.rotation_lambda_arn is not None and row.token is not None
        return RotationClaim(
            record.id,
            record.arn,
            record.account_id,
            record.region,
            record.rotation_lambda_arn,
            row.token,
            row.claim_id,
            rotation_token,
            row.attempt,
            steps,
            test=row.kind == state.TEST,
        )

    def finish_test(
        self, claim: RotationClaim, problem: str | None, observe: Observe = _ignore
    ) -> None:
        """The end of RotateImmediately=false's test (``problem`` None: it passed): the copy
        goes, and the schedule takes over."""
        with self._write() as conn:
            row = state.claimed(conn, claim.secret_id, claim.claim_id)
            record = repo.find_by_id(conn, claim.secret_id)
            if row is None or record is None:
                return
            if problem is None:
                observe(RotationEvent("TestRotationSucceeded", record, {}))
            else:
                observe(RotationEvent("TestRotationFailed", record, {"reason": problem}))
            self._end_test(conn, record, row, self._clock.now())

    def _end_test(
        self, conn: Connection, record: SecretRecord, row: RotationRow, now: datetime
    ) -> None:
        assert row.token is not None
        self._drop_test_copy(conn, record, row.token)
        _idle(row)
        window_end = self._plan(conn, record, row, self._schedule_of(record), now, rotated=False)
        if row.due_ms is None:
            state.remove(conn, record.id)
        else:
            state.put(conn, row)
        repo.update_secret(conn, record, next_rotation_ms=window_end)

    def rotation_step(self, claim: RotationClaim, step: str) -> bool:
        """Renew the claim for ``step``; False if the claim was lost (cancelled, or
        abandoned and taken over): the worker must stop."""
        with self._write() as conn:
            row = state.claimed(conn, claim.secret_id, claim.claim_id)
            if row is None:
                return False
            row.step = step
            row.lease_until_ms = to_ms(self._clock.now() + STEP_LEASE)
            state.put(conn, row)
            return True

    def finish_rotation(self, claim: RotationClaim, observe: Observe = _ignore) -> str | None:
        """After ``finishSecret``: succeeded if the function moved AWSCURRENT to the new
        version (the service then takes AWSPENDING off it); otherwise the reason it failed,
        recorded as a failure."""
        with self._write() as conn:
            row = state.claimed(conn, claim.secret_id, claim.claim_id)
            record = repo.find_by_id(conn, claim.secret_id)
            if row is None or record is None:
                return "the rotation was cancelled or abandoned"
            stages = repo.stages(conn, record.id)
            if stages.get(labels.CURRENT) != claim.token:
                reason = "finishSecret did not move AWSCURRENT to the new version"
                self._failed(conn, record, row, "finishSecret", reason, observe)
                return reason
            if stages.get(labels.PENDING) == claim.token:
                repo.replace_stages(conn, record.id, stages, labels.detach(stages, labels.PENDING))
            now = self._clock.now()
            _idle(row)
            window_end = self._plan(conn, record, row, self._schedule_of(record), now, rotated=True)
            if row.due_ms is None:
                state.remove(conn, record.id)
            else:
                state.put(conn, row)
            record = repo.update_secret(
                conn, record, last_rotated_ms=to_ms(now), next_rotation_ms=window_end
            )
            self._sync_replicas(conn, record)
            observe(RotationEvent("RotationSucceeded", record, {}))
            return None

    def fail_rotation(
        self, claim: RotationClaim, step: str, reason: str, observe: Observe = _ignore
    ) -> None:
        """A step failed (the function raised, timed out, ran out of memory, or could not be
        invoked): ``RotationFailed``; tried again after a delay, or in the next window."""
        with self._write() as conn:
            row = state.claimed(conn, claim.secret_id, claim.claim_id)
            record = repo.find_by_id(conn, claim.secret_id)
            if row is None or record is None:
                return
            self._failed(conn, record, row, step, reason, observe)

    def _failed(
        self,
        conn: Connection,
        record: SecretRecord,
        row: RotationRow,
        step: str,
        reason: str,
        observe: Observe,
    ) -> None:
        observe(RotationEvent("RotationFailed", record, {"step": step, "reason": reason}))
        self._retry_later(conn, record, row, self._clock.now(), f"{step}: {reason}")

    def _retry_later(
        self, conn: Connection, record: SecretRecord, row: RotationRow, now: datetime, error: str
    ) -> None:
        row.state, row.step, row.claim_id, row.lease_until_ms = state.SCHEDULED, None, None, None
        row.last_error = error[:256]
        if row.attempt <= len(RETRY_DELAYS):
            row.due_ms = to_ms(now + RETRY_DELAYS[row.attempt - 1])
        else:
            # Given up for this window: the next one reattempts it (AWSPENDING stays).
            row.attempt = 0
            window_end = self._plan(conn, record, row, self._schedule_of(record), now, rotated=True)
            if row.due_ms is not None:
                repo.update_secret(conn, record, next_rotation_ms=window_end)
        state.put(conn, row)

    # --- schedules ----------------------------------------------------------------------------

    @staticmethod
    def _schedule_of(record: SecretRecord) -> Schedule | None:
        return stored(record.rotation_rules) if record.rotation_rules else None

    def _plan(
        self,
        conn: Connection,
        record: SecretRecord,
        row: RotationRow,
        schedule: Schedule | None,
        now: datetime,
        *,
        rotated: bool,
    ) -> int | None:
        """Set ``row``'s next attempt at a random moment of the schedule's next window
        (after a rotation or a manual change at ``now`` when ``rotated``, else the window
        open now or next); returns NextRotationDate in ms (None: no schedule)."""
        if schedule is None:
            row.due_ms = row.window_end_ms = None
            return None
        if rotated:
            window = schedule.window_after_rotation(now)
        else:
            window = schedule.next_window(now, self._last_change(conn, record))
        if window is None:
            row.due_ms = row.window_end_ms = None
            return None
        opens = max(window.start, now)
        span = max(window.end - START_MARGIN - opens, timedelta(0))
        row.due_ms = to_ms(opens) + int(self._rng.random() * to_ms_delta(span))
        row.window_end_ms = to_ms(window.end)
        return _end_of(window)

    def _last_change(self, conn: Connection, record: SecretRecord) -> datetime | None:
        """When the value last changed (by rotation or by hand): AWSCURRENT's creation."""
        current = repo.stages(conn, record.id).get(labels.CURRENT)
        version = repo.version(conn, record.id, current) if current else None
        return from_ms(version.created_ms) if version is not None else None

    # --- manual changes during a rotation -----------------------------------------------------

    def _by_rotation(self, conn: Connection, record: SecretRecord, token: str | None) -> bool:
        """A RotationToken is good only for the secret whose rotation's claim it is, while
        that claim holds: its digest must be the claim's (compared in constant time; the
        store holds only the digest); anything else is refused."""
        if token is None:
            return False
        row = state.get(conn, record.id)
        if row is None or row.state != state.RUNNING or row.claim_id is None:
            raise bad_rotation_token()
        if not hmac.compare_digest(token_digest(token).encode(), row.claim_id.encode()):
            raise bad_rotation_token()
        return True

    def _supersede_rotation(
        self,
        conn: Connection,
        record: SecretRecord,
        old: labels.Stages,
        new: labels.Stages,
        version_id: str,
    ) -> labels.Stages:
        """AWS (user guide, CloudTrail's RotationAbandoned): a manually created version
        "signals the abandonment of the current ongoing rotation in favor of the new secret
        version", and Secrets Manager removes AWSPENDING "to allow future rotations to
        succeed". So a new value taking AWSCURRENT during a rotation (running, or waiting
        for its retry) takes AWSPENDING off the rotation's version and drops its claim (the
        worker stops at its next step; the schedule counts from this change). Rotation
        stays enabled. RotateImmediately=false's test is not a rotation: it goes on."""
        if not record.rotation_enabled or not in_progress(old):
            return new
        if new.get(labels.CURRENT) != version_id:
            return new
        row = state.get(conn, record.id)
        if row is not None and row.kind == state.TEST:
            return new
        pending = old[labels.PENDING]
        if new.get(labels.PENDING) == pending:
            left = labels.detach(new, labels.PENDING)
            repo.replace_stages(conn, record.id, new, left)
            new = left
        if row is not None:
            _idle(row)
            if record.rotation_rules:
                state.put(conn, row)  # _current_moved plans the next window from now
            else:
                state.remove(conn, record.id)
        details = {"versionId": pending, "supersededBy": version_id}
        event = RotationEvent("RotationAbandoned", record, details)
        service_event(rotation_record(event, self._clock.now()))
        return new

    def _current_moved(self, conn: Connection, record: SecretRecord) -> SecretRecord:
        """A manual change of the value counts as a rotation: the next window is counted
        from now. (A rotation under way was abandoned by the change, unless the change was
        the rotation's own.)"""
        if not record.rotation_enabled or not record.rotation_rules:
            return record
        row = state.get(conn, record.id)
        if row is None or row.state != state.SCHEDULED or row.token is not None:
            return record
        window_end = self._plan(
            conn, record, row, self._schedule_of(record), self._clock.now(), rotated=True
        )
        state.put(conn, row)
        return repo.update_secret(conn, record, next_rotation_ms=window_end)


def _idle(row: RotationRow) -> None:
    """No rotation under way: no version, no claim, no attempts (the schedule is kept)."""
    row.state, row.kind, row.token, row.step, row.attempt = state.SCHEDULED, None, None, None, 0
    row.claim_id, row.lease_until_ms, row.last_error = None, None, None


def to_ms_delta(delta: timedelta) -> int:
    return int(delta.total_seconds() * 1000)


def _end_of(window: Any) -> int | None:
    """NextRotationDate: the last second of the window (the latest the rotation starts)."""
    return None if window is None else to_ms(window.end) - 1000
