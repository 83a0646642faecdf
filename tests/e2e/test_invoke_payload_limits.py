"""Invoke's payload limits end to end (a real server process, boto3): a payload of exactly
its invocation type's limit is served, one byte more is refused with Lambda's
RequestEntityTooLargeException (413) before anything is queued or run, and the refusal
is audited. Lambda's limits: 6 MiB synchronous, 1 MiB asynchronous (functions/common.py)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.aws import aws_error
from tests.e2e.test_functions import LAMBDA_TRUST, create, unique
from tests.server import ServerProcess

SYNC_LIMIT = 6 * 1024 * 1024
EVENT_LIMIT = 1024 * 1024

MEASURES = """
def lambda_handler(event, context):
    print("received", len(event["s"]))
    return len(event["s"])
"""
# Fails, so its event stays in the queue for the retry a minute later (the real clock).
MEASURES_THEN_FAILS = """
def lambda_handler(event, context):
    print("received", len(event["s"]))
    raise RuntimeError("kept for its retry")
"""


def payload_of(size: int) -> bytes:
    """A JSON document of exactly ``size`` bytes: ``{"s": "aaa..."}``."""
    body = b'{"s": "' + b"a" * (size - 9) + b'"}'
    assert len(body) == size
    return body


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("invoke-limits") / "data"


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[ServerProcess]:
    """A dev server over a data directory, whose event queue the tests read."""
    process = ServerProcess(["--dev", "--data-dir", str(data_dir)], data_dir.parent / "log")
    yield process.start()
    process.stop()


@pytest.fixture(scope="module")
def lam(server: ServerProcess) -> Any:
    return server.client("lambda")


@pytest.fixture(scope="module")
def role(server: ServerProcess) -> str:
    created = server.client("iam").create_role(
        RoleName=unique("limits-role"), AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST)
    )
    return str(created["Role"]["Arn"])


def queued(data_dir: Path, function_arn: str) -> int:
    """The function's events in the queue (the store's table, read beside the server)."""
    with sqlite3.connect(data_dir / "strongroom.db") as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM lambda_event_queue WHERE function_arn = ?", (function_arn,)
        ).fetchone()
    conn.close()
    return int(count)


def log_messages(server: ServerProcess, name: str) -> list[str]:
    """The function's log lines; none while it has never run (no log group yet)."""
    logs = server.client("logs")
    try:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    return [str(event["message"]) for event in events]


def refusals(server: ServerProcess, name: str) -> list[dict[str, Any]]:
    """The audit records of the Invoke requests on ``name`` that were refused as too large."""
    trail = server.client("cloudtrail")
    found = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "Invoke"}]
    )["Events"]
    records = [json.loads(event["CloudTrailEvent"]) for event in found]
    return [
        record
        for record in records
        if record.get("errorCode") == "RequestEntityTooLargeException"
        and name in json.dumps(record.get("requestParameters"))
    ]


def test_a_synchronous_payload_of_6_mib_runs_and_one_byte_more_is_refused(
    server: ServerProcess, lam: Any, role: str
) -> None:
    name = create(lam, role, MEASURES, MemorySize=256, Timeout=30)["FunctionName"]
    over = SYNC_LIMIT + 1
    aws_error(
        lam.invoke,
        FunctionName=name,
        Payload=payload_of(over),
        code="RequestEntityTooLargeException",
        message=f"{over} byte payload is too large for the RequestResponse invocation type "
        f"(limit {SYNC_LIMIT} bytes)",
        status=413,
    )
    assert log_messages(server, name) == []  # nothing ran
    (record,) = refusals(server, name)
    assert record["errorMessage"].startswith(f"{over} byte payload is too large")
    assert "aaaaaaaa" not in json.dumps(record)  # the payload is never recorded

    answer = lam.invoke(FunctionName=name, Payload=payload_of(SYNC_LIMIT))
    assert answer["StatusCode"] == 200 and "FunctionError" not in answer
    assert json.loads(answer["Payload"].read()) == SYNC_LIMIT - 9
    assert f"received {SYNC_LIMIT - 9}\n" in log_messages(server, name)


def test_an_event_payload_of_1_mib_is_queued_and_one_byte_more_is_refused(
    server: ServerProcess, data_dir: Path, lam: Any, role: str
) -> None:
    created = create(lam, role, MEASURES_THEN_FAILS, MemorySize=256, Timeout=30)
    name, arn = created["FunctionName"], created["FunctionArn"]
    over = EVENT_LIMIT + 1
    aws_error(
        lam.invoke,
        FunctionName=name,
        InvocationType="Event",
        Payload=payload_of(over),
        code="RequestEntityTooLargeException",
        message=f"{over} byte payload is too large for the Event invocation type "
        f"(limit {EVENT_LIMIT} bytes)",
        status=413,
    )
    # Nothing queued, so nothing to run: the queue row is written before a 202.
    assert queued(data_dir, arn) == 0
    (record,) = refusals(server, name)
    assert "aaaaaaaa" not in json.dumps(record)

    answer = lam.invoke(FunctionName=name, InvocationType="Event", Payload=payload_of(EVENT_LIMIT))
    assert answer["StatusCode"] == 202
    assert queued(data_dir, arn) == 1  # running, or waiting for its retry
    deadline = time.monotonic() + 120
    while f"received {EVENT_LIMIT - 9}\n" not in log_messages(server, name):
        assert time.monotonic() < deadline, "the event's first attempt never ran"
        time.sleep(0.2)
    # The refused request ran nothing: one attempt of one request is in the log.
    assert sum(line.startswith("START ") for line in log_messages(server, name)) == 1
