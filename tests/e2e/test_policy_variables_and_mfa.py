"""Policy variables without a value, the session keys of MFA and token issue time, and the
MFA flow, end to end: a real server, boto3 and the AWS CLI, users, roles, sessions and a
secret resource policy.

AWS behaviour these follow (IAM User Guide):

- "Policy variables with no value": a variable whose key is missing is a null value in
  that one place. ``StringNotEquals`` matches it, so the ABAC guard
  ``Deny StringNotEquals {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}`` denies a
  principal without a ``team`` tag; in ``NotResource`` it excludes nothing.
- "AWS global condition context keys": temporary credentials carry
  ``aws:MultiFactorAuthPresent`` ("false" unless obtained with MFA) and
  ``aws:TokenIssueTime``; long-term keys carry neither.
- "Configuring MFA-protected API access": a virtual MFA device, enabled with two
  consecutive codes, then ``get-session-token --serial-number --token-code``; a code is
  accepted once.

Every refusal is checked for its error code, for changing nothing, and for its audit record.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from tests.aws import ACCOUNT, state
from tests.e2e.test_enforcement import (
    GET,
    REGION,
    Deployment,
    User,
    allow,
    cli,
    deny,
    make_user,
    policy,
    secret,
    start,
    unique,
)
from tests.e2e.test_organizations import _bash, _blocks, _environment, _section

ACCOUNT_ROOT = f"arn:aws:iam::{ACCOUNT}:root"
SECRETS = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:"
TEAM_GUARD = deny(
    GET, Condition={"StringNotEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}}
)
MFA_REQUIRED = allow(GET, Condition={"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}})


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = start(tmp_path_factory.mktemp("policy-variables"))
    yield deployment
    deployment.server.stop()


def explicit_deny(caller: str, arn: str, where: str) -> str:
    return (
        f"User: {caller} is not authorized to perform: {GET} on resource: {arn} "
        f"with an explicit deny in {where}"
    )


def session_client(
    dep: Deployment, credentials: dict[str, Any], service: str = "secretsmanager"
) -> Any:
    return dep.client(
        service,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def tagged_user(dep: Deployment, *inline: str, team: str | None) -> User:
    user = make_user(dep, *inline)
    if team is not None:
        dep.iam.tag_user(UserName=user.name, Tags=[{"Key": "team", "Value": team}])
    return user


# 1. Policy variables with no value ---------------------------------------------------------


def test_abac_guard_in_an_identity_policy_denies_a_principal_without_the_tag(
    dep: Deployment,
) -> None:
    _, blue = secret(dep, "abac/blue", Tags=[{"Key": "team", "Value": "blue"}])
    guarded = policy(allow(GET), TEAM_GUARD)
    member = tagged_user(dep, guarded, team="blue")
    outsider = tagged_user(dep, guarded, team="red")
    untagged = tagged_user(dep, guarded, team=None)

    assert member.client().get_secret_value(SecretId=blue)["ARN"] == blue
    before = state(dep.sm, blue, values=True)
    for user in (outsider, untagged):
        dep.refused(
            user.client().get_secret_value,
            SecretId=blue,
            message=explicit_deny(user.arn, blue, "an identity-based policy"),
        )
    assert state(dep.sm, blue, values=True) == before


def test_abac_guard_in_a_secret_resource_policy(dep: Deployment) -> None:
    name, arn = secret(dep, "abac/shared", Tags=[{"Key": "team", "Value": "blue"}])
    dep.sm.put_resource_policy(
        SecretId=arn, ResourcePolicy=policy({**TEAM_GUARD, "Principal": "*"})
    )
    member = tagged_user(dep, policy(allow(GET)), team="blue")
    untagged = tagged_user(dep, policy(allow(GET)), team=None)
    assert member.client().get_secret_value(SecretId=arn)["Name"] == name
    before = state(dep.sm, arn, policy=True)
    dep.refused(
        untagged.client().get_secret_value,
        SecretId=arn,
        message=explicit_deny(untagged.arn, arn, "a resource-based policy"),
    )
    assert state(dep.sm, arn, policy=True) == before


def test_a_not_resource_deny_on_the_username_fences_role_sessions(dep: Deployment) -> None:
    # "Only your own secrets": Deny everything but secret:${aws:username}-*. A role
    # session has no aws:username, so the Deny applies to every secret for it.
    outside_home = {"Effect": "Deny", "Action": GET, "NotResource": f"{SECRETS}${{aws:username}}-*"}
    fence = policy(allow(GET), outside_home)
    user = make_user(dep, fence)
    own_name, own = secret(dep, prefix=user.name)
    assert own_name.startswith(f"{user.name}-")
    _, other = secret(dep, "fence/other")
    assert user.client().get_secret_value(SecretId=own)["ARN"] == own
    dep.refused(
        user.client().get_secret_value,
        SecretId=other,
        message=explicit_deny(user.arn, other, "an identity-based policy"),
    )

    role = unique("fenced")
    trust = policy(
        {"Effect": "Allow", "Principal": {"AWS": ACCOUNT_ROOT}, "Action": "sts:AssumeRole"}
    )
    dep.iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)
    dep.iam.put_role_policy(RoleName=role, PolicyName="fence", PolicyDocument=fence)
    credentials = dep.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}", RoleSessionName="s1"
    )["Credentials"]
    session_arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/s1"
    for arn in (own, other):
        dep.refused(
            session_client(dep, credentials).get_secret_value,
            SecretId=arn,
            message=explicit_deny(session_arn, arn, "an identity-based policy"),
        )


# 2. Session keys ---------------------------------------------------------------------------


def test_session_keys_apply_to_sessions_and_not_to_long_term_keys(dep: Deployment) -> None:
    _, arn = secret(dep, "session-keys")
    no_mfa_sessions = policy(
        allow(GET), deny(GET, Condition={"Bool": {"aws:MultiFactorAuthPresent": "false"}})
    )
    long_term_only = policy(allow(GET, Condition={"Null": {"aws:TokenIssueTime": "true"}}))
    for text in (no_mfa_sessions, long_term_only):
        user = make_user(dep, text)
        assert user.client().get_secret_value(SecretId=arn)["ARN"] == arn
        credentials = user.client("sts").get_session_token()["Credentials"]
        dep.refused(session_client(dep, credentials).get_secret_value, SecretId=arn)

    # Any temporary credential has the key, so Null "false" allows it (and not a key).
    temporary_only = policy(allow(GET, Condition={"Null": {"aws:MultiFactorAuthPresent": "false"}}))
    user = make_user(dep, temporary_only)
    credentials = user.client("sts").get_session_token()["Credentials"]
    assert session_client(dep, credentials).get_secret_value(SecretId=arn)["ARN"] == arn
    dep.refused(user.client().get_secret_value, SecretId=arn)


# The MFA flow ------------------------------------------------------------------------------


def code(seed: bytes, steps_from_now: int = 0) -> str:
    totp = TOTP(base64.b32decode(seed), 6, SHA1(), 30)
    return totp.generate(time.time() + 30 * steps_from_now).decode()


def test_mfa_flow_with_the_cli(dep: Deployment) -> None:
    _, arn = secret(dep, "mfa-guarded")
    user = make_user(dep, policy(MFA_REQUIRED))
    device = dep.iam.create_virtual_mfa_device(VirtualMFADeviceName=unique("phone"))
    serial = device["VirtualMFADevice"]["SerialNumber"]
    seed = device["VirtualMFADevice"]["Base32StringSeed"]
    cli(
        dep, "iam", "enable-mfa-device", "--user-name", user.name, "--serial-number", serial,
        "--authentication-code1", code(seed, -1), "--authentication-code2", code(seed),
    )  # fmt: skip
    listed = dep.iam.list_mfa_devices(UserName=user.name)["MFADevices"]
    assert [item["SerialNumber"] for item in listed] == [serial]

    key = (user.key_id, user.secret)
    token = code(seed, 1)  # the enrolment spent this step's code: the next one is due
    issued = cli(
        dep, "sts", "get-session-token", "--serial-number", serial, "--token-code", token, key=key
    )["Credentials"]
    assert session_client(dep, issued).get_secret_value(SecretId=arn)["ARN"] == arn

    # Without MFA a session is refused (aws:MultiFactorAuthPresent is "false"); the long-term
    # key passes BoolIfExists, as AWS documents.
    plain = user.client("sts").get_session_token()["Credentials"]
    before = state(dep.sm, arn)
    dep.refused(
        session_client(dep, plain).get_secret_value,
        SecretId=arn,
        message=(
            f"User: {user.arn} is not authorized to perform: {GET} on resource: {arn} "
            f"because no identity-based policy allows the {GET} action"
        ),
    )
    assert user.client().get_secret_value(SecretId=arn)["ARN"] == arn

    # The code is spent; a wrong one is refused; both audited, neither issues credentials.
    for reused in (token, "000000" if token != "000000" else "111111"):
        dep.refused(
            user.client("sts").get_session_token,
            SerialNumber=serial,
            TokenCode=reused,
            code="AccessDenied",
            message="MultiFactorAuthentication failed with invalid MFA one time pass code.",
            status=403,
        )
    assert state(dep.sm, arn) == before

    # The device belongs to the user: nobody else can use its codes.
    other = make_user(dep, policy(MFA_REQUIRED))
    dep.refused(
        other.client("sts").get_session_token,
        SerialNumber=serial,
        TokenCode=code(seed, 1),
        code="AccessDenied",
        message="MultiFactorAuthentication failed, unable to validate MFA code.",
        status=403,
    )


# docs/iam.md, run as written ---------------------------------------------------------------


def run_section(dep: Deployment, tmp_path: Path, title: str) -> str:
    """The one ``sh`` block of a docs/iam.md section, run against the server with the
    admin's credentials; its standard output."""
    ((language, script),) = _blocks(_section(title))
    assert language == "sh"
    return _bash(script, _environment(dep.server, tmp_path), tmp_path)


def test_the_abac_section_of_the_iam_docs_runs_as_written(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    dep = start(tmp_path_factory.mktemp("abac-doc"))  # the doc's names need a fresh account
    try:
        out = run_section(dep, tmp_path, "Access by team: ABAC with principal tags")
        assert out.splitlines() == [
            f"arn:aws:iam::{ACCOUNT}:policy/TeamSecrets",
            '"for blue only"',
            "sam is refused",
        ]
        (denied,) = [
            record
            for path in sorted((dep.data_dir / "audit" / "logs").glob("*/*.jsonl"))
            for record in map(orjson.loads, path.read_bytes().splitlines())
            if record.get("eventName") == "GetSecretValue" and record.get("errorCode")
        ]
        assert denied["errorCode"] == "AccessDeniedException"
        assert denied["userIdentity"]["arn"] == f"arn:aws:iam::{ACCOUNT}:user/sam"
        assert "explicit deny in an identity-based policy" in denied["errorMessage"]
    finally:
        dep.server.stop()


def test_the_mfa_section_of_the_iam_docs_runs_as_written(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    dep = start(tmp_path_factory.mktemp("mfa-doc"))
    try:
        out = run_section(dep, tmp_path, "Requiring MFA")
        assert out.splitlines() == ['"needs MFA"', "no MFA: refused"]
        assert len(base64.b32decode((tmp_path / "mia-seed.txt").read_bytes().strip())) == 40
    finally:
        dep.server.stop()
