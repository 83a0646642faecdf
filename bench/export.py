"""The results as one JSON document (bench/results/latest.json)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from bench.results import checks, ratios, summarise
from bench.runner import BenchResult


def document(result: BenchResult) -> dict[str, Any]:
    options = result.options
    summaries = summarise(result.records)
    largest = max((size for size, _ in options.sizes), default=None)
    return {
        "started": result.started,
        "finished": result.finished,
        "wall_s": round(result.wall_s, 1),
        "machine": result.machine,
        "options": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in dataclasses.asdict(options).items()
        },
        "seeding": result.seeding,
        "sizes": result.sizes,
        "summaries": [dataclasses.asdict(s) for s in summaries],
        "ratios": [dataclasses.asdict(r) for r in ratios(summaries, options.secrets)],
        "checks": [dataclasses.asdict(c) for c in checks(summaries, options.secrets, largest)],
        "runs": [dataclasses.asdict(r) for r in result.records],
        "profiles": result.profiles,
        "notes": result.notes,
    }


def write(result: BenchResult, path: Path) -> dict[str, Any]:
    doc = document(result)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return doc
