"""Virtual MFA devices and MFA-authenticated sessions (strongroom/iam/mfa.py, STS), served
in process by a deployment whose time is a ManualClock, so TOTP codes are computed for
known instants and ages are tested by moving the clock.

AWS behaviour these follow ("Configuring MFA-protected API access", "Assign a virtual MFA
device", the IAM and STS API references, the global condition context keys page):

- CreateVirtualMFADevice returns the seed once, as Base32 and as a QR code PNG; the device
  is unassigned until EnableMFADevice gets two consecutive codes from it
  (``InvalidAuthenticationCode`` otherwise); an assigned device cannot be enabled again
  (``EntityAlreadyExists``) or deleted (``DeleteConflict``).
- GetSessionToken and AssumeRole take SerialNumber and TokenCode; a wrong code, a code
  used before, or a device that is not the caller's is refused with ``AccessDenied``.
- Sessions carry ``aws:MultiFactorAuthPresent`` ("true" with MFA, "false" without),
  ``aws:MultiFactorAuthAge`` (only with MFA) and ``aws:TokenIssueTime``; long-term keys
  carry none of them. GetSessionToken credentials call IAM only if obtained with MFA.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP
from sqlalchemy import select

from strongroom.audit.lookup import iter_events
from strongroom.clock import ManualClock
from strongroom.server.deployment import DEV_ACCOUNT, Deployment
from strongroom.store import schema
from tests.aws import error_message as error
from tests.inprocess import client, credentials_client, signing_at

INVALID_CODE = "Authentication code for device is not valid."
WRONG_CODE = "MultiFactorAuthentication failed with invalid MFA one time pass code."
UNVALIDATED = "MultiFactorAuthentication failed, unable to validate MFA code."
LIST = "secretsmanager:ListSecrets"


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


MFA_REQUIRED = document(
    {
        "Effect": "Allow",
        "Action": LIST,
        "Resource": "*",
        "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}},
    }
)


@pytest.fixture(autouse=True)
def signing(clock: ManualClock) -> Iterator[None]:
    with signing_at(clock):
        yield


@pytest.fixture
def iam(deployment: Deployment) -> Any:
    return client(deployment, "iam")


class Authenticator:
    """The app on the user's phone: codes from the seed CreateVirtualMFADevice returned."""

    def __init__(self, seed_base32: bytes, clock: ManualClock) -> None:
        self._totp = TOTP(base64.b32decode(seed_base32), 6, SHA1(), 30)
        self._clock = clock

    def code(self, steps_from_now: int = 0) -> str:
        moment = self._clock.now().timestamp() + 30 * steps_from_now
        return self._totp.generate(moment).decode()


def new_user(deployment: Deployment, iam: Any, name: str, *policies: str) -> dict[str, Any]:
    user = iam.create_user(UserName=name)["User"]
    for number, text in enumerate(policies):
        iam.put_user_policy(UserName=name, PolicyName=f"p{number}", PolicyDocument=text)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    credentials = {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
    return {
        "user": user,
        "credentials": credentials,
        "sts": credentials_client(deployment, "sts", credentials),
        "sm": credentials_client(deployment, "secretsmanager", credentials),
    }


def enrolled(iam: Any, clock: ManualClock, user: str) -> tuple[str, Authenticator]:
    """A virtual MFA device enabled for ``user``, and its authenticator."""
    created = iam.create_virtual_mfa_device(VirtualMFADeviceName=f"{user}-phone")
    device = created["VirtualMFADevice"]
    app = Authenticator(device["Base32StringSeed"], clock)
    iam.enable_mfa_device(
        UserName=user,
        SerialNumber=device["SerialNumber"],
        AuthenticationCode1=app.code(-1),
        AuthenticationCode2=app.code(),
    )
    clock.advance(timedelta(seconds=30))  # the enrolment codes are spent
    return device["SerialNumber"], app


def devices_table(deployment: Deployment) -> list[Any]:
    with deployment.store.read() as conn:
        return list(conn.execute(select(schema.iam_mfa_devices)))


# Enrolment -------------------------------------------------------------------------------


def test_create_virtual_mfa_device_returns_the_seed_once_and_stores_it_sealed(
    deployment: Deployment, iam: Any
) -> None:
    created = iam.create_virtual_mfa_device(
        VirtualMFADeviceName="phone", Path="/team/", Tags=[{"Key": "owner", "Value": "ana"}]
    )["VirtualMFADevice"]
    assert created["SerialNumber"] == f"arn:aws:iam::{DEV_ACCOUNT}:mfa/team/phone"
    seed = created["Base32StringSeed"]
    assert len(base64.b32decode(seed)) == 40
    assert created["QRCodePNG"].startswith(b"\x89PNG\r\n\x1a\n")
    assert created["Tags"] == [{"Key": "owner", "Value": "ana"}]
    raw = base64.b32decode(seed)
    (row,) = devices_table(deployment)
    stored = repr(tuple(row)).encode()
    assert seed not in stored and raw not in row.seed_ciphertext
    # Listed without its seed; a second device of that name is refused.
    listed = iam.list_virtual_mfa_devices()["VirtualMFADevices"]
    assert listed == [{"SerialNumber": created["SerialNumber"], "Tags": created["Tags"]}]
    error(
        lambda: iam.create_virtual_mfa_device(VirtualMFADeviceName="phone", Path="/team/"),
        "EntityAlreadyExists",
        status=409,
    )
    assert len(devices_table(deployment)) == 1
    # The audit record of the creation holds neither the seed nor the QR code.
    deployment.close()
    for path in (deployment.data_dir / "audit").rglob("*"):
        if path.is_file():
            assert seed not in path.read_bytes(), path


def test_enable_needs_two_consecutive_codes(
    deployment: Deployment, iam: Any, clock: ManualClock
) -> None:
    iam.create_user(UserName="ana")
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName="ana-phone")["VirtualMFADevice"]
    serial, app = device["SerialNumber"], Authenticator(device["Base32StringSeed"], clock)
    for first, second in (
        (app.code(), app.code()),  # the same code twice
        (app.code(), app.code(-1)),  # in the wrong order
        (app.code(-1), "000000" if app.code() != "000000" else "111111"),  # a wrong second
        (app.code(-20), app.code(-19)),  # too old
    ):
        error(
            lambda first=first, second=second: iam.enable_mfa_device(
                UserName="ana",
                SerialNumber=serial,
                AuthenticationCode1=first,
                AuthenticationCode2=second,
            ),
            "InvalidAuthenticationCode",
            INVALID_CODE,
            status=403,
        )
    assert iam.list_mfa_devices(UserName="ana")["MFADevices"] == []
    assert iam.list_virtual_mfa_devices(AssignmentStatus="Assigned")["VirtualMFADevices"] == []

    iam.enable_mfa_device(
        UserName="ana",
        SerialNumber=serial,
        AuthenticationCode1=app.code(-1),
        AuthenticationCode2=app.code(),
    )
    (listed,) = iam.list_mfa_devices(UserName="ana")["MFADevices"]
    assert listed == {"UserName": "ana", "SerialNumber": serial, "EnableDate": clock.now()}
    (assigned,) = iam.list_virtual_mfa_devices(AssignmentStatus="Assigned")["VirtualMFADevices"]
    assert assigned["User"]["UserName"] == "ana" and assigned["EnableDate"] == clock.now()
    assert iam.list_virtual_mfa_devices(AssignmentStatus="Unassigned")["VirtualMFADevices"] == []

    iam.create_user(UserName="ben")
    error(
        lambda: iam.enable_mfa_device(
            UserName="ben",
            SerialNumber=serial,
            AuthenticationCode1=app.code(),
            AuthenticationCode2=app.code(1),
        ),
        "EntityAlreadyExists",
        "MFA Device is already in use.",
        status=409,
    )
    error(
        lambda: iam.delete_virtual_mfa_device(SerialNumber=serial),
        "DeleteConflict",
        "MFA Device is still in use",
        status=409,
    )
    error(
        lambda: iam.delete_user(UserName="ana"),
        "DeleteConflict",
        "Cannot delete entity, must delete MFA device first.",
        status=409,
    )
    error(
        lambda: iam.deactivate_mfa_device(UserName="ben", SerialNumber=serial),
        "NoSuchEntity",
        status=404,
    )
    assert iam.list_mfa_devices(UserName="ana")["MFADevices"] == [listed]

    iam.deactivate_mfa_device(UserName="ana", SerialNumber=serial)
    iam.delete_virtual_mfa_device(SerialNumber=serial)
    iam.delete_user(UserName="ana")
    assert devices_table(deployment) == []
    error(lambda: iam.delete_virtual_mfa_device(SerialNumber=serial), "NoSuchEntity", status=404)


def test_resync_learns_the_device_drift(
    deployment: Deployment, iam: Any, clock: ManualClock
) -> None:
    ana = new_user(deployment, iam, "ana", MFA_REQUIRED)
    serial, app = enrolled(iam, clock, "ana")
    # The phone's clock runs five minutes slow: its codes are ten steps behind.
    late = Authenticator.code
    error(
        lambda: ana["sts"].get_session_token(SerialNumber=serial, TokenCode=late(app, -10)),
        "AccessDenied",
        WRONG_CODE,
        status=403,
    )
    iam.resync_mfa_device(
        UserName="ana",
        SerialNumber=serial,
        AuthenticationCode1=late(app, -11),
        AuthenticationCode2=late(app, -10),
    )
    clock.advance(timedelta(seconds=30))
    ana["sts"].get_session_token(SerialNumber=serial, TokenCode=late(app, -10))


# STS -------------------------------------------------------------------------------------


def test_get_session_token_with_mfa_and_the_mfa_required_policy(
    deployment: Deployment, iam: Any, clock: ManualClock
) -> None:
    ana = new_user(deployment, iam, "ana", MFA_REQUIRED)
    serial, app = enrolled(iam, clock, "ana")

    # Long-term keys have no aws:MultiFactorAuthPresent: BoolIfExists lets them through.
    ana["sm"].list_secrets()
    plain = ana["sts"].get_session_token()["Credentials"]
    error(
        credentials_client(deployment, "secretsmanager", plain).list_secrets,
        "AccessDeniedException",
    )
    code = app.code()
    with_mfa = ana["sts"].get_session_token(SerialNumber=serial, TokenCode=code)["Credentials"]
    credentials_client(deployment, "secretsmanager", with_mfa).list_secrets()
    # An MFA session may call IAM (and is then authorized like any caller: Ana's policy
    # does not allow iam:GetUser); one without MFA may not (AWS: InvalidClientTokenId).
    error(credentials_client(deployment, "iam", with_mfa).get_user, "AccessDenied", status=403)
    error(
        credentials_client(deployment, "iam", plain).get_user,
        "InvalidClientTokenId",
        status=403,
    )
    # The same code again is refused, even within its 30 seconds.
    error(
        lambda: ana["sts"].get_session_token(SerialNumber=serial, TokenCode=code),
        "AccessDenied",
        WRONG_CODE,
        status=403,
    )
    error(
        lambda: ana["sts"].get_session_token(SerialNumber=serial, TokenCode=app.code(-1)),
        "AccessDenied",
        WRONG_CODE,
        status=403,
    )
    clock.advance(timedelta(seconds=30))
    ana["sts"].get_session_token(SerialNumber=serial, TokenCode=app.code())
    with deployment.store.read() as conn:
        stamps = [
            row.mfa_authenticated_ms
            for row in conn.execute(
                select(schema.sts_sessions).order_by(schema.sts_sessions.c.created_ms)
            )
        ]
    assert stamps[0] is None and None not in stamps[1:]


def test_a_device_that_is_not_the_callers_is_refused(
    deployment: Deployment, iam: Any, clock: ManualClock
) -> None:
    ana = new_user(deployment, iam, "ana", MFA_REQUIRED)
    ben = new_user(deployment, iam, "ben", MFA_REQUIRED)
    serial, app = enrolled(iam, clock, "ana")
    for call in (
        lambda: ben["sts"].get_session_token(SerialNumber=serial, TokenCode=app.code()),
        lambda: ana["sts"].get_session_token(
            SerialNumber=f"arn:aws:iam::{DEV_ACCOUNT}:mfa/nothing", TokenCode=app.code()
        ),
        lambda: ana["sts"].get_session_token(SerialNumber=serial),
    ):
        error(call, "AccessDenied", UNVALIDATED, status=403)
    with deployment.store.read() as conn:
        assert list(conn.execute(select(schema.sts_sessions))) == []
    # Ben's refusal did not spend Ana's code.
    ana["sts"].get_session_token(SerialNumber=serial, TokenCode=app.code())


def test_multi_factor_auth_age_counts_from_the_code(
    deployment: Deployment, iam: Any, clock: ManualClock
) -> None:
    fresh = document(
        {
            "Effect": "Allow",
            "Action": LIST,
            "Resource": "*",
            "Condition": {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}},
        }
    )
    ana = new_user(deployment, iam, "ana", fresh)
    serial, app = enrolled(iam, clock, "ana")
    issued = ana["sts"].get_session_token(SerialNumber=serial, TokenCode=app.code())
    session = credentials_client(deployment, "secretsmanager", issued["Credentials"])
    session.list_secrets()
    clock.advance(timedelta(minutes=59))
    session.list_secrets()  # the decision is remembered, but for this time only
    clock.advance(timedelta(minutes=2))
    error(session.list_secrets, "AccessDeniedException")
    # A session without MFA has no age: NumericLessThan on a missing key is false.
    plain = ana["sts"].get_session_token()["Credentials"]
    error(
        credentials_client(deployment, "secretsmanager", plain).list_secrets,
        "AccessDeniedException",
    )


def test_token_issue_time_and_the_long_term_only_pattern(
    deployment: Deployment, iam: Any, clock: ManualClock
) -> None:
    long_term_only = document(
        {
            "Effect": "Allow",
            "Action": LIST,
            "Resource": "*",
            "Condition": {"Null": {"aws:TokenIssueTime": "true"}},
        }
    )
    revoke_older = document(
        {"Effect": "Allow", "Action": LIST, "Resource": "*"},
        {
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": "2026-01-01T12:00:00Z"}},
        },
    )
    ana = new_user(deployment, iam, "ana", long_term_only)
    ana["sm"].list_secrets()
    session = ana["sts"].get_session_token()["Credentials"]
    error(
        credentials_client(deployment, "secretsmanager", session).list_secrets,
        "AccessDeniedException",
    )

    ben = new_user(deployment, iam, "ben", revoke_older)
    # Issued at 2026-01-01T00:00Z, for 36 hours.
    before = ben["sts"].get_session_token(DurationSeconds=129600)["Credentials"]
    clock.advance(timedelta(hours=13))
    after = ben["sts"].get_session_token()["Credentials"]
    credentials_client(deployment, "secretsmanager", after).list_secrets()
    error(
        credentials_client(deployment, "secretsmanager", before).list_secrets,
        "AccessDeniedException",
    )


def test_assume_role_with_mfa(deployment: Deployment, iam: Any, clock: ManualClock) -> None:
    trust = document(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{DEV_ACCOUNT}:root"},
            "Action": "sts:AssumeRole",
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
        }
    )
    role_arn = iam.create_role(RoleName="guarded", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    iam.put_role_policy(RoleName="guarded", PolicyName="p", PolicyDocument=MFA_REQUIRED)
    may_assume = document({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn})
    ana = new_user(deployment, iam, "ana", may_assume)
    ben = new_user(deployment, iam, "ben", may_assume)
    serial, app = enrolled(iam, clock, "ana")
    refused = (
        f"User: {ana['user']['Arn']} is not authorized to perform: sts:AssumeRole "
        f"on resource: {role_arn}"
    )

    error(
        lambda: ana["sts"].assume_role(RoleArn=role_arn, RoleSessionName="s1"),
        "AccessDenied",
        refused,
        status=403,
    )
    # Issue 22 item 7: a user without that device is refused, not let through without MFA.
    error(
        lambda: ben["sts"].assume_role(
            RoleArn=role_arn, RoleSessionName="s1", SerialNumber=serial, TokenCode=app.code()
        ),
        "AccessDenied",
        UNVALIDATED,
        status=403,
    )
    assumed = ana["sts"].assume_role(
        RoleArn=role_arn, RoleSessionName="s1", SerialNumber=serial, TokenCode=app.code()
    )["Credentials"]
    credentials_client(deployment, "secretsmanager", assumed).list_secrets()
    (event,) = [
        event
        for event in iter_events(deployment.data_dir / "audit")
        if event["eventName"] == "ListSecrets"
    ]
    assert event["userIdentity"]["sessionContext"]["attributes"]["mfaAuthenticated"] == "true"
    assert event["userIdentity"]["arn"].endswith(":assumed-role/guarded/s1")

    # Role chaining after GetSessionToken with MFA keeps the MFA.
    clock.advance(timedelta(seconds=30))
    mfa_session = ana["sts"].get_session_token(SerialNumber=serial, TokenCode=app.code())
    chained_sts = credentials_client(deployment, "sts", mfa_session["Credentials"])
    chained = chained_sts.assume_role(RoleArn=role_arn, RoleSessionName="c1")["Credentials"]
    credentials_client(deployment, "secretsmanager", chained).list_secrets()


def test_denials_are_audited(deployment: Deployment, iam: Any, clock: ManualClock) -> None:
    ana = new_user(deployment, iam, "ana", MFA_REQUIRED)
    serial, app = enrolled(iam, clock, "ana")
    error(
        lambda: ana["sts"].get_session_token(SerialNumber=serial, TokenCode=app.code(-1)),
        "AccessDenied",
        status=403,
    )
    plain = ana["sts"].get_session_token()["Credentials"]
    error(
        credentials_client(deployment, "secretsmanager", plain).list_secrets,
        "AccessDeniedException",
    )
    codes = [
        (event["eventName"], event.get("errorCode"))
        for event in iter_events(deployment.data_dir / "audit")
        if event["eventName"] in ("GetSessionToken", "ListSecrets")
    ]
    assert ("GetSessionToken", "AccessDenied") in codes
    assert ("ListSecrets", "AccessDeniedException") in codes
