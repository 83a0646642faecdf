"""The function service as other services see it (types.Functions: may_invoke, invoke)
and its built-in functions, over a deployment in this process."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from strongroom.clock import ManualClock
from strongroom.rotators import BUILTINS, BuiltinFunction
from strongroom.server.deployment import DEV_ACCOUNT, Deployment
from strongroom.types import Functions
from tests.aws import aws_error
from tests.inprocess import client, signing_at

BUILTIN = "strongroom-test-echo"
SECRETS_MANAGER = "secretsmanager.amazonaws.com"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
SECRET = f"arn:aws:secretsmanager:us-east-1:{DEV_ACCOUNT}:secret:app-AbCdEf"


def zipped(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", source)
    return buffer.getvalue()


@pytest.fixture
def builtin(deployment: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A tiny built-in, registered as the rotators package registers its functions, with
    its code in a directory of its own."""
    code = tmp_path / "builtin-code"
    code.mkdir()
    (code / "echo.py").write_text(
        "def handler(event, context):\n"
        "    return {'builtin': event, 'name': context.function_name}\n"
    )
    monkeypatch.setitem(BUILTINS, BUILTIN, BuiltinFunction(BUILTIN, "echo.handler", "Echo."))
    assert deployment.functions is not None
    monkeypatch.setattr(deployment.functions, "_builtin_code", code)
    return BUILTIN


@pytest.fixture
def lam(deployment: Deployment, clock: ManualClock) -> Any:
    with signing_at(clock):
        yield client(deployment, "lambda")


@pytest.fixture
def iam(deployment: Deployment, clock: ManualClock) -> Any:
    with signing_at(clock):
        yield client(deployment, "iam")


def functions(deployment: Deployment) -> Functions:
    assert deployment.functions is not None
    return deployment.functions


def test_builtins_exist_in_every_account_and_cannot_change(lam: Any, builtin: str) -> None:
    arn = f"arn:aws:lambda:us-east-1:{DEV_ACCOUNT}:function:{builtin}"
    assert builtin in [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    configuration = lam.get_function(FunctionName=builtin)["Configuration"]
    assert configuration["FunctionArn"] == arn
    assert configuration["Role"] == (
        f"arn:aws:iam::{DEV_ACCOUNT}:role/service-role/StrongroomBuiltInRotation"
    )
    assert configuration["Handler"] == "echo.handler"
    policy = json.loads(lam.get_policy(FunctionName=builtin)["Policy"])
    assert policy["Statement"][0]["Principal"] == {"Service": SECRETS_MANAGER}
    for call, extra in (
        (lam.delete_function, {}),
        (lam.update_function_configuration, {"Timeout": 5}),
        (lam.update_function_code, {"ZipFile": zipped("x = 1")}),
        (
            lam.add_permission,
            {"StatementId": "s", "Action": "lambda:InvokeFunction", "Principal": "*"},
        ),
    ):
        aws_error(call, FunctionName=builtin, code="AccessDeniedException", status=403, **extra)
    assert lam.get_function(FunctionName=builtin)["Configuration"] == configuration


def test_secrets_manager_may_invoke_a_builtin_of_its_own_account(
    deployment: Deployment, builtin: str, iam: Any
) -> None:
    service = functions(deployment)
    arn = f"arn:aws:lambda:us-east-1:{DEV_ACCOUNT}:function:{builtin}"
    assert service.may_invoke(
        arn, service_principal=SECRETS_MANAGER, source_account=DEV_ACCOUNT, source_arn=SECRET
    )
    assert not service.may_invoke(
        arn, service_principal=SECRETS_MANAGER, source_account="111122223333", source_arn=SECRET
    )
    assert not service.may_invoke(
        arn, service_principal="events.amazonaws.com", source_account=DEV_ACCOUNT, source_arn=SECRET
    )
    iam.create_role(
        RoleName="StrongroomBuiltInRotation", Path="/service-role/", AssumeRolePolicyDocument=TRUST
    )
    invocation = asyncio.run(
        service.invoke(
            arn,
            b'{"Step": "createSecret"}',
            service_principal=SECRETS_MANAGER,
            source_account=DEV_ACCOUNT,
            source_arn=SECRET,
        )
    )
    assert invocation.function_error is None
    assert json.loads(invocation.payload) == {"builtin": {"Step": "createSecret"}, "name": builtin}
    assert "START RequestId:" in invocation.log_tail


def test_an_uploaded_function_needs_a_permission(
    deployment: Deployment, lam: Any, iam: Any
) -> None:
    service = functions(deployment)
    role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    arn = lam.create_function(
        FunctionName="rotator",
        Runtime="python3.12",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": zipped("def handler(event, context):\n    raise KeyError('x')\n")},
    )["FunctionArn"]
    asks = {
        "service_principal": SECRETS_MANAGER,
        "source_account": DEV_ACCOUNT,
        "source_arn": SECRET,
    }
    assert not service.may_invoke(arn, **asks)
    assert not service.may_invoke(arn.replace("rotator", "missing"), **asks)
    lam.add_permission(
        FunctionName="rotator",
        StatementId="sm",
        Action="lambda:InvokeFunction",
        Principal=SECRETS_MANAGER,
        SourceArn=SECRET,
    )
    assert service.may_invoke(arn, **asks)
    assert not service.may_invoke(arn, **{**asks, "source_arn": SECRET.replace("app", "other")})
    invocation = asyncio.run(service.invoke(arn, b"{}", **asks))
    assert invocation.function_error == "Unhandled"
    assert json.loads(invocation.payload)["errorType"] == "KeyError"
