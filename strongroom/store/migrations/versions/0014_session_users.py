"""STS sessions bound to their IAM user's unique id

A session of an IAM user (GetSessionToken, a console session) or of a federated user
(GetFederationToken) belonged to the user's ARN, so a user deleted and created again
with the same name inherited the old user's sessions. Each such session now names the
user's id (AIDA...). A stored session is bound to the user of its ARN only if that user
existed when the session was issued (created no later than the session); otherwise the
user it was issued to is gone, and the session stays unbound: it no longer authenticates.

Revision ID: 0014_session_users
Revises: 0013_grant_principal_ids
Create Date: 2026-12-07 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_session_users"
down_revision: str | None = "0013_grant_principal_ids"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sts_sessions") as batch:
        batch.add_column(sa.Column("user_id", sa.String(length=32), nullable=True))
    sessions = sa.table(
        "sts_sessions",
        sa.column("kind", sa.String),
        sa.column("identity_arn", sa.String),
        sa.column("account_id", sa.String),
        sa.column("created_ms", sa.BigInteger),
        sa.column("user_id", sa.String),
    )
    users = sa.table(
        "iam_users",
        sa.column("id", sa.String),
        sa.column("arn", sa.String),
        sa.column("account_id", sa.String),
        sa.column("created_ms", sa.BigInteger),
    )
    issued_to = (
        sa.select(users.c.id)
        .where(
            users.c.arn == sessions.c.identity_arn,
            users.c.account_id == sessions.c.account_id,
            users.c.created_ms <= sessions.c.created_ms,
        )
        .scalar_subquery()
    )
    op.execute(
        sa.update(sessions)
        .where(sessions.c.kind.in_(("user", "federated-user")))
        .values(user_id=issued_to)
    )


def downgrade() -> None:
    with op.batch_alter_table("sts_sessions") as batch:
        batch.drop_column("user_id")
