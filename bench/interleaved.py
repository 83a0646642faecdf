"""Two Strongroom commits and OpenBao, up at once, measured in alternating windows.

    make bench-interleaved BASELINE=bdc3f9b [BENCH_ARGS="--rounds 12 ..."]
    .venv/bin/python -m bench.interleaved --baseline COMMIT-OR-CHECKOUT [--rounds 12]
        [--window 5] [--connections 64] [--workers 2] [--json PATH]

``make bench`` measures its targets one after the other, minutes apart, and on a shared
host the throughput of the same code moves by 10-15% between such runs (OpenBao, the
same binary every time, moved from 5,717 to 6,950 req/s between two runs of one
afternoon). Two commits compared that way differ by the host as much as by the code.
Here every server is started and seeded first, then each round sends GetSecretValue
(KV reads to OpenBao) to each of them for ``--window`` seconds in turn, the order
rotating from round to round so none is always first after a pause. Each round gives
each Strongroom's ratio to OpenBao, and this checkout's ratio to the baseline, from
windows seconds apart: what the host does to one, it does to its neighbours. The
figures are the medians of those per-round ratios, with their spread.

The baseline is a Strongroom checkout or a commit of this repository (checked out once
under /var/tmp with ``git worktree add``, with its own ``.venv`` made by its own
Makefile: another commit may pin other dependencies); it seeds its own store through its
own API.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import machine, wrk
from bench.options import RESULTS
from bench.pools import PoolMaker
from bench.runner import WORKDIR_BASE, say
from bench.secretdata import secret_name
from bench.targets import (
    REPO,
    Checkout,
    OpenBao,
    Strongroom,
    Target,
    prepare_strongroom_store,
)
from bench.workloads import WORKLOADS


@dataclass(frozen=True)
class Window:
    round: int
    target: str
    rps: float
    p99_ms: float
    errors: int
    cpu_us_per_request: float
    other_cpu_pct: float  # CPU used by neither this server nor wrk, across the cores


def baseline_checkout(given: str, console: Console) -> Path:
    """``given`` if it is a directory; else a worktree of the commit it names, made (with
    its virtual environment) the first time."""
    if Path(given).is_dir():
        return Path(given)
    commit = subprocess.run(  # noqa: S603 - a fixed command
        ["git", "-C", str(REPO), "rev-parse", "--verify", f"{given}^{{commit}}"],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    root = Path(WORKDIR_BASE) / f"strongroom-baseline-{commit[:12]}"
    if not root.exists():
        console.print(f"checking out {given} ({commit[:12]}) into {root}")
        subprocess.run(  # noqa: S603
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(root), commit],  # noqa: S607
            check=True,
        )
    if not (root / ".venv" / ".installed").exists():
        console.print(f"installing {commit[:12]}'s dependencies into {root / '.venv'} (once)")
        subprocess.run(["make", "-C", str(root), ".venv/.installed"], check=True)  # noqa: S603,S607
    return root


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def rotated(items: Sequence[str], turn: int) -> list[str]:
    """The order of round ``turn``: each target leads in turn."""
    shift = turn % len(items)
    return [*items[shift:], *items[:shift]]


def paired_ratios(windows: Sequence[Window], numerator: str, denominator: str) -> list[float]:
    """``numerator``'s req/s over ``denominator``'s, one ratio per round that has both."""
    by_round: dict[int, dict[str, float]] = {}
    for window in windows:
        by_round.setdefault(window.round, {})[window.target] = window.rps
    return [
        rates[numerator] / rates[denominator]
        for _, rates in sorted(by_round.items())
        if rates.get(numerator) and rates.get(denominator)
    ]


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, quartiles and extremes of a few values."""
    if not values:
        return {}
    ordered = sorted(values)
    quartiles = statistics.quantiles(ordered, n=4) if len(ordered) > 1 else ordered * 3
    return {
        "median": round(statistics.median(ordered), 4),
        "q1": round(quartiles[0], 4),
        "q3": round(quartiles[2], 4),
        "min": round(ordered[0], 4),
        "max": round(ordered[-1], 4),
        "n": len(ordered),
    }


class Interleaved:
    def __init__(self, args: argparse.Namespace, console: Console) -> None:
        self.args = args
        self.console = console
        self.windows: list[Window] = []

    def run(self) -> dict[str, Any]:
        args = self.args
        started = time.perf_counter()
        workdir = Path(tempfile.mkdtemp(prefix="strongroom-interleaved-", dir=WORKDIR_BASE))
        names = [secret_name(i) for i in range(args.secrets)]
        head = Checkout.at(Path(__file__).resolve().parent.parent, args.name)
        baseline = Checkout.at(baseline_checkout(args.baseline, self.console), args.baseline_name)
        if baseline.name == head.name:
            baseline = Checkout(f"{baseline.name} (baseline)", baseline.root, baseline.python)
        pools = PoolMaker(workdir / "pools")
        targets: list[Target] = []
        seeding: dict[str, Any] = {}
        doc: dict[str, Any] = {"started": _now(), "machine": machine.describe()}
        try:
            for checkout in (head, baseline):
                store = workdir / f"store-{len(targets)}"
                self._say(f"seeding {len(names):,} secrets through the API of {checkout.name}")
                seeding[checkout.name] = prepare_strongroom_store(
                    store, names, workdir / "logs" / f"seed-{len(targets)}.log", checkout
                )
                targets.append(Strongroom(workdir, names, store, args.workers, checkout=checkout))
            targets.append(OpenBao(workdir, names))
            for target in targets:
                self._say(f"starting {target.label}")
                target.start()
            for target in targets:
                self._window(pools, target, names, -1, args.warmup)  # warm-up, not kept
            keys = [target.key for target in targets]
            for turn in range(args.rounds):
                order = rotated(keys, turn)
                for key in order:
                    target = targets[keys.index(key)]
                    self.windows.append(self._window(pools, target, names, turn + 1, args.window))
        finally:
            for target in targets:
                target.stop()
            shutil.rmtree(workdir, ignore_errors=True)
        head_key, base_key, peer_key = (t.key for t in targets)
        doc.update(
            finished=_now(),
            wall_s=round(time.perf_counter() - started, 1),
            options={
                k: (str(v) if isinstance(v, Path) else v)
                for k, v in vars(args).items()
                if k != "json_path"
            },
            checkouts={
                "head": {"name": head.name, "root": str(head.root), "key": head_key},
                "baseline": {"name": baseline.name, "root": str(baseline.root), "key": base_key},
            },
            seeding=seeding,
            windows=[asdict(w) for w in self.windows],
            ratios={
                f"{head_key} / {peer_key}": spread(paired_ratios(self.windows, head_key, peer_key)),
                f"{base_key} / {peer_key}": spread(paired_ratios(self.windows, base_key, peer_key)),
                f"{head_key} / {base_key}": spread(paired_ratios(self.windows, head_key, base_key)),
            },
            targets={
                key: {
                    "rps": spread([w.rps for w in self.windows if w.target == key]),
                    "cpu_us_per_request": spread(
                        [w.cpu_us_per_request for w in self.windows if w.target == key]
                    ),
                    "p99_ms": spread([w.p99_ms for w in self.windows if w.target == key]),
                    "errors": sum(w.errors for w in self.windows if w.target == key),
                }
                for key in keys
            },
        )
        doc["machine"]["load_average_at_end"] = machine.load_average()
        return doc

    def _window(
        self, pools: PoolMaker, target: Target, names: list[str], turn: int, seconds: float
    ) -> Window:
        args = self.args
        path, _ = pools.file(target.key, target.requests(), WORKLOADS["get"], names, args.pool)
        run = wrk.measured_run(
            target.pid, target.url + "/", path, args.connections, seconds, args.timeout
        )
        window = Window(
            round=turn,
            target=target.key,
            rps=round(run.result.rps, 1),
            p99_ms=round(run.result.p99_ms, 2),
            errors=run.result.error_count,
            cpu_us_per_request=round(run.cpu_us_per_request, 1),
            other_cpu_pct=round(run.other_cpu_pct, 1),
        )
        if turn > 0:
            self._say(
                f"round {turn:>2} {target.label:<34} {window.rps:>9,.0f} req/s "
                f"p99 {window.p99_ms:6.1f} ms {window.cpu_us_per_request:6,.0f} us CPU/req "
                f"errors {window.errors} other load {window.other_cpu_pct:.0f}%"
            )
        return window

    def _say(self, message: str) -> None:
        say(self.console, message)


def show(doc: dict[str, Any], console: Console) -> None:
    table = Table(title="GetSecretValue, interleaved windows: per-round ratios")
    for column in ("ratio", "median", "quartiles", "min - max", "rounds"):
        table.add_column(column, justify="left" if column == "ratio" else "right")
    for name, figures in doc["ratios"].items():
        if figures:
            table.add_row(
                name,
                f"{figures['median']:.3f}x",
                f"{figures['q1']:.3f} - {figures['q3']:.3f}",
                f"{figures['min']:.3f} - {figures['max']:.3f}",
                str(figures["n"]),
            )
    console.print(table)
    targets = Table(title="Each target over its windows (medians)")
    for column in ("target", "req/s", "CPU us/req", "p99 ms", "errors"):
        targets.add_column(column, justify="left" if column == "target" else "right")
    for key, figures in doc["targets"].items():
        if figures["rps"]:
            targets.add_row(
                key,
                f"{figures['rps']['median']:,.0f}",
                f"{figures['cpu_us_per_request']['median']:,.0f}",
                f"{figures['p99_ms']['median']:.1f}",
                str(figures["errors"]),
            )
    console.print(targets)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.interleaved", description=__doc__.split("\n")[0]
    )
    p.add_argument("--baseline", help="the other Strongroom: a checkout, or a commit of this one")
    p.add_argument("--baseline-name", help="its label (default: its short commit)")
    p.add_argument("--name", help="this checkout's label (default: its short commit)")
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--window", type=float, default=5.0, help="seconds per target per round")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds per target, once")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--workers", type=int, default=2, help="Strongroom worker processes")
    p.add_argument("--secrets", type=int, default=1000)
    p.add_argument("--pool", type=int, default=20_000, help="pre-signed requests per pool")
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--json", type=Path, dest="json_path", default=RESULTS / "interleaved.json")
    p.add_argument("--show", type=Path, metavar="JSON", help="print an earlier run's tables")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 160)
    if args.show:
        show(json.loads(args.show.read_text()), console)
        return 0
    if args.baseline is None:
        console.print("[red]--baseline is required[/]: a commit to compare, or its checkout")
        return 2
    if wrk.wrk_binary() is None:
        console.print("[red]wrk is not installed:[/] apt-get install -y wrk (or make bench-tools)")
        return 2
    doc = Interleaved(args, Console(stderr=True)).run()
    args.json_path.parent.mkdir(parents=True, exist_ok=True)
    args.json_path.write_text(json.dumps(doc, indent=1) + "\n")
    show(doc, console)
    console.print(f"JSON: {args.json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
