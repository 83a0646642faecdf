"""A manual change while a built-in rotator runs finishSecret is never overwritten by the
rotation: at each point of the step where the change can come (before the handler's
staging check, between that check and finishSecret's own read of the labels, between that
read and its UpdateSecretVersionStage), the manual value stays AWSCURRENT.

The server cannot refuse a late finishSecret of an abandoned rotation (its
UpdateSecretVersionStage carries no token: docs/architecture.md, "Rotation"; pinned in
tests/unit/test_rotation_abandon.py and tests/e2e/test_rotation_abandon.py). The built-ins
close the window themselves: finishSecret checks AWSPENDING in the same DescribeSecret
whose AWSCURRENT version it names in RemoveFromVersionId, which Secrets Manager compares.
The harness (the real handler under the runner, served in process) is
tests/unit/test_builtin_rotation_token.py's.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from strongroom.server.deployment import Deployment
from tests.unit.test_builtin_rotation_token import BUILTIN, BuiltinFunctions, builtin, functions
from tests.unit.test_rotation_abandon import _caused, abandoned, put
from tests.unit.test_rotation_runner import (
    clock,
    describe,
    new_secret,
    rotate,
    service_events,
    sweep,
    value,
    worker,
)

__all__ = ["_caused", "builtin", "clock", "functions", "worker"]  # fixtures, used by name


@pytest.mark.parametrize(
    "where,refused",
    [
        pytest.param(("finishSecret", "DescribeSecret", 1), "has no stage", id="check"),
        pytest.param(("finishSecret", "DescribeSecret", 2), "no longer AWSPENDING", id="read"),
        pytest.param(
            ("finishSecret", "UpdateSecretVersionStage", 1), "InvalidParameterException", id="move"
        ),
    ],
)
def test_a_manual_change_during_finish_secret_is_never_overwritten(
    worker: Deployment, builtin: BuiltinFunctions, where: tuple[str, str, int], refused: str
) -> None:
    arn = new_secret(worker, json.dumps({"password": "first"}))
    (old,) = describe(worker, arn)["VersionIdsToStages"]
    version = rotate(worker, arn, RotationLambdaARN=BUILTIN)["VersionId"]
    manual: dict[str, Any] = {}

    def change(_request: dict[str, Any]) -> None:
        manual.update(put(worker, arn, json.dumps({"password": "by hand"})))

    builtin.before[where] = change
    assert sweep(worker) == 1
    # The function failed its step: refused by its own check, or by Secrets Manager.
    if refused == "InvalidParameterException":
        assert builtin.errors == [refused]
        assert builtin.messages == []
    else:
        assert builtin.errors == []
        (message,) = builtin.messages
        assert refused in message
    # The manual value is current; the abandoned version lost AWSPENDING and has no label.
    assert describe(worker, arn)["VersionIdsToStages"] == {
        old: ["AWSPREVIOUS"],
        manual["VersionId"]: ["AWSCURRENT"],
    }
    assert json.loads(value(worker, arn)) == {"password": "by hand"}
    assert [e["eventName"] for e in service_events(worker)] == ["RotationStarted"]
    assert [e["serviceEventDetails"]["versionId"] for e in abandoned()] == [version]
