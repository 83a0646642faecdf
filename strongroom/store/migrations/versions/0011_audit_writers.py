"""the audit writers' registry: every writer in a durable order, its key and last digest

Revision ID: 0011_audit
Revises: 0010_rotation
Create Date: 2026-12-07 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_audit"
down_revision: str | None = "0010_rotation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_writers",
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("writer", sa.String(length=64), nullable=False),
        sa.Column("node", sa.String(length=255), nullable=False),
        sa.Column("started_ms", sa.BigInteger(), nullable=False),
        sa.Column("previous_writer", sa.String(length=64), nullable=True),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("digest_interval_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_digest_sequence", sa.Integer(), nullable=True),
        sa.Column("last_digest_hash", sa.String(length=64), nullable=True),
        sa.Column("last_digest_ms", sa.BigInteger(), nullable=True),
        sa.Column("closed_ms", sa.BigInteger(), nullable=True),
        sa.Column("retired_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("ordinal"),
        sa.UniqueConstraint("writer"),
    )


def downgrade() -> None:
    op.drop_table("audit_writers")
