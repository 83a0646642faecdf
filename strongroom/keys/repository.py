"""The KMS tables (kms_keys, kms_aliases, kms_key_material, kms_grants): the key record and the
statements the key service runs, in one place as secrets/ and iam/ have theirs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, or_, select, update

from strongroom.store import schema


@dataclass(frozen=True)
class KeyRecord:
    """A ``kms_keys`` row. Immutable: the row cache hands every reader the record it holds
    (no copy per read)."""

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
    # Whether the key has grants (not a column), when the loader read it with the key in
    # the same snapshot (keys/blobs.py): False lets a check skip the grant lookup. None:
    # not known, the grants are looked up.
    grants: bool | None = field(default=None, compare=False)


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


# Keys ------------------------------------------------------------------------------------


def key_by_arn(conn: Connection, arn: str) -> KeyRecord | None:
    row = conn.execute(select(schema.kms_keys).where(schema.kms_keys.c.arn == arn)).first()
    return _loaded(conn, row) if row is not None else None


def key_in(conn: Connection, account_id: str, region: str, key_id: str) -> KeyRecord | None:
    """Key ``key_id`` if it belongs to ``account_id`` in ``region``."""
    keys = schema.kms_keys
    row = conn.execute(
        select(keys).where(
            keys.c.key_id == key_id,
            keys.c.account_id == account_id,
            keys.c.region == region,
        )
    ).first()
    return _loaded(conn, row) if row is not None else None


def key_by_id(conn: Connection, key_id: str) -> KeyRecord | None:
    """Key ``key_id`` in whichever account it is (key ids are unique UUIDs)."""
    row = conn.execute(select(schema.kms_keys).where(schema.kms_keys.c.key_id == key_id)).first()
    return _loaded(conn, row) if row is not None else None


def insert_key(conn: Connection, values: Mapping[str, Any]) -> None:
    conn.execute(insert(schema.kms_keys).values(**values))


def update_key(conn: Connection, key_id: str, values: Mapping[str, Any]) -> None:
    conn.execute(update(schema.kms_keys).where(schema.kms_keys.c.key_id == key_id).values(**values))


def key_listing(conn: Connection, account_id: str, region: str) -> Sequence[Any]:
    """(key_id, arn) rows of the account's keys in the region, oldest first (ListKeys)."""
    keys = schema.kms_keys
    return conn.execute(
        select(keys.c.key_id, keys.c.arn)
        .where(keys.c.account_id == account_id, keys.c.region == region)
        .order_by(keys.c.created_ms, keys.c.key_id)
    ).all()


def keys_to_purge(conn: Connection, now_ms: int) -> list[KeyRecord]:
    """Keys pending deletion whose waiting period has ended by ``now_ms``."""
    keys = schema.kms_keys
    return [
        _key(row)
        for row in conn.execute(
            select(keys).where(keys.c.state == "PendingDeletion", keys.c.deletion_ms <= now_ms)
        )
    ]


def delete_key(conn: Connection, key_id: str) -> None:
    """The key, its aliases, its grants and all its material."""
    conn.execute(delete(schema.kms_grants).where(schema.kms_grants.c.key_id == key_id))
    conn.execute(delete(schema.kms_aliases).where(schema.kms_aliases.c.target_key_id == key_id))
    conn.execute(delete(schema.kms_key_material).where(schema.kms_key_material.c.key_id == key_id))
    conn.execute(delete(schema.kms_keys).where(schema.kms_keys.c.key_id == key_id))


def keys_due_for_rotation(conn: Connection, now_ms: int) -> list[KeyRecord]:
    """Enabled keys with automatic rotation whose date has come by ``now_ms``."""
    keys = schema.kms_keys
    rows = conn.execute(
        select(keys).where(
            keys.c.state == "Enabled",
            keys.c.next_rotation_ms.is_not(None),
            keys.c.next_rotation_ms <= now_ms,
        )
    ).all()
    return [_key(row) for row in rows]


# Key material ----------------------------------------------------------------------------


def insert_material(
    conn: Connection,
    key_id: str,
    generation: int,
    material_id: str,
    sealed: bytes,
    created_ms: int,
    rotation_type: str | None,
) -> None:
    conn.execute(
        insert(schema.kms_key_material).values(
            key_id=key_id,
            generation=generation,
            material_id=material_id,
            sealed=sealed,
            created_ms=created_ms,
            rotation_type=rotation_type,
        )
    )


def material(conn: Connection, key_id: str, generation: int | None) -> Row[Any] | None:
    """The row of the key's material ``generation``, or of its newest when None."""
    table = schema.kms_key_material
    query = select(table).where(table.c.key_id == key_id)
    if generation is None:
        query = query.order_by(table.c.generation.desc()).limit(1)
    else:
        query = query.where(table.c.generation == generation)
    return conn.execute(query).first()


def current_material_id(conn: Connection, key_id: str) -> str:
    table = schema.kms_key_material
    material_id: str = conn.execute(
        select(table.c.material_id)
        .where(table.c.key_id == key_id)
        .order_by(table.c.generation.desc())
        .limit(1)
    ).scalar_one()
    return material_id


def on_demand_rotations(conn: Connection, key_id: str) -> int:
    table = schema.kms_key_material
    count: int = conn.execute(
        select(func.count()).where(table.c.key_id == key_id, table.c.rotation_type == "ON_DEMAND")
    ).scalar_one()
    return count


def rotations(conn: Connection, key_id: str, *, with_first: bool = False) -> Sequence[Any]:
    """The generations of the key's material that KMS rotations made (automatic or on
    demand; a rekey's are the operator's, not the key's), and its first one if asked,
    oldest first: (material_id, created_ms, rotation_type) rows."""
    table = schema.kms_key_material
    made = table.c.rotation_type.in_(("AUTOMATIC", "ON_DEMAND"))
    listed = or_(made, table.c.generation == 1) if with_first else made
    return conn.execute(
        select(table.c.material_id, table.c.created_ms, table.c.rotation_type)
        .where(table.c.key_id == key_id, listed)
        .order_by(table.c.generation)
    ).all()


def latest_generation(conn: Connection, key_id: str) -> int:
    table = schema.kms_key_material
    latest = conn.execute(
        select(func.max(table.c.generation)).where(table.c.key_id == key_id)
    ).scalar_one()
    return int(latest)


# Aliases ---------------------------------------------------------------------------------


def alias_exists(conn: Connection, account_id: str, region: str, name: str) -> bool:
    aliases = schema.kms_aliases
    found = conn.execute(
        select(aliases.c.alias_name).where(
            aliases.c.account_id == account_id,
            aliases.c.region == region,
            aliases.c.alias_name == name,
        )
    ).first()
    return found is not None


def insert_alias(
    conn: Connection, account_id: str, region: str, name: str, key_id: str, now_ms: int
) -> None:
    conn.execute(
        insert(schema.kms_aliases).values(
            account_id=account_id,
            region=region,
            alias_name=name,
            target_key_id=key_id,
            created_ms=now_ms,
            updated_ms=now_ms,
        )
    )


def retarget_alias(
    conn: Connection, account_id: str, region: str, name: str, key_id: str, now_ms: int
) -> None:
    aliases = schema.kms_aliases
    conn.execute(
        update(aliases)
        .where(
            aliases.c.account_id == account_id,
            aliases.c.region == region,
            aliases.c.alias_name == name,
        )
        .values(target_key_id=key_id, updated_ms=now_ms)
    )


def delete_alias(conn: Connection, account_id: str, region: str, name: str) -> None:
    aliases = schema.kms_aliases
    conn.execute(
        delete(aliases).where(
            aliases.c.account_id == account_id,
            aliases.c.region == region,
            aliases.c.alias_name == name,
        )
    )


def alias_listing(
    conn: Connection, account_id: str, region: str, key_id: str | None
) -> Sequence[Any]:
    """The account's aliases in the region (of key ``key_id`` only, if given), by name."""
    aliases = schema.kms_aliases
    query = select(aliases).where(aliases.c.account_id == account_id, aliases.c.region == region)
    if key_id is not None:
        query = query.where(aliases.c.target_key_id == key_id)
    return conn.execute(query.order_by(aliases.c.alias_name)).all()


# Grants ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantRecord:
    grant_id: str
    key_id: str
    account_id: str
    region: str
    name: str | None
    # A user or role as its unique id (AIDA.../AROA...), any other principal as its ARN.
    grantee_principal: str
    retiring_principal: str | None
    issuing_account: str
    operations: tuple[str, ...]
    constraints: Mapping[str, Any] | None
    created_ms: int


def _grant(row: Row[Any]) -> GrantRecord:
    values = {c.name: getattr(row, c.name) for c in schema.kms_grants.columns}
    values["operations"] = tuple(values["operations"])
    return GrantRecord(**values)


def insert_grant(conn: Connection, grant: GrantRecord) -> None:
    values = {c.name: getattr(grant, c.name) for c in schema.kms_grants.columns}
    values["operations"] = list(grant.operations)
    conn.execute(insert(schema.kms_grants).values(**values))


def grants_of_key(conn: Connection, key_id: str) -> tuple[GrantRecord, ...]:
    """The key's grants, oldest first."""
    grants = schema.kms_grants
    rows = conn.execute(
        select(grants)
        .where(grants.c.key_id == key_id)
        .order_by(grants.c.created_ms, grants.c.grant_id)
    )
    return tuple(_grant(row) for row in rows)


def key_has_grants(conn: Connection, key_id: str) -> bool:
    grants = schema.kms_grants
    found = conn.execute(select(grants.c.grant_id).where(grants.c.key_id == key_id).limit(1))
    return found.first() is not None


def grants_retirable_by(conn: Connection, region: str, principal: str) -> tuple[GrantRecord, ...]:
    """The grants on keys in the region (of any account) that name ``principal`` as their
    retiring principal."""
    grants = schema.kms_grants
    rows = conn.execute(
        select(grants)
        .where(grants.c.region == region, grants.c.retiring_principal == principal)
        .order_by(grants.c.created_ms, grants.c.grant_id)
    )
    return tuple(_grant(row) for row in rows)


def grant_by_id(conn: Connection, grant_id: str) -> GrantRecord | None:
    row = conn.execute(
        select(schema.kms_grants).where(schema.kms_grants.c.grant_id == grant_id)
    ).first()
    return _grant(row) if row is not None else None


def delete_grant(conn: Connection, grant_id: str) -> None:
    conn.execute(delete(schema.kms_grants).where(schema.kms_grants.c.grant_id == grant_id))
