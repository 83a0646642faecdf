"""A server's process tree as /proc shows it: CPU time and resident memory.

A target is a process we started plus whatever it forked or spawned (uvicorn's worker
processes, Strongroom's keyholder); both figures are summed over the whole tree.
"""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_PF_KTHREAD = 0x00200000


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (which may hold spaces)."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:  # gone meanwhile
        return None
    return raw[raw.rindex(")") + 2 :].split()


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                parents[int(entry.name)] = int(fields[1])  # field 4: ppid
    return parents


def tree(root: int) -> list[int]:
    """``root`` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _parents().items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(root: int) -> float:
    """User + system CPU seconds used so far by the live processes of the tree."""
    ticks = 0
    for pid in tree(root):
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
    return ticks / _TICKS


def user_cpu_ticks() -> dict[int, int]:
    """Every user-space process's own CPU ticks (kernel threads left out). Children's
    time folded in when they are reaped would land all at once, however long they ran;
    so a process that starts and ends between two snapshots is missed."""
    found: dict[int, int] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is None or int(fields[6]) & _PF_KTHREAD:
            continue
        found[int(entry.name)] = int(fields[11]) + int(fields[12])  # utime, stime
    return found


def other_cpu_seconds(before: dict[int, int], after: dict[int, int], exclude: set[int]) -> float:
    """CPU seconds used between two snapshots by user-space processes not in ``exclude``:
    load on the machine that is neither the server nor the load generator."""
    ticks = sum(t - before.get(pid, 0) for pid, t in after.items() if pid not in exclude)
    return max(0, ticks) / _TICKS


def rss_bytes(root: int) -> int:
    """Resident set size summed over the tree."""
    total = 0
    for pid in tree(root):
        try:
            resident = int((PROC / str(pid) / "statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        total += resident * _PAGE
    return total
