"""Rotation at domain level, time moved by a ManualClock: RotateSecret's placeholder
version, the four steps in order, labels after each, retries, abandoned claims, exactly one
start across two workers, and schedules driven over months without sleeping.

The function here is an in-test ``Functions`` (pure logic standing in for the function
service: it does what AWS's rotation template does, through the Secrets Manager service);
the end-to-end tests (tests/e2e/test_rotation.py) run a real Lambda-format function.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from strongroom.audit.lookup import iter_events
from strongroom.clock import ManualClock, to_ms
from strongroom.iam.credentials import admin_arn
from strongroom.protocol.errors import ServiceError
from strongroom.secrets.rotation import RETRY_DELAYS, STEP_LEASE, STEPS
from strongroom.server.deployment import DEV_ACCOUNT, Deployment, initialize, open_deployment
from strongroom.types import Caller, Invocation

REGION = "us-east-1"
SM = Caller(DEV_ACCOUNT, REGION, admin_arn(DEV_ACCOUNT))
FUNCTION = f"arn:aws:lambda:{REGION}:{DEV_ACCOUNT}:function:rotate"
OTHER_FUNCTION = f"arn:aws:lambda:{REGION}:{DEV_ACCOUNT}:function:not-allowed"
START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday


@dataclass
class TemplateFunctions:
    """Invokes "functions" that behave as AWS's rotation template does; ``fail_in`` makes
    a step fail (as a function that raises)."""

    secrets: Any = None
    allowed: set[str] = field(default_factory=lambda: {FUNCTION})
    fail_in: str | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    stages_seen: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)

    def may_invoke(
        self, function_arn: str, *, service_principal: str, source_account: str, source_arn: str
    ) -> bool:
        assert service_principal == "secretsmanager.amazonaws.com"
        return function_arn in self.allowed

    async def invoke(self, function_arn: str, payload: bytes, **_context: str) -> Invocation:
        event = json.loads(payload)
        self.calls.append(event)
        if event["Step"] == self.fail_in:
            return Invocation(200, b'{"errorType": "ValueError", "errorMessage": "x"}', "Unhandled")
        await asyncio.to_thread(self._step, event)
        return Invocation(200, b"null")

    def _step(self, event: dict[str, Any]) -> None:
        arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
        described = self.secrets.describe_secret(SM, {"SecretId": arn})
        stages = described["VersionIdsToStages"]
        assert described["RotationEnabled"] is True
        assert "AWSPENDING" in stages[token] or "AWSCURRENT" in stages[token]
        if step == "createSecret":
            try:
                self.secrets.get_secret_value(
                    SM, {"SecretId": arn, "VersionId": token, "VersionStage": "AWSPENDING"}
                )
            except ServiceError as missing:
                assert missing.code == "ResourceNotFoundException"
                self.secrets.put_secret_value(
                    SM,
                    {
                        "SecretId": arn,
                        "ClientRequestToken": token,
                        "SecretString": f"rotated-{token}",
                        "VersionStages": ["AWSPENDING"],
                    },
                )
        if step == "finishSecret":
            current = next(v for v, labels in stages.items() if "AWSCURRENT" in labels)
            if current != token:
                self.secrets.update_secret_version_stage(
                    SM,
                    {
                        "SecretId": arn,
                        "VersionStage": "AWSCURRENT",
                        "MoveToVersionId": token,
                        "RemoveFromVersionId": current,
                    },
                )
        after = self.secrets.describe_secret(SM, {"SecretId": arn})["VersionIdsToStages"]
        self.stages_seen.append((step, after))


@pytest.fixture
def functions() -> TemplateFunctions:
    return TemplateFunctions()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def open_worker(data_dir: Path, clock: ManualClock, functions: TemplateFunctions) -> Deployment:
    opened = open_deployment(data_dir, clock=clock, functions=functions)
    functions.secrets = opened.secrets
    return opened


@pytest.fixture
def worker(
    tmp_path: Path, clock: ManualClock, functions: TemplateFunctions
) -> Iterator[Deployment]:
    data_dir = tmp_path / "data"
    initialize(data_dir, dev=True, clock=clock)
    opened = open_worker(data_dir, clock, functions)
    yield opened
    opened.close()


def sweep(deployment: Deployment) -> int:
    return asyncio.run(deployment.rotations.sweep())


def new_secret(deployment: Deployment, value: str = "first") -> str:
    arn: str = deployment.secrets.create_secret(
        SM,
        {
            "Name": f"rot/{uuid.uuid4().hex[:8]}",
            "SecretString": value,
            "ClientRequestToken": str(uuid.uuid4()),
        },
    )["ARN"]
    return arn


def rotate(deployment: Deployment, arn: str, **params: Any) -> dict[str, Any]:
    request = {"SecretId": arn, "ClientRequestToken": str(uuid.uuid4()), **params}
    result: dict[str, Any] = deployment.secrets.rotate_secret(SM, request)
    return result


def describe(deployment: Deployment, arn: str) -> dict[str, Any]:
    result: dict[str, Any] = deployment.secrets.describe_secret(SM, {"SecretId": arn})
    return result


def value(deployment: Deployment, arn: str, **params: Any) -> str:
    found = deployment.secrets.get_secret_value(SM, {"SecretId": arn, **params})
    return str(found["SecretString"])


def service_events(deployment: Deployment, name: str | None = None) -> list[dict[str, Any]]:
    return [
        event
        for event in iter_events(deployment.data_dir / "audit")
        if event.get("eventType") == "AwsServiceEvent"
        and str(event.get("eventName", "")).startswith("Rotation")
        and (name is None or event["eventName"] == name)
    ]


def error_code(call: Any, *args: Any) -> str:
    with pytest.raises(ServiceError) as raised:
        call(*args)
    return raised.value.code


# --- one rotation, step by step --------------------------------------------------------------


def test_rotate_immediately_runs_the_four_steps_with_aws_labels(
    worker: Deployment, functions: TemplateFunctions
) -> None:
    arn = new_secret(worker)
    first = describe(worker, arn)
    old = next(iter(first["VersionIdsToStages"]))
    token = rotate(worker, arn, RotationLambdaARN=FUNCTION)["VersionId"]
    # Before any step: the version exists, labelled AWSPENDING, without a value.
    stages = describe(worker, arn)["VersionIdsToStages"]
    assert stages == {old: ["AWSCURRENT"], token: ["AWSPENDING"]}
    with pytest.raises(ServiceError) as missing:
        value(worker, arn, VersionId=token, VersionStage="AWSPENDING")
    assert missing.value.code == "ResourceNotFoundException"
    assert missing.value.message == (
        f"Secrets Manager can't find the specified secret value for VersionId: {token}"
    )
    assert value(worker, arn) == "first"

    assert sweep(worker) == 1
    assert [c["Step"] for c in functions.calls] == list(STEPS)
    assert all(c["SecretId"] == arn and c["ClientRequestToken"] == token for c in functions.calls)
    assert functions.stages_seen == [
        ("createSecret", {old: ["AWSCURRENT"], token: ["AWSPENDING"]}),
        ("setSecret", {old: ["AWSCURRENT"], token: ["AWSPENDING"]}),
        ("testSecret", {old: ["AWSCURRENT"], token: ["AWSPENDING"]}),
        ("finishSecret", {old: ["AWSPREVIOUS"], token: ["AWSCURRENT", "AWSPENDING"]}),
    ]
    after = describe(worker, arn)
    # The service takes AWSPENDING off the finished version.
    assert after["VersionIdsToStages"] == {old: ["AWSPREVIOUS"], token: ["AWSCURRENT"]}
    assert value(worker, arn) == f"rotated-{token}"
    assert after["RotationEnabled"] is True
    assert after["RotationLambdaARN"] == FUNCTION
    assert after["LastRotatedDate"] == START
    assert "NextRotationDate" not in after or after["NextRotationDate"] is None
    names = [e["eventName"] for e in service_events(worker)]
    assert names == ["RotationStarted", "RotationSucceeded"]
    assert all(e["resources"][0]["ARN"] == arn for e in service_events(worker))
    assert sweep(worker) == 0  # nothing more is due: no schedule


@pytest.mark.parametrize("passes", [True, False])
def test_rotate_immediately_false_tests_then_schedules(
    worker: Deployment, functions: TemplateFunctions, passes: bool
) -> None:
    """AWS: "Secrets Manager tests the rotation configuration by running the testSecret step
    of the Lambda rotation function. The test creates an AWSPENDING version of the secret
    and then removes it." The schedule goes on either way."""
    arn = new_secret(worker)
    before = describe(worker, arn)["VersionIdsToStages"]
    (old,) = before
    functions.fail_in = None if passes else "testSecret"
    answer = rotate(
        worker,
        arn,
        RotationLambdaARN=FUNCTION,
        RotateImmediately=False,
        RotationRules={"AutomaticallyAfterDays": 7, "Duration": "3h"},
    )
    assert answer.get("VersionId") is None
    during = describe(worker, arn)["VersionIdsToStages"]
    (test,) = set(during) - {old}
    assert during == {old: ["AWSCURRENT"], test: ["AWSPENDING"]}
    assert value(worker, arn, VersionId=test) == "first"  # a copy of the current value
    assert sweep(worker) == 1
    assert [(c["Step"], c["ClientRequestToken"]) for c in functions.calls] == [("testSecret", test)]
    after = describe(worker, arn)
    assert after["VersionIdsToStages"] == before  # the test version is gone
    assert after["RotationEnabled"] is True
    assert after["RotationRules"] == {"AutomaticallyAfterDays": 7, "Duration": "3h"}
    # Seven days after the value was last set (at START), a window of 3 hours from midnight.
    assert after["NextRotationDate"] == START + timedelta(days=7, hours=3) - timedelta(seconds=1)
    outcome = "TestRotationSucceeded" if passes else "TestRotationFailed"
    names = [
        e["eventName"]
        for e in iter_events(worker.data_dir / "audit")
        if e.get("eventType") == "AwsServiceEvent"
    ]
    assert names == ["TestRotationStarted", outcome]
    assert sweep(worker) == 0


def test_a_failed_step_keeps_awscurrent_and_is_retried(
    worker: Deployment, functions: TemplateFunctions, clock: ManualClock
) -> None:
    arn = new_secret(worker)
    old = next(iter(describe(worker, arn)["VersionIdsToStages"]))
    functions.fail_in = "setSecret"
    token = rotate(worker, arn, RotationLambdaARN=FUNCTION)["VersionId"]
    assert sweep(worker) == 1
    assert [c["Step"] for c in functions.calls] == ["createSecret", "setSecret"]
    assert value(worker, arn) == "first"  # AWSCURRENT keeps working
    stages = describe(worker, arn)["VersionIdsToStages"]
    assert stages == {old: ["AWSCURRENT"], token: ["AWSPENDING"]}  # visible: still pending
    failed = service_events(worker, "RotationFailed")
    assert len(failed) == 1
    assert failed[0]["serviceEventDetails"]["step"] == "setSecret"
    assert "ValueError" in failed[0]["serviceEventDetails"]["reason"]
    # A new RotateSecret is refused while that rotation is unfinished.
    assert error_code(rotate, worker, arn) == "InvalidRequestException"
    # Not before its retry delay...
    assert sweep(worker) == 0
    functions.fail_in = None
    clock.advance(RETRY_DELAYS[0])
    assert sweep(worker) == 1  # ...then the same rotation, same version, is reattempted
    assert [c["ClientRequestToken"] for c in functions.calls] == [token] * 6
    assert describe(worker, arn)["VersionIdsToStages"] == {
        old: ["AWSPREVIOUS"],
        token: ["AWSCURRENT"],
    }
    names = [e["eventName"] for e in service_events(worker)]
    assert names == ["RotationStarted", "RotationFailed", "RotationStarted", "RotationSucceeded"]


def test_a_claim_whose_worker_died_is_abandoned_then_restarted(
    worker: Deployment, clock: ManualClock, functions: TemplateFunctions
) -> None:
    arn = new_secret(worker)
    token = rotate(worker, arn, RotationLambdaARN=FUNCTION)["VersionId"]
    # A worker claims it and dies before running a step.
    claims = worker.rotations.audited(worker.secrets.claim_rotations)
    assert [c.token for c in claims] == [token]
    assert sweep(worker) == 0  # claimed: nobody else starts it
    clock.advance(STEP_LEASE)
    assert sweep(worker) == 0  # the lease ran out: abandoned, tried again after a delay
    assert [e["eventName"] for e in service_events(worker)] == [
        "RotationStarted",
        "RotationAbandoned",
    ]
    clock.advance(RETRY_DELAYS[1])
    assert sweep(worker) == 1
    assert describe(worker, arn)["VersionIdsToStages"][token] == ["AWSCURRENT"]
    # The dead worker's claim is no longer good for anything.
    assert worker.secrets.rotation_step(claims[0], "setSecret") is False


def test_cancel_rotate_secret_keeps_the_configuration_and_the_pending_version(
    worker: Deployment,
) -> None:
    arn = new_secret(worker)
    token = rotate(
        worker, arn, RotationLambdaARN=FUNCTION, RotationRules={"AutomaticallyAfterDays": 30}
    )["VersionId"]
    answer = worker.secrets.cancel_rotate_secret(SM, {"SecretId": arn})
    assert answer["VersionId"] == token
    after = describe(worker, arn)
    assert after["RotationEnabled"] is False
    assert after["RotationLambdaARN"] == FUNCTION
    assert after["RotationRules"] == {"AutomaticallyAfterDays": 30}
    assert after.get("NextRotationDate") is None
    assert "AWSPENDING" in after["VersionIdsToStages"][token]
    assert sweep(worker) == 0


def test_cancel_during_the_configuration_test_removes_the_test_version(
    worker: Deployment,
) -> None:
    arn = new_secret(worker)
    before = describe(worker, arn)["VersionIdsToStages"]
    rotate(worker, arn, RotationLambdaARN=FUNCTION, RotateImmediately=False)
    assert len(describe(worker, arn)["VersionIdsToStages"]) == 2
    assert worker.secrets.cancel_rotate_secret(SM, {"SecretId": arn}).get("VersionId") is None
    assert describe(worker, arn)["VersionIdsToStages"] == before
    assert sweep(worker) == 0


# --- errors: AWS's codes, and nothing changed ------------------------------------------------


def test_rotate_secret_errors_change_nothing(worker: Deployment) -> None:
    arn = new_secret(worker)
    before = describe(worker, arn)

    def refused(code: str, message: str | None, **params: Any) -> None:
        with pytest.raises(ServiceError) as raised:
            worker.secrets.rotate_secret(SM, {"SecretId": arn, **params})
        assert raised.value.code == code, raised.value
        if message is not None:
            assert raised.value.message == message
        assert describe(worker, arn) == before

    token = str(uuid.uuid4())
    refused(
        "InvalidParameterException",
        "You must provide a ClientRequestToken value. We recommend a UUID-type value.",
        RotationLambdaARN=FUNCTION,
    )
    refused(
        "InvalidRequestException",
        "No Lambda rotation function ARN is associated with this secret.",
        ClientRequestToken=token,
    )
    refused(
        "AccessDeniedException",
        "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function "
        "policy grants access to the principal secretsmanager.amazonaws.com.",
        ClientRequestToken=token,
        RotationLambdaARN=OTHER_FUNCTION,
    )
    refused(
        "InvalidParameterException",
        "You cannot specify both rotation frequency and schedule expression together.",
        ClientRequestToken=token,
        RotationLambdaARN=FUNCTION,
        RotationRules={"AutomaticallyAfterDays": 2, "ScheduleExpression": "rate(4 hours)"},
    )
    for rules in (
        {"ScheduleExpression": "rate(2 hours)"},
        {"ScheduleExpression": "cron(30 8 * * ? *)"},
        {"ScheduleExpression": "cron(0 8 * * * *)"},
        {"ScheduleExpression": "cron(0 8 * * ? 2027)"},
        {"ScheduleExpression": "rate(4 hours)", "Duration": "5h"},
        {"ScheduleExpression": "cron(0 22 * * ? *)", "Duration": "3h"},
        {"AutomaticallyAfterDays": 3, "Duration": "25h"},
        {"AutomaticallyAfterDays": 3, "Duration": "0h"},
    ):
        refused(
            "InvalidParameterException",
            None,
            ClientRequestToken=token,
            RotationLambdaARN=FUNCTION,
            RotationRules=rules,
        )


# --- exactly once across workers -------------------------------------------------------------


def test_two_workers_start_a_due_rotation_once(
    tmp_path: Path, clock: ManualClock, functions: TemplateFunctions
) -> None:
    data_dir = tmp_path / "data"
    initialize(data_dir, dev=True, clock=clock)
    first = open_worker(data_dir, clock, functions)
    second = open_worker(data_dir, clock, functions)
    try:
        arns = [new_secret(first) for _ in range(6)]
        for arn in arns:
            rotate(first, arn, RotationLambdaARN=FUNCTION)
        started: list[int] = []
        gate = threading.Barrier(2)

        def run(worker: Deployment) -> None:
            gate.wait()
            started.append(sweep(worker))

        threads = [threading.Thread(target=run, args=(w,)) for w in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(started) == 6
        events = service_events(first)
        assert (
            sorted(e["eventName"] for e in events)
            == ["RotationStarted"] * 6 + ["RotationSucceeded"] * 6
        )
        assert sorted(e["resources"][0]["ARN"] for e in events[:0]) == []
        for arn in arns:
            assert [e["resources"][0]["ARN"] for e in events].count(arn) == 2
            assert len(describe(first, arn)["VersionIdsToStages"]) == 2
    finally:
        second.close()
        first.close()


# --- schedules over months, on the clock -----------------------------------------------------


def run_for(worker: Deployment, clock: ManualClock, until: datetime, step: timedelta) -> None:
    """Sweep at every ``step`` up to ``until``: the clock moves, nothing sleeps."""
    while clock.now() < until:
        clock.advance(min(step, until - clock.now()))
        sweep(worker)


def rotation_times(worker: Deployment, arn: str) -> list[datetime]:
    return [
        datetime.fromisoformat(e["eventTime"].replace("Z", "+00:00"))
        for e in service_events(worker, "RotationStarted")
        if e["resources"][0]["ARN"] == arn
    ]


@pytest.mark.parametrize(
    ("rules", "windows"),
    [
        # rate(4 hours): windows of an hour at 00, 04, ... 20 each day (the one open when
        # the schedule is set counts).
        (
            {"ScheduleExpression": "rate(4 hours)"},
            [(START + timedelta(hours=4 * i), timedelta(hours=1)) for i in range(0, 12)],
        ),
        # Mondays at 08:00 until the end of the UTC day.
        (
            {"ScheduleExpression": "cron(0 8 ? * MON *)"},
            [(START + timedelta(days=7 * i, hours=8), timedelta(hours=16)) for i in range(0, 9)],
        ),
        # Every 10 days from the last rotation, in a 3-hour window from midnight.
        (
            {"AutomaticallyAfterDays": 10, "Duration": "3h"},
            [(START + timedelta(days=10 * i), timedelta(hours=3)) for i in range(1, 7)],
        ),
    ],
)
def test_schedules_fire_inside_their_windows_once_each(
    worker: Deployment,
    clock: ManualClock,
    rules: dict[str, Any],
    windows: list[tuple[datetime, timedelta]],
) -> None:
    arn = new_secret(worker)
    rotate(worker, arn, RotationLambdaARN=FUNCTION, RotationRules=rules, RotateImmediately=False)
    for number, (opens, span) in enumerate(windows):
        # Nothing before the window opens...
        run_for(worker, clock, opens - timedelta(minutes=1), timedelta(hours=2))
        assert len(rotation_times(worker, arn)) == number, (opens, rotation_times(worker, arn))
        # ...then once inside it (sweeping every 5 minutes, as a worker sweeps every few
        # seconds).
        clock.advance(opens - clock.now())
        while len(rotation_times(worker, arn)) == number and clock.now() < opens + span:
            sweep(worker)
            clock.advance(timedelta(minutes=5))
        started = rotation_times(worker, arn)
        assert len(started) == number + 1, (opens, started)
        assert opens <= started[-1] < opens + span, (started[-1], opens)
    times = rotation_times(worker, arn)
    after = describe(worker, arn)
    assert after["LastRotatedDate"] == times[-1]
    assert after["NextRotationDate"] > clock.now()
    assert len(service_events(worker, "RotationSucceeded")) == len(windows)


def test_a_manual_change_counts_as_a_rotation(worker: Deployment, clock: ManualClock) -> None:
    arn = new_secret(worker)
    rotate(
        worker,
        arn,
        RotationLambdaARN=FUNCTION,
        RotationRules={"AutomaticallyAfterDays": 5},
        RotateImmediately=False,
    )
    assert sweep(worker) == 1  # the configuration's test
    assert describe(worker, arn)["NextRotationDate"] == START + timedelta(days=6, seconds=-1)
    clock.advance(timedelta(days=3, hours=5))
    worker.secrets.put_secret_value(
        SM, {"SecretId": arn, "SecretString": "by hand", "ClientRequestToken": str(uuid.uuid4())}
    )
    # Five days from the day of the change, not of the creation.
    assert describe(worker, arn)["NextRotationDate"] == START + timedelta(days=9, seconds=-1)
    # Not in the window the creation gave (day 5), nor before the one the change gives.
    run_for(worker, clock, START + timedelta(days=8, minutes=-1), timedelta(hours=1))
    assert rotation_times(worker, arn) == []
    run_for(worker, clock, START + timedelta(days=9), timedelta(hours=1))
    assert len(rotation_times(worker, arn)) == 1
    assert to_ms(describe(worker, arn)["LastRotatedDate"]) >= to_ms(START + timedelta(days=8))


def test_after_its_retries_a_rotation_waits_for_the_next_window(
    worker: Deployment, functions: TemplateFunctions, clock: ManualClock
) -> None:
    """Three failed attempts, then the schedule's next window reattempts the unfinished
    rotation with its own version; AWSCURRENT serves the old value all along."""
    arn = new_secret(worker)
    functions.fail_in = "createSecret"
    token = rotate(
        worker,
        arn,
        RotationLambdaARN=FUNCTION,
        RotationRules={"ScheduleExpression": "cron(0 8 ? * MON *)"},
    )["VersionId"]
    assert sweep(worker) == 1
    for delay in RETRY_DELAYS:
        clock.advance(delay)
        assert sweep(worker) == 1
    assert len(service_events(worker, "RotationFailed")) == 3
    # Given up for now: nothing more until Monday's window (START is Monday 00:00).
    described = describe(worker, arn)
    assert described["NextRotationDate"] == START + timedelta(days=1, seconds=-1)
    assert described["VersionIdsToStages"][token] == ["AWSPENDING"]
    run_for(worker, clock, START + timedelta(hours=7, minutes=59), timedelta(hours=1))
    assert len(service_events(worker, "RotationStarted")) == 3
    functions.fail_in = None
    # The reattempt falls at a random moment of the window (08:00 to 23:55, the start
    # margin before midnight): sweep until the window closes.
    run_for(worker, clock, START + timedelta(days=1), timedelta(minutes=5))
    started = service_events(worker, "RotationStarted")
    assert len(started) == 4
    assert value(worker, arn) == f"rotated-{token}"
    assert {c["ClientRequestToken"] for c in functions.calls} == {token}
