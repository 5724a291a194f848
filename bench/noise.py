"""The header every run prints: the machine, its load, and how fast it is right now.

The machine is shared. A reader needs to know whether a figure was taken on a quiet or a busy
box, so the header shows the load average, a pure-Python calibration loop timed twice (again at
the end), and the CPU time stolen from us or used by other processes while the bench ran.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from time import perf_counter

CALIBRATION_LOOPS = 2_000_000


def calibrate() -> float:
    """Milliseconds for a fixed pure-Python loop: ~100 ms on a quiet core of this machine."""
    started = perf_counter()
    x = 0
    for i in range(CALIBRATION_LOOPS):
        x += i * i
    return (perf_counter() - started) * 1000


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


@dataclass
class CpuSample:
    """Jiffies from /proc/stat: all cores busy, stolen, total; and our own process's CPU time."""

    busy: int = 0
    steal: int = 0
    total: int = 0
    own: float = 0.0
    wall: float = 0.0

    @classmethod
    def take(cls) -> CpuSample:
        own = sum(os.times()[:4])  # user + system, ours and our reaped children's
        try:
            with open("/proc/stat", encoding="utf-8") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return cls(own=own, wall=perf_counter())
        user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
        busy = user + nice + system + irq + softirq
        return cls(busy, steal, busy + idle + iowait + steal, own, perf_counter())


def header(
    mode: str, client_core: int | None, server_core: int | None
) -> tuple[list[str], CpuSample]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    first, second = calibrate(), calibrate()
    cores = os.cpu_count() or 1
    pinning = (
        f"client on core {client_core}, Demo Shop on core {server_core}"
        if client_core is not None
        else "not pinned (needs Linux and 2 cores)"
    )
    lines = [
        f"csflow bench ({mode})  python {platform.python_version()} on {_cpu_model()}, {cores} cores; {pinning}",
        "versions: "
        + ", ".join(
            f"{d} {_version(d)}"
            for d in ("httpx", "aiohttp", "httpx-aiohttp", "jinja2", "uvicorn", "uvloop")
        ),
        f"noise: load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min); "
        f"calibration loop {first:.0f} ms, {second:.0f} ms ({_spread(first, second)} apart)",
    ]
    return lines, CpuSample.take()


def footer(before: CpuSample) -> str:
    """The load while we ran: steal, and CPU that other processes than ours used."""
    after = CpuSample.take()
    third = calibrate()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text = f"noise after: load average {load:.2f}; calibration loop {third:.0f} ms"
    total = after.total - before.total
    if total > 0:
        hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        steal = 100 * (after.steal - before.steal) / total
        others = (after.busy - before.busy) / hz - (after.own - before.own)
        cores = total / hz / max(after.wall - before.wall, 1e-9)
        text += (
            f"; during the run: steal {steal:.1f}%, processes other than the bench and its Demo Shop used "
            f"{max(others, 0) / max(after.wall - before.wall, 1e-9):.2f} of {cores:.0f} cores"
        )
    return text


def _spread(a: float, b: float) -> str:
    return f"{abs(a - b) / min(a, b) * 100:.0f}%"


def pin(core: int) -> None:
    os.sched_setaffinity(0, {core})


def pick_cores(client: int, server: int) -> tuple[int | None, int | None]:
    """The cores to pin to, or (None, None) where pinning is impossible."""
    if not hasattr(os, "sched_setaffinity"):
        return None, None
    allowed = os.sched_getaffinity(0)
    if client in allowed and server in allowed and client != server:
        return client, server
    if len(allowed) >= 2:
        first, second = sorted(allowed)[:2]
        return first, second
    return None, None


if __name__ == "__main__":  # pragma: no cover - a quick look at the machine
    print("\n".join(header("noise only", None, None)[0]), file=sys.stdout)
