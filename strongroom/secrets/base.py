"""What every Secrets Manager module builds on: the store, the KMS service, the clock, the
NextToken codec, one write transaction, and finding the secret a SecretId names."""

from __future__ import annotations

import random
import secrets as stdlib_secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from strongroom.clock import Clock, to_ms
from strongroom.keys.kms import KeyRecord, KeyService
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.pagination import TokenCodec
from strongroom.secrets import arns
from strongroom.secrets import repository as repo
from strongroom.secrets.common import (
    _acting_for,
    _marked_for_deletion,
    _replica_readonly,
    not_found,
)
from strongroom.secrets.repository import SecretRecord
from strongroom.store.engine import Store, per_snapshot
from strongroom.types import Caller, PrincipalIds, UnboundPrincipals


class SecretsBase:
    def __init__(
        self,
        store: Store,
        keys: KeyService,
        clock: Clock,
        tokens: TokenCodec,
        rng: random.Random | None = None,
        principal_ids: PrincipalIds | None = None,
    ) -> None:
        self._store = store
        self._keys = keys
        self._clock = clock
        self._tokens = tokens
        self._rng = rng or stdlib_secrets.SystemRandom()
        # Resource policies bind the users and roles they name by unique id (IAM's).
        self._principal_ids: PrincipalIds = principal_ids or UnboundPrincipals()

    def _now_ms(self) -> int:
        return to_ms(self._clock.now())

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._store.write() as conn:
            yield conn

    def _resolve(
        self, conn: Connection, caller: Caller, secret_id: str, *, for_update: bool = False
    ) -> SecretRecord:
        record = self._lookup(conn, caller, secret_id, for_update=for_update)
        if record is None:
            raise not_found()
        return record

    def _lookup(
        self, conn: Connection, caller: Caller, secret_id: str, *, for_update: bool = False
    ) -> SecretRecord | None:
        if for_update:
            return self._find(conn, caller, secret_id, for_update=True)
        return per_snapshot(
            conn,
            ("secret-lookup", (caller.account_id, caller.region, secret_id)),
            lambda: self._find(conn, caller, secret_id, for_update=False),
        )

    def _find(
        self, conn: Connection, caller: Caller, secret_id: str, *, for_update: bool
    ) -> SecretRecord | None:
        ref = arns.parse_secret_id(secret_id)
        if not ref.is_arn:
            return repo.find_by_name(
                conn, caller.account_id, caller.region, secret_id, for_update=for_update
            )
        if ref.region != caller.region or ref.account_id is None:
            return None  # another region's secret is not visible from this one, as on AWS
        # Another account's secret is reachable by ARN only; the pipeline has already
        # checked its resource policy and the caller's own policies.
        record = repo.find_by_arn(conn, secret_id, for_update=for_update)
        if record is None:
            # A partial ARN: the ARN without the random suffix names the secret.
            record = repo.find_by_name(
                conn, ref.account_id, caller.region, ref.name_or_arn_tail, for_update=for_update
            )
        return record

    def target(self, caller: Caller, secret_id: str) -> SecretRecord | None:
        """The secret a request names, for authorization; None if there is none."""
        with self._store.read() as conn:
            return self._lookup_or_none(conn, caller, secret_id)

    def kms_key(self, caller: Caller, ref: str) -> KeyRecord | None:
        """The KMS key a request's KmsKeyId names, for authorization; None if none."""
        return self._keys.target(_acting_for(caller.account_id, caller.region), ref)

    def _mutable(self, conn: Connection, caller: Caller, secret_id: str) -> SecretRecord:
        record = self._resolve(conn, caller, secret_id, for_update=True)
        if record.is_replica:
            raise _replica_readonly()
        if record.scheduled_for_deletion:
            raise _marked_for_deletion()
        return record

    def _lookup_or_none(
        self, conn: Connection, caller: Caller, secret_id: str
    ) -> SecretRecord | None:
        try:
            return self._lookup(conn, caller, secret_id)
        except ServiceError:
            return None
