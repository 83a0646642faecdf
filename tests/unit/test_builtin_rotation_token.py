"""The built-in rotators under the rotation runner: the real handler code of
``strongroom-random-value`` (no external system), invoked by a deployment's runner, calling
Secrets Manager with boto3 through the deployment's own pipeline (tests/inprocess.py), time
moved by a ManualClock. Between any two of the function's requests the test can act (a
manual change, a cancellation) exactly where a race would put it.

What is checked: the built-in's createSecret PutSecretValue carries the step's
RotationToken, so the service takes it as the rotation's own and refuses it once the
rotation it was invoked for no longer holds.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from strongroom.clock import ManualClock
from strongroom.rotators import random_rotation
from strongroom.rotators import rotation_steps as steps
from strongroom.secrets.rotation import SecretRotation
from strongroom.server.deployment import DEV_ACCOUNT, Deployment
from strongroom.types import Invocation
from tests.inprocess import client, signing_at
from tests.unit.test_rotation_runner import (
    SM,
    clock,
    describe,
    new_secret,
    rotate,
    service_events,
    sweep,
    worker,
)

__all__ = ["clock", "worker"]  # fixtures, used by name

BUILTIN = f"arn:aws:lambda:us-east-1:{DEV_ACCOUNT}:function:strongroom-random-value"
Hook = Callable[[dict[str, Any]], None]


@dataclass
class BuiltinFunctions:
    """Invokes the built-in random-value rotator's handler as the function runtime would,
    its Secrets Manager client served by the deployment in this process. ``before`` maps
    (step, operation name, n) to what the test does just before the function sends its
    n-th request of that operation in that step (handed the serialized request)."""

    clock: ManualClock
    secrets: Any = None
    deployment: Deployment | None = None
    before: dict[tuple[str, str, int], Hook] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # the error codes the function got
    messages: list[str] = field(default_factory=list)  # the RotationErrors the function raised

    def may_invoke(self, function_arn: str, **_context: str) -> bool:
        return function_arn == BUILTIN

    async def invoke(self, function_arn: str, payload: bytes, **_context: str) -> Invocation:
        event = json.loads(payload)
        try:
            await asyncio.to_thread(self._run, event)
        except ClientError as refused:
            self.errors.append(refused.response["Error"]["Code"])
            return Invocation(200, b'{"errorType": "ClientError"}', "Unhandled")
        except steps.RotationError as problem:
            self.messages.append(str(problem))
            return Invocation(200, b'{"errorType": "RotationError"}', "Unhandled")
        return Invocation(200, b"null")

    def _run(self, event: dict[str, Any]) -> None:
        assert self.deployment is not None
        made = client(self.deployment, "secretsmanager")
        sent: dict[str, int] = {}

        def before(model: Any, params: dict[str, Any], **_kwargs: Any) -> None:
            sent[model.name] = sent.get(model.name, 0) + 1
            hook = self.before.pop((event["Step"], model.name, sent[model.name]), None)
            if hook is not None:
                hook(params)

        made.meta.events.register("before-call.secrets-manager.*", before)
        with signing_at(self.clock), pytest.MonkeyPatch.context() as patch:
            patch.setattr(steps, "secretsmanager", lambda: made)
            random_rotation.rotate(event, None)


@pytest.fixture
def functions(clock: ManualClock) -> BuiltinFunctions:
    return BuiltinFunctions(clock)


@pytest.fixture
def builtin(worker: Deployment, functions: BuiltinFunctions) -> Iterator[BuiltinFunctions]:
    functions.deployment = worker
    yield functions


def test_the_builtins_put_secret_value_is_the_rotations_own(
    worker: Deployment, builtin: BuiltinFunctions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service took createSecret's PutSecretValue as the rotation's own: its
    RotationToken was the one the step was handed (a missing one would read as not the
    rotation's, a wrong one would be refused)."""
    owned: list[bool] = []
    checked = SecretRotation._by_rotation

    def spy(self: SecretRotation, conn: Any, record: Any, token: str | None) -> bool:
        result = checked(self, conn, record, token)
        owned.append(result)
        return result

    monkeypatch.setattr(SecretRotation, "_by_rotation", spy)
    arn = new_secret(worker, json.dumps({"password": "first"}))
    (old,) = describe(worker, arn)["VersionIdsToStages"]
    version = rotate(worker, arn, RotationLambdaARN=BUILTIN)["VersionId"]
    assert sweep(worker) == 1
    assert owned == [True]
    assert builtin.errors == []
    assert describe(worker, arn)["VersionIdsToStages"] == {
        old: ["AWSPREVIOUS"],
        version: ["AWSCURRENT"],
    }
    assert [e["eventName"] for e in service_events(worker)] == [
        "RotationStarted",
        "RotationSucceeded",
    ]


def test_the_builtin_cannot_fill_the_version_of_a_rotation_that_ended(
    worker: Deployment, builtin: BuiltinFunctions
) -> None:
    """The rotation is cancelled while its createSecret runs, just before the function's
    PutSecretValue: carrying the token of a claim that no longer holds, the PutSecretValue
    is refused with AccessDeniedException and the version stays without a value."""
    arn = new_secret(worker, json.dumps({"password": "first"}))
    version = rotate(worker, arn, RotationLambdaARN=BUILTIN)["VersionId"]
    seen: dict[str, Any] = {}

    def cancel(request: dict[str, Any]) -> None:
        assert "RotationToken" in json.loads(request["body"])  # as the function sends it
        worker.secrets.cancel_rotate_secret(SM, {"SecretId": arn})
        seen["before"] = describe(worker, arn)

    builtin.before["createSecret", "PutSecretValue", 1] = cancel
    assert sweep(worker) == 1
    assert builtin.errors == ["AccessDeniedException"]
    after = describe(worker, arn)
    assert after == seen["before"]
    assert after["VersionIdsToStages"][version] == ["AWSPENDING"]
    assert after["RotationEnabled"] is False
    with pytest.raises(Exception) as missing:
        worker.secrets.get_secret_value(SM, {"SecretId": arn, "VersionId": version})
    assert getattr(missing.value, "code", None) == "ResourceNotFoundException"
    assert json.loads(worker.secrets.get_secret_value(SM, {"SecretId": arn})["SecretString"]) == {
        "password": "first"
    }


def test_for_rotation_adds_the_token_to_the_rotated_secrets_put_secret_value_only() -> None:
    """What the client sends (botocore's Stubber checks the parameters after every hook):
    the rotated secret's PutSecretValue carries the token, another secret's does not, and
    an event without a token (an older caller) leaves the client as it was."""
    arn, other = "arn:aws:secretsmanager:us-east-1:000000000000:secret:a-AbCdEf", "b"
    token, version = str(uuid.uuid4()), str(uuid.uuid4())
    plain = boto3.client("secretsmanager", region_name="us-east-1")
    assert steps.for_rotation(plain, arn, None) is plain
    made = steps.for_rotation(boto3.client("secretsmanager", region_name="us-east-1"), arn, token)
    put = {"ClientRequestToken": version, "SecretString": "x"}
    with Stubber(made) as stub, Stubber(plain) as plain_stub:
        stub.add_response("put_secret_value", {}, {"SecretId": arn, **put, "RotationToken": token})
        stub.add_response("put_secret_value", {}, {"SecretId": other, **put})
        plain_stub.add_response("put_secret_value", {}, {"SecretId": arn, **put})
        made.put_secret_value(SecretId=arn, **put)
        made.put_secret_value(SecretId=other, **put)
        plain.put_secret_value(SecretId=arn, **put)
        stub.assert_no_pending_responses()
        plain_stub.assert_no_pending_responses()
