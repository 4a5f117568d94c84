"""Small helpers shared by tools/bench_load.py and tools/bench_settle.py.

Why a module of its own: both benchmarks must describe the machine the same way, pin to one
core the same way and compute percentiles the same way, or their figures are not comparable.
Nothing here imports rules_engine, so a child process can time its own imports.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]


def machine_description() -> str:
    """CPU model (from /proc/cpuinfo), cores visible (nproc), Python — printed at the top of each run."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        nproc = os.cpu_count() or 0
    return (f"{model}; nproc {nproc}; Python {platform.python_version()} ({platform.python_implementation()}); "
            f"{platform.system()} {platform.release()}")


def load_average() -> str:
    """The 1/5/15-minute load averages: other work on a 2-core machine shows in every figure."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _cpu_busy() -> dict[int, int]:
    """Busy jiffies per CPU from /proc/stat (empty when unavailable)."""
    out: dict[int, int] = {}
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("cpu") and line[3:4].isdigit():
                f = line.split()
                vals = [int(x) for x in f[1:]]
                out[int(f[0][3:])] = sum(vals) - vals[3] - (vals[4] if len(vals) > 4 else 0)  # minus idle, iowait
    except (OSError, ValueError):
        pass
    return out


def pin_one_core() -> int | None:
    """Pin this process to one CPU — the one least busy over the last 0.3 s — so figures are 'per core'.

    None where sched_setaffinity does not exist. Other processes are not kept off that CPU: a busy
    machine still shows in the figures, which is why the load average is printed with them.
    """
    import time

    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    a = _cpu_busy()
    time.sleep(0.3)
    b = _cpu_busy()
    busy = {c: b.get(c, 0) - a.get(c, 0) for c in cpus}
    cpu = min(cpus, key=lambda c: (busy[c], -c))
    os.sched_setaffinity(0, {cpu})
    return cpu


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (q in [0, 100])."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(q / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def verdict(value: float, target: float) -> str:
    """PASS when `value` is at or under `target` (every target here is an upper bound)."""
    return "PASS" if value <= target else "MISS"


def run_child(script: Path, args: list[str], *, env: dict[str, str] | None = None,
              timeout: float = 600) -> tuple[dict[str, Any], float]:
    """Run `python script args…` in a fresh process; return (the JSON its last stdout line holds, wall seconds).

    A fresh process per measurement: a cold start *is* a process start (imports, schema
    compilation and every lazily built table are paid again).
    """
    import time

    full_env = dict(os.environ)
    full_env.setdefault("PYTHONHASHSEED", "0")
    if env:
        full_env.update(env)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout, cwd=str(ROOT))
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"child {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"child {' '.join(args)} printed no result:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1]), wall


def heading(text: str) -> None:
    print(f"\n== {text} ==")
