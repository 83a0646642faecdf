"""A secret version's ciphertext under its previous KMS key, kept after a key change

Revision ID: 0009_previous_ciphertexts
Revises: 0008_functions
Create Date: 2026-12-07 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_previous_ciphertexts"
down_revision: str | None = "0009_kms_grants"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("secret_versions") as batch:
        batch.add_column(sa.Column("previous_kms_key_id", sa.String(length=2048), nullable=True))
        batch.add_column(sa.Column("previous_ciphertext", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("secret_versions") as batch:
        batch.drop_column("previous_ciphertext")
        batch.drop_column("previous_kms_key_id")
