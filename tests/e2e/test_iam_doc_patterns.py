"""The patterns of docs/iam.md ("What a request is authorized on") run as written: each
section's policy, taken from the page, held by a user of a fresh dev server, allows what
the page says and refuses (AccessDenied, audited, nothing changed) what it says it
refuses."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.aws import ACCOUNT
from tests.e2e.test_enforcement import Deployment, User, make_user, policy, start

IAM_DOC = Path(__file__).resolve().parents[2] / "docs" / "iam.md"
DENIED = {"code": "AccessDenied", "status": 403}
TRUST_ACCOUNT = policy(
    {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
    }
)


def documented_policy(title: str) -> str:
    """The ```json block of the section ``### title``."""
    text = IAM_DOC.read_text()
    start = text.index(f"\n### {title}\n")
    end = text.find("\n#", start + 1)
    (block,) = re.findall(r"```json\n(.*?)```", text[start:end], re.DOTALL)
    return str(block)


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = start(tmp_path_factory.mktemp("doc-patterns"))
    yield deployment
    deployment.server.stop()


def holder(dep: Deployment, title: str, **tags: str) -> User:
    user = make_user(dep, documented_policy(title))
    if tags:
        dep.iam.tag_user(UserName=user.name, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return user


def test_abac_with_resource_tags(dep: Deployment) -> None:
    blue = holder(dep, "Attribute-based access control with resource tags", team="blue")
    for team in ("blue", "red"):
        dep.iam.create_role(
            RoleName=f"{team}-service",
            AssumeRolePolicyDocument=TRUST_ACCOUNT,
            Tags=[{"Key": "team", "Value": team}],
        )
    sts = blue.client("sts")
    assumed = sts.assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/blue-service", RoleSessionName="blue"
    )
    assert assumed["AssumedRoleUser"]["Arn"].endswith(":assumed-role/blue-service/blue")
    dep.refused(
        sts.assume_role,
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/red-service",
        RoleSessionName="blue",
        **DENIED,
    )
    iam = blue.client("iam")
    assert iam.get_role(RoleName="blue-service")["Role"]["RoleName"] == "blue-service"
    dep.refused(iam.get_role, RoleName="red-service", **DENIED)


def test_delegated_administration_with_permissions_boundaries(dep: Deployment) -> None:
    boundary = dep.iam.create_policy(
        PolicyName="DevBoundary",
        PolicyDocument=policy({"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}),
    )["Policy"]["Arn"]
    lead = holder(dep, "Delegated administration with permissions boundaries")
    iam = lead.client("iam")
    iam.create_user(UserName="dev-1", PermissionsBoundary=boundary)
    dep.refused(iam.create_user, UserName="dev-2", **DENIED)
    allow_all = policy({"Effect": "Allow", "Action": "*", "Resource": "*"})
    iam.put_user_policy(UserName="dev-1", PolicyName="work", PolicyDocument=allow_all)
    for target in ("admin", lead.name):
        dep.refused(
            iam.put_user_policy,
            UserName=target,
            PolicyName="escalate",
            PolicyDocument=allow_all,
            **DENIED,
        )
        assert "escalate" not in dep.iam.list_user_policies(UserName=target)["PolicyNames"]
    dep.refused(iam.delete_user_permissions_boundary, UserName="dev-1", **DENIED)
    dep.refused(iam.create_policy_version, PolicyArn=boundary, PolicyDocument=allow_all, **DENIED)
    assert len(dep.iam.list_policy_versions(PolicyArn=boundary)["Versions"]) == 1


def test_path_scoped_administration(dep: Deployment) -> None:
    admin = holder(dep, "Path-scoped administration")
    iam = admin.client("iam")
    iam.create_user(UserName="app-1", Path="/dev/")
    assert iam.create_access_key(UserName="APP-1")["AccessKey"]["UserName"] == "app-1"
    dep.refused(iam.create_user, UserName="ops-1", Path="/ops/", **DENIED)
    dep.refused(iam.update_user, UserName="app-1", NewPath="/ops/", **DENIED)
    assert dep.iam.get_user(UserName="app-1")["User"]["Path"] == "/dev/"
    dep.refused(iam.get_user, UserName="admin", **DENIED)
    iam.update_user(UserName="app-1", NewUserName="app-2")
    assert dep.iam.get_user(UserName="app-2")["User"]["Arn"] == (
        f"arn:aws:iam::{ACCOUNT}:user/dev/app-2"
    )
