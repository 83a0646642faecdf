"""What a GetSecretValue costs the pipeline, counted instead of timed: the Python bytecode
instructions it executes, per function. Deterministic, so it compares two commits on a
loaded machine (a wall or CPU time does not).

    .venv/bin/python -m bench.request_opcodes [--requests 50] [--top 30] [--json FILE]
    PYTHONHASHSEED=0 PYTHONPATH=/path/to/other/checkout .venv/bin/python -m bench.request_opcodes

A fresh dev deployment is opened in this process (``open_deployment``), one secret made,
200 warm-up reads served, then ``--requests`` GetSecretValue requests (signed beforehand,
as in bench/request_cost.py) are handed to ``Pipeline.handle`` with a tracer counting
every opcode of the request's thread (``sys.settrace`` with ``f_trace_opcodes``). The
audit writer thread's work is not counted. Set PYTHONHASHSEED for counts that repeat
exactly. For machine instructions, run the same loop under
``valgrind --tool=callgrind --instr-atstart=no`` with the counting switched on around it.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from bench.request_cost import signed, signed_get
from strongroom.server.deployment import DEV_ACCESS_KEY, DEV_SECRET_KEY, initialize, open_deployment

Tracer = Callable[[FrameType, str, Any], Any]


def count(requests: int) -> collections.Counter[str]:
    with tempfile.TemporaryDirectory(prefix="strongroom-opcodes-") as scratch:
        return _count(Path(scratch) / "data", requests)


def _count(data_dir: Path, requests: int) -> collections.Counter[str]:
    initialize(data_dir, dev=True)
    deployment = open_deployment(data_dir)
    handle = deployment.pipeline.handle
    try:
        document = {
            "Name": "bench/opcodes",
            "SecretString": "v" * 64,
            "ClientRequestToken": "11111111-2222-3333-4444-555555555555",
        }
        created = signed("CreateSecret", document, DEV_ACCESS_KEY, DEV_SECRET_KEY)
        if handle(created, "127.0.0.1").status != 200:
            raise SystemExit("CreateSecret failed")
        for _ in range(200):
            handle(signed_get("bench/opcodes", DEV_ACCESS_KEY, DEV_SECRET_KEY), "127.0.0.1")
        requests_signed = [
            signed_get("bench/opcodes", DEV_ACCESS_KEY, DEV_SECRET_KEY) for _ in range(requests)
        ]
        counts: collections.Counter[str] = collections.Counter()

        def tracer(frame: FrameType, event: str, _arg: Any) -> Tracer:
            frame.f_trace_opcodes = True
            if event == "opcode":
                code = frame.f_code
                counts[f"{code.co_filename}:{code.co_name}"] += 1
            return tracer

        sys.settrace(tracer)
        try:
            for request in requests_signed:
                handle(request, "127.0.0.1")
        finally:
            sys.settrace(None)
        return counts
    finally:
        deployment.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--top", type=int, default=30, help="functions to list")
    parser.add_argument("--json", type=Path, default=None, help="write the counts here")
    args = parser.parse_args(argv)
    counts = count(args.requests)
    total = sum(counts.values())
    print(f"{total / args.requests:.0f} Python opcodes per GetSecretValue")
    for name, n in counts.most_common(args.top):
        print(f"{n / args.requests:8.1f}  {name}")
    if args.json is not None:
        per_request = {name: n / args.requests for name, n in counts.items()}
        args.json.write_text(json.dumps(per_request, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
