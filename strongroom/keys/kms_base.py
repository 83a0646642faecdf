"""What every KMS module builds on: the store, the root barrier, the clock, the Marker codec,
resolving a key reference (id, ARN, alias) and the checks of a key's state."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from strongroom.clock import Clock, to_ms
from strongroom.keys import repository as repo
from strongroom.keys.data_keys import DataKeys
from strongroom.keys.envelope import Barrier
from strongroom.keys.kms_common import Params, access_denied, disabled, invalid_state, not_found
from strongroom.keys.repository import KeyRecord, _aliased
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.pagination import TokenCodec
from strongroom.store.cache import Namespace
from strongroom.store.engine import Store, cached
from strongroom.types import Caller, PrincipalIds, UnboundPrincipals, UnknownPrincipal

# Every secret write without its own key resolves aws/secretsmanager.
_BY_ALIAS = Namespace("kms-alias", ("kms_aliases", "kms_keys"), remember_absent=False)


class KmsBase:
    def __init__(
        self,
        store: Store,
        barrier: Barrier,
        clock: Clock,
        tokens: TokenCodec,
        principal_ids: PrincipalIds | None = None,
    ) -> None:
        self._store = store
        self._barrier = barrier
        self._clock = clock
        self._tokens = tokens
        # Key policies bind the users and roles they name by unique id (IAM's).
        self._principal_ids: PrincipalIds = principal_ids or UnboundPrincipals()
        self._data_keys = DataKeys(clock=clock)

    def _bound(self, policy: str) -> str:
        """A key policy as stored: the users and roles it names bound by unique id
        (iam/principal_ids.py); KMS's refusal of a principal that does not exist."""
        try:
            return self._principal_ids.bind(policy)
        except UnknownPrincipal:
            raise ServiceError(
                "MalformedPolicyDocumentException",
                "Policy contains a statement with one or more invalid principals.",
            ) from None

    def _now_ms(self) -> int:
        return to_ms(self._clock.now())

    def _resolve(self, conn: Connection, caller: Caller, ref: str) -> KeyRecord:
        """A key id, key ARN, alias name or alias ARN -> the key."""
        if ref.startswith("arn:"):
            parts = ref.split(":", 5)
            if len(parts) != 6 or parts[2] != "kms":
                raise not_found(f"Invalid arn {ref}")
            region, account, resource = parts[3], parts[4], parts[5]
            if region != caller.region:
                # A key lives in one region: a request signed for another never reaches it.
                raise not_found(f"Invalid arn {region}")
            if resource.startswith("alias/"):
                return self._by_alias(conn, account, region, resource, ref)
            found = repo.key_by_arn(conn, ref)
            if found is None:
                raise not_found(f"Key '{ref}' does not exist")
            return found
        if ref.startswith("alias/"):
            return self._by_alias(conn, caller.account_id, caller.region, ref, None)
        try:
            uuid.UUID(ref)
        except ValueError:
            raise not_found(f"Invalid keyId '{ref}'") from None
        key = repo.key_in(conn, caller.account_id, caller.region, ref)
        if key is None:
            raise not_found(f"Key '{self._arn(caller, ref)}' does not exist")
        return key

    def _by_alias(
        self, conn: Connection, account: str, region: str, alias: str, arn: str | None
    ) -> KeyRecord:
        key = cached(
            conn,
            _BY_ALIAS,
            (account, region, alias),
            lambda: _aliased(conn, account, region, alias),
        )
        if key is None:
            alias_arn = arn or f"arn:aws:kms:{region}:{account}:{alias}"
            raise not_found(f"Alias {alias_arn} is not found.")
        return key

    @staticmethod
    def _arn(caller: Caller, key_id: str) -> str:
        return f"arn:aws:kms:{caller.region}:{caller.account_id}:key/{key_id}"

    def _usable(self, key: KeyRecord) -> KeyRecord:
        if key.state == "Disabled":
            raise disabled(key)
        if key.state == "PendingDeletion":
            raise invalid_state(key, "pending deletion")
        return key

    @staticmethod
    def _permitted(caller: Caller, key: KeyRecord, action: str) -> KeyRecord:
        """AWS managed keys are used only through their service and never changed."""
        if key.key_manager == "AWS":
            raise access_denied(caller, action, key)
        return key

    def _changeable(self, caller: Caller, key: KeyRecord, action: str) -> KeyRecord:
        self._permitted(caller, key, action)
        if key.state == "PendingDeletion":
            raise invalid_state(key, "pending deletion")
        return key

    def _update(self, conn: Connection, key: KeyRecord, **values: Any) -> None:
        repo.update_key(conn, key.key_id, values)

    def _page(
        self,
        operation: str,
        caller: Caller,
        items: Sequence[Any],
        params: Params,
        *,
        default_limit: int,
        maximum: int,
    ) -> tuple[Sequence[Any], str | None]:
        scope = f"kms:{operation}:{caller.account_id}:{caller.region}:{params.get('KeyId', '')}"
        start = 0
        if params.get("Marker"):
            try:
                start = int(self._tokens.decode(scope, params["Marker"])["offset"])
            except ServiceError:
                raise ServiceError(
                    "InvalidMarkerException",
                    "The request was rejected because the marker "
                    "that specifies where pagination should next begin is not valid.",
                ) from None
        limit = min(params.get("Limit") or default_limit, maximum)
        page = items[start : start + limit]
        more = start + limit < len(items)
        return page, self._tokens.encode(scope, {"offset": start + limit}) if more else None

    def target(self, caller: Caller, ref: str) -> KeyRecord | None:
        """The key a request names (id, ARN, alias), for authorization; None if none."""
        with self._store.read() as conn:
            try:
                return self._resolve(conn, caller, ref)
            except ServiceError:
                return None
