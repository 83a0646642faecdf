"""The global condition keys of a request (strongroom/policy/global_keys.py)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from strongroom.iam.credentials import Principal
from strongroom.policy.global_keys import global_keys, multi_factor_auth_age

ACCOUNT = "111122223333"
USER = Principal(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/alice", "AKIAALICE")
SESSION = Principal(
    ACCOUNT,
    f"arn:aws:sts::{ACCOUNT}:assumed-role/reader/s1",
    "ASIASESSION",
    kind="assumed-role",
    identity_arn=f"arn:aws:iam::{ACCOUNT}:role/reader",
    session_tags=(("team", "payments"),),
    source_identity="alice@example.com",
)
ROOT = Principal(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root", "AKIAROOT", kind="root")


def keys_of(principal: Principal, **overrides: object) -> dict[str, tuple[str, ...]]:
    arguments: dict[str, object] = {
        "user_id": "AIDAEXAMPLE",
        "user_name": "alice",
        "tags": {},
        "organization_id": None,
        "source_ip": "192.0.2.10",
        "region": "eu-west-1",
    }
    arguments.update(overrides)
    return global_keys(principal, **arguments)  # type: ignore[arg-type]


def test_a_user_s_request() -> None:
    assert keys_of(USER, tags={"team": "search"}, organization_id="o-a1b2c3d4e5") == {
        "aws:PrincipalArn": (USER.arn,),
        "aws:PrincipalAccount": (ACCOUNT,),
        "aws:PrincipalType": ("User",),
        "aws:SecureTransport": ("false",),
        "aws:RequestedRegion": ("eu-west-1",),
        "aws:ViaAWSService": ("false",),
        "aws:PrincipalIsAWSService": ("false",),
        "aws:SourceIp": ("192.0.2.10",),
        "aws:PrincipalOrgID": ("o-a1b2c3d4e5",),
        "aws:userid": ("AIDAEXAMPLE",),
        "aws:username": ("alice",),
        "aws:PrincipalTag/team": ("search",),
    }


def test_a_role_session_s_request() -> None:
    keys = keys_of(
        SESSION, user_id="AROAEXAMPLE:s1", user_name=None, tags={"team": "search", "tier": "1"}
    )
    assert keys["aws:PrincipalArn"] == (SESSION.identity_arn,)  # the role, not the session
    assert keys["aws:PrincipalType"] == ("AssumedRole",)
    assert keys["aws:userid"] == ("AROAEXAMPLE:s1",)
    assert "aws:username" not in keys
    # The session's tags win over the role's own.
    assert keys["aws:PrincipalTag/team"] == ("payments",)
    assert keys["aws:PrincipalTag/tier"] == ("1",)
    assert keys["aws:SourceIdentity"] == ("alice@example.com",)


def test_what_is_left_out_when_unknown() -> None:
    keys = keys_of(ROOT, user_id=None, user_name="ignored", source_ip="")
    assert keys["aws:PrincipalType"] == ("Account",)
    # Outside an organization, for a call from inside the server, no user id: absent, as
    # on AWS, so that a condition on them does not match.
    for absent in ("aws:PrincipalOrgID", "aws:SourceIp", "aws:userid", "aws:username"):
        assert absent not in keys


def test_secure_transport() -> None:
    assert keys_of(USER, secure_transport=True)["aws:SecureTransport"] == ("true",)


ISSUED = datetime(2026, 3, 1, 8, 30, 15, 250_000, tzinfo=UTC)
ISSUED_MS = int(ISSUED.timestamp() * 1000)
TEMPORARY = dataclasses.replace(SESSION, session_token=True, token_issued_ms=ISSUED_MS)
USER_SESSION = dataclasses.replace(
    USER, access_key_id="ASIAUSER", session_token=True, token_issued_ms=ISSUED_MS
)


def test_long_term_keys_carry_no_token_or_mfa_keys() -> None:
    # AWS: aws:MultiFactorAuthPresent and aws:TokenIssueTime are absent for long-term
    # access keys, which is why the "MFA required" pattern reads BoolIfExists.
    for principal in (USER, ROOT):
        keys = keys_of(principal)
        for absent in ("aws:TokenIssueTime", "aws:MultiFactorAuthPresent"):
            assert absent not in keys
        assert multi_factor_auth_age(principal, int(ISSUED.timestamp()) + 60) == {}


def test_temporary_credentials_without_mfa() -> None:
    for principal in (TEMPORARY, USER_SESSION):
        keys = keys_of(principal)
        assert keys["aws:TokenIssueTime"] == ("2026-03-01T08:30:15Z",)
        assert keys["aws:MultiFactorAuthPresent"] == ("false",)
        assert multi_factor_auth_age(principal, int(ISSUED.timestamp()) + 60) == {}


def test_temporary_credentials_with_mfa() -> None:
    verified = ISSUED_MS - 90_000  # the code was checked 90 s before the session was issued
    principal = dataclasses.replace(TEMPORARY, mfa_authenticated_ms=verified)
    assert keys_of(principal)["aws:MultiFactorAuthPresent"] == ("true",)
    now = int(ISSUED.timestamp()) + 3600
    assert multi_factor_auth_age(principal, now) == {"aws:MultiFactorAuthAge": ("3690",)}


def test_principal_is_aws_service_is_false_for_iam_principals() -> None:
    for principal in (USER, SESSION, ROOT, TEMPORARY):
        assert keys_of(principal)["aws:PrincipalIsAWSService"] == ("false",)
