"""IAM enforced end to end: real server processes, boto3 and the AWS CLI, set up the way a
user sets access up on AWS (``aws iam ...``, ``aws sts ...``, ``aws organizations ...``).

Every refused call is checked for AWS's error code and text, for having changed nothing,
and for its one audit record (``<data-dir>/audit/logs``) carrying the error code.

AWS's wording and rules these follow, with where they are on record:

- "User: ARN is not authorized to perform: ACTION on resource: ARN because no
  identity-based policy allows the ACTION action" / "... with an explicit deny in a
  resource-based policy" (IAM User Guide, "Troubleshooting access denied error messages").
- IAM answers ``AccessDenied`` with HTTP 403 (the ``iam`` Query protocol error shape).
- Secrets Manager's "Access to KMS is not allowed" when the caller may not use the
  secret's KMS key, and "You can't access a secret from a different AWS account if you
  encrypt the secret with the default KMS service key." (Secrets Manager User Guide,
  "Access AWS Secrets Manager secrets from a different account"; "Troubleshooting").
- Cross-account access needs the secret's resource policy, the key policy and the other
  account's identity policy (secretsmanager:GetSecretValue and kms:Decrypt) to allow,
  and the secret must be named by its full ARN (same guide).
- A same-account resource policy naming the user's ARN grants by itself (IAM User
  Guide, "Policy evaluation for requests within a single account").
- CreateSecret with Tags needs secretsmanager:TagResource too (CreateSecret, "Required
  permissions").
- A deactivated or deleted access key is refused at once with UnrecognizedClientException
  "The security token included in the request is invalid." (STS/IAM docs; botocore).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from botocore.exceptions import ClientError

from tests.aws import ACCOUNT, create_account, state
from tests.server import ServerProcess

AWS_CLI = Path(sys.executable).with_name("aws")
REGION = "us-east-1"
ADMIN_ARN = f"arn:aws:iam::{ACCOUNT}:user/admin"
ROOT_ARN = f"arn:aws:iam::{ACCOUNT}:root"
SECRET_ARNS = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:"
ADMINISTRATOR_ACCESS = "arn:aws:iam::aws:policy/AdministratorAccess"
SECRETS_MANAGER_READ_WRITE = "arn:aws:iam::aws:policy/SecretsManagerReadWrite"
GET = "secretsmanager:GetSecretValue"
ACCESS_DENIED = "AccessDeniedException"
INVALID_TOKEN = "The security token included in the request is invalid."
KMS_NOT_ALLOWED = "Access to KMS is not allowed"
VIA_SECRETS_MANAGER = f"secretsmanager.{REGION}.amazonaws.com"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str | list[str], resource: str | list[str] = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def not_identity(user: str, action: str, arn: str) -> str:
    return (
        f"User: {user} is not authorized to perform: {action} on resource: {arn} "
        f"because no identity-based policy allows the {action} action"
    )


# Servers, users and the audit trail ---------------------------------------------------------


@dataclass
class Deployment:
    """A dev server with a data directory (so its audit trail can be read)."""

    server: ServerProcess
    data_dir: Path
    admin: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str = "secretsmanager", **credentials: Any) -> Any:
        return self.server.client(service, REGION, **credentials)

    @property
    def sm(self) -> Any:
        return self.admin.setdefault("secretsmanager", self.client())

    @property
    def iam(self) -> Any:
        return self.admin.setdefault("iam", self.client("iam"))

    @property
    def kms(self) -> Any:
        return self.admin.setdefault("kms", self.client("kms"))

    def records(self, request_id: str) -> list[dict[str, Any]]:
        found = []
        for path in sorted((self.data_dir / "audit" / "logs").glob("*/*.jsonl")):
            for line in path.read_bytes().splitlines():
                record = orjson.loads(line)
                # The caller's record; a resource owner's copy (AWSAccount) is the same call.
                copy = record.get("userIdentity", {}).get("type") == "AWSAccount"
                if record.get("requestID") == request_id and not copy:
                    found.append(record)
        return found

    def refused(
        self,
        call: Callable[..., Any],
        /,
        *args: Any,
        code: str = ACCESS_DENIED,
        message: str | None = None,
        status: int = 400,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """``call`` fails with ``code`` (and ``message``), and exactly one audit record of
        that request says so."""
        with pytest.raises(ClientError) as raised:
            call(*args, **kwargs)
        response = raised.value.response
        assert response["ResponseMetadata"]["HTTPStatusCode"] == status, response
        error: dict[str, Any] = response["Error"]
        assert error["Code"] == code, error
        if message is not None:
            assert error["Message"] == message, error
        (record,) = self.records(response["ResponseMetadata"]["RequestId"])
        assert record["errorCode"] == code, record
        return error


@dataclass
class User:
    deployment: Deployment
    name: str
    arn: str
    key_id: str
    secret: str

    def client(self, service: str = "secretsmanager") -> Any:
        return self.deployment.client(
            service, aws_access_key_id=self.key_id, aws_secret_access_key=self.secret
        )


def start(tmp: Path, *extra: str) -> Deployment:
    data_dir = tmp / "data"
    server = ServerProcess(["--dev", "--data-dir", str(data_dir), *extra], tmp / "server.log")
    return Deployment(server.start(), data_dir)


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    deployment = start(tmp_path_factory.mktemp("enforcement"))
    yield deployment
    deployment.server.stop()


def make_user(
    dep: Deployment,
    *inline: str,
    managed: tuple[str, ...] = (),
    boundary: str | None = None,
    prefix: str = "user",
) -> User:
    """An IAM user with its own access key, inline policies and attached managed ones."""
    name = unique(prefix)
    extra = {"PermissionsBoundary": boundary} if boundary else {}
    arn = dep.iam.create_user(UserName=name, **extra)["User"]["Arn"]
    for number, text in enumerate(inline):
        dep.iam.put_user_policy(UserName=name, PolicyName=f"inline-{number}", PolicyDocument=text)
    for policy_arn in managed:
        dep.iam.attach_user_policy(UserName=name, PolicyArn=policy_arn)
    key = dep.iam.create_access_key(UserName=name)["AccessKey"]
    return User(dep, name, arn, key["AccessKeyId"], key["SecretAccessKey"])


def secret(dep: Deployment, prefix: str = "enf", **extra: Any) -> tuple[str, str]:
    """A new secret (name, ARN) created by the admin."""
    name = unique(prefix)
    created = dep.sm.create_secret(Name=name, SecretString=f"value of {name}", **extra)
    return name, created["ARN"]


def cli(
    dep: Deployment, *args: str, key: tuple[str, str] = ("test", "test"), check: bool = True
) -> Any:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STRONGROOM_"))}
    done = subprocess.run(
        [str(AWS_CLI), *args, "--output", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **clean,
            "AWS_ENDPOINT_URL": dep.server.url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_ACCESS_KEY_ID": key[0],
            "AWS_SECRET_ACCESS_KEY": key[1],
            "AWS_MAX_ATTEMPTS": "1",
        },
    )
    if not check:
        return done
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else {}


# The seed's example policy ---------------------------------------------------------------


def test_the_seed_policy_reads_exactly_its_secret_and_nothing_else(dep: Deployment) -> None:
    db = dep.sm.create_secret(
        Name="MyApp/DBCredentials", SecretString='{"username":"admin","password":"P@ssw0rd123"}'
    )
    _, other = secret(dep, "MyApp/Other")
    # Set up with the AWS CLI, as a user would.
    name = unique("app")
    user_arn = cli(dep, "iam", "create-user", "--user-name", name)["User"]["Arn"]
    key = cli(dep, "iam", "create-access-key", "--user-name", name)["AccessKey"]
    seed = policy(
        allow(GET, f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:MyApp/DBCredentials-*")
    )
    cli(
        dep, "iam", "put-user-policy", "--user-name", name,
        "--policy-name", "read-db-credentials", "--policy-document", seed,
    )  # fmt: skip
    user = User(dep, name, user_arn, key["AccessKeyId"], key["SecretAccessKey"])
    sm = user.client()

    for secret_id in ("MyApp/DBCredentials", db["ARN"]):
        assert (
            json.loads(sm.get_secret_value(SecretId=secret_id)["SecretString"])["username"]
            == "admin"
        )
    got = cli(dep, "secretsmanager", "get-secret-value", "--secret-id", "MyApp/DBCredentials",
              key=(user.key_id, user.secret))  # fmt: skip
    assert got["ARN"] == db["ARN"]

    before = {arn: state(dep.sm, arn) for arn in (db["ARN"], other)}
    dep.refused(sm.get_secret_value, SecretId=other, message=not_identity(user_arn, GET, other))
    dep.refused(
        sm.describe_secret,
        SecretId=db["ARN"],
        message=not_identity(user_arn, "secretsmanager:DescribeSecret", db["ARN"]),
    )
    dep.refused(
        sm.put_secret_value,
        SecretId="MyApp/DBCredentials",
        SecretString="overwritten",
        message=not_identity(user_arn, "secretsmanager:PutSecretValue", db["ARN"]),
    )
    dep.refused(
        sm.list_secrets,
        message=f"User: {user_arn} is not authorized to perform: secretsmanager:ListSecrets "
        "because no identity-based policy allows the secretsmanager:ListSecrets action",
    )
    dep.refused(sm.delete_secret, SecretId=db["ARN"], ForceDeleteWithoutRecovery=True)
    dep.refused(sm.create_secret, Name="MyApp/DBCredentials2", SecretString="x")
    denied = cli(dep, "secretsmanager", "get-secret-value", "--secret-id", other,
                 key=(user.key_id, user.secret), check=False)  # fmt: skip
    assert denied.returncode != 0 and "AccessDeniedException" in denied.stderr
    assert {arn: state(dep.sm, arn) for arn in (db["ARN"], other)} == before
    assert dep.sm.get_secret_value(SecretId=db["ARN"])["SecretString"].startswith("{")
    with pytest.raises(ClientError):
        dep.sm.describe_secret(SecretId="MyApp/DBCredentials2")


def test_simulate_principal_policy_explains_the_decision_with_the_aws_cli(dep: Deployment) -> None:
    _, mine = secret(dep, "sim/mine")
    _, theirs = secret(dep, "sim/theirs")
    user = make_user(dep, policy(allow(GET, f"{SECRET_ARNS}sim/mine-*")))
    out = cli(
        dep, "iam", "simulate-principal-policy", "--policy-source-arn", user.arn,
        "--action-names", GET, "secretsmanager:DescribeSecret", "--resource-arns", mine,
    )  # fmt: skip
    get, describe = out["EvaluationResults"]
    assert get["EvalActionName"] == GET and get["EvalDecision"] == "allowed"
    (statement,) = get["MatchedStatements"]
    assert statement["SourcePolicyId"] == "inline-0"
    assert statement["SourcePolicyType"] == "user"
    assert get["ResourceSpecificResults"][0]["EvalResourceName"] == mine
    assert describe["EvalDecision"] == "implicitDeny" and describe["MatchedStatements"] == []
    other = cli(
        dep, "iam", "simulate-principal-policy", "--policy-source-arn", user.arn,
        "--action-names", GET, "--resource-arns", theirs,
    )  # fmt: skip
    assert other["EvaluationResults"][0]["EvalDecision"] == "implicitDeny"
    # The decision it explains is the one the server makes.
    assert user.client().get_secret_value(SecretId=mine)["ARN"] == mine
    dep.refused(user.client().get_secret_value, SecretId=theirs)
    custom = dep.iam.simulate_custom_policy(
        PolicyInputList=[policy(deny(GET, theirs), allow("secretsmanager:*"))],
        ActionNames=[GET],
        ResourceArns=[mine, theirs],
    )["EvaluationResults"][0]
    assert custom["EvalDecision"] == "explicitDeny"
    assert [r["EvalResourceDecision"] for r in custom["ResourceSpecificResults"]] == [
        "allowed",
        "explicitDeny",
    ]
    # Simulating needs iam:SimulatePrincipalPolicy on the simulated user.
    dep.refused(
        user.client("iam").simulate_principal_policy,
        PolicySourceArn=user.arn,
        ActionNames=[GET],
        code="AccessDenied",
        status=403,
    )


# Conditions ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["aws:ResourceTag/team", "secretsmanager:ResourceTag/team"])
def test_a_resource_tag_condition(dep: Deployment, key: str) -> None:
    _, blue = secret(dep, "tag/blue", Tags=[{"Key": "team", "Value": "blue"}])
    _, red = secret(dep, "tag/red", Tags=[{"Key": "team", "Value": "red"}])
    _, untagged = secret(dep, "tag/none")
    user = make_user(dep, policy(allow(GET, Condition={"StringEquals": {key: "blue"}})))
    sm = user.client()
    assert sm.get_secret_value(SecretId=blue)["ARN"] == blue
    for arn in (red, untagged):
        dep.refused(sm.get_secret_value, SecretId=arn, message=not_identity(user.arn, GET, arn))
    # Retagging the secret moves it in or out of reach at once.
    dep.sm.tag_resource(SecretId=red, Tags=[{"Key": "team", "Value": "blue"}])
    assert sm.get_secret_value(SecretId=red)["ARN"] == red
    dep.sm.tag_resource(SecretId=blue, Tags=[{"Key": "team", "Value": "green"}])
    dep.refused(sm.get_secret_value, SecretId=blue)


def test_request_tag_and_tag_keys_conditions_on_create_and_tag(dep: Deployment) -> None:
    only_team_blue = {
        "StringEquals": {"aws:RequestTag/team": "blue"},
        "ForAllValues:StringEquals": {"aws:TagKeys": ["team"]},
    }
    user = make_user(
        dep,
        policy(
            allow(
                ["secretsmanager:CreateSecret", "secretsmanager:TagResource"],
                Condition=only_team_blue,
            ),
            allow("secretsmanager:DescribeSecret"),
        ),
    )
    sm = user.client()
    name = unique("reqtag")
    created = sm.create_secret(Name=name, SecretString="v", Tags=[{"Key": "team", "Value": "blue"}])
    assert dep.sm.describe_secret(SecretId=name)["Tags"] == [{"Key": "team", "Value": "blue"}]
    for tags in (
        [{"Key": "team", "Value": "red"}],
        [{"Key": "team", "Value": "blue"}, {"Key": "owner", "Value": "me"}],
        None,  # no tags: aws:RequestTag/team is missing
    ):
        refused_name = unique("reqtag")
        extra = {"Tags": tags} if tags else {}
        dep.refused(sm.create_secret, Name=refused_name, SecretString="v", **extra)
        with pytest.raises(ClientError) as gone:
            dep.sm.describe_secret(SecretId=refused_name)
        assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"
    before = state(dep.sm, created["ARN"])
    dep.refused(sm.tag_resource, SecretId=created["ARN"], Tags=[{"Key": "team", "Value": "red"}])
    dep.refused(sm.tag_resource, SecretId=created["ARN"], Tags=[{"Key": "cost", "Value": "1"}])
    assert state(dep.sm, created["ARN"]) == before
    sm.tag_resource(SecretId=created["ARN"], Tags=[{"Key": "team", "Value": "blue"}])


# Policy logic ------------------------------------------------------------------------------


def test_an_explicit_deny_beats_any_allow(dep: Deployment) -> None:
    _, guarded = secret(dep, "deny/guarded")
    _, open_ = secret(dep, "deny/open")
    user = make_user(dep, policy(deny(GET, guarded)), managed=(SECRETS_MANAGER_READ_WRITE,))
    sm = user.client()
    assert sm.get_secret_value(SecretId=open_)["ARN"] == open_
    dep.refused(
        sm.get_secret_value,
        SecretId=guarded,
        message=f"User: {user.arn} is not authorized to perform: {GET} on resource: {guarded} "
        "with an explicit deny in an identity-based policy",
    )
    assert sm.describe_secret(SecretId=guarded)["ARN"] == guarded  # only the action denied


def test_an_explicit_deny_by_a_managed_policy_names_it(dep: Deployment) -> None:
    # As AWS does for a policy of the caller's own account: "...: <policy ARN>".
    _, guarded = secret(dep, "deny/managed")
    denying = dep.iam.create_policy(
        PolicyName=unique("no-guarded"), PolicyDocument=policy(deny(GET, guarded))
    )["Policy"]["Arn"]
    user = make_user(dep, managed=(SECRETS_MANAGER_READ_WRITE, denying))
    refusal = (
        f"User: {user.arn} is not authorized to perform: {GET} on resource: {guarded} "
        f"with an explicit deny in an identity-based policy: {denying}"
    )
    dep.refused(user.client().get_secret_value, SecretId=guarded, message=refusal)
    # Through a group, the same policy, the same words.
    group = unique("deniers")
    dep.iam.create_group(GroupName=group)
    dep.iam.attach_group_policy(GroupName=group, PolicyArn=denying)
    member = make_user(dep, managed=(SECRETS_MANAGER_READ_WRITE,))
    dep.iam.add_user_to_group(GroupName=group, UserName=member.name)
    dep.refused(
        member.client().get_secret_value,
        SecretId=guarded,
        message=refusal.replace(user.arn, member.arn),
    )


def test_not_action(dep: Deployment) -> None:
    name, arn = secret(dep, "notaction")
    # Everything but deleting; and a Deny of all but reading.
    user = make_user(
        dep,
        policy({"Effect": "Allow", "NotAction": "secretsmanager:DeleteSecret", "Resource": "*"}),
    )
    sm = user.client()
    assert sm.describe_secret(SecretId=arn)["Name"] == name
    sm.put_secret_value(SecretId=arn, SecretString="second")
    dep.refused(sm.delete_secret, SecretId=arn)
    assert "DeletedDate" not in dep.sm.describe_secret(SecretId=arn)
    everything_but_reading = {
        "Effect": "Deny",
        "NotAction": ["secretsmanager:GetSecretValue"],
        "Resource": "*",
    }
    reader = make_user(dep, policy(allow("*"), everything_but_reading))
    # Reading uses the secret's KMS key on the reader's behalf, and the Deny covers that too.
    dep.refused(reader.client().get_secret_value, SecretId=arn, message=KMS_NOT_ALLOWED)
    everything_but_reading["NotAction"].append("kms:Decrypt")
    dep.iam.put_user_policy(
        UserName=reader.name,
        PolicyName="inline-0",
        PolicyDocument=policy(allow("*"), everything_but_reading),
    )
    assert reader.client().get_secret_value(SecretId=arn)["SecretString"] == "second"
    dep.refused(reader.client().describe_secret, SecretId=arn)
    dep.refused(reader.client("iam").list_users, code="AccessDenied", status=403)


def test_a_permissions_boundary_limits_an_administrator(dep: Deployment) -> None:
    _, arn = secret(dep, "boundary")
    boundary = dep.iam.create_policy(
        PolicyName=unique("describe-only"),
        PolicyDocument=policy(allow(["secretsmanager:Describe*", "secretsmanager:List*"])),
    )["Policy"]["Arn"]
    user = make_user(dep, managed=(ADMINISTRATOR_ACCESS,), boundary=boundary)
    sm = user.client()
    assert sm.describe_secret(SecretId=arn)["ARN"] == arn
    dep.refused(
        sm.get_secret_value,
        SecretId=arn,
        message=f"User: {user.arn} is not authorized to perform: {GET} on resource: {arn} "
        f"because no permissions boundary allows the {GET} action",
    )
    dep.refused(
        user.client("iam").create_user, UserName=unique("x"), code="AccessDenied", status=403
    )
    dep.iam.delete_user_permissions_boundary(UserName=user.name)
    assert sm.get_secret_value(SecretId=arn)["ARN"] == arn


def test_group_policies_apply_to_members_only(dep: Deployment) -> None:
    _, arn = secret(dep, "group")
    group = unique("readers")
    dep.iam.create_group(GroupName=group)
    dep.iam.put_group_policy(
        GroupName=group, PolicyName="read", PolicyDocument=policy(allow(GET, arn))
    )
    user = make_user(dep)
    sm = user.client()
    dep.refused(sm.get_secret_value, SecretId=arn)
    dep.iam.add_user_to_group(GroupName=group, UserName=user.name)
    assert sm.get_secret_value(SecretId=arn)["ARN"] == arn
    managed = dep.iam.create_policy(
        PolicyName=unique("describe"), PolicyDocument=policy(allow("secretsmanager:DescribeSecret"))
    )["Policy"]["Arn"]
    dep.iam.attach_group_policy(GroupName=group, PolicyArn=managed)
    assert sm.describe_secret(SecretId=arn)["ARN"] == arn
    dep.iam.remove_user_from_group(GroupName=group, UserName=user.name)
    dep.refused(sm.get_secret_value, SecretId=arn)
    dep.refused(sm.describe_secret, SecretId=arn)


def test_set_default_policy_version_changes_the_decision_at_once(dep: Deployment) -> None:
    _, arn = secret(dep, "versions")
    managed = dep.iam.create_policy(
        PolicyName=unique("versioned"),
        PolicyDocument=policy(allow("secretsmanager:DescribeSecret")),
    )["Policy"]["Arn"]
    user = make_user(dep, managed=(managed,))
    sm = user.client()
    dep.iam.create_policy_version(PolicyArn=managed, PolicyDocument=policy(allow(GET)))
    dep.refused(sm.get_secret_value, SecretId=arn)  # v2 is not the default yet
    dep.iam.set_default_policy_version(PolicyArn=managed, VersionId="v2")
    assert sm.get_secret_value(SecretId=arn)["ARN"] == arn
    dep.refused(sm.describe_secret, SecretId=arn)
    dep.iam.set_default_policy_version(PolicyArn=managed, VersionId="v1")
    dep.refused(sm.get_secret_value, SecretId=arn)
    assert sm.describe_secret(SecretId=arn)["ARN"] == arn


def test_a_policy_change_applies_to_the_next_request(dep: Deployment) -> None:
    _, arn = secret(dep, "change")
    user = make_user(dep)
    sm = user.client()
    dep.refused(sm.get_secret_value, SecretId=arn)
    dep.iam.put_user_policy(UserName=user.name, PolicyName="now", PolicyDocument=policy(allow(GET)))
    assert sm.get_secret_value(SecretId=arn)["ARN"] == arn
    dep.iam.put_user_policy(
        UserName=user.name, PolicyName="now", PolicyDocument=policy(allow("kms:*"))
    )
    dep.refused(sm.get_secret_value, SecretId=arn)
    dep.iam.delete_user_policy(UserName=user.name, PolicyName="now")
    dep.refused(sm.get_secret_value, SecretId=arn)


def test_a_policy_change_reaches_every_worker_at_once(tmp_path: Path) -> None:
    dep = start(tmp_path, "--workers", "2")
    try:
        _, arn = secret(dep, "workers")
        user = make_user(dep)
        rounds = 12  # fresh connections, spread over both workers
        for step, text in enumerate((policy(allow(GET)), policy(allow("kms:*"))) * 2):
            dep.iam.put_user_policy(UserName=user.name, PolicyName="p", PolicyDocument=text)
            for _ in range(rounds):
                sm = user.client()  # a new client: a new connection
                if step % 2 == 0:
                    assert sm.get_secret_value(SecretId=arn)["ARN"] == arn
                else:
                    dep.refused(sm.get_secret_value, SecretId=arn)
    finally:
        dep.server.stop()


# Access keys -------------------------------------------------------------------------------


def test_deactivated_and_deleted_keys_stop_working_at_once(dep: Deployment) -> None:
    _, arn = secret(dep, "keys")
    user = make_user(dep, policy(allow(GET)))
    sm = user.client()
    assert sm.get_secret_value(SecretId=arn)["ARN"] == arn
    dep.iam.update_access_key(UserName=user.name, AccessKeyId=user.key_id, Status="Inactive")
    dep.refused(
        sm.get_secret_value, SecretId=arn, code="UnrecognizedClientException", message=INVALID_TOKEN
    )
    dep.iam.update_access_key(UserName=user.name, AccessKeyId=user.key_id, Status="Active")
    assert sm.get_secret_value(SecretId=arn)["ARN"] == arn
    dep.iam.delete_access_key(UserName=user.name, AccessKeyId=user.key_id)
    dep.refused(
        sm.get_secret_value, SecretId=arn, code="UnrecognizedClientException", message=INVALID_TOKEN
    )
    iam = user.client("iam")
    with pytest.raises(ClientError) as raised:
        iam.get_user()
    assert raised.value.response["Error"]["Code"] == "InvalidClientTokenId"


# Batches, KMS keys and resource policies ----------------------------------------------------


def test_batch_get_reports_a_denied_secret_among_its_errors(dep: Deployment) -> None:
    allowed_name, allowed = secret(dep, "batch/ok")
    _, denied = secret(dep, "batch/no")
    user = make_user(dep, policy(allow("secretsmanager:BatchGetSecretValue"), allow(GET, allowed)))
    out = user.client().batch_get_secret_value(SecretIdList=[allowed, denied])
    assert [v["ARN"] for v in out["SecretValues"]] == [allowed]
    assert out["SecretValues"][0]["SecretString"] == f"value of {allowed_name}"
    assert out["Errors"] == [
        {
            "SecretId": denied,
            "ErrorCode": ACCESS_DENIED,
            "Message": not_identity(user.arn, GET, denied),
        }
    ]
    # Without BatchGetSecretValue itself, the whole batch is refused.
    only_get = make_user(dep, policy(allow(GET)))
    dep.refused(only_get.client().batch_get_secret_value, SecretIdList=[allowed])


def key_policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Id": "key-policy", "Statement": list(statements)})


def principal_allows(
    principal: str, action: str | list[str], sid: str, **extra: Any
) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": action,
        "Resource": "*",
        **extra,
    }


def test_a_customer_key_must_let_the_caller_decrypt(dep: Deployment) -> None:
    user = make_user(dep, policy(allow("secretsmanager:*"), allow("kms:Decrypt")))
    sm = user.client()
    # A key whose policy names only the admin: IAM policies count for nothing on it.
    admin_only = key_policy(principal_allows(ADMIN_ARN, "kms:*", "admin"))
    key = dep.kms.create_key(Policy=admin_only)["KeyMetadata"]
    _, arn = secret(dep, "kms/private", KmsKeyId=key["Arn"])
    before = state(dep.sm, arn)
    dep.refused(sm.get_secret_value, SecretId=arn, message=KMS_NOT_ALLOWED)
    dep.refused(sm.put_secret_value, SecretId=arn, SecretString="new", message=KMS_NOT_ALLOWED)
    assert state(dep.sm, arn) == before
    assert sm.describe_secret(SecretId=arn)["KmsKeyId"] == key["Arn"]  # no key used
    # Naming the user for use through Secrets Manager only.
    via = {"StringEquals": {"kms:ViaService": VIA_SECRETS_MANAGER}}
    dep.kms.put_key_policy(
        KeyId=key["KeyId"],
        PolicyName="default",
        Policy=key_policy(
            principal_allows(ADMIN_ARN, "kms:*", "admin"),
            principal_allows(
                user.arn, ["kms:Decrypt", "kms:GenerateDataKey"], "app", Condition=via
            ),
        ),
    )
    assert sm.get_secret_value(SecretId=arn)["SecretString"].startswith("value of")
    sm.put_secret_value(SecretId=arn, SecretString="new")
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "new"
    # Directly, without kms:ViaService, the key policy does not allow it.
    blob = dep.kms.encrypt(KeyId=key["Arn"], Plaintext=b"direct")["CiphertextBlob"]
    error = dep.refused(user.client("kms").decrypt, CiphertextBlob=blob)
    assert error["Message"].startswith(
        f"User: {user.arn} is not authorized to perform: kms:Decrypt"
    )


def test_a_key_policy_reading_the_encryption_context_tells_secrets_apart(
    dep: Deployment,
) -> None:
    # Every decrypt of a secret under the key carries its ARN as encryption context; a key
    # policy that reads it must be asked again for each secret, whatever was decided before.
    user = make_user(dep, policy(allow("secretsmanager:*")))
    sm = user.client()
    key = dep.kms.create_key(Policy=key_policy(principal_allows(ADMIN_ARN, "kms:*", "admin")))[
        "KeyMetadata"
    ]
    _, mine = secret(dep, "kms/context-mine", KmsKeyId=key["Arn"])
    _, other = secret(dep, "kms/context-other", KmsKeyId=key["Arn"])
    only_mine = {"StringEquals": {"kms:EncryptionContext:SecretARN": mine}}
    dep.kms.put_key_policy(
        KeyId=key["KeyId"],
        PolicyName="default",
        Policy=key_policy(
            principal_allows(ADMIN_ARN, "kms:*", "admin"),
            principal_allows(user.arn, "kms:Decrypt", "mine-only", Condition=only_mine),
        ),
    )
    for _ in range(2):
        assert sm.get_secret_value(SecretId=mine)["SecretString"].startswith("value of")
        dep.refused(sm.get_secret_value, SecretId=other, message=KMS_NOT_ALLOWED)
    # A key policy that does not read the context lets both through.
    dep.kms.put_key_policy(
        KeyId=key["KeyId"],
        PolicyName="default",
        Policy=key_policy(
            principal_allows(ADMIN_ARN, "kms:*", "admin"),
            principal_allows(user.arn, "kms:Decrypt", "any-secret"),
        ),
    )
    for arn in (mine, other, mine, other):
        assert sm.get_secret_value(SecretId=arn)["ARN"] == arn


def test_the_default_key_policy_delegates_to_identity_policies(dep: Deployment) -> None:
    key = dep.kms.create_key()["KeyMetadata"]  # the default policy: the account root
    _, arn = secret(dep, "kms/default", KmsKeyId=key["KeyId"])
    sm_only = make_user(dep, policy(allow("secretsmanager:*")))
    dep.refused(sm_only.client().get_secret_value, SecretId=arn, message=KMS_NOT_ALLOWED)
    blob = dep.kms.encrypt(KeyId=key["Arn"], Plaintext=b"direct")["CiphertextBlob"]
    error = dep.refused(sm_only.client("kms").decrypt, CiphertextBlob=blob)
    assert error["Message"] == not_identity(sm_only.arn, "kms:Decrypt", key["Arn"])
    dep.iam.put_user_policy(
        UserName=sm_only.name,
        PolicyName="decrypt",
        PolicyDocument=policy(allow("kms:Decrypt", key["Arn"])),
    )
    assert sm_only.client().get_secret_value(SecretId=arn)["ARN"] == arn
    assert sm_only.client("kms").decrypt(CiphertextBlob=blob)["Plaintext"] == b"direct"


def test_a_resource_policy_naming_a_user_grants_by_itself(dep: Deployment) -> None:
    _, arn = secret(dep, "rp/grant")
    reader = make_user(dep)  # no identity policy at all
    stranger = make_user(dep)
    dep.refused(reader.client().get_secret_value, SecretId=arn)
    dep.sm.put_resource_policy(
        SecretId=arn,
        ResourcePolicy=json.dumps(
            {"Version": "2012-10-17", "Statement": [principal_allows(reader.arn, GET, "reader")]}
        ),
    )
    assert reader.client().get_secret_value(SecretId=arn)["ARN"] == arn
    dep.refused(reader.client().describe_secret, SecretId=arn)
    dep.refused(
        stranger.client().get_secret_value,
        SecretId=arn,
        message=not_identity(stranger.arn, GET, arn),
    )


def test_a_resource_policy_deny_overrides_an_administrator(dep: Deployment) -> None:
    _, arn = secret(dep, "rp/deny")
    admin = make_user(dep, managed=(ADMINISTRATOR_ACCESS,))
    dep.sm.put_resource_policy(
        SecretId=arn,
        ResourcePolicy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Principal": {"AWS": admin.arn},
                        "Action": "secretsmanager:*",
                        "Resource": "*",
                    }
                ],
            }
        ),
    )
    before = state(dep.sm, arn, policy=True)
    sm = admin.client()
    dep.refused(
        sm.get_secret_value,
        SecretId=arn,
        message=f"User: {admin.arn} is not authorized to perform: {GET} on resource: {arn} "
        "with an explicit deny in a resource-based policy",
    )
    dep.refused(sm.delete_resource_policy, SecretId=arn)
    dep.refused(sm.delete_secret, SecretId=arn)
    assert state(dep.sm, arn, policy=True) == before
    _, other = secret(dep, "rp/other")
    assert sm.get_secret_value(SecretId=other)["ARN"] == other


# IAM itself --------------------------------------------------------------------------------


def test_a_user_without_iam_permissions_cannot_create_users(dep: Deployment) -> None:
    user = make_user(dep, policy(allow("secretsmanager:*")))
    new_name = unique("intruder")
    dep.refused(
        user.client("iam").create_user,
        UserName=new_name,
        code="AccessDenied",
        status=403,
        message=not_identity(user.arn, "iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/{new_name}"),
    )
    dep.refused(
        user.client("iam").attach_user_policy,
        UserName=user.name,
        PolicyArn=ADMINISTRATOR_ACCESS,
        code="AccessDenied",
        status=403,
    )
    with pytest.raises(ClientError) as missing:
        dep.iam.get_user(UserName=new_name)
    assert missing.value.response["Error"]["Code"] == "NoSuchEntity"
    assert dep.iam.list_attached_user_policies(UserName=user.name)["AttachedPolicies"] == []
    denied = cli(dep, "iam", "create-user", "--user-name", new_name,
                 key=(user.key_id, user.secret), check=False)  # fmt: skip
    assert denied.returncode != 0 and "AccessDenied" in denied.stderr


# Cross account -----------------------------------------------------------------------------


def member_account_iam(dep: Deployment, name: str, service: str = "iam") -> tuple[str, Any]:
    """A new account of the organization (created if need be) and an IAM client (or a
    client of ``service``) inside it, as the account's OrganizationAccountAccessRole."""
    orgs = dep.client("organizations")
    try:
        orgs.create_organization(FeatureSet="ALL")
    except ClientError as error:
        assert error.response["Error"]["Code"] == "AlreadyInOrganizationException"
    status = create_account(orgs, Email=f"{unique(name)}@example.com", AccountName=name)
    assert status["State"] == "SUCCEEDED", status
    session = dep.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{status['AccountId']}:role/OrganizationAccountAccessRole",
        RoleSessionName="setup",
    )["Credentials"]
    return status["AccountId"], dep.client(
        service,
        aws_access_key_id=session["AccessKeyId"],
        aws_secret_access_key=session["SecretAccessKey"],
        aws_session_token=session["SessionToken"],
    )


def test_a_second_account_reads_a_shared_secret_through_resource_and_key_policies(
    dep: Deployment,
) -> None:
    # Inside a new account, as its administrator role, create two users.
    other_account, their_iam = member_account_iam(dep, "team-b")

    def their_user(name: str) -> User:
        arn = their_iam.create_user(UserName=name)["User"]["Arn"]
        key = their_iam.create_access_key(UserName=name)["AccessKey"]
        return User(dep, name, arn, key["AccessKeyId"], key["SecretAccessKey"])

    bob, carol = their_user(unique("bob")), their_user(unique("carol"))
    assert bob.arn == f"arn:aws:iam::{other_account}:user/{bob.name}"

    # In the first account: a key whose policy lets bob decrypt through Secrets Manager,
    # and a secret under it whose resource policy names bob.
    via = {"StringEquals": {"kms:ViaService": VIA_SECRETS_MANAGER}}
    key = dep.kms.create_key(
        Policy=key_policy(
            principal_allows(ROOT_ARN, "kms:*", "Enable IAM User Permissions"),
            principal_allows(bob.arn, "kms:Decrypt", "bob via Secrets Manager", Condition=via),
        )
    )["KeyMetadata"]
    grant = json.dumps(
        {"Version": "2012-10-17", "Statement": [principal_allows(bob.arn, GET, "bob")]}
    )
    name, shared = secret(dep, "shared", KmsKeyId=key["Arn"])
    dep.sm.put_resource_policy(SecretId=shared, ResourcePolicy=grant)
    _, managed_key = secret(dep, "shared-default-key")  # under aws/secretsmanager
    dep.sm.put_resource_policy(SecretId=managed_key, ResourcePolicy=grant)

    # Each user of the other account may read them, by its own account's identity policy.
    reads = policy(allow(GET, [shared, managed_key]), allow("kms:Decrypt", key["Arn"]))
    for user in (bob, carol):
        their_iam.put_user_policy(UserName=user.name, PolicyName="read", PolicyDocument=reads)

    assert bob.client().get_secret_value(SecretId=shared)["SecretString"] == f"value of {name}"
    cli_read = cli(dep, "secretsmanager", "get-secret-value", "--secret-id", shared,
                   key=(bob.key_id, bob.secret))  # fmt: skip
    assert cli_read["ARN"] == shared
    dep.refused(
        carol.client().get_secret_value,
        SecretId=shared,
        message=f"User: {carol.arn} is not authorized to perform: {GET} on resource: {shared} "
        f"because no resource-based policy allows the {GET} action",
    )
    dep.refused(
        bob.client().get_secret_value,
        SecretId=managed_key,
        code="InvalidRequestException",
        message="You can't access a secret from a different AWS account if you encrypt the "
        "secret with the default KMS service key.",
    )
    # Bob's own account must allow it too: without kms:Decrypt there, KMS is refused.
    their_iam.put_user_policy(
        UserName=bob.name, PolicyName="read", PolicyDocument=policy(allow(GET, shared))
    )
    dep.refused(bob.client().get_secret_value, SecretId=shared, message=KMS_NOT_ALLOWED)
    # ... and the secret policy alone decides nothing for bob's account without an identity allow.
    their_iam.delete_user_policy(UserName=bob.name, PolicyName="read")
    dep.refused(
        bob.client().get_secret_value, SecretId=shared, message=not_identity(bob.arn, GET, shared)
    )
    # Nothing of the first account is visible to the second by name.
    dep.refused(bob.client().list_secrets)


def test_a_secret_is_shared_with_every_account_of_the_organization(dep: Deployment) -> None:
    """The usual way to share across accounts: the resource and key policies allow any
    principal whose account is in the organization (aws:PrincipalOrgID)."""
    _, their_iam = member_account_iam(dep, "team-d")
    org_id = dep.client("organizations").describe_organization()["Organization"]["Id"]
    dave = unique("dave")
    dave_arn = their_iam.create_user(UserName=dave)["User"]["Arn"]
    dave_key = their_iam.create_access_key(UserName=dave)["AccessKey"]
    reader = User(dep, dave, dave_arn, dave_key["AccessKeyId"], dave_key["SecretAccessKey"])

    def shared_with(organization: str) -> dict[str, Any]:
        return {"StringEquals": {"aws:PrincipalOrgID": organization}}

    key = dep.kms.create_key(
        Policy=key_policy(
            principal_allows(ROOT_ARN, "kms:*", "Enable IAM User Permissions"),
            principal_allows(
                "*",
                "kms:Decrypt",
                "OrganizationViaSecretsManager",
                Condition={
                    "StringEquals": {
                        "kms:ViaService": VIA_SECRETS_MANAGER,
                        "aws:PrincipalOrgID": org_id,
                    }
                },
            ),
        )
    )["KeyMetadata"]
    name, shared = secret(dep, "org-shared", KmsKeyId=key["Arn"])
    their_iam.put_user_policy(
        UserName=dave,
        PolicyName="read",
        PolicyDocument=policy(allow(GET, shared), allow("kms:Decrypt", key["Arn"])),
    )
    dep.sm.put_resource_policy(
        SecretId=shared,
        ResourcePolicy=policy(
            principal_allows("*", GET, "TheOrganization", Condition=shared_with(org_id))
        ),
    )
    assert reader.client().get_secret_value(SecretId=shared)["SecretString"] == f"value of {name}"

    # Another organization's id: nobody of this one is let in.
    dep.sm.put_resource_policy(
        SecretId=shared,
        ResourcePolicy=policy(
            principal_allows("*", GET, "AnotherOrganization", Condition=shared_with("o-0000000000"))
        ),
    )
    dep.refused(
        reader.client().get_secret_value,
        SecretId=shared,
        message=f"User: {dave_arn} is not authorized to perform: {GET} on resource: {shared} "
        f"because no resource-based policy allows the {GET} action",
    )
    assert dep.sm.describe_secret(SecretId=shared)["ARN"] == shared  # still there, unchanged


def test_x_forwarded_for_does_not_choose_the_source_ip(dep: Deployment) -> None:
    """A client on the server's own host claims another address: policies and the audit
    trail see the address the connection came from."""
    name, arn = secret(dep, "xff")
    office = policy(allow(GET, arn, Condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}))
    user = make_user(dep, office)
    client = user.client()

    def claim(request: Any, **_: Any) -> None:
        request.headers["X-Forwarded-For"] = "203.0.113.9"

    client.meta.events.register("before-sign.secretsmanager.GetSecretValue", claim)
    dep.refused(
        client.get_secret_value,
        SecretId=name,
        message=not_identity(user.arn, GET, arn),
    )
    with pytest.raises(ClientError) as raised:
        client.get_secret_value(SecretId=name)
    (record,) = dep.records(raised.value.response["ResponseMetadata"]["RequestId"])
    assert record["sourceIPAddress"] == "127.0.0.1"
