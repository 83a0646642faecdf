"""store/prepared.py: a prepared SELECT answers exactly what SQLAlchemy's execution does,
column conversions (JSON, Boolean, binary) included."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    insert,
    select,
)

from strongroom.store.prepared import PreparedSelect

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(32)),
    Column("tags", JSON),
    Column("enabled", Boolean),
    Column("blob", LargeBinary),
)
BY_NAME = PreparedSelect(select(things).where(things.c.name == bindparam("p_name")))
ROWS = [
    {"id": 1, "name": "a", "tags": [["team", "x"]], "enabled": True, "blob": b"\x00\x01"},
    {"id": 2, "name": "b", "tags": None, "enabled": False, "blob": None},
    {"id": 3, "name": "b", "tags": {"k": [1, 2]}, "enabled": None, "blob": b""},
]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(things), ROWS)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("name", ["a", "b", "missing"])
def test_rows_are_what_sqlalchemy_returns(engine: Engine, name: str) -> None:
    with engine.connect() as conn:
        expected = [tuple(row) for row in conn.execute(BY_NAME.statement, {"p_name": name})]
        assert BY_NAME.rows(conn, {"p_name": name}) == expected
    assert len(expected) == {"a": 1, "b": 2, "missing": 0}[name]


def test_first_maps_columns_and_converts_values(engine: Engine) -> None:
    with engine.connect() as conn:
        assert BY_NAME.first(conn, {"p_name": "a"}) == ROWS[0]
        assert BY_NAME.first(conn, {"p_name": "missing"}) is None
        found = BY_NAME.first(conn, {"p_name": "b"})
    assert found is not None and found == ROWS[1]
    assert found["enabled"] is False  # a bool, not SQLite's 0
