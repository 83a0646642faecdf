"""Group-committed writes through a real server with two worker processes: concurrent
PutSecretValue calls all land (every version, the last one current), each is audited
exactly once, and a denied write among them is refused, audited once and changes nothing
(tests/unit/test_write_batching.py has the batch semantics in process)."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from strongroom.audit.integrity import INTEGRITY
from tests.audit import audit_records
from tests.aws import Client, random_region
from tests.server import ServerProcess

THREADS = 32


@dataclass(frozen=True)
class Deployed:
    server: ServerProcess
    data_dir: Path


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """A server with two workers over a data directory (its audit log is read here)."""
    base = tmp_path_factory.mktemp("batching")
    data_dir = base / "data"
    server = ServerProcess(
        ["--dev", "--data-dir", str(data_dir), "--workers", "2"], base / "server.log"
    ).start()
    try:
        deadline = time.monotonic() + 20
        pattern = r"Started server process \[(\d+)\]"
        while len(set(re.findall(pattern, server.log()))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(set(re.findall(pattern, server.log()))) == 2, server.log()
        yield Deployed(server, data_dir)
    finally:
        server.stop()


class Clients:
    """One boto3 client per thread (a client is not meant to be shared across threads)."""

    def __init__(self, make: Callable[[], Client]) -> None:
        self._make = make
        self._local = threading.local()

    def get(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._make()
        return client


@dataclass(frozen=True)
class Put:
    secret: str
    token: str
    value: str


def put_records(data_dir: Path, request_ids: set[str]) -> list[dict[str, Any]]:
    return [r for r in audit_records(data_dir) if r.get("requestID") in request_ids]


def versions(client: Client, secret: str) -> dict[str, list[str]]:
    listed = client.list_secret_version_ids(SecretId=secret, IncludeDeprecated=True)
    return {v["VersionId"]: sorted(v.get("VersionStages") or []) for v in listed["Versions"]}


def test_concurrent_puts_across_workers_all_land_and_are_audited_once(
    deployed: Deployed,
) -> None:
    region = random_region("wb")
    admin = deployed.server.client(region=region)
    secrets = [f"batch/{uuid.uuid4().hex[:8]}-{i}" for i in range(20)]
    first = {s: admin.create_secret(Name=s, SecretString="v0")["VersionId"] for s in secrets}
    # 200 calls, 10 a secret (11 versions each, far under the cap of 100). The first nine
    # rounds all run at once; the tenth only once they are done, so that each secret's
    # last version is known.
    early = [Put(s, str(uuid.uuid4()), f"{s}#{n}") for n in range(9) for s in secrets]
    last = {s: Put(s, str(uuid.uuid4()), f"{s}#last") for s in secrets}
    clients = Clients(lambda: deployed.server.client(region=region))

    def call(put: Put) -> str:
        answer = clients.get().put_secret_value(
            SecretId=put.secret, SecretString=put.value, ClientRequestToken=put.token
        )
        assert answer["VersionId"] == put.token
        assert answer["VersionStages"] == ["AWSCURRENT"]
        request_id: str = answer["ResponseMetadata"]["RequestId"]
        return request_id

    with ThreadPoolExecutor(THREADS) as pool:
        request_ids = list(pool.map(call, early))
        request_ids += list(pool.map(call, last.values()))

    assert len(request_ids) == 200 and len(set(request_ids)) == 200
    for secret in secrets:
        mine = [p for p in early if p.secret == secret]
        found = versions(admin, secret)
        # Every call made its version; none was lost or doubled.
        assert set(found) == {first[secret], last[secret].token} | {p.token for p in mine}
        assert found[last[secret].token] == ["AWSCURRENT"]
        labelled = {v: stages for v, stages in found.items() if stages}
        assert sorted(labelled.values()) == [["AWSCURRENT"], ["AWSPREVIOUS"]]
        previous = next(v for v, stages in labelled.items() if stages == ["AWSPREVIOUS"])
        assert previous in {p.token for p in mine}  # the last of the nine rounds to commit
        got = admin.get_secret_value(SecretId=secret)
        assert (got["VersionId"], got["SecretString"]) == (
            last[secret].token,
            last[secret].value,
        )
    # Each version holds the value its own call sent.
    sample = early[::17]
    for put in sample:
        got = admin.get_secret_value(SecretId=put.secret, VersionId=put.token)
        assert got["SecretString"] == put.value

    records = put_records(deployed.data_dir, set(request_ids))
    assert Counter(r["requestID"] for r in records) == Counter(request_ids)
    assert all(r["eventName"] == "PutSecretValue" and "errorCode" not in r for r in records)
    # Both workers served some of them: each writes the records of its own requests.
    writers = Counter(r[INTEGRITY]["writer"] for r in records)
    assert len(writers) == 2, writers


def test_a_denied_write_among_allowed_ones_is_refused_audited_once_and_changes_nothing(
    deployed: Deployed,
) -> None:
    region = random_region("wd")
    server = deployed.server
    admin = server.client(region=region)
    iam = server.client("iam")
    secret = f"batch/{uuid.uuid4().hex[:8]}"
    first = admin.create_secret(Name=secret, SecretString="v0")["VersionId"]
    user = f"reader-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user,
        PolicyName="read",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": [
                            "secretsmanager:GetSecretValue",
                            "secretsmanager:DescribeSecret",
                        ],
                        "Resource": "*",
                    }
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    credentials = {
        "aws_access_key_id": key["AccessKeyId"],
        "aws_secret_access_key": key["SecretAccessKey"],
    }
    reader = server.client(region=region, **credentials)
    assert reader.get_secret_value(SecretId=secret)["SecretString"] == "v0"
    admins = Clients(lambda: server.client(region=region))
    readers = Clients(lambda: server.client(region=region, **credentials))
    allowed = [Put(secret, str(uuid.uuid4()), f"allowed-{n}") for n in range(40)]
    denied = [Put(secret, str(uuid.uuid4()), f"denied-{n}") for n in range(8)]
    # Interleaved: every sixth call is the reader's.
    calls = [(p, True) for p in allowed]
    for n, p in enumerate(denied):
        calls.insert(n * 6 + 5, (p, False))

    def call(item: tuple[Put, bool]) -> tuple[Put, bool, str, str | None]:
        put, is_admin = item
        client = (admins if is_admin else readers).get()
        try:
            answer = client.put_secret_value(
                SecretId=put.secret, SecretString=put.value, ClientRequestToken=put.token
            )
        except ClientError as error:
            refused = error.response
            return put, is_admin, refused["ResponseMetadata"]["RequestId"], refused["Error"]["Code"]
        return put, is_admin, answer["ResponseMetadata"]["RequestId"], None

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(call, calls))

    assert [(is_admin, code) for _, is_admin, _, code in results] == [
        (is_admin, None if is_admin else "AccessDeniedException") for _, is_admin in calls
    ]
    found = versions(admin, secret)
    assert set(found) == {first} | {p.token for p in allowed}  # no denied token is a version
    current = admin.get_secret_value(SecretId=secret)
    assert current["VersionId"] in {p.token for p in allowed}
    assert current["SecretString"] == next(
        p.value for p in allowed if p.token == current["VersionId"]
    )

    by_id = {request_id: (put, is_admin) for put, is_admin, request_id, _ in results}
    assert len(by_id) == len(calls)
    records = put_records(deployed.data_dir, set(by_id))
    assert Counter(r["requestID"] for r in records) == Counter(list(by_id))  # each once
    for record in records:
        _, is_admin = by_id[record["requestID"]]
        assert record["eventName"] == "PutSecretValue"
        if is_admin:
            assert "errorCode" not in record
        else:
            assert record["errorCode"] == "AccessDeniedException"
            assert record["userIdentity"]["userName"] == user
