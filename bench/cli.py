"""``python -m bench``: run the benchmark, print the tables, write the JSON and the plot.

python -m bench                 # the full suite (make bench), ~30 minutes
python -m bench --smoke         # a few seconds against Strongroom alone (make bench-smoke)
python -m bench --show FILE     # the tables of an earlier run's JSON
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType

from rich.console import Console

from bench import export, markdown, report
from bench.options import FULL, SMOKE, Options
from bench.runner import Runner
from bench.workloads import WORKLOADS
from bench.wrk import wrk_binary


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def _words(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _sizes(text: str) -> tuple[tuple[int, int], ...]:
    """Sizes such as "100000,1000000:1", each with its own repetitions after a colon."""
    found = []
    for part in _words(text):
        size, _, repetitions = part.partition(":")
        found.append((int(size), int(repetitions) if repetitions else 0))
    return tuple(found)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="the smoke preset (a few seconds)")
    p.add_argument("--show", type=Path, metavar="JSON", help="print the tables of a JSON result")
    p.add_argument("--markdown", action="store_true", help="with --show: as Markdown")
    p.add_argument(
        "--targets",
        type=_words,
        help="e.g. strongroom-w1,strongroom-w2,openbao,moto,bare-w1,bare-w2",
    )
    p.add_argument("--workloads", type=_words, help=f"of {','.join(WORKLOADS)}")
    p.add_argument("--connections", type=_ints, help="e.g. 16,64")
    p.add_argument("--repetitions", type=int)
    p.add_argument("--duration", type=float, dest="duration_s", help="seconds per run")
    p.add_argument("--warmup", type=float, dest="warmup_s", help="seconds of warm-up")
    p.add_argument(
        "--timeout",
        type=float,
        dest="timeout_s",
        help="seconds before a request counts as an error",
    )
    p.add_argument("--secrets", type=int, help="secrets seeded through each API")
    p.add_argument(
        "--sizes",
        type=_sizes,
        help="larger Strongroom stores, e.g. "
        '"100000,1000000:1" (":N" = N repetitions); "" for none',
    )
    p.add_argument("--size-workers", type=_ints, help="Strongroom worker counts for --sizes")
    p.add_argument("--pool-size", type=int, help="pre-signed requests per read pool")
    p.add_argument("--write-pool-size", type=int, help="pre-signed requests per write pool")
    p.add_argument("--json", type=Path, dest="json_path", help="where the JSON goes")
    p.add_argument("--plot", type=Path, dest="plot_path", help="where the PNG goes")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument(
        "--profile",
        action="store_true",
        default=None,
        help="one more run of each Strongroom workload under py-spy: bench/results/profiles/",
    )
    p.add_argument("--workdir", type=Path, help="kept afterwards (default: a temporary one)")
    p.add_argument("--keep-workdir", action="store_true", default=None)
    return p


def options_from(args: argparse.Namespace) -> Options:
    options = SMOKE if args.smoke else FULL
    given = {
        name: value
        for name, value in vars(args).items()
        if name in Options.__dataclass_fields__ and value is not None and name != "smoke"
    }
    options = replace(options, **given)
    if args.no_plot:
        options = replace(options, plot_path=None)
    sizes = tuple((size, reps or options.repetitions) for size, reps in options.sizes)
    return replace(options, sizes=sizes)


def _stop_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through the finally blocks that stop every server


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
    console = Console(width=None if sys.stdout.isatty() else 200)
    if args.show:
        doc = json.loads(args.show.read_text())
        if args.markdown:
            print(markdown.render(doc), end="")
        else:
            report.show(doc, console)
        return 0
    options = options_from(args)
    unknown = [w for w in options.workloads if w not in WORKLOADS]
    if unknown:
        console.print(f"[red]unknown workload(s): {', '.join(unknown)}[/]")
        return 2
    if wrk_binary() is None:
        console.print("[red]wrk is not installed:[/] apt-get install -y wrk (or make bench)")
        return 2
    result = Runner(options, Console(stderr=True, width=None if sys.stderr.isatty() else 200)).run()
    doc = export.write(result, options.json_path)
    report.show(doc, console)
    console.print(f"JSON: {options.json_path}")
    if options.plot_path is not None:
        try:
            from bench.plot import plot
        except ImportError:  # matplotlib comes with the [bench] extra
            console.print("[yellow]no plot: matplotlib is not installed (pip install '.[bench]')")
        else:
            console.print(f"plot: {plot(doc, options.plot_path)}")
    return 0
