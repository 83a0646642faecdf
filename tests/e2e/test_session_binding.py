"""Temporary credentials belong to the IAM user or role they were issued for (its unique
id, AIDA... or AROA...), not to its name, end to end through a server with boto3:
GetSessionToken's, GetFederationToken's and AssumeRole's sessions. A user or role deleted
(and created again with the same name: another one) leaves its sessions authenticating
nothing, GetCallerIdentity included (the security token is invalid:
UnrecognizedClientException for Secrets Manager and KMS, InvalidClientTokenId for STS);
the refusal is audited in the account's event history, and nothing changes. A renamed
user keeps its sessions. Sessions stored before they named their user are bound by
migration 0014 only to a user that existed when they were issued.

AWS documents no error code for these requests; the decision, and what AWS does
document, is at strongroom/iam/credentials.py ``_bound``."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy
from alembic import command
from alembic.config import Config

from strongroom.store.engine import MIGRATIONS
from tests.aws import ACCOUNT, aws_error
from tests.e2e.test_lookup_events import every_event
from tests.e2e.test_principal_binding import delete_user, new_user
from tests.e2e.test_sts import INVALID_TOKEN, allow, session_client, trust, unique
from tests.server import ServerProcess

GET = "secretsmanager:GetSecretValue"
PUT = "secretsmanager:PutSecretValue"


def readable(arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": [GET, PUT], "Resource": arn}],
        }
    )


def refused_everywhere(server: ServerProcess, credentials: dict[str, Any], secret: str) -> None:
    """``credentials`` authenticate as nobody: each service answers that the security
    token is invalid, in its own words."""
    sm = session_client(server, "secretsmanager", credentials)
    for call, params in ((sm.get_secret_value, {}), (sm.put_secret_value, {"SecretString": "x"})):
        aws_error(
            call,
            SecretId=secret,
            **params,
            code="UnrecognizedClientException",
            message=INVALID_TOKEN,
            status=400,
        )
    aws_error(
        session_client(server, "kms", credentials).list_keys,
        code="UnrecognizedClientException",
        message=INVALID_TOKEN,
        status=400,
    )
    aws_error(
        session_client(server, "sts", credentials).get_caller_identity,
        code="InvalidClientTokenId",
        message=INVALID_TOKEN,
        status=403,
    )


def attempts(server: ServerProcess, access_key_id: str) -> Counter[tuple[str, str]]:
    """(eventName, errorCode) of each of the account's recorded requests signed with
    ``access_key_id`` (CloudTrail LookupEvents, as the account's admin); a refused one's
    identity is only the key it claimed, in the account."""
    found: Counter[tuple[str, str]] = Counter()
    for event in every_event(server.client("cloudtrail"), "AccessKeyId", access_key_id):
        record = json.loads(event["CloudTrailEvent"])
        assert record["recipientAccountId"] == ACCOUNT
        if "errorCode" in record:
            assert record["userIdentity"] == {
                "type": "Unknown",
                "accessKeyId": access_key_id,
                "accountId": ACCOUNT,
            }
        found[record["eventName"], record.get("errorCode", "")] += 1
    return found


def test_a_users_session_is_refused_once_the_user_is_deleted_and_created_again(
    server: ServerProcess, sm: Any
) -> None:
    iam = server.client("iam")
    name, secret = unique("dana"), unique("secret")
    arn = sm.create_secret(Name=secret, SecretString="v1")["ARN"]
    first = new_user(iam, name, readable(arn))
    first_id, user_arn = first["user"]["UserId"], first["user"]["Arn"]
    old = session_client(server, "sts", first["key"]).get_session_token()["Credentials"]
    assert session_client(server, "sts", old).get_caller_identity()["UserId"] == first_id
    assert (
        session_client(server, "secretsmanager", old).get_secret_value(SecretId=arn)["SecretString"]
        == "v1"
    )

    delete_user(iam, name)
    refused_everywhere(server, old, arn)
    # The same name, the same policy: another user, which the old session is not.
    second = new_user(iam, name, readable(arn))
    assert second["user"]["Arn"] == user_arn and second["user"]["UserId"] != first_id
    refused_everywhere(server, old, arn)
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "v1"  # nothing changed
    assert len(sm.list_secret_version_ids(SecretId=arn)["Versions"]) == 1

    new = session_client(server, "sts", second["key"]).get_session_token()["Credentials"]
    identity = session_client(server, "sts", new).get_caller_identity()
    assert (identity["UserId"], identity["Arn"]) == (second["user"]["UserId"], user_arn)
    new_sm = session_client(server, "secretsmanager", new)
    assert new_sm.get_secret_value(SecretId=arn)["SecretString"] == "v1"
    new_sm.put_secret_value(SecretId=arn, SecretString="v2")
    # The old session stays refused after the new user's session was served.
    refused_everywhere(server, old, arn)
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "v2"

    # Every refusal is in the account's event history, as an unauthenticated request.
    assert attempts(server, old["AccessKeyId"]) == Counter(
        {
            ("GetCallerIdentity", ""): 1,  # while the first user lived
            ("GetSecretValue", ""): 1,
            ("Decrypt", ""): 1,  # Secrets Manager's KMS call on its behalf
            ("GetSecretValue", "UnrecognizedClientException"): 3,
            ("PutSecretValue", "UnrecognizedClientException"): 3,
            ("ListKeys", "UnrecognizedClientException"): 3,
            ("GetCallerIdentity", "InvalidClientTokenId"): 3,
        }
    )


def test_a_federated_users_session_belongs_to_the_user_that_asked(
    server: ServerProcess, sm: Any
) -> None:
    iam = server.client("iam")
    name, secret = unique("fed"), unique("secret")
    arn = sm.create_secret(Name=secret, SecretString="federated")["ARN"]
    policy = readable(arn)
    made = new_user(iam, name, allow("sts:GetFederationToken"), policy)
    federation = session_client(server, "sts", made["key"]).get_federation_token(
        Name="visitor", Policy=policy
    )["Credentials"]
    visitor = session_client(server, "secretsmanager", federation)
    assert visitor.get_secret_value(SecretId=arn)["SecretString"] == "federated"

    delete_user(iam, name)
    refused_everywhere(server, federation, arn)
    new_user(iam, name, allow("sts:GetFederationToken"), policy)
    refused_everywhere(server, federation, arn)
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "federated"  # nothing changed
    assert len(sm.list_secret_version_ids(SecretId=arn)["Versions"]) == 1
    assert attempts(server, federation["AccessKeyId"]) == Counter(
        {
            ("GetSecretValue", ""): 1,
            ("Decrypt", ""): 1,
            ("GetSecretValue", "UnrecognizedClientException"): 2,
            ("PutSecretValue", "UnrecognizedClientException"): 2,
            ("ListKeys", "UnrecognizedClientException"): 2,
            ("GetCallerIdentity", "InvalidClientTokenId"): 2,
        }
    )


def test_a_renamed_user_keeps_its_sessions(server: ServerProcess, sm: Any) -> None:
    iam = server.client("iam")
    name, secret = unique("ren"), unique("secret")
    arn = sm.create_secret(Name=secret, SecretString="kept")["ARN"]
    made = new_user(iam, name, readable(arn))
    credentials = session_client(server, "sts", made["key"]).get_session_token()["Credentials"]
    renamed = unique("renamed")
    iam.update_user(UserName=name, NewUserName=renamed)
    identity = session_client(server, "sts", credentials).get_caller_identity()
    assert (identity["UserId"], identity["Arn"]) == (
        made["user"]["UserId"],
        f"arn:aws:iam::{ACCOUNT}:user/{renamed}",
    )
    session_sm = session_client(server, "secretsmanager", credentials)
    assert session_sm.get_secret_value(SecretId=arn)["SecretString"] == "kept"


def _downgrade_to_0012(database: Path) -> None:
    """The data directory as the version before migration 0013 left it: sessions that
    name no user."""
    engine = sqlalchemy.create_engine(f"sqlite:///{database}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0012_function_logs")
    engine.dispose()


def test_migration_binds_stored_sessions_to_the_user_they_were_issued_to(
    new_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    server = new_server("--dev", "--data-dir", str(data_dir))
    sm, iam = server.client(), server.client("iam")
    arn = sm.create_secret(Name="migrated", SecretString="before")["ARN"]
    kept = new_user(iam, "kept", readable(arn))
    kept_session = session_client(server, "sts", kept["key"]).get_session_token()["Credentials"]
    gone = new_user(iam, "gone", readable(arn))
    gone_session = session_client(server, "sts", gone["key"]).get_session_token()["Credentials"]
    delete_user(iam, "gone")
    new_user(iam, "gone", readable(arn))  # after the session: not the user it was issued to
    server.stop()
    database = data_dir / "strongroom.db"
    _downgrade_to_0012(database)
    with sqlite3.connect(database) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(sts_sessions)")]
    conn.close()
    assert "user_id" not in columns

    server.start()  # migrates to the head
    with sqlite3.connect(database) as conn:
        bound = dict(conn.execute("SELECT access_key_id, user_id FROM sts_sessions").fetchall())
    conn.close()
    assert bound == {
        kept_session["AccessKeyId"]: kept["user"]["UserId"],
        gone_session["AccessKeyId"]: None,
    }
    kept_sm = session_client(server, "secretsmanager", kept_session)
    assert kept_sm.get_secret_value(SecretId=arn)["SecretString"] == "before"
    assert (
        session_client(server, "sts", kept_session).get_caller_identity()["UserId"]
        == kept["user"]["UserId"]
    )
    refused_everywhere(server, gone_session, arn)
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "before"


def test_a_role_session_is_refused_once_the_role_is_deleted_and_created_again(
    server: ServerProcess, sm: Any
) -> None:
    """A role session is bound to its role's unique id (AROA...), as a user's session is
    to its user's: once the role is deleted, the session authenticates nothing, not even
    GetCallerIdentity (which needs no permission), and a role created again with the
    same name and policy is another role, whose sessions work while the old one stays
    refused, whichever of them is served first."""
    iam, sts = server.client("iam"), server.client("sts")
    name, secret = unique("ops"), unique("secret")
    arn = sm.create_secret(Name=secret, SecretString="ops")["ARN"]
    trusted = trust(f"arn:aws:iam::{ACCOUNT}:root")

    def make_role() -> dict[str, Any]:
        role: dict[str, Any] = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trusted)[
            "Role"
        ]
        iam.put_role_policy(RoleName=name, PolicyName="read", PolicyDocument=readable(arn))
        return role

    first = make_role()
    old = sts.assume_role(RoleArn=first["Arn"], RoleSessionName="old")["Credentials"]
    assert session_client(server, "sts", old).get_caller_identity()["UserId"] == (
        f"{first['RoleId']}:old"
    )
    old_sm = session_client(server, "secretsmanager", old)
    assert old_sm.get_secret_value(SecretId=arn)["SecretString"] == "ops"

    iam.delete_role_policy(RoleName=name, PolicyName="read")
    iam.delete_role(RoleName=name)
    refused_everywhere(server, old, arn)
    second = make_role()
    assert second["Arn"] == first["Arn"] and second["RoleId"] != first["RoleId"]
    refused_everywhere(server, old, arn)
    new = sts.assume_role(RoleArn=second["Arn"], RoleSessionName="new")["Credentials"]
    assert session_client(server, "sts", new).get_caller_identity()["UserId"] == (
        f"{second['RoleId']}:new"
    )
    new_sm = session_client(server, "secretsmanager", new)
    for _ in range(2):
        assert new_sm.get_secret_value(SecretId=arn)["SecretString"] == "ops"
        refused_everywhere(server, old, arn)
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "ops"  # nothing changed
    assert len(sm.list_secret_version_ids(SecretId=arn)["Versions"]) == 1

    # Every refusal is in the account's event history, as an unauthenticated request.
    assert attempts(server, old["AccessKeyId"]) == Counter(
        {
            ("GetCallerIdentity", ""): 1,  # while the first role lived
            ("GetSecretValue", ""): 1,
            ("Decrypt", ""): 1,  # Secrets Manager's KMS call on its behalf
            ("GetSecretValue", "UnrecognizedClientException"): 4,
            ("PutSecretValue", "UnrecognizedClientException"): 4,
            ("ListKeys", "UnrecognizedClientException"): 4,
            ("GetCallerIdentity", "InvalidClientTokenId"): 4,
        }
    )
