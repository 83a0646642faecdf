"""Group commit of write requests: :class:`strongroom.server.batching.WriteBatcher` alone
(a fake ``serve`` and an event loop), and ``Pipeline.serve_batch`` over a real deployment
(SigV4-signed requests, the SQLite store, the durable audit log).

A batch runs each request in a savepoint of one transaction, makes all their audit
records durable in one group commit, then commits once. So: a failing request undoes
only its own writes; a later request sees what earlier ones wrote; if the audit or the
commit fails, no request of the batch changed anything and each one says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from sqlalchemy import event as sqlalchemy_event

from strongroom.audit.log import AuditWriteError
from strongroom.audit.lookup import iter_events
from strongroom.clock import ManualClock
from strongroom.iam.credentials import admin_arn
from strongroom.iam.service import IdentityService
from strongroom.protocol.errors import ServiceError
from strongroom.protocol.sigv4 import HttpRequest
from strongroom.server.batching import MAX_BATCH, BatcherClosed, WriteBatcher
from strongroom.server.deployment import DEV_ACCESS_KEY, DEV_ACCOUNT, DEV_SECRET_KEY, Deployment
from strongroom.server.pipeline import Response
from strongroom.store.engine import WriteBatch
from strongroom.types import Caller
from tests.aws import NOT_FOUND
from tests.inprocess import signing_at
from tests.server import STRONGROOM

REGION = "us-east-1"
HOST = "strongroom.test"
SOURCE_IP = "127.0.0.1"
SM = Caller(DEV_ACCOUNT, REGION, admin_arn(DEV_ACCOUNT))
INTERNAL = "InternalServiceError"
WAIT = 10.0  # seconds a test waits for a thread before it counts as hung

Work = Callable[[], Any]  # what serve_batch takes: () -> (exchange, outcome)


# Requests, answers and what they left behind ------------------------------------------------


@dataclass(frozen=True)
class Key:
    access_key_id: str
    secret_access_key: str


ADMIN = Key(DEV_ACCESS_KEY, DEV_SECRET_KEY)


@dataclass(frozen=True)
class Answer:
    status: int
    request_id: str
    body: dict[str, Any]

    @property
    def code(self) -> str | None:
        """The AWS error code, or None for a success."""
        if self.status == 200:
            return None
        code: str = self.body["__type"]
        return code


def answer_of(response: Response) -> Answer:
    body = json.loads(response.body) if response.body else {}
    if response.status != 200:
        assert response.headers["x-amzn-ErrorType"] == body["__type"], response
    return Answer(response.status, response.headers["x-amzn-RequestId"], body)


def _signed(
    clock: ManualClock, service: str, body: bytes, headers: dict[str, str], key: Key
) -> HttpRequest:
    """A POST to ``/`` as botocore signs it (at the deployment's clock), in the pipeline's
    request type."""
    request = AWSRequest(method="POST", url=f"http://{HOST}/", data=body, headers=headers)
    with signing_at(clock):
        credentials = Credentials(key.access_key_id, key.secret_access_key)
        SigV4Auth(credentials, service, REGION).add_auth(request)
    prepared = request.prepare()
    sent = [("Host", HOST)] + [
        (name, value if isinstance(value, str) else value.decode("latin-1"))
        for name, value in prepared.headers.items()
    ]
    return HttpRequest("POST", "/", "", sent, body)


def signed(
    clock: ManualClock, operation: str, params: dict[str, Any], key: Key = ADMIN
) -> HttpRequest:
    """A Secrets Manager (JSON protocol) request."""
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"secretsmanager.{operation}",
    }
    return _signed(clock, "secretsmanager", json.dumps(params).encode(), headers, key)


def signed_iam(
    clock: ManualClock, action: str, params: dict[str, str], key: Key = ADMIN
) -> HttpRequest:
    """An IAM (Query protocol) request."""
    body = urlencode({"Action": action, "Version": "2010-05-08", **params}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    return _signed(clock, "iam", body, headers, key)


def work(deployment: Deployment, request: HttpRequest) -> Work:
    """One request as the batcher runs it: authenticate, parse, authorize, operate."""
    return lambda: deployment.pipeline._execute(request, SOURCE_IP)


def written_then_refused(deployment: Deployment, request: HttpRequest) -> Work:
    """A request whose operation wrote (and succeeded) but whose outcome is an error: only
    its savepoint in the batch can undo what it wrote."""

    def run() -> Any:
        exchange, outcome = deployment.pipeline._execute(request, SOURCE_IP)
        assert not isinstance(outcome, ServiceError), outcome  # it did write
        return exchange, ServiceError("InvalidRequestException", "refused after writing")

    return run


def serve(deployment: Deployment, works: Sequence[Work]) -> list[Answer]:
    responses = deployment.pipeline.serve_batch(works)
    assert len(responses) == len(works)
    return [answer_of(response) for response in responses]


def put(
    clock: ManualClock,
    secret_id: str,
    value: str,
    token: str | None = None,
    key: Key = ADMIN,
) -> HttpRequest:
    params = {"SecretId": secret_id, "SecretString": value}
    params["ClientRequestToken"] = token or str(uuid.uuid4())
    return signed(clock, "PutSecretValue", params, key)


def create(deployment: Deployment, name: str, value: str = "v0") -> str:
    """A secret made directly through the service (not audited); its first version id."""
    token = str(uuid.uuid4())
    deployment.secrets.create_secret(
        SM, {"Name": name, "SecretString": value, "ClientRequestToken": token}
    )
    return token


def versions(deployment: Deployment, secret_id: str) -> dict[str, list[str]]:
    """Every version of a secret (deprecated ones too) and its staging labels."""
    listed = deployment.secrets.list_secret_version_ids(
        SM, {"SecretId": secret_id, "IncludeDeprecated": True}
    )
    return {v["VersionId"]: sorted(v.get("VersionStages") or []) for v in listed["Versions"]}


def current_value(deployment: Deployment, secret_id: str) -> str:
    value: str = deployment.secrets.get_secret_value(SM, {"SecretId": secret_id})["SecretString"]
    return value


def exists(deployment: Deployment, secret_id: str) -> bool:
    try:
        deployment.secrets.describe_secret(SM, {"SecretId": secret_id})
    except ServiceError as error:
        assert error.code == "ResourceNotFoundException", error
        return False
    return True


def audit_records(deployment: Deployment) -> dict[str, list[dict[str, Any]]]:
    """The durable audit records of requests, by request id, in log order."""
    found: dict[str, list[dict[str, Any]]] = {}
    for event in iter_events(deployment.data_dir / "audit"):
        if "requestID" in event:
            found.setdefault(event["requestID"], []).append(event)
    return found


def database(deployment: Deployment) -> list[str]:
    """The whole committed database, as SQL, read by a connection of no store."""
    with contextlib.closing(sqlite3.connect(deployment.data_dir / "strongroom.db")) as db:
        return list(db.iterdump())


def commits_writing(deployment: Deployment, table: str) -> list[int]:
    """From now on, one entry per committed transaction that wrote ``table``."""
    commits: list[int] = []
    mark = f"test-wrote-{table}"
    engine = deployment.store.engine

    def note(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")) and (
            table in statement
        ):
            conn.info[mark] = True

    def commit(conn: Any) -> None:
        if conn.info.pop(mark, False):
            commits.append(1)

    sqlalchemy_event.listen(engine, "before_cursor_execute", note)
    sqlalchemy_event.listen(engine, "commit", commit)
    sqlalchemy_event.listen(engine, "rollback", lambda conn: conn.info.pop(mark, None))
    return commits


def verify_audit(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(STRONGROOM), "audit", "verify", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def user_key(deployment: Deployment, name: str, actions: list[str]) -> Key:
    """An IAM user allowed ``actions`` on every resource, and nothing else; its key."""
    iam = IdentityService(
        deployment.store, deployment.barrier, deployment.clock, deployment.credentials
    )
    iam.create_user(SM, {"UserName": name})
    iam.put_inline(
        "user",
        SM,
        {
            "UserName": name,
            "PolicyName": "some",
            "PolicyDocument": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
                }
            ),
        },
    )
    made = iam.create_access_key(SM, {"UserName": name})["AccessKey"]
    return Key(made["AccessKeyId"], made["SecretAccessKey"])


@pytest.fixture
def reader(deployment: Deployment) -> Key:
    """A user who may read and create secrets, but not put values or tag."""
    return user_key(
        deployment,
        "reader",
        [
            "secretsmanager:GetSecretValue",
            "secretsmanager:DescribeSecret",
            "secretsmanager:CreateSecret",
        ],
    )


# 1. A batch of good writes -------------------------------------------------------------------


def test_a_batch_of_puts_answers_each_in_order_keeps_every_version_and_audits_each_once(
    deployment: Deployment, clock: ManualClock
) -> None:
    first = {name: create(deployment, name) for name in ("batch/a", "batch/b", "batch/c")}
    plan = [
        ("batch/a", "a1"),
        ("batch/b", "b1"),
        ("batch/a", "a2"),
        ("batch/c", "c1"),
        ("batch/a", "a3"),
        ("batch/b", "b2"),
    ]
    tokens = [str(uuid.uuid4()) for _ in plan]
    requests = [
        put(clock, sid, value, token) for (sid, value), token in zip(plan, tokens, strict=True)
    ]
    commits = commits_writing(deployment, "secret_versions")

    answers = serve(deployment, [work(deployment, request) for request in requests])

    assert [a.status for a in answers] == [200] * len(plan)
    # Each answer is its own request's: the version it made, of the secret it named.
    assert [a.body["VersionId"] for a in answers] == tokens
    assert [a.body["Name"] for a in answers] == [sid for sid, _ in plan]
    assert all(a.body["VersionStages"] == ["AWSCURRENT"] for a in answers)
    assert len({a.request_id for a in answers}) == len(plan)
    # One transaction: the versions table was committed once, not once a request.
    assert len(commits) == 1

    assert versions(deployment, "batch/a") == {
        first["batch/a"]: [],  # deprecated, still listed
        tokens[0]: [],
        tokens[2]: ["AWSPREVIOUS"],
        tokens[4]: ["AWSCURRENT"],
    }
    assert versions(deployment, "batch/b") == {
        first["batch/b"]: [],
        tokens[1]: ["AWSPREVIOUS"],
        tokens[5]: ["AWSCURRENT"],
    }
    assert versions(deployment, "batch/c") == {
        first["batch/c"]: ["AWSPREVIOUS"],
        tokens[3]: ["AWSCURRENT"],
    }
    assert [current_value(deployment, s) for s in ("batch/a", "batch/b", "batch/c")] == [
        "a3",
        "b2",
        "c1",
    ]
    for version_id, value in zip(tokens, [v for _, v in plan], strict=True):
        got = deployment.secrets.get_secret_value(
            SM, {"SecretId": plan[tokens.index(version_id)][0], "VersionId": version_id}
        )
        assert got["SecretString"] == value

    records = audit_records(deployment)
    for answer, (sid, _) in zip(answers, plan, strict=True):
        [record] = records[answer.request_id]
        assert record["eventName"] == "PutSecretValue"
        assert "errorCode" not in record
        assert record["requestParameters"]["secretId"] == sid
    # The batch's records are in the log in the order of its requests.
    logged = [e["requestID"] for e in iter_events(deployment.data_dir / "audit")]
    assert [i for i in logged if i in {a.request_id for a in answers}] == [
        a.request_id for a in answers
    ]


# 2. Failing requests in a batch undo only themselves -----------------------------------------


def test_failing_requests_answer_their_own_errors_and_undo_only_their_own_writes(
    deployment: Deployment, clock: ManualClock, reader: Key
) -> None:
    a0 = create(deployment, "mixed/a")
    b0 = create(deployment, "mixed/b")
    t_a1, t_b1, t_a2, t_undone = (str(uuid.uuid4()) for _ in range(4))
    tagged = "mixed/tagged"
    batch = [
        work(deployment, put(clock, "mixed/a", "a1", t_a1)),
        work(deployment, put(clock, "mixed/missing", "x")),
        work(deployment, put(clock, "mixed/b", "b1", t_b1)),
        # No value: refused before anything is written.
        work(
            deployment,
            signed(
                clock,
                "PutSecretValue",
                {"SecretId": "mixed/a", "ClientRequestToken": str(uuid.uuid4())},
            ),
        ),
        # The reader may not put values: refused at authorization.
        work(deployment, put(clock, "mixed/a", "by-reader", key=reader)),
        # The reader may create but not tag: the secret row is inserted, then refused.
        work(
            deployment,
            signed(
                clock,
                "CreateSecret",
                {"Name": tagged, "Tags": [{"Key": "team", "Value": "x"}]},
                reader,
            ),
        ),
        # Succeeded, then answered an error: its savepoint must undo the new version.
        written_then_refused(deployment, put(clock, "mixed/b", "undone", t_undone)),
        work(deployment, put(clock, "mixed/a", "a2", t_a2)),
    ]

    answers = serve(deployment, batch)

    assert [(a.status, a.code) for a in answers] == [
        (200, None),
        (400, "ResourceNotFoundException"),
        (200, None),
        (400, "InvalidRequestException"),
        (400, "AccessDeniedException"),
        (400, "AccessDeniedException"),
        (400, "InvalidRequestException"),
        (200, None),
    ]
    assert answers[1].body["Message"] == NOT_FOUND
    assert answers[3].body["Message"] == "You must provide either SecretString or SecretBinary."
    assert answers[6].body["Message"] == "refused after writing"
    assert [answers[i].body["VersionId"] for i in (0, 2, 7)] == [t_a1, t_b1, t_a2]

    # The good ones' writes are kept; the failing ones left nothing.
    assert versions(deployment, "mixed/a") == {
        a0: [],
        t_a1: ["AWSPREVIOUS"],
        t_a2: ["AWSCURRENT"],
    }
    assert versions(deployment, "mixed/b") == {b0: ["AWSPREVIOUS"], t_b1: ["AWSCURRENT"]}
    assert current_value(deployment, "mixed/a") == "a2"
    assert current_value(deployment, "mixed/b") == "b1"
    assert not exists(deployment, tagged)
    assert not exists(deployment, "mixed/missing")

    records = audit_records(deployment)
    for answer in answers:
        [record] = records[answer.request_id]
        assert record.get("errorCode") == answer.code
    assert records[answers[5].request_id][0]["eventName"] == "CreateSecret"
    assert records[answers[4].request_id][0]["userIdentity"]["userName"] == "reader"


# 3. Later requests of a batch see earlier ones' writes --------------------------------------


def test_later_requests_in_a_batch_see_earlier_writes(
    deployment: Deployment, clock: ManualClock
) -> None:
    t0, t1, t2 = (str(uuid.uuid4()) for _ in range(3))
    batch = [
        signed(
            clock,
            "CreateSecret",
            {"Name": "seen/new", "SecretString": "v0", "ClientRequestToken": t0},
        ),
        put(clock, "seen/new", "v1", t1),
        put(clock, "seen/new", "v1", t1),  # the same token and value again: idempotent
        put(clock, "seen/new", "other", t1),  # the same token, another value: refused
        signed(clock, "DeleteSecret", {"SecretId": "seen/new", "RecoveryWindowInDays": 7}),
        put(clock, "seen/new", "v2", t2),  # the secret is scheduled for deletion now
    ]

    answers = serve(deployment, [work(deployment, request) for request in batch])

    assert [(a.status, a.code) for a in answers] == [
        (200, None),
        (200, None),
        (200, None),
        (400, "ResourceExistsException"),
        (200, None),
        (400, "InvalidRequestException"),
    ]
    assert answers[0].body["VersionId"] == t0
    assert answers[1].body["VersionId"] == t1
    assert answers[2].body["VersionId"] == t1
    assert answers[2].body["VersionStages"] == ["AWSCURRENT"]
    assert "DeletionDate" in answers[4].body
    assert "marked for deletion" in answers[5].body["Message"]

    assert versions(deployment, "seen/new") == {t0: ["AWSPREVIOUS"], t1: ["AWSCURRENT"]}
    described = deployment.secrets.describe_secret(SM, {"SecretId": "seen/new"})
    assert "DeletedDate" in described
    records = audit_records(deployment)
    assert [len(records[a.request_id]) for a in answers] == [1] * len(answers)


# 4. A batch whose audit records cannot be written changed nothing --------------------------


def _mixed_batch(
    deployment: Deployment, clock: ManualClock
) -> tuple[list[HttpRequest], dict[str, Any]]:
    """Puts on two secrets, a create, and a put on a missing secret; the state to keep."""
    create(deployment, "fail/a")
    create(deployment, "fail/b")
    requests = [
        put(clock, "fail/a", "a1"),
        put(clock, "fail/b", "b1"),
        signed(
            clock,
            "CreateSecret",
            {"Name": "fail/new", "SecretString": "n", "ClientRequestToken": str(uuid.uuid4())},
        ),
        put(clock, "fail/missing", "x"),
        put(clock, "fail/a", "a2"),
    ]
    return requests, _state(deployment)


def _state(deployment: Deployment) -> dict[str, Any]:
    """What the batch of ``_mixed_batch`` would change, as the services see it."""
    return {
        "versions": [versions(deployment, s) for s in ("fail/a", "fail/b")],
        "values": [current_value(deployment, s) for s in ("fail/a", "fail/b")],
        "created": exists(deployment, "fail/new"),
    }


def test_an_audit_sink_that_refuses_the_batch_fails_every_request_and_keeps_nothing(
    deployment: Deployment, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests, state = _mixed_batch(deployment, clock)
    before = database(deployment)
    refused: list[int] = []

    def refuse(events: Sequence[Any]) -> None:
        refused.append(len(events))
        raise AuditWriteError("the audit log cannot be written")

    with monkeypatch.context() as patched:
        patched.setattr(deployment.audit, "write_many", refuse)
        answers = serve(deployment, [work(deployment, r) for r in requests])

    # One group commit for the whole batch: its records and the KMS calls made for them.
    assert len(refused) == 1 and refused[0] >= len(requests)
    assert [(a.status, a.code) for a in answers] == [(500, INTERNAL)] * len(requests)
    assert len({a.request_id for a in answers}) == len(requests)
    assert database(deployment) == before
    records = audit_records(deployment)
    assert not any(a.request_id in records for a in answers)
    assert _state(deployment) == state

    # The next batch, with the audit log working, goes through.
    again = serve(deployment, [work(deployment, put(clock, "fail/a", "later"))])
    assert again[0].status == 200
    assert current_value(deployment, "fail/a") == "later"


def test_an_unwritable_audit_log_fails_every_request_of_the_batch_and_keeps_nothing(
    deployment: Deployment, clock: ManualClock
) -> None:
    requests, state = _mixed_batch(deployment, clock)
    # A working batch first, so the log has a current file to lose.
    warm = serve(deployment, [work(deployment, put(clock, "fail/b", "warm"))])
    assert warm[0].status == 200
    state = _state(deployment)
    assert state["values"] == ["v0", "warm"] and not state["created"]
    before = database(deployment)
    # Tests run as root: a permission does not stop a write; a file where the writer's
    # directory was does (as in tests/e2e/test_audit_trail.py).
    [writer_dir] = (deployment.data_dir / "audit" / "logs").iterdir()
    moved = writer_dir.with_name("moved-away")
    writer_dir.rename(moved)
    writer_dir.write_bytes(b"not a directory")
    try:
        answers = serve(deployment, [work(deployment, r) for r in requests])
    finally:
        writer_dir.unlink()
        moved.rename(writer_dir)

    assert [(a.status, a.code) for a in answers] == [(500, INTERNAL)] * len(requests)
    assert database(deployment) == before
    records = audit_records(deployment)
    assert not any(a.request_id in records for a in answers)
    assert _state(deployment) == state

    # The log recovers: the next batch is durable, and the chain still verifies.
    again = serve(deployment, [work(deployment, put(clock, "fail/a", "later"))])
    assert again[0].status == 200
    assert len(audit_records(deployment)[again[0].request_id]) == 1
    deployment.audit.close()
    result = verify_audit(deployment.data_dir)
    assert result.returncode == 0, result.stdout + result.stderr


# 5. A batch whose commit fails changed nothing, and its audit trail says so ------------------


def test_a_failed_commit_fails_every_success_and_audits_the_failure_under_its_request_id(
    deployment: Deployment, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests, state = _mixed_batch(deployment, clock)
    before = database(deployment)
    commits: list[WriteBatch] = []

    def fail(batch: WriteBatch) -> None:
        commits.append(batch)
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patched:
        patched.setattr(WriteBatch, "commit", fail)
        answers = serve(deployment, [work(deployment, r) for r in requests])

    assert len(commits) == 1
    assert [(a.status, a.code) for a in answers] == [
        (500, INTERNAL),
        (500, INTERNAL),
        (500, INTERNAL),
        (400, "ResourceNotFoundException"),  # answered as it was audited
        (500, INTERNAL),
    ]
    assert database(deployment) == before
    assert _state(deployment) == state

    records = audit_records(deployment)
    for answer, request in zip(answers, requests, strict=True):
        found = records[answer.request_id]
        operation = dict(request.headers)["X-Amz-Target"].rpartition(".")[2]
        assert all(r["eventName"] == operation for r in found)
        if answer.code == "ResourceNotFoundException":
            assert [r.get("errorCode") for r in found] == ["ResourceNotFoundException"]
            continue
        # The success recorded in the batch's group commit, then the failure that undid it.
        assert [r.get("errorCode") for r in found] == [None, INTERNAL]
        assert found[0]["responseElements"] is not None
        assert found[1]["responseElements"] is None
        # ... written as a correction of the first (one event: audit/corrections.py).
        assert found[1]["eventID"] == found[0]["eventID"]
        assert "strongroomCorrection" in found[1]

    # Nothing is left held: the next batch commits.
    again = serve(deployment, [work(deployment, put(clock, "fail/a", "later"))])
    assert again[0].status == 200
    assert current_value(deployment, "fail/a") == "later"


# 6. No write batch to be had: the requests are served one by one ----------------------------


def test_when_no_batch_can_begin_the_requests_are_served_one_by_one(
    deployment: Deployment, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    a0 = create(deployment, "alone/a")
    t1, t2, t3 = (str(uuid.uuid4()) for _ in range(3))
    requests = [
        put(clock, "alone/a", "a1", t1),
        put(clock, "alone/missing", "x"),
        signed(
            clock,
            "CreateSecret",
            {"Name": "alone/new", "SecretString": "n0", "ClientRequestToken": t2},
        ),
        put(clock, "alone/new", "n1", t3),  # sees the create committed just before
    ]
    commits = commits_writing(deployment, "secret_versions")
    attempts: list[int] = []

    def cannot_begin() -> WriteBatch:
        attempts.append(1)
        raise sqlite3.OperationalError("unable to open database file")

    with monkeypatch.context() as patched:
        patched.setattr(deployment.store, "begin_write_batch", cannot_begin)
        answers = serve(deployment, [work(deployment, r) for r in requests])

    assert attempts == [1]
    assert [(a.status, a.code) for a in answers] == [
        (200, None),
        (400, "ResourceNotFoundException"),
        (200, None),
        (200, None),
    ]
    assert [answers[i].body["VersionId"] for i in (0, 2, 3)] == [t1, t2, t3]
    # Three transactions that wrote versions: one per successful request.
    assert len(commits) == 3
    assert versions(deployment, "alone/a") == {a0: ["AWSPREVIOUS"], t1: ["AWSCURRENT"]}
    assert versions(deployment, "alone/new") == {t2: ["AWSPREVIOUS"], t3: ["AWSCURRENT"]}
    assert not exists(deployment, "alone/missing")
    records = audit_records(deployment)
    assert [[r.get("errorCode") for r in records[a.request_id]] for a in answers] == [
        [None],
        ["ResourceNotFoundException"],
        [None],
        [None],
    ]


# A batch that did not commit leaves nothing behind: not even in the authorizer's cache -------


def _fail_audit(deployment: Deployment, patched: pytest.MonkeyPatch) -> None:
    def refuse(_events: Sequence[Any]) -> None:
        raise AuditWriteError("the audit log cannot be written")

    patched.setattr(deployment.audit, "write_many", refuse)


def _fail_commit(_deployment: Deployment, patched: pytest.MonkeyPatch) -> None:
    def fail(_batch: WriteBatch) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    patched.setattr(WriteBatch, "commit", fail)


@pytest.mark.parametrize("failure", [_fail_audit, _fail_commit], ids=["audit", "commit"])
def test_a_grant_in_a_batch_that_did_not_commit_grants_nothing(
    deployment: Deployment,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    failure: Callable[[Deployment, pytest.MonkeyPatch], None],
) -> None:
    v0 = create(deployment, "grant/s")
    user = user_key(deployment, "grantee", ["secretsmanager:DescribeSecret"])
    denied = serve(deployment, [work(deployment, put(clock, "grant/s", "before", key=user))])
    assert denied[0].code == "AccessDeniedException"
    grant = signed_iam(
        clock,
        "PutUserPolicy",
        {
            "UserName": "grantee",
            "PolicyName": "put",
            "PolicyDocument": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "secretsmanager:PutSecretValue",
                            "Resource": "*",
                        }
                    ],
                }
            ),
        },
    )
    with monkeypatch.context() as patched:
        failure(deployment, patched)
        # The grant, and a write by the grantee that sees it, in a batch that fails.
        failed = deployment.pipeline.serve_batch(
            [work(deployment, grant), work(deployment, put(clock, "grant/s", "during", key=user))]
        )
    assert [r.status for r in failed] == [500, 500]
    iam = IdentityService(
        deployment.store, deployment.barrier, deployment.clock, deployment.credentials
    )
    assert iam.list_inline("user", SM, {"UserName": "grantee"})["PolicyNames"] == ["some"]
    # Any other IAM change commits (another worker's, or a request prepared earlier).
    iam.create_user(SM, {"UserName": "someone-else"})

    after = serve(deployment, [work(deployment, put(clock, "grant/s", "after", key=user))])

    assert (after[0].status, after[0].code) == (400, "AccessDeniedException")
    assert versions(deployment, "grant/s") == {v0: ["AWSCURRENT"]}


# Through handle_async: the path a request served on the event loop takes --------------------


def test_concurrent_writes_on_the_event_loop_are_batched_and_each_answered(
    deployment: Deployment, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [f"loop/{i}" for i in range(4)]
    for name in names:
        create(deployment, name)
    count = 20
    tokens = [str(uuid.uuid4()) for _ in range(count)]
    requests = [put(clock, names[i % len(names)], f"value-{i}", tokens[i]) for i in range(count)]
    real = deployment.pipeline.serve_batch
    sizes: list[int] = []
    first_started, release = threading.Event(), threading.Event()

    def gated(works: Sequence[Work]) -> list[Response]:
        sizes.append(len(works))
        if len(sizes) == 1:  # hold the first batch until every request is waiting
            first_started.set()
            assert release.wait(WAIT)
        return real(works)

    monkeypatch.setattr(deployment.pipeline, "serve_batch", gated)

    async def scenario() -> list[Response]:
        pipeline = deployment.pipeline
        first = asyncio.ensure_future(pipeline.handle_async(requests[0], SOURCE_IP))
        assert await asyncio.to_thread(first_started.wait, WAIT)
        rest = [
            asyncio.ensure_future(pipeline.handle_async(request, SOURCE_IP))
            for request in requests[1:]
        ]
        await asyncio.sleep(0)  # each has been prepared and submitted
        release.set()
        return await asyncio.wait_for(asyncio.gather(first, *rest), WAIT)

    answers = [answer_of(r) for r in asyncio.run(scenario())]

    assert sizes == [1, count - 1]
    assert [a.status for a in answers] == [200] * count
    assert [a.body["VersionId"] for a in answers] == tokens
    for i, name in enumerate(names):
        mine = [tokens[j] for j in range(count) if j % len(names) == i]
        assert set(versions(deployment, name)) >= set(mine)
        assert versions(deployment, name)[mine[-1]] == ["AWSCURRENT"]
    records = audit_records(deployment)
    assert [len(records[a.request_id]) for a in answers] == [1] * count


def test_a_read_that_writes_is_served_again_by_the_batcher_and_audited_once(
    deployment: Deployment, clock: ManualClock
) -> None:
    create(deployment, "loop/read")
    request = signed(clock, "GetSecretValue", {"SecretId": "loop/read"})
    described = deployment.secrets.describe_secret(SM, {"SecretId": "loop/read"})
    assert described.get("LastAccessedDate") is None  # the first read of a day records it

    answer = answer_of(asyncio.run(deployment.pipeline.handle_async(request, SOURCE_IP)))

    assert (answer.status, answer.body["SecretString"]) == (200, "v0")
    after = deployment.secrets.describe_secret(SM, {"SecretId": "loop/read"})
    assert after.get("LastAccessedDate") is not None
    batcher = deployment.pipeline._batcher
    assert batcher is not None and batcher.requests == 1
    gets = [
        e for e in iter_events(deployment.data_dir / "audit") if e["eventName"] == "GetSecretValue"
    ]
    assert [e["requestID"] for e in gets] == [answer.request_id]


def test_a_denied_write_on_the_event_loop_is_answered_without_the_batcher(
    deployment: Deployment, clock: ManualClock, reader: Key
) -> None:
    v0 = create(deployment, "loop/denied")
    request = put(clock, "loop/denied", "nope", key=reader)

    answer = answer_of(asyncio.run(deployment.pipeline.handle_async(request, SOURCE_IP)))

    assert (answer.status, answer.code) == (400, "AccessDeniedException")
    assert deployment.pipeline._batcher is None  # refused before the write lock
    assert versions(deployment, "loop/denied") == {v0: ["AWSCURRENT"]}
    [record] = audit_records(deployment)[answer.request_id]
    assert record["errorCode"] == "AccessDeniedException"


@pytest.mark.parametrize("written_before", [False, True], ids=["first-write", "later-write"])
@pytest.mark.parametrize("audit_open", [True, False], ids=["audit-open", "audit-closed"])
def test_a_write_after_the_pipeline_closed_is_served_alone_or_refused_changing_nothing(
    deployment: Deployment, clock: ManualClock, written_before: bool, audit_open: bool
) -> None:
    """Once the pipeline has closed (the deployment is shutting down), a late write is
    served alone, as before batching: committed and audited while the audit log is open,
    else refused with the AWS internal error and nothing changed."""
    v0 = create(deployment, "closed/s")
    pipeline = deployment.pipeline
    if written_before:
        wrote = answer_of(
            asyncio.run(pipeline.handle_async(put(clock, "closed/s", "v1"), SOURCE_IP))
        )
        assert wrote.status == 200
    before = versions(deployment, "closed/s")
    assert len(before) == (2 if written_before else 1) and v0 in before
    pipeline.close()
    if not audit_open:
        deployment.audit.close()

    response = asyncio.run(pipeline.handle_async(put(clock, "closed/s", "late"), SOURCE_IP))

    answer = answer_of(response)
    if audit_open:
        assert answer.status == 200, answer
        assert len(versions(deployment, "closed/s")) == len(before) + 1
        assert len(audit_records(deployment)[answer.request_id]) == 1
    else:
        assert answer.status == 500 and answer.code == "InternalServiceError", answer
        assert versions(deployment, "closed/s") == before


# WriteBatcher alone ----------------------------------------------------------------------------


class Problem(Exception):
    pass


class Gate:
    """A fake ``serve``: answers ``answer:<work>``, records each batch, holds the first
    batch until released (so what is submitted meanwhile waits), and raises for a batch
    ``fail`` picks."""

    def __init__(self, fail: Callable[[list[str]], bool] = lambda _works: False) -> None:
        self.batches: list[list[str]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self._fail = fail

    def __call__(self, works: Sequence[str]) -> list[str]:
        batch = list(works)
        self.batches.append(batch)
        if len(self.batches) == 1:
            self.started.set()
            assert self.release.wait(WAIT)
        if self._fail(batch):
            raise Problem(f"serve failed for {batch}")
        return [f"answer:{w}" for w in batch]


@contextlib.contextmanager
def running(gate: Gate, **options: Any) -> Iterator[WriteBatcher[str, str]]:
    batcher: WriteBatcher[str, str] = WriteBatcher(gate, **options)
    try:
        yield batcher
    finally:
        gate.release.set()
        batcher.close()


async def held(batcher: WriteBatcher[str, str], gate: Gate, works: list[str]) -> list[Any]:
    """Submit ``works[0]``, and the rest while its batch is being served; their tasks."""
    first = asyncio.ensure_future(batcher.submit(works[0]))
    assert await asyncio.to_thread(gate.started.wait, WAIT)
    rest = [asyncio.ensure_future(batcher.submit(w)) for w in works[1:]]
    await asyncio.sleep(0)  # every one of them is waiting now
    return [first, *rest]


@pytest.mark.parametrize(("max_batch", "count"), [(3, 11), (MAX_BATCH, 2 * MAX_BATCH + 2)])
def test_batches_never_exceed_max_batch_and_answers_follow_submission_order(
    max_batch: int, count: int
) -> None:
    gate = Gate()
    works = [f"w{i}" for i in range(count)]

    async def scenario(batcher: WriteBatcher[str, str]) -> list[str]:
        tasks = await held(batcher, gate, works)
        gate.release.set()
        return list(await asyncio.wait_for(asyncio.gather(*tasks), WAIT))

    with running(gate, max_batch=max_batch) as batcher:
        answers = asyncio.run(scenario(batcher))

    assert answers == [f"answer:{w}" for w in works]
    assert all(1 <= len(batch) <= max_batch for batch in gate.batches)
    # Served in submission order, in full batches while enough were waiting.
    assert [w for batch in gate.batches for w in batch] == works
    waiting = works[1:]
    assert gate.batches == [
        ["w0"],
        *[waiting[i : i + max_batch] for i in range(0, len(waiting), max_batch)],
    ]
    assert (batcher.batches, batcher.requests) == (len(gate.batches), count)


def test_an_exception_in_serve_fails_exactly_that_batch() -> None:
    gate = Gate(fail=lambda batch: "w2" in batch)
    works = [f"w{i}" for i in range(7)]

    async def scenario(batcher: WriteBatcher[str, str]) -> tuple[list[Any], str]:
        tasks = await held(batcher, gate, works)
        gate.release.set()
        results = list(await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), WAIT))
        later = await asyncio.wait_for(
            batcher.submit("w7"), WAIT
        )  # the batcher survives a failed batch
        return results, later

    with running(gate, max_batch=3) as batcher:
        results, later = asyncio.run(scenario(batcher))

    assert gate.batches[:3] == [["w0"], ["w1", "w2", "w3"], ["w4", "w5", "w6"]]
    assert results[0] == "answer:w0"
    failed = results[1:4]
    assert all(isinstance(r, Problem) for r in failed), results
    assert failed[0] is failed[1] is failed[2]  # the one exception serve raised
    assert str(failed[0]) == "serve failed for ['w1', 'w2', 'w3']"
    assert results[4:] == ["answer:w4", "answer:w5", "answer:w6"]
    assert later == "answer:w7"


def test_close_serves_what_is_waiting_then_refuses_submissions() -> None:
    gate = Gate()
    works = [f"w{i}" for i in range(5)]

    async def scenario(batcher: WriteBatcher[str, str]) -> list[str]:
        tasks = await held(batcher, gate, works)
        closing = asyncio.ensure_future(asyncio.to_thread(batcher.close))
        await asyncio.sleep(0.1)
        assert not closing.done()  # still serving the first batch; the rest wait
        assert not any(task.done() for task in tasks)
        gate.release.set()
        await asyncio.wait_for(closing, WAIT)
        answers = list(await asyncio.wait_for(asyncio.gather(*tasks), WAIT))
        with pytest.raises(BatcherClosed):
            await batcher.submit("late")
        return answers

    with running(gate, max_batch=2) as batcher:
        answers = asyncio.run(scenario(batcher))

    assert answers == [f"answer:{w}" for w in works]
    assert gate.batches == [["w0"], ["w1", "w2"], ["w3", "w4"]]
    assert "late" not in [w for batch in gate.batches for w in batch]


def test_close_with_nothing_waiting_returns_and_refuses_submissions() -> None:
    gate = Gate()
    gate.release.set()
    batcher: WriteBatcher[str, str] = WriteBatcher(gate)

    async def scenario() -> str:
        answer = await asyncio.wait_for(batcher.submit("w0"), WAIT)
        await asyncio.wait_for(asyncio.to_thread(batcher.close), WAIT)
        with pytest.raises(BatcherClosed):
            await batcher.submit("late")
        return answer

    assert asyncio.run(scenario()) == "answer:w0"
    assert gate.batches == [["w0"]]
    batcher.close()  # closing twice is harmless


def test_a_caller_that_gives_up_does_not_stop_its_batch() -> None:
    gate = Gate()
    works = [f"w{i}" for i in range(4)]

    async def scenario(batcher: WriteBatcher[str, str]) -> list[Any]:
        tasks = await held(batcher, gate, works)
        tasks[2].cancel()  # the client went away while w2 waited
        gate.release.set()
        return list(await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), WAIT))

    with running(gate) as batcher:
        results = asyncio.run(scenario(batcher))

    assert results[0] == "answer:w0"
    assert isinstance(results[2], asyncio.CancelledError)
    assert [results[1], results[3]] == ["answer:w1", "answer:w3"]
    # Its work was served all the same: a write, once submitted, is carried out.
    assert gate.batches == [["w0"], ["w1", "w2", "w3"]]
