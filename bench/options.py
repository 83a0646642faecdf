"""What one benchmark run does: the full suite's defaults and the smoke preset."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ALL_TARGETS = ("strongroom-w1", "strongroom-w2", "openbao", "moto", "bare-w1", "bare-w2")


@dataclass(frozen=True)
class Options:
    targets: tuple[str, ...] = ALL_TARGETS
    workloads: tuple[str, ...] = ("get", "describe", "put", "mixed")
    connections: tuple[int, ...] = (16, 64)
    repetitions: int = 3
    duration_s: float = 10.0
    warmup_s: float = 2.0
    timeout_s: float = 5.0  # a request unanswered this long is an error
    secrets: int = 1000  # seeded in every target through its API
    # Larger Strongroom stores for GetSecretValue, bulk-seeded: (secrets, repetitions). As
    # many repetitions as at 1,000 secrets, so that the medians compare; each cell's first
    # run is reported beside its median (at the fewest connections, the run in which the
    # caches meet most of the pool's secrets for the first time).
    sizes: tuple[tuple[int, int], ...] = ((100_000, 3), (1_000_000, 3))
    size_workers: tuple[int, ...] = (1, 2)
    pool_size: int = 20_000  # pre-signed requests per read pool
    write_pool_size: int = 30_000  # per write pool (each token is sent once)
    json_path: Path = RESULTS / "latest.json"
    plot_path: Path | None = RESULTS / "latest.png"
    workdir: Path | None = None  # default: a new directory under /var/tmp (on disk)
    keep_workdir: bool = False
    # One more run of each Strongroom workload, under py-spy (not counted in the results).
    profile: bool = False
    profile_dir: Path = RESULTS / "profiles"
    smoke: bool = False


FULL = Options()

SMOKE = replace(
    FULL,
    targets=("strongroom-w1",),
    workloads=("get", "put"),
    connections=(4,),
    repetitions=1,
    duration_s=2.0,
    warmup_s=0.0,
    secrets=100,
    sizes=(),
    pool_size=500,
    write_pool_size=2000,
    json_path=RESULTS / "smoke.json",
    plot_path=None,
    smoke=True,
)
