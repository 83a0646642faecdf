"""The results as Markdown tables, for bench/README.md and issue notes:
``python -m bench --show bench/results/latest.json --markdown``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.workloads import WORKLOADS

Doc = Mapping[str, Any]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], right_from: int = 1) -> str:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _ms(value: float) -> str:
    return f"{value:,.1f}" if value >= 10 else f"{value:,.2f}"


def render(doc: Doc) -> str:
    m = doc["machine"]
    parts = [
        f"Run of {doc['started']} ({doc['wall_s'] / 60:.0f} min), Strongroom "
        f"{m['strongroom_commit']}: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, "
        f"wrk on the same machine; {doc['options']['duration_s']:g} s runs, medians of "
        f"{doc['options']['repetitions']} (fewer where the runs column shows fewer).",
    ]
    rows = [
        [
            s["target"],
            WORKLOADS[s["workload"]].title,
            f"{s['secrets']:,}",
            str(s["connections"]),
            f"{s['rps']:,.0f}",
            _ms(s["p50_ms"]),
            _ms(s["p99_ms"]),
            f"{s['errors']:,}",
            f"{s['cpu_us_per_request']:,.0f}",
            f"{s['rss_mib']:,.0f}",
            f"{s.get('other_cpu_pct', 0):.0f}%",
            str(s["runs"]),
        ]
        for s in doc["summaries"]
    ]
    parts.append(
        _table(
            [
                "target", "workload", "secrets", "conns", "req/s", "p50 ms", "p99 ms",
                "errors", "CPU µs/req", "RSS MiB", "other load", "runs",
            ],
            rows,
            right_from=2,
        )
    )  # fmt: skip
    ratios: dict[tuple[str, str, int], dict[str, str]] = {}
    versus = list(dict.fromkeys(r["versus"] for r in doc["ratios"]))
    for r in doc["ratios"]:
        ratios.setdefault((r["strongroom"], r["workload"], r["connections"]), {})[r["versus"]] = (
            f"{r['throughput']:.2f}x ({r['p99']:.2f}x)"
        )
    if ratios:
        parts.append(
            "Strongroom / peer, throughput (p99 in brackets; below 1 is better):\n\n"
            + _table(
                ["Strongroom", "workload", "conns", *(f"vs {v}" for v in versus)],
                [
                    [mine, WORKLOADS[w].title, str(c), *(cells.get(v, "-") for v in versus)]
                    for (mine, w, c), cells in ratios.items()
                ],
                right_from=2,
            )
        )
    if doc["checks"]:
        met = {True: "yes", False: "**no**", None: "-"}
        parts.append(
            "Issue 6 targets:\n\n"
            + _table(
                ["Strongroom", "goal", "measured", "met"],
                [
                    [c["strongroom"], c["goal"], c["measured"], met[c["passed"]]]
                    for c in doc["checks"]
                ],
                right_from=4,
            )
        )
    if doc["sizes"]:
        parts.append(
            "Bulk seeding: "
            + "; ".join(
                f"+{s['added']:,} to {s['secrets']:,} secrets in {s['seed_s']:.0f} s "
                f"({s['seed_per_s']:,}/s, store {s['disk_mib']:,.0f} MiB on disk)"
                for s in doc["sizes"]
            )
            + "."
        )
    return "\n\n".join(parts) + "\n"
