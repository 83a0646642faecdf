"""Measurements, their medians, the ratios between targets and the issue's targets."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

READS = "get"
PEERS = ("openbao", "moto")


@dataclass(frozen=True)
class RunRecord:
    """One wrk run against one target."""

    target: str
    label: str
    peer: str
    workload: str
    secrets: int
    connections: int
    repetition: int
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int  # non-2xx/3xx responses plus socket errors and timeouts
    error_kinds: dict[str, int]
    cpu_s: float  # user + system CPU of the server's process tree during the run
    cpu_us_per_request: float
    rss_mib: float  # resident memory of the server's process tree after the run
    wrk_cpu_s: float = 0.0  # the load generator's CPU
    # CPU of user-space processes other than the server and wrk, as % of all cores: other
    # load on the machine (kernel threads, e.g. the filesystem journal, are not counted)
    other_cpu_pct: float = 0.0
    workers: int | None = None
    pool_wrapped: bool = False  # a write pool ran out: some tokens were replayed


@dataclass(frozen=True)
class Summary:
    """The medians of a cell's repetitions."""

    target: str
    label: str
    peer: str
    workload: str
    secrets: int
    connections: int
    runs: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # summed over the runs
    cpu_us_per_request: float
    rss_mib: float  # the largest seen
    other_cpu_pct: float = 0.0  # the largest seen: other load on the machine
    rps_runs: list[float] = field(default_factory=list)


def summarise(records: Iterable[RunRecord]) -> list[Summary]:
    cells: dict[tuple[str, str, int, int], list[RunRecord]] = {}
    for record in records:
        cells.setdefault(
            (record.target, record.workload, record.secrets, record.connections), []
        ).append(record)
    summaries = []
    for (target, workload, secrets, connections), runs in cells.items():
        first = runs[0]
        summaries.append(
            Summary(
                target=target,
                label=first.label,
                peer=first.peer,
                workload=workload,
                secrets=secrets,
                connections=connections,
                runs=len(runs),
                rps=statistics.median(r.rps for r in runs),
                p50_ms=statistics.median(r.p50_ms for r in runs),
                p99_ms=statistics.median(r.p99_ms for r in runs),
                errors=sum(r.errors for r in runs),
                cpu_us_per_request=statistics.median(r.cpu_us_per_request for r in runs),
                rss_mib=max(r.rss_mib for r in runs),
                other_cpu_pct=max(r.other_cpu_pct for r in runs),
                rps_runs=[round(r.rps, 1) for r in runs],
            )
        )
    return summaries


def find(
    summaries: Sequence[Summary], target: str, workload: str, connections: int, secrets: int
) -> Summary | None:
    for s in summaries:
        if (s.target, s.workload, s.connections, s.secrets) == (
            target,
            workload,
            connections,
            secrets,
        ):
            return s
    return None


def _first_of_peer(summaries: Sequence[Summary], peer: str) -> str | None:
    return next((s.target for s in summaries if s.peer == peer), None)


@dataclass(frozen=True)
class Ratio:
    strongroom: str
    versus: str
    workload: str
    connections: int
    throughput: float  # Strongroom's requests/s over the other's
    p99: float  # Strongroom's p99 over the other's (below 1: Strongroom's is lower)


def ratios(summaries: Sequence[Summary], secrets: int) -> list[Ratio]:
    """Each Strongroom configuration against OpenBao and moto on the same workload, and
    against the bare ASGI app with as many workers (its one run is its ceiling)."""
    found = []
    for mine in summaries:
        if mine.peer != "strongroom" or mine.secrets != secrets:
            continue
        workers = mine.target.rsplit("-w", 1)[-1]
        others = [_first_of_peer(summaries, peer) for peer in PEERS]
        others.append(f"bare-w{workers}")
        for other_key in others:
            if other_key is None:
                continue
            workload = READS if other_key.startswith("bare-") else mine.workload
            other = find(summaries, other_key, workload, mine.connections, secrets)
            if other is None or other.rps <= 0:
                continue
            found.append(
                Ratio(
                    strongroom=mine.target,
                    versus=other_key,
                    workload=mine.workload,
                    connections=mine.connections,
                    throughput=mine.rps / other.rps,
                    p99=mine.p99_ms / other.p99_ms if other.p99_ms > 0 else float("inf"),
                )
            )
    return found


@dataclass(frozen=True)
class Check:
    """One of issue 6's targets, for one Strongroom configuration."""

    strongroom: str
    goal: str
    measured: str
    passed: bool | None  # None: not measured in this run


def _times(mine: float, other: float) -> str:
    return f"{mine / other:.2f}x" if other > 0 else "n/a"


def checks(
    summaries: Sequence[Summary], secrets: int, largest: int | None, connections: int = 64
) -> list[Check]:
    found = []
    openbao = _first_of_peer(summaries, "openbao")
    moto = _first_of_peer(summaries, "moto")
    for target in dict.fromkeys(s.target for s in summaries if s.peer == "strongroom"):
        mine = find(summaries, target, READS, connections, secrets)
        bao = find(summaries, openbao, READS, connections, secrets) if openbao else None
        mo = find(summaries, moto, READS, connections, secrets) if moto else None
        big = find(summaries, target, READS, connections, largest) if largest else None
        put = find(summaries, target, "put", connections, secrets)

        def check(goal: str, ok: bool | None, measured: str, target: str = target) -> None:
            found.append(Check(target, goal, measured, ok))

        if mine and bao:
            check(
                f"GetSecretValue @{connections} >= 1.0x OpenBao",
                mine.rps >= bao.rps and mine.errors == 0,
                f"{_times(mine.rps, bao.rps)} ({mine.rps:,.0f} vs {bao.rps:,.0f} req/s)",
            )
            check(
                f"p99 @{connections} <= OpenBao's",
                mine.p99_ms <= bao.p99_ms and mine.rps > 0,
                f"{mine.p99_ms:.1f} vs {bao.p99_ms:.1f} ms",
            )
        if mine and mo:
            check(
                f"GetSecretValue @{connections} >= 15x moto",
                mine.rps >= 15 * mo.rps and mine.errors == 0,
                f"{_times(mine.rps, mo.rps)} ({mine.rps:,.0f} vs {mo.rps:,.0f} req/s)",
            )
        if mine and big:
            check(
                f"{largest:,} secrets within 10% of {secrets:,}",
                big.rps >= 0.9 * mine.rps and big.errors == 0 and big.rps > 0,
                f"{_times(big.rps, mine.rps)} ({big.rps:,.0f} vs {mine.rps:,.0f} req/s)",
            )
            same = find(summaries, target, "get-same", connections, largest)
            if same:
                check(
                    f"(not a goal) {largest:,} secrets stored, reading the same "
                    f"{secrets:,} as the base runs",
                    None,
                    f"{_times(same.rps, mine.rps)} ({same.rps:,.0f} vs {mine.rps:,.0f} req/s)",
                )
            if len(big.rps_runs) > 1:
                first = big.rps_runs[0]
                check(
                    f"(not a goal) {largest:,} secrets, the first of the cell's runs",
                    None,
                    f"{_times(first, mine.rps)} ({first:,.0f} vs {mine.rps:,.0f} req/s)",
                )
        if put:
            check(
                f"PutSecretValue @{connections} >= 1,000 durable writes/s",
                put.rps >= 1000 and put.errors == 0,
                f"{put.rps:,.0f} req/s, {put.errors} errors",
            )
    return found
