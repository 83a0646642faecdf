"""docs/rotation.md runs as written: its function, role and commands, with the AWS CLI
against a --dev server, rotate a secret; the labels afterwards are AWS's."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.docs import code_blocks, doc_env, run_shell, shell_commands
from tests.server import ServerProcess

DOC = Path(__file__).resolve().parents[2] / "docs" / "rotation.md"


def wait_for(check: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    """Poll ``check`` until it answers something true (a rotation runs in the background)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_rotation_guide_runs_as_written(
    tmp_path: Path, new_server: Callable[..., ServerProcess]
) -> None:
    blocks = code_blocks(DOC.read_text())
    assert [language for language, _ in blocks] == ["python", "json", "json", "sh", "sh"]
    (tmp_path / "lambda_function.py").write_text(blocks[0][1])
    (tmp_path / "trust.json").write_text(blocks[1][1])
    (tmp_path / "policy.json").write_text(blocks[2][1])
    server = new_server("--dev")
    env = doc_env(server)
    env.update(
        AWS_ENDPOINT_URL=server.url,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
    )
    outputs = [run_shell(command, env, tmp_path) for command in shell_commands(blocks[3][1])]
    rotated = json.loads(outputs[-1])
    created = json.loads(outputs[-2])
    assert rotated["ARN"] == created["ARN"]
    first, new = created["VersionId"], rotated["VersionId"]

    sm = server.client()

    def done() -> dict[str, Any] | None:
        described: dict[str, Any] = sm.describe_secret(SecretId="MyApp/Rotated")
        return described if "LastRotatedDate" in described else None

    wait_for(done, "the rotation")
    described, listed = (
        json.loads(run_shell(command, env, tmp_path)) for command in shell_commands(blocks[4][1])
    )
    assert described["RotationEnabled"] is True
    assert described["RotationLambdaARN"].endswith(":function:MyRotationFunction")
    assert described["RotationRules"] == {
        "AutomaticallyAfterDays": 7,
        "ScheduleExpression": "cron(0 8 ? * MON *)",
        "Duration": "2h",
    }
    assert described["VersionIdsToStages"] == {first: ["AWSPREVIOUS"], new: ["AWSCURRENT"]}
    assert "NextRotationDate" in described and "LastRotatedDate" in described
    assert sorted((v["VersionId"], v["VersionStages"]) for v in listed["Versions"]) == sorted(
        [(first, ["AWSPREVIOUS"]), (new, ["AWSCURRENT"])]
    )
    value = json.loads(sm.get_secret_value(SecretId="MyApp/Rotated")["SecretString"])
    assert value["username"] == "app" and value["password"] != "initial"
    previous = sm.get_secret_value(SecretId="MyApp/Rotated", VersionStage="AWSPREVIOUS")
    assert json.loads(previous["SecretString"])["password"] == "initial"
