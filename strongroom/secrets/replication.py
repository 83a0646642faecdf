"""Replication: ReplicateSecretToRegions, RemoveRegionsFromReplication,
StopReplicationToReplica, and keeping replicas in step with their primary on every change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from strongroom.clock import from_ms
from strongroom.secrets import arns
from strongroom.secrets import repository as repo
from strongroom.secrets.common import (
    MANAGED_KEY,
    Output,
    Params,
    _invalid_parameter,
    _invalid_request,
    _Value,
)
from strongroom.secrets.encryption import SecretEncryption
from strongroom.secrets.repository import SecretRecord, VersionRecord
from strongroom.types import Caller

# What a replica mirrors of its primary's metadata (its versions and labels aside).
_MIRRORED = (
    "description",
    "secret_type",
    "tags",
    "resource_policy",
    "last_changed_ms",
    "rotation_enabled",
    "rotation_lambda_arn",
    "rotation_rules",
    "last_rotated_ms",
    "next_rotation_ms",
    "owning_service",
)


class Replication(SecretEncryption):
    def _changed(self, conn: Connection, record: SecretRecord, **values: Any) -> SecretRecord:
        """Write ``values`` and a new LastChangedDate, mirrored to the replicas; the record
        as changed."""
        record = repo.update_secret(conn, record, last_changed_ms=self._now_ms(), **values)
        self._sync_replicas(conn, record)
        return record

    def replicate_secret_to_regions(self, caller: Caller, params: Params) -> Output:
        regions = params["AddReplicaRegions"]
        self._check_replica_regions(caller.region, regions)
        with self._write() as conn:
            record = self._mutable(conn, caller, params["SecretId"])
            statuses = self._replicate(
                conn, record, regions, bool(params.get("ForceOverwriteReplicaSecret"))
            )
        return {"ARN": record.arn, "ReplicationStatus": statuses}

    def remove_regions_from_replication(self, caller: Caller, params: Params) -> Output:
        drop = set(params["RemoveReplicaRegions"])
        with self._write() as conn:
            record = self._mutable(conn, caller, params["SecretId"])
            kept = []
            for status in record.replicas or []:
                if status["Region"] not in drop:
                    kept.append(status)
                    continue
                replica = self._replica_of(conn, record, status["Region"])
                if replica is not None:
                    repo.delete_secret(conn, replica.id)
            self._changed(conn, record, replicas=kept or None)
        return {"ARN": record.arn, "ReplicationStatus": kept}

    def stop_replication_to_replica(self, caller: Caller, params: Params) -> Output:
        with self._write() as conn:
            replica = self._resolve(conn, caller, params["SecretId"], for_update=True)
            if not replica.is_replica:
                raise _invalid_request(
                    f"Secret {replica.arn} is not a replica secret, so it can't be promoted."
                )
            primary = repo.find_by_name(
                conn,
                replica.account_id,
                replica.primary_region or "",
                replica.name,
                for_update=True,
            )
            if primary is not None:
                kept = [s for s in primary.replicas or [] if s["Region"] != replica.region]
                repo.update_secret(
                    conn, primary, replicas=kept or None, last_changed_ms=self._now_ms()
                )
            repo.update_secret(conn, replica, primary_region=None, last_changed_ms=self._now_ms())
        return {"ARN": replica.arn}

    @staticmethod
    def _check_replica_regions(own_region: str, replicas: list[Mapping[str, Any]]) -> None:
        seen: set[str] = set()
        for replica in replicas:
            region = replica.get("Region")
            if not region or region == own_region or region in seen:
                raise _invalid_parameter("Invalid replica region.")
            seen.add(region)

    def _replica_of(
        self, conn: Connection, primary: SecretRecord, region: str
    ) -> SecretRecord | None:
        found = repo.find_by_name(conn, primary.account_id, region, primary.name, for_update=True)
        if found is not None and found.primary_region == primary.region:
            return found
        return None

    def _replicate(
        self,
        conn: Connection,
        primary: SecretRecord,
        regions: list[Mapping[str, Any]],
        force_overwrite: bool,
    ) -> list[dict[str, Any]]:
        statuses = {s["Region"]: s for s in primary.replicas or []}
        for wanted in regions:
            region = wanted["Region"]
            if region in statuses and statuses[region].get("Status") != "Failed":
                continue  # already replicated there; a failed region is tried again
            # The managed key is reported by its alias, as in AWS's examples (aws-cli
            # replicate-secret-to-regions.rst, describe-secret.rst).
            kms_key_id = wanted.get("KmsKeyId") or None
            status: dict[str, Any] = {"Region": region, "KmsKeyId": kms_key_id or MANAGED_KEY}
            occupant = repo.find_by_name(conn, primary.account_id, region, primary.name)
            if occupant is not None and not force_overwrite:
                status.update(
                    Status="Failed",
                    # The model's example text for ReplicationStatusType.StatusMessage.
                    StatusMessage="Secret with this name already exists in this region",
                )
            else:
                if occupant is not None:
                    repo.delete_secret(conn, occupant.id)
                now = self._now_ms()
                repo.insert_secret(
                    conn,
                    account_id=primary.account_id,
                    region=region,
                    name=primary.name,
                    arn=arns.with_region(primary.arn, region),
                    kms_key_id=kms_key_id,
                    created_ms=now,
                    last_changed_ms=now,
                    primary_region=primary.region,
                )
                status.update(Status="InSync", StatusMessage="Replication succeeded")
            statuses[region] = {k: v for k, v in status.items() if v is not None}
        replicas = list(statuses.values())
        primary = repo.update_secret(
            conn, primary, replicas=replicas, last_changed_ms=self._now_ms()
        )
        self._sync_replicas(conn, primary)
        return replicas

    def _sync_replicas(self, conn: Connection, primary: SecretRecord) -> None:
        """Replicas mirror their primary's metadata, versions and labels in the same
        transaction, so no reader ever sees them out of step.

        Only what differs is written: a version's value never changes once stored, so a
        version the replica already holds is kept as it is, and only versions it lacks are
        decrypted (once, for every replica) and sealed under the replica's key. A change of
        tags or description costs no cryptography at all."""
        in_sync = [s for s in primary.replicas or [] if s.get("Status") == "InSync"]
        if not in_sync:
            return
        stages = repo.stages(conn, primary.id)
        versions = repo.versions(conn, primary.id)
        plain: dict[str, _Value] = {}
        for status in in_sync:
            replica = self._replica_of(conn, primary, status["Region"])
            if replica is None:
                continue
            metadata = {name: getattr(primary, name) for name in _MIRRORED}
            if any(getattr(replica, name) != value for name, value in metadata.items()):
                repo.update_secret(conn, replica, **metadata)
            held = {(v.version_id, v.created_ms) for v in repo.versions(conn, replica.id)}
            wanted = {(v.version_id, v.created_ms) for v in versions}
            labels = repo.stages(conn, replica.id)
            stale = {version_id for version_id, _ in held - wanted}
            if stale:
                # Labels first: a label may still point at a version about to go.
                kept = {stage: v for stage, v in labels.items() if v not in stale}
                repo.replace_stages(conn, replica.id, labels, kept)
                repo.delete_versions(conn, replica.id, stale)
                labels = kept
            missing = [v for v in versions if (v.version_id, v.created_ms) not in held]
            # A replica is encrypted under its own region's key.
            key = self._encryption_key(conn, replica) if missing else None
            for v in missing:
                if v.ciphertext and v.version_id not in plain:
                    plain[v.version_id] = self._open(conn, primary, v)
                value = plain.get(v.version_id)
                sealed, key_id = (
                    self._seal(conn, replica, v.version_id, value, key)
                    if value and key is not None
                    else (None, None)
                )
                repo.insert_version(
                    conn,
                    replica.id,
                    VersionRecord(
                        v.version_id, v.created_ms, v.last_accessed_ms, key_id, v.value_kind, sealed
                    ),
                )
            repo.replace_stages(conn, replica.id, labels, stages)

    def _replication_status(self, conn: Connection, primary: SecretRecord) -> list[Output]:
        """The primary's replica statuses, each with the date its replica was last read in
        its region; omitted while it never was (API reference ReplicationStatusType)."""
        statuses: list[Output] = []
        for status in primary.replicas or []:
            replica = repo.find_by_name(conn, primary.account_id, status["Region"], primary.name)
            accessed = None
            if replica is not None and replica.primary_region == primary.region:
                accessed = from_ms(replica.last_accessed_ms)
            statuses.append({**status, "LastAccessedDate": accessed})
        return statuses
