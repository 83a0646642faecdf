"""Migration 0015: an invocation log's key gains the attempt (an asynchronous invocation
that Lambda retries keeps one row per attempt under one request id); rows stored before
it are attempt 1, and keep their log."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import insert, inspect, select
from sqlalchemy.exc import IntegrityError

from strongroom.store import schema
from strongroom.store.engine import MIGRATIONS, Store

ROW = {
    "request_id": "11111111-2222-3333-4444-555555555555",
    "function_arn": "arn:aws:lambda:us-east-1:000000000000:function:f",
    "account_id": "000000000000",
    "region": "us-east-1",
    "function_name": "f",
    "started_ms": 5,
    "duration_ms": 7,
    "outcome": "error",
    "log": "",
    "sealed": b"sealed",
    "stored_bytes": 9,
}


def test_rows_before_it_are_attempt_one_and_a_retry_has_its_own_row(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'old.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0014_session_users")
    with store.engine.begin() as conn:
        # As 0013 had the table: no attempt column yet.
        columns = ", ".join(ROW)
        conn.exec_driver_sql(
            f"INSERT INTO lambda_invocations ({columns}) VALUES ({', '.join('?' * len(ROW))})",
            tuple(ROW.values()),
        )
    store.migrate()
    key = inspect(store.engine).get_pk_constraint("lambda_invocations")["constrained_columns"]
    assert key == ["request_id", "attempt"]
    with store.write() as conn:
        conn.execute(insert(schema.lambda_invocations).values(**ROW, attempt=2))
    with pytest.raises(IntegrityError), store.write() as conn:
        conn.execute(insert(schema.lambda_invocations).values(**ROW, attempt=2))
    with store.read() as conn:
        rows = conn.execute(
            select(schema.lambda_invocations.c.attempt, schema.lambda_invocations.c.sealed)
        ).all()
    store.dispose()
    assert sorted(rows) == [(1, b"sealed"), (2, b"sealed")]
