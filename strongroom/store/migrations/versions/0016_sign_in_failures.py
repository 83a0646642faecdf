"""the console's failed sign-ins, shared by every worker and node and kept across restarts:
one row per failure per throttle key (the user or access key, the source address), kept
only as a digest of the key and the time; rows older than the throttle's window are pruned
by each attempt

Revision ID: 0016_sign_in_failures
Revises: 0015_async_invocations
Create Date: 2026-12-07 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_sign_in_failures"
down_revision: str | None = "0015_async_invocations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_failures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key_digest", sa.String(length=64), nullable=False),
        sa.Column("failed_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sign_in_failures_key", "sign_in_failures", ["key_digest", "failed_ms"])
    op.create_index("ix_sign_in_failures_time", "sign_in_failures", ["failed_ms"])


def downgrade() -> None:
    op.drop_index("ix_sign_in_failures_time", table_name="sign_in_failures")
    op.drop_index("ix_sign_in_failures_key", table_name="sign_in_failures")
    op.drop_table("sign_in_failures")
