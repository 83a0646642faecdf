"""The benchmark's plan, carried out: targets in turn, workloads, connection counts and
repetitions, then the larger Strongroom stores."""

from __future__ import annotations

import datetime
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import machine, procs, profile, wrk
from bench.bulkseed import bulk_seed
from bench.options import Options
from bench.pools import PoolMaker
from bench.results import RunRecord
from bench.secretdata import secret_name
from bench.targets import BareAsgi, Moto, OpenBao, Strongroom, Target, prepare_strongroom_store
from bench.workloads import WORKLOADS, Workload

WORKDIR_BASE = "/var/tmp"  # on disk, as a production data directory would be  # noqa: S108


@dataclass
class BenchResult:
    options: Options
    machine: dict[str, Any]
    started: str
    finished: str = ""
    records: list[RunRecord] = field(default_factory=list)
    seeding: dict[str, Any] = field(default_factory=dict)
    sizes: list[dict[str, Any]] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _disk_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


class Runner:
    def __init__(self, options: Options, console: Console) -> None:
        self.options = options
        self.console = console
        self.result = BenchResult(options, machine.describe(), _now())
        self._last_requests: dict[tuple[str, str], int] = {}

    def run(self) -> BenchResult:
        options = self.options
        started = time.perf_counter()
        workdir = options.workdir or Path(
            tempfile.mkdtemp(prefix="strongroom-bench-", dir=WORKDIR_BASE)
        )
        workdir.mkdir(parents=True, exist_ok=True)
        self.pools = PoolMaker(workdir / "pools")
        names = [secret_name(i) for i in range(options.secrets)]
        try:
            store = workdir / "store-base"
            wants_strongroom = any(k.startswith("strongroom-") for k in options.targets)
            if wants_strongroom or options.sizes:
                self._say(f"seeding {options.secrets:,} secrets into Strongroom through its API")
                self.result.seeding["strongroom"] = prepare_strongroom_store(
                    store, names, workdir / "logs" / "strongroom-seed.log"
                )
            for key in options.targets:
                self._guarded(
                    key, self._bench_target, self._target(key, workdir, names, store), names
                )
            if options.sizes and options.size_workers:
                self._guarded("store sizes", self._bench_sizes, workdir, store)
        finally:
            self.result.finished = _now()
            self.result.wall_s = time.perf_counter() - started
            self.result.seeding["signing_s"] = round(self.pools.signing_s, 1)
            self.result.machine["load_average_at_end"] = machine.load_average()
            if options.keep_workdir or options.workdir:
                self._say(f"work directory kept: {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
        return self.result

    def _guarded(self, what: str, step: Callable[..., None], *args: Any) -> None:
        """Run one target's (or the sizes') part; a failure is noted and the rest goes on."""
        try:
            step(*args)
        except Exception as problem:  # a peer that will not start must not lose the others
            self.result.notes.append(f"{what} failed: {str(problem)[:500]}")
            self._say(f"[red]{what} failed:[/] {problem}")

    # Targets ------------------------------------------------------------------------

    @staticmethod
    def _target(key: str, workdir: Path, names: list[str], store: Path) -> Target:
        if key.startswith("strongroom-w"):
            return Strongroom(workdir, names, store, int(key.removeprefix("strongroom-w")))
        if key.startswith("bare-w"):
            return BareAsgi(workdir, names, int(key.removeprefix("bare-w")))
        if key == "openbao":
            return OpenBao(workdir, names)
        if key == "moto":
            return Moto(workdir, names)
        raise ValueError(f"unknown target {key!r}")

    def _bench_target(self, target: Target, names: list[str]) -> None:
        options = self.options
        self._say(f"[bold]{target.label}[/]: starting")
        target.start()
        try:
            if target.seed_seconds is not None:
                self.result.seeding[target.key] = {"create_s": round(target.seed_seconds, 2)}
            self._warm(target, target.key, names)
            for key in options.workloads:
                if key not in target.workloads:
                    continue
                workload = WORKLOADS[key]
                for connections in options.connections:
                    for repetition in range(options.repetitions):
                        if workload.writes and target.fresh_state_for_writes and target.wrote:
                            target.reset()
                            self._warm(target, target.key, names)
                        target.wrote = target.wrote or workload.writes
                        self._measure(target, target.key, workload, names, connections, repetition)
                if options.profile and target.peer == "strongroom":
                    self._profile(target, workload, names)
        finally:
            target.stop()

    def _bench_sizes(self, workdir: Path, base: Path) -> None:
        """GetSecretValue as Strongroom's store grows; bulk-seeded, served in place."""
        options = self.options
        store = workdir / "store-sizes"
        shutil.copytree(base, store)
        for size, repetitions in options.sizes:
            self._say(f"bulk-seeding Strongroom to {size:,} secrets")
            report = bulk_seed(store, size)
            self.result.sizes.append(
                {
                    "secrets": size,
                    "added": report.added,
                    "seed_s": round(report.seconds, 1),
                    "seed_per_s": round(report.per_second),
                    "disk_mib": round(_disk_mib(store), 1),
                }
            )
            self._say(
                f"  added {report.added:,} in {report.seconds:.1f}s "
                f"({report.per_second:,.0f}/s); store {_disk_mib(store):,.0f} MiB"
            )
            names = [secret_name(i) for i in range(size)]
            for workers in options.size_workers:
                target = Strongroom(workdir, names, store, workers, copy=False)
                pool_key = f"{target.key}@{size}"
                self._say(f"[bold]{target.label}[/] with {size:,} secrets: starting")
                target.start()
                try:
                    self.result.sizes[-1][f"idle_rss_mib_w{workers}"] = round(
                        procs.rss_bytes(target.pid) / 2**20, 1
                    )
                    self._warm(target, pool_key, names)
                    for connections in options.connections:
                        for repetition in range(repetitions):
                            self._measure(
                                target,
                                pool_key,
                                WORKLOADS["get"],
                                names,
                                connections,
                                repetition,
                                secrets=size,
                            )
                    # The base size's secrets, read in the big store: what the store's
                    # size alone costs, with the working set of the base runs.
                    for repetition in range(repetitions):
                        self._measure(
                            target,
                            f"{pool_key}-same",
                            WORKLOADS["get-same"],
                            names[: options.secrets],
                            max(options.connections),
                            repetition,
                            secrets=size,
                        )
                finally:
                    target.stop()

    def _profile(self, target: Target, workload: Workload, names: list[str]) -> None:
        """One more run at the most connections, sampled by py-spy; not in the results."""
        options = self.options
        if workload.writes and target.wrote:
            target.reset()
            self._warm(target, target.key, names)
        target.wrote = target.wrote or workload.writes
        size = options.write_pool_size if workload.writes else options.pool_size
        path, _ = self.pools.file(target.key, target.requests(), workload, names, size)
        raw = options.profile_dir / f"{target.key}-{workload.key}.txt"
        spy = profile.start(target.pid, options.duration_s, raw)
        if spy is None:
            self._say("[yellow]no profile: py-spy is not installed (pip install '.[bench]')")
            return
        time.sleep(0.5)  # py-spy attached
        measured = wrk.run(
            target.url + "/", path, max(options.connections), options.duration_s, options.timeout_s
        )
        self.pools.consumed(target.key, workload, measured.requests + max(options.connections))
        spy.wait(options.duration_s + 60)
        if raw.exists():
            summary = raw.with_suffix(".top.txt")
            summary.write_text(profile.top(raw))
            self.result.profiles.append(str(summary))
            self._say(f"  profile ({measured.rps:,.0f} req/s under py-spy): {summary}")

    # One run ------------------------------------------------------------------------

    def _warm(self, target: Target, pool_key: str, names: list[str]) -> None:
        if self.options.warmup_s <= 0:
            return
        path, _ = self.pools.file(
            pool_key, target.requests(), WORKLOADS["get"], names, self.options.pool_size
        )
        wrk.run(
            target.url + "/",
            path,
            max(self.options.connections),
            self.options.warmup_s,
            self.options.timeout_s,
        )

    def _measure(
        self,
        target: Target,
        pool_key: str,
        workload: Workload,
        names: list[str],
        connections: int,
        repetition: int,
        secrets: int | None = None,
    ) -> RunRecord:
        options = self.options
        size = options.write_pool_size if workload.writes else options.pool_size
        expected = int(self._expected_requests(pool_key, workload) * 1.3) + connections
        path, unused = self.pools.file(pool_key, target.requests(), workload, names, size, expected)
        run = wrk.measured_run(
            target.pid, target.url + "/", path, connections, options.duration_s, options.timeout_s
        )
        measured = run.result
        rss = procs.rss_bytes(target.pid) / 2**20
        sent = measured.requests + connections
        self.pools.consumed(pool_key, workload, sent)
        self._last_requests[pool_key, workload.key] = measured.requests
        record = RunRecord(
            target=target.key,
            label=target.label,
            peer=target.peer,
            workload=workload.key,
            secrets=secrets or options.secrets,
            connections=connections,
            repetition=repetition + 1,
            requests=measured.requests,
            duration_s=round(measured.duration_s, 3),
            rps=round(measured.rps, 1),
            p50_ms=round(measured.p50_ms, 3),
            p90_ms=round(measured.p90_ms, 3),
            p99_ms=round(measured.p99_ms, 3),
            errors=measured.error_count,
            error_kinds={k: v for k, v in measured.errors.items() if v},
            cpu_s=round(run.server_cpu_s, 2),
            cpu_us_per_request=round(run.cpu_us_per_request, 1),
            rss_mib=round(rss, 1),
            wrk_cpu_s=round(measured.client_cpu_s, 2),
            other_cpu_pct=round(run.other_cpu_pct, 1),
            workers=getattr(target, "workers", None),
            pool_wrapped=unused is not None and sent > unused,
        )
        self.result.records.append(record)
        if record.pool_wrapped:
            self.result.notes.append(
                f"{target.key} {workload.key} @{connections}: the write pool ran out "
                "(some tokens replayed); raise --write-pool-size"
            )
        self._say(
            f"  {workload.title} x{connections} #{repetition + 1}: {record.rps:,.0f} req/s, "
            f"p50 {record.p50_ms:.1f} ms, p99 {record.p99_ms:.1f} ms, "
            f"{record.errors} errors, {record.cpu_us_per_request:,.0f} us CPU/req, "
            f"other load {record.other_cpu_pct:.0f}%"
        )
        return record

    def _expected_requests(self, pool_key: str, workload: Workload) -> int:
        """How many requests the next run may send: as many as the last run of the same
        workload sent; for a first run of a write workload, as many as the busiest run
        this target has had (a write pool must not run out and replay its tokens)."""
        last = self._last_requests.get((pool_key, workload.key))
        if last is not None:
            return last
        if not workload.writes:
            return 0
        return max(
            (sent for (key, _), sent in self._last_requests.items() if key == pool_key),
            default=0,
        )

    def _say(self, message: str) -> None:
        say(self.console, message)


def say(console: Console, message: str) -> None:
    """A progress line, stamped with the time of day."""
    stamp = datetime.datetime.now().strftime("%H:%M:%S")
    console.print(f"[dim]{stamp}[/] {message}", highlight=False)
