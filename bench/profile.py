"""Where a server's time goes during a run: py-spy samples its process tree, and the
collapsed stacks are summed into the functions that hold the most samples."""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
from pathlib import Path

RATE = 200  # samples per second


def py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start(pid: int, seconds: float, raw: Path) -> subprocess.Popen[bytes] | None:
    """Sample ``pid`` and its children for ``seconds`` into ``raw`` (collapsed stacks)."""
    binary = py_spy()
    if binary is None:
        return None
    raw.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(  # noqa: S603 - a fixed command
        [
            binary, "record", "--pid", str(pid), "--subprocesses", "--nonblocking",
            "--rate", str(RATE), "--gil", "--duration", str(max(1, round(seconds))),
            "--format", "raw", "--output", str(raw),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def top(raw: Path, count: int = 25) -> str:
    """The functions with the most samples: own (on top of the stack) and inclusive."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        frames = stack.split(";")
        own[frames[-1]] += int(samples)
        for frame in set(frames):
            inclusive[frame] += int(samples)
    total = sum(own.values()) or 1
    lines = [f"{total} samples (active threads only) from {raw.name}", "", "own:"]
    lines += [f"{n / total:6.1%}  {frame}" for frame, n in own.most_common(count)]
    lines += ["", "inclusive:"]
    lines += [f"{n / total:6.1%}  {frame}" for frame, n in inclusive.most_common(count * 2)]
    return "\n".join(lines) + "\n"
