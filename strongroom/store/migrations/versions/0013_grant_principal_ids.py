"""KMS grants name IAM users and roles by unique id, not by ARN

A grant's grantee and retiring principal that are the ARN of an IAM user or role become
the entity's unique id (AIDA.../AROA...), as CreateGrant now stores them, so that a user
or role deleted and created again with the same name does not inherit the grants of the
old one (strongroom/keys/kms_grants.py). An ARN is bound only to an entity that existed
when the grant was made (its created_ms not after the grant's): a grant whose principal
has since been deleted, or deleted and created again, keeps its ARN, which names nobody
(grants match users and roles by id only). Account roots and role sessions stay ARNs.

The downgrade shows each id that still names an entity as its ARN again; the id of a
deleted one stays (the older code matches by ARN: it names nobody there either).

Revision ID: 0013_grant_principal_ids
Revises: 0012_function_logs
Create Date: 2026-12-07 12:45:00
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_grant_principal_ids"
down_revision: str | None = "0012_function_logs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ENTITY_ARN = re.compile(r"arn:aws:iam::[0-9]{12}:(user|role)/.+")
_PRINCIPALS = ("grantee_principal", "retiring_principal")

_grants = sa.table(
    "kms_grants",
    sa.column("grant_id", sa.String),
    sa.column("grantee_principal", sa.String),
    sa.column("retiring_principal", sa.String),
    sa.column("created_ms", sa.BigInteger),
)
_entities = {
    kind: sa.table(
        f"iam_{kind}s",
        sa.column("id", sa.String),
        sa.column("arn", sa.String),
        sa.column("created_ms", sa.BigInteger),
    )
    for kind in ("user", "role")
}


def _bound(conn: sa.Connection, arn: str | None, granted_ms: int) -> str | None:
    """The id of the user or role ``arn`` names, if it existed when the grant was made."""
    match = _ENTITY_ARN.fullmatch(arn or "")
    if match is None:
        return None
    table = _entities[match.group(1)]
    found: str | None = conn.execute(
        sa.select(table.c.id).where(table.c.arn == arn, table.c.created_ms <= granted_ms)
    ).scalar_one_or_none()
    return found


def upgrade() -> None:
    conn = op.get_bind()
    for grant in conn.execute(sa.select(_grants)).all():
        changes = {}
        for column in _PRINCIPALS:
            bound = _bound(conn, getattr(grant, column), grant.created_ms)
            if bound is not None:
                changes[column] = bound
        if changes:
            conn.execute(
                sa.update(_grants).where(_grants.c.grant_id == grant.grant_id).values(**changes)
            )


def downgrade() -> None:
    conn = op.get_bind()
    arns: dict[str, str] = {}
    for table in _entities.values():
        arns.update((row.id, row.arn) for row in conn.execute(sa.select(table.c.id, table.c.arn)))
    for grant in conn.execute(sa.select(_grants)).all():
        changes = {
            column: arns[getattr(grant, column)]
            for column in _PRINCIPALS
            if getattr(grant, column) in arns
        }
        if changes:
            conn.execute(
                sa.update(_grants).where(_grants.c.grant_id == grant.grant_id).values(**changes)
            )
