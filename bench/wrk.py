"""Run wrk against a target with a pool of requests, and read its result (and, with
:func:`measured_run`, what the server and the rest of the machine spent meanwhile)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench import procs

SCRIPT = Path(__file__).with_name("pool.lua")
THREADS = 2  # one per core of the 2-core machine the figures come from
_MARK = "BENCH_RESULT "


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    # "status": answers outside 2xx/3xx; socket connect/read/write errors; "timeout";
    # "stalled": connections of a run that got no answer at all
    errors: dict[str, int]
    client_cpu_s: float  # wrk's own CPU time

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def wrk_binary() -> str | None:
    return shutil.which("wrk")


def write_pool(path: Path, pool: list[bytes]) -> Path:
    with path.open("wb") as out:
        for raw in pool:
            out.write(b"%d\n" % len(raw))
            out.write(raw)
    return path


def run(
    url: str, pool_file: Path, connections: int, seconds: float, timeout_s: float = 5.0
) -> WrkResult:
    """One wrk run. A request unanswered after ``timeout_s`` counts as an error (wrk looks
    every 2 s); a run in which nothing at all was answered counts each connection as a
    "stalled" error, so a hung server never reports a clean zero."""
    binary = wrk_binary()
    if binary is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    threads = min(THREADS, connections)
    command = [
        binary,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={timeout_s:g}s",
        "-s",
        str(SCRIPT),
        url,
        "--",
        str(pool_file),
        str(threads),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(  # noqa: S603 - a fixed command
        command, capture_output=True, text=True, timeout=seconds + 120, check=False
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    for line in done.stdout.splitlines():
        if line.startswith(_MARK):
            raw = json.loads(line[len(_MARK) :])
            break
    else:
        raise RuntimeError(
            f"wrk gave no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    errors = {k: raw[k] for k in ("status", "connect", "read", "write", "timeout")}
    if raw["requests"] == 0:
        errors["stalled"] = connections
    return WrkResult(
        requests=raw["requests"],
        duration_s=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        mean_ms=raw["mean_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        errors=errors,
        client_cpu_s=client_cpu,
    )


@dataclass(frozen=True)
class MeasuredRun:
    result: WrkResult
    server_cpu_s: float  # the server's whole process tree
    other_cpu_s: float  # neither the server nor wrk (reaped by this process, left out too)

    @property
    def cpu_us_per_request(self) -> float:
        requests = self.result.requests
        return self.server_cpu_s / requests * 1e6 if requests else 0.0

    @property
    def other_cpu_pct(self) -> float:
        """The other load, as a share of all the machine's cores."""
        seconds = self.result.duration_s
        return self.other_cpu_s / (seconds * (os.cpu_count() or 1)) * 100 if seconds else 0.0


def measured_run(
    server_pid: int,
    url: str,
    pool_file: Path,
    connections: int,
    seconds: float,
    timeout_s: float = 5.0,
) -> MeasuredRun:
    """:func:`run`, with the CPU the server (``server_pid`` and its descendants) used
    during it and what other processes used."""
    cpu_before, everyone_before = procs.cpu_seconds(server_pid), procs.user_cpu_ticks()
    result = run(url, pool_file, connections, seconds, timeout_s)
    cpu = procs.cpu_seconds(server_pid) - cpu_before
    exclude = {os.getpid(), *procs.tree(server_pid)}
    others = procs.other_cpu_seconds(everyone_before, procs.user_cpu_ticks(), exclude)
    return MeasuredRun(result, cpu, others)
