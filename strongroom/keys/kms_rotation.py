"""Key rotation: EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus,
RotateKeyOnDemand and the automatic rotations that come due."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from strongroom.clock import from_ms
from strongroom.keys import repository as repo
from strongroom.keys.kms_common import (
    MAX_ON_DEMAND_ROTATIONS,
    Output,
    Params,
    _days_ms,
)
from strongroom.keys.material import KeyMaterial
from strongroom.keys.repository import KeyRecord
from strongroom.protocol.errors import ServiceError
from strongroom.types import Caller


class Rotation(KeyMaterial):
    def enable_key_rotation(self, caller: Caller, params: Params) -> Output:
        period = params.get("RotationPeriodInDays", 365)
        with self._store.write() as conn:
            key = self._usable(
                self._changeable(
                    caller, self._resolve(conn, caller, params["KeyId"]), "EnableKeyRotation"
                )
            )
            self._update(
                conn,
                key,
                rotation_period_days=period,
                next_rotation_ms=self._now_ms() + _days_ms(period),
            )
        return {}

    def disable_key_rotation(self, caller: Caller, params: Params) -> Output:
        with self._store.write() as conn:
            key = self._usable(
                self._changeable(
                    caller, self._resolve(conn, caller, params["KeyId"]), "DisableKeyRotation"
                )
            )
            self._update(conn, key, rotation_period_days=None, next_rotation_ms=None)
        return {}

    def get_key_rotation_status(self, caller: Caller, params: Params) -> Output:
        with self._store.read() as conn:
            # Answered for a key pending deletion too, as on AWS (the key state table).
            key = self._resolve(conn, caller, params["KeyId"])
        enabled = key.rotation_period_days is not None
        return {
            "KeyRotationEnabled": enabled,
            "KeyId": key.arn,
            "RotationPeriodInDays": key.rotation_period_days,
            "NextRotationDate": from_ms(key.next_rotation_ms) if enabled else None,
        }

    def list_key_rotations(self, caller: Caller, params: Params) -> Output:
        """Every rotation of the key's material, oldest first; with IncludeKeyMaterial
        ALL_KEY_MATERIAL its first material too (which no rotation made)."""
        everything = params.get("IncludeKeyMaterial") == "ALL_KEY_MATERIAL"
        with self._store.read() as conn:
            key = self._resolve(conn, caller, params["KeyId"])
            rows = repo.rotations(conn, key.key_id, with_first=everything)
        page, marker = self._page(
            "ListKeyRotations", caller, rows, params, default_limit=100, maximum=1000
        )
        return {
            "Rotations": [
                {"KeyId": key.key_id, "KeyMaterialId": row.material_id}
                | (
                    {"RotationDate": from_ms(row.created_ms), "RotationType": row.rotation_type}
                    if row.rotation_type
                    else {}
                )
                for row in page
            ],
            "Truncated": marker is not None,
            "NextMarker": marker,
        }

    def rotate_key_on_demand(self, caller: Caller, params: Params) -> Output:
        with self._store.write() as conn:
            key = self._usable(
                self._changeable(
                    caller, self._resolve(conn, caller, params["KeyId"]), "RotateKeyOnDemand"
                )
            )
            on_demand = repo.on_demand_rotations(conn, key.key_id)
            if on_demand >= MAX_ON_DEMAND_ROTATIONS:
                raise ServiceError(
                    "LimitExceededException",
                    f"{key.arn} has reached the maximum number of on-demand rotations "
                    f"({MAX_ON_DEMAND_ROTATIONS}).",
                )
            self._rotate(conn, key, "ON_DEMAND")
        return {"KeyId": key.arn}

    def _rotate(self, conn: Connection, key: KeyRecord, rotation_type: str) -> None:
        latest = repo.latest_generation(conn, key.key_id)
        self._add_material(conn, key.key_id, latest + 1, rotation_type)
        if key.rotation_period_days is not None:
            self._update(
                conn, key, next_rotation_ms=self._now_ms() + _days_ms(key.rotation_period_days)
            )

    def run_due_rotations(self, observe: Callable[[KeyRecord], None] | None = None) -> int:
        """Automatic rotation: new material for every enabled key whose date has come.
        ``observe`` hears of each inside the transaction (the background job audits them)."""
        with self._store.write() as conn:
            due = repo.keys_due_for_rotation(conn, self._now_ms())
            for record in due:
                self._rotate(conn, record, "AUTOMATIC")
                if observe is not None:
                    observe(record)
        return len(due)
