"""CPU seconds of processes (ours, children, or servers by pid) for msgs/s per core."""

from __future__ import annotations

import os
import resource
import time

_TICK = os.sysconf("SC_CLK_TCK")


def self_cpu() -> float:
    return time.process_time()


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def pid_cpu(pid: int) -> float:
    """utime + stime (+ waited-for children) of a live process, from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # fields[0] is state (field 3); utime..cstime are fields 14..17
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / _TICK


def pids_cpu(pids: list[int]) -> float:
    return sum(pid_cpu(p) for p in pids)


def tree_pids(root: int) -> list[int]:
    """root and all its descendants (rspamd forks workers)."""
    out = [root]
    i = 0
    while i < len(out):
        try:
            with open(f"/proc/{out[i]}/task/{out[i]}/children") as fh:
                out.extend(int(x) for x in fh.read().split())
        except OSError:
            pass
        i += 1
    return out
