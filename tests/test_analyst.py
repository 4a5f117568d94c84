"""The analyst's week: a policy diff that speaks policy, and a new version made without Python."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "rules_engine.cli", *args], capture_output=True, text=True, cwd=cwd)


def copy(tmp_path) -> Path:
    dst = tmp_path / "regions"
    shutil.copytree(ROOT / "regions", dst)
    return dst


def test_diff_speaks_policy():
    r = run("diff", "110000@2018.1", "110000@2021.1")
    assert r.returncode == 0, r.stderr
    assert "城乡居民门诊统筹 (resident_outpatient): cap (year) 3,000 → 4,500" in r.stdout
    assert "layer removed: 职工大额医疗费用互助资金（住院） (employee_inpatient_large)" in r.stdout
    r = run("diff", "110000@2021.1", "110000@2023.1", "--format", "json")
    out = json.loads(r.stdout)
    assert any(c["text"].endswith("cap (year) removed (was 20,000)") for c in out["changes"])


def test_diff_of_a_ratio_and_catalogue_changes_and_the_claims_it_moves(tmp_path):
    root = copy(tmp_path)
    old_pack = root / "110000" / "2025.1" / "pack.yaml"
    old_pack.write_text(old_pack.read_text(encoding="utf-8").replace("  from: 2025-01-01\n",
                                                                     "  from: 2025-01-01\n  to: 2026-12-31\n"),
                        encoding="utf-8")
    new = root / "110000" / "2025.9"
    shutil.copytree(root / "110000" / "2025.1", new)
    pack = (new / "pack.yaml").read_text(encoding="utf-8").replace('version: "2025.1"', 'version: "2025.9"')
    pack = pack.replace("  from: 2025-01-01\n  to: 2026-12-31", "  from: 2027-01-01")
    (new / "pack.yaml").write_text(pack, encoding="utf-8")
    assert run("validate", str(root)).returncode == 0
    policy = new / "policy.yaml"
    policy.write_text(policy.read_text(encoding="utf-8").replace(
        "value: [{to: 30000, ratio: 0.85}", "value: [{to: 30000, ratio: 0.90}"), encoding="utf-8")
    cat = new / "catalogue" / "services-sample.yaml"
    text = cat.read_text(encoding="utf-8")
    text = text.replace('  - code: "001102000030000"\n    name: 急诊诊查费\n    category: 甲',
                        '  - code: "001102000030000"\n    name: 急诊诊查费\n    category: 乙\n    pric_uplmt_amt: 20')
    text += "  - code: NEW-1\n    name: 新项目\n    category: 乙\n  - code: NEW-2\n    name: 新项目2\n    category: 乙\n"
    cat.write_text(text, encoding="utf-8")
    r = run("diff", str(root / "110000" / "2025.1"), str(new), "--format", "markdown",
            "--claims", str(ROOT / "examples" / "claims" / "beijing-inpatient.json"),
            "--claims", str(ROOT / "examples" / "claims" / "beijing-resident.json"))
    assert r.returncode == 0, r.stderr
    md = r.stdout
    assert "ratio for hosp_lv = 3, band 0–30,000: 0.85 → 0.9" in md
    assert "2 entries added to 乙类" in md and "1 moved 甲 → 乙" in md and "1 price ceilings lowered" in md
    # the tier-3 inpatient claim pays more; the 二级 resident claim does not move
    assert "beijing-inpatient.json | 1360.85 | 1440.90 | +80.05" in md
    assert "beijing-resident.json" not in md


def test_new_version_copies_closes_and_validates(tmp_path):
    root = copy(tmp_path)
    r = run("new-version", "110000", "--from", "2025.1", "--effective", "2026-01-01", "--regions", str(root))
    assert r.returncode == 0, r.stderr
    old = (root / "110000" / "2025.1" / "pack.yaml").read_text(encoding="utf-8")
    new = (root / "110000" / "2026.1" / "pack.yaml").read_text(encoding="utf-8")
    assert "  to: 2025-12-31" in old and "# yaml-language-server" in old.splitlines()[0]
    assert 'version: "2026.1"' in new and "  from: 2026-01-01" in new and "  to:" not in new
    assert run("validate", str(root)).returncode == 0


def test_new_version_rolls_back_when_validation_fails(tmp_path):
    root = copy(tmp_path)
    policy = root / "110000" / "2025.1" / "policy.yaml"
    policy.write_text(policy.read_text(encoding="utf-8").replace("ratio: 0.85", "ratio: 85"), encoding="utf-8")
    before = (root / "110000" / "2025.1" / "pack.yaml").read_text(encoding="utf-8")
    r = run("new-version", "110000", "--from", "2025.1", "--effective", "2026-01-01", "--regions", str(root))
    assert r.returncode == 1 and "nothing was changed" in r.stderr and "E-RATIO-RANGE" in r.stderr
    assert not (root / "110000" / "2026.1").exists()
    assert (root / "110000" / "2025.1" / "pack.yaml").read_text(encoding="utf-8") == before


def test_new_version_refuses_a_date_outside_the_old_range(tmp_path):
    root = copy(tmp_path)
    r = run("new-version", "110000", "--from", "2021.1", "--effective", "2024-01-01", "--version", "2024.1",
            "--regions", str(root))
    assert r.returncode == 2 and "is not inside" in r.stderr
