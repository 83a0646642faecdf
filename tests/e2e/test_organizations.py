"""AWS Organizations end to end: a second account created with ``create-account`` and
reached with ``sts assume-role`` into its OrganizationAccountAccessRole, through boto3 and
through the AWS CLI exactly as docs/iam.md shows it. Each test starts its own server: an
account can create only one organization.

The AWS errors and texts checked here are listed, with where they are on record, in
tests/unit/test_organizations_service.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.aws import ACCOUNT, aws_error, create_account
from tests.server import ServerProcess

StartServer = Callable[..., ServerProcess]
ROOT = Path(__file__).resolve().parents[2]
IAM_DOC = ROOT / "docs" / "iam.md"
BIN = Path(sys.executable).parent
NO_PERMISSION = "You don't have permissions to access this resource."


def session_client(server: ServerProcess, service: str, credentials: dict[str, Any]) -> Any:
    return server.client(
        service,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def test_a_second_account_with_boto3(new_server: StartServer) -> None:
    server = new_server("--dev")
    orgs = server.client("organizations")
    aws_error(
        orgs.describe_organization,
        code="AWSOrganizationsNotInUseException",
        message="Your account is not a member of an organization.",
    )
    organization = orgs.create_organization(FeatureSet="ALL")["Organization"]
    assert organization["MasterAccountId"] == ACCOUNT
    status = create_account(orgs, Email="team-b@example.com", AccountName="team-b")
    assert status["State"] == "SUCCEEDED"
    account_id = status["AccountId"]
    assert re.fullmatch(r"[0-9]{12}", account_id) and account_id != ACCOUNT
    assert [a["Id"] for a in orgs.list_accounts()["Accounts"]] == [ACCOUNT, account_id]
    assert orgs.describe_account(AccountId=account_id)["Account"]["Name"] == "team-b"

    assumed = server.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
        RoleSessionName="setup",
    )
    credentials = assumed["Credentials"]
    identity = session_client(server, "sts", credentials).get_caller_identity()
    assert identity["Account"] == account_id
    assert identity["Arn"] == (
        f"arn:aws:sts::{account_id}:assumed-role/OrganizationAccountAccessRole/setup"
    )

    # The new account's administrator works in its own account only.
    member_sm = session_client(server, "secretsmanager", credentials)
    arn = member_sm.create_secret(Name="TeamB/DBCredentials", SecretString="v")["ARN"]
    assert arn.startswith(f"arn:aws:secretsmanager:us-east-1:{account_id}:secret:")
    assert server.client().list_secrets()["SecretList"] == []

    # Only the management account manages the organization.
    member_orgs = session_client(server, "organizations", credentials)
    assert member_orgs.describe_organization()["Organization"] == organization
    aws_error(member_orgs.list_accounts, code="AccessDeniedException", message=NO_PERMISSION)
    aws_error(
        member_orgs.create_account,
        Email="sneaky@example.com",
        AccountName="sneaky",
        code="AccessDeniedException",
        message=NO_PERMISSION,
    )
    aws_error(
        member_orgs.describe_account,
        AccountId=ACCOUNT,
        code="AccessDeniedException",
        message=NO_PERMISSION,
    )
    aws_error(
        member_orgs.create_organization,
        code="AlreadyInOrganizationException",
        message="The AWS account is already a member of an organization.",
    )
    assert len(orgs.list_accounts()["Accounts"]) == 2


def test_aws_principal_org_id_holds_from_the_moment_the_organization_exists(
    new_server: StartServer,
) -> None:
    server = new_server("--dev")
    arn = server.client().create_secret(Name="org-only", SecretString="in the org")["ARN"]
    iam = server.client("iam")
    iam.create_user(UserName="erin")
    in_any_org = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
                "Condition": {"StringLike": {"aws:PrincipalOrgID": "o-*"}},
            }
        ],
    }
    iam.put_user_policy(UserName="erin", PolicyName="org", PolicyDocument=json.dumps(in_any_org))
    key = iam.create_access_key(UserName="erin")["AccessKey"]
    erin = server.client(
        "secretsmanager",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )
    for _ in range(2):  # the second answer may come from the decision memo
        aws_error(erin.get_secret_value, SecretId=arn, code="AccessDeniedException")
    server.client("organizations").create_organization(FeatureSet="ALL")
    assert erin.get_secret_value(SecretId=arn)["SecretString"] == "in the org"


# docs/iam.md, run as written ---------------------------------------------------------------


def _section(title: str) -> str:
    text = IAM_DOC.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _blocks(section: str) -> list[tuple[str, str]]:
    return re.findall(r"```(\w*)\n(.*?)```", section, re.DOTALL)


def _environment(server: ServerProcess, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STRONGROOM_"))}
    credentials = tmp_path / "credentials"
    credentials.write_text("[default]\naws_access_key_id = test\naws_secret_access_key = test\n")
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        AWS_ENDPOINT_URL=server.url,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(tmp_path / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(credentials),
    )
    (tmp_path / "config").write_text("")
    return env


def _bash(script: str, env: dict[str, str], cwd: Path) -> str:
    result = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )
    assert result.returncode == 0, f"{script}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_the_second_account_section_of_the_iam_docs_runs_as_written(
    new_server: StartServer, tmp_path: Path
) -> None:
    blocks = _blocks(_section("A second account through Organizations"))
    assert [language for language, _ in blocks] == ["sh", "sh", "ini"]
    server = new_server("--dev")
    env = _environment(server, tmp_path)

    first = _bash(blocks[0][1], env, tmp_path)
    # The script's own outputs, in order: the organization, the account request, the
    # assumed role (list-accounts went into ACCOUNT).
    decoder = json.JSONDecoder()
    outputs, rest = [], first.strip()
    while rest:
        value, end = decoder.raw_decode(rest)
        outputs.append(value)
        rest = rest[end:].strip()
    organization, created, assumed = outputs
    assert organization["Organization"]["MasterAccountId"] == ACCOUNT
    assert created["CreateAccountStatus"]["State"] == "IN_PROGRESS"
    account_id = assumed["AssumedRoleUser"]["Arn"].split(":")[4]
    assert account_id != ACCOUNT
    assert assumed["AssumedRoleUser"]["Arn"] == (
        f"arn:aws:sts::{account_id}:assumed-role/OrganizationAccountAccessRole/setup"
    )

    second = _bash(f"ACCOUNT={account_id}\n" + blocks[1][1], env, tmp_path)
    decoder_outputs, rest = [], second.strip()
    while rest:
        value, end = decoder.raw_decode(rest)
        decoder_outputs.append(value)
        rest = rest[end:].strip()
    identity, new_user, secret = decoder_outputs
    assert identity["Account"] == account_id
    assert identity["Arn"] == assumed["AssumedRoleUser"]["Arn"]
    assert new_user["User"]["Arn"] == f"arn:aws:iam::{account_id}:user/team-b-app"
    assert secret["ARN"].startswith(f"arn:aws:secretsmanager:us-east-1:{account_id}:secret:")

    # The profile: the AWS CLI assumes the role itself.
    profile = blocks[2][1].replace("<ACCOUNT>", account_id)
    Path(env["AWS_CONFIG_FILE"]).write_text(profile)
    through_profile = json.loads(
        _bash("aws --profile team-b sts get-caller-identity", env, tmp_path)
    )
    assert through_profile["Account"] == account_id
    assert through_profile["Arn"].startswith(
        f"arn:aws:sts::{account_id}:assumed-role/OrganizationAccountAccessRole/"
    )
