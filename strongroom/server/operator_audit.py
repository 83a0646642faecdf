"""The audit records of the operator's offline key commands: ``rekey`` (``--reencrypt``),
``reencrypt`` and ``rotate-managed``.

They run with the server stopped and the root key recovered, so they write to the
deployment's audit log themselves, as one more *writer* (docs/audit-format.md), signed
with the deployment's audit key. Fail closed, as the request pipeline's unit of work: a
command's record is durable before its changes commit, and a record that cannot be
written stops the command with nothing changed. If the changes then fail to commit, a
correction record (audit/corrections.py) gives the final outcome.

The record is a ``strongroom`` event (``eventSource`` as the operator endpoints' Seal and
Unseal): ``eventName`` ``Rekey``, ``Reencrypt`` or ``RotateManagedKeys``, in the
deployment's management account, ``awsRegion`` us-east-1 (where AWS logs its global
services' events), ``userIdentity`` the operating-system user who ran the command, and
``serviceEventDetails`` the counts (never a key, a share or a passphrase).
"""

from __future__ import annotations

import contextlib
import getpass
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from strongroom.audit import signing
from strongroom.audit.corrections import COMMIT_FAILED, CORRECTION
from strongroom.audit.events import build_service_event
from strongroom.audit.log import AuditLog
from strongroom.audit.writers import StoreRegistry
from strongroom.clock import Clock, SystemClock
from strongroom.iam.credentials import CredentialStore
from strongroom.keys.envelope import Barrier
from strongroom.server.operator_actions import EVENT_SOURCE
from strongroom.store.engine import Store, sqlite_url

REGION = "us-east-1"  # an offline command has no region: logged where AWS logs global ones
INVOKED_BY = "strongroom-cli"

REKEY = "Rekey"
REENCRYPT = "Reencrypt"
ROTATE_MANAGED = "RotateManagedKeys"


class OperatorAudit:
    """The audit log of one offline command, opened under the deployment's current root
    key (for a rekey: the old one, before anything changed)."""

    def __init__(self, log: AuditLog, account_id: str, clock: Clock) -> None:
        self._log = log
        self._account_id = account_id
        self._clock = clock

    def __repr__(self) -> str:
        return f"OperatorAudit({self._log!r})"

    def record(self, name: str, details: Mapping[str, Any]) -> dict[str, Any]:
        """Write the command's record; returns once it is durable, else raises
        :class:`~strongroom.audit.log.AuditWriteError` (then do not go ahead)."""
        event = build_service_event(
            time=self._clock.now(),
            event_source=EVENT_SOURCE,
            event_name=name,
            account_id=self._account_id,
            region=REGION,
            invoked_by=INVOKED_BY,
            resources=[],
            details=details,
        )
        event["userIdentity"] = {
            "type": "Operator",
            "principalId": f"uid:{os.getuid()}",
            "userName": _user_name(),
            "accountId": self._account_id,
            "invokedBy": INVOKED_BY,
        }
        self._log.write(event)
        return event

    def correct(self, event: Mapping[str, Any], problem: BaseException) -> None:
        """The command recorded in ``event`` did not (all) commit: its final outcome.
        Best effort: the command is failing already."""
        correction = {
            **event,
            "errorCode": "InternalServiceError",
            "errorMessage": f"{type(problem).__name__}: the command did not complete",
            CORRECTION: {"reason": COMMIT_FAILED},
        }
        with contextlib.suppress(Exception):
            self._log.write(correction)


@contextlib.contextmanager
def operator_audit(
    data_dir: Path, root_key: bytes, *, clock: Clock | None = None
) -> Iterator[OperatorAudit]:
    """The audit log of ``data_dir`` for one offline command, closed (with its final
    signed digest) when the command ends."""
    clock = clock or SystemClock()
    store = Store(sqlite_url(data_dir))
    barrier = Barrier(root_key)
    try:
        store.migrate()
        key = signing.load_or_create(store, barrier)
        signing.write_public_key(data_dir / "audit", key)
        account_id = CredentialStore(store, barrier, clock).management_account()
        # A writer like any other: registered, linked to the one before it.
        log = AuditLog(data_dir / "audit", key, clock=clock, registry=StoreRegistry(store))
    except BaseException:
        store.dispose()
        raise
    try:
        yield OperatorAudit(log, account_id, clock)
    finally:
        try:
            log.close()
        finally:
            store.dispose()


def _user_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"
