"""Details recorded against AWS (issue 17, item 6 and 12): what a client sees must be
what AWS answers, down to a label, a missing member, a status code and a message."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.aws import aws_error
from tests.server import ServerProcess


def stages(sm: Any, name: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    return {version: sorted(labels) for version, labels in found.items()}


def test_a_new_current_value_takes_awspending_off_the_version_it_replaces(
    sm: Any, name: str
) -> None:
    first = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    pending = sm.put_secret_value(SecretId=name, SecretString="two", VersionStages=["AWSPENDING"])[
        "VersionId"
    ]
    sm.update_secret_version_stage(
        SecretId=name,
        VersionStage="AWSCURRENT",
        MoveToVersionId=pending,
        RemoveFromVersionId=first,
    )
    assert stages(sm, name) == {
        first: ["AWSPREVIOUS"],
        pending: ["AWSCURRENT", "AWSPENDING"],
    }
    third = sm.put_secret_value(SecretId=name, SecretString="three")["VersionId"]
    # AWS: the version that carried AWSCURRENT and AWSPENDING keeps only AWSPREVIOUS.
    assert stages(sm, name) == {pending: ["AWSPREVIOUS"], third: ["AWSCURRENT"]}


def test_a_pending_version_that_was_not_current_keeps_its_label(sm: Any, name: str) -> None:
    first = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    pending = sm.put_secret_value(SecretId=name, SecretString="two", VersionStages=["AWSPENDING"])[
        "VersionId"
    ]
    third = sm.put_secret_value(SecretId=name, SecretString="three")["VersionId"]
    assert stages(sm, name) == {
        first: ["AWSPREVIOUS"],
        pending: ["AWSPENDING"],
        third: ["AWSCURRENT"],
    }


def test_an_empty_description_is_not_described(sm: Any, name: str) -> None:
    sm.create_secret(Name=name, SecretString="v", Description="")
    assert "Description" not in sm.describe_secret(SecretId=name)
    assert (
        "Description"
        not in sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"][0]
    )


@pytest.mark.parametrize("service", ["iam", "sts"])
def test_an_unsigned_query_request_is_403(server: ServerProcess, service: str) -> None:
    action = "ListUsers&Version=2010-05-08" if service == "iam" else "GetCallerIdentity"
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(
            "POST",
            "/",
            body=f"Action={action}".encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 403
    assert b"<Code>MissingAuthenticationToken</Code>" in body


def test_invalid_json_in_an_iam_policy_gets_awss_message(server: ServerProcess) -> None:
    iam = server.client("iam")
    name = f"bad-{uuid.uuid4().hex[:8]}"
    aws_error(
        iam.create_policy,
        PolicyName=name,
        PolicyDocument='{"Version": "2012-10-17", "Statement": [',
        code="MalformedPolicyDocument",
        message="This policy contains invalid Json",
    )
    listed = iam.list_policies(Scope="Local")["Policies"]
    assert name not in [policy["PolicyName"] for policy in listed]


@pytest.mark.parametrize(
    ("service", "call"),
    [("ssm", "describe_parameters"), ("config", "describe_config_rules")],
)
def test_an_unserved_service_is_named(server: ServerProcess, service: str, call: str) -> None:
    error = aws_error(getattr(server.client(service), call), code="UnknownOperationException")
    assert error["Message"].startswith(f"Strongroom does not serve the {service} service")
    assert "secretsmanager" in error["Message"]


def test_the_aws_cli_names_an_unserved_service(server: ServerProcess) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "AWS_ENDPOINT_URL": server.url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    result = subprocess.run(
        [str(Path(sys.executable).with_name("aws")), "cloudwatch", "list-metrics"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode != 0
    assert "UnknownOperationException" in result.stderr
    assert "Strongroom does not serve the monitoring service" in result.stderr
