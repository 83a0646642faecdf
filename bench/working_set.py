"""What a warm GetSecretValue costs as the number of different secrets read grows, in-process.

    .venv/bin/python -m bench.working_set DATA_DIR [--secrets 1000000] [--distinct 1000,20000]
        [--pool 20000] [--passes 3] [--stages]

``DATA_DIR`` is a stopped Strongroom data directory; with ``--secrets N`` it is first
bulk-seeded to N secrets (``bench/bulkseed.py``; a new directory is initialized); its
secrets must be the bulk seeder's, named ``secret_name(0 .. N-1)``. The
deployment is opened in this process and, for each ``--distinct`` count, a pool of
``--pool`` GetSecretValue requests over that many random secrets (of all stored) is
signed, served once cold, then ``--passes`` times warm through ``Pipeline.handle_async``
from 64 tasks on one event loop, as a worker serves them. It prints the CPU time per
request of each warm pass (the process's, audit writer thread included) and, with
``--stages``, where the event loop's CPU time goes (inclusive, per request). The first
read of a secret each day records its LastAccessedDate (a write): in a store whose secrets
were not read today, the first warm pass still reloads what those writes dropped, so
look at the later passes.

This is how the store-size gap of the benchmark was traced to the decision memo: at
20,000 different secrets, authorization went from 10 to 45 µs a request. No HTTP, no
second worker, no load generator: the differences it shows are the server's own.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

import strongroom.protocol.sigv4 as sigv4
import strongroom.secrets.repository as repo
from bench.bulkseed import bulk_seed
from bench.request_cost import signed_get
from bench.secretdata import secret_name
from strongroom.protocol.sigv4 import HttpRequest
from strongroom.server.deployment import (
    DEV_ACCESS_KEY,
    DEV_SECRET_KEY,
    Deployment,
    initialize,
    open_deployment,
)
from strongroom.store import schema

TASKS = 64  # concurrent requests on the loop, as wrk's connections to one worker
Signed = tuple[list[tuple[str, str]], bytes]  # headers and body: a request made afresh each time


def sign_pool(size: int, names: list[int], rng: random.Random) -> list[Signed]:
    pool = []
    for _ in range(size):
        request = signed_get(secret_name(rng.choice(names)), DEV_ACCESS_KEY, DEV_SECRET_KEY)
        pool.append((list(request.headers), request.body))
    return pool


async def serve(deployment: Deployment, pool: list[Signed]) -> int:
    """Serve every request of ``pool``; how many were not answered 200."""
    pipeline, requests, failed = deployment.pipeline, iter(pool), 0

    async def task() -> None:
        nonlocal failed
        for headers, body in requests:
            # A new request object each time: it remembers what was parsed of it.
            answer = await pipeline.handle_async(
                HttpRequest("POST", "/", "", headers, body), "127.0.0.1"
            )
            failed += answer.status != 200

    await asyncio.gather(*(task() for _ in range(TASKS)))
    return failed


class Stages:
    """Thread CPU time inside some of the request path's steps (inclusive)."""

    def __init__(self, deployment: Deployment) -> None:
        self.spent: collections.defaultdict[str, float] = collections.defaultdict(float)
        pipeline: Any = deployment.pipeline  # a benchmark's probe into the pipeline
        wire = pipeline._wires["secretsmanager"]
        for owner, name in [
            (pipeline, "_authenticate"),
            (sigv4, "verify"),
            (wire, "parse"),
            (pipeline._authorizer, "authorize"),
            (deployment.secrets, "_lookup"),
            (repo, "stages"),
            (repo, "version"),
            (deployment.secrets, "_open"),
            (deployment.secrets, "_check_key_use"),
            (deployment.keys, "open_sealed"),
            (wire, "serialize"),
            (pipeline, "_event"),
        ]:
            self._wrap(owner, name)

    def _wrap(self, owner: Any, name: str) -> None:
        inner: Callable[..., Any] = getattr(owner, name)
        spent, clock = self.spent, time.thread_time

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[name] += clock() - start

        object.__setattr__(owner, name, timed)  # frozen dataclasses too


async def measure(deployment: Deployment, args: argparse.Namespace, stored: int) -> None:
    rng = random.Random(args.seed)
    stages = Stages(deployment) if args.stages else None
    for distinct in args.distinct:
        names = rng.sample(range(stored), min(distinct, stored))
        pool = sign_pool(args.pool, names, rng)
        read = len({body for _, body in pool})
        started = time.process_time()
        failed = await serve(deployment, pool)
        cold = (time.process_time() - started) / len(pool) * 1e6
        warm = []
        if stages is not None:
            stages.spent.clear()
        loop_started = time.thread_time()
        for _ in range(args.passes):
            started = time.process_time()
            failed += await serve(deployment, pool)
            warm.append((time.process_time() - started) / len(pool) * 1e6)
        loop_us = (time.thread_time() - loop_started) / (len(pool) * args.passes) * 1e6
        print(
            f"{read:>9,} secrets read: cold {cold:6.1f} µs CPU/request, warm "
            + ", ".join(f"{us:.1f}" for us in warm)
            + f" (event loop {loop_us:.1f}){f', {failed} failed' if failed else ''}",
            flush=True,
        )
        if stages is not None:
            for name, seconds in sorted(stages.spent.items(), key=lambda item: -item[1]):
                print(f"    {name:16} {seconds / (len(pool) * args.passes) * 1e6:7.1f} µs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--secrets", type=int, default=None, help="bulk-seed to this many first")
    parser.add_argument(
        "--distinct",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[1000, 20000],
        help="how many different secrets each pool reads, e.g. 1000,20000",
    )
    parser.add_argument("--pool", type=int, default=20_000, help="requests per pool")
    parser.add_argument("--passes", type=int, default=3, help="warm passes per pool")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stages", action="store_true", help="where the loop's time goes")
    args = parser.parse_args(argv)
    if args.secrets is not None:
        if not args.data_dir.exists():
            initialize(args.data_dir, dev=True)
        report = bulk_seed(args.data_dir, args.secrets)
        print(
            f"seeded: {report.total:,} secrets ({report.added:,} added in {report.seconds:.0f} s)"
        )
    deployment = open_deployment(args.data_dir)
    try:
        with deployment.store.read() as conn:
            stored = conn.execute(select(func.count()).select_from(schema.secrets)).scalar_one()
        asyncio.run(measure(deployment, args, int(stored)))
    finally:
        deployment.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
