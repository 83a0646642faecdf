"""STS and temporary credentials at domain level: a real data directory and SQLite store,
boto3 clients whose requests the deployment's pipeline serves in this process (signed at
a ManualClock's time), so expiry is tested by moving the clock, not by waiting.

AWS facts these follow, with where they are on record:

- Query services (IAM, STS) answer an unknown key or a bad session token with
  ``InvalidClientTokenId`` "The security token included in the request is invalid." (403),
  JSON services with ``UnrecognizedClientException`` (400); expired credentials get
  ``ExpiredToken`` (403) and ``ExpiredTokenException`` (400) "The security token included
  in the request is expired" (SDK issues: aws-sdk-java-v2#1649, pulumi-aws#2560,
  aws-cli#7870, aws-azure-login#251).
- GetSessionToken with session credentials: ``AccessDenied`` "Cannot call GetSessionToken
  with session credentials"; its credentials cannot call IAM without MFA
  (``InvalidClientTokenId``) (aws-sdk-net#1704, cloudyr/aws.iam#15, the GetSessionToken API
  reference).
- ``ValidationError`` "The requested DurationSeconds exceeds the MaxSessionDuration set for
  this role." (kreuzwerker/awsu#27, aws-azure-login#93); durations outside the model's
  bounds get the model-validation message.
- A refused AssumeRole: ``AccessDenied`` "User: <caller> is not authorized to perform:
  sts:AssumeRole on resource: <role ARN>".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from strongroom.audit.lookup import iter_events
from strongroom.clock import ManualClock
from strongroom.iam.credentials import IssuedSession, Principal
from strongroom.iam.mfa import MfaDevices
from strongroom.iam.service import IdentityService
from strongroom.iam.sts import OPERATIONS, SecurityTokenService
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.model import service_model
from strongroom.server.deployment import DEV_ACCOUNT, Deployment
from strongroom.store import schema
from strongroom.types import Caller
from tests.aws import error_message as error
from tests.inprocess import client, credentials_client, signing_at

INVALID_TOKEN = "The security token included in the request is invalid."
EXPIRED_TOKEN = "The security token included in the request is expired"
ADMIN_ARN = f"arn:aws:iam::{DEV_ACCOUNT}:user/admin"
ACCOUNT_ROOT = f"arn:aws:iam::{DEV_ACCOUNT}:root"


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def trust(principal: str, condition: dict[str, Any] | None = None, *actions: str) -> str:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": ["sts:AssumeRole", *actions],
    }
    if condition:
        statement["Condition"] = condition
    return document(statement)


def allow(action: str, resource: str = "*") -> str:
    return document({"Effect": "Allow", "Action": action, "Resource": resource})


@pytest.fixture(autouse=True)
def signing(clock: ManualClock) -> Iterator[None]:
    with signing_at(clock):
        yield


@pytest.fixture
def iam(deployment: Deployment) -> Any:
    return client(deployment, "iam")


@pytest.fixture
def sts(deployment: Deployment) -> Any:
    return client(deployment, "sts")


@pytest.fixture
def raw(deployment: Deployment) -> Any:
    """STS for the admin without boto3's parameter validation: the server validates."""
    return client(deployment, "sts", validate=False)


def new_user(deployment: Deployment, iam: Any, name: str, *policies: str) -> dict[str, Any]:
    """An IAM user with its own access key and these inline policies; the key's ``sts``,
    ``sm`` and ``iam`` clients come with it."""
    user = iam.create_user(UserName=name)["User"]
    for number, text in enumerate(policies):
        iam.put_user_policy(UserName=name, PolicyName=f"p{number}", PolicyDocument=text)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    credentials = {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
    return {
        "user": user,
        "key": key,
        "sts": credentials_client(deployment, "sts", credentials),
        "sm": credentials_client(deployment, "secretsmanager", credentials),
        "iam": credentials_client(deployment, "iam", credentials),
    }


def new_role(iam: Any, name: str, trust_policy: str, *policy_arns: str, **extra: Any) -> str:
    arn: str = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust_policy, **extra)[
        "Role"
    ]["Arn"]
    for policy_arn in policy_arns:
        iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
    return arn


ADMINISTRATOR_ACCESS = "arn:aws:iam::aws:policy/AdministratorAccess"


# The facade --------------------------------------------------------------------------------


def test_the_facade_serves_operations_of_the_model() -> None:
    assert set(OPERATIONS) <= set(service_model("sts").operation_names)


# GetCallerIdentity -------------------------------------------------------------------------


def test_get_caller_identity_of_the_admin_and_of_a_user(
    deployment: Deployment, iam: Any, sts: Any
) -> None:
    admin_id = iam.get_user()["User"]["UserId"]
    assert {k: v for k, v in sts.get_caller_identity().items() if k != "ResponseMetadata"} == {
        "UserId": admin_id,
        "Account": DEV_ACCOUNT,
        "Arn": ADMIN_ARN,
    }
    alice = new_user(deployment, iam, "alice")
    identity = alice["sts"].get_caller_identity()
    assert identity["UserId"] == alice["user"]["UserId"]
    assert identity["UserId"].startswith("AIDA")
    assert identity["Arn"] == alice["user"]["Arn"]
    assert identity["Account"] == DEV_ACCOUNT


def test_get_caller_identity_of_a_role_session(deployment: Deployment, iam: Any, sts: Any) -> None:
    role_arn = new_role(iam, "reader", trust(ACCOUNT_ROOT))
    role_id = iam.get_role(RoleName="reader")["Role"]["RoleId"]
    assumed = sts.assume_role(RoleArn=role_arn, RoleSessionName="ci-job")
    identity = credentials_client(deployment, "sts", assumed["Credentials"]).get_caller_identity()
    assert identity["UserId"] == f"{role_id}:ci-job"
    assert identity["Arn"] == f"arn:aws:sts::{DEV_ACCOUNT}:assumed-role/reader/ci-job"
    assert identity["Account"] == DEV_ACCOUNT


# AssumeRole --------------------------------------------------------------------------------


def test_assume_role_answers_aws_shape(
    deployment: Deployment, iam: Any, sts: Any, clock: ManualClock
) -> None:
    role_arn = new_role(iam, "deployer", trust(ACCOUNT_ROOT))
    role_id = iam.get_role(RoleName="deployer")["Role"]["RoleId"]
    assumed = sts.assume_role(RoleArn=role_arn, RoleSessionName="build-42")
    credentials = assumed["Credentials"]
    assert credentials["AccessKeyId"].startswith("ASIA") and len(credentials["AccessKeyId"]) == 20
    assert len(credentials["SecretAccessKey"]) == 40
    assert len(credentials["SessionToken"]) >= 100
    assert credentials["Expiration"] == clock.now() + timedelta(seconds=3600)
    assert assumed["AssumedRoleUser"] == {
        "AssumedRoleId": f"{role_id}:build-42",
        "Arn": f"arn:aws:sts::{DEV_ACCOUNT}:assumed-role/deployer/build-42",
    }
    assert "PackedPolicySize" not in assumed and "SourceIdentity" not in assumed
    # GetRole's RoleLastUsed tells when and where the role was last assumed.
    last_used = iam.get_role(RoleName="deployer")["Role"]["RoleLastUsed"]
    assert last_used == {"LastUsedDate": clock.now(), "Region": "us-east-1"}


def test_a_trust_policy_naming_the_user_suffices_in_the_same_account(
    deployment: Deployment, iam: Any
) -> None:
    bob = new_user(deployment, iam, "bob")  # no identity policy at all
    role_arn = new_role(iam, "named", trust(bob["user"]["Arn"]))
    assumed = bob["sts"].assume_role(RoleArn=role_arn, RoleSessionName="bob")
    assert assumed["AssumedRoleUser"]["Arn"].endswith(":assumed-role/named/bob")


def test_a_trust_policy_naming_the_account_needs_the_identity_policy_too(
    deployment: Deployment, iam: Any
) -> None:
    role_arn = new_role(iam, "delegated", trust(ACCOUNT_ROOT))
    carol = new_user(deployment, iam, "carol")
    error(
        lambda: carol["sts"].assume_role(RoleArn=role_arn, RoleSessionName="carol"),
        "AccessDenied",
        f"User: {carol['user']['Arn']} is not authorized to perform: sts:AssumeRole "
        f"on resource: {role_arn}",
        status=403,
    )
    iam.put_user_policy(
        UserName="carol", PolicyName="assume", PolicyDocument=allow("sts:AssumeRole", role_arn)
    )
    carol["sts"].assume_role(RoleArn=role_arn, RoleSessionName="carol")


def test_a_trust_policy_that_names_someone_else_refuses(deployment: Deployment, iam: Any) -> None:
    dave = new_user(deployment, iam, "dave", allow("sts:AssumeRole"))
    role_arn = new_role(iam, "not-for-dave", trust(ADMIN_ARN))
    error(
        lambda: dave["sts"].assume_role(RoleArn=role_arn, RoleSessionName="dave"),
        "AccessDenied",
        f"User: {dave['user']['Arn']} is not authorized to perform: sts:AssumeRole "
        f"on resource: {role_arn}",
        status=403,
    )
    with deployment.store.read() as conn:
        assert conn.execute(select(schema.sts_sessions)).all() == []


def test_an_unknown_role_is_refused_like_a_forbidden_one(sts: Any) -> None:
    for arn in (
        f"arn:aws:iam::{DEV_ACCOUNT}:role/no-such-role",
        f"arn:aws:iam::{DEV_ACCOUNT}:user/admin",
        "arn:aws:iam::123456789012:role/elsewhere",
    ):
        error(
            lambda arn=arn: sts.assume_role(RoleArn=arn, RoleSessionName="s1"),
            "AccessDenied",
            f"User: {ADMIN_ARN} is not authorized to perform: sts:AssumeRole on resource: {arn}",
            status=403,
        )


def test_a_role_arn_must_carry_the_roles_path(iam: Any, sts: Any) -> None:
    arn = new_role(iam, "pathed", trust(ACCOUNT_ROOT), Path="/team/")
    assert arn == f"arn:aws:iam::{DEV_ACCOUNT}:role/team/pathed"
    assert sts.assume_role(RoleArn=arn, RoleSessionName="ok")["AssumedRoleUser"]["Arn"] == (
        f"arn:aws:sts::{DEV_ACCOUNT}:assumed-role/pathed/ok"
    )
    error(
        lambda: sts.assume_role(
            RoleArn=f"arn:aws:iam::{DEV_ACCOUNT}:role/pathed", RoleSessionName="s2"
        ),
        "AccessDenied",
        status=403,
    )


def test_external_id_condition_both_ways(iam: Any, sts: Any) -> None:
    role_arn = new_role(
        iam,
        "vendor",
        trust(ACCOUNT_ROOT, {"StringEquals": {"sts:ExternalId": "Unique-Id-1234"}}),
    )
    for external_id in (None, "wrong-id"):
        extra = {"ExternalId": external_id} if external_id else {}
        error(
            lambda extra=extra: sts.assume_role(
                RoleArn=role_arn, RoleSessionName="vendor", **extra
            ),
            "AccessDenied",
            f"User: {ADMIN_ARN} is not authorized to perform: sts:AssumeRole on resource: "
            f"{role_arn}",
            status=403,
        )
    sts.assume_role(RoleArn=role_arn, RoleSessionName="vendor", ExternalId="Unique-Id-1234")


def test_trust_conditions_on_principal_arn_and_session_name(
    deployment: Deployment, iam: Any, sts: Any
) -> None:
    role_arn = new_role(
        iam,
        "conditional",
        trust(
            ACCOUNT_ROOT,
            {
                "ArnEquals": {"aws:PrincipalArn": ADMIN_ARN},
                "StringLike": {"sts:RoleSessionName": "${aws:username}-*"},
            },
        ),
    )
    sts.assume_role(RoleArn=role_arn, RoleSessionName="admin-laptop")
    error(
        lambda: sts.assume_role(RoleArn=role_arn, RoleSessionName="someone-else"),
        "AccessDenied",
        status=403,
    )
    erin = new_user(deployment, iam, "erin", allow("sts:AssumeRole"))
    error(
        lambda: erin["sts"].assume_role(RoleArn=role_arn, RoleSessionName="erin-laptop"),
        "AccessDenied",
        status=403,
    )


def test_an_explicit_deny_in_the_identity_policy_wins(deployment: Deployment, iam: Any) -> None:
    frank = new_user(
        deployment,
        iam,
        "frank",
        document({"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "*"}),
    )
    role_arn = new_role(iam, "denied", trust(frank["user"]["Arn"]))
    error(
        lambda: frank["sts"].assume_role(RoleArn=role_arn, RoleSessionName="f-session"),
        "AccessDenied",
        status=403,
    )


def test_duration_seconds_bounds(iam: Any, sts: Any, raw: Any, clock: ManualClock) -> None:
    role_arn = new_role(iam, "timed", trust(ACCOUNT_ROOT))
    short = sts.assume_role(RoleArn=role_arn, RoleSessionName="s-session", DurationSeconds=900)
    assert short["Credentials"]["Expiration"] == clock.now() + timedelta(seconds=900)
    for value, bound in (
        (899, "greater than or equal to 900"),
        (43201, "less than or equal to 43200"),
    ):
        error(
            lambda value=value: raw.assume_role(
                RoleArn=role_arn, RoleSessionName="s-session", DurationSeconds=value
            ),
            "ValidationError",
            f"1 validation error detected: Value '{value}' at 'durationSeconds' failed to "
            f"satisfy constraint: Member must have value {bound}",
        )
    error(
        lambda: sts.assume_role(
            RoleArn=role_arn, RoleSessionName="s-session", DurationSeconds=3601
        ),
        "ValidationError",
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
    )
    long_arn = new_role(iam, "long", trust(ACCOUNT_ROOT), MaxSessionDuration=43200)
    long = sts.assume_role(RoleArn=long_arn, RoleSessionName="s-session", DurationSeconds=43200)
    assert long["Credentials"]["Expiration"] == clock.now() + timedelta(hours=12)


def test_role_chaining_is_limited_to_one_hour(deployment: Deployment, iam: Any, sts: Any) -> None:
    first = new_role(iam, "first", trust(ACCOUNT_ROOT), ADMINISTRATOR_ACCESS)
    second = new_role(
        iam, "second", trust(f"arn:aws:iam::{DEV_ACCOUNT}:role/first"), MaxSessionDuration=7200
    )
    hop = credentials_client(
        deployment, "sts", sts.assume_role(RoleArn=first, RoleSessionName="hop")["Credentials"]
    )
    error(
        lambda: hop.assume_role(RoleArn=second, RoleSessionName="hop2", DurationSeconds=3601),
        "ValidationError",
        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by "
        "role chaining.",
    )
    chained = hop.assume_role(RoleArn=second, RoleSessionName="hop2")
    assert chained["AssumedRoleUser"]["Arn"].endswith(":assumed-role/second/hop2")


def test_role_session_name_follows_the_model(iam: Any, raw: Any) -> None:
    role_arn = new_role(iam, "named-sessions", trust(ACCOUNT_ROOT))
    error(
        lambda: raw.assume_role(RoleArn=role_arn, RoleSessionName="has space"),
        "ValidationError",
    )
    error(lambda: raw.assume_role(RoleArn=role_arn, RoleSessionName="x"), "ValidationError")


# Session credentials: token, expiry, purge --------------------------------------------------


def assumed_admin(deployment: Deployment, iam: Any, sts: Any, **extra: Any) -> dict[str, Any]:
    role_arn = new_role(iam, "admin-role", trust(ACCOUNT_ROOT), ADMINISTRATOR_ACCESS)
    credentials: dict[str, Any] = sts.assume_role(
        RoleArn=role_arn, RoleSessionName="work", **extra
    )["Credentials"]
    return credentials


def test_session_credentials_work_until_they_expire(
    deployment: Deployment, iam: Any, sts: Any, clock: ManualClock
) -> None:
    credentials = assumed_admin(deployment, iam, sts, DurationSeconds=900)
    session_sts = credentials_client(deployment, "sts", credentials)
    session_sm = credentials_client(deployment, "secretsmanager", credentials)
    session_sm.create_secret(Name="made-by-a-session", SecretString="v")
    clock.advance(timedelta(seconds=899))
    assert session_sts.get_caller_identity()["Arn"].endswith("/admin-role/work")
    clock.advance(timedelta(seconds=1))
    error(session_sts.get_caller_identity, "ExpiredToken", EXPIRED_TOKEN, status=403)
    error(
        lambda: session_sm.describe_secret(SecretId="made-by-a-session"),
        "ExpiredTokenException",
        EXPIRED_TOKEN,
    )
    error(
        lambda: credentials_client(deployment, "iam", credentials).list_users(),
        "ExpiredToken",
        EXPIRED_TOKEN,
        status=403,
    )


def test_expired_sessions_are_purged_after_a_day(
    deployment: Deployment, iam: Any, sts: Any, clock: ManualClock
) -> None:
    credentials = assumed_admin(deployment, iam, sts, DurationSeconds=900)
    session_sts = credentials_client(deployment, "sts", credentials)
    clock.advance(timedelta(seconds=900))
    assert deployment.credentials.purge_expired_sessions() == 0
    error(session_sts.get_caller_identity, "ExpiredToken", status=403)
    clock.advance(timedelta(days=1))
    assert deployment.credentials.purge_expired_sessions() == 1
    assert deployment.credentials.purge_expired_sessions() == 0
    error(session_sts.get_caller_identity, "InvalidClientTokenId", INVALID_TOKEN, status=403)


def test_a_session_key_needs_its_own_token(deployment: Deployment, iam: Any, sts: Any) -> None:
    credentials = assumed_admin(deployment, iam, sts)
    token = credentials["SessionToken"]
    other = assumed_admin_token(deployment, iam, sts)
    for wrong in (None, token[:-1] + ("A" if token[-1] != "A" else "B"), other, token + "x"):
        forged = {**credentials, "SessionToken": wrong}
        error(
            credentials_client(deployment, "sts", forged).get_caller_identity,
            "InvalidClientTokenId",
            INVALID_TOKEN,
            status=403,
        )
        error(
            credentials_client(deployment, "secretsmanager", forged).list_secrets,
            "UnrecognizedClientException",
            INVALID_TOKEN,
        )
    wrong_secret = {**credentials, "SecretAccessKey": "x" * 40}
    error(
        credentials_client(deployment, "sts", wrong_secret).get_caller_identity,
        "SignatureDoesNotMatch",
        status=403,
    )


def assumed_admin_token(deployment: Deployment, iam: Any, sts: Any) -> str:
    arn = f"arn:aws:iam::{DEV_ACCOUNT}:role/admin-role"
    token: str = sts.assume_role(RoleArn=arn, RoleSessionName="other")["Credentials"][
        "SessionToken"
    ]
    return token


def test_a_long_term_key_with_a_session_token_is_refused(deployment: Deployment) -> None:
    with_token = client(deployment, "sts", token="some-session-token")
    error(with_token.get_caller_identity, "InvalidClientTokenId", INVALID_TOKEN, status=403)
    error(
        client(deployment, "secretsmanager", token="some-session-token").list_secrets,
        "UnrecognizedClientException",
        INVALID_TOKEN,
    )


def test_deleted_and_deactivated_keys_are_refused(deployment: Deployment, iam: Any) -> None:
    gina = new_user(deployment, iam, "gina")
    key_id = gina["key"]["AccessKeyId"]
    gina["sts"].get_caller_identity()
    iam.update_access_key(UserName="gina", AccessKeyId=key_id, Status="Inactive")
    error(gina["sts"].get_caller_identity, "InvalidClientTokenId", INVALID_TOKEN, status=403)
    error(gina["sm"].list_secrets, "UnrecognizedClientException", INVALID_TOKEN)
    iam.update_access_key(UserName="gina", AccessKeyId=key_id, Status="Active")
    gina["sts"].get_caller_identity()
    iam.delete_access_key(UserName="gina", AccessKeyId=key_id)
    error(gina["sts"].get_caller_identity, "InvalidClientTokenId", INVALID_TOKEN, status=403)


def test_secrets_and_tokens_are_stored_sealed_and_hashed(
    deployment: Deployment, iam: Any, sts: Any, clock: ManualClock
) -> None:
    credentials = assumed_admin(deployment, iam, sts)
    with deployment.store.read() as conn:
        row = conn.execute(select(schema.sts_sessions)).one()
    stored = repr(tuple(row)).encode()
    assert credentials["SecretAccessKey"].encode() not in stored
    assert credentials["SessionToken"].encode() not in stored
    assert credentials["SecretAccessKey"].encode() not in row.secret_ciphertext
    assert len(row.token_hash) == 32
    found = deployment.credentials.lookup(credentials["AccessKeyId"])
    assert found is not None and found.temporary
    assert credentials["SecretAccessKey"] not in repr(found)
    issued = IssuedSession("ASIAEXAMPLE", "secret-value", "token-value", clock.now())
    assert "secret-value" not in repr(issued) and "token-value" not in repr(issued)


def test_no_secret_or_token_reaches_the_audit_log_or_the_store_in_clear(
    deployment: Deployment, iam: Any, sts: Any
) -> None:
    role_arn = new_role(iam, "audited", trust(ACCOUNT_ROOT), ADMINISTRATOR_ACCESS)
    assumed = sts.assume_role(RoleArn=role_arn, RoleSessionName="audited")["Credentials"]
    user_session = sts.get_session_token()["Credentials"]
    secrets = [
        value
        for credentials in (assumed, user_session)
        for value in (credentials["SecretAccessKey"], credentials["SessionToken"])
    ]
    credentials_client(deployment, "sts", assumed).get_caller_identity()
    events = [
        event
        for event in iter_events(deployment.data_dir / "audit")
        if event.get("eventSource") == "sts.amazonaws.com"
    ]
    names = [event["eventName"] for event in events]
    assert names.count("AssumeRole") == 1 and names.count("GetSessionToken") == 1
    assume_event = events[names.index("AssumeRole")]
    recorded = assume_event["responseElements"]["credentials"]
    assert set(recorded) == {"accessKeyId", "expiration"}  # no secret, no token
    assert recorded["accessKeyId"] == assumed["AccessKeyId"]
    deployment.close()
    for path in deployment.data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for value in secrets:
                assert value.encode() not in data, path


# Session policies, tags, source identity ---------------------------------------------------


def test_an_inline_session_policy_narrows_the_role(
    deployment: Deployment, iam: Any, sts: Any
) -> None:
    role_arn = new_role(iam, "wide", trust(ACCOUNT_ROOT), ADMINISTRATOR_ACCESS)
    assumed = sts.assume_role(
        RoleArn=role_arn,
        RoleSessionName="narrow",
        Policy=allow("secretsmanager:ListSecrets"),
    )
    assert assumed["PackedPolicySize"] > 0
    sm = credentials_client(deployment, "secretsmanager", assumed["Credentials"])
    sm.list_secrets()
    error(lambda: sm.create_secret(Name="nope", SecretString="v"), "AccessDeniedException")


def test_managed_session_policies_are_resolved_when_issued(
    deployment: Deployment, iam: Any, sts: Any
) -> None:
    role_arn = new_role(iam, "wide2", trust(ACCOUNT_ROOT), ADMINISTRATOR_ACCESS)
    policy_arn = iam.create_policy(
        PolicyName="only-list", PolicyDocument=allow("secretsmanager:ListSecrets")
    )["Policy"]["Arn"]
    assumed = sts.assume_role(
        RoleArn=role_arn, RoleSessionName="m-session", PolicyArns=[{"arn": policy_arn}]
    )
    session = deployment.credentials.session(assumed["Credentials"]["AccessKeyId"])
    assert session is not None
    assert session.session_policies == (allow("secretsmanager:ListSecrets"),)
    sm = credentials_client(deployment, "secretsmanager", assumed["Credentials"])
    sm.list_secrets()
    error(lambda: sm.create_secret(Name="nope2", SecretString="v"), "AccessDeniedException")
    error(
        lambda: sts.assume_role(
            RoleArn=role_arn,
            RoleSessionName="m-session",
            PolicyArns=[{"arn": f"arn:aws:iam::{DEV_ACCOUNT}:policy/missing"}],
        ),
        "ValidationError",
        f"Policy arn:aws:iam::{DEV_ACCOUNT}:policy/missing does not exist or is not attachable.",
    )


def test_session_policy_errors(iam: Any, sts: Any) -> None:
    role_arn = new_role(iam, "policy-errors", trust(ACCOUNT_ROOT))
    error(
        lambda: sts.assume_role(RoleArn=role_arn, RoleSessionName="p-session", Policy="{not json"),
        "MalformedPolicyDocument",
    )
    huge = document(
        *(
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": f"arn:aws:secretsmanager:us-east-1:{DEV_ACCOUNT}:secret:app/{n}-*",
            }
            for n in range(40)
        )
    )
    message = error(
        lambda: sts.assume_role(RoleArn=role_arn, RoleSessionName="p-session", Policy=huge),
        "PackedPolicyTooLarge",
    )
    assert message.startswith("Packed policy consumes ") and message.endswith("% of allotted space")
    with_arns = [{"arn": f"arn:aws:iam::{DEV_ACCOUNT}:policy/p{n}"} for n in range(11)]
    error(
        lambda: sts.assume_role(
            RoleArn=role_arn, RoleSessionName="p-session", PolicyArns=with_arns
        ),
        "ValidationError",
    )


def test_session_tags_need_tag_session_in_the_trust_policy(
    deployment: Deployment, iam: Any, sts: Any
) -> None:
    plain = new_role(iam, "no-tags", trust(ACCOUNT_ROOT))
    tags = [{"Key": "team", "Value": "payments"}, {"Key": "env", "Value": "prod"}]
    error(
        lambda: sts.assume_role(RoleArn=plain, RoleSessionName="t-session", Tags=tags),
        "AccessDenied",
        f"User: {ADMIN_ARN} is not authorized to perform: sts:TagSession on resource: {plain}",
        status=403,
    )
    tagging = new_role(
        iam,
        "tags",
        trust(ACCOUNT_ROOT, None, "sts:TagSession"),
        ADMINISTRATOR_ACCESS,
    )
    assumed = sts.assume_role(
        RoleArn=tagging, RoleSessionName="t-session", Tags=tags, TransitiveTagKeys=["team"]
    )
    assert assumed["PackedPolicySize"] > 0
    session = deployment.credentials.session(assumed["Credentials"]["AccessKeyId"])
    assert session is not None
    assert session.session_tags == (("team", "payments"), ("env", "prod"))
    assert session.transitive_tag_keys == ("team",)
    # A chained session keeps the transitive tags and may not restate them.
    hop = credentials_client(deployment, "sts", assumed["Credentials"])
    error(
        lambda: hop.assume_role(
            RoleArn=tagging, RoleSessionName="t2", Tags=[{"Key": "Team", "Value": "other"}]
        ),
        "InvalidParameterValue",
    )
    chained = hop.assume_role(RoleArn=tagging, RoleSessionName="t2")
    chained_session = deployment.credentials.session(chained["Credentials"]["AccessKeyId"])
    assert chained_session is not None
    assert chained_session.session_tags == (("team", "payments"),)
    assert chained_session.transitive_tag_keys == ("team",)


def test_session_tag_input_errors(iam: Any, sts: Any) -> None:
    role_arn = new_role(iam, "tag-errors", trust(ACCOUNT_ROOT, None, "sts:TagSession"))
    for tags, transitive in (
        ([{"Key": "a", "Value": "1"}, {"Key": "A", "Value": "2"}], []),
        ([{"Key": "aws:thing", "Value": "1"}], []),
        ([{"Key": "a", "Value": "1"}], ["b"]),
    ):
        error(
            lambda tags=tags, transitive=transitive: sts.assume_role(
                RoleArn=role_arn,
                RoleSessionName="t-session",
                Tags=tags,
                TransitiveTagKeys=transitive,
            ),
            "InvalidParameterValue",
        )


def test_session_tags_are_principal_tags_for_the_authorizer(
    deployment: Deployment, iam: Any, sts: Any
) -> None:
    sm = client(deployment, "secretsmanager")
    sm.create_secret(
        Name="payments/db", SecretString="v", Tags=[{"Key": "team", "Value": "payments"}]
    )
    sm.create_secret(Name="search/db", SecretString="v", Tags=[{"Key": "team", "Value": "search"}])
    role_arn = new_role(iam, "abac", trust(ACCOUNT_ROOT, None, "sts:TagSession"))
    iam.put_role_policy(
        RoleName="abac",
        PolicyName="by-team",
        PolicyDocument=document(
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}},
            }
        ),
    )
    assumed = sts.assume_role(
        RoleArn=role_arn, RoleSessionName="abac", Tags=[{"Key": "team", "Value": "payments"}]
    )
    session_sm = credentials_client(deployment, "secretsmanager", assumed["Credentials"])
    assert session_sm.get_secret_value(SecretId="payments/db")["SecretString"] == "v"
    error(lambda: session_sm.get_secret_value(SecretId="search/db"), "AccessDeniedException")


def test_source_identity(deployment: Deployment, iam: Any, sts: Any) -> None:
    plain = new_role(iam, "no-source", trust(ACCOUNT_ROOT))
    error(
        lambda: sts.assume_role(RoleArn=plain, RoleSessionName="s-session", SourceIdentity="alice"),
        "AccessDenied",
        f"User: {ADMIN_ARN} is not authorized to perform: sts:SetSourceIdentity on resource: "
        f"{plain}",
        status=403,
    )
    pinned = new_role(
        iam,
        "source",
        trust(
            ACCOUNT_ROOT, {"StringLike": {"sts:SourceIdentity": "ali*"}}, "sts:SetSourceIdentity"
        ),
        ADMINISTRATOR_ACCESS,
    )
    error(
        lambda: sts.assume_role(RoleArn=pinned, RoleSessionName="s-session", SourceIdentity="bob"),
        "AccessDenied",
        status=403,
    )
    assumed = sts.assume_role(RoleArn=pinned, RoleSessionName="s-session", SourceIdentity="alice")
    assert assumed["SourceIdentity"] == "alice"
    hop = credentials_client(deployment, "sts", assumed["Credentials"])
    chained = hop.assume_role(RoleArn=pinned, RoleSessionName="s2")
    assert chained["SourceIdentity"] == "alice"  # it persists through role chaining
    error(
        lambda: hop.assume_role(RoleArn=pinned, RoleSessionName="s3", SourceIdentity="alina"),
        "InvalidParameterValue",
    )


# GetSessionToken ---------------------------------------------------------------------------


def test_get_session_token_for_a_user(
    deployment: Deployment, iam: Any, sts: Any, clock: ManualClock
) -> None:
    hana = new_user(deployment, iam, "hana", allow("secretsmanager:ListSecrets"))
    issued = hana["sts"].get_session_token()["Credentials"]
    assert issued["AccessKeyId"].startswith("ASIA")
    assert issued["Expiration"] == clock.now() + timedelta(hours=12)
    session_sts = credentials_client(deployment, "sts", issued)
    identity = session_sts.get_caller_identity()
    assert identity["Arn"] == hana["user"]["Arn"]
    assert identity["UserId"] == hana["user"]["UserId"]
    session_sm = credentials_client(deployment, "secretsmanager", issued)
    session_sm.list_secrets()  # the user's own permissions
    error(lambda: session_sm.create_secret(Name="x", SecretString="v"), "AccessDeniedException")
    error(
        session_sts.get_session_token,
        "AccessDenied",
        "Cannot call GetSessionToken with session credentials",
        status=403,
    )
    error(
        credentials_client(deployment, "iam", issued).list_users,
        "InvalidClientTokenId",
        INVALID_TOKEN,
        status=403,
    )
    clock.advance(timedelta(hours=12))
    error(session_sts.get_caller_identity, "ExpiredToken", EXPIRED_TOKEN, status=403)


def test_get_session_token_durations(sts: Any, raw: Any, clock: ManualClock) -> None:
    shortest = sts.get_session_token(DurationSeconds=900)["Credentials"]
    assert shortest["Expiration"] == clock.now() + timedelta(seconds=900)
    longest = sts.get_session_token(DurationSeconds=129600)["Credentials"]
    assert longest["Expiration"] == clock.now() + timedelta(hours=36)
    for value, bound in (
        (899, "greater than or equal to 900"),
        (129601, "less than or equal to 129600"),
    ):
        error(
            lambda value=value: raw.get_session_token(DurationSeconds=value),
            "ValidationError",
            f"1 validation error detected: Value '{value}' at 'durationSeconds' failed to "
            f"satisfy constraint: Member must have value {bound}",
        )


def test_a_role_session_cannot_call_get_session_token(
    deployment: Deployment, iam: Any, sts: Any
) -> None:
    credentials = assumed_admin(deployment, iam, sts)
    error(
        credentials_client(deployment, "sts", credentials).get_session_token,
        "AccessDenied",
        "Cannot call GetSessionToken with session credentials",
        status=403,
    )


# GetAccessKeyInfo --------------------------------------------------------------------------


def test_get_access_key_info(deployment: Deployment, iam: Any, sts: Any) -> None:
    ivan = new_user(deployment, iam, "ivan")
    assert sts.get_access_key_info(AccessKeyId=ivan["key"]["AccessKeyId"])["Account"] == (
        DEV_ACCOUNT
    )
    credentials = assumed_admin(deployment, iam, sts)
    info = sts.get_access_key_info(AccessKeyId=credentials["AccessKeyId"])
    assert info["Account"] == DEV_ACCOUNT
    error(
        lambda: sts.get_access_key_info(AccessKeyId="AKIAEXAMPLENOTAKEY01"),
        "InvalidParameterValue",
    )


def test_the_account_root_as_a_caller(deployment: Deployment, clock: ManualClock) -> None:
    """No root credentials are handed out, but STS knows the root user as AWS does: its
    UserId is the account id, and its sessions last at most an hour."""
    identities = IdentityService(
        deployment.store, deployment.barrier, clock, deployment.credentials
    )
    service = SecurityTokenService(
        deployment.store,
        deployment.credentials,
        identities,
        clock,
        MfaDevices(deployment.store, deployment.barrier, clock, identities.tokens),
    )
    root = Principal(DEV_ACCOUNT, ACCOUNT_ROOT, "AKIAROOTEXAMPLE00001", kind="root")
    caller = Caller(DEV_ACCOUNT, "us-east-1", ACCOUNT_ROOT, principal=root)
    assert service.get_caller_identity(caller, {}) == {
        "UserId": DEV_ACCOUNT,
        "Account": DEV_ACCOUNT,
        "Arn": ACCOUNT_ROOT,
    }
    issued = service.get_session_token(caller, {})["Credentials"]
    assert issued["Expiration"] == clock.now() + timedelta(hours=1)
    with pytest.raises(ServiceError) as raised:
        service.get_session_token(caller, {"DurationSeconds": 3601})
    assert raised.value.code == "ValidationError"
    found = deployment.credentials.lookup(issued["AccessKeyId"])
    assert found is not None and found.principal.kind == "root" and found.temporary
