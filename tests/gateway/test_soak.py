"""The soak: 1,000 claims against the simulator, 10 % of them with an injected fault (any kind, at
any step), then resubmission of what failed, like an operator would. It must end with every claim
booked exactly once (0 lost, 0 doubled), the outbox agreeing with the platform's ledger msgid by
msgid, nothing unfinished, and 3201 balanced for every day. The figures are printed (pytest -s);
`python tools/soak_gateway.py --full` runs 5,000."""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))


def test_soak_1000_claims_with_10_percent_faults(tmp_path):
    from soak_gateway import run_soak
    f = run_soak(1000, fault_share=0.10, concurrency=16, seed=20250312, workdir=tmp_path)
    print(json.dumps({k: v for k, v in f.items() if k != "workdir"}, ensure_ascii=False, indent=1))
    assert f["faulted_claims"] == 100 and f["simulator_faults_applied"] >= 90
    assert f["lost"] == 0 and f["doubled"] == 0 and f["mismatched"] == 0 and f["unfinished"] == 0
    assert f["booked"] == 1000
    assert f["balanced"] and sum(r["fixmedins_setl_cnt"] for r in f["reconciliation"]) == 1000
    assert f["reversals_2601"] > 0  # the unknown outcomes really happened and were reversed
