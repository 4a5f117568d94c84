"""Smoke tests of the benchmarks: each tool runs with --quick, exits 0 and prints its sections.

No figure is asserted (timings belong to the benchmarks, not to tests). What a user relies on:
the commands in docs/benchmarks.md work from a fresh checkout, a missing optional engine is
skipped with a notice rather than a traceback, and an alternative that disagrees with our
settlement makes the tool fail.
"""
from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"


def run_tool(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def installed(module: str) -> bool:
    """Importable here — the same test the tool makes before it skips an engine with a notice."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def test_bench_load_quick_runs_and_reports_every_measurement():
    r = run_tool(str(TOOLS / "bench_load.py"), "--quick")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    for heading in ("== generated pack ==", "== cold load:", "== cached load:", "== memory:", "== summary =="):
        assert heading in out, f"missing section {heading!r}:\n{out}"
    assert "machine: " in out and "nproc" in out
    for target in ("target ≤ 1000 ms", "target ≤ 100 ms", "target ≤ 300 MB"):
        assert target in out
    summary = out.split("== summary ==", 1)[1]
    assert summary.count("PASS") + summary.count("MISS") == 3
    assert "Traceback" not in r.stderr


def test_bench_settle_quick_agrees_to_the_fen_and_reports_targets():
    r = run_tool(str(TOOLS / "bench_settle.py"), "--quick")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    for heading in ("== the claim ==", "== agreement on the key totals (fen), same claim ==",
                    "== latency per claim, one core", "== targets =="):
        assert heading in out, f"missing section {heading!r}:\n{out}"
    assert "every system agrees to the fen" in out
    assert "DISAGREE" not in out
    assert "p50 latency" in out and "p99 latency" in out
    assert "durable-rules 2.0.28" in out  # a core dependency: always measured
    for module, dist in (("zen", "zen-engine"), ("openfisca_core", "openfisca-core")):
        if installed(module):
            assert f"faster than {'zen-engine' if module == 'zen' else 'OpenFisca-Core'}" in out
        else:
            assert f"NOTICE: {dist} is not installed" in out, out
    if installed("zen"):
        assert "zen-engine 0.37." in out or "NOTICE: zen-engine" in out  # the version used is said
    assert "Traceback" not in r.stderr


def test_bench_settle_exits_nonzero_when_an_alternative_disagrees():
    # --perturb gives the hand-written alternatives a 15 % 乙类 ratio where the pack says 10 %
    r = run_tool(str(TOOLS / "bench_settle.py"), "--quick", "--perturb", "--only", "durable")
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    assert "DISAGREE" in r.stdout
    assert "durable-rules 2.0.28 disagrees with ours on preselfpay_amt" in r.stdout
    assert "Traceback" not in r.stderr
