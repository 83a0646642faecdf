"""Secret values: GetSecretValue (the hot path), BatchGetSecretValue, PutSecretValue and
GetRandomPassword."""

from __future__ import annotations

from sqlalchemy import Connection

from strongroom.clock import from_ms, midnight_ms
from strongroom.protocol.errors import ServiceError
from strongroom.secrets import labels
from strongroom.secrets import repository as repo
from strongroom.secrets.checks import secret_check
from strongroom.secrets.common import (
    _NEED_TOKEN,
    BATCH_PAGE,
    Output,
    Params,
    _invalid_parameter,
    _invalid_request,
    _marked_for_deletion,
    _value_from,
    not_found,
)
from strongroom.secrets.listing import Listing
from strongroom.secrets.passwords import generate_password
from strongroom.secrets.repository import SecretRecord, VersionRecord
from strongroom.secrets.versions import Versions
from strongroom.types import Caller


class SecretValues(Versions, Listing):
    def get_secret_value(self, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            record = self._resolve(conn, caller, params["SecretId"])
            output, version = self._read_value(
                conn, record, params.get("VersionId"), params.get("VersionStage"), caller
            )
        self._record_access(record, version)
        return output

    def _read_value(
        self,
        conn: Connection,
        record: SecretRecord,
        version_id: str | None,
        stage: str | None,
        caller: Caller,
    ) -> tuple[Output, VersionRecord]:
        if record.scheduled_for_deletion:
            raise _marked_for_deletion()
        # The labels are only looked at here: the cached mapping, no copy.
        if version_id is not None:
            current = repo.stages_view(conn, record.id)
            version = repo.version(conn, record.id, version_id)
            if version is None or version.ciphertext is None:
                raise ServiceError(
                    "ResourceNotFoundException",
                    "Secrets Manager can't find the specified secret value for VersionId: "
                    f"{version_id}",
                )
            if stage is not None and current.get(stage) != version_id:
                raise _invalid_request(
                    "You provided a VersionStage that is not associated to the provided VersionId."
                )
        else:
            stage = stage or labels.CURRENT
            # The labels and the AWSCURRENT version come in one lookup (the usual request).
            current, version = repo.staged(conn, record.id)
            if stage != labels.CURRENT:
                holder = current.get(stage)
                version = repo.version(conn, record.id, holder) if holder else None
            if version is None or version.ciphertext is None:
                raise ServiceError(
                    "ResourceNotFoundException",
                    "Secrets Manager can't find the specified secret value for staging label: "
                    f"{stage}",
                )
        value = self._open(conn, record, version, caller)
        output: Output = {
            "ARN": record.arn,
            "Name": record.name,
            "VersionId": version.version_id,
            **value.output(),
            "VersionStages": labels.labels_of(current, version.version_id),
            "CreatedDate": from_ms(version.created_ms),
        }
        return output, version

    def _record_access(self, record: SecretRecord, version: VersionRecord) -> None:
        """LastAccessedDate has date resolution, so at most one write a day per secret
        and version (ListSecretVersionIds reports each version's own LastAccessedDate)."""
        day = midnight_ms(self._clock.now())
        if record.last_accessed_ms == day and version.last_accessed_ms == day:
            return
        with self._write() as conn:
            repo.update_secret(conn, record, last_accessed_ms=day)
            repo.touch_version(conn, record.id, version.version_id, day)

    def batch_get_secret_value(self, caller: Caller, params: Params) -> Output:
        ids, filters = params.get("SecretIdList"), params.get("Filters")
        if (ids is None) == (filters is None):
            raise _invalid_parameter(
                "Either 'SecretIdList' or 'Filters' must be provided, but not both."
            )
        if filters is None and params.get("MaxResults") is not None:
            raise _invalid_parameter(
                "'Filters' not specified. 'Filters' must also be specified when "
                "'MaxResults' is provided."
            )
        values: list[Output] = []
        errors: list[Output] = []
        next_token: str | None = None
        with self._store.read() as conn:
            if ids is not None:
                targets: list[tuple[str, SecretRecord | None]] = [
                    (secret_id, self._lookup_or_none(conn, caller, secret_id)) for secret_id in ids
                ]
            else:
                page, next_token = self._list_page(
                    conn,
                    caller,
                    params,
                    "BatchGetSecretValue",
                    params.get("MaxResults") or BATCH_PAGE,
                    include_deleted=False,
                )
                targets = [(record.arn, record) for record in page]
            accessed: list[tuple[SecretRecord, VersionRecord]] = []
            for secret_id, record in targets:
                try:
                    if record is None:
                        raise not_found()
                    # Each secret of a batch is a GetSecretValue of its own, allowed or not.
                    caller.authorize(secret_check("secretsmanager:GetSecretValue", record, {}))
                    output, version = self._read_value(conn, record, None, None, caller)
                except ServiceError as error:
                    errors.append(
                        {"SecretId": secret_id, "ErrorCode": error.code, "Message": error.message}
                    )
                    continue
                values.append(output)
                accessed.append((record, version))
        for record, version in accessed:
            self._record_access(record, version)
        return {"SecretValues": values, "Errors": errors, "NextToken": next_token}

    def put_secret_value(self, caller: Caller, params: Params) -> Output:
        value = _value_from(params)
        if value is None:
            raise _invalid_request("You must provide either SecretString or SecretBinary.")
        token = params.get("ClientRequestToken")
        if token is None:
            raise _invalid_request(_NEED_TOKEN)
        with self._write() as conn:
            record = self._mutable(conn, caller, params["SecretId"])
            # Checked before anything changes: a token that is not this secret's rotation's
            # is refused; the right one marks the request as the rotation's own.
            by_rotation = self._by_rotation(conn, record, params.get("RotationToken"))
            version_id, stages, created, record = self._add_version(
                conn,
                record,
                token,
                value,
                params.get("VersionStages"),
                caller,
                by_rotation=by_rotation,
            )
            if created:
                record = self._changed(conn, record)
        return {
            "ARN": record.arn,
            "Name": record.name,
            "VersionId": version_id,
            "VersionStages": stages,
        }

    def get_random_password(self, caller: Caller, params: Params) -> Output:
        return {
            "RandomPassword": generate_password(
                length=params.get("PasswordLength", 32),
                exclude_characters=params.get("ExcludeCharacters", ""),
                exclude_numbers=params.get("ExcludeNumbers", False),
                exclude_punctuation=params.get("ExcludePunctuation", False),
                exclude_uppercase=params.get("ExcludeUppercase", False),
                exclude_lowercase=params.get("ExcludeLowercase", False),
                include_space=params.get("IncludeSpace", False),
                require_each_included_type=params.get("RequireEachIncludedType", True),
            )
        }
