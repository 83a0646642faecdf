"""Rows of IAM's policies: inline policies, managed policies and their versions, and
which principals they are attached to (the ``iam_inline_policies``, ``iam_policies``,
``iam_policy_versions`` and ``iam_attachments`` tables); the rest of IAM's rows are
:mod:`strongroom.iam.repository`'s."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from strongroom.iam.repository import Kind, Tags
from strongroom.store.schema import (
    iam_attachments,
    iam_inline_policies,
    iam_policies,
    iam_policy_versions,
)


@dataclass
class PolicyRecord:
    id: str
    account_id: str
    name: str
    name_key: str
    path: str
    arn: str
    description: str | None
    default_version: str
    next_version: int
    tags: Tags | None
    created_ms: int
    updated_ms: int


@dataclass
class VersionRecord:
    version_id: str
    document: str
    created_ms: int


# Inline policies -----------------------------------------------------------------------


def inline_policies(conn: Connection, principal_id: str) -> dict[str, str]:
    """Policy name -> document, in name order."""
    rows = conn.execute(
        select(iam_inline_policies.c.policy_name, iam_inline_policies.c.document)
        .where(iam_inline_policies.c.principal_id == principal_id)
        .order_by(iam_inline_policies.c.policy_name)
    )
    return {row.policy_name: row.document for row in rows}


def put_inline(
    conn: Connection, kind: Kind, principal_id: str, policy_name: str, document: str
) -> None:
    existing = conn.execute(
        select(iam_inline_policies.c.policy_name).where(
            iam_inline_policies.c.principal_id == principal_id,
            iam_inline_policies.c.policy_name == policy_name,
        )
    ).first()
    if existing is None:
        conn.execute(
            insert(iam_inline_policies).values(
                principal_id=principal_id,
                policy_name=policy_name,
                principal_kind=kind,
                document=document,
            )
        )
    else:
        conn.execute(
            update(iam_inline_policies)
            .where(
                iam_inline_policies.c.principal_id == principal_id,
                iam_inline_policies.c.policy_name == policy_name,
            )
            .values(document=document)
        )


def delete_inline(conn: Connection, principal_id: str, policy_name: str) -> None:
    conn.execute(
        delete(iam_inline_policies).where(
            iam_inline_policies.c.principal_id == principal_id,
            iam_inline_policies.c.policy_name == policy_name,
        )
    )


# Customer managed policies -------------------------------------------------------------


def _policy(row: Row[Any]) -> PolicyRecord:
    return PolicyRecord(**{f.name: getattr(row, f.name) for f in fields(PolicyRecord)})


def find_policy(conn: Connection, arn: str) -> PolicyRecord | None:
    row = conn.execute(select(iam_policies).where(iam_policies.c.arn == arn)).first()
    return _policy(row) if row is not None else None


def find_policy_named(conn: Connection, account_id: str, name: str) -> PolicyRecord | None:
    row = conn.execute(
        select(iam_policies).where(
            iam_policies.c.account_id == account_id, iam_policies.c.name_key == name.lower()
        )
    ).first()
    return _policy(row) if row is not None else None


def policies(conn: Connection, account_id: str) -> list[PolicyRecord]:
    rows = conn.execute(
        select(iam_policies)
        .where(iam_policies.c.account_id == account_id)
        .order_by(iam_policies.c.name_key)
    )
    return [_policy(row) for row in rows]


def insert_policy(conn: Connection, record: PolicyRecord) -> None:
    conn.execute(
        insert(iam_policies).values(**{f.name: getattr(record, f.name) for f in fields(record)})
    )


def update_policy(conn: Connection, record: PolicyRecord, **values: Any) -> None:
    conn.execute(update(iam_policies).where(iam_policies.c.id == record.id).values(**values))
    for name, value in values.items():
        setattr(record, name, value)


def delete_policy(conn: Connection, policy_id: str) -> None:
    conn.execute(delete(iam_policy_versions).where(iam_policy_versions.c.policy_id == policy_id))
    conn.execute(delete(iam_policies).where(iam_policies.c.id == policy_id))


def versions(conn: Connection, policy_id: str) -> list[VersionRecord]:
    """The policy's versions, newest first."""
    rows = conn.execute(
        select(iam_policy_versions).where(iam_policy_versions.c.policy_id == policy_id)
    )
    found = [VersionRecord(row.version_id, row.document, row.created_ms) for row in rows]
    return sorted(found, key=lambda v: int(v.version_id[1:]), reverse=True)


def version(conn: Connection, policy_id: str, version_id: str) -> VersionRecord | None:
    row = conn.execute(
        select(iam_policy_versions).where(
            iam_policy_versions.c.policy_id == policy_id,
            iam_policy_versions.c.version_id == version_id,
        )
    ).first()
    return VersionRecord(row.version_id, row.document, row.created_ms) if row else None


def insert_version(conn: Connection, policy_id: str, record: VersionRecord) -> None:
    conn.execute(
        insert(iam_policy_versions).values(
            policy_id=policy_id,
            version_id=record.version_id,
            document=record.document,
            created_ms=record.created_ms,
        )
    )


def delete_version(conn: Connection, policy_id: str, version_id: str) -> None:
    conn.execute(
        delete(iam_policy_versions).where(
            iam_policy_versions.c.policy_id == policy_id,
            iam_policy_versions.c.version_id == version_id,
        )
    )


# Attachments ---------------------------------------------------------------------------


def attached(conn: Connection, principal_id: str) -> list[str]:
    """ARNs of the managed policies attached to a user, group or role, oldest first."""
    rows = conn.execute(
        select(iam_attachments.c.policy_arn)
        .where(iam_attachments.c.principal_id == principal_id)
        .order_by(iam_attachments.c.attached_ms, iam_attachments.c.policy_arn)
    )
    return [row.policy_arn for row in rows]


def attach(
    conn: Connection, kind: Kind, principal_id: str, account_id: str, arn: str, now_ms: int
) -> None:
    conn.execute(
        insert(iam_attachments).values(
            principal_id=principal_id,
            policy_arn=arn,
            principal_kind=kind,
            account_id=account_id,
            attached_ms=now_ms,
        )
    )


def detach(conn: Connection, principal_id: str, arn: str) -> None:
    conn.execute(
        delete(iam_attachments).where(
            iam_attachments.c.principal_id == principal_id, iam_attachments.c.policy_arn == arn
        )
    )


def attachment_counts(conn: Connection, account_id: str, arns: Sequence[str]) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(arns, 0)
    if arns:
        rows = conn.execute(
            select(iam_attachments.c.policy_arn, func.count())
            .where(
                iam_attachments.c.account_id == account_id,
                iam_attachments.c.policy_arn.in_(arns),
            )
            .group_by(iam_attachments.c.policy_arn)
        )
        for arn, count in rows:
            counts[arn] = int(count)
    return counts


def attached_to(conn: Connection, account_id: str, arn: str) -> list[tuple[Kind, str]]:
    """(kind, principal id) of every entity the policy ``arn`` is attached to."""
    rows = conn.execute(
        select(iam_attachments.c.principal_kind, iam_attachments.c.principal_id).where(
            iam_attachments.c.account_id == account_id, iam_attachments.c.policy_arn == arn
        )
    )
    return [(row.principal_kind, row.principal_id) for row in rows]
