"""``strongroom rotation enable``: turn on a built-in rotator for a secret, through the API.

It does what a user would do with the AWS CLI, as any client (boto3 against the server,
signed with the caller's credentials from the environment): make sure the role the
built-ins run with exists (``service-role/StrongroomBuiltInRotation``, trusted by
``lambda.amazonaws.com``, allowed only what rotation needs) and call ``RotateSecret`` with
the built-in's ARN. Secrets Manager of the same account may invoke a built-in already (its
resource policy, which cannot be changed), so no ``AddPermission`` is needed.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import click
from rich.console import Console

from strongroom.rotators import BUILTIN_ROLE_NAME, BUILTINS, BY_ENGINE

DEFAULT_URL = "http://127.0.0.1:8420"
ROLE_PATH = "/service-role/"
ROTATION_POLICY = "SecretsManagerRotation"  # the role's inline policies
MASTER_POLICY = "MasterSecrets"

out = Console()

TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def builtin_function_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:lambda:{region}:{account}:function:{name}"


def rotation_policy(account: str, *, only_builtin_secrets: bool = True) -> dict[str, Any]:
    """What a built-in needs, as AWS's rotation templates' policy grants it: read, stage and
    put versions of the account's secrets, and draw passwords. With
    ``only_builtin_secrets``, only secrets whose rotation function is a Strongroom built-in
    (``secretsmanager:resource/AllowRotationLambdaArn``)."""
    statement: dict[str, Any] = {
        "Sid": "RotateSecretsOfBuiltIns",
        "Effect": "Allow",
        "Action": [
            "secretsmanager:DescribeSecret",
            "secretsmanager:GetSecretValue",
            "secretsmanager:PutSecretValue",
            "secretsmanager:UpdateSecretVersionStage",
        ],
        "Resource": f"arn:aws:secretsmanager:*:{account}:secret:*",
    }
    if only_builtin_secrets:
        statement["Condition"] = {
            "StringLike": {
                "secretsmanager:resource/AllowRotationLambdaArn": [
                    builtin_function_arn("*", account, name) for name in sorted(BUILTINS)
                ]
            }
        }
    return {
        "Version": "2012-10-17",
        "Statement": [
            statement,
            {
                "Sid": "DrawPasswords",
                "Effect": "Allow",
                "Action": "secretsmanager:GetRandomPassword",
                "Resource": "*",
            },
        ],
    }


def master_policy(master_arns: list[str]) -> dict[str, Any]:
    """Read the master secrets that alternating-users rotations name (``masterarn``)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadMasterSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": sorted(set(master_arns)),
            }
        ],
    }


_PERIOD = re.compile(r"^\s*(\d+)\s*([dh])\s*$")


def schedule(every: str) -> str:
    """``30d`` -> ``rate(30 days)``, ``4h`` -> ``rate(4 hours)``."""
    match = _PERIOD.match(every)
    if not match:
        raise click.BadParameter("a number of days or hours, e.g. 30d or 4h", param_hint="--every")
    count, unit = int(match.group(1)), match.group(2)
    word = {"d": "day", "h": "hour"}[unit] + ("s" if count != 1 else "")
    return f"rate({count} {word})"


def window(duration: str) -> str:
    """``4h`` -> ``4h`` (RotationRules' Duration)."""
    match = _PERIOD.match(duration)
    if not match or match.group(2) != "h":
        raise click.BadParameter("a number of hours, e.g. 4h", param_hint="--window")
    return f"{int(match.group(1))}h"


def _clients(url: str | None, region: str | None) -> tuple[Any, Any, Any, str]:
    try:
        import boto3
    except ImportError:
        raise click.ClickException(
            "boto3 is not installed: install strongroom[client] (make serve does)"
        ) from None
    endpoint = url or os.environ.get("AWS_ENDPOINT_URL") or DEFAULT_URL
    session = boto3.session.Session(region_name=region)
    region_name = session.region_name or "us-east-1"

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint, region_name=region_name)

    return client("secretsmanager"), client("iam"), client("sts"), region_name


def ensure_role(iam: Any, account: str) -> tuple[str, bool]:
    """The built-ins' role, created with its trust policy when missing; its rotation policy
    is (re)written each time, so it names every built-in this version ships."""
    created = False
    try:
        arn = str(iam.get_role(RoleName=BUILTIN_ROLE_NAME)["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        arn = str(
            iam.create_role(
                Path=ROLE_PATH,
                RoleName=BUILTIN_ROLE_NAME,
                AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
                Description="Runs Strongroom's built-in rotation functions",
            )["Role"]["Arn"]
        )
        created = True
    iam.put_role_policy(
        RoleName=BUILTIN_ROLE_NAME,
        PolicyName=ROTATION_POLICY,
        PolicyDocument=json.dumps(rotation_policy(account)),
    )
    return arn, created


def allow_master(iam: Any, master_arn: str) -> None:
    """Let the built-ins' role read ``master_arn`` (kept with the others it reads)."""
    try:
        document = iam.get_role_policy(RoleName=BUILTIN_ROLE_NAME, PolicyName=MASTER_POLICY)[
            "PolicyDocument"
        ]
        if isinstance(document, str):
            document = json.loads(document)
        resources = document["Statement"][0]["Resource"]
        arns = [resources] if isinstance(resources, str) else list(resources)
    except iam.exceptions.NoSuchEntityException:
        arns = []
    if master_arn in arns:
        return
    iam.put_role_policy(
        RoleName=BUILTIN_ROLE_NAME,
        PolicyName=MASTER_POLICY,
        PolicyDocument=json.dumps(master_policy([*arns, master_arn])),
    )


def _master_of(sm: Any, secret: str) -> str | None:
    """The ``masterarn`` the secret's JSON names, if any (the alternating-users built-ins
    need it, and so does Redis single user)."""
    text = sm.get_secret_value(SecretId=secret).get("SecretString")
    try:
        document = json.loads(text) if text else None
    except ValueError:
        raise click.ClickException("the secret's value is not JSON") from None
    master = document.get("masterarn") if isinstance(document, dict) else None
    return str(master) if master else None


@click.group()
def rotation() -> None:
    """Turn on automatic rotation with a built-in rotator (no code to upload)."""


@rotation.command(short_help="Rotate a secret on a schedule with a built-in rotator.")
@click.argument("secret")
@click.option("--postgresql", "engine", flag_value="postgresql", help="A PostgreSQL user.")
@click.option("--mysql", "engine", flag_value="mysql", help="A MySQL or MariaDB user.")
@click.option("--redis", "engine", flag_value="redis", help="A Redis ACL user.")
@click.option("--random", "engine", flag_value="random", help="A random value (API key, token).")
@click.option(
    "--alternating",
    is_flag=True,
    help="Alternate between the user and USER_clone (the secret names its masterarn).",
)
@click.option("--every", default="30d", show_default=True, help="How often: 30d, 4h, ...")
@click.option("--window", "window_", default=None, help="The rotation window, e.g. 4h.")
@click.option(
    "--no-rotate-now", is_flag=True, help="Wait for the schedule instead of rotating at once."
)
@click.option("--url", default=None, help="The server [default: AWS_ENDPOINT_URL, else :8420].")
@click.option("--region", default=None, help="The region [default: AWS_REGION, else us-east-1].")
@click.option("--json", "as_json", is_flag=True, help="Print RotateSecret's answer as JSON.")
def enable(
    secret: str,
    engine: str | None,
    alternating: bool,
    every: str,
    window_: str | None,
    no_rotate_now: bool,
    url: str | None,
    region: str | None,
    as_json: bool,
) -> None:
    """Rotate SECRET with a built-in rotator: creates the role the built-ins run with if it
    is missing and calls RotateSecret with the built-in's ARN.

    The secret holds AWS's database credentials JSON (engine, host, port, username,
    password, dbname, ssl; masterarn with --alternating). Uses the AWS credentials of the
    environment, like the AWS CLI.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    if engine is None:
        raise click.UsageError("choose one of --postgresql, --mysql, --redis or --random")
    strategy = "alternating-users" if alternating else "single-user"
    name = BY_ENGINE[engine].get(strategy)
    if name is None:
        raise click.UsageError(f"--{engine} has no --alternating strategy")
    rules: dict[str, Any] = {"ScheduleExpression": schedule(every)}
    if window_ is not None:
        rules["Duration"] = window(window_)
    sm, iam, sts, region_name = _clients(url, region)
    try:
        account = str(sts.get_caller_identity()["Account"])
        function_arn = builtin_function_arn(region_name, account, name)
        master_arn = _master_of(sm, secret) if engine != "random" else None
        if alternating and not master_arn:
            raise click.ClickException(
                "--alternating needs the secret's JSON to name its master secret (masterarn)"
            )
        role_arn, created = ensure_role(iam, account)
        if master_arn:
            allow_master(iam, master_arn)
        answer = sm.rotate_secret(
            SecretId=secret,
            RotationLambdaARN=function_arn,
            RotationRules=rules,
            RotateImmediately=not no_rotate_now,
        )
    except (ClientError, BotoCoreError) as problem:
        raise click.ClickException(str(problem)) from None
    answer.pop("ResponseMetadata", None)
    if as_json:
        click.echo(json.dumps({**answer, "RotationLambdaARN": function_arn, "Role": role_arn}))
        return
    if created:
        out.print(f"created the role [bold]{role_arn}[/]")
    out.print(
        f"[green]rotation on[/] for {answer.get('ARN', secret)}: [bold]{name}[/] "
        f"({rules['ScheduleExpression']}"
        + (f", window {rules['Duration']}" if "Duration" in rules else "")
        + ")"
    )


COMMANDS = (rotation,)
