"""Resource policies bind the IAM users and roles they name by unique id (issue 22 item 2),
end to end through a server with boto3: trust policies, secret resource policies and KMS
key policies. A user or role recreated with a deleted one's name is not the principal the
policy named; Get*Policy shows the unique id once the principal is deleted (AWS: "AWS
JSON policy elements: Principal"); a principal that does not exist is refused when the
policy is written, in each service's words, and nothing changes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.aws import ACCOUNT, aws_error, state
from tests.e2e.test_sts import allow, session_client, trust, unique
from tests.server import ServerProcess


@pytest.fixture
def iam(server: ServerProcess) -> Any:
    return server.client("iam")


def new_user(iam: Any, name: str, *policies: str) -> dict[str, Any]:
    """An IAM user called ``name`` with inline ``policies`` and an access key."""
    user = iam.create_user(UserName=name)["User"]
    for number, text in enumerate(policies):
        iam.put_user_policy(UserName=name, PolicyName=f"p{number}", PolicyDocument=text)
    return {"user": user, "key": iam.create_access_key(UserName=name)["AccessKey"]}


def delete_user(iam: Any, name: str) -> None:
    for key in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    for policy in iam.list_user_policies(UserName=name)["PolicyNames"]:
        iam.delete_user_policy(UserName=name, PolicyName=policy)
    iam.delete_user(UserName=name)


def principals(policy_text: str) -> list[Any]:
    return [s["Principal"]["AWS"] for s in json.loads(policy_text)["Statement"]]


def trust_of(iam: Any, role_name: str) -> Any:
    return iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]


def test_a_trust_policy_binds_the_user_it_names(server: ServerProcess, iam: Any) -> None:
    name = unique("erin")
    erin = new_user(iam, name)
    user_arn, user_id = erin["user"]["Arn"], erin["user"]["UserId"]
    role_name = unique("role")
    role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=trust(user_arn))[
        "Role"
    ]["Arn"]
    assert trust_of(iam, role_name) == json.loads(trust(user_arn))
    session_client(server, "sts", erin["key"]).assume_role(
        RoleArn=role_arn, RoleSessionName="first"
    )

    delete_user(iam, name)
    # As AWS: the deleted principal is shown by its unique id.
    assert principals(json.dumps(trust_of(iam, role_name))) == [user_id]
    again = new_user(iam, name)
    assert again["user"]["Arn"] == user_arn and again["user"]["UserId"] != user_id
    aws_error(
        session_client(server, "sts", again["key"]).assume_role,
        RoleArn=role_arn,
        RoleSessionName="second",
        code="AccessDenied",
        message=f"User: {user_arn} is not authorized to perform: sts:AssumeRole on resource: "
        f"{role_arn}",
        status=403,
    )
    assert principals(json.dumps(trust_of(iam, role_name))) == [user_id]


def test_a_trust_policy_binds_the_role_it_names(server: ServerProcess, iam: Any) -> None:
    sts = server.client("sts")
    first_name = unique("first")
    first_arn = iam.create_role(
        RoleName=first_name, AssumeRolePolicyDocument=trust(f"arn:aws:iam::{ACCOUNT}:root")
    )["Role"]["Arn"]
    first_id = iam.get_role(RoleName=first_name)["Role"]["RoleId"]
    second_name = unique("second")
    second_arn = iam.create_role(RoleName=second_name, AssumeRolePolicyDocument=trust(first_arn))[
        "Role"
    ]["Arn"]
    hop = sts.assume_role(RoleArn=first_arn, RoleSessionName="hop")["Credentials"]
    session_client(server, "sts", hop).assume_role(RoleArn=second_arn, RoleSessionName="on")

    iam.delete_role(RoleName=first_name)
    iam.create_role(
        RoleName=first_name, AssumeRolePolicyDocument=trust(f"arn:aws:iam::{ACCOUNT}:root")
    )
    assert principals(json.dumps(trust_of(iam, second_name))) == [first_id]
    new_hop = sts.assume_role(RoleArn=first_arn, RoleSessionName="hop")["Credentials"]
    aws_error(
        session_client(server, "sts", new_hop).assume_role,
        RoleArn=second_arn,
        RoleSessionName="on",
        code="AccessDenied",
        status=403,
    )


def test_a_trust_policy_naming_nobody_is_refused(iam: Any) -> None:
    ghost = f"arn:aws:iam::{ACCOUNT}:user/{unique('ghost')}"
    role_name = unique("role")
    aws_error(
        iam.create_role,
        RoleName=role_name,
        AssumeRolePolicyDocument=trust(ghost),
        code="MalformedPolicyDocument",
        message=f'Invalid principal in policy: "AWS":"{ghost}"',
    )
    aws_error(iam.get_role, RoleName=role_name, code="NoSuchEntity", status=404)
    # A role ARN must name the role with its path.
    iam.create_role(
        RoleName=role_name,
        Path="/team/",
        AssumeRolePolicyDocument=trust(f"arn:aws:iam::{ACCOUNT}:root"),
    )
    before = iam.get_role(RoleName=role_name)["Role"]
    pathless = f"arn:aws:iam::{ACCOUNT}:role/{role_name}"
    for wrong in (ghost, pathless):
        aws_error(
            iam.update_assume_role_policy,
            RoleName=role_name,
            PolicyDocument=trust(wrong),
            code="MalformedPolicyDocument",
            message=f'Invalid principal in policy: "AWS":"{wrong}"',
        )
    assert iam.get_role(RoleName=role_name)["Role"] == before
    # The role itself, with its path, is a principal that exists.
    iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=trust(before["Arn"]))
    assert principals(json.dumps(trust_of(iam, role_name))) == [before["Arn"]]


def resource_policy(principal: str, action: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": principal},
                    "Action": action,
                    "Resource": "*",
                }
            ],
        }
    )


def test_a_secret_resource_policy_binds_the_user_it_names(
    server: ServerProcess, iam: Any, sm: Any, name: str
) -> None:
    sm.create_secret(Name=name, SecretString="bound")
    user_name = unique("reader")
    reader = new_user(iam, user_name)
    user_arn, user_id = reader["user"]["Arn"], reader["user"]["UserId"]
    text = resource_policy(user_arn, "secretsmanager:GetSecretValue")
    sm.put_resource_policy(SecretId=name, ResourcePolicy=text)
    assert sm.get_resource_policy(SecretId=name)["ResourcePolicy"] == text
    read = session_client(server, "secretsmanager", reader["key"]).get_secret_value
    assert read(SecretId=name)["SecretString"] == "bound"

    delete_user(iam, user_name)
    assert principals(sm.get_resource_policy(SecretId=name)["ResourcePolicy"]) == [user_id]
    again = new_user(iam, user_name)
    aws_error(
        session_client(server, "secretsmanager", again["key"]).get_secret_value,
        SecretId=name,
        code="AccessDeniedException",
    )

    before = state(sm, name, policy=True)
    ghost = f"arn:aws:iam::{ACCOUNT}:role/{unique('ghost')}"
    aws_error(
        sm.put_resource_policy,
        SecretId=name,
        ResourcePolicy=resource_policy(ghost, "secretsmanager:GetSecretValue"),
        code="MalformedPolicyDocumentException",
        message="This resource policy contains an unsupported principal.",
    )
    assert state(sm, name, policy=True) == before


def test_a_key_policy_binds_the_user_it_names(server: ServerProcess, iam: Any, kms: Any) -> None:
    user_name = unique("keyuser")
    keyuser = new_user(iam, user_name)
    user_arn, user_id = keyuser["user"]["Arn"], keyuser["user"]["UserId"]
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    policy = json.loads(kms.get_key_policy(KeyId=key_id)["Policy"])
    policy["Statement"].append(
        {
            "Effect": "Allow",
            "Principal": {"AWS": user_arn},
            "Action": "kms:DescribeKey",
            "Resource": "*",
        }
    )
    text = json.dumps(policy)
    kms.put_key_policy(KeyId=key_id, Policy=text)
    assert kms.get_key_policy(KeyId=key_id)["Policy"] == text
    session_client(server, "kms", keyuser["key"]).describe_key(KeyId=key_id)

    delete_user(iam, user_name)
    shown = json.loads(kms.get_key_policy(KeyId=key_id)["Policy"])
    assert shown["Statement"][-1]["Principal"]["AWS"] == user_id
    again = new_user(iam, user_name)
    aws_error(
        session_client(server, "kms", again["key"]).describe_key,
        KeyId=key_id,
        code="AccessDeniedException",
    )

    before = kms.get_key_policy(KeyId=key_id)["Policy"]
    ghost = f"arn:aws:iam::{ACCOUNT}:user/{unique('ghost')}"
    policy["Statement"][-1]["Principal"]["AWS"] = ghost
    for call in (
        lambda: kms.put_key_policy(KeyId=key_id, Policy=json.dumps(policy)),
        lambda: kms.create_key(Policy=json.dumps(policy)),
    ):
        aws_error(
            call,
            code="MalformedPolicyDocumentException",
            message="Policy contains a statement with one or more invalid principals.",
        )
    assert kms.get_key_policy(KeyId=key_id)["Policy"] == before


def test_identity_policies_name_no_principal(iam: Any) -> None:
    # Nothing to bind in an identity policy: IAM refuses a Principal element in one.
    user_name = unique("plain")
    iam.create_user(UserName=user_name)
    text = json.loads(allow("secretsmanager:ListSecrets"))
    text["Statement"][0]["Principal"] = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    aws_error(
        iam.put_user_policy,
        UserName=user_name,
        PolicyName="p",
        PolicyDocument=json.dumps(text),
        code="MalformedPolicyDocument",
    )
    iam.delete_user(UserName=user_name)
