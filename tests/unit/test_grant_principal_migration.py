"""Migration 0013: the grants an older version stored with ARNs name their users and roles by
unique id afterwards, bound only to an entity that existed when the grant was made; the
downgrade shows them as ARNs again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import insert, select

from strongroom.keys.kms_grants import grantee_matches
from strongroom.store import schema
from strongroom.store.engine import MIGRATIONS, Store
from strongroom.types import Principal

ACCOUNT = "111122223333"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
ANA = f"arn:aws:iam::{ACCOUNT}:user/team/ana"
BILLING = f"arn:aws:iam::{ACCOUNT}:role/billing"
GONE = f"arn:aws:iam::{ACCOUNT}:user/gone"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/billing/worker"
GRANTED_MS = 2_000


def _config(store: Store) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _at(store: Store, revision: str, *, down: bool = False) -> None:
    config = _config(store)
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(config, revision)


def _grant(grant_id: str, grantee: str, retiring: str | None) -> dict[str, Any]:
    return {
        "grant_id": grant_id * 64,
        "key_id": "k" * 36,
        "account_id": ACCOUNT,
        "region": "us-east-1",
        "grantee_principal": grantee,
        "retiring_principal": retiring,
        "issuing_account": ROOT,
        "operations": ["Decrypt"],
        "created_ms": GRANTED_MS,
    }


def _stored(store: Store) -> dict[str, tuple[str, str | None]]:
    with store.read() as conn:
        rows = conn.execute(select(schema.kms_grants).order_by(schema.kms_grants.c.grant_id))
        return {row.grant_id[0]: (row.grantee_principal, row.retiring_principal) for row in rows}


def test_existing_grants_are_carried_over_to_unique_ids(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'old.db'}")
    _at(store, "0012_function_logs")
    with store.engine.begin() as conn:
        conn.execute(insert(schema.accounts).values(account_id=ACCOUNT, name="m", created_ms=1))
        conn.execute(
            insert(schema.kms_keys).values(
                key_id="k" * 36,
                account_id=ACCOUNT,
                region="us-east-1",
                arn=f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{'k' * 36}",
                description="",
                key_manager="CUSTOMER",
                state="Enabled",
                policy="{}",
                created_ms=1,
            )
        )
        conn.execute(
            insert(schema.iam_users).values(
                id="AIDAANA",
                account_id=ACCOUNT,
                name="ana",
                name_key="ana",
                path="/team/",
                arn=ANA,
                created_ms=GRANTED_MS - 1,
            )
        )
        # billing was deleted and created again after the grants were made: the role of
        # that name now is not the one they named.
        conn.execute(
            insert(schema.iam_roles).values(
                id="AROANEWBILLING",
                account_id=ACCOUNT,
                name="billing",
                name_key="billing",
                path="/",
                arn=BILLING,
                trust_policy="{}",
                max_session_duration=3600,
                created_ms=GRANTED_MS + 1,
            )
        )
        for grant in (
            _grant("a", ANA, BILLING),
            _grant("b", BILLING, ANA),
            _grant("c", GONE, None),
            _grant("d", ROOT, SESSION),
        ):
            conn.execute(insert(schema.kms_grants).values(**grant))
    store.migrate()
    assert _stored(store) == {
        "a": ("AIDAANA", BILLING),  # ana existed: bound; billing is not the same role
        "b": (BILLING, "AIDAANA"),
        "c": (GONE, None),  # no such user: names nobody
        "d": (ROOT, SESSION),  # not users or roles: as they were
    }
    # What the stored values name now: ana by her id; nobody by billing's or gone's ARN,
    # not even the role called billing today.
    ana = Principal(ACCOUNT, ANA, "AKIAANA", unique_id="AIDAANA")
    new_billing = Principal(
        ACCOUNT,
        SESSION,
        "ASIAB",
        kind="assumed-role",
        identity_arn=BILLING,
        unique_id="AROANEWBILLING:worker",
    )
    assert grantee_matches("AIDAANA", ana)
    assert not grantee_matches(BILLING, new_billing)
    assert not grantee_matches(GONE, Principal(ACCOUNT, GONE, "AKIAG", unique_id="AIDANEW"))

    # Downgraded, the ids of existing entities are ARNs again.
    _at(store, "0012_function_logs", down=True)
    assert _stored(store) == {
        "a": (ANA, BILLING),
        "b": (BILLING, ANA),
        "c": (GONE, None),
        "d": (ROOT, SESSION),
    }
    store.dispose()
