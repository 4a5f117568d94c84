"""The examples the README shows must keep working: a reader copies them first."""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from rules_engine.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_readme_reform_overlay_pays_five_points_more_on_the_first_band():
    """beijing-inpatient: tier 3, employee, in-scope 2,901.00, first admission deductible 1,300 —
    the reform's +5 points on the first band is 5 % of (2,901 − 1,300) = 80.05 more from the pool,
    and the patient pays exactly that much less."""
    r = CliRunner().invoke(main, [
        "impact", "--claims", str(ROOT / "examples/claims/beijing-inpatient.json"),
        "--base", "110000@2025.1", "--reform", str(ROOT / "examples/reforms/beijing-tier3-plus5.yaml"),
        "--regions", str(ROOT / "regions"), "--format", "json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    totals = {t["field"]: t for t in out["totals"]}
    assert Decimal(str(totals["hifp_pay"]["delta"])) == Decimal("80.05")
    assert Decimal(str(totals["psn_part_amt"]["delta"])) == Decimal("-80.05")
    assert Decimal(str(totals["medfee_sumamt"]["delta"])) == 0
    assert [c["path"] for c in out["reform"]["changes"]] == [
        "layers[id=employee_inpatient_pool].bands.ratios.cases[0].value[0].ratio",
        "layers[id=employee_inpatient_pool].caps[0].amount"]
