"""What a GetSecretValue costs a real server, counted in machine instructions per thread.

    .venv/bin/python -m bench.request_instructions [--requests 1000] [--connections 8]
        [--top 25] [--keep DIR] [--cache-sim] [--secrets 200]
    PYTHONPATH=/path/to/other/checkout .venv/bin/python -m bench.request_instructions

A wall or CPU time compares two commits only on a quiet machine, and even then a shared
host moves it by 10-15% from one run to the next. An instruction count does not move:
this serves a real server (``strongroom server --workers 1``: the keyholder and one
worker, as deployed) under ``valgrind --tool=callgrind``, with counting switched off
while it starts and warms up, then on (for this server's processes only, so runs of
other checkouts may go on beside it) around ``--requests`` pre-signed GetSecretValue
requests sent over ``--connections`` keep-alive connections at once. It prints the
instructions per request of each thread that did work (the worker's event loop, its
audit writer), and how many of them the crypto libraries took: valgrind hides the CPU's
SHA extensions, so OpenSSL's SHA-256 is counted in its slow software form (on this
host's CPU, with SHA-NI, it costs a fraction of that); compare "without crypto" across
commits. ``--top`` lists the event loop thread's costliest C functions (the
interpreter's own, libpython's, and the extensions'). ``--cache-sim`` adds valgrind's
simulated cache misses per request (first-level instruction and data, last level) and
mispredicted branches (conditional, indirect): two commits with the same instruction count
can differ in time by what they miss.

Needs valgrind (Debian's package); a run takes a minute or two.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from bench import procs
from bench.rawhttp import RequestFactory, SecretsManagerRequests
from bench.servers import HOST, free_port
from bench.targets import PYTHON, prepare_strongroom_store
from bench.workloads import WORKLOADS, build_pool

_CRYPTO = re.compile(r"libcrypto|_rust\.abi3|_hashlib")
_START_TIMEOUT_S = 900  # imports under valgrind are slow; a loaded host, slower


def _send(port: int, requests: list[bytes]) -> None:
    """Send each request on one keep-alive connection, reading each answer (200 only)."""
    with socket.create_connection((HOST, port), timeout=300) as sock:
        reader = sock.makefile("rb")
        for raw in requests:
            sock.sendall(raw)
            status = reader.readline()
            if b" 200 " not in status:
                raise RuntimeError(f"the server answered {status!r}")
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            reader.read(length)


def _send_all(port: int, requests: list[bytes], connections: int) -> None:
    share = len(requests) // connections
    threads = [
        threading.Thread(target=_send, args=(port, requests[i * share : (i + 1) * share]))
        for i in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _control(options: list[str], pids: list[int]) -> None:
    for pid in pids:
        subprocess.run(  # noqa: S603
            ["callgrind_control", *options, str(pid)],  # noqa: S607
            capture_output=True,
            check=False,
        )


def _annotate(path: Path) -> str:
    return subprocess.run(  # noqa: S603
        ["callgrind_annotate", "--threshold=100", str(path)],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    ).stdout


def _functions(report: str) -> Counter[str]:
    """Self cost per function from ``callgrind_annotate``'s listing."""
    costs: Counter[str] = Counter()
    listing = False
    for line in report.splitlines():
        if "file:function" in line:
            listing = True
            continue
        found = re.match(r"\s*([\d,]+) \([^)]*\)\s+(.*)", line) if listing else None
        if found:
            name = re.sub(r"^\S*/(?=[^/\s]+:)", "", found.group(2))  # the source file's name
            name = re.sub(r"'\d+", "", name)  # recursion levels
            costs[name] += int(found.group(1).replace(",", ""))
    return costs


def _event_totals(dump: Path) -> dict[str, int]:
    """The totals of every event a dump recorded (``events:`` and ``totals:`` lines)."""
    names: list[str] = []
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith("events:"):
            names = line.split()[1:]
        elif line.startswith("totals:") and names:  # "summary:" is 0 with counting off at start
            return dict(zip(names, (int(n) for n in line.split()[1:]), strict=False))
    return {}


def measure(
    requests: int,
    connections: int,
    top: int,
    keep: Path | None,
    cache_sim: bool = False,
    secrets: int = 200,
) -> int:
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install -y valgrind)")
    scratch = Path(keep or tempfile.mkdtemp(prefix="strongroom-instructions-"))
    names = [f"bench/secret-{i:05d}" for i in range(secrets)]
    store = scratch / "store"
    if not store.exists():
        prepare_strongroom_store(store, names, scratch / "prepare.log")
    port = free_port()
    factory: RequestFactory = SecretsManagerRequests(f"{HOST}:{port}")
    warm = max(300, 3 * secrets)  # every secret read (its caches filled) before counting
    pool = build_pool(factory, WORKLOADS["get"], names, warm + requests, random.Random(20))
    out = scratch / "callgrind"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    command = [
        "valgrind", "--tool=callgrind", "--trace-children=yes", "--instr-atstart=no",
        "--separate-threads=yes", f"--callgrind-out-file={out}/cg.%p",
        *(["--cache-sim=yes", "--branch-sim=yes"] if cache_sim else []),
        PYTHON, "-m", "strongroom.cli.main", "server", "--dev", "--data-dir", str(store),
        "--host", HOST, "--port", str(port), "--workers", "1", "--log-level", "warning",
    ]  # fmt: skip
    with (scratch / "server.log").open("w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        started = time.monotonic()
        while True:
            try:
                _send(port, pool[:1])
                break
            except OSError:
                if time.monotonic() - started > _START_TIMEOUT_S or server.poll() is not None:
                    log_file = scratch / "server.log"
                    raise SystemExit(f"the server did not start: see {log_file}") from None
                time.sleep(2)
        print(f"server up under callgrind after {time.monotonic() - started:.0f} s")
        _send_all(port, pool[1:warm], connections)
        pids = [server.pid, *procs.tree(server.pid)]
        _control(["-i", "on"], pids)
        _send_all(port, pool[warm : warm + requests], connections)
        _control(["-i", "off"], pids)
        _control(["-d"], pids)
        time.sleep(2)
    finally:
        server.terminate()
        server.wait(300)
    measured = requests - requests % connections
    threads = []
    for dump in sorted(out.glob("cg.*.1-*")):
        report = _annotate(dump)
        costs = _functions(report)
        total = sum(costs.values())
        if total / measured < 1000:
            continue  # a thread that did nothing measurable
        crypto = sum(n for name, n in costs.items() if _CRYPTO.search(name))
        threads.append((total, crypto, dump.name, costs, _event_totals(dump)))
    threads.sort(reverse=True)
    print(f"{measured} GetSecretValue, {connections} connections: instructions per request")
    for total, crypto, name, _, events in threads:
        print(
            f"  thread {name}: {total / measured:>11,.0f}   without crypto "
            f"{(total - crypto) / measured:>11,.0f}   crypto {crypto / measured:>9,.0f}"
        )
        if cache_sim and events:
            misses = {
                "I1": events.get("I1mr", 0),
                "D1": events.get("D1mr", 0) + events.get("D1mw", 0),
                "LL": events.get("ILmr", 0) + events.get("DLmr", 0) + events.get("DLmw", 0),
                "branches Bcm": events.get("Bcm", 0),  # conditional, mispredicted
                "Bim": events.get("Bim", 0),  # indirect, mispredicted
            }
            print(
                "      simulated misses per request: "
                + "   ".join(f"{k} {v / measured:>9,.0f}" for k, v in misses.items())
            )
    if top and threads:
        print(f"\nthe busiest thread's costliest {top} functions (self, per request):")
        for name, n in threads[0][3].most_common(top):
            print(f"  {n / measured:>9,.0f}  {name[:110]}")
    if keep is None:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--top", type=int, default=0, help="functions to list")
    parser.add_argument("--keep", type=Path, default=None, help="keep the store and dumps here")
    parser.add_argument(
        "--cache-sim",
        action="store_true",
        help="also simulate caches and branch prediction (valgrind's models, slower)",
    )
    parser.add_argument(
        "--secrets",
        type=int,
        default=200,
        help="secrets in the store, read at random (the bench's stores hold 1,000)",
    )
    args = parser.parse_args(argv)
    return measure(
        args.requests, args.connections, args.top, args.keep, args.cache_sim, args.secrets
    )


if __name__ == "__main__":
    sys.exit(main())
