"""KMS grants name IAM users and roles by unique id, end to end: a real server, boto3, the
audit trail. A user or role deleted and created again with the same name is not the
principal a grant named: it may neither use the grant nor retire it, and every such
refusal is audited with its error code.

AWS behaviour asserted here, with where it is on record:
- KMS stores a grant's grantee and retiring principal as the IAM entity's unique id:
  ListGrants answers the id (``AROA...``) instead of an ARN for a principal that is gone,
  and KMS calls this expected (aws/aws-sdk-go#1718; hashicorp/terraform-provider-aws#3038
  and #29340 meet the id when the role was deleted). As for resource policies ("AWS JSON
  policy elements: Principal", IAM User Guide), a recreated entity has a new id, so the old
  grant is not its own.
- CreateGrant with the ARN of a role that does not exist (yet) answers
  InvalidArnException (terraform-provider-aws#3038).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.aws import ACCOUNT
from tests.e2e.test_enforcement import REGION, Deployment, make_user, policy, start, unique
from tests.e2e.test_principal_binding import delete_user, new_user

ROOT = f"arn:aws:iam::{ACCOUNT}:root"
TRUST_ACCOUNT = policy({"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "sts:AssumeRole"})


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = start(tmp_path_factory.mktemp("kms-grant-principals"))
    yield deployment
    deployment.server.stop()


def grants_of(dep: Deployment, key_id: str, **filters: str) -> list[dict[str, Any]]:
    grants: list[dict[str, Any]] = dep.kms.list_grants(KeyId=key_id, **filters)["Grants"]
    return grants


def session_kms(dep: Deployment, role_arn: str) -> Any:
    """A KMS client signed with a new session of the role."""
    credentials = dep.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="worker")[
        "Credentials"
    ]
    return dep.server.client(
        "kms",
        REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def user_kms(dep: Deployment, access_key: dict[str, Any]) -> Any:
    return dep.server.client(
        "kms",
        REGION,
        aws_access_key_id=access_key["AccessKeyId"],
        aws_secret_access_key=access_key["SecretAccessKey"],
    )


def test_a_role_recreated_with_the_same_name_does_not_inherit_its_grant(
    dep: Deployment,
) -> None:
    key = dep.kms.create_key()["KeyMetadata"]  # default policy: IAM policies decide
    blob = dep.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"for the role")["CiphertextBlob"]
    name = unique("grantee-role")
    role = dep.iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_ACCOUNT)["Role"]
    old = session_kms(dep, role["Arn"])
    dep.refused(old.decrypt, CiphertextBlob=blob)  # no IAM policy, no grant yet

    grant = dep.kms.create_grant(
        KeyId=key["KeyId"], GranteePrincipal=role["Arn"], Operations=["Decrypt"], Name="r"
    )
    assert old.decrypt(CiphertextBlob=blob)["Plaintext"] == b"for the role"
    (listed,) = grants_of(dep, key["KeyId"])
    assert listed["GranteePrincipal"] == role["Arn"]  # shown by its ARN while it exists
    assert [g["GrantId"] for g in grants_of(dep, key["KeyId"], GranteePrincipal=role["Arn"])] == [
        grant["GrantId"]
    ]

    dep.iam.delete_role(RoleName=name)
    again = dep.iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_ACCOUNT)["Role"]
    assert again["Arn"] == role["Arn"] and again["RoleId"] != role["RoleId"]
    new = session_kms(dep, again["Arn"])
    # The new role is not the grantee: refused, and the refusal audited (dep.refused reads
    # the request's one audit record and its errorCode).
    error = dep.refused(new.decrypt, CiphertextBlob=blob, code="AccessDeniedException")
    assert f"assumed-role/{name}/worker" in error["Message"] and "kms:Decrypt" in error["Message"]
    # A session of the deleted role authenticates nothing (iam/credentials.py ``_bound``).
    dep.refused(
        old.decrypt,
        CiphertextBlob=blob,
        code="UnrecognizedClientException",
        message="The security token included in the request is invalid.",
    )

    # As KMS lists it: the grantee that is gone by its unique id; the grant is not the new
    # role's, and it is still there, unchanged.
    (listed,) = grants_of(dep, key["KeyId"])
    assert listed["GrantId"] == grant["GrantId"]
    assert listed["GranteePrincipal"] == role["RoleId"]
    assert listed["Operations"] == ["Decrypt"] and listed["Name"] == "r"
    assert grants_of(dep, key["KeyId"], GranteePrincipal=again["Arn"]) == []
    assert [
        g["GrantId"] for g in grants_of(dep, key["KeyId"], GranteePrincipal=role["RoleId"])
    ] == [grant["GrantId"]]

    # The same grant made for the new role is a new grant (Name's idempotency compares the
    # principal it names), and it serves the new role.
    renewed = dep.kms.create_grant(
        KeyId=key["KeyId"], GranteePrincipal=again["Arn"], Operations=["Decrypt"], Name="r"
    )
    assert renewed["GrantId"] != grant["GrantId"]
    assert new.decrypt(CiphertextBlob=blob)["Plaintext"] == b"for the role"
    shown = {g["GrantId"]: g["GranteePrincipal"] for g in grants_of(dep, key["KeyId"])}
    assert shown == {grant["GrantId"]: role["RoleId"], renewed["GrantId"]: again["Arn"]}


def test_a_retiring_principal_recreated_with_the_same_name_may_not_retire(
    dep: Deployment,
) -> None:
    key = dep.kms.create_key()["KeyMetadata"]["KeyId"]
    grantee = make_user(dep)
    name = unique("retiree")
    retiree = new_user(dep.iam, name)
    retiree_arn, retiree_id = retiree["user"]["Arn"], retiree["user"]["UserId"]
    grant = dep.kms.create_grant(
        KeyId=key,
        GranteePrincipal=grantee.arn,
        RetiringPrincipal=retiree_arn,
        Operations=["Encrypt"],
    )
    (retirable,) = dep.kms.list_retirable_grants(RetiringPrincipal=retiree_arn)["Grants"]
    assert retirable["GrantId"] == grant["GrantId"]
    assert (retirable["RetiringPrincipal"], retirable["GranteePrincipal"]) == (
        retiree_arn,
        grantee.arn,
    )

    delete_user(dep.iam, name)
    recreated = new_user(dep.iam, name)
    assert recreated["user"]["Arn"] == retiree_arn
    assert recreated["user"]["UserId"] != retiree_id
    theirs = user_kms(dep, recreated["key"])
    before = grants_of(dep, key)
    dep.refused(theirs.retire_grant, GrantToken=grant["GrantToken"], code="AccessDeniedException")
    dep.refused(
        theirs.retire_grant, KeyId=key, GrantId=grant["GrantId"], code="AccessDeniedException"
    )
    assert grants_of(dep, key) == before
    (listed,) = before
    assert listed["RetiringPrincipal"] == retiree_id  # gone: shown by its unique id
    assert listed["GranteePrincipal"] == grantee.arn
    # The new user has nothing to retire; the grant still serves its grantee.
    assert dep.kms.list_retirable_grants(RetiringPrincipal=retiree_arn)["Grants"] == []
    grantee_kms = dep.server.client(
        "kms", REGION, aws_access_key_id=grantee.key_id, aws_secret_access_key=grantee.secret
    )
    grantee_kms.encrypt(KeyId=key, Plaintext=b"x")


def test_a_grant_to_a_user_or_role_that_does_not_exist_is_refused(dep: Deployment) -> None:
    key = dep.kms.create_key()["KeyMetadata"]["KeyId"]
    ghost_role = f"arn:aws:iam::{ACCOUNT}:role/{unique('ghost')}"
    ghost_user = f"arn:aws:iam::{ACCOUNT}:user/{unique('ghost')}"
    pathed = dep.iam.create_role(
        RoleName=unique("pathed"), Path="/team/", AssumeRolePolicyDocument=TRUST_ACCOUNT
    )["Role"]
    pathless = f"arn:aws:iam::{ACCOUNT}:role/{pathed['RoleName']}"
    for arn in (ghost_role, ghost_user, pathless):
        dep.refused(
            dep.kms.create_grant,
            KeyId=key,
            GranteePrincipal=arn,
            Operations=["Encrypt"],
            code="InvalidArnException",
            message=f"{arn} is not a valid principal ARN.",
        )
        dep.refused(
            dep.kms.create_grant,
            KeyId=key,
            GranteePrincipal=pathed["Arn"],
            RetiringPrincipal=arn,
            Operations=["Encrypt"],
            code="InvalidArnException",
        )
    assert grants_of(dep, key) == []
    # The account root is kept and shown as it was given; a role by its ARN with its path.
    dep.kms.create_grant(
        KeyId=key, GranteePrincipal=ROOT, RetiringPrincipal=pathed["Arn"], Operations=["Encrypt"]
    )
    (listed,) = grants_of(dep, key)
    assert (listed["GranteePrincipal"], listed["RetiringPrincipal"]) == (ROOT, pathed["Arn"])
