"""The results as tables on the terminal, from the JSON document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.workloads import WORKLOADS

Doc = Mapping[str, Any]


def _ms(value: float) -> str:
    return f"{value:,.1f}" if value >= 10 else f"{value:,.2f}"


def results_table(doc: Doc) -> Table:
    table = Table(title="Medians of each cell's runs", title_justify="left")
    for name in ("target", "workload", "secrets", "conns", "req/s", "p50 ms", "p99 ms"):
        table.add_column(name, justify="left" if name in ("target", "workload") else "right")
    for name in ("errors", "CPU µs/req", "RSS MiB", "other load", "runs (req/s)"):
        table.add_column(name, justify="right")
    previous = None
    for s in doc["summaries"]:
        if previous is not None and previous != s["target"]:
            table.add_section()
        previous = s["target"]
        table.add_row(
            s["target"],
            WORKLOADS[s["workload"]].title,
            f"{s['secrets']:,}",
            str(s["connections"]),
            f"{s['rps']:,.0f}",
            _ms(s["p50_ms"]),
            _ms(s["p99_ms"]),
            f"[red]{s['errors']:,}[/]" if s["errors"] else "0",
            f"{s['cpu_us_per_request']:,.0f}",
            f"{s['rss_mib']:,.0f}",
            f"{s.get('other_cpu_pct', 0):.0f}%",
            " ".join(f"{r:,.0f}" for r in s["rps_runs"]),
        )
    return table


def ratios_table(doc: Doc) -> Table:
    table = Table(
        title="Strongroom / peer: throughput x (p99 x; below 1 is better)", title_justify="left"
    )
    versus = list(dict.fromkeys(r["versus"] for r in doc["ratios"]))
    table.add_column("Strongroom")
    table.add_column("workload")
    table.add_column("conns", justify="right")
    for other in versus:
        table.add_column(f"vs {other}", justify="right")
    rows: dict[tuple[str, str, int], dict[str, str]] = {}
    for r in doc["ratios"]:
        cell = rows.setdefault((r["strongroom"], r["workload"], r["connections"]), {})
        cell[r["versus"]] = f"{r['throughput']:.2f}x ({r['p99']:.2f}x)"
    for (mine, workload, conns), cells in rows.items():
        table.add_row(
            mine, WORKLOADS[workload].title, str(conns), *(cells.get(v, "-") for v in versus)
        )
    return table


def sizes_table(doc: Doc) -> Table | None:
    sizes = {s["secrets"]: s for s in doc["sizes"]}
    base = doc["options"]["secrets"]
    cells = [
        s
        for s in doc["summaries"]
        if s["peer"] == "strongroom"
        and s["workload"] in ("get", "get-same")
        and (s["secrets"] in sizes)
    ]
    if not cells:
        return None
    table = Table(title="GetSecretValue as the store grows (Strongroom)", title_justify="left")
    columns = (
        "config",
        "secrets",
        "conns",
        "req/s",
        f"vs {base:,}",
        "1st run",
        "p99 ms",
        "RSS MiB",
    )
    for name in columns:
        table.add_column(name, justify="left" if name == "config" else "right")
    table.add_column(f"RSS MiB / 1k secrets over {base:,}", justify="right")
    table.add_column("bulk seed", justify="right")
    by_key = {
        (s["target"], s["secrets"], s["connections"]): s
        for s in doc["summaries"]
        if s["workload"] == "get"  # the same workload at the base size, not the last one run
    }
    for s in cells:
        small = by_key.get((s["target"], base, s["connections"]))
        seeded = sizes[s["secrets"]]
        grow = (
            f"{(s['rss_mib'] - small['rss_mib']) / (s['secrets'] - base) * 1000:.3f}"
            if small
            else "-"
        )
        table.add_row(
            s["target"] if s["workload"] == "get" else f"{s['target']}, {base:,} read",
            f"{s['secrets']:,}",
            str(s["connections"]),
            f"{s['rps']:,.0f}",
            f"{s['rps'] / small['rps']:.2f}x" if small and small["rps"] else "-",
            _first_run(s, small),
            _ms(s["p99_ms"]),
            f"{s['rss_mib']:,.0f}",
            grow,
            f"+{seeded['added']:,} in {seeded['seed_s']:.0f}s",
        )
    return table


def _first_run(cell: Any, base: Any) -> str:
    """The first repetition's req/s and its ratio to the base size's median: the run in
    which the worker caches meet most of the pool's secrets for the first time."""
    runs = cell.get("rps_runs") or []
    if len(runs) < 2:
        return "-"
    ratio = f" ({runs[0] / base['rps']:.2f}x)" if base and base["rps"] else ""
    return f"{runs[0]:,.0f}{ratio}"


def checks_table(doc: Doc) -> Table | None:
    if not doc["checks"]:
        return None
    table = Table(title="Issue 6 targets", title_justify="left")
    for name in ("Strongroom", "goal", "measured", "met"):
        table.add_column(name)
    for c in doc["checks"]:
        met = {True: "[green]yes[/]", False: "[red]no[/]", None: "-"}[c["passed"]]
        table.add_row(c["strongroom"], c["goal"], c["measured"], met)
    return table


def show(doc: Doc, console: Console) -> None:
    m = doc["machine"]
    console.print(
        f"[bold]Strongroom benchmark[/] {doc['started']} ({doc['wall_s'] / 60:.1f} min): "
        f"{m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, load average "
        f"{m['load_average_at_start']} at start, {m.get('load_average_at_end')} at end; "
        f"Strongroom {m['strongroom_commit']}",
        highlight=False,
    )
    for table in (
        results_table(doc),
        ratios_table(doc),
        sizes_table(doc),
        checks_table(doc),
    ):
        if table is not None and table.row_count:
            console.print(table)
    seeding = doc["seeding"]
    console.print(f"seeding through the APIs (s): {seeding}", highlight=False)
    for note in doc["notes"]:
        console.print(f"[yellow]note:[/] {note}")
