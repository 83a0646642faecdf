"""Pools of pre-signed requests, written where wrk's Lua script reads them.

A SigV4 signature is accepted for 15 minutes, so a pool is signed again once it is
older than ``MAX_AGE_S``. A Secrets Manager write pool is consumed: each PutSecretValue
carries a unique ClientRequestToken, and a token sent twice would be an idempotent
replay, not a write (OpenBao's KV writes have no token: every one is a new version).
The next run starts where the previous one stopped, and a pool that cannot
cover another run is replaced by a newly signed one.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.rawhttp import RequestFactory
from bench.workloads import Workload, build_pool
from bench.wrk import write_pool

MAX_AGE_S = 600.0


@dataclass
class Pool:
    requests: list[bytes]
    signed_at: float = field(default_factory=time.monotonic)
    cursor: int = 0  # write pools: the first request not sent yet
    consumable: bool = False  # its requests are spent once sent (unique write tokens)

    @property
    def age_s(self) -> float:
        return time.monotonic() - self.signed_at

    @property
    def unused(self) -> int:
        return len(self.requests) - self.cursor


class PoolMaker:
    """Signs pools on demand and keeps them fresh, one per (target, workload)."""

    def __init__(self, directory: Path, seed: int = 20) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._rng = random.Random(seed)
        self._pools: dict[tuple[str, str], Pool] = {}
        self.signing_s = 0.0  # total time spent signing

    def file(
        self,
        key: str,
        factory: RequestFactory,
        workload: Workload,
        names: Sequence[str],
        size: int,
        expected: int = 0,
    ) -> tuple[Path, int | None]:
        """A pool file for the next run of ``workload`` against target ``key`` and how
        many of its requests are unused (None: they can be sent again); for a write
        workload, at least ``expected`` are: its pool grows beyond ``size`` if need be."""
        pool = self._pools.get((key, workload.key))
        consumable = workload.writes and factory.unique_writes
        if consumable:
            size = max(size, expected)  # a faster server than the pool was sized for
        stale = pool is None or pool.age_s > MAX_AGE_S
        if pool is not None and consumable and pool.unused < expected:
            stale = True
        if stale:
            started = time.perf_counter()
            pool = Pool(build_pool(factory, workload, names, size, self._rng))
            self.signing_s += time.perf_counter() - started
            self._pools[key, workload.key] = pool
        assert pool is not None
        pool.consumable = consumable
        requests = pool.requests[pool.cursor :] + pool.requests[: pool.cursor]
        path = write_pool(self.directory / f"{key}-{workload.key}.pool", requests)
        return path, pool.unused if consumable else None

    def consumed(self, key: str, workload: Workload, sent: int) -> None:
        """``sent`` requests of the current pool went out (writes: never to be reused)."""
        pool = self._pools.get((key, workload.key))
        if pool is not None and pool.consumable:
            pool.cursor = min(len(pool.requests), pool.cursor + sent)
