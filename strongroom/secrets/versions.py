"""Versions and staging labels: adding a version (and making room under the quota),
UpdateSecretVersionStage, ListSecretVersionIds."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection

from strongroom.clock import from_ms
from strongroom.protocol.errors import ServiceError
from strongroom.secrets import labels
from strongroom.secrets import repository as repo
from strongroom.secrets.common import (
    DEPRECATED_GRACE,
    LIST_PAGE,
    MAX_VERSIONS,
    Output,
    Params,
    _check_label_quota,
    _invalid_parameter,
    _Value,
    bad_rotation_token,
    token_in_use,
)
from strongroom.secrets.replication import Replication
from strongroom.secrets.repository import SecretRecord, VersionRecord
from strongroom.types import Caller


class Versions(Replication):
    def _add_version(
        self,
        conn: Connection,
        record: SecretRecord,
        token: str,
        value: _Value,
        stages_to_attach: list[str] | None,
        caller: Caller | None,
        *,
        by_rotation: bool = False,
    ) -> tuple[str, list[str], bool, SecretRecord]:
        """Create (or idempotently find) version ``token``; returns (id, labels, created,
        the record as changed: a new AWSCURRENT may replan the rotation).
        ``by_rotation``: the request is the secret's rotation's own (its RotationToken), so
        it cannot abandon that rotation."""
        existing = repo.version(conn, record.id, token)
        current = repo.stages(conn, record.id)
        if (
            existing is not None
            and existing.ciphertext is None
            and current.get(labels.PENDING) == token
        ):
            # The version a rotation made without a value (AWSPENDING): the rotation
            # function's PutSecretValue gives it its value. (Once a manual change
            # abandoned that rotation, its version lost AWSPENDING and stays empty: a
            # late PutSecretValue of the function must not bring the rotation back.)
            sealed, key_id = self._seal(conn, record, token, value, caller=caller)
            repo.fill_version(conn, record.id, token, value.kind, sealed, key_id)
            wanted = list(stages_to_attach) if stages_to_attach else [labels.CURRENT]
            new = labels.attach(current, token, wanted, new_value=True)
            _check_label_quota(new)
            repo.replace_stages(conn, record.id, current, new)
            record = self._moved(conn, record, current, new)
            return token, labels.labels_of(new, token), True, record
        if existing is not None:
            if self._same_value(conn, record, existing, value, caller):
                return token, labels.labels_of(current, token), False, record
            raise token_in_use(token, record.arn)
        self._make_room(conn, record, current)
        sealed, key_id = self._seal(conn, record, token, value, caller=caller)
        repo.insert_version(
            conn,
            record.id,
            VersionRecord(token, self._now_ms(), None, key_id, value.kind, sealed),
        )
        wanted = list(stages_to_attach) if stages_to_attach else [labels.CURRENT]
        if labels.CURRENT not in current and labels.CURRENT not in wanted:
            wanted.append(labels.CURRENT)  # a secret's first value is always current
        new = labels.attach(current, token, wanted, new_value=True)
        _check_label_quota(new)
        repo.replace_stages(conn, record.id, current, new)
        after = new if by_rotation else self._supersede_rotation(conn, record, current, new, token)
        record = self._moved(conn, record, current, after)
        return token, labels.labels_of(after, token), True, record

    def _supersede_rotation(
        self,
        conn: Connection,
        record: SecretRecord,
        old: labels.Stages,
        new: labels.Stages,
        version_id: str,
    ) -> labels.Stages:
        """A new value, not the rotation's, became version ``version_id`` (labels ``old``
        then ``new``): a rotation in progress is abandoned in its favour (:mod:`.rotation`
        overrides this). Returns the labels after."""
        return new

    def _by_rotation(self, conn: Connection, record: SecretRecord, token: str | None) -> bool:
        """Whether a request carrying RotationToken ``token`` is the secret's rotation's own
        (False without a token); a token that is not that rotation's is refused
        (:mod:`.rotation` overrides this; without rotation, no token is good)."""
        if token is None:
            return False
        raise bad_rotation_token()

    def _moved(
        self, conn: Connection, record: SecretRecord, old: labels.Stages, new: labels.Stages
    ) -> SecretRecord:
        """The record after its labels moved from ``old`` to ``new``."""
        if old.get(labels.CURRENT) != new.get(labels.CURRENT):
            return self._current_moved(conn, record)
        return record

    def _current_moved(self, conn: Connection, record: SecretRecord) -> SecretRecord:
        """AWSCURRENT moved to another version (a new value): the rotation schedule hears
        of it (:mod:`.rotation` overrides this); the record as changed."""
        return record

    def _make_room(
        self, conn: Connection, record: SecretRecord, current: Mapping[str, str]
    ) -> None:
        """Keep ~100 versions: drop the oldest unlabelled ones older than 24 hours."""
        if repo.count_versions(conn, record.id) < MAX_VERSIONS:
            return
        labelled = set(current.values())
        cutoff = self._now_ms() - int(DEPRECATED_GRACE.total_seconds() * 1000)
        all_versions = repo.versions(conn, record.id)
        removable = [
            v.version_id
            for v in reversed(all_versions)  # oldest first
            if v.version_id not in labelled and v.created_ms < cutoff
        ]
        excess = len(all_versions) - MAX_VERSIONS + 1
        if len(removable) < excess:
            raise ServiceError(
                "LimitExceededException",
                "You have exceeded the maximum number of versions of this secret (100) "
                "that are less than 24 hours old or have staging labels attached.",
            )
        repo.delete_versions(conn, record.id, removable[:excess])

    def update_secret_version_stage(self, caller: Caller, params: Params) -> Output:
        stage: str = params["VersionStage"]
        move_to, remove_from = params.get("MoveToVersionId"), params.get("RemoveFromVersionId")
        with self._write() as conn:
            record = self._mutable(conn, caller, params["SecretId"])
            current = repo.stages(conn, record.id)
            holder = current.get(stage)
            if move_to is not None and repo.version(conn, record.id, move_to) is None:
                raise _invalid_parameter(
                    f"The version {move_to} doesn't exist for secret {record.arn}."
                )
            if remove_from is not None and holder != remove_from:
                raise _invalid_parameter(
                    f"The parameter RemoveFromVersionId doesn't match. Staging label {stage} "
                    f"is currently attached to version {holder}, so you must explicitly "
                    "reference that version in RemoveFromVersionId."
                    if holder is not None
                    else f"The staging label {stage} is not attached to version {remove_from}."
                )
            if move_to is None:
                if remove_from is None:
                    raise _invalid_parameter(
                        "You must specify MoveToVersionId, RemoveFromVersionId, or both."
                    )
                if stage == labels.CURRENT:
                    raise _invalid_parameter(
                        "You can't remove the staging label AWSCURRENT from a version without "
                        "moving it to another version. Specify MoveToVersionId."
                    )
                new = labels.detach(current, stage)
            else:
                if holder is not None and holder != move_to and remove_from is None:
                    raise _invalid_parameter(
                        "The parameter RemoveFromVersionId can't be empty. Staging label "
                        f"{stage} is currently attached to version {holder}, so you must "
                        "explicitly reference that version in RemoveFromVersionId."
                    )
                new = labels.attach(current, move_to, [stage])
            if new != current:
                _check_label_quota(new)
                repo.replace_stages(conn, record.id, current, new)
                record = self._changed(conn, record)
                self._moved(conn, record, current, new)
        return {"ARN": record.arn, "Name": record.name}

    def list_secret_version_ids(self, caller: Caller, params: Params) -> Output:
        include_deprecated = bool(params.get("IncludeDeprecated"))
        limit = params.get("MaxResults") or LIST_PAGE
        with self._store.read() as conn:
            record = self._resolve(conn, caller, params["SecretId"])
            stages = repo.stages(conn, record.id)
            versions = repo.versions(conn, record.id)
        grouped = labels.by_version(stages)
        if not include_deprecated:
            versions = [v for v in versions if v.version_id in grouped]
        scope = f"ListSecretVersionIds|{record.arn}|{include_deprecated}"
        start = 0
        if params.get("NextToken"):
            start = int(self._tokens.decode(scope, params["NextToken"])["offset"])
        page = versions[start : start + limit]
        more = start + limit < len(versions)
        return {
            "Versions": [
                {
                    "VersionId": v.version_id,
                    "VersionStages": grouped.get(v.version_id),
                    "LastAccessedDate": from_ms(v.last_accessed_ms),
                    "CreatedDate": from_ms(v.created_ms),
                    "KmsKeyIds": _kms_key_ids(v),
                }
                for v in page
            ],
            "NextToken": self._tokens.encode(scope, {"offset": start + limit}) if more else None,
            "ARN": record.arn,
            "Name": record.name,
        }


def _kms_key_ids(version: VersionRecord) -> list[str]:
    """The keys a version is encrypted under: its key, and after a key change the
    previous one too ("DefaultEncryptionKey" for the AWS managed key)."""
    ids = [version.kms_key_id or "DefaultEncryptionKey"]
    if version.previous_ciphertext is not None:
        previous = version.previous_kms_key_id or "DefaultEncryptionKey"
        if previous not in ids:
            ids.append(previous)
    return ids
