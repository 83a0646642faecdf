"""function logs sealed at rest: a log group's data key and retention, each invocation's
log sealed under it

The rows already stored keep their plaintext here: the migration has no root key. The
deployment seals them once it is open (strongroom/functions/log_groups.py
``seal_plaintext``) and empties the plaintext column.

Revision ID: 0012_function_logs
Revises: 0011_audit
Create Date: 2026-12-07 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_function_logs"
down_revision: str | None = "0011_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lambda_log_groups",
        sa.Column("arn", sa.String(length=512), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("function_name", sa.String(length=64), nullable=False),
        sa.Column("data_key", sa.LargeBinary(), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("arn"),
        sa.UniqueConstraint(
            "account_id", "region", "function_name", name="uq_lambda_log_groups_name"
        ),
    )
    with op.batch_alter_table("lambda_invocations") as batch:
        batch.add_column(sa.Column("sealed", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("stored_bytes", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lambda_invocations") as batch:
        batch.drop_column("stored_bytes")
        batch.drop_column("sealed")
    op.drop_table("lambda_log_groups")
