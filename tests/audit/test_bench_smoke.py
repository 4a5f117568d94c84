"""tools/bench_audit.py runs (--quick), prints its sections, and both backends agree on its claims.
No figure is asserted: timings belong to the benchmark, not to tests."""
from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT


def test_bench_audit_quick_runs_and_reports_every_measurement():
    r = subprocess.run([sys.executable, "tools/bench_audit.py", "--quick", "--n", "200", "--n-durable", "3"],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for heading in ("== load:", "== agreement:", "== per claim", "== summary =="):
        assert heading in r.stdout
    assert "the same hits from both backends" in r.stdout
    assert "faster than the durable-rules reference" in r.stdout and "machine: " in r.stdout
