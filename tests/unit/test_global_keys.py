"""The global condition keys of a request (strongroom/policy/global_keys.py)."""

from __future__ import annotations

from strongroom.iam.credentials import Principal
from strongroom.policy.global_keys import global_keys

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
