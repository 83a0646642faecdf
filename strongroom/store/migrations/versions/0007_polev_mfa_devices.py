"""virtual MFA devices, and when an STS session's MFA code was verified

Revision ID: 0007_polev
Revises: 0006
Create Date: 2026-12-07 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_polev"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sts_sessions") as batch:
        batch.add_column(sa.Column("mfa_authenticated_ms", sa.BigInteger(), nullable=True))
    op.create_table(
        "iam_mfa_devices",
        sa.Column("serial_number", sa.String(length=256), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=226), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("seed_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("enabled_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("drift", sa.Integer(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"]),
        sa.ForeignKeyConstraint(["user_id"], ["iam_users.id"]),
        sa.PrimaryKeyConstraint("serial_number"),
    )
    op.create_index("ix_iam_mfa_devices_user", "iam_mfa_devices", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_iam_mfa_devices_user", table_name="iam_mfa_devices")
    op.drop_table("iam_mfa_devices")
    with op.batch_alter_table("sts_sessions") as batch:
        batch.drop_column("mfa_authenticated_ms")
