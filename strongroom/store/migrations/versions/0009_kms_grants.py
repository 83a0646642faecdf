"""KMS grants

Revision ID: 0009_kms_grants
Revises: 0008_functions
Create Date: 2026-12-07 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_kms_grants"
down_revision: str | None = "0008_functions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kms_grants",
        sa.Column("grant_id", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("grantee_principal", sa.String(length=256), nullable=False),
        sa.Column("retiring_principal", sa.String(length=256), nullable=True),
        sa.Column("issuing_account", sa.String(length=256), nullable=False),
        sa.Column("operations", sa.JSON(), nullable=False),
        sa.Column("constraints", sa.JSON(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["kms_keys.key_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("grant_id"),
    )
    op.create_index("ix_kms_grants_key", "kms_grants", ["key_id"])
    op.create_index("ix_kms_grants_retiring", "kms_grants", ["region", "retiring_principal"])


def downgrade() -> None:
    op.drop_index("ix_kms_grants_retiring", table_name="kms_grants")
    op.drop_index("ix_kms_grants_key", table_name="kms_grants")
    op.drop_table("kms_grants")
