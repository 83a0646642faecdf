"""STS end to end: a real server process, boto3 and the AWS CLI. Expiry is tested at
domain level (tests/unit/test_sts_service.py), since the shortest session lasts 15 minutes.

The AWS errors and texts checked here are listed, with where they are on record, in
tests/unit/test_sts_service.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.aws import ACCOUNT, aws_error, body
from tests.server import ServerProcess

INVALID_TOKEN = "The security token included in the request is invalid."
ADMIN_ARN = f"arn:aws:iam::{ACCOUNT}:user/admin"
ACCOUNT_ROOT = f"arn:aws:iam::{ACCOUNT}:root"
AWS_CLI = Path(sys.executable).with_name("aws")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def trust(principal: str, condition: dict[str, Any] | None = None) -> str:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def session_client(server: ServerProcess, service: str, credentials: dict[str, Any]) -> Any:
    return server.client(
        service,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials.get("SessionToken"),
    )


@pytest.fixture
def iam(server: ServerProcess) -> Any:
    return server.client("iam")


@pytest.fixture
def sts(server: ServerProcess) -> Any:
    return server.client("sts")


@pytest.fixture
def role(iam: Any) -> Callable[..., str]:
    """role(trust_policy, *policy_arns, **create_role_args) -> a new role's ARN."""

    def make(trust_policy: str, *policy_arns: str, **extra: Any) -> str:
        name = unique("role")
        arn: str = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust_policy, **extra)[
            "Role"
        ]["Arn"]
        for policy_arn in policy_arns:
            iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
        return arn

    return make


@pytest.fixture
def user(server: ServerProcess, iam: Any) -> Callable[..., dict[str, Any]]:
    """user(*inline_policies) -> {"user", "key", "credentials"}: an IAM user with a key."""

    def make(*policies: str) -> dict[str, Any]:
        name = unique("user")
        created = iam.create_user(UserName=name)["User"]
        for number, text in enumerate(policies):
            iam.put_user_policy(UserName=name, PolicyName=f"p{number}", PolicyDocument=text)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return {"user": created, "key": key, "credentials": key}

    return make


def allow(action: str, resource: str = "*") -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}],
        }
    )


# GetCallerIdentity ------------------------------------------------------------------------


def test_get_caller_identity_of_the_admin(iam: Any, sts: Any) -> None:
    assert body(sts.get_caller_identity()) == {
        "UserId": iam.get_user()["User"]["UserId"],
        "Account": ACCOUNT,
        "Arn": ADMIN_ARN,
    }


def test_get_caller_identity_of_a_new_user_with_its_own_key(
    server: ServerProcess, user: Callable[..., dict[str, Any]]
) -> None:
    made = user()
    identity = session_client(server, "sts", made["credentials"]).get_caller_identity()
    assert body(identity) == {
        "UserId": made["user"]["UserId"],
        "Account": ACCOUNT,
        "Arn": made["user"]["Arn"],
    }


def test_get_caller_identity_of_an_assumed_role_session(
    server: ServerProcess, iam: Any, sts: Any, role: Callable[..., str]
) -> None:
    role_arn = role(trust(ACCOUNT_ROOT))
    role_id = iam.get_role(RoleName=role_arn.rsplit("/", 1)[1])["Role"]["RoleId"]
    assumed = sts.assume_role(RoleArn=role_arn, RoleSessionName="e2e-session")
    identity = session_client(server, "sts", assumed["Credentials"]).get_caller_identity()
    assert body(identity) == {
        "UserId": f"{role_id}:e2e-session",
        "Account": ACCOUNT,
        "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_arn.rsplit('/', 1)[1]}/e2e-session",
    }
    assert assumed["AssumedRoleUser"]["Arn"] == identity["Arn"]
    assert assumed["AssumedRoleUser"]["AssumedRoleId"] == identity["UserId"]


# AssumeRole --------------------------------------------------------------------------------


def test_assume_role_is_allowed_and_denied_by_the_trust_policy(
    server: ServerProcess, sts: Any, role: Callable[..., str], user: Callable[..., dict[str, Any]]
) -> None:
    outsider = user(allow("sts:AssumeRole"))
    role_arn = role(trust(ADMIN_ARN))
    sts.assume_role(RoleArn=role_arn, RoleSessionName="admin")
    aws_error(
        session_client(server, "sts", outsider["credentials"]).assume_role,
        RoleArn=role_arn,
        RoleSessionName="outsider",
        code="AccessDenied",
        message=f"User: {outsider['user']['Arn']} is not authorized to perform: "
        f"sts:AssumeRole on resource: {role_arn}",
        status=403,
    )


def test_external_id_both_ways(sts: Any, role: Callable[..., str]) -> None:
    role_arn = role(trust(ACCOUNT_ROOT, {"StringEquals": {"sts:ExternalId": "e2e-external"}}))
    denied = (
        f"User: {ADMIN_ARN} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    )
    aws_error(
        sts.assume_role,
        RoleArn=role_arn,
        RoleSessionName="no-id",
        code="AccessDenied",
        message=denied,
        status=403,
    )
    aws_error(
        sts.assume_role,
        RoleArn=role_arn,
        RoleSessionName="bad-id",
        ExternalId="not-it",
        code="AccessDenied",
        message=denied,
        status=403,
    )
    sts.assume_role(RoleArn=role_arn, RoleSessionName="good-id", ExternalId="e2e-external")


def test_a_trust_policy_reads_the_source_ip(sts: Any, role: Callable[..., str]) -> None:
    # The client connects from loopback: aws:SourceIp is 127.0.0.1.
    from_here = role(trust(ACCOUNT_ROOT, {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}))
    sts.assume_role(RoleArn=from_here, RoleSessionName="loopback")
    elsewhere = role(trust(ACCOUNT_ROOT, {"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}))
    aws_error(
        sts.assume_role,
        RoleArn=elsewhere,
        RoleSessionName="loopback",
        code="AccessDenied",
        message=f"User: {ADMIN_ARN} is not authorized to perform: sts:AssumeRole on resource: "
        f"{elsewhere}",
        status=403,
    )
    # A guard that denies every network but one refuses this caller, which is outside it
    # (were aws:SourceIp missing from the request, the guard would not apply).
    guard = {
        "Effect": "Deny",
        "Principal": {"AWS": ACCOUNT_ROOT},
        "Action": "sts:AssumeRole",
        "Condition": {"NotIpAddress": {"aws:SourceIp": "198.51.100.0/24"}},
    }
    guarded_policy = json.loads(trust(ACCOUNT_ROOT))
    guarded_policy["Statement"].append(guard)
    guarded = role(json.dumps(guarded_policy))
    aws_error(
        sts.assume_role,
        RoleArn=guarded,
        RoleSessionName="loopback",
        code="AccessDenied",
        status=403,
    )


def test_duration_seconds_bounds(server: ServerProcess, sts: Any, role: Callable[..., str]) -> None:
    role_arn = role(trust(ACCOUNT_ROOT))
    before = datetime.now(UTC)
    short = sts.assume_role(RoleArn=role_arn, RoleSessionName="short", DurationSeconds=900)
    expiration = short["Credentials"]["Expiration"]
    assert (
        before + timedelta(seconds=899) <= expiration <= datetime.now(UTC) + timedelta(seconds=901)
    )
    raw = server.client("sts", validate=False)
    aws_error(
        raw.assume_role,
        RoleArn=role_arn,
        RoleSessionName="too-short",
        DurationSeconds=899,
        code="ValidationError",
        message="1 validation error detected: Value '899' at 'durationSeconds' failed to "
        "satisfy constraint: Member must have value greater than or equal to 900",
    )
    aws_error(
        sts.assume_role,
        RoleArn=role_arn,
        RoleSessionName="too-long",
        DurationSeconds=3601,
        code="ValidationError",
        message="The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
    )


# Session credentials -----------------------------------------------------------------------


def test_session_credentials_and_their_token(
    server: ServerProcess, sts: Any, role: Callable[..., str]
) -> None:
    role_arn = role(trust(ACCOUNT_ROOT), "arn:aws:iam::aws:policy/AdministratorAccess")
    credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName="tokens")["Credentials"]
    session_client(server, "sts", credentials).get_caller_identity()
    session_client(server, "secretsmanager", credentials).list_secrets()
    token = credentials["SessionToken"]
    tampered = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    for wrong in ({"SessionToken": tampered}, {"SessionToken": None}):
        forged = {**credentials, **wrong}
        aws_error(
            session_client(server, "sts", forged).get_caller_identity,
            code="InvalidClientTokenId",
            message=INVALID_TOKEN,
            status=403,
        )
        aws_error(
            session_client(server, "secretsmanager", forged).list_secrets,
            code="UnrecognizedClientException",
            message=INVALID_TOKEN,
        )


def test_deactivated_and_deleted_keys_are_refused(
    server: ServerProcess, iam: Any, user: Callable[..., dict[str, Any]]
) -> None:
    made = user()
    name, key_id = made["user"]["UserName"], made["key"]["AccessKeyId"]
    user_sts = session_client(server, "sts", made["credentials"])
    user_sts.get_caller_identity()
    iam.update_access_key(UserName=name, AccessKeyId=key_id, Status="Inactive")
    aws_error(
        user_sts.get_caller_identity, code="InvalidClientTokenId", message=INVALID_TOKEN, status=403
    )
    aws_error(
        session_client(server, "secretsmanager", made["credentials"]).list_secrets,
        code="UnrecognizedClientException",
        message=INVALID_TOKEN,
    )
    iam.delete_access_key(UserName=name, AccessKeyId=key_id)
    aws_error(
        user_sts.get_caller_identity, code="InvalidClientTokenId", message=INVALID_TOKEN, status=403
    )
    iam.delete_user(UserName=name)


# GetSessionToken, GetAccessKeyInfo -----------------------------------------------------------


def test_get_session_token(server: ServerProcess, user: Callable[..., dict[str, Any]]) -> None:
    made = user(allow("secretsmanager:ListSecrets"))
    user_sts = session_client(server, "sts", made["credentials"])
    before = datetime.now(UTC)
    issued = user_sts.get_session_token()["Credentials"]
    assert issued["AccessKeyId"].startswith("ASIA")
    assert issued["Expiration"] >= before + timedelta(hours=12) - timedelta(seconds=1)
    session_sts = session_client(server, "sts", issued)
    assert session_sts.get_caller_identity()["Arn"] == made["user"]["Arn"]
    session_client(server, "secretsmanager", issued).list_secrets()
    aws_error(
        session_sts.get_session_token,
        code="AccessDenied",
        message="Cannot call GetSessionToken with session credentials",
        status=403,
    )
    aws_error(
        session_client(server, "iam", issued).list_users,
        code="InvalidClientTokenId",
        message=INVALID_TOKEN,
        status=403,
    )


def test_get_access_key_info(sts: Any, user: Callable[..., dict[str, Any]]) -> None:
    made = user()
    info = sts.get_access_key_info(AccessKeyId=made["key"]["AccessKeyId"])
    assert body(info) == {"Account": ACCOUNT}


# The AWS CLI and the audit trail -----------------------------------------------------------


def cli(server: ServerProcess, *args: str, **env: str) -> Any:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run(
        [str(AWS_CLI), *args, "--output", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **clean,
            "AWS_ENDPOINT_URL": server.url,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            **env,
        },
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_aws_cli_assumes_a_role_and_uses_the_session(
    server: ServerProcess, role: Callable[..., str]
) -> None:
    role_arn = role(trust(ACCOUNT_ROOT))
    assumed = cli(
        server, "sts", "assume-role", "--role-arn", role_arn, "--role-session-name", "cli"
    )
    credentials = assumed["Credentials"]
    identity = cli(
        server,
        "sts",
        "get-caller-identity",
        AWS_ACCESS_KEY_ID=credentials["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=credentials["SecretAccessKey"],
        AWS_SESSION_TOKEN=credentials["SessionToken"],
    )
    assert identity["Arn"] == assumed["AssumedRoleUser"]["Arn"]
    assert identity["Account"] == ACCOUNT


def test_session_secrets_stay_out_of_the_audit_trail_and_the_log(
    server: ServerProcess, sts: Any, role: Callable[..., str]
) -> None:
    role_arn = role(trust(ACCOUNT_ROOT))
    assumed = sts.assume_role(RoleArn=role_arn, RoleSessionName="audited")
    credentials = assumed["Credentials"]
    session_client(server, "sts", credentials).get_caller_identity()
    request_id = assumed["ResponseMetadata"]["RequestId"]
    trail = server.client("cloudtrail")
    events = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "AssumeRole"}]
    )["Events"]
    [event] = [
        json.loads(e["CloudTrailEvent"])
        for e in events
        # .get: a function's invocation assumes its role as a service event, without one
        if json.loads(e["CloudTrailEvent"]).get("requestID") == request_id
    ]
    assert event["eventSource"] == "sts.amazonaws.com"
    assert event["requestParameters"] == {"roleArn": role_arn, "roleSessionName": "audited"}
    recorded = event["responseElements"]["credentials"]
    assert set(recorded) == {"accessKeyId", "expiration"}  # no secret, no token
    assert recorded["accessKeyId"] == credentials["AccessKeyId"]
    text = json.dumps(events, default=str)
    for secret in (credentials["SecretAccessKey"], credentials["SessionToken"]):
        assert secret not in text
        assert secret not in server.log()


# Issue 22: principals, boundaries and sessions on trust ------------------------------------


def managed(iam: Any, text: str) -> str:
    """A new customer managed policy's ARN."""
    return str(iam.create_policy(PolicyName=unique("policy"), PolicyDocument=text)["Policy"]["Arn"])


def denied_assume(client: Any, caller_arn: str, role_arn: str, **extra: Any) -> None:
    aws_error(
        client.assume_role,
        RoleArn=role_arn,
        RoleSessionName="denied",
        code="AccessDenied",
        message=f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on "
        f"resource: {role_arn}",
        status=403,
        **extra,
    )


def test_a_permissions_boundary_limits_a_trust_policy_naming_the_user(
    server: ServerProcess,
    iam: Any,
    role: Callable[..., str],
    user: Callable[..., dict[str, Any]],
) -> None:
    made = user()
    name, arn = made["user"]["UserName"], made["user"]["Arn"]
    by_arn = role(trust(arn))
    by_everyone = role(trust("*", {"StringEquals": {"aws:PrincipalArn": arn}}))
    user_sts = session_client(server, "sts", made["credentials"])
    # No identity policy is needed when the trust policy names the user: it assumes both.
    user_sts.assume_role(RoleArn=by_arn, RoleSessionName="before")
    user_sts.assume_role(RoleArn=by_everyone, RoleSessionName="before")
    iam.put_user_permissions_boundary(
        UserName=name, PermissionsBoundary=managed(iam, allow("secretsmanager:ListSecrets"))
    )
    for role_arn in (by_arn, by_everyone):
        denied_assume(user_sts, arn, role_arn)
    iam.put_user_permissions_boundary(
        UserName=name, PermissionsBoundary=managed(iam, allow("sts:AssumeRole", by_arn))
    )
    user_sts.assume_role(RoleArn=by_arn, RoleSessionName="allowed")
    denied_assume(user_sts, arn, by_everyone)


def test_a_session_of_a_deleted_role_authenticates_nothing(
    server: ServerProcess, iam: Any, sts: Any, sm: Any, role: Callable[..., str], name: str
) -> None:
    """Not even what a resource policy grants everyone, nor GetCallerIdentity: its key is
    no key once its role is gone (strongroom/iam/credentials.py ``_bound``), and a new
    role of the same name is another role."""
    first = role(trust(ACCOUNT_ROOT), "arn:aws:iam::aws:policy/AdministratorAccess")
    first_name = first.rsplit("/", 1)[1]
    second = role(trust(first))
    everyone = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
            }
        ],
    }
    sm.create_secret(Name=name, SecretString="for everyone")
    sm.put_resource_policy(SecretId=name, ResourcePolicy=json.dumps(everyone))
    credentials = sts.assume_role(RoleArn=first, RoleSessionName="orphan")["Credentials"]
    session_sts = session_client(server, "sts", credentials)
    session_sm = session_client(server, "secretsmanager", credentials)
    session_sts.assume_role(RoleArn=second, RoleSessionName="while-it-lives")
    assert session_sm.get_secret_value(SecretId=name)["SecretString"] == "for everyone"

    def refused() -> None:
        for call, params in (
            (session_sts.get_caller_identity, {}),
            (session_sts.assume_role, {"RoleArn": second, "RoleSessionName": "after"}),
        ):
            aws_error(
                call, **params, code="InvalidClientTokenId", message=INVALID_TOKEN, status=403
            )
        for call, params in (
            (session_sm.get_secret_value, {"SecretId": name}),
            (session_sm.list_secrets, {}),
        ):
            aws_error(
                call,
                **params,
                code="UnrecognizedClientException",
                message=INVALID_TOKEN,
                status=400,
            )

    iam.detach_role_policy(
        RoleName=first_name, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess"
    )
    iam.delete_role(RoleName=first_name)
    refused()
    # A new role of the same name is another role: the old session stays refused.
    iam.create_role(RoleName=first_name, AssumeRolePolicyDocument=trust(ACCOUNT_ROOT))
    iam.attach_role_policy(
        RoleName=first_name, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess"
    )
    refused()
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "for everyone"


def test_a_carried_source_identity_needs_set_source_identity_in_the_next_trust_policy(
    server: ServerProcess, sts: Any, role: Callable[..., str]
) -> None:
    with_source = {
        "Effect": "Allow",
        "Principal": {"AWS": ACCOUNT_ROOT},
        "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
    }
    first = role(json.dumps({"Version": "2012-10-17", "Statement": [with_source]}))
    assume_only = role(trust(first))
    with_source["Principal"] = {"AWS": first}
    accepting = role(json.dumps({"Version": "2012-10-17", "Statement": [with_source]}))
    plain = sts.assume_role(RoleArn=first, RoleSessionName="plain")["Credentials"]
    # Without a source identity, sts:AssumeRole is enough.
    session_client(server, "sts", plain).assume_role(RoleArn=assume_only, RoleSessionName="ok")
    carrying = sts.assume_role(RoleArn=first, RoleSessionName="carry", SourceIdentity="alice")
    hop = session_client(server, "sts", carrying["Credentials"])
    session_arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/{first.rsplit('/', 1)[1]}/carry"
    aws_error(
        hop.assume_role,
        RoleArn=assume_only,
        RoleSessionName="refused",
        code="AccessDenied",
        message=f"User: {session_arn} is not authorized to perform: sts:SetSourceIdentity on "
        f"resource: {assume_only}",
        status=403,
    )
    chained = hop.assume_role(RoleArn=accepting, RoleSessionName="chained")
    assert chained["SourceIdentity"] == "alice"


# GetFederationToken ------------------------------------------------------------------------


def test_get_federation_token(
    server: ServerProcess, sm: Any, user: Callable[..., dict[str, Any]], name: str
) -> None:
    secret_arn = sm.create_secret(Name=name, SecretString="federated")["ARN"]
    made = user(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": [
                            "sts:GetFederationToken",
                            "secretsmanager:ListSecrets",
                            "secretsmanager:GetSecretValue",
                        ],
                        "Resource": "*",
                    }
                ],
            }
        )
    )
    user_sts = session_client(server, "sts", made["credentials"])
    before = datetime.now(UTC)
    issued = user_sts.get_federation_token(
        Name="fed-bob", Policy=allow("secretsmanager:ListSecrets")
    )
    arn = f"arn:aws:sts::{ACCOUNT}:federated-user/fed-bob"
    assert issued["FederatedUser"] == {"FederatedUserId": f"{ACCOUNT}:fed-bob", "Arn": arn}
    assert issued["PackedPolicySize"] > 0
    credentials = issued["Credentials"]
    assert credentials["AccessKeyId"].startswith("ASIA")
    assert credentials["Expiration"] >= before + timedelta(hours=12) - timedelta(seconds=1)
    fed_sts = session_client(server, "sts", credentials)
    assert body(fed_sts.get_caller_identity()) == {
        "UserId": f"{ACCOUNT}:fed-bob",
        "Account": ACCOUNT,
        "Arn": arn,
    }
    # The intersection of the user's policies and the session policy.
    fed_sm = session_client(server, "secretsmanager", credentials)
    fed_sm.list_secrets()
    aws_error(
        fed_sm.get_secret_value,
        SecretId=name,
        code="AccessDeniedException",
        message=f"User: {arn} is not authorized to perform: secretsmanager:GetSecretValue on "
        f"resource: {secret_arn} because no session policy allows the "
        "secretsmanager:GetSecretValue action",
    )
    # No IAM, and no STS but GetCallerIdentity.
    aws_error(
        session_client(server, "iam", credentials).list_users,
        code="InvalidClientTokenId",
        message=INVALID_TOKEN,
        status=403,
    )
    aws_error(fed_sts.get_federation_token, Name="again", code="AccessDenied", status=403)
    aws_error(
        session_client(
            server, "sts", user_sts.get_session_token()["Credentials"]
        ).get_federation_token,
        Name="again",
        code="AccessDenied",
        message="Cannot call GetFederationToken with session credentials",
        status=403,
    )
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/any"
    aws_error(
        fed_sts.assume_role,
        RoleArn=role_arn,
        RoleSessionName="fed",
        code="AccessDenied",
        status=403,
    )
    # Without a session policy a federated user has no permissions of its own.
    bare = user_sts.get_federation_token(Name="fed-bare")["Credentials"]
    assert "PackedPolicySize" not in bare
    aws_error(
        session_client(server, "secretsmanager", bare).list_secrets,
        code="AccessDeniedException",
    )
    raw = server.client(
        "sts",
        validate=False,
        aws_access_key_id=made["key"]["AccessKeyId"],
        aws_secret_access_key=made["key"]["SecretAccessKey"],
    )
    aws_error(
        raw.get_federation_token,
        Name="fed-long",
        DurationSeconds=129601,
        code="ValidationError",
        message="1 validation error detected: Value '129601' at 'durationSeconds' failed to "
        "satisfy constraint: Member must have value less than or equal to 129600",
    )


def test_get_federation_token_needs_its_permission(
    server: ServerProcess, user: Callable[..., dict[str, Any]]
) -> None:
    made = user(allow("secretsmanager:ListSecrets"))
    aws_error(
        session_client(server, "sts", made["credentials"]).get_federation_token,
        Name="fed-nobody",
        code="AccessDenied",
        message=f"User: {made['user']['Arn']} is not authorized to perform: "
        f"sts:GetFederationToken on resource: arn:aws:sts::{ACCOUNT}:federated-user/fed-nobody",
        status=403,
    )
