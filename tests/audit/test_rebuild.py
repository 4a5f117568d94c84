"""The baseline's audit folder is exactly what tools/rebuild_audit.py makes from the reference data."""
from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import ROOT

DATA = ROOT.parent / "shared" / "reference" / "data"
SHIPPED = ROOT / "regions" / "000000" / "2024.1" / "audit"
needs_data = pytest.mark.skipif(not (DATA / "nhsa_liangku_drug_rules.csv").is_file(),
                                reason=f"the reference data folder {DATA} is not here (it sits beside the repository)")


@needs_data
def test_the_shipped_audit_rules_are_a_byte_for_byte_rebuild(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    import rebuild_audit
    files = rebuild_audit.build(DATA)
    assert sorted(files) == sorted(p.name for p in SHIPPED.iterdir() if p.is_file())
    for name, text in files.items():
        assert (SHIPPED / name).read_bytes() == text.encode("utf-8"), \
            f"{name} differs from a rebuild: run 'python tools/rebuild_audit.py'"


@needs_data
def test_the_tool_checks_and_writes(tmp_path):
    r = subprocess.run([sys.executable, "tools/rebuild_audit.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path / "audit"
    r = subprocess.run([sys.executable, "tools/rebuild_audit.py", "--out", str(out)], cwd=ROOT, capture_output=True,
                       text=True)
    assert r.returncode == 0 and "2,321 rules" in r.stdout and "0 error(s)" in r.stdout, r.stdout + r.stderr
    (out / "drug-rules.csv").write_text("id\n", encoding="utf-8")
    r = subprocess.run([sys.executable, "tools/rebuild_audit.py", "--check", "--out", str(out)], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 1 and "differs" in r.stdout


@needs_data
def test_every_source_row_is_accounted_for():
    report = (SHIPPED / "IMPORT-REPORT.md").read_text(encoding="utf-8")
    assert "| nhsa_liangku_service_item_duplicate_charge.csv | 重复收费 | 900 | 900 |" in report
    assert "| nhsa_liangku_drug_rules.csv | 限定性别对象 | 481 | 481 |" in report
    assert "None: every row became a rule" in report
    assert "row 898: 注射用益气复脉(冻干)" in report   # the source's own 15 vs 14 days, noted
