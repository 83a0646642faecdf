"""What the load consists of: which operation each request of a pool is, on which secret."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from bench.rawhttp import RequestFactory


@dataclass(frozen=True)
class Workload:
    key: str  # as named on the command line and in the JSON
    title: str
    pattern: tuple[str, ...]  # operations, repeated: ("get",) * 19 + ("put",) is 95/5

    @property
    def writes(self) -> bool:
        return "put" in self.pattern

    def operation(self, position: int) -> str:
        return self.pattern[position % len(self.pattern)]


WORKLOADS = {
    w.key: w
    for w in (
        Workload("get", "GetSecretValue", ("get",)),
        Workload("describe", "DescribeSecret", ("describe",)),
        Workload("put", "PutSecretValue", ("put",)),
        Workload("mixed", "Mixed 95% get / 5% put", ("get",) * 19 + ("put",)),
        # Store-size runs only: reads of the same secrets as at the base size (the first
        # --secrets names), so that only the number of secrets stored differs.
        Workload("get-same", "GetSecretValue, same secrets as the base size", ("get",)),
    )
}


def build_pool(
    factory: RequestFactory,
    workload: Workload,
    names: Sequence[str],
    size: int,
    rng: random.Random,
) -> list[bytes]:
    """``size`` requests: reads pick a random secret, writes go round-robin over all of
    them so no secret collects many versions."""
    pool: list[bytes] = []
    writes = rng.randrange(len(names))
    for position in range(size):
        operation = workload.operation(position)
        if operation == "put":
            name = names[writes % len(names)]
            writes += 1
        else:
            name = names[rng.randrange(len(names))]
        pool.append(factory.request(operation, name))
    return pool
