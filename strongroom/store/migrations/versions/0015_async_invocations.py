"""asynchronous invocations as Lambda runs them: the event queue, each function's event
invoke config, and one log row per attempt (the attempt joins the request id in the key);
logs are numbered in the order their group recorded them (logs of the same time read in
that order; older rows have no number and read first among their time's)

Revision ID: 0015_async_invocations
Revises: 0014_session_users
Create Date: 2026-12-07 13:00:00
"""

import warnings
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import SAWarning

revision: str = "0015_async_invocations"
down_revision: str | None = "0014_session_users"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lambda_event_invoke_configs",
        sa.Column("function_arn", sa.String(length=256), nullable=False),
        sa.Column("maximum_retry_attempts", sa.Integer(), nullable=True),
        sa.Column("maximum_event_age_seconds", sa.Integer(), nullable=True),
        sa.Column("modified_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("function_arn"),
    )
    op.create_table(
        "lambda_event_queue",
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("function_arn", sa.String(length=256), nullable=False),
        sa.Column("data_key", sa.LargeBinary(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("queued_ms", sa.BigInteger(), nullable=False),
        sa.Column("due_ms", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("claim_id", sa.String(length=36), nullable=True),
        sa.Column("lease_until_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("request_id"),
    )
    op.create_index("ix_lambda_event_queue_due", "lambda_event_queue", ["state", "due_ms"])
    _key_invocations(["request_id", "attempt"], add_attempt=True)
    with op.batch_alter_table("lambda_invocations") as batch:
        batch.add_column(sa.Column("sequence", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("lambda_log_groups") as batch:
        batch.add_column(sa.Column("logged", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("lambda_log_groups") as batch:
        batch.drop_column("logged")
    with op.batch_alter_table("lambda_invocations") as batch:
        batch.drop_column("sequence")
    op.execute("DELETE FROM lambda_invocations WHERE attempt > 1")
    _key_invocations(["request_id"], add_attempt=False)
    op.drop_index("ix_lambda_event_queue_due", table_name="lambda_event_queue")
    op.drop_table("lambda_event_queue")
    op.drop_table("lambda_event_invoke_configs")


def _key_invocations(columns: list[str], *, add_attempt: bool) -> None:
    """lambda_invocations keyed by ``columns`` (SQLite rebuilds the table; PostgreSQL
    replaces its primary key)."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if not sqlite:
        op.drop_constraint("lambda_invocations_pkey", "lambda_invocations", type_="primary")
    # SQLite's rebuilt table is reflected with request_id as its key, which the new key
    # replaces: SQLAlchemy warns that it does, which is what is meant.
    with (
        warnings.catch_warnings(),
        op.batch_alter_table("lambda_invocations", recreate="always" if sqlite else "auto") as b,
    ):
        warnings.filterwarnings("ignore", "Table '_alembic_tmp_lambda_invocations'", SAWarning)
        if add_attempt:
            b.add_column(sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"))
        else:
            b.drop_column("attempt")
        if sqlite:
            b.create_primary_key("lambda_invocations_pkey", columns)
    if not sqlite:
        op.create_primary_key("lambda_invocations_pkey", "lambda_invocations", columns)
