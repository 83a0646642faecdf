"""A secret's life and metadata: CreateSecret, UpdateSecret, DescribeSecret, DeleteSecret,
RestoreSecret, the purge of expired deletions, tags and resource policies."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection

from strongroom.clock import to_ms
from strongroom.policy.document import parse_policy
from strongroom.policy.secret_policy import is_public, validate_resource_policy
from strongroom.protocol.errors import ServiceError
from strongroom.secrets import arns, labels
from strongroom.secrets import repository as repo
from strongroom.secrets.checks import request_keys, secret_check
from strongroom.secrets.common import (
    _NEED_TOKEN,
    DEFAULT_RECOVERY_DAYS,
    MANAGED_KEY,
    Output,
    Params,
    _check_user_tags,
    _invalid_parameter,
    _invalid_request,
    _marked_for_deletion,
    _merge_tags,
    _replica_readonly,
    _tags_within_quota,
    _Value,
    _value_from,
    not_found,
    token_in_use,
)
from strongroom.secrets.listing import Listing
from strongroom.secrets.repository import SecretRecord
from strongroom.secrets.versions import Versions
from strongroom.types import Caller, UnknownPrincipal


class SecretLifecycle(Versions, Listing):
    def create_secret(self, caller: Caller, params: Params) -> Output:
        name: str = params["Name"]
        arns.check_name(name)
        value = _value_from(params)
        token = params.get("ClientRequestToken")
        if value is not None and token is None:
            raise _invalid_request(_NEED_TOKEN)
        replicas = params.get("AddReplicaRegions") or []
        self._check_replica_regions(caller.region, replicas)
        with self._write() as conn:
            existing = repo.find_by_name(
                conn, caller.account_id, caller.region, name, for_update=True
            )
            if existing is not None:
                return self._create_again(conn, existing, token, value, caller)
            self._check_key(conn, caller.account_id, caller.region, params.get("KmsKeyId"))
            now = self._now_ms()
            record = repo.insert_secret(
                conn,
                account_id=caller.account_id,
                region=caller.region,
                name=name,
                arn=arns.secret_arn(
                    caller.region, caller.account_id, name, arns.new_suffix(self._rng)
                ),
                # AWS stores no description for an empty one: DescribeSecret omits it.
                description=params.get("Description") or None,
                kms_key_id=params.get("KmsKeyId") or None,
                secret_type=params.get("Type") or None,
                tags=_new_tags(None, params["Tags"]) if params.get("Tags") else None,
                created_ms=now,
                last_changed_ms=now,
            )
            # Tags and replicas given at creation need their own actions on the new secret.
            if params.get("Tags"):
                caller.authorize(
                    secret_check(
                        "secretsmanager:TagResource", record, request_keys("TagResource", params)
                    )
                )
            if replicas:
                caller.authorize(
                    secret_check(
                        "secretsmanager:ReplicateSecretToRegions",
                        record,
                        request_keys("ReplicateSecretToRegions", params),
                    )
                )
            output: Output = {"ARN": record.arn, "Name": record.name}
            if value is not None:
                assert token is not None
                output["VersionId"], _, _, record = self._add_version(
                    conn, record, token, value, None, caller
                )
            if replicas:
                output["ReplicationStatus"] = self._replicate(
                    conn, record, replicas, bool(params.get("ForceOverwriteReplicaSecret"))
                )
            return output

    def _create_again(
        self,
        conn: Connection,
        existing: SecretRecord,
        token: str | None,
        value: _Value | None,
        caller: Caller,
    ) -> Output:
        if existing.scheduled_for_deletion:
            raise _invalid_request(
                "You can't create this secret because a secret with this name "
                "is already scheduled for deletion."
            )
        version = repo.version(conn, existing.id, token) if token else None
        if version is None or value is None:
            raise ServiceError(
                "ResourceExistsException",
                f"The operation failed because the secret {existing.name} already exists.",
            )
        if not self._same_value(conn, existing, version, value, caller):
            raise token_in_use(str(token), existing.arn)
        return {"ARN": existing.arn, "Name": existing.name, "VersionId": version.version_id}

    def update_secret(self, caller: Caller, params: Params) -> Output:
        value = _value_from(params)
        token = params.get("ClientRequestToken")
        if value is not None and token is None:
            raise _invalid_request(_NEED_TOKEN)
        with self._write() as conn:
            record = self._resolve(conn, caller, params["SecretId"], for_update=True)
            if record.is_replica:
                return self._update_replica_key(conn, record, params, value, caller)
            record = self._mutable(conn, caller, params["SecretId"])
            changes: dict[str, Any] = {}
            if "Description" in params:
                changes["description"] = params["Description"]
            if "KmsKeyId" in params and (params["KmsKeyId"] or None) != record.kms_key_id:
                record = self._change_key(conn, record, params["KmsKeyId"] or None, caller)
                changes["kms_key_id"] = record.kms_key_id
            if "Type" in params:
                changes["secret_type"] = params["Type"] or None
            output: Output = {"ARN": record.arn, "Name": record.name}
            created = False
            if value is not None:
                assert token is not None
                output["VersionId"], _, created, record = self._add_version(
                    conn, record, token, value, None, caller
                )
            if changes or created:
                self._changed(conn, record, **changes)
        return output

    def _update_replica_key(
        self,
        conn: Connection,
        replica: SecretRecord,
        params: Params,
        value: _Value | None,
        caller: Caller,
    ) -> Output:
        """UpdateSecret on a replica: only its KMS key may change ("a replica secret can't
        be updated independently from its primary secret, except for its encryption
        key", user guide). Its labelled versions are re-encrypted under the new key, and
        the primary's ReplicationStatus shows the key."""
        others = ("Description", "Type")
        if value is not None or "KmsKeyId" not in params or any(m in params for m in others):
            raise _replica_readonly()
        if replica.scheduled_for_deletion:
            raise _marked_for_deletion()
        ref = params["KmsKeyId"] or None
        if ref != replica.kms_key_id:
            self._change_key(conn, replica, ref, caller)
            primary = repo.find_by_name(
                conn, replica.account_id, replica.primary_region or "", replica.name
            )
            if primary is not None and primary.replicas:
                statuses = [
                    {**status, "KmsKeyId": ref or MANAGED_KEY}
                    if status.get("Region") == replica.region
                    else status
                    for status in primary.replicas
                ]
                repo.update_secret(conn, primary, replicas=statuses)
        return {"ARN": replica.arn, "Name": replica.name}

    def _change_key(
        self, conn: Connection, record: SecretRecord, ref: str | None, caller: Caller
    ) -> SecretRecord:
        """Re-encrypt the AWSCURRENT, AWSPENDING and AWSPREVIOUS versions under another
        KMS key, as AWS does, keeping each one's ciphertext under the key it had (it still
        opens with that key if the new one cannot be used); older versions stay under the
        key that sealed them."""
        self._check_key(conn, record.account_id, record.region, ref)
        key = self._key_named(conn, record, ref)
        current = repo.stages(conn, record.id)
        for stage in (labels.CURRENT, labels.PENDING, labels.PREVIOUS):
            version = repo.version(conn, record.id, current[stage]) if stage in current else None
            if version is None or version.ciphertext is None:
                continue
            value = self._open(conn, record, version, caller)
            sealed, key_id = self._seal(
                conn, record, version.version_id, value, key, ref, caller=caller
            )
            # AWS keeps the version decryptable with the previous key too ("Change the
            # encryption key for a secret"): its ciphertext under that key stays beside.
            repo.fill_version(
                conn,
                record.id,
                version.version_id,
                value.kind,
                sealed,
                key_id,
                previous=(version.kms_key_id, version.ciphertext),
            )
        return repo.update_secret(conn, record, kms_key_id=ref)

    def describe_secret(self, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            record = self._resolve(conn, caller, params["SecretId"])
            stages = repo.stages(conn, record.id)
            output = self._metadata(record, stages, "VersionIdsToStages")
            if output.get("ReplicationStatus"):
                output["ReplicationStatus"] = self._replication_status(conn, record)
        return output

    def delete_secret(self, caller: Caller, params: Params) -> Output:
        force = bool(params.get("ForceDeleteWithoutRecovery"))
        window = params.get("RecoveryWindowInDays")
        if window is not None and not 7 <= window <= 30:
            raise _invalid_parameter(
                "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive)."
            )
        if force and window is not None:
            raise _invalid_parameter(
                "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."
            )
        now = self._clock.now()
        with self._write() as conn:
            record = self._lookup(conn, caller, params["SecretId"], for_update=True)
            if record is None:
                if force:
                    # AWS answers as if the secret had existed and was deleted: ARN, Name
                    # (the SecretId as given) and DeletionDate (localstack's AWS-validated
                    # test_delete_non_existent_secret_returns_as_if_secret_exists).
                    return {**self._absent_secret(caller, params["SecretId"]), "DeletionDate": now}
                raise not_found()
            if record.is_replica:
                raise _replica_readonly()
            if record.replicas:
                regions = ", ".join(r["Region"] for r in record.replicas)
                raise _invalid_parameter(
                    f"You can't delete secret {record.arn} that still has replica regions "
                    f"[{regions}]."
                )
            if force:
                repo.delete_secret(conn, record.id)
                return {"ARN": record.arn, "Name": record.name, "DeletionDate": now}
            if record.scheduled_for_deletion:
                raise _invalid_request(
                    "You tried to perform the operation on a secret that's currently marked "
                    "deleted."
                )
            deletion = now + timedelta(days=window or DEFAULT_RECOVERY_DAYS)
            # Scheduling the deletion changes the secret: LastChangedDate moves (issue 23).
            repo.update_secret(
                conn,
                record,
                deleted_ms=to_ms(now),
                deletion_ms=to_ms(deletion),
                last_changed_ms=to_ms(now),
            )
        return {"ARN": record.arn, "Name": record.name, "DeletionDate": deletion}

    def _absent_secret(self, caller: Caller, secret_id: str) -> Output:
        """ARN and Name for a SecretId that names no secret."""
        ref = arns.parse_secret_id(secret_id)
        if ref.is_arn:
            return {"ARN": secret_id, "Name": re.sub(r"-[A-Za-z0-9]{6}$", "", ref.name_or_arn_tail)}
        suffix = arns.new_suffix(self._rng)
        return {
            "ARN": arns.secret_arn(caller.region, caller.account_id, secret_id, suffix),
            "Name": secret_id,
        }

    def restore_secret(self, caller: Caller, params: Params) -> Output:
        with self._write() as conn:
            record = self._resolve(conn, caller, params["SecretId"], for_update=True)
            if record.is_replica:
                raise _replica_readonly()
            if record.scheduled_for_deletion:
                self._changed(conn, record, deleted_ms=None, deletion_ms=None)
        return {"ARN": record.arn, "Name": record.name}

    def purge_expired(self, observe: Callable[[SecretRecord], None] | None = None) -> int:
        """Remove secrets whose recovery window has ended; returns how many. ``observe``
        hears of each inside the transaction (the background job audits them)."""
        with self._write() as conn:
            expired = repo.expired(conn, self._now_ms())
            for record in expired:
                repo.delete_secret(conn, record.id)
                if observe is not None:
                    observe(record)
        return len(expired)

    def tag_resource(self, caller: Caller, params: Params) -> Output:
        with self._write() as conn:
            record = self._mutable(conn, caller, params["SecretId"])
            self._changed(conn, record, tags=_new_tags(record.tags, params["Tags"]))
        return {}

    def untag_resource(self, caller: Caller, params: Params) -> Output:
        with self._write() as conn:
            record = self._mutable(conn, caller, params["SecretId"])
            _check_user_tags(params["TagKeys"])
            drop = set(params["TagKeys"])
            tags = [pair for pair in record.tags or [] if pair[0] not in drop]
            self._changed(conn, record, tags=tags)
        return {}

    def put_resource_policy(self, caller: Caller, params: Params) -> Output:
        _only_default_policy(params)
        text: str = params["ResourcePolicy"]
        document = parse_policy(text, kind="resource")
        if params.get("BlockPublicPolicy") and is_public(document, account_id=caller.account_id):
            raise ServiceError(
                "PublicPolicyException",
                "The BlockPublicPolicy parameter is set to true, and the resource policy "
                "did not prevent broad access to the secret.",
            )
        with self._write() as conn:
            record = self._mutable(conn, caller, params["SecretId"])
            self._changed(conn, record, resource_policy=self._bound(text))
        return {"ARN": record.arn, "Name": record.name}

    def _bound(self, text: str) -> str:
        """The policy as stored: the users and roles it names bound by unique id. Decision:
        Secrets Manager's wording for a principal that does not exist (as its API
        answers a principal it cannot use)."""
        try:
            return self._principal_ids.bind(text)
        except UnknownPrincipal:
            raise ServiceError(
                "MalformedPolicyDocumentException",
                "This resource policy contains an unsupported principal.",
            ) from None

    def get_resource_policy(self, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            record = self._resolve(conn, caller, params["SecretId"])
        _only_default_policy(params)
        policy = record.resource_policy
        if policy is None:
            return {"ARN": record.arn, "Name": record.name}
        return {
            "ARN": record.arn,
            "Name": record.name,
            "ResourcePolicy": self._principal_ids.show(policy),
            "PolicyName": DEFAULT_POLICY_NAME,
        }

    def list_resource_policies(self, caller: Caller, params: Params) -> Output:
        """The names of the secret's resource policies: ``default``, when it has one (the
        only policy a client can attach). Everything fits on one page, so a NextToken
        can only be one this service never issued."""
        if params.get("NextToken"):
            raise ServiceError("InvalidNextTokenException", "The NextToken value is invalid.")
        with self._store.read() as conn:
            record = self._resolve(conn, caller, params["SecretId"])
        names = [DEFAULT_POLICY_NAME] if record.resource_policy is not None else []
        return {"ResourcePolicies": [{"PolicyName": name} for name in names]}

    def delete_resource_policy(self, caller: Caller, params: Params) -> Output:
        _only_default_policy(params)
        with self._write() as conn:
            record = self._mutable(conn, caller, params["SecretId"])
            if record.resource_policy is not None:
                self._changed(conn, record, resource_policy=None)
        return {"ARN": record.arn, "Name": record.name}

    def validate_resource_policy(self, caller: Caller, params: Params) -> Output:
        if params.get("SecretId"):
            with self._store.read() as conn:
                self._resolve(conn, caller, params["SecretId"])
        findings = validate_resource_policy(
            params["ResourcePolicy"], account_id=caller.account_id, caller_arn=caller.principal_arn
        )
        return {
            "PolicyValidationPassed": not findings,
            "ValidationErrors": [
                {"CheckName": f.check_name, "ErrorMessage": f.error_message} for f in findings
            ],
        }


def _new_tags(existing: list[list[str]] | None, new: list[Mapping[str, str]]) -> list[list[str]]:
    """A secret's tags after CreateSecret or TagResource adds ``new``: no ``aws:`` key, at
    most 50 in all."""
    _check_user_tags(tag.get("Key", "") for tag in new)
    return _tags_within_quota(_merge_tags(existing, new))


DEFAULT_POLICY_NAME = "default"


def _only_default_policy(params: Params) -> None:
    """A secret has one resource policy, ``default`` ("You can modify only the default
    policy", ListResourcePolicies API reference). Decision: another PolicyName is
    refused with ResourceNotFoundException, in our words."""
    name = params.get("PolicyName")
    if name is not None and name != DEFAULT_POLICY_NAME:
        raise ServiceError(
            "ResourceNotFoundException",
            f"The secret has no resource policy named {name}: only {DEFAULT_POLICY_NAME} "
            "can be used.",
        )
