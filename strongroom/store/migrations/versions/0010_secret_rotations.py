"""the rotation of each secret with rotation turned on: schedule, claim, attempt

Revision ID: 0010_rotation
Revises: 0009_previous_ciphertexts
Create Date: 2026-12-07 06:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_rotation"
down_revision: str | None = "0009_previous_ciphertexts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "secret_rotations",
        sa.Column("secret_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=True),
        sa.Column("due_ms", sa.BigInteger(), nullable=True),
        sa.Column("window_end_ms", sa.BigInteger(), nullable=True),
        sa.Column("step", sa.String(length=16), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("claim_id", sa.String(length=32), nullable=True),
        sa.Column("lease_until_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.String(length=256), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=True),
        sa.ForeignKeyConstraint(["secret_id"], ["secrets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("secret_id"),
    )
    op.create_index("ix_secret_rotations_due", "secret_rotations", ["state", "due_ms"])
    op.create_index("ix_secret_rotations_lease", "secret_rotations", ["state", "lease_until_ms"])


def downgrade() -> None:
    op.drop_index("ix_secret_rotations_lease", table_name="secret_rotations")
    op.drop_index("ix_secret_rotations_due", table_name="secret_rotations")
    op.drop_table("secret_rotations")
