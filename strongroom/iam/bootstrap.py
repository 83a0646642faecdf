"""The identities Strongroom creates itself: the bootstrap administrator and the role AWS
Organizations gives a new member account."""

from __future__ import annotations

import json

from sqlalchemy import Connection

from strongroom.iam import managed_policies, policy_rows
from strongroom.iam import repository as repo
from strongroom.iam.common import ADMIN_USER, DEFAULT_SESSION_DURATION, entity_arn, new_id
from strongroom.iam.repository import RoleRecord, UserRecord


def create_admin_user(conn: Connection, account_id: str, now_ms: int) -> UserRecord:
    """The bootstrap administrator ``user/admin`` with AdministratorAccess attached, inside
    the caller's transaction (``strongroom init`` and ``--dev``). Its access key is made by
    the caller, for :func:`strongroom.iam.credentials.admin_arn`."""
    user = UserRecord(
        id=new_id("AIDA"),
        account_id=account_id,
        name=ADMIN_USER,
        name_key=ADMIN_USER,
        path="/",
        arn=entity_arn(account_id, "user", "/", ADMIN_USER),
        permissions_boundary=None,
        tags=None,
        created_ms=now_ms,
        password_last_used_ms=None,
    )
    repo.insert_entity(conn, "user", user)
    policy_rows.attach(
        conn, "user", user.id, account_id, managed_policies.ADMINISTRATOR_ACCESS.arn, now_ms
    )
    repo.bump_generation(conn)
    return user


def trust_account_document(trusted_account_id: str) -> str:
    """A trust policy that lets ``trusted_account_id`` (its identity policies deciding who)
    assume the role: the one AWS Organizations gives OrganizationAccountAccessRole."""
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{trusted_account_id}:root"},
        "Action": "sts:AssumeRole",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def create_account_access_role(
    conn: Connection, account_id: str, role_name: str, trusted_account_id: str, now_ms: int
) -> RoleRecord:
    """The administrator role AWS Organizations creates in a new member account: trusted by
    the management account, with AdministratorAccess attached; inside the caller's
    transaction (Organizations CreateAccount)."""
    role = RoleRecord(
        id=new_id("AROA"),
        account_id=account_id,
        name=role_name,
        name_key=role_name.lower(),
        path="/",
        arn=entity_arn(account_id, "role", "/", role_name),
        description=None,
        trust_policy=trust_account_document(trusted_account_id),
        max_session_duration=DEFAULT_SESSION_DURATION,
        permissions_boundary=None,
        tags=None,
        created_ms=now_ms,
        last_used_ms=None,
        last_used_region=None,
    )
    repo.insert_entity(conn, "role", role)
    policy_rows.attach(
        conn, "role", role.id, account_id, managed_policies.ADMINISTRATOR_ACCESS.arn, now_ms
    )
    repo.bump_generation(conn)
    return role
