"""Rows of the IAM domain: the only module that touches the ``iam_*`` tables (but for
``iam_mfa_devices``, kept by :mod:`strongroom.iam.mfa`, which sealed seeds make a module
of its own), and, with :mod:`strongroom.iam.credentials` (the request path's lookups),
``access_keys``. The rows of policies (inline, managed, their versions and
attachments) are :mod:`strongroom.iam.policy_rows`'.

Names are looked up by ``name_key`` (the lower-cased name): IAM names are unique in an
account ignoring case.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from sqlalchemy import Connection, Row, Table, delete, func, insert, select, update

from strongroom.store.schema import (
    access_keys,
    iam_generation,
    iam_group_members,
    iam_groups,
    iam_login_profiles,
    iam_mfa_devices,
    iam_roles,
    iam_users,
    organization_accounts,
)

Kind = Literal["user", "group", "role"]
Tags = list[list[str]]


@dataclass
class UserRecord:
    id: str
    account_id: str
    name: str
    name_key: str
    path: str
    arn: str
    permissions_boundary: str | None
    tags: Tags | None
    created_ms: int
    password_last_used_ms: int | None


@dataclass
class GroupRecord:
    id: str
    account_id: str
    name: str
    name_key: str
    path: str
    arn: str
    created_ms: int


@dataclass
class RoleRecord:
    id: str
    account_id: str
    name: str
    name_key: str
    path: str
    arn: str
    description: str | None
    trust_policy: str
    max_session_duration: int
    permissions_boundary: str | None
    tags: Tags | None
    created_ms: int
    last_used_ms: int | None
    last_used_region: str | None


@dataclass
class LoginProfileRecord:
    user_id: str
    password_hash: str = field(repr=False)
    password_reset_required: bool
    max_signin_session_duration: int | None
    created_ms: int


@dataclass
class AccessKeyRecord:
    access_key_id: str
    account_id: str
    principal_arn: str
    status: str
    created_ms: int
    last_used_ms: int | None
    last_used_service: str | None
    last_used_region: str | None


Entity = UserRecord | GroupRecord | RoleRecord

_TABLES: dict[Kind, Table] = {"user": iam_users, "group": iam_groups, "role": iam_roles}
_RECORDS: dict[Kind, type[Entity]] = {"user": UserRecord, "group": GroupRecord, "role": RoleRecord}


def _record(kind: Kind, row: Row[Any]) -> Any:
    cls = _RECORDS[kind]
    return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})


# Users, groups and roles ---------------------------------------------------------------


def find(conn: Connection, kind: Kind, account_id: str, name: str) -> Any:
    """The user, group or role called ``name`` (ignoring case), or None."""
    table = _TABLES[kind]
    row = conn.execute(
        select(table).where(table.c.account_id == account_id, table.c.name_key == name.lower())
    ).first()
    return _record(kind, row) if row is not None else None


def find_user(conn: Connection, account_id: str, name: str) -> UserRecord | None:
    user: UserRecord | None = find(conn, "user", account_id, name)
    return user


def find_group(conn: Connection, account_id: str, name: str) -> GroupRecord | None:
    group: GroupRecord | None = find(conn, "group", account_id, name)
    return group


def find_role(conn: Connection, account_id: str, name: str) -> RoleRecord | None:
    role: RoleRecord | None = find(conn, "role", account_id, name)
    return role


def by_ids(conn: Connection, kind: Kind, ids: Iterable[str]) -> list[Any]:
    table = _TABLES[kind]
    wanted = list(ids)
    if not wanted:
        return []
    rows = conn.execute(select(table).where(table.c.id.in_(wanted)).order_by(table.c.name_key))
    return [_record(kind, row) for row in rows]


def insert_entity(conn: Connection, kind: Kind, record: Entity) -> None:
    values = {f.name: getattr(record, f.name) for f in fields(record)}
    conn.execute(insert(_TABLES[kind]).values(**values))


def update_entity(conn: Connection, kind: Kind, record: Entity, **values: Any) -> None:
    table = _TABLES[kind]
    conn.execute(update(table).where(table.c.id == record.id).values(**values))
    for name, value in values.items():
        setattr(record, name, value)


def delete_entity(conn: Connection, kind: Kind, entity_id: str) -> None:
    table = _TABLES[kind]
    if kind == "group":
        conn.execute(delete(iam_group_members).where(iam_group_members.c.group_id == entity_id))
    if kind == "user":
        conn.execute(delete(iam_group_members).where(iam_group_members.c.user_id == entity_id))
        conn.execute(delete(iam_login_profiles).where(iam_login_profiles.c.user_id == entity_id))
    conn.execute(delete(table).where(table.c.id == entity_id))


def scan(
    conn: Connection,
    kind: Kind,
    account_id: str,
    path_prefix: str,
    after: str | None,
    limit: int,
) -> list[Any]:
    """Up to ``limit`` entities whose path starts with ``path_prefix``, in name order,
    after the name key ``after``."""
    table = _TABLES[kind]
    where = [table.c.account_id == account_id]
    if path_prefix != "/":
        where.append(func.substr(table.c.path, 1, len(path_prefix)) == path_prefix)
    if after is not None:
        where.append(table.c.name_key > after)
    rows = conn.execute(select(table).where(*where).order_by(table.c.name_key).limit(limit))
    return [_record(kind, row) for row in rows]


def with_boundary(conn: Connection, kind: Kind, account_id: str, arn: str) -> list[Any]:
    table = _TABLES[kind]
    rows = conn.execute(
        select(table)
        .where(table.c.account_id == account_id, table.c.permissions_boundary == arn)
        .order_by(table.c.name_key)
    )
    return [_record(kind, row) for row in rows]


def boundary_counts(conn: Connection, account_id: str, arns: Sequence[str]) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(arns, 0)
    if not arns:
        return counts
    for table in (iam_users, iam_roles):
        rows = conn.execute(
            select(table.c.permissions_boundary, func.count())
            .where(table.c.account_id == account_id, table.c.permissions_boundary.in_(arns))
            .group_by(table.c.permissions_boundary)
        )
        for arn, count in rows:
            counts[arn] += int(count)
    return counts


# Group membership ----------------------------------------------------------------------


def members(conn: Connection, group_id: str) -> list[UserRecord]:
    rows = conn.execute(
        select(iam_users)
        .join(iam_group_members, iam_group_members.c.user_id == iam_users.c.id)
        .where(iam_group_members.c.group_id == group_id)
        .order_by(iam_users.c.name_key)
    )
    return [_record("user", row) for row in rows]


def groups_of(conn: Connection, user_id: str) -> list[GroupRecord]:
    rows = conn.execute(
        select(iam_groups)
        .join(iam_group_members, iam_group_members.c.group_id == iam_groups.c.id)
        .where(iam_group_members.c.user_id == user_id)
        .order_by(iam_groups.c.name_key)
    )
    return [_record("group", row) for row in rows]


def is_member(conn: Connection, group_id: str, user_id: str) -> bool:
    row = conn.execute(
        select(iam_group_members.c.user_id).where(
            iam_group_members.c.group_id == group_id, iam_group_members.c.user_id == user_id
        )
    ).first()
    return row is not None


def add_member(conn: Connection, group_id: str, user_id: str, now_ms: int) -> None:
    conn.execute(
        insert(iam_group_members).values(group_id=group_id, user_id=user_id, added_ms=now_ms)
    )


def remove_member(conn: Connection, group_id: str, user_id: str) -> None:
    conn.execute(
        delete(iam_group_members).where(
            iam_group_members.c.group_id == group_id, iam_group_members.c.user_id == user_id
        )
    )


# Login profiles ------------------------------------------------------------------------


def login_profile(conn: Connection, user_id: str) -> LoginProfileRecord | None:
    row = conn.execute(
        select(iam_login_profiles).where(iam_login_profiles.c.user_id == user_id)
    ).first()
    if row is None:
        return None
    return LoginProfileRecord(
        row.user_id,
        row.password_hash,
        row.password_reset_required,
        row.max_signin_session_duration,
        row.created_ms,
    )


def insert_login_profile(conn: Connection, record: LoginProfileRecord) -> None:
    conn.execute(
        insert(iam_login_profiles).values(
            **{f.name: getattr(record, f.name) for f in fields(record)}
        )
    )


def update_login_profile(conn: Connection, user_id: str, **values: Any) -> None:
    conn.execute(
        update(iam_login_profiles).where(iam_login_profiles.c.user_id == user_id).values(**values)
    )


def delete_login_profile(conn: Connection, user_id: str) -> None:
    conn.execute(delete(iam_login_profiles).where(iam_login_profiles.c.user_id == user_id))


# Access keys ---------------------------------------------------------------------------

_KEY_COLUMNS = [
    access_keys.c.access_key_id,
    access_keys.c.account_id,
    access_keys.c.principal_arn,
    access_keys.c.status,
    access_keys.c.created_ms,
    access_keys.c.last_used_ms,
    access_keys.c.last_used_service,
    access_keys.c.last_used_region,
]


def _key(row: Row[Any]) -> AccessKeyRecord:
    return AccessKeyRecord(**{f.name: getattr(row, f.name) for f in fields(AccessKeyRecord)})


def access_keys_of(conn: Connection, principal_arn: str) -> list[AccessKeyRecord]:
    rows = conn.execute(
        select(*_KEY_COLUMNS)
        .where(access_keys.c.principal_arn == principal_arn)
        .order_by(access_keys.c.created_ms, access_keys.c.access_key_id)
    )
    return [_key(row) for row in rows]


def access_key(conn: Connection, access_key_id: str) -> AccessKeyRecord | None:
    row = conn.execute(
        select(*_KEY_COLUMNS).where(access_keys.c.access_key_id == access_key_id)
    ).first()
    return _key(row) if row is not None else None


def set_access_key_status(conn: Connection, access_key_id: str, status: str) -> None:
    conn.execute(
        update(access_keys)
        .where(access_keys.c.access_key_id == access_key_id)
        .values(status=status)
    )


def delete_access_key(conn: Connection, access_key_id: str) -> None:
    conn.execute(delete(access_keys).where(access_keys.c.access_key_id == access_key_id))


def move_access_keys(conn: Connection, old_arn: str, new_arn: str) -> None:
    """A renamed or moved user keeps its keys: they now sign as its new ARN."""
    conn.execute(
        update(access_keys)
        .where(access_keys.c.principal_arn == old_arn)
        .values(principal_arn=new_arn)
    )


# The write counter ---------------------------------------------------------------------


def generation(conn: Connection) -> int:
    value = conn.execute(select(iam_generation.c.value).where(iam_generation.c.id == 1)).scalar()
    return int(value or 0)


def organization_id(conn: Connection, account_id: str) -> str | None:
    """The organization ``account_id`` belongs to, None if it belongs to none."""
    value = conn.execute(
        select(organization_accounts.c.organization_id).where(
            organization_accounts.c.account_id == account_id
        )
    ).scalar()
    return str(value) if value is not None else None


def bump_generation(conn: Connection) -> None:
    result = conn.execute(
        update(iam_generation)
        .where(iam_generation.c.id == 1)
        .values(value=iam_generation.c.value + 1)
    )
    if result.rowcount == 0:
        conn.execute(insert(iam_generation).values(id=1, value=1))


def has_mfa_devices(conn: Connection, user_id: str) -> bool:
    """Whether ``user_id`` has an MFA device enabled (iam/mfa.py keeps them)."""
    found = conn.execute(
        select(iam_mfa_devices.c.serial_number).where(iam_mfa_devices.c.user_id == user_id).limit(1)
    ).first()
    return found is not None


def mfa_device_tags(conn: Connection, account_id: str, serial: str) -> list[tuple[str, str]]:
    """The tags of the virtual MFA device ``serial`` (none if there is no such device)."""
    found = conn.execute(
        select(iam_mfa_devices.c.tags).where(
            iam_mfa_devices.c.serial_number == serial, iam_mfa_devices.c.account_id == account_id
        )
    ).scalar_one_or_none()
    return [(str(key), str(value)) for key, value in found or ()]
