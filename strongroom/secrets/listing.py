"""Listing secrets: ListSecrets and the paged, filtered, sorted scan it shares with
BatchGetSecretValue's filters, and the metadata a secret is described with."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import Connection

from strongroom.clock import from_ms
from strongroom.protocol.pagination import invalid_next_token
from strongroom.secrets import labels
from strongroom.secrets import repository as repo
from strongroom.secrets.base import SecretsBase
from strongroom.secrets.common import _CHUNK, LIST_PAGE, SCAN_BUDGET, Output, Params
from strongroom.secrets.filters import SecretFacts, compile_filters
from strongroom.secrets.repository import SecretRecord
from strongroom.types import Caller

_SORT_COLUMNS = {
    "created-date": "created_ms",
    "last-accessed-date": "last_accessed_ms",
    "last-changed-date": "last_changed_ms",
    "name": "name",
}


def _key(record: SecretRecord, sort_column: str) -> tuple[Any, int, str]:
    return (getattr(record, sort_column) or 0, record.created_ms, record.name)


def _facts(record: SecretRecord) -> SecretFacts:
    return SecretFacts(
        name=record.name,
        description=record.description,
        tags=[(k, v) for k, v in record.tags or []],
        primary_region=record.primary_region or (record.region if record.replicas else None),
        owning_service=record.owning_service,
    )


class Listing(SecretsBase):
    def list_secrets(self, caller: Caller, params: Params) -> Output:
        include_deleted = bool(params.get("IncludePlannedDeletion"))
        with self._store.read() as conn:
            page, next_token = self._list_page(
                conn,
                caller,
                params,
                "ListSecrets",
                params.get("MaxResults") or LIST_PAGE,
                include_deleted=include_deleted,
            )
            all_stages = repo.stages_of_many(conn, [record.id for record in page])
        return {
            "SecretList": [
                self._metadata(record, all_stages[record.id], "SecretVersionsToStages")
                for record in page
            ],
            "NextToken": next_token,
        }

    def _list_page(
        self,
        conn: Connection,
        caller: Caller,
        params: Params,
        operation: str,
        limit: int,
        *,
        include_deleted: bool,
    ) -> tuple[list[SecretRecord], str | None]:
        """One page of a filtered, sorted listing with a keyset cursor in the NextToken."""
        predicate = compile_filters(params.get("Filters") or [])
        sort_column = _SORT_COLUMNS[params.get("SortBy") or "created-date"]
        descending = params.get("SortOrder") == "desc"
        scope = (
            operation
            + "|"
            + hashlib.sha256(
                orjson.dumps(
                    [
                        caller.account_id,
                        caller.region,
                        params.get("Filters"),
                        sort_column,
                        descending,
                        include_deleted,
                    ]
                )
            ).hexdigest()
        )
        after: tuple[Any, int, str] | None = None
        if params.get("NextToken"):
            state = self._tokens.decode(scope, params["NextToken"])
            if not isinstance(state.get("name"), str) or not isinstance(state.get("created"), int):
                raise invalid_next_token()  # a token from before positions were by name
            after = (state.get("key"), state["created"], state["name"])
        page: list[SecretRecord] = []
        scanned = 0
        exhausted = False
        while len(page) < limit and scanned < SCAN_BUDGET and not exhausted:
            chunk = repo.scan(
                conn,
                caller.account_id,
                caller.region,
                include_deleted=include_deleted,
                sort_column=sort_column,
                descending=descending,
                after=after,
                limit=_CHUNK,
            )
            exhausted = len(chunk) < _CHUNK
            for record in chunk:
                scanned += 1
                after = _key(record, sort_column)
                if predicate(_facts(record)):
                    page.append(record)
                if len(page) == limit or scanned >= SCAN_BUDGET:
                    exhausted = exhausted and record is chunk[-1]
                    break
        if exhausted or after is None:
            return page, None
        # Only promise a next page when one could exist.
        more = repo.scan(
            conn,
            caller.account_id,
            caller.region,
            include_deleted=include_deleted,
            sort_column=sort_column,
            descending=descending,
            after=after,
            limit=1,
        )
        token = (
            self._tokens.encode(scope, {"key": after[0], "created": after[1], "name": after[2]})
            if more
            else None
        )
        return page, token

    def _metadata(self, record: SecretRecord, stages: Mapping[str, str], stages_key: str) -> Output:
        output: Output = {
            "ARN": record.arn,
            "Name": record.name,
            "Type": record.secret_type,
            "Description": record.description,
            "KmsKeyId": record.kms_key_id,
            "RotationEnabled": record.rotation_enabled,
            "RotationLambdaARN": record.rotation_lambda_arn,
            "RotationRules": record.rotation_rules,
            "LastRotatedDate": from_ms(record.last_rotated_ms),
            "LastChangedDate": from_ms(record.last_changed_ms),
            "LastAccessedDate": from_ms(record.last_accessed_ms),
            "DeletedDate": from_ms(record.deleted_ms),
            "NextRotationDate": from_ms(record.next_rotation_ms),
            "Tags": [{"Key": k, "Value": v} for k, v in record.tags]
            if record.tags is not None
            else None,
            stages_key: labels.by_version(stages) or None,
            "OwningService": record.owning_service,
            "CreatedDate": from_ms(record.created_ms),
        }
        if record.is_replica:
            output["PrimaryRegion"] = record.primary_region
        elif record.replicas:
            output["PrimaryRegion"] = record.region
            output["ReplicationStatus"] = record.replicas
        return output
