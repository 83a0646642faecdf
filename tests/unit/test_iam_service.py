"""The IAM domain (users, access keys, groups, roles, inline and managed policies,
permissions boundaries, login profiles) at domain level: a real data directory and SQLite
store, the service built from the deployment's store, barrier and clock.

Every refused call is checked for its exact error code (and AWS's message where AWS's
wording is on record) and for having changed nothing in the IAM tables.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import botocore.session
import pytest
from alembic import command
from alembic.config import Config
from botocore import handlers, parsers
from sqlalchemy import insert, select

from strongroom.clock import ManualClock
from strongroom.iam import managed_policies
from strongroom.iam.api import OPERATIONS, iam_operations
from strongroom.iam.credentials import admin_arn
from strongroom.iam.mfa import OPERATIONS as MFA_OPERATIONS
from strongroom.iam.mfa import MfaDevices
from strongroom.iam.service import IdentityService
from strongroom.keys.envelope import Barrier
from strongroom.protocol import query_codec
from strongroom.protocol.errors import ServiceError
from strongroom.server.deployment import DEV_ACCOUNT, Deployment, token_codec
from strongroom.store import schema
from strongroom.store.engine import MIGRATIONS, Store
from strongroom.types import Caller, PrincipalPolicies

ADMIN = Caller(DEV_ACCOUNT, "us-east-1", admin_arn(DEV_ACCOUNT))
ROLE_SESSION = Caller(
    DEV_ACCOUNT, "us-east-1", f"arn:aws:sts::{DEV_ACCOUNT}:assumed-role/deployer/ci"
)
ADMINISTRATOR_ACCESS = "arn:aws:iam::aws:policy/AdministratorAccess"
READ_ONLY_ACCESS = "arn:aws:iam::aws:policy/ReadOnlyAccess"
SECRETS_MANAGER_READ_WRITE = "arn:aws:iam::aws:policy/SecretsManagerReadWrite"
PASSWORD = "Corr3ct-Horse-Battery"


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


GET_DB_CREDENTIALS = document(
    {
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": f"arn:aws:secretsmanager:us-east-1:{DEV_ACCOUNT}:secret:MyApp/DBCredentials-*",
    }
)
LIST_SECRETS = document(
    {"Effect": "Allow", "Action": "secretsmanager:ListSecrets", "Resource": "*"}
)
TRUST_ACCOUNT = document(
    {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{DEV_ACCOUNT}:root"},
        "Action": "sts:AssumeRole",
    }
)

IAM_TABLES = (
    schema.iam_users,
    schema.iam_groups,
    schema.iam_group_members,
    schema.iam_roles,
    schema.iam_inline_policies,
    schema.iam_policies,
    schema.iam_policy_versions,
    schema.iam_attachments,
    schema.iam_login_profiles,
    schema.iam_generation,
    schema.access_keys,
)


@pytest.fixture
def iam(deployment: Deployment) -> IdentityService:
    return IdentityService(deployment.store, deployment.barrier, deployment.clock)


def snapshot(deployment: Deployment) -> dict[str, list[str]]:
    with deployment.store.read() as conn:
        return {
            table.name: sorted(repr(tuple(row)) for row in conn.execute(select(table)))
            for table in IAM_TABLES
        }


@pytest.fixture
def refused(deployment: Deployment) -> Callable[..., ServiceError]:
    """refused(call, code, message=None): ``call()`` fails with ``code`` (and ``message``)
    and leaves every IAM table as it was."""

    def check(call: Callable[[], Any], code: str, message: str | None = None) -> ServiceError:
        before = snapshot(deployment)
        with pytest.raises(ServiceError) as info:
            call()
        assert info.value.code == code, info.value.message
        if message is not None:
            assert info.value.message == message
        assert snapshot(deployment) == before
        return info.value

    return check


def user(iam: IdentityService, name: str, **extra: Any) -> dict[str, Any]:
    created: dict[str, Any] = iam.create_user(ADMIN, {"UserName": name, **extra})["User"]
    return created


def role(iam: IdentityService, name: str, **extra: Any) -> dict[str, Any]:
    params = {"RoleName": name, "AssumeRolePolicyDocument": TRUST_ACCOUNT, **extra}
    created: dict[str, Any] = iam.create_role(ADMIN, params)["Role"]
    return created


def policy(iam: IdentityService, name: str, text: str = LIST_SECRETS, **extra: Any) -> str:
    params = {"PolicyName": name, "PolicyDocument": text, **extra}
    arn: str = iam.create_policy(ADMIN, params)["Policy"]["Arn"]
    return arn


def local_arn(name: str, path: str = "/") -> str:
    return f"arn:aws:iam::{DEV_ACCOUNT}:policy{path}{name}"


def all_pages(call: Callable[[dict[str, Any]], dict[str, Any]], member: str, **params: Any) -> Any:
    items: list[Any] = []
    marker = None
    while True:
        page = call({**params, **({"Marker": marker} if marker else {})})
        items += page[member]
        if not page["IsTruncated"]:
            assert "Marker" not in page
            return items
        marker = page["Marker"]


# The facade ------------------------------------------------------------------------------


def test_the_facade_maps_every_operation_to_a_method_of_the_model(
    iam: IdentityService, deployment: Deployment
) -> None:
    model = botocore.session.get_session().get_service_model("iam")
    mfa = MfaDevices(iam.store, deployment.barrier, deployment.clock, iam.tokens)
    handlers_by_name = iam_operations(iam, mfa)
    assert set(handlers_by_name) == set(OPERATIONS) | set(MFA_OPERATIONS)
    assert set(handlers_by_name) <= set(model.operation_names)
    assert handlers_by_name["EnableMFADevice"].__name__ == "enable_mfa_device"
    assert handlers_by_name["GetAccessKeyLastUsed"].__name__ == "get_access_key_last_used"


# Bootstrap -------------------------------------------------------------------------------


def test_the_bootstrap_admin_is_a_real_user_with_administrator_access(
    deployment: Deployment, iam: IdentityService
) -> None:
    admin = iam.get_user(ADMIN, {})["User"]
    assert admin["Arn"] == admin_arn(DEV_ACCOUNT)
    assert admin["UserName"] == "admin"
    attached = iam.list_attached("user", ADMIN, {"UserName": "admin"})["AttachedPolicies"]
    assert attached == [{"PolicyName": "AdministratorAccess", "PolicyArn": ADMINISTRATOR_ACCESS}]
    keys = iam.list_access_keys(ADMIN, {})["AccessKeyMetadata"]
    assert [key["AccessKeyId"] for key in keys] == ["test"]
    found = deployment.credentials.lookup("test")
    assert found is not None and found.principal.arn == admin["Arn"]
    policies = iam.principal_policies(admin["Arn"])
    assert policies is not None
    assert policies.identity == [
        (f"managed policy {ADMINISTRATOR_ACCESS}", managed_policies.ADMINISTRATOR_ACCESS.document)
    ]
    assert policies.user_name == "admin" and policies.user_id == admin["UserId"]


def test_migration_makes_key_holders_of_an_older_deployment_real_users(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'old.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
    with store.engine.begin() as conn:
        conn.execute(
            insert(schema.accounts).values(account_id="111122223333", name="m", created_ms=5)
        )
        for key_id, arn in (
            ("AKIAOLDADMIN", "arn:aws:iam::111122223333:user/admin"),
            ("AKIAOLDCI", "arn:aws:iam::111122223333:user/ci/deployer"),
        ):
            conn.execute(
                insert(schema.access_keys).values(
                    access_key_id=key_id,
                    account_id="111122223333",
                    principal_arn=arn,
                    secret_ciphertext=b"sealed",
                    status="Active",
                    created_ms=5,
                )
            )
    store.migrate()
    with store.read() as conn:
        users = {row.arn: row for row in conn.execute(select(schema.iam_users))}
        attachments = conn.execute(select(schema.iam_attachments)).all()
    store.dispose()
    assert set(users) == {
        "arn:aws:iam::111122223333:user/admin",
        "arn:aws:iam::111122223333:user/ci/deployer",
    }
    deployer = users["arn:aws:iam::111122223333:user/ci/deployer"]
    assert (deployer.name, deployer.path, deployer.created_ms) == ("deployer", "/ci/", 5)
    admin = users["arn:aws:iam::111122223333:user/admin"]
    assert admin.id.startswith("AIDA") and len(admin.id) == 21
    assert [(a.principal_id, a.policy_arn) for a in attachments] == [
        (admin.id, ADMINISTRATOR_ACCESS)
    ]


# Users -----------------------------------------------------------------------------------


def test_create_user_answers_the_user_shape(iam: IdentityService, clock: ManualClock) -> None:
    created = user(iam, "bob")
    assert set(created) == {"Path", "UserName", "UserId", "Arn", "CreateDate"}
    assert created["UserId"].startswith("AIDA") and len(created["UserId"]) == 21
    assert created["UserId"].isalnum() and created["UserId"].isupper()
    assert created["Arn"] == f"arn:aws:iam::{DEV_ACCOUNT}:user/bob"
    assert created["CreateDate"] == clock.now()
    assert iam.get_user(ADMIN, {"UserName": "bob"})["User"] == created


def test_create_user_with_path_tags_and_boundary(iam: IdentityService) -> None:
    created = user(
        iam,
        "carol",
        Path="/team/app/",
        Tags=[{"Key": "team", "Value": "payments"}],
        PermissionsBoundary=SECRETS_MANAGER_READ_WRITE,
    )
    assert created["Arn"] == f"arn:aws:iam::{DEV_ACCOUNT}:user/team/app/carol"
    assert created["Path"] == "/team/app/"
    assert created["Tags"] == [{"Key": "team", "Value": "payments"}]
    boundary = {
        "PermissionsBoundaryType": "PermissionsBoundaryPolicy",
        "PermissionsBoundaryArn": SECRETS_MANAGER_READ_WRITE,
    }
    assert created["PermissionsBoundary"] == boundary
    got = iam.get_user(ADMIN, {"UserName": "carol"})["User"]
    assert got["Tags"] == created["Tags"] and got["PermissionsBoundary"] == boundary
    listed = [u for u in iam.list_users(ADMIN, {})["Users"] if u["UserName"] == "carol"]
    assert "Tags" not in listed[0] and "PermissionsBoundary" not in listed[0]


def test_create_user_refusals(iam: IdentityService, refused: Callable[..., ServiceError]) -> None:
    user(iam, "bob")
    refused(lambda: user(iam, "BOB"), "EntityAlreadyExists", "User with name BOB already exists.")
    refused(
        lambda: user(iam, "dave", PermissionsBoundary=local_arn("missing")),
        "NoSuchEntity",
        f"Scope ARN: {local_arn('missing')} does not exist or is not attachable.",
    )
    refused(
        lambda: user(iam, "dave", PermissionsBoundary="arn:aws:iam::aws:polcy/x"),
        "InvalidInput",
        "ARN arn:aws:iam::aws:polcy/x is not valid.",
    )
    refused(
        lambda: user(iam, "dave", Tags=[{"Key": "a", "Value": "1"}, {"Key": "A", "Value": "2"}]),
        "InvalidInput",
        "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
    )


def test_get_user_defaults_to_the_caller_and_knows_who_is_not_a_user(
    iam: IdentityService, refused: Callable[..., ServiceError]
) -> None:
    assert iam.get_user(ADMIN, {})["User"]["UserName"] == "admin"
    refused(
        lambda: iam.get_user(ADMIN, {"UserName": "nobody"}),
        "NoSuchEntity",
        "The user with name nobody cannot be found.",
    )
    refused(
        lambda: iam.get_user(ROLE_SESSION, {}),
        "ValidationError",
        "Must specify userName when calling with non-User credentials",
    )
    assert iam.get_user(ADMIN, {"UserName": "ADMIN"})["User"]["UserName"] == "admin"


def test_list_users_pages_in_name_order_and_filters_by_path(
    iam: IdentityService, refused: Callable[..., ServiceError]
) -> None:
    for name in ("erin", "Bob", "dave", "carol", "alice"):
        user(iam, name, Path="/eng/" if name in ("dave", "erin") else "/")
    first = iam.list_users(ADMIN, {"MaxItems": 2})
    assert [u["UserName"] for u in first["Users"]] == ["admin", "alice"]
    assert first["IsTruncated"] is True
    names = [
        u["UserName"] for u in all_pages(lambda p: iam.list_users(ADMIN, p), "Users", MaxItems=2)
    ]
    assert names == ["admin", "alice", "Bob", "carol", "dave", "erin"]
    eng = iam.list_users(ADMIN, {"PathPrefix": "/eng/"})
    assert [u["UserName"] for u in eng["Users"]] == ["dave", "erin"] and not eng["IsTruncated"]
    refused(
        lambda: iam.list_users(ADMIN, {"Marker": "garbage!"}), "InvalidInput", "Invalid Marker."
    )
    # A marker of one listing is not valid for another.
    refused(
        lambda: iam.list_roles(ADMIN, {"Marker": first["Marker"]}),
        "InvalidInput",
        "Invalid Marker.",
    )
    # A marker is signed: one written by hand (the unsigned form IAM once used) is refused,
    # and so is a genuine one with a byte changed.
    forged = base64.urlsafe_b64encode(b'["ListUsers","bob"]').decode().rstrip("=")
    refused(lambda: iam.list_users(ADMIN, {"Marker": forged}), "InvalidInput", "Invalid Marker.")
    edited = (
        first["Marker"][:-2] + ("A" if first["Marker"][-2] != "A" else "B") + first["Marker"][-1]
    )
    refused(lambda: iam.list_users(ADMIN, {"Marker": edited}), "InvalidInput", "Invalid Marker.")


def test_a_marker_from_one_worker_reads_on_another(deployment: Deployment) -> None:
    """Workers share the deployment's token key, so a listing continues on any of them."""

    def worker() -> IdentityService:
        d = deployment
        return IdentityService(d.store, d.barrier, d.clock, tokens=token_codec(d.store, d.barrier))

    one, another = worker(), worker()
    for name in ("alice", "bob", "carol"):
        user(one, name)
    first = one.list_users(ADMIN, {"MaxItems": 2})
    rest = another.list_users(ADMIN, {"Marker": first["Marker"]})
    assert [u["UserName"] for u in first["Users"] + rest["Users"]] == [
        "admin",
        "alice",
        "bob",
        "carol",
    ]


def test_update_user_renames_and_moves_and_keys_follow(
    deployment: Deployment, iam: IdentityService, refused: Callable[..., ServiceError]
) -> None:
    user(iam, "bob")
    user(iam, "carol")
    key_id = iam.create_access_key(ADMIN, {"UserName": "bob"})["AccessKey"]["AccessKeyId"]
    refused(
        lambda: iam.update_user(ADMIN, {"UserName": "bob", "NewUserName": "Carol"}),
        "EntityAlreadyExists",
        "User with name Carol already exists.",
    )
    refused(
        lambda: iam.update_user(ADMIN, {"UserName": "nobody", "NewUserName": "x"}),
        "NoSuchEntity",
        "The user with name nobody cannot be found.",
    )
    assert (
        iam.update_user(ADMIN, {"UserName": "bob", "NewUserName": "robert", "NewPath": "/ops/"})
        == {}
    )
    moved = iam.get_user(ADMIN, {"UserName": "robert"})["User"]
    assert moved["Arn"] == f"arn:aws:iam::{DEV_ACCOUNT}:user/ops/robert"
    found = deployment.credentials.lookup(key_id)
    assert found is not None and found.principal.arn == moved["Arn"]
    refused(lambda: iam.get_user(ADMIN, {"UserName": "bob"}), "NoSuchEntity")
    iam.update_user(ADMIN, {"UserName": "robert", "NewUserName": "Robert"})  # case only
    assert iam.get_user(ADMIN, {"UserName": "robert"})["User"]["UserName"] == "Robert"


def test_delete_user_refuses_while_anything_is_attached_in_aws_order(
    iam: IdentityService, refused: Callable[..., ServiceError]
) -> None:
    user(iam, "bob")
    iam.create_group(ADMIN, {"GroupName": "devs"})
    iam.add_user_to_group(ADMIN, {"GroupName": "devs", "UserName": "bob"})
    iam.attach("user", ADMIN, {"UserName": "bob", "PolicyArn": READ_ONLY_ACCESS})
    iam.put_inline(
        "user", ADMIN, {"UserName": "bob", "PolicyName": "p", "PolicyDocument": LIST_SECRETS}
    )
    key_id = iam.create_access_key(ADMIN, {"UserName": "bob"})["AccessKey"]["AccessKeyId"]
    iam.create_login_profile(ADMIN, {"UserName": "bob", "Password": PASSWORD})
    delete = lambda: iam.delete_user(ADMIN, {"UserName": "bob"})  # noqa: E731
    steps = [
        (
            "must delete login profile first.",
            lambda: iam.delete_login_profile(ADMIN, {"UserName": "bob"}),
        ),
        (
            "must delete access keys first.",
            lambda: iam.delete_access_key(ADMIN, {"UserName": "bob", "AccessKeyId": key_id}),
        ),
        (
            "must delete policies first.",
            lambda: iam.delete_inline("user", ADMIN, {"UserName": "bob", "PolicyName": "p"}),
        ),
        (
            "must detach all policies first.",
            lambda: iam.detach("user", ADMIN, {"UserName": "bob", "PolicyArn": READ_ONLY_ACCESS}),
        ),
        (
            "must remove users from group first.",
            lambda: iam.remove_user_from_group(ADMIN, {"GroupName": "devs", "UserName": "bob"}),
        ),
    ]
    for message, remove in steps:
        refused(delete, "DeleteConflict", f"Cannot delete entity, {message}")
        remove()
    assert delete() == {}
    refused(delete, "NoSuchEntity", "The user with name bob cannot be found.")
    assert iam.get_group(ADMIN, {"GroupName": "devs"})["Users"] == []


def test_user_tags_merge_ignoring_case_untag_and_list_in_pages(
    iam: IdentityService, refused: Callable[..., ServiceError]
) -> None:
    user(iam, "bob", Tags=[{"Key": "Team", "Value": "a"}])
    iam.tag(
        "user",
        ADMIN,
        {
            "UserName": "bob",
            "Tags": [{"Key": "team", "Value": "b"}, {"Key": "env", "Value": "prod"}],
        },
    )
    listed = iam.list_tags("user", ADMIN, {"UserName": "bob"})
    assert listed == {
        "Tags": [{"Key": "team", "Value": "b"}, {"Key": "env", "Value": "prod"}],
        "IsTruncated": False,
    }
    assert (
        all_pages(lambda p: iam.list_tags("user", ADMIN, p), "Tags", UserName="bob", MaxItems=1)
        == listed["Tags"]
    )
    iam.untag("user", ADMIN, {"UserName": "bob", "TagKeys": ["TEAM", "absent"]})
    assert iam.list_tags("user", ADMIN, {"UserName": "bob"})["Tags"] == [
        {"Key": "env", "Value": "prod"}
    ]
    many = [{"Key": f"k{i}", "Value": "v"} for i in range(50)]
    refused(
        lambda: iam.tag("user", ADMIN, {"UserName": "bob", "Tags": many}),
        "LimitExceeded",
        "Cannot exceed quota for TagsPerUser: 50",
    )
    refused(
        lambda: iam.tag("user", ADMIN, {"UserName": "nobody", "Tags": many[:1]}),
        "NoSuchEntity",
        "The user with name nobody cannot be found.",
    )
    refused(lambda: iam.list_tags("user", ADMIN, {"UserName": "nobody"}), "NoSuchEntity")
    refused(
        lambda: iam.untag("user", ADMIN, {"UserName": "nobody", "TagKeys": ["a"]}), "NoSuchEntity"
    )


# Access keys -----------------------------------------------------------------------------


def test_create_access_key_signs_as_the_user(
    deployment: Deployment, iam: IdentityService, clock: ManualClock
) -> None:
    bob = user(iam, "bob")
    key = iam.create_access_key(ADMIN, {"UserName": "bob"})["AccessKey"]
    assert set(key) == {"UserName", "AccessKeyId", "Status", "SecretAccessKey", "CreateDate"}
    assert key["AccessKeyId"].startswith("AKIA") and len(key["AccessKeyId"]) == 20
    assert len(key["SecretAccessKey"]) == 40
    assert (key["UserName"], key["Status"], key["CreateDate"]) == ("bob", "Active", clock.now())
    found = deployment.credentials.lookup(key["AccessKeyId"])
    assert found is not None
    assert found.secret_access_key == key["SecretAccessKey"]
    assert found.principal.arn == bob["Arn"]
    with deployment.store.read() as conn:
        sealed = conn.execute(select(schema.access_keys.c.secret_ciphertext)).all()
    assert all(key["SecretAccessKey"].encode() not in row[0] for row in sealed)


def test_a_user_has_at_most_two_access_keys(
    iam: IdentityService, refused: Callable[..., ServiceError]
) -> None:
    user(iam, "bob")
    iam.create_access_key(ADMIN, {"UserName": "bob"})
    second = iam.create_access_key(ADMIN, {"UserName": "bob"})["AccessKey"]["AccessKeyId"]
    iam.update_access_key(ADMIN, {"UserName": "bob", "AccessKeyId": second, "Status": "Inactive"})
    refused(
        lambda: iam.create_access_key(ADMIN, {"UserName": "bob"}),
        "LimitExceeded",
        "Cannot exceed quota for AccessKeysPerUser: 2",
    )
    refused(lambda: iam.create_access_key(ADMIN, {"UserName": "nobody"}), "NoSuchEntity")
    # Without UserName the key is the caller's own: admin holds one ("test").
    assert iam.create_access_key(ADMIN, {})["AccessKey"]["UserName"] == "admin"
    refused(lambda: iam.create_access_key(ADMIN, {}), "LimitExceeded")


def test_list_update_and_delete_access_keys(
    deployment: Deployment,
    iam: IdentityService,
    clock: ManualClock,
    refused: Callable[..., ServiceError],
) -> None:
    user(iam, "bob")
    user(iam, "carol")
    first = iam.create_access_key(ADMIN, {"UserName": "bob"})["AccessKey"]["AccessKeyId"]
    clock.advance(timedelta(seconds=5))
    second = iam.create_access_key(ADMIN, {"UserName": "bob"})["AccessKey"]["AccessKeyId"]
    listed = iam.list_access_keys(ADMIN, {"UserName": "bob"})
    assert [k["AccessKeyId"] for k in listed["AccessKeyMetadata"]] == [first, second]
    assert set(listed["AccessKeyMetadata"][0]) == {
        "UserName",
        "AccessKeyId",
        "Status",
        "CreateDate",
    }
    paged = all_pages(
        lambda p: iam.list_access_keys(ADMIN, p), "AccessKeyMetadata", UserName="bob", MaxItems=1
    )
    assert paged == listed["AccessKeyMetadata"]

    iam.update_access_key(ADMIN, {"UserName": "bob", "AccessKeyId": first, "Status": "Inactive"})
    found = deployment.credentials.lookup(first)
    assert found is not None and found.status == "Inactive"
    iam.update_access_key(ADMIN, {"UserName": "bob", "AccessKeyId": first, "Status": "Active"})
    refused(
        lambda: iam.update_access_key(
            ADMIN, {"UserName": "bob", "AccessKeyId": first, "Status": "Expired"}
        ),
        "InvalidInput",
    )
    for call in (
        lambda: iam.update_access_key(
            ADMIN, {"UserName": "carol", "AccessKeyId": first, "Status": "Inactive"}
        ),
        lambda: iam.delete_access_key(ADMIN, {"UserName": "carol", "AccessKeyId": first}),
        lambda: iam.delete_access_key(
            ADMIN, {"UserName": "bob", "AccessKeyId": "AKIANOTAKEYATALL000"}
        ),
    ):
        refused(call, "NoSuchEntity")
    refused(
        lambda: iam.delete_access_key(ADMIN, {"UserName": "carol", "AccessKeyId": first}),
        "NoSuchEntity",
        f"The Access Key with id {first} cannot be found.",
    )
    iam.delete_access_key(ADMIN, {"UserName": "bob", "AccessKeyId": first})
    assert deployment.credentials.lookup(first) is None
    assert [
        k["AccessKeyId"]
        for k in iam.list_access_keys(ADMIN, {"UserName": "bob"})["AccessKeyMetadata"]
    ] == [second]
    refused(
        lambda: iam.list_access_keys(ROLE_SESSION, {}),
        "ValidationError",
        "Must specify userName when calling with non-User credentials",
    )


def test_last_use_is_recorded_at_most_once_a_minute(
    deployment: Deployment,
    iam: IdentityService,
    clock: ManualClock,
    refused: Callable[..., ServiceError],
) -> None:
    user(iam, "bob")
    key_id = iam.create_access_key(ADMIN, {"UserName": "bob"})["AccessKey"]["AccessKeyId"]
    never = iam.get_access_key_last_used(ADMIN, {"AccessKeyId": key_id})
    assert never == {
        "UserName": "bob",
        "AccessKeyLastUsed": {"ServiceName": "N/A", "Region": "N/A"},
    }
    credentials = deployment.credentials
    used_at = clock.now()
    credentials.note_use(key_id, "secretsmanager", "eu-west-1")
    clock.advance(timedelta(seconds=30))
    credentials.note_use(key_id, "kms", "us-east-1")  # within the minute: not written
    assert iam.get_access_key_last_used(ADMIN, {"AccessKeyId": key_id})["AccessKeyLastUsed"] == {
        "LastUsedDate": used_at,
        "ServiceName": "secretsmanager",
        "Region": "eu-west-1",
    }
    clock.advance(timedelta(seconds=31))
    credentials.note_use(key_id, "kms", "us-east-1")
    last = iam.get_access_key_last_used(ADMIN, {"AccessKeyId": key_id})["AccessKeyLastUsed"]
    assert (last["ServiceName"], last["LastUsedDate"]) == ("kms", clock.now())
    refused(
        lambda: iam.get_access_key_last_used(ADMIN, {"AccessKeyId": "AKIAUNKNOWNKEY000000"}),
        "NoSuchEntity",
        "The Access Key with id AKIAUNKNOWNKEY000000 cannot be found.",
    )
    other_account = Caller("111122223333", "us-east-1", "arn:aws:iam::111122223333:user/x")
    refused(
        lambda: iam.get_access_key_last_used(other_account, {"AccessKeyId": key_id}), "NoSuchEntity"
    )


# Groups ----------------------------------------------------------------------------------


def test_groups_membership_and_listing(
    iam: IdentityService, clock: ManualClock, refused: Callable[..., ServiceError]
) -> None:
    created = iam.create_group(ADMIN, {"GroupName": "devs", "Path": "/eng/"})["Group"]
    assert set(created) == {"Path", "GroupName", "GroupId", "Arn", "CreateDate"}
    assert created["GroupId"].startswith("AGPA") and len(created["GroupId"]) == 21
    assert created["Arn"] == f"arn:aws:iam::{DEV_ACCOUNT}:group/eng/devs"
    assert created["CreateDate"] == clock.now()
    iam.create_group(ADMIN, {"GroupName": "ops"})
    refused(
        lambda: iam.create_group(ADMIN, {"GroupName": "DEVS"}),
        "EntityAlreadyExists",
        "Group with name DEVS already exists.",
    )
    for name in ("carol", "bob", "alice"):
        user(iam, name)
        iam.add_user_to_group(ADMIN, {"GroupName": "devs", "UserName": name})
    iam.add_user_to_group(ADMIN, {"GroupName": "devs", "UserName": "bob"})  # already in: no-op
    iam.add_user_to_group(ADMIN, {"GroupName": "ops", "UserName": "bob"})
    got = iam.get_group(ADMIN, {"GroupName": "devs"})
    assert got["Group"] == created and got["IsTruncated"] is False
    assert [u["UserName"] for u in got["Users"]] == ["alice", "bob", "carol"]
    paged = all_pages(lambda p: iam.get_group(ADMIN, p), "Users", GroupName="devs", MaxItems=2)
    assert [u["UserName"] for u in paged] == ["alice", "bob", "carol"]
    assert [g["GroupName"] for g in iam.list_groups(ADMIN, {})["Groups"]] == ["devs", "ops"]
    assert [g["GroupName"] for g in iam.list_groups(ADMIN, {"PathPrefix": "/eng"})["Groups"]] == [
        "devs"
    ]
    mine = iam.list_groups_for_user(ADMIN, {"UserName": "bob"})
    assert [g["GroupName"] for g in mine["Groups"]] == ["devs", "ops"]
    iam.remove_user_from_group(ADMIN, {"GroupName": "ops", "UserName": "bob"})
    refused(
        lambda: iam.remove_user_from_group(ADMIN, {"GroupName": "ops", "UserName": "bob"}),
        "NoSuchEntity",
    )
    refused(
        lambda: iam.get_group(ADMIN, {"GroupName": "nope"}),
        "NoSuchEntity",
        "The group with name nope cannot be found.",
    )
    refused(
        lambda: iam.add_user_to_group(ADMIN, {"GroupName": "devs", "UserName": "nobody"}),
        "NoSuchEntity",
    )
    refused(
        lambda: iam.add_user_to_group(ADMIN, {"GroupName": "nope", "UserName": "bob"}),
        "NoSuchEntity",
    )
    refused(lambda: iam.list_groups_for_user(ADMIN, {"UserName": "nobody"}), "NoSuchEntity")


def test_a_user_is_in_at_most_ten_groups(
    iam: IdentityService, refused: Callable[..., ServiceError]
) -> None:
    user(iam, "bob")
    for index in range(11):
        iam.create_group(ADMIN, {"GroupName": f"g{index:02d}"})
    for index in range(10):
        iam.add_user_to_group(ADMIN, {"GroupName": f"g{index:02d}", "UserName": "bob"})
    refused(
        lambda: iam.add_user_to_group(ADMIN, {"GroupName": "g10", "UserName": "bob"}),
        "LimitExceeded",
        "Cannot exceed quota for GroupsPerUser: 10",
    )


def test_delete_group_refuses_while_it_has_members_or_policies(
    iam: IdentityService, refused: Callable[..., ServiceError]
) -> None:
    iam.create_group(ADMIN, {"GroupName": "devs"})
    user(iam, "bob")
    iam.add_user_to_group(ADMIN, {"GroupName": "devs", "UserName": "bob"})
    iam.put_inline(
        "group", ADMIN, {"GroupName": "devs", "PolicyName": "p", "PolicyDocument": LIST_SECRETS}
    )
    iam.attach("group", ADMIN, {"GroupName": "devs", "PolicyArn": READ_ONLY_ACCESS})
    delete = lambda: iam.delete_group(ADMIN, {"GroupName": "devs"})  # noqa: E731
    steps = [
        (
            "must remove users from group first.",
            lambda: iam.remove_user_from_group(ADMIN, {"GroupName": "devs", "UserName": "bob"}),
        ),
        (
            "must delete policies first.",
            lambda: iam.delete_inline("group", ADMIN, {"GroupName": "devs", "PolicyName": "p"}),
        ),
        (
            "must detach all policies first.",
            lambda: iam.detach(
                "group", ADMIN, {"GroupName": "devs", "PolicyArn": READ_ONLY_ACCESS}
            ),
        ),
    ]
    for message, remove in steps:
        refused(delete, "DeleteConflict", f"Cannot delete entity, {message}")
        remove()
    assert delete() == {}
    refused(delete, "NoSuchEntity", "The group with name devs cannot be found.")


# Roles -----------------------------------------------------------------------------------


def test_create_role_answers_the_role_shape(iam: IdentityService, clock: ManualClock) -> None:
    created = role(
        iam,
        "deployer",
        Path="/ci/",
        Description="Deploys",
        MaxSessionDuration=7200,
        PermissionsBoundary=READ_ONLY_ACCESS,
        Tags=[{"Key": "team", "Value": "ops"}],
    )
    assert created["RoleId"].startswith("AROA") and len(created["RoleId"]) == 21
    assert created["Arn"] == f"arn:aws:iam::{DEV_ACCOUNT}:role/ci/deployer"
    assert unquote(created["AssumeRolePolicyDocument"]) == TRUST_ACCOUNT
    assert "%22" in created["AssumeRolePolicyDocument"]  # URL-encoded, as IAM answers
    assert (created["Description"], created["MaxSessionDuration"]) == ("Deploys", 7200)
    assert created["CreateDate"] == clock.now()
    got = iam.get_role(ADMIN, {"RoleName": "DEPLOYER"})["Role"]
    assert got == {**created, "RoleLastUsed": {}}
    listed = iam.list_roles(ADMIN, {})["Roles"]
    assert [r["RoleName"] for r in listed] == ["deployer"]
    assert not {"Tags", "PermissionsBoundary", "RoleLastUsed"} & set(listed[0])
    plain = role(iam, "plain")
    assert plain["MaxSessionDuration"] == 3600 and "Description" not in plain


def test_create_role_refusals(iam: IdentityService, refused: Callable[..., ServiceError]) -> None:
    role(iam, "deployer")
    refused(
        lambda: role(iam, "Deployer"),
        "EntityAlreadyExists",
        "Role with name Deployer already exists.",
    )
    for seconds, bound in (
        (3599, "greater than or equal to 3600"),
        (43201, "less than or equal to 43200"),
    ):
        refused(
            lambda s=seconds: role(iam, "r2", MaxSessionDuration=s),
            "ValidationError",
            f"1 validation error detected: Value '{seconds}' at 'maxSessionDuration' failed to "
            f"satisfy constraint: Member must have value {bound}",
        )
    with_resource = document(
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole", "Resource": "*"}
    )
    refused(
        lambda: role(iam, "r2", AssumeRolePolicyDocument=with_resource),
        "MalformedPolicyDocument",
        "Has prohibited field Resource",
    )
    no_principal = document({"Effect": "Allow", "Action": "sts:AssumeRole"})
    refused(
        lambda: role(iam, "r2", AssumeRolePolicyDocument=no_principal), "MalformedPolicyDocument"
    )
    refused(
        lambda: role(iam, "r2", AssumeRolePolicyDocument="{not json"), "MalformedPolicyDocument"
    )
    huge = document(
        {
            "Effect": "Allow",
            "Principal": {"AWS": [f"arn:aws:iam::{i:012d}:root" for i in range(80)]},
            "Action": "sts:AssumeRole",
        }
    )
    refused(
        lambda: role(iam, "r2", AssumeRolePolicyDocument=huge),
        "LimitExceeded",
        "Cannot exceed quota for ACLSizePerRole: 2048",
    )
    refused(
        lambda: role(iam, "r2", PermissionsBoundary=local_arn("nope")),
        "NoSuchEntity",
        f"Scope ARN: {local_arn('nope')} does not exist or is not attachable.",
    )


def test_update_roles_and_their_trust_policies(
    iam: IdentityService, refused: Callable[..., ServiceError]
) -> None:
    role(iam, "deployer", Description="old")
    trust_service = document(
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    )
    iam.update_assume_role_policy(ADMIN, {"RoleName": "deployer", "PolicyDocument": trust_service})
    iam.update_role(
        ADMIN, {"RoleName": "deployer", "Description": "new", "MaxSessionDuration": 43200}
    )
    got = iam.get_role(ADMIN, {"RoleName": "deployer"})["Role"]
    assert unquote(got["AssumeRolePolicyDocument"]) == trust_service
    assert (got["Description"], got["MaxSessionDuration"]) == ("new", 43200)
    refused(
        lambda: iam.update_assume_role_policy(
            ADMIN, {"RoleName": "deployer", "PolicyDocument": LIST_SECRETS}
        ),
        "MalformedPolicyDocument",
    )
    refused(
        lambda: iam.update_role(ADMIN, {"RoleName": "deployer", "MaxSessionDuration": 60}),
        "ValidationError",
    )
    refused(
        lambda: iam.update_role(ADMIN, {"RoleName": "nope"}),
        "NoSuchEntity",
        "The role with name nope cannot be found.",
    )
    iam.tag("role", ADMIN, {"RoleName": "deployer", "Tags": [{"Key": "a", "Value": "1"}]})
    assert iam.list_tags("role", ADMIN, {"RoleName": "deployer"})["Tags"] == [
        {"Key": "a", "Value": "1"}
    ]
    iam.untag("role", ADMIN, {"RoleName": "deployer", "TagKeys": ["A"]})
    assert iam.list_tags("role", ADMIN, {"RoleName": "deployer"})["Tags"] == []
    refused(lambda: iam.tag("role", ADMIN, {"RoleName": "nope", "Tags": []}), "NoSuchEntity")


def test_delete_role_refuses_while_it_has_policies(
    iam: IdentityService, refused: Callable[..., ServiceError]
) -> None:
    role(iam, "deployer")
    iam.put_inline(
        "role", ADMIN, {"RoleName": "deployer", "PolicyName": "p", "PolicyDocument": LIST_SECRETS}
    )
    iam.attach("role", ADMIN, {"RoleName": "deployer", "PolicyArn": READ_ONLY_ACCESS})
    delete = lambda: iam.delete_role(ADMIN, {"RoleName": "deployer"})  # noqa: E731
    refused(delete, "DeleteConflict", "Cannot delete entity, must delete policies first.")
    iam.delete_inline("role", ADMIN, {"RoleName": "deployer", "PolicyName": "p"})
    refused(delete, "DeleteConflict", "Cannot delete entity, must detach all policies first.")
    iam.detach("role", ADMIN, {"RoleName": "deployer", "PolicyArn": READ_ONLY_ACCESS})
    assert delete() == {}
    refused(delete, "NoSuchEntity", "The role with name deployer cannot be found.")


def test_role_query_for_sts_and_last_use(iam: IdentityService, clock: ManualClock) -> None:
    created = role(
        iam,
        "deployer",
        MaxSessionDuration=7200,
        PermissionsBoundary=READ_ONLY_ACCESS,
        Tags=[{"Key": "k", "Value": "v"}],
    )
    info = iam.role(DEV_ACCOUNT, "Deployer")
    assert info is not None
    assert (info.arn, info.role_id, info.role_name, info.path) == (
        created["Arn"],
        created["RoleId"],
        "deployer",
        "/",
    )
    assert (info.trust_policy, info.max_session_duration) == (TRUST_ACCOUNT, 7200)
    assert (info.permissions_boundary, info.tags) == (READ_ONLY_ACCESS, {"k": "v"})
    assert iam.role(DEV_ACCOUNT, "nope") is None
    assert iam.role("111122223333", "deployer") is None
    iam.record_role_use(DEV_ACCOUNT, "deployer", "eu-central-1")
    assert iam.get_role(ADMIN, {"RoleName": "deployer"})["Role"]["RoleLastUsed"] == {
        "LastUsedDate": clock.now(),
        "Region": "eu-central-1",
    }


# Inline policies -------------------------------------------------------------------------

KINDS = (("user", "UserName"), ("group", "GroupName"), ("role", "RoleName"))


def make_entity(iam: IdentityService, kind: str, name: str) -> None:
    if kind == "user":
        user(iam, name)
    elif kind == "group":
        iam.create_group(ADMIN, {"GroupName": name})
    else:
        role(iam, name)


def call(iam: IdentityService, verb: str, kind: str, params: dict[str, Any]) -> Any:
    """The operation <verb>_<kind>_<...> through the facade (the handlers of users, groups
    and roles are bound to their kind there), e.g. call(iam, "put_{}_policy", "user", {...})."""
    operation = "".join(part.title() for part in verb.format(kind).split("_"))
    # MFA devices are not exercised through this helper: a throwaway barrier will do.
    mfa = MfaDevices(iam.store, Barrier(os.urandom(32)), ManualClock(), iam.tokens)
    return iam_operations(iam, mfa)[operation](ADMIN, params)


@pytest.mark.parametrize(("kind", "member"), KINDS)
def test_inline_policies(
    iam: IdentityService, refused: Callable[..., ServiceError], kind: str, member: str
) -> None:
    make_entity(iam, kind, "subject")
    params = {member: "subject", "PolicyName": "read", "PolicyDocument": GET_DB_CREDENTIALS}
    assert call(iam, "put_{}_policy", kind, params) == {}
    call(
        iam, "put_{}_policy", kind, {**params, "PolicyName": "list", "PolicyDocument": LIST_SECRETS}
    )
    got = call(iam, "get_{}_policy", kind, {member: "SUBJECT", "PolicyName": "read"})
    assert got == {member: "subject", "PolicyName": "read", "PolicyDocument": got["PolicyDocument"]}
    assert unquote(got["PolicyDocument"]) == GET_DB_CREDENTIALS and "%3A" in got["PolicyDocument"]
    listed = call(iam, "list_{}_policies", kind, {member: "subject"})
    assert listed == {"PolicyNames": ["list", "read"], "IsTruncated": False}
    first = call(iam, "list_{}_policies", kind, {member: "subject", "MaxItems": 1})
    assert first["PolicyNames"] == ["list"] and first["IsTruncated"]
    rest = call(iam, "list_{}_policies", kind, {member: "subject", "Marker": first["Marker"]})
    assert rest == {"PolicyNames": ["read"], "IsTruncated": False}
    call(iam, "put_{}_policy", kind, {**params, "PolicyDocument": LIST_SECRETS})  # replaces
    got = call(iam, "get_{}_policy", kind, {member: "subject", "PolicyName": "read"})
    assert unquote(got["PolicyDocument"]) == LIST_SECRETS

    missing = f"The {kind} policy with name nope cannot be found."
    refused(
        lambda: call(iam, "get_{}_policy", kind, {member: "subject", "PolicyName": "nope"}),
        "NoSuchEntity",
        missing,
    )
    refused(
        lambda: call(iam, "delete_{}_policy", kind, {member: "subject", "PolicyName": "nope"}),
        "NoSuchEntity",
        missing,
    )
    refused(
        lambda: call(iam, "put_{}_policy", kind, {**params, "PolicyDocument": "{"}),
        "MalformedPolicyDocument",
    )
    with_principal = document(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}
    )
    refused(
        lambda: call(iam, "put_{}_policy", kind, {**params, "PolicyDocument": with_principal}),
        "MalformedPolicyDocument",
    )
    refused(
        lambda: call(iam, "put_{}_policy", kind, {**params, member: "nobody"}),
        "NoSuchEntity",
        f"The {kind} with name nobody cannot be found.",
    )
    refused(lambda: call(iam, "list_{}_policies", kind, {member: "nobody"}), "NoSuchEntity")
    call(iam, "delete_{}_policy", kind, {member: "subject", "PolicyName": "read"})
    assert call(iam, "list_{}_policies", kind, {member: "subject"})["PolicyNames"] == ["list"]


@pytest.mark.parametrize(
    ("kind", "member", "limit"),
    [("user", "UserName", 2048), ("group", "GroupName", 5120), ("role", "RoleName", 10240)],
)
def test_inline_policies_share_a_size_quota_per_entity(
    iam: IdentityService, refused: Callable[..., ServiceError], kind: str, member: str, limit: int
) -> None:
    make_entity(iam, kind, "subject")
    resources = [
        f"arn:aws:secretsmanager:us-east-1:{DEV_ACCOUNT}:secret:app/{i:04d}-*" for i in range(200)
    ]
    big = document(
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": resources}
    )
    count = 0
    while True:
        params = {member: "subject", "PolicyName": f"p{count}", "PolicyDocument": big}
        try:
            call(iam, "put_{}_policy", kind, params)
        except ServiceError as error:
            assert error.code == "LimitExceeded"
            assert (
                error.message == f"Maximum policy size of {limit} bytes exceeded for {kind} subject"
            )
            break
        count += 1
    assert len(call(iam, "list_{}_policies", kind, {member: "subject"})["PolicyNames"]) == count
    refused(lambda: call(iam, "put_{}_policy", kind, params), "LimitExceeded")


# Managed policies ------------------------------------------------------------------------


def test_create_and_get_a_customer_managed_policy(
    iam: IdentityService, clock: ManualClock, refused: Callable[..., ServiceError]
) -> None:
    created = iam.create_policy(
        ADMIN,
        {
            "PolicyName": "ReadDb",
            "Path": "/app/",
            "PolicyDocument": GET_DB_CREDENTIALS,
            "Description": "Read the DB credentials",
            "Tags": [{"Key": "team", "Value": "db"}],
        },
    )["Policy"]
    assert created["PolicyId"].startswith("ANPA") and len(created["PolicyId"]) == 21
    assert created["Arn"] == local_arn("ReadDb", "/app/")
    expected = {
        "PolicyName": "ReadDb",
        "PolicyId": created["PolicyId"],
        "Arn": created["Arn"],
        "Path": "/app/",
        "DefaultVersionId": "v1",
        "AttachmentCount": 0,
        "PermissionsBoundaryUsageCount": 0,
        "IsAttachable": True,
        "CreateDate": clock.now(),
        "UpdateDate": clock.now(),
        "Description": "Read the DB credentials",
        "Tags": [{"Key": "team", "Value": "db"}],
    }
    assert created == expected
    assert iam.get_policy(ADMIN, {"PolicyArn": created["Arn"]})["Policy"] == expected
    refused(
        lambda: policy(iam, "readdb"),
        "EntityAlreadyExists",
        "A policy called readdb already exists. Duplicate names are not allowed.",
    )
    refused(lambda: policy(iam, "Bad", "{}"), "MalformedPolicyDocument")
    refused(lambda: policy(iam, "Bad", TRUST_ACCOUNT), "MalformedPolicyDocument")
    resources = [
        f"arn:aws:secretsmanager:us-east-1:{DEV_ACCOUNT}:secret:app/{i:04d}-*" for i in range(100)
    ]
    huge = document(
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": resources}
    )
    refused(
        lambda: policy(iam, "Huge", huge),
        "LimitExceeded",
        "Cannot exceed quota for PolicySize: 6144",
    )
    refused(
        lambda: iam.get_policy(ADMIN, {"PolicyArn": local_arn("Nope")}),
        "NoSuchEntity",
        f"Policy {local_arn('Nope')} was not found.",
    )
    refused(
        lambda: iam.get_policy(ADMIN, {"PolicyArn": "arn:aws:iam::aws:policy"}),
        "InvalidInput",
        "ARN arn:aws:iam::aws:policy is not valid.",
    )
    elsewhere = "arn:aws:iam::111122223333:policy/app/ReadDb"
    refused(lambda: iam.get_policy(ADMIN, {"PolicyArn": elsewhere}), "NoSuchEntity")


def test_aws_managed_policies_are_there_and_read_only(
    iam: IdentityService, refused: Callable[..., ServiceError]
) -> None:
    got = iam.get_policy(ADMIN, {"PolicyArn": SECRETS_MANAGER_READ_WRITE})["Policy"]
    assert (got["PolicyName"], got["DefaultVersionId"], got["Path"]) == (
        "SecretsManagerReadWrite",
        "v6",
        "/",
    )
    assert got["Description"].startswith("Provides read/write access to AWS Secrets Manager")
    version = iam.get_policy_version(
        ADMIN, {"PolicyArn": SECRETS_MANAGER_READ_WRITE, "VersionId": "v6"}
    )
    text = json.loads(unquote(version["PolicyVersion"]["Document"]))
    assert text["Statement"][0]["Action"][0] == "secretsmanager:*"
    admin = iam.get_policy(ADMIN, {"PolicyArn": ADMINISTRATOR_ACCESS})["Policy"]
    assert (admin["PolicyId"], admin["AttachmentCount"]) == ("ANPAIWMBCKSKIEE64ZLYK", 1)
    read_only = json.loads(managed_policies.READ_ONLY_ACCESS.document)
    actions = [a for s in read_only["Statement"] for a in s["Action"]]
    assert "secretsmanager:GetSecretValue" not in actions and "secretsmanager:List*" in actions
    for name, call_it in (
        ("DeletePolicy", lambda: iam.delete_policy(ADMIN, {"PolicyArn": READ_ONLY_ACCESS})),
        (
            "CreatePolicyVersion",
            lambda: iam.create_policy_version(
                ADMIN, {"PolicyArn": READ_ONLY_ACCESS, "PolicyDocument": LIST_SECRETS}
            ),
        ),
        (
            "DeletePolicyVersion",
            lambda: iam.delete_policy_version(
                ADMIN, {"PolicyArn": READ_ONLY_ACCESS, "VersionId": "v1"}
            ),
        ),
        (
            "SetDefaultPolicyVersion",
            lambda: iam.set_default_policy_version(
                ADMIN, {"PolicyArn": READ_ONLY_ACCESS, "VersionId": "v1"}
            ),
        ),
    ):
        refused(
            call_it,
            "AccessDenied",
            f"User: {ADMIN.principal_arn} is not authorized to perform: iam:{name} "
            f"on resource: policy {READ_ONLY_ACCESS}",
        )
    refused(
        lambda: iam.get_policy_version(ADMIN, {"PolicyArn": READ_ONLY_ACCESS, "VersionId": "v1"}),
        "NoSuchEntity",
    )


@pytest.mark.parametrize("text", [m.document for m in managed_policies.CATALOGUE.values()])
def test_the_catalogue_documents_are_valid_identity_policies(
    iam: IdentityService, text: str
) -> None:
    policy(iam, "Copy", text)


def test_policy_versions(
    iam: IdentityService, clock: ManualClock, refused: Callable[..., ServiceError]
) -> None:
    arn = policy(iam, "Evolving", LIST_SECRETS)
    created_at = clock.now()
    for number in range(2, 6):
        clock.advance(timedelta(minutes=1))
        made = iam.create_policy_version(
            ADMIN,
            {"PolicyArn": arn, "PolicyDocument": GET_DB_CREDENTIALS, "SetAsDefault": number == 3},
        )["PolicyVersion"]
        assert made == {
            "VersionId": f"v{number}",
            "IsDefaultVersion": number == 3,
            "CreateDate": clock.now(),
        }
    refused(
        lambda: iam.create_policy_version(
            ADMIN, {"PolicyArn": arn, "PolicyDocument": LIST_SECRETS}
        ),
        "LimitExceeded",
        "A managed policy can have up to 5 versions. Before you create a new version, you must "
        "delete an existing version.",
    )
    got = iam.get_policy(ADMIN, {"PolicyArn": arn})["Policy"]
    assert (got["DefaultVersionId"], got["CreateDate"], got["UpdateDate"]) == (
        "v3",
        created_at,
        clock.now(),
    )
    versions = iam.list_policy_versions(ADMIN, {"PolicyArn": arn})
    assert [v["VersionId"] for v in versions["Versions"]] == ["v5", "v4", "v3", "v2", "v1"]
    assert [v["IsDefaultVersion"] for v in versions["Versions"]] == [
        False,
        False,
        True,
        False,
        False,
    ]
    assert all("Document" not in v for v in versions["Versions"])
    paged = all_pages(
        lambda p: iam.list_policy_versions(ADMIN, p), "Versions", PolicyArn=arn, MaxItems=2
    )
    assert paged == versions["Versions"]
    v1 = iam.get_policy_version(ADMIN, {"PolicyArn": arn, "VersionId": "v1"})["PolicyVersion"]
    assert unquote(v1["Document"]) == LIST_SECRETS and v1["IsDefaultVersion"] is False
    refused(
        lambda: iam.get_policy_version(ADMIN, {"PolicyArn": arn, "VersionId": "v9"}),
        "NoSuchEntity",
        f"Policy {arn} version v9 does not exist or is not attachable.",
    )
    refused(
        lambda: iam.delete_policy_version(ADMIN, {"PolicyArn": arn, "VersionId": "v3"}),
        "DeleteConflict",
        "Cannot delete the default version of a policy.",
    )
    refused(
        lambda: iam.delete_policy_version(ADMIN, {"PolicyArn": arn, "VersionId": "v9"}),
        "NoSuchEntity",
    )
    refused(
        lambda: iam.set_default_policy_version(ADMIN, {"PolicyArn": arn, "VersionId": "v9"}),
        "NoSuchEntity",
    )
    iam.set_default_policy_version(ADMIN, {"PolicyArn": arn, "VersionId": "v1"})
    iam.delete_policy_version(ADMIN, {"PolicyArn": arn, "VersionId": "v5"})
    made = iam.create_policy_version(ADMIN, {"PolicyArn": arn, "PolicyDocument": LIST_SECRETS})
    assert made["PolicyVersion"]["VersionId"] == "v6"  # version ids are never reused
    refused(
        lambda: iam.create_policy_version(
            ADMIN, {"PolicyArn": local_arn("Nope"), "PolicyDocument": LIST_SECRETS}
        ),
        "NoSuchEntity",
        f"Policy {local_arn('Nope')} was not found.",
    )
    refused(
        lambda: iam.create_policy_version(ADMIN, {"PolicyArn": arn, "PolicyDocument": "[]"}),
        "MalformedPolicyDocument",
    )


def test_delete_policy_refuses_while_attached_used_as_boundary_or_versioned(
    iam: IdentityService, refused: Callable[..., ServiceError]
) -> None:
    arn = policy(iam, "Shared")
    user(iam, "bob")
    role(iam, "deployer")
    iam.attach("user", ADMIN, {"UserName": "bob", "PolicyArn": arn})
    iam.put_boundary("role", ADMIN, {"RoleName": "deployer", "PermissionsBoundary": arn})
    iam.create_policy_version(ADMIN, {"PolicyArn": arn, "PolicyDocument": GET_DB_CREDENTIALS})
    delete = lambda: iam.delete_policy(ADMIN, {"PolicyArn": arn})  # noqa: E731
    refused(delete, "DeleteConflict", "Cannot delete a policy attached to entities.")
    iam.detach("user", ADMIN, {"UserName": "bob", "PolicyArn": arn})
    refused(delete, "DeleteConflict", "Cannot delete a policy attached to entities.")
    iam.delete_boundary("role", ADMIN, {"RoleName": "deployer"})
    refused(
        delete,
        "DeleteConflict",
        "This policy has more than one version. Before you delete a policy, you must delete "
        "the policy's versions. The default version is deleted with the policy.",
    )
    iam.delete_policy_version(ADMIN, {"PolicyArn": arn, "VersionId": "v2"})
    assert delete() == {}
    refused(delete, "NoSuchEntity", f"Policy {arn} was not found.")
    arn_again = policy(iam, "Shared")  # the name is free again; the id is new
    assert arn_again == arn


@pytest.mark.parametrize(("kind", "member"), KINDS)
def test_attach_detach_and_list_attached_policies(
    iam: IdentityService, refused: Callable[..., ServiceError], kind: str, member: str
) -> None:
    make_entity(iam, kind, "subject")
    mine = policy(iam, "Mine", Path="/app/")
    attach = lambda arn: call(iam, "attach_{}_policy", kind, {member: "subject", "PolicyArn": arn})  # noqa: E731
    assert attach(mine) == {}
    attach(READ_ONLY_ACCESS)
    attach(mine)  # attaching again changes nothing
    listed = call(iam, "list_attached_{}_policies", kind, {member: "subject"})
    assert listed == {
        "AttachedPolicies": [
            {"PolicyName": "Mine", "PolicyArn": mine},
            {"PolicyName": "ReadOnlyAccess", "PolicyArn": READ_ONLY_ACCESS},
        ],
        "IsTruncated": False,
    }
    only_app = call(
        iam, "list_attached_{}_policies", kind, {member: "subject", "PathPrefix": "/app/"}
    )
    assert only_app["AttachedPolicies"] == [{"PolicyName": "Mine", "PolicyArn": mine}]
    paged = all_pages(
        lambda p: call(iam, "list_attached_{}_policies", kind, p),
        "AttachedPolicies",
        **{member: "subject", "MaxItems": 1},
    )
    assert paged == listed["AttachedPolicies"]
    assert iam.get_policy(ADMIN, {"PolicyArn": mine})["Policy"]["AttachmentCount"] == 1
    refused(
        lambda: attach(local_arn("Nope")),
        "NoSuchEntity",
        f"Policy {local_arn('Nope')} does not exist or is not attachable.",
    )
    refused(lambda: attach("not-an-arn"), "InvalidInput", "ARN not-an-arn is not valid.")
    refused(
        lambda: call(iam, "attach_{}_policy", kind, {member: "nobody", "PolicyArn": mine}),
        "NoSuchEntity",
        f"The {kind} with name nobody cannot be found.",
    )
    refused(
        lambda: call(
            iam,
            "detach_{}_policy",
            kind,
            {member: "subject", "PolicyArn": SECRETS_MANAGER_READ_WRITE},
        ),
        "NoSuchEntity",
        f"Policy {SECRETS_MANAGER_READ_WRITE} was not found.",
    )
    call(iam, "detach_{}_policy", kind, {member: "subject", "PolicyArn": mine})
    assert iam.get_policy(ADMIN, {"PolicyArn": mine})["Policy"]["AttachmentCount"] == 0
    for index in range(9):
        attach(policy(iam, f"Filler{index}"))
    refused(
        lambda: attach(SECRETS_MANAGER_READ_WRITE),
        "LimitExceeded",
        f"Cannot exceed quota for PoliciesPer{kind.title()}: 10",
    )


def test_list_policies_by_scope_attachment_path_and_usage(
    iam: IdentityService, refused: Callable[..., ServiceError]
) -> None:
    alpha = policy(iam, "alpha", Path="/app/")
    beta = policy(iam, "Beta")
    role(iam, "deployer", PermissionsBoundary=beta)
    user(iam, "bob")
    iam.attach("user", ADMIN, {"UserName": "bob", "PolicyArn": alpha})

    def names(**params: Any) -> list[str]:
        return [
            p["PolicyName"]
            for p in all_pages(lambda q: iam.list_policies(ADMIN, q), "Policies", **params)
        ]

    assert names() == [
        "AdministratorAccess",
        "alpha",
        "Beta",
        "ReadOnlyAccess",
        "SecretsManagerReadWrite",
    ]
    assert names(MaxItems=2) == names()
    assert names(Scope="Local") == ["alpha", "Beta"]
    assert names(Scope="AWS") == [
        "AdministratorAccess",
        "ReadOnlyAccess",
        "SecretsManagerReadWrite",
    ]
    assert names(OnlyAttached=True) == ["AdministratorAccess", "alpha"]
    assert names(PathPrefix="/app/") == ["alpha"]
    assert names(PolicyUsageFilter="PermissionsBoundary") == ["Beta"]
    listed = iam.list_policies(ADMIN, {"Scope": "Local"})["Policies"]
    assert [(p["AttachmentCount"], p["PermissionsBoundaryUsageCount"]) for p in listed] == [
        (1, 0),
        (0, 1),
    ]
    assert all("Description" not in p and "Tags" not in p for p in listed)
    refused(lambda: iam.list_policies(ADMIN, {"Marker": "AAAA"}), "InvalidInput")


def test_list_entities_for_policy(
    iam: IdentityService, refused: Callable[..., ServiceError]
) -> None:
    arn = policy(iam, "Shared")
    bob = user(iam, "bob", Path="/people/")
    carol = user(iam, "carol", PermissionsBoundary=arn)
    deployer = role(iam, "deployer")
    devs = iam.create_group(ADMIN, {"GroupName": "devs"})["Group"]
    iam.attach("user", ADMIN, {"UserName": "bob", "PolicyArn": arn})
    iam.attach("role", ADMIN, {"RoleName": "deployer", "PolicyArn": arn})
    iam.attach("group", ADMIN, {"GroupName": "devs", "PolicyArn": arn})
    everything = iam.list_entities_for_policy(ADMIN, {"PolicyArn": arn})
    assert everything == {
        "PolicyGroups": [{"GroupName": "devs", "GroupId": devs["GroupId"]}],
        "PolicyUsers": [
            {"UserName": "bob", "UserId": bob["UserId"]},
            {"UserName": "carol", "UserId": carol["UserId"]},
        ],
        "PolicyRoles": [{"RoleName": "deployer", "RoleId": deployer["RoleId"]}],
        "IsTruncated": False,
    }
    permissions = iam.list_entities_for_policy(
        ADMIN, {"PolicyArn": arn, "PolicyUsageFilter": "PermissionsPolicy"}
    )
    assert [u["UserName"] for u in permissions["PolicyUsers"]] == ["bob"]
    boundary = iam.list_entities_for_policy(
        ADMIN, {"PolicyArn": arn, "PolicyUsageFilter": "PermissionsBoundary"}
    )
    assert (boundary["PolicyUsers"], boundary["PolicyGroups"], boundary["PolicyRoles"]) == (
        [{"UserName": "carol", "UserId": carol["UserId"]}],
        [],
        [],
    )
    roles_only = iam.list_entities_for_policy(ADMIN, {"PolicyArn": arn, "EntityFilter": "Role"})
    assert (roles_only["PolicyUsers"], len(roles_only["PolicyRoles"])) == ([], 1)
    people = iam.list_entities_for_policy(ADMIN, {"PolicyArn": arn, "PathPrefix": "/people/"})
    assert [u["UserName"] for u in people["PolicyUsers"]] == ["bob"] and people["PolicyRoles"] == []
    first = iam.list_entities_for_policy(ADMIN, {"PolicyArn": arn, "MaxItems": 2})
    assert (len(first["PolicyGroups"]), len(first["PolicyUsers"]), first["IsTruncated"]) == (
        1,
        1,
        True,
    )
    rest = iam.list_entities_for_policy(ADMIN, {"PolicyArn": arn, "Marker": first["Marker"]})
    assert [u["UserName"] for u in rest["PolicyUsers"]] == ["carol"] and len(
        rest["PolicyRoles"]
    ) == 1
    refused(
        lambda: iam.list_entities_for_policy(ADMIN, {"PolicyArn": local_arn("Nope")}),
        "NoSuchEntity",
    )


# Permissions boundaries ------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "member"), [("user", "UserName"), ("role", "RoleName")])
def test_permissions_boundaries(
    iam: IdentityService, refused: Callable[..., ServiceError], kind: str, member: str
) -> None:
    make_entity(iam, kind, "subject")
    arn = policy(iam, "Boundary")
    get = lambda: call(iam, "get_{}", kind, {member: "subject"})[kind.title()]  # noqa: E731
    assert (
        call(
            iam,
            "put_{}_permissions_boundary",
            kind,
            {member: "subject", "PermissionsBoundary": arn},
        )
        == {}
    )
    assert get()["PermissionsBoundary"]["PermissionsBoundaryArn"] == arn
    assert iam.get_policy(ADMIN, {"PolicyArn": arn})["Policy"]["PermissionsBoundaryUsageCount"] == 1
    call(
        iam,
        "put_{}_permissions_boundary",
        kind,
        {member: "subject", "PermissionsBoundary": READ_ONLY_ACCESS},
    )
    assert get()["PermissionsBoundary"]["PermissionsBoundaryArn"] == READ_ONLY_ACCESS
    refused(
        lambda: call(
            iam,
            "put_{}_permissions_boundary",
            kind,
            {member: "subject", "PermissionsBoundary": local_arn("Nope")},
        ),
        "NoSuchEntity",
        f"Scope ARN: {local_arn('Nope')} does not exist or is not attachable.",
    )
    refused(
        lambda: call(
            iam,
            "put_{}_permissions_boundary",
            kind,
            {member: "subject", "PermissionsBoundary": "arn:aws:s3:::bucket"},
        ),
        "InvalidInput",
    )
    refused(
        lambda: call(
            iam, "put_{}_permissions_boundary", kind, {member: "nobody", "PermissionsBoundary": arn}
        ),
        "NoSuchEntity",
    )
    call(iam, "delete_{}_permissions_boundary", kind, {member: "subject"})
    assert "PermissionsBoundary" not in get()
    refused(
        lambda: call(iam, "delete_{}_permissions_boundary", kind, {member: "nobody"}),
        "NoSuchEntity",
    )


# What the authorizer reads -----------------------------------------------------------------


def test_principal_policies_of_a_user_gather_inline_managed_and_group_policies(
    iam: IdentityService,
) -> None:
    mine = policy(iam, "Mine", LIST_SECRETS)
    iam.create_policy_version(
        ADMIN, {"PolicyArn": mine, "PolicyDocument": GET_DB_CREDENTIALS, "SetAsDefault": True}
    )
    boundary = policy(iam, "Boundary", GET_DB_CREDENTIALS)
    bob = user(iam, "bob", Tags=[{"Key": "team", "Value": "db"}], PermissionsBoundary=boundary)
    iam.put_inline(
        "user", ADMIN, {"UserName": "bob", "PolicyName": "own", "PolicyDocument": LIST_SECRETS}
    )
    iam.attach("user", ADMIN, {"UserName": "bob", "PolicyArn": mine})
    iam.create_group(ADMIN, {"GroupName": "devs"})
    iam.add_user_to_group(ADMIN, {"GroupName": "devs", "UserName": "bob"})
    iam.put_inline(
        "group",
        ADMIN,
        {"GroupName": "devs", "PolicyName": "team", "PolicyDocument": GET_DB_CREDENTIALS},
    )
    iam.attach("group", ADMIN, {"GroupName": "devs", "PolicyArn": READ_ONLY_ACCESS})
    iam.attach("group", ADMIN, {"GroupName": "devs", "PolicyArn": mine})  # already there

    found = iam.principal_policies(bob["Arn"])
    assert found == PrincipalPolicies(
        identity=[
            ("inline policy own of user bob", LIST_SECRETS),
            (f"managed policy {mine}", GET_DB_CREDENTIALS),  # the default version, v2
            ("inline policy team of group devs", GET_DB_CREDENTIALS),
            (
                f"managed policy {READ_ONLY_ACCESS} (via group devs)",
                managed_policies.READ_ONLY_ACCESS.document,
            ),
        ],
        permissions_boundary=GET_DB_CREDENTIALS,
        tags={"team": "db"},
        user_id=bob["UserId"],
        user_name="bob",
    )
    assert iam.principal_policies(f"arn:aws:iam::{DEV_ACCOUNT}:user/nobody") is None
    assert iam.principal_policies(f"arn:aws:iam::{DEV_ACCOUNT}:user/other/bob") is None  # stale
    assert iam.principal_policies(f"arn:aws:iam::{DEV_ACCOUNT}:root") is None
    assert iam.principal_policies("not an arn") is None


def test_principal_policies_of_a_role_and_its_sessions(iam: IdentityService) -> None:
    created = role(
        iam, "deployer", PermissionsBoundary=READ_ONLY_ACCESS, Tags=[{"Key": "k", "Value": "v"}]
    )
    iam.put_inline(
        "role", ADMIN, {"RoleName": "deployer", "PolicyName": "p", "PolicyDocument": LIST_SECRETS}
    )
    expected = PrincipalPolicies(
        identity=[("inline policy p of role deployer", LIST_SECRETS)],
        permissions_boundary=managed_policies.READ_ONLY_ACCESS.document,
        tags={"k": "v"},
        user_id=created["RoleId"],
        user_name=None,
    )
    assert iam.principal_policies(created["Arn"]) == expected
    session = f"arn:aws:sts::{DEV_ACCOUNT}:assumed-role/deployer/ci-run-7"
    assert iam.principal_policies(session) == expected


def test_the_generation_moves_on_every_write_and_only_then(
    iam: IdentityService, refused: Callable[..., ServiceError]
) -> None:
    start = iam.generation()
    user(iam, "bob")
    after_create = iam.generation()
    assert after_create > start
    iam.get_user(ADMIN, {"UserName": "bob"})
    iam.list_users(ADMIN, {})
    assert iam.generation() == after_create
    refused(lambda: user(iam, "bob"), "EntityAlreadyExists")  # the snapshot covers it too
    iam.attach("user", ADMIN, {"UserName": "bob", "PolicyArn": READ_ONLY_ACCESS})
    assert iam.generation() > after_create


# Login profiles ----------------------------------------------------------------------------


def test_login_profiles_store_only_a_scrypt_hash(
    deployment: Deployment,
    iam: IdentityService,
    clock: ManualClock,
    refused: Callable[..., ServiceError],
) -> None:
    user(iam, "bob")
    created = iam.create_login_profile(
        ADMIN, {"UserName": "bob", "Password": PASSWORD, "PasswordResetRequired": True}
    )
    assert created == {
        "LoginProfile": {
            "UserName": "bob",
            "CreateDate": clock.now(),
            "PasswordResetRequired": True,
        }
    }
    assert iam.get_login_profile(ADMIN, {"UserName": "bob"}) == created
    with deployment.store.read() as conn:
        stored = conn.execute(select(schema.iam_login_profiles.c.password_hash)).scalar_one()
    assert stored.startswith("scrypt$17$8$1$") and PASSWORD not in stored
    assert PASSWORD not in repr(snapshot(deployment))
    for path in deployment.data_dir.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path

    assert iam.verify_password(DEV_ACCOUNT, "bob", PASSWORD) is True
    assert iam.get_user(ADMIN, {"UserName": "bob"})["User"]["PasswordLastUsed"] == clock.now()
    assert iam.verify_password(DEV_ACCOUNT, "BOB", PASSWORD) is True
    assert iam.verify_password(DEV_ACCOUNT, "bob", PASSWORD + "x") is False
    assert iam.verify_password(DEV_ACCOUNT, "bob", "") is False
    assert iam.verify_password(DEV_ACCOUNT, "nobody", PASSWORD) is False
    assert iam.verify_password("111122223333", "bob", PASSWORD) is False
    assert iam.verify_password(DEV_ACCOUNT, "admin", PASSWORD) is False  # no login profile


def test_login_profile_refusals_never_repeat_the_password(
    iam: IdentityService, refused: Callable[..., ServiceError]
) -> None:
    user(iam, "bob")
    for weak in ("short1A", "alllowercaseletters", "ALLUPPER1234", "x" * 129 + "A1"):
        error = refused(
            lambda w=weak: iam.create_login_profile(ADMIN, {"UserName": "bob", "Password": w}),
            "PasswordPolicyViolation",
            "Password does not conform to the account password policy.",
        )
        assert weak not in repr(error)
    refused(lambda: iam.create_login_profile(ADMIN, {"UserName": "bob"}), "ValidationError")
    refused(
        lambda: iam.create_login_profile(ADMIN, {"UserName": "nobody", "Password": PASSWORD}),
        "NoSuchEntity",
        "The user with name nobody cannot be found.",
    )
    refused(
        lambda: iam.get_login_profile(ADMIN, {"UserName": "bob"}),
        "NoSuchEntity",
        "Login Profile for User bob cannot be found.",
    )
    refused(
        lambda: iam.update_login_profile(ADMIN, {"UserName": "bob", "Password": PASSWORD}),
        "NoSuchEntity",
    )
    refused(lambda: iam.delete_login_profile(ADMIN, {"UserName": "bob"}), "NoSuchEntity")
    iam.create_login_profile(ADMIN, {"UserName": "bob", "Password": PASSWORD})
    refused(
        lambda: iam.create_login_profile(ADMIN, {"UserName": "bob", "Password": PASSWORD}),
        "EntityAlreadyExists",
        "Login Profile for user bob already exists.",
    )


def test_update_and_delete_login_profiles(
    iam: IdentityService, refused: Callable[..., ServiceError]
) -> None:
    user(iam, "bob")
    iam.create_login_profile(ADMIN, {"UserName": "bob", "Password": PASSWORD})
    new_password = "An0ther-Secret-Phrase"
    refused(
        lambda: iam.update_login_profile(ADMIN, {"UserName": "bob", "Password": "weak"}),
        "PasswordPolicyViolation",
    )
    iam.update_login_profile(
        ADMIN, {"UserName": "bob", "Password": new_password, "PasswordResetRequired": True}
    )
    assert iam.verify_password(DEV_ACCOUNT, "bob", PASSWORD) is False
    assert iam.verify_password(DEV_ACCOUNT, "bob", new_password) is True
    assert (
        iam.get_login_profile(ADMIN, {"UserName": "bob"})["LoginProfile"]["PasswordResetRequired"]
        is True
    )
    iam.update_login_profile(ADMIN, {"UserName": "bob", "PasswordResetRequired": False})
    assert iam.verify_password(DEV_ACCOUNT, "bob", new_password) is True  # password kept
    assert iam.delete_login_profile(ADMIN, {"UserName": "bob"}) == {}
    assert iam.verify_password(DEV_ACCOUNT, "bob", new_password) is False
    # The caller's own profile when UserName is left out.
    iam.create_login_profile(ADMIN, {"Password": PASSWORD})
    assert iam.get_login_profile(ADMIN, {})["LoginProfile"]["UserName"] == "admin"


# The outputs go through the Query protocol as botocore reads them --------------------------


def test_outputs_serialize_and_parse_as_the_model_says(iam: IdentityService) -> None:
    model = botocore.session.get_session().get_service_model("iam")
    parser = parsers.create_parser("query")

    def round_trip(operation: str, output: dict[str, Any]) -> Any:
        op = model.operation_model(operation)
        body = query_codec.serialize_output(op, output, "req-1")
        parsed = parser.parse({"body": body, "headers": {}, "status_code": 200}, op.output_shape)
        handlers.json_decode_policies(parsed, op)
        parsed.pop("ResponseMetadata", None)
        return parsed

    bob = user(iam, "bob", Tags=[{"Key": "t", "Value": "v"}], PermissionsBoundary=READ_ONLY_ACCESS)
    assert round_trip("GetUser", iam.get_user(ADMIN, {"UserName": "bob"}))["User"] == bob
    iam.put_inline(
        "user", ADMIN, {"UserName": "bob", "PolicyName": "p", "PolicyDocument": GET_DB_CREDENTIALS}
    )
    got = round_trip(
        "GetUserPolicy", iam.get_inline("user", ADMIN, {"UserName": "bob", "PolicyName": "p"})
    )
    assert got["PolicyDocument"] == json.loads(GET_DB_CREDENTIALS)
    made = role(iam, "deployer")
    parsed_role = round_trip("GetRole", iam.get_role(ADMIN, {"RoleName": "deployer"}))["Role"]
    assert parsed_role["AssumeRolePolicyDocument"] == json.loads(TRUST_ACCOUNT)
    assert parsed_role["RoleId"] == made["RoleId"]
    version = round_trip(
        "GetPolicyVersion",
        iam.get_policy_version(ADMIN, {"PolicyArn": ADMINISTRATOR_ACCESS, "VersionId": "v1"}),
    )
    assert version["PolicyVersion"]["Document"]["Statement"] == [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}
    ]
    key = round_trip("CreateAccessKey", iam.create_access_key(ADMIN, {"UserName": "bob"}))[
        "AccessKey"
    ]
    assert len(key["SecretAccessKey"]) == 40
    for operation, output in (
        ("ListUsers", iam.list_users(ADMIN, {"MaxItems": 1})),
        ("ListPolicies", iam.list_policies(ADMIN, {})),
        ("GetPolicy", iam.get_policy(ADMIN, {"PolicyArn": SECRETS_MANAGER_READ_WRITE})),
        (
            "ListEntitiesForPolicy",
            iam.list_entities_for_policy(ADMIN, {"PolicyArn": ADMINISTRATOR_ACCESS}),
        ),
        (
            "GetAccessKeyLastUsed",
            iam.get_access_key_last_used(ADMIN, {"AccessKeyId": key["AccessKeyId"]}),
        ),
        ("ListAccessKeys", iam.list_access_keys(ADMIN, {"UserName": "bob"})),
        (
            "GetGroup",
            iam.get_group(
                ADMIN,
                {"GroupName": iam.create_group(ADMIN, {"GroupName": "g"})["Group"]["GroupName"]},
            ),
        ),
    ):
        assert round_trip(operation, output).keys() == output.keys()
