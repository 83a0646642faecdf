"""What authorization and auditing add to a GetSecretValue, measured through the real
pipeline.

    .venv/bin/python bench/request_cost.py [--requests 2000] [--warmup 200] [--threads 16]

A fresh dev deployment is opened in this process (``open_deployment``: SQLite store,
envelope encryption, the durable audit log) and GetSecretValue requests, SigV4-signed by
botocore's signer, are handed to ``deployment.pipeline.handle`` one after the other (no
HTTP server, no network). Two callers:

- ``admin``: the bootstrap user, AdministratorAccess attached; the secret has no policy.
- ``user``: an IAM user with 3 identity policies (two inline, one customer managed), on
  a secret with a resource policy naming it.

For each, the mean wall time per request of ``Pipeline.handle`` (everything: signature,
parsing, authorization, decryption, the audit record's fsync, serialization) and of the
authorizer's calls (two a request: ``secretsmanager:GetSecretValue`` on the secret, and
``kms:Decrypt`` on its key on the caller's behalf), split into the policy engine's
``evaluate`` and the rest (reading IAM's generation counter, the per-principal policy
cache, building the request context). Signing happens outside the timed region.

The audit column is the time a request waits for its records to be durable; cpu and sys
are the process's user and kernel CPU time per request (``getrusage``; the audit writer
thread's work included: serializing, hashing, the sync call); rec/req and sync/req are
the audit records a request leaves (its own and the KMS Decrypt made on its behalf) and
the durable writes (group commits) they took. Then the
same GetSecretValue load runs from ``--threads`` threads, once with the real audit log
(group commit: one fsync serves every waiting request) and once with the audit step
replaced by a no-op, to give the throughput cost of durable auditing. The no-op exists
only in this benchmark; the server has no way to turn auditing off.

Not part of the test suite. Results vary with the machine and the disk (the audit fsync
dominates the total): compare the authorization column with the total on the same run.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import strongroom.policy.authorizer as authorizer_module
from strongroom.iam.credentials import admin_arn
from strongroom.iam.service import IdentityService
from strongroom.protocol.sigv4 import HttpRequest
from strongroom.server.deployment import (
    DEV_ACCESS_KEY,
    DEV_ACCOUNT,
    DEV_SECRET_KEY,
    initialize,
    open_deployment,
)
from strongroom.types import Caller

REGION = "us-east-1"
ADMIN = "admin (AdministratorAccess)"
USER = "user (3 identity policies + resource policy)"
HOST = "127.0.0.1:8420"
SECRET_PREFIX = f"arn:aws:secretsmanager:{REGION}:{DEV_ACCOUNT}:secret:"


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


# The user's three identity policies: what a least-privilege application user carries.
READ_APP = _policy(
    {
        "Sid": "ReadAppSecrets",
        "Effect": "Allow",
        "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
        "Resource": f"{SECRET_PREFIX}bench/app/*",
    }
)
LIST = _policy(
    {"Effect": "Allow", "Action": ["secretsmanager:ListSecrets"], "Resource": "*"},
    {
        "Sid": "NoDeletes",
        "Effect": "Deny",
        "Action": ["secretsmanager:DeleteSecret", "secretsmanager:PutResourcePolicy"],
        "Resource": "*",
    },
)
TAGGED = _policy(
    {
        "Sid": "TeamSecrets",
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:ResourceTag/team": "payments"}},
    },
    {
        "Sid": "DecryptViaSecretsManager",
        "Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}},
    },
)


def _resource_policy(user_arn: str) -> str:
    return _policy(
        {
            "Sid": "AppReads",
            "Effect": "Allow",
            "Principal": {"AWS": user_arn},
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "*",
        },
        {
            "Sid": "NobodyElseOutsideTheAccount",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "secretsmanager:*",
            "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:PrincipalAccount": DEV_ACCOUNT}},
        },
    )


@dataclass
class Timer:
    """Accumulates the time spent inside wrapped calls."""

    total: float = 0.0
    calls: int = 0

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.total += time.perf_counter() - start
                self.calls += 1

        return timed

    def reset(self) -> None:
        self.total, self.calls = 0.0, 0


@dataclass
class Result:
    caller: str
    requests: int
    handle: list[float] = field(default_factory=list)  # seconds, per request
    authorize: list[float] = field(default_factory=list)
    evaluate: list[float] = field(default_factory=list)
    generation: list[float] = field(default_factory=list)
    audit: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # process user CPU seconds, per request
    system: list[float] = field(default_factory=list)  # ... and kernel (the sync's share)
    authorize_calls: int = 0
    records: int = 0  # audit records written during the measured requests
    batches: int = 0  # ... and the durable writes (group commits) they took

    def row(self) -> dict[str, float | int | str]:
        total = statistics.fmean(self.handle) * 1e6
        authz = statistics.fmean(self.authorize) * 1e6
        engine = statistics.fmean(self.evaluate) * 1e6
        return {
            "caller": self.caller,
            "requests": self.requests,
            "total_us": round(total, 1),
            "total_median_us": round(statistics.median(self.handle) * 1e6, 1),
            "authz_us": round(authz, 1),
            "authz_calls_per_request": round(self.authorize_calls / self.requests, 2),
            "evaluate_us": round(engine, 1),
            "iam_generation_read_us": round(statistics.fmean(self.generation) * 1e6, 1),
            "authz_share_pct": round(100 * authz / total, 2),
            "audit_us": round(statistics.fmean(self.audit) * 1e6, 1),
            "audit_share_pct": round(100 * statistics.fmean(self.audit) * 1e6 / total, 2),
            "cpu_us": round(statistics.fmean(self.cpu) * 1e6, 1),
            "system_us": round(statistics.fmean(self.system) * 1e6, 1),
            "records_per_request": round(self.records / self.requests, 2),
            "durable_writes_per_request": round(self.batches / self.requests, 2),
        }


def signed_get(secret_id: str, key: str, secret: str) -> HttpRequest:
    """A GetSecretValue request as botocore signs it, in the pipeline's request type."""
    return signed("GetSecretValue", {"SecretId": secret_id}, key, secret)


def signed(operation: str, document: dict[str, Any], key: str, secret: str) -> HttpRequest:
    """A Secrets Manager request as botocore signs it, in the pipeline's request type."""
    body = json.dumps(document).encode()
    request = AWSRequest(
        method="POST",
        url=f"http://{HOST}/",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"secretsmanager.{operation}",
        },
    )
    SigV4Auth(Credentials(key, secret), "secretsmanager", REGION).add_auth(request)
    prepared = request.prepare()
    headers = [("Host", HOST)] + [
        (name, value if isinstance(value, str) else value.decode("latin-1"))
        for name, value in prepared.headers.items()
    ]
    return HttpRequest("POST", "/", "", headers, body)


@dataclass
class Timers:
    authorize: Timer
    engine: Timer
    generation: Timer
    audit: Timer

    def reset(self) -> None:
        for timer in (self.authorize, self.engine, self.generation, self.audit):
            timer.reset()


def run(
    handle: Callable[[HttpRequest, str], Any],
    caller: str,
    secret_id: str,
    credentials: tuple[str, str],
    args: argparse.Namespace,
    timers: Timers,
    log: Any,
) -> Result:
    result = Result(caller, args.requests)
    for number in range(args.warmup + args.requests):
        if number == args.warmup:
            records, batches = log.records_written, log.batches_written
        request = signed_get(secret_id, *credentials)
        timers.reset()
        # The whole process (the audit writer thread's work too): user CPU is the Python
        # work a request costs; system CPU mostly the sync, which varies with the disk.
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        response = handle(request, "127.0.0.1")
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        if response.status != 200:
            raise SystemExit(f"{caller}: GetSecretValue answered {response.status}")
        if number >= args.warmup:
            result.handle.append(elapsed)
            result.authorize.append(timers.authorize.total)
            result.evaluate.append(timers.engine.total)
            result.generation.append(timers.generation.total)
            result.audit.append(timers.audit.total)
            result.cpu.append(after.ru_utime - before.ru_utime)
            result.system.append(after.ru_stime - before.ru_stime)
            result.authorize_calls += timers.authorize.calls
    result.records = log.records_written - records
    result.batches = log.batches_written - batches
    return result


def throughput(
    handle: Callable[[HttpRequest, str], Any],
    secret_id: str,
    credentials: tuple[str, str],
    args: argparse.Namespace,
) -> float:
    """Requests per second with ``args.threads`` threads sharing ``args.requests``."""
    requests = [signed_get(secret_id, *credentials) for _ in range(args.requests)]
    failures: list[int] = []

    def serve(share: list[HttpRequest]) -> None:
        for request in share:
            status = handle(request, "127.0.0.1").status
            if status != 200:
                failures.append(status)

    shares = [requests[i :: args.threads] for i in range(args.threads)]
    workers = [threading.Thread(target=serve, args=(share,)) for share in shares]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise SystemExit(f"throughput run: {len(failures)} requests failed")
    return len(requests) / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--data-dir", type=Path, default=None, help="parent of the data dir")
    parser.add_argument("--threads", type=int, default=16, help="for the throughput runs")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(dir=args.data_dir) as tmp:
        data_dir = Path(tmp) / "data"
        initialize(data_dir, dev=True)
        deployment = open_deployment(data_dir)
        try:
            admin = Caller(DEV_ACCOUNT, REGION, admin_arn(DEV_ACCOUNT))
            identities = IdentityService(
                deployment.store, deployment.barrier, deployment.clock, deployment.credentials
            )
            # The user, its three identity policies and its own access key.
            user_arn = identities.create_user(admin, {"UserName": "bench-app"})["User"]["Arn"]
            identities.put_inline(
                "user",
                admin,
                {"UserName": "bench-app", "PolicyName": "read-app", "PolicyDocument": READ_APP},
            )
            identities.put_inline(
                "user",
                admin,
                {"UserName": "bench-app", "PolicyName": "list", "PolicyDocument": LIST},
            )
            managed = identities.create_policy(
                admin, {"PolicyName": "team-payments", "PolicyDocument": TAGGED}
            )["Policy"]["Arn"]
            identities.attach("user", admin, {"UserName": "bench-app", "PolicyArn": managed})
            key = identities.create_access_key(admin, {"UserName": "bench-app"})["AccessKey"]
            # The two secrets: one plain, one tagged with a resource policy naming the user.
            plain = deployment.secrets.create_secret(
                admin,
                {
                    "Name": "bench/admin/db",
                    "SecretString": "x" * 64,
                    "ClientRequestToken": "a" * 32,
                },
            )["ARN"]
            guarded = deployment.secrets.create_secret(
                admin,
                {
                    "Name": "bench/app/db",
                    "SecretString": "y" * 64,
                    "ClientRequestToken": "b" * 32,
                    "Tags": [{"Key": "team", "Value": "payments"}],
                },
            )["ARN"]
            deployment.secrets.put_resource_policy(
                admin, {"SecretId": guarded, "ResourcePolicy": _resource_policy(user_arn)}
            )

            # Time the authorizer's calls, and the engine's evaluate inside them.
            authorize, engine, generation, audit = Timer(), Timer(), Timer(), Timer()
            pipeline = deployment.pipeline
            authorizer: Any = pipeline._authorizer  # a benchmark's probe into the pipeline
            authorizer.authorize = authorize.wrap(authorizer.authorize)
            authorizer._identities.generation = generation.wrap(authorizer._identities.generation)
            authorizer_module.evaluate = engine.wrap(authorizer_module.evaluate)  # type: ignore[assignment]

            sink: Any = pipeline._audit
            # Every durable write goes through write_many (write is write_many of one).
            real_write = sink.write_many
            sink.write_many = audit.wrap(real_write)
            timers = Timers(authorize, engine, generation, audit)
            admin_key = (DEV_ACCESS_KEY, DEV_SECRET_KEY)
            user_key = (key["AccessKeyId"], key["SecretAccessKey"])
            rows = [
                run(pipeline.handle, ADMIN, plain, admin_key, args, timers, sink).row(),
                run(pipeline.handle, USER, guarded, user_key, args, timers, sink).row(),
            ]
            sink.write_many = real_write
            audited = throughput(pipeline.handle, plain, admin_key, args)
            sink.write_many = lambda _events: None  # this benchmark's no-op: durability off
            unaudited = throughput(pipeline.handle, plain, admin_key, args)
            sink.write_many = real_write
            rows.append(
                {
                    "caller": f"admin, {args.threads} threads: requests/s audited vs no-op",
                    "requests": args.requests,
                    "audited_rps": round(audited, 1),
                    "unaudited_rps": round(unaudited, 1),
                    "audit_throughput_cost_pct": round(100 * (1 - audited / unaudited), 1),
                }
            )
        finally:
            deployment.close()

    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"GetSecretValue through Pipeline.handle, {args.requests} requests each (mean µs)")
    columns = (
        "total",
        "median",
        "authz",
        "calls",
        "engine",
        "iam-gen",
        "share",
        "audit",
        "share",
        "cpu",
        "sys",
        "rec/req",
        "sync/req",
    )
    print(f"{'caller':46}" + "".join(f"{c:>9}" for c in columns))
    for row in rows[:-1]:
        values = (
            row["total_us"],
            row["total_median_us"],
            row["authz_us"],
            row["authz_calls_per_request"],
            row["evaluate_us"],
            row["iam_generation_read_us"],
            f"{row['authz_share_pct']}%",
            row["audit_us"],
            f"{row['audit_share_pct']}%",
            row["cpu_us"],
            row["system_us"],
            row["records_per_request"],
            row["durable_writes_per_request"],
        )
        print(f"{row['caller']:46}" + "".join(f"{v:>9}" for v in values))
    last = rows[-1]
    print(
        f"{last['caller']}: {last['audited_rps']} vs {last['unaudited_rps']} "
        f"(durable auditing costs {last['audit_throughput_cost_pct']}% of throughput)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
