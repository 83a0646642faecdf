"""AWS Organizations at domain level: boto3 clients served by the deployment's pipeline in
this process (see tests/inprocess.py).

AWS facts these follow, with where they are on record: ``AWSOrganizationsNotInUseException``
"Your account is not a member of an organization." (org-formation-cli#380) and
``AccessDeniedException`` "You don't have permissions to access this resource." for a
member account calling ListAccounts (aws-iam-access-key-auto-rotation#10,
cq-provider-aws#254); the error shapes of the botocore ``organizations`` model; the
OrganizationAccountAccessRole of a created account trusts the management account and
grants administrator access (AWS Organizations User Guide, "Accessing member accounts",
"Creating OrganizationAccountAccessRole for an invited account").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from strongroom.audit.lookup import iter_events
from strongroom.clock import ManualClock
from strongroom.iam.organizations import OPERATIONS
from strongroom.protocol.model import service_model
from strongroom.server.deployment import DEV_ACCOUNT, Deployment
from tests.aws import create_account
from tests.aws import error_message as error
from tests.inprocess import client, credentials_client, signing_at

NOT_IN_USE = "Your account is not a member of an organization."
NO_PERMISSION = "You don't have permissions to access this resource."
ADMINISTRATOR_ACCESS = "arn:aws:iam::aws:policy/AdministratorAccess"


@pytest.fixture(autouse=True)
def signing(clock: ManualClock) -> Iterator[None]:
    with signing_at(clock):
        yield


@pytest.fixture
def orgs(deployment: Deployment) -> Any:
    return client(deployment, "organizations")


@pytest.fixture
def organization(orgs: Any) -> dict[str, Any]:
    created: dict[str, Any] = orgs.create_organization()["Organization"]
    return created


def new_account(orgs: Any, name: str, **extra: Any) -> str:
    status = create_account(orgs, Email=f"{name}@example.com", AccountName=name, **extra)
    account_id: str = status["AccountId"]
    return account_id


def assume(
    deployment: Deployment, account_id: str, role: str = "OrganizationAccountAccessRole"
) -> dict[str, Any]:
    sts = client(deployment, "sts")
    credentials: dict[str, Any] = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/{role}", RoleSessionName="setup"
    )["Credentials"]
    return credentials


def test_the_facade_serves_operations_of_the_model() -> None:
    assert set(OPERATIONS) <= set(service_model("organizations").operation_names)


def test_create_and_describe_an_organization(orgs: Any) -> None:
    error(orgs.describe_organization, "AWSOrganizationsNotInUseException", NOT_IN_USE)
    created = orgs.create_organization()["Organization"]
    assert re.fullmatch(r"o-[a-z0-9]{10}", created["Id"])
    assert created == {
        "Id": created["Id"],
        "Arn": f"arn:aws:organizations::{DEV_ACCOUNT}:organization/{created['Id']}",
        "FeatureSet": "ALL",
        "MasterAccountArn": (
            f"arn:aws:organizations::{DEV_ACCOUNT}:account/{created['Id']}/{DEV_ACCOUNT}"
        ),
        "MasterAccountId": DEV_ACCOUNT,
    }
    assert orgs.describe_organization()["Organization"] == created
    error(
        orgs.create_organization,
        "AlreadyInOrganizationException",
        "The AWS account is already a member of an organization.",
    )


def test_create_account_before_an_organization_exists(orgs: Any) -> None:
    error(
        lambda: orgs.create_account(Email="a@example.com", AccountName="a"),
        "AWSOrganizationsNotInUseException",
        NOT_IN_USE,
    )
    error(orgs.list_accounts, "AWSOrganizationsNotInUseException", NOT_IN_USE)


def test_create_account_answers_its_status(
    orgs: Any, organization: dict[str, Any], clock: ManualClock
) -> None:
    started = orgs.create_account(Email="team-b@example.com", AccountName="team-b")[
        "CreateAccountStatus"
    ]
    assert started == {
        "Id": started["Id"],
        "AccountName": "team-b",
        "State": "IN_PROGRESS",
        "RequestedTimestamp": clock.now(),
    }
    status = orgs.describe_create_account_status(CreateAccountRequestId=started["Id"])[
        "CreateAccountStatus"
    ]
    assert re.fullmatch(r"car-[a-z0-9]{32}", status["Id"])
    assert re.fullmatch(r"[0-9]{12}", status["AccountId"])
    assert status == {
        "Id": status["Id"],
        "AccountName": "team-b",
        "State": "SUCCEEDED",
        "RequestedTimestamp": clock.now(),
        "CompletedTimestamp": clock.now(),
        "AccountId": status["AccountId"],
    }
    error(
        lambda: orgs.describe_create_account_status(CreateAccountRequestId="car-0123456789abcdef"),
        "CreateAccountStatusNotFoundException",
    )
    account = orgs.describe_account(AccountId=status["AccountId"])["Account"]
    assert account == {
        "Id": status["AccountId"],
        "Arn": f"arn:aws:organizations::{DEV_ACCOUNT}:account/{organization['Id']}/"
        f"{status['AccountId']}",
        "Email": "team-b@example.com",
        "Name": "team-b",
        "Status": "ACTIVE",
        "State": "ACTIVE",
        "JoinedMethod": "CREATED",
        "JoinedTimestamp": clock.now(),
    }


def test_an_email_is_used_by_one_account_only(orgs: Any, organization: dict[str, Any]) -> None:
    new_account(orgs, "first")
    failed = create_account(orgs, Email="FIRST@example.com", AccountName="again")
    assert failed["State"] == "FAILED"
    assert failed["FailureReason"] == "EMAIL_ALREADY_EXISTS"
    assert "AccountId" not in failed
    again = orgs.describe_create_account_status(CreateAccountRequestId=failed["Id"])
    assert again["CreateAccountStatus"] == failed
    assert len(orgs.list_accounts()["Accounts"]) == 2


def test_the_new_account_has_the_access_role_of_aws(
    deployment: Deployment, orgs: Any, organization: dict[str, Any]
) -> None:
    account_id = new_account(orgs, "member")
    credentials = assume(deployment, account_id)
    identity = credentials_client(deployment, "sts", credentials).get_caller_identity()
    assert identity["Account"] == account_id
    assert identity["Arn"] == (
        f"arn:aws:sts::{account_id}:assumed-role/OrganizationAccountAccessRole/setup"
    )
    member_iam = credentials_client(deployment, "iam", credentials)
    role = member_iam.get_role(RoleName="OrganizationAccountAccessRole")["Role"]
    assert role["Arn"] == f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole"
    assert role["AssumeRolePolicyDocument"] == {  # boto3 decodes the document
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{DEV_ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    attached = member_iam.list_attached_role_policies(RoleName="OrganizationAccountAccessRole")
    assert attached["AttachedPolicies"] == [
        {"PolicyName": "AdministratorAccess", "PolicyArn": ADMINISTRATOR_ACCESS}
    ]
    # The administrator of the new account works in it, apart from the first account.
    member_sm = credentials_client(deployment, "secretsmanager", credentials)
    arn = member_sm.create_secret(Name="team-b/db", SecretString="v")["ARN"]
    assert arn.split(":")[4] == account_id
    assert client(deployment, "secretsmanager").list_secrets()["SecretList"] == []
    member_iam.create_user(UserName="team-b-admin")
    assert [u["UserName"] for u in client(deployment, "iam").list_users()["Users"]] == ["admin"]


def test_a_custom_role_name(
    deployment: Deployment, orgs: Any, organization: dict[str, Any]
) -> None:
    account_id = new_account(orgs, "custom", RoleName="BreakGlass")
    credentials = assume(deployment, account_id, "BreakGlass")
    assert credentials_client(deployment, "sts", credentials).get_caller_identity()["Account"] == (
        account_id
    )
    error(
        lambda: assume(deployment, account_id),
        "AccessDenied",
        f"User: arn:aws:iam::{DEV_ACCOUNT}:user/admin is not authorized to perform: "
        f"sts:AssumeRole on resource: arn:aws:iam::{account_id}:role/"
        "OrganizationAccountAccessRole",
        status=403,
    )


def test_crossing_into_a_member_account_needs_the_users_own_permission(
    deployment: Deployment, orgs: Any, organization: dict[str, Any]
) -> None:
    account_id = new_account(orgs, "guarded")
    role_arn = f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole"
    iam = client(deployment, "iam")
    iam.create_user(UserName="operator")
    key = iam.create_access_key(UserName="operator")["AccessKey"]
    operator = credentials_client(deployment, "sts", key)
    error(
        lambda: operator.assume_role(RoleArn=role_arn, RoleSessionName="op"),
        "AccessDenied",
        f"User: arn:aws:iam::{DEV_ACCOUNT}:user/operator is not authorized to perform: "
        f"sts:AssumeRole on resource: {role_arn}",
        status=403,
    )
    iam.put_user_policy(
        UserName="operator",
        PolicyName="member-admin",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Resource": "arn:aws:iam::*:role/OrganizationAccountAccessRole",
                    }
                ],
            }
        ),
    )
    assumed = operator.assume_role(RoleArn=role_arn, RoleSessionName="op")
    assert assumed["AssumedRoleUser"]["Arn"].startswith(f"arn:aws:sts::{account_id}:")


def test_member_accounts_cannot_manage_the_organization(
    deployment: Deployment, orgs: Any, organization: dict[str, Any]
) -> None:
    account_id = new_account(orgs, "member")
    request_id = orgs.create_account(Email="other@example.com", AccountName="other")[
        "CreateAccountStatus"
    ]["Id"]
    member = credentials_client(deployment, "organizations", assume(deployment, account_id))
    for call in (
        lambda: member.create_account(Email="x@example.com", AccountName="x"),
        member.list_accounts,
        lambda: member.describe_account(AccountId=DEV_ACCOUNT),
        lambda: member.describe_create_account_status(CreateAccountRequestId=request_id),
    ):
        error(call, "AccessDeniedException", NO_PERMISSION)
    error(
        member.create_organization,
        "AlreadyInOrganizationException",
        "The AWS account is already a member of an organization.",
    )
    # A member account sees the organization it belongs to.
    assert member.describe_organization()["Organization"] == organization
    assert len(orgs.list_accounts()["Accounts"]) == 3


def test_list_accounts_pages(orgs: Any, organization: dict[str, Any], clock: ManualClock) -> None:
    created = []
    for n in range(4):
        clock.advance(timedelta(minutes=1))
        created.append(new_account(orgs, f"acct-{n}"))
    everyone = [DEV_ACCOUNT, *created]
    listed = orgs.list_accounts()["Accounts"]
    assert [a["Id"] for a in listed] == everyone
    assert listed[0]["JoinedMethod"] == "INVITED" and listed[0]["Name"] == "dev"
    assert "Email" not in listed[0]
    seen: list[str] = []
    token = None
    while True:
        page = orgs.list_accounts(MaxResults=2, **({"NextToken": token} if token else {}))
        assert len(page["Accounts"]) <= 2
        seen += [a["Id"] for a in page["Accounts"]]
        token = page.get("NextToken")
        if token is None:
            break
    assert seen == everyone
    paginated = [
        a["Id"]
        for page in orgs.get_paginator("list_accounts").paginate(PaginationConfig={"PageSize": 3})
        for a in page["Accounts"]
    ]
    assert paginated == everyone
    error(lambda: orgs.list_accounts(NextToken="not-a-token"), "InvalidInputException")


def test_describe_account_of_an_unknown_account(orgs: Any, organization: dict[str, Any]) -> None:
    error(
        lambda: orgs.describe_account(AccountId="123456789012"),
        "AccountNotFoundException",
        "You specified an account that doesn't exist.",
    )


def test_create_account_is_audited_without_the_email_or_name(
    deployment: Deployment, orgs: Any, organization: dict[str, Any]
) -> None:
    new_account(orgs, "private-name")
    events = [
        event
        for event in iter_events(deployment.data_dir / "audit")
        if event.get("eventName") == "CreateAccount"
    ]
    assert len(events) == 1
    text = json.dumps(events[0])
    assert "private-name" not in text  # Email and AccountName are sensitive in the model
    assert events[0]["eventSource"] == "organizations.amazonaws.com"
