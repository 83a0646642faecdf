"""Authorization on the resource and with the condition keys AWS's Service Authorization
Reference names (issue 13 §1, issue 18 items 1-7 and 11), end to end: a real server,
boto3, a narrow IAM user holding one inline policy. Every case runs both ways: what AWS
allows is allowed, what AWS denies is denied (AccessDenied, 403 for IAM and STS),
changes nothing, and leaves one audit record with the error code.

Where AWS says so:
- AttachRolePolicy and its siblings are authorized on the role/user/group, with the
  policy in ``iam:PolicyARN``; AddUserToGroup on the group (Service Authorization
  Reference, "Actions defined by AWS Identity and Access Management").
- IAM ARNs carry the entity's path ("IAM identifiers"); renaming or moving a user needs
  the permission on both the source and the target ("Renaming an IAM user").
- Operations whose UserName defaults to the caller act on the caller's own user (the
  CreateAccessKey, GetUser... API references); the ``${aws:username}`` self-service
  policy ("IAM: Allows IAM users to manage their own credentials").
- ``iam:PermissionsBoundary`` on Put/Delete/Attach/Detach UserPolicy etc. is the
  entity's current boundary ("Delegating permissions management to others by using
  permissions boundaries").
- Users and roles carry ``aws:ResourceTag``/``iam:ResourceTag`` ("Controlling access to
  IAM users and roles using tags"), including for sts:AssumeRole.
- Organizations' DescribeAccount is on the account ARN; CreateAccount has
  ``aws:RequestTag``/``aws:TagKeys``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.aws import ACCOUNT, create_account
from tests.e2e.test_enforcement import (
    REGION,
    Deployment,
    User,
    allow,
    deny,
    make_user,
    policy,
    start,
    unique,
)

IAM_DENIED = {"code": "AccessDenied", "status": 403}
ARN = f"arn:aws:iam::{ACCOUNT}"
TRUST_ACCOUNT = policy(
    {"Effect": "Allow", "Principal": {"AWS": f"{ARN}:root"}, "Action": "sts:AssumeRole"}
)
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
SECRETS_READ_WRITE = "arn:aws:iam::aws:policy/SecretsManagerReadWrite"


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = start(tmp_path_factory.mktemp("reference"))
    yield deployment
    deployment.server.stop()


def narrow(dep: Deployment, *statements: dict[str, Any], prefix: str = "user") -> User:
    """A new user holding one inline policy of ``statements``."""
    return make_user(dep, policy(*statements), prefix=prefix)


def denial(user: User, action: str, resource: str, why: str = "no identity-based policy") -> str:
    if why.startswith("explicit"):
        return (
            f"User: {user.arn} is not authorized to perform: {action} on resource: {resource} "
            "with an explicit deny in an identity-based policy"
        )
    return (
        f"User: {user.arn} is not authorized to perform: {action} on resource: {resource} "
        f"because {why} allows the {action} action"
    )


def attached_to_role(dep: Deployment, role: str) -> list[str]:
    found = dep.iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    return sorted(item["PolicyArn"] for item in found)


def test_aws_managed_policies_are_read_with_the_callers_own_permissions(dep: Deployment) -> None:
    reader = narrow(
        dep, allow(["iam:GetPolicy", "iam:GetPolicyVersion"], "arn:aws:iam::aws:policy/*")
    )
    iam = reader.client("iam")
    assert iam.get_policy(PolicyArn=READ_ONLY)["Policy"]["Arn"] == READ_ONLY
    dep.refused(
        iam.get_policy,
        PolicyArn=f"{ARN}:policy/none-{unique('p')}",
        **IAM_DENIED,
    )


# Issue 13 §1: the two wrong resources --------------------------------------------------------


def test_attach_role_policy_is_authorized_on_the_role_with_the_policy_arn(dep: Deployment) -> None:
    role = unique("app-role")
    role_arn = dep.iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST_ACCOUNT)["Role"][
        "Arn"
    ]
    on_role = narrow(
        dep,
        allow(
            ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
            role_arn,
            Condition={"ArnEquals": {"iam:PolicyARN": READ_ONLY}},
        ),
    )
    iam = on_role.client("iam")
    iam.attach_role_policy(RoleName=role, PolicyArn=READ_ONLY)
    assert attached_to_role(dep, role) == [READ_ONLY]
    # Another policy: iam:PolicyARN does not match.
    dep.refused(
        iam.attach_role_policy,
        RoleName=role,
        PolicyArn=SECRETS_READ_WRITE,
        message=denial(on_role, "iam:AttachRolePolicy", role_arn),
        **IAM_DENIED,
    )
    assert attached_to_role(dep, role) == [READ_ONLY]
    iam.detach_role_policy(RoleName=role, PolicyArn=READ_ONLY)
    assert attached_to_role(dep, role) == []

    # A grant on the policy ARN (what was checked before) is not a grant on the role.
    on_policy = narrow(dep, allow("iam:AttachRolePolicy", SECRETS_READ_WRITE))
    dep.refused(
        on_policy.client("iam").attach_role_policy,
        RoleName=role,
        PolicyArn=SECRETS_READ_WRITE,
        message=denial(on_policy, "iam:AttachRolePolicy", role_arn),
        **IAM_DENIED,
    )
    assert attached_to_role(dep, role) == []


def test_attach_user_policy_is_authorized_on_the_user(dep: Deployment) -> None:
    target = make_user(dep, prefix="target")
    on_user = narrow(dep, allow("iam:AttachUserPolicy", target.arn))
    on_user.client("iam").attach_user_policy(UserName=target.name, PolicyArn=READ_ONLY)
    other = make_user(dep, prefix="other")
    dep.refused(
        on_user.client("iam").attach_user_policy,
        UserName=other.name,
        PolicyArn=READ_ONLY,
        message=denial(on_user, "iam:AttachUserPolicy", other.arn),
        **IAM_DENIED,
    )
    assert dep.iam.list_attached_user_policies(UserName=other.name)["AttachedPolicies"] == []


def test_add_user_to_group_is_authorized_on_the_group(dep: Deployment) -> None:
    group = unique("admins")
    group_arn = dep.iam.create_group(GroupName=group)["Group"]["Arn"]
    self_only = narrow(
        dep,
        allow(["iam:AddUserToGroup", "iam:RemoveUserFromGroup"], f"{ARN}:user/${{aws:username}}"),
    )
    # A grant on the user's own ARN does not let it join any group.
    dep.refused(
        self_only.client("iam").add_user_to_group,
        GroupName=group,
        UserName=self_only.name,
        message=denial(self_only, "iam:AddUserToGroup", group_arn),
        **IAM_DENIED,
    )
    assert dep.iam.get_group(GroupName=group)["Users"] == []
    on_group = narrow(dep, allow("iam:AddUserToGroup", group_arn))
    on_group.client("iam").add_user_to_group(GroupName=group, UserName=self_only.name)
    members = [u["UserName"] for u in dep.iam.get_group(GroupName=group)["Users"]]
    assert members == [self_only.name]
    dep.refused(
        self_only.client("iam").remove_user_from_group,
        GroupName=group,
        UserName=self_only.name,
        message=denial(self_only, "iam:RemoveUserFromGroup", group_arn),
        **IAM_DENIED,
    )
    assert len(dep.iam.get_group(GroupName=group)["Users"]) == 1


# Item 1: the stored entity's ARN (path, letter case); Create* on the ARN being created ------


def test_a_deny_on_a_path_holds_for_the_stored_user(dep: Deployment) -> None:
    boss = unique("boss")
    boss_arn = dep.iam.create_user(UserName=boss, Path="/admins/")["User"]["Arn"]
    staff = make_user(dep, prefix="staff")
    operator = narrow(
        dep,
        allow("iam:*"),
        deny("iam:CreateAccessKey", f"{ARN}:user/admins/*"),
    )
    iam = operator.client("iam")
    dep.refused(
        iam.create_access_key,
        UserName=boss,
        message=denial(operator, "iam:CreateAccessKey", boss_arn, "explicit"),
        **IAM_DENIED,
    )
    assert dep.iam.list_access_keys(UserName=boss)["AccessKeyMetadata"] == []
    created = iam.create_access_key(UserName=staff.name)["AccessKey"]
    assert created["UserName"] == staff.name


def test_a_deny_on_a_name_holds_whatever_the_letter_case(dep: Deployment) -> None:
    name = unique("root-ops")
    arn = dep.iam.create_user(UserName=name)["User"]["Arn"]
    operator = narrow(dep, allow("iam:*"), deny("iam:CreateAccessKey", arn))
    dep.refused(
        operator.client("iam").create_access_key,
        UserName=name.upper(),
        message=denial(operator, "iam:CreateAccessKey", arn, "explicit"),
        **IAM_DENIED,
    )
    assert dep.iam.list_access_keys(UserName=name)["AccessKeyMetadata"] == []


def test_path_scoped_creation(dep: Deployment) -> None:
    creator = narrow(
        dep, allow(["iam:CreateUser", "iam:CreateRole"], [f"{ARN}:user/dev/*", f"{ARN}:role/dev/*"])
    )
    iam = creator.client("iam")
    name = unique("dev-user")
    assert iam.create_user(UserName=name, Path="/dev/")["User"]["Arn"] == f"{ARN}:user/dev/{name}"
    other = unique("ops-user")
    dep.refused(
        iam.create_user,
        UserName=other,
        Path="/ops/",
        message=denial(creator, "iam:CreateUser", f"{ARN}:user/ops/{other}"),
        **IAM_DENIED,
    )
    with pytest.raises(ClientError):
        dep.iam.get_user(UserName=other)
    role = unique("dev-role")
    iam.create_role(RoleName=role, Path="/dev/", AssumeRolePolicyDocument=TRUST_ACCOUNT)
    dep.refused(
        iam.create_role,
        RoleName=unique("root-role"),
        AssumeRolePolicyDocument=TRUST_ACCOUNT,
        **IAM_DENIED,
    )


# Item 2: operations whose user defaults to the caller ----------------------------------------


SELF_SERVICE = allow(
    [
        "iam:GetUser",
        "iam:CreateAccessKey",
        "iam:ListAccessKeys",
        "iam:UpdateAccessKey",
        "iam:DeleteAccessKey",
        "iam:GetAccessKeyLastUsed",
        "iam:GetLoginProfile",
    ],
    f"{ARN}:user/${{aws:username}}",
)


def test_the_self_service_policy_works_without_a_user_name(dep: Deployment) -> None:
    me = narrow(dep, SELF_SERVICE)
    iam = me.client("iam")
    assert iam.get_user()["User"]["Arn"] == me.arn
    created = iam.create_access_key()["AccessKey"]
    listed = {key["AccessKeyId"] for key in iam.list_access_keys()["AccessKeyMetadata"]}
    assert listed == {me.key_id, created["AccessKeyId"]}
    assert iam.get_access_key_last_used(AccessKeyId=me.key_id)["UserName"] == me.name
    iam.update_access_key(AccessKeyId=created["AccessKeyId"], Status="Inactive")
    iam.delete_access_key(AccessKeyId=created["AccessKeyId"])
    # Someone else's user, and someone else's key, are not the caller's.
    other = make_user(dep, prefix="other")
    dep.refused(
        iam.list_access_keys,
        UserName=other.name,
        message=denial(me, "iam:ListAccessKeys", other.arn),
        **IAM_DENIED,
    )
    dep.refused(
        iam.get_access_key_last_used,
        AccessKeyId=other.key_id,
        message=denial(me, "iam:GetAccessKeyLastUsed", other.arn),
        **IAM_DENIED,
    )


def test_a_deny_on_ones_own_user_holds_without_a_user_name(dep: Deployment) -> None:
    me = narrow(dep, allow("iam:*"), deny("iam:CreateAccessKey", f"{ARN}:user/${{aws:username}}"))
    iam = me.client("iam")
    dep.refused(
        iam.create_access_key,
        message=denial(me, "iam:CreateAccessKey", me.arn, "explicit"),
        **IAM_DENIED,
    )
    assert len(dep.iam.list_access_keys(UserName=me.name)["AccessKeyMetadata"]) == 1
    assert iam.get_user()["User"]["UserName"] == me.name


# Items 3 and 4: resource tags of users and roles; aws:TagKeys on Untag* ----------------------


def test_abac_on_user_and_role_tags(dep: Deployment) -> None:
    blue = unique("blue")
    blue_arn = dep.iam.create_user(UserName=blue, Tags=[{"Key": "team", "Value": "blue"}])["User"][
        "Arn"
    ]
    red = unique("red")
    red_arn = dep.iam.create_user(UserName=red, Tags=[{"Key": "team", "Value": "red"}])["User"][
        "Arn"
    ]
    reader = narrow(
        dep,
        allow(
            ["iam:GetUser", "iam:GetRole"],
            "*",
            Condition={"StringEquals": {"aws:ResourceTag/team": "blue"}},
        ),
    )
    iam = reader.client("iam")
    assert iam.get_user(UserName=blue)["User"]["Arn"] == blue_arn
    dep.refused(
        iam.get_user, UserName=red, message=denial(reader, "iam:GetUser", red_arn), **IAM_DENIED
    )
    role = unique("blue-role")
    dep.iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=TRUST_ACCOUNT,
        Tags=[{"Key": "team", "Value": "blue"}],
    )
    assert iam.get_role(RoleName=role)["Role"]["RoleName"] == role

    # A tag-conditioned deny (iam:ResourceTag) no longer fails open.
    guard = narrow(
        dep,
        allow("iam:*"),
        deny(
            "iam:DeleteRole", "*", Condition={"StringEquals": {"iam:ResourceTag/protected": "true"}}
        ),
    )
    protected = unique("protected")
    protected_arn = dep.iam.create_role(
        RoleName=protected,
        AssumeRolePolicyDocument=TRUST_ACCOUNT,
        Tags=[{"Key": "protected", "Value": "true"}],
    )["Role"]["Arn"]
    dep.refused(
        guard.client("iam").delete_role,
        RoleName=protected,
        message=denial(guard, "iam:DeleteRole", protected_arn, "explicit"),
        **IAM_DENIED,
    )
    assert dep.iam.get_role(RoleName=protected)["Role"]["Arn"] == protected_arn
    guard.client("iam").delete_role(RoleName=role)


def test_untag_user_and_role_carry_the_tag_keys(dep: Deployment) -> None:
    name = unique("tagged")
    arn = dep.iam.create_user(
        UserName=name, Tags=[{"Key": "owner", "Value": "ops"}, {"Key": "temp", "Value": "1"}]
    )["User"]["Arn"]
    role = unique("tagged-role")
    role_arn = dep.iam.create_role(
        RoleName=role,
        AssumeRolePolicyDocument=TRUST_ACCOUNT,
        Tags=[{"Key": "owner", "Value": "ops"}, {"Key": "temp", "Value": "1"}],
    )["Role"]["Arn"]
    keeper = narrow(
        dep,
        allow(["iam:UntagUser", "iam:UntagRole"]),
        deny(
            ["iam:UntagUser", "iam:UntagRole"],
            "*",
            Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": ["owner"]}},
        ),
    )
    iam = keeper.client("iam")
    dep.refused(
        iam.untag_user,
        UserName=name,
        TagKeys=["owner"],
        message=denial(keeper, "iam:UntagUser", arn, "explicit"),
        **IAM_DENIED,
    )
    dep.refused(
        iam.untag_role,
        RoleName=role,
        TagKeys=["owner"],
        message=denial(keeper, "iam:UntagRole", role_arn, "explicit"),
        **IAM_DENIED,
    )
    iam.untag_user(UserName=name, TagKeys=["temp"])
    iam.untag_role(RoleName=role, TagKeys=["temp"])
    assert dep.iam.list_user_tags(UserName=name)["Tags"] == [{"Key": "owner", "Value": "ops"}]
    assert dep.iam.list_role_tags(RoleName=role)["Tags"] == [{"Key": "owner", "Value": "ops"}]


# Item 5: iam:PermissionsBoundary is the entity's current boundary ---------------------------


def test_delegated_administration_with_a_permissions_boundary(dep: Deployment) -> None:
    boundary = dep.iam.create_policy(
        PolicyName=unique("dev-boundary"),
        PolicyDocument=policy(allow("secretsmanager:*")),
    )["Policy"]["Arn"]
    bounded = {"StringEquals": {"iam:PermissionsBoundary": boundary}}
    delegate = narrow(
        dep,
        allow(
            [
                "iam:CreateUser",
                "iam:PutUserPolicy",
                "iam:DeleteUserPolicy",
                "iam:AttachUserPolicy",
                "iam:PutUserPermissionsBoundary",
            ],
            "*",
            Condition=bounded,
        ),
        deny(["iam:DeleteUserPermissionsBoundary"], "*", Condition=bounded),
    )
    iam = delegate.client("iam")
    name = unique("dev")
    iam.create_user(UserName=name, PermissionsBoundary=boundary)
    dep.refused(iam.create_user, UserName=unique("unbounded"), **IAM_DENIED)
    iam.put_user_policy(
        UserName=name, PolicyName="work", PolicyDocument=policy(allow("secretsmanager:*"))
    )
    iam.attach_user_policy(UserName=name, PolicyArn=SECRETS_READ_WRITE)
    arn = dep.iam.get_user(UserName=name)["User"]["Arn"]
    dep.refused(
        iam.delete_user_permissions_boundary,
        UserName=name,
        message=denial(delegate, "iam:DeleteUserPermissionsBoundary", arn, "explicit"),
        **IAM_DENIED,
    )
    assert (
        dep.iam.get_user(UserName=name)["User"]["PermissionsBoundary"]["PermissionsBoundaryArn"]
        == boundary
    )
    # A user without that boundary is out of the delegate's reach.
    free = make_user(dep, prefix="free")
    dep.refused(
        iam.put_user_policy,
        UserName=free.name,
        PolicyName="escalate",
        PolicyDocument=policy(allow("*")),
        message=denial(delegate, "iam:PutUserPolicy", free.arn),
        **IAM_DENIED,
    )
    assert dep.iam.list_user_policies(UserName=free.name)["PolicyNames"] == []


def test_role_operations_carry_the_roles_boundary(dep: Deployment) -> None:
    boundary = dep.iam.create_policy(
        PolicyName=unique("role-boundary"), PolicyDocument=policy(allow("secretsmanager:*"))
    )["Policy"]["Arn"]
    bounded = unique("bounded-role")
    dep.iam.create_role(
        RoleName=bounded, AssumeRolePolicyDocument=TRUST_ACCOUNT, PermissionsBoundary=boundary
    )
    free = unique("free-role")
    free_arn = dep.iam.create_role(RoleName=free, AssumeRolePolicyDocument=TRUST_ACCOUNT)["Role"][
        "Arn"
    ]
    delegate = narrow(
        dep,
        allow(
            ["iam:GetRole", "iam:UpdateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy"],
            "*",
            Condition={"StringEquals": {"iam:PermissionsBoundary": boundary}},
        ),
    )
    iam = delegate.client("iam")
    iam.get_role(RoleName=bounded)
    iam.update_role(RoleName=bounded, Description="managed by the delegate")
    iam.attach_role_policy(RoleName=bounded, PolicyArn=SECRETS_READ_WRITE)
    dep.refused(
        iam.attach_role_policy,
        RoleName=free,
        PolicyArn=SECRETS_READ_WRITE,
        message=denial(delegate, "iam:AttachRolePolicy", free_arn),
        **IAM_DENIED,
    )
    dep.refused(iam.update_role, RoleName=free, Description="taken", **IAM_DENIED)
    assert "Description" not in dep.iam.get_role(RoleName=free)["Role"]
    assert attached_to_role(dep, free) == []


# Item 6: UpdateUser on the source and the target ---------------------------------------------


def test_moving_a_user_needs_the_permission_on_the_target_too(dep: Deployment) -> None:
    mover = narrow(dep, allow("iam:UpdateUser", f"{ARN}:user/dev/*"))
    iam = mover.client("iam")
    name = unique("mv")
    dep.iam.create_user(UserName=name, Path="/dev/")
    dep.refused(
        iam.update_user,
        UserName=name,
        NewPath="/admins/",
        message=denial(mover, "iam:UpdateUser", f"{ARN}:user/admins/{name}"),
        **IAM_DENIED,
    )
    assert dep.iam.get_user(UserName=name)["User"]["Path"] == "/dev/"
    renamed = unique("renamed")
    iam.update_user(UserName=name, NewUserName=renamed)
    assert dep.iam.get_user(UserName=renamed)["User"]["Arn"] == f"{ARN}:user/dev/{renamed}"


# Item 7: sts:AssumeRole with the role's tags; STS asks the authorizer ------------------------


def test_assume_role_sees_the_roles_tags(dep: Deployment) -> None:
    privileged = unique("admin-role")
    privileged_arn = dep.iam.create_role(
        RoleName=privileged,
        AssumeRolePolicyDocument=TRUST_ACCOUNT,
        Tags=[{"Key": "privileged", "Value": "true"}],
    )["Role"]["Arn"]
    plain = unique("plain-role")
    dep.iam.create_role(RoleName=plain, AssumeRolePolicyDocument=TRUST_ACCOUNT)
    guarded = narrow(
        dep,
        allow("sts:AssumeRole"),
        deny(
            "sts:AssumeRole",
            "*",
            Condition={"StringEquals": {"iam:ResourceTag/privileged": "true"}},
        ),
    )
    sts = guarded.client("sts")
    dep.refused(
        sts.assume_role,
        RoleArn=privileged_arn,
        RoleSessionName="s1",
        code="AccessDenied",
        message=f"User: {guarded.arn} is not authorized to perform: sts:AssumeRole "
        f"on resource: {privileged_arn}",
        status=403,
    )
    assert sts.assume_role(RoleArn=f"{ARN}:role/{plain}", RoleSessionName="s1")["AssumedRoleUser"]
    # ABAC the other way: allowed only on roles tagged for the caller's team.
    abac = narrow(
        dep,
        allow(
            "sts:AssumeRole",
            "*",
            Condition={"StringEquals": {"aws:ResourceTag/privileged": "true"}},
        ),
    )
    assert abac.client("sts").assume_role(RoleArn=privileged_arn, RoleSessionName="a1")
    dep.refused(
        abac.client("sts").assume_role,
        RoleArn=f"{ARN}:role/{plain}",
        RoleSessionName="a1",
        code="AccessDenied",
        status=403,
    )


# Item 11: Organizations ----------------------------------------------------------------------


def test_describe_account_is_on_the_account_arn_and_create_account_has_request_tags(
    dep: Deployment,
) -> None:
    orgs = dep.client("organizations")
    try:
        orgs.create_organization(FeatureSet="ALL")
    except ClientError as error:
        assert error.response["Error"]["Code"] == "AlreadyInOrganizationException"
    org_id = orgs.describe_organization()["Organization"]["Id"]
    # Issue 22 item 6: tags on CreateAccount also need organizations:TagResource.
    untagging = narrow(
        dep,
        allow(["organizations:CreateAccount", "organizations:DescribeCreateAccountStatus"]),
    )
    count = len(orgs.list_accounts()["Accounts"])
    dep.refused(
        untagging.client("organizations").create_account,
        Email=f"{unique('x')}@example.com",
        AccountName="tagged",
        Tags=[{"Key": "team", "Value": "blue"}],
    )
    assert len(orgs.list_accounts()["Accounts"]) == count
    plain = create_account(
        untagging.client("organizations"),
        Email=f"{unique('plain')}@example.com",
        AccountName="plain",
    )
    assert plain["State"] == "SUCCEEDED"
    tagger = narrow(
        dep,
        allow(
            ["organizations:CreateAccount", "organizations:TagResource"],
            "*",
            Condition={
                "StringEquals": {"aws:RequestTag/team": "blue"},
                "ForAllValues:StringEquals": {"aws:TagKeys": ["team"]},
            },
        ),
        allow(["organizations:ListAccounts", "organizations:DescribeCreateAccountStatus"]),
    )
    client = tagger.client("organizations")
    created = create_account(
        client,
        Email=f"{unique('blue')}@example.com",
        AccountName="blue",
        Tags=[{"Key": "team", "Value": "blue"}],
    )
    assert created["State"] == "SUCCEEDED"
    before = len(orgs.list_accounts()["Accounts"])
    dep.refused(client.create_account, Email=f"{unique('x')}@example.com", AccountName="untagged")
    dep.refused(
        client.create_account,
        Email=f"{unique('x')}@example.com",
        AccountName="red",
        Tags=[{"Key": "team", "Value": "red"}],
    )
    # aws:TagKeys: a tag key beyond "team" is refused.
    dep.refused(
        client.create_account,
        Email=f"{unique('x')}@example.com",
        AccountName="extra",
        Tags=[{"Key": "team", "Value": "blue"}, {"Key": "cost", "Value": "1"}],
    )
    assert len(orgs.list_accounts()["Accounts"]) == before

    account_arn = f"arn:aws:organizations::{ACCOUNT}:account/{org_id}/{created['AccountId']}"
    reader = narrow(dep, allow("organizations:DescribeAccount", account_arn))
    described = reader.client("organizations").describe_account(AccountId=created["AccountId"])
    assert described["Account"]["Arn"] == account_arn
    dep.refused(
        reader.client("organizations").describe_account,
        AccountId=ACCOUNT,
        message=denial(
            reader,
            "organizations:DescribeAccount",
            f"arn:aws:organizations::{ACCOUNT}:account/{org_id}/{ACCOUNT}",
        ),
    )
    # aws:ResourceTag of the account: the blue account is readable, the untagged
    # management account is not.
    abac = narrow(
        dep,
        allow(
            "organizations:DescribeAccount",
            "*",
            Condition={"StringEquals": {"aws:ResourceTag/team": "blue"}},
        ),
    )
    abac.client("organizations").describe_account(AccountId=created["AccountId"])
    dep.refused(abac.client("organizations").describe_account, AccountId=ACCOUNT)


# KMS: alias operations are on the alias ARN too; kms:RequestAlias on ReEncrypt ------------


def test_create_alias_needs_the_alias_arn_as_well_as_the_key(dep: Deployment) -> None:
    key = dep.kms.create_key()["KeyMetadata"]
    aliases = f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/sandbox-*"
    on_key_only = narrow(dep, allow("kms:CreateAlias", key["Arn"]))
    name = f"alias/{unique('prod')}"
    dep.refused(
        on_key_only.client("kms").create_alias,
        AliasName=name,
        TargetKeyId=key["KeyId"],
        message=denial(on_key_only, "kms:CreateAlias", f"arn:aws:kms:{REGION}:{ACCOUNT}:{name}"),
    )
    both = narrow(dep, allow("kms:CreateAlias", [key["Arn"], aliases]))
    sandbox = f"alias/sandbox-{unique('a')}"
    both.client("kms").create_alias(AliasName=sandbox, TargetKeyId=key["KeyId"])
    dep.refused(both.client("kms").create_alias, AliasName=name, TargetKeyId=key["KeyId"])
    listed = {a["AliasName"] for a in dep.kms.list_aliases(KeyId=key["KeyId"])["Aliases"]}
    assert listed == {sandbox}


def test_re_encrypt_carries_the_alias_each_side_is_named_by(dep: Deployment) -> None:
    key = dep.kms.create_key()["KeyMetadata"]
    alias = f"alias/{unique('re')}"
    dep.kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    blob = dep.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"secret")["CiphertextBlob"]
    by_alias = narrow(
        dep,
        allow(
            ["kms:ReEncryptFrom", "kms:ReEncryptTo"],
            key["Arn"],
            Condition={"StringEquals": {"kms:RequestAlias": alias}},
        ),
    )
    kms = by_alias.client("kms")
    again = kms.re_encrypt(CiphertextBlob=blob, SourceKeyId=alias, DestinationKeyId=alias)[
        "CiphertextBlob"
    ]
    assert dep.kms.decrypt(CiphertextBlob=again)["Plaintext"] == b"secret"
    dep.refused(kms.re_encrypt, CiphertextBlob=blob, DestinationKeyId=key["KeyId"])
