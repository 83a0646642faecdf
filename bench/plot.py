"""Throughput and p99 latency per target and workload, as a PNG (matplotlib, Agg)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.workloads import WORKLOADS


def _cell_name(summary: Mapping[str, Any], base: int) -> str:
    title = WORKLOADS[summary["workload"]].title.split(" (")[0]
    title = {"Mixed 95% get / 5% put": "Mixed 95/5"}.get(title, title)
    if summary["secrets"] != base:
        title += f"\n{summary['secrets']:,} secrets"
    return title


def plot(doc: Mapping[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summaries = doc["summaries"]
    base = doc["options"]["secrets"]
    connections = sorted({s["connections"] for s in summaries})
    targets = list(dict.fromkeys(s["label"] for s in summaries))
    cells = list(dict.fromkeys(_cell_name(s, base) for s in summaries))
    figure, axes = plt.subplots(
        len(connections), 2, figsize=(16, 4.5 * len(connections)), squeeze=False
    )
    width = 0.8 / max(1, len(targets))
    for row, conns in enumerate(connections):
        for column, (metric, label) in enumerate(
            (("rps", "requests/s (median)"), ("p99_ms", "p99 latency, ms (median)"))
        ):
            ax = axes[row][column]
            for t, target in enumerate(targets):
                xs, ys = [], []
                for s in summaries:
                    if s["label"] == target and s["connections"] == conns:
                        xs.append(cells.index(_cell_name(s, base)) + (t - len(targets) / 2) * width)
                        ys.append(s[metric])
                ax.bar(xs, ys, width=width, label=target, align="edge")
            ax.set_yscale("log")
            ax.set_xticks([i for i in range(len(cells))], cells, fontsize=8)
            ax.set_title(f"{label} at {conns} connections")
            ax.grid(axis="y", which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    m = doc["machine"]
    figure.suptitle(
        f"Strongroom benchmark {doc['started']} - {m['cores']} cores, wrk on the same machine"
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
