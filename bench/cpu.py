"""CPU seconds of this process and its worker processes, live or finished (Linux /proc)."""

from __future__ import annotations

import os
import resource
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _descendants_cpu(pid: int) -> float:
    """CPU of every live descendant of ``pid`` (its own reaped children's CPU included)."""
    procs: dict[int, tuple[int, float]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # ppid; utime + stime + cutime + cstime (children it has reaped)
        cpu = sum(int(f) for f in fields[11:15]) / _TICK
        procs[int(stat.parent.name)] = (int(fields[1]), cpu)
    total, frontier = 0.0, {pid}
    while frontier:
        nxt = {p for p, (ppid, _) in procs.items() if ppid in frontier}
        total += sum(procs[p][1] for p in nxt)
        frontier = nxt
    return total


def tree_cpu() -> float:
    """User+system CPU of this process and all its descendants, live or reaped."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    dead = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + dead.ru_utime + dead.ru_stime + _descendants_cpu(os.getpid())
