"""The KMS tables (kms_keys, kms_aliases, kms_key_material): the key record and the
statements the key service runs, in one place as secrets/ and iam/ have theirs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, select

from strongroom.store import schema


@dataclass
class KeyRecord:
    key_id: str
    account_id: str
    region: str
    arn: str
    description: str
    key_manager: str
    state: str
    policy: str
    tags: list[list[str]] | None
    created_ms: int
    deletion_ms: int | None
    pending_window_days: int | None
    rotation_period_days: int | None
    next_rotation_ms: int | None
    on_demand_rotation_ms: int | None
    # The alias names pointing at the key (not a column): its kms:ResourceAliases.
    aliases: tuple[str, ...] = ()


def _key(row: Row[Any], aliases: tuple[str, ...] = ()) -> KeyRecord:
    return KeyRecord(
        **{c.name: getattr(row, c.name) for c in schema.kms_keys.columns}, aliases=aliases
    )


def _loaded(conn: Connection, row: Row[Any]) -> KeyRecord:
    """The key of ``row`` with its aliases, for authorization on its resource keys."""
    aliases = schema.kms_aliases
    names = conn.execute(
        select(aliases.c.alias_name)
        .where(aliases.c.target_key_id == row.key_id)
        .order_by(aliases.c.alias_name)
    ).scalars()
    return _key(row, tuple(names))


def _aliased(conn: Connection, account: str, region: str, alias: str) -> KeyRecord | None:
    aliases, keys = schema.kms_aliases, schema.kms_keys
    row = conn.execute(
        select(keys)
        .join(aliases, aliases.c.target_key_id == keys.c.key_id)
        .where(
            aliases.c.account_id == account,
            aliases.c.region == region,
            aliases.c.alias_name == alias,
        )
    ).first()
    return _loaded(conn, row) if row is not None else None
