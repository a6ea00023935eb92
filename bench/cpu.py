"""CPU seconds of this process and its worker processes, live or finished (Linux /proc)."""

from __future__ import annotations

import os
import resource
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _children_cpu(pid: int) -> float:
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # ppid
            total += (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime
    return total


def tree_cpu() -> float:
    """User+system CPU of this process, its live children and its reaped children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    dead = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + dead.ru_utime + dead.ru_stime + _children_cpu(os.getpid())
