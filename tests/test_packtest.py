"""The pack-test runner: PASS, FAIL with expected/actual/why, ERROR for broken tests or the wrong pack."""
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


def test_shipped_pack_tests_pass():
    r = run("test", "regions", "--format", "json")
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["FAIL"] == out["ERROR"] == 0
    # every shipped pack carries tests
    packs = {p.parent for p in (ROOT / "regions").rglob("pack.yaml")}
    with_tests = {p.parent.parent for p in (ROOT / "regions").rglob("tests/*.yaml")}
    assert packs <= with_tests


def test_failure_shows_expected_actual_and_why(tmp_path):
    root = copy(tmp_path)
    f = root / "110000" / "2021.1" / "tests" / "worked-examples.yaml"
    f.write_text(f.read_text(encoding="utf-8").replace("hifp_pay: 9095.00, psn_part_amt",
                                                       "hifp_pay: 9000.00, psn_part_amt"), encoding="utf-8")
    r = run("test", str(root / "110000" / "2021.1"))
    assert r.returncode == 1
    assert "FAIL HMIA illustration" in r.stdout
    assert "setlinfo.hifp_pay: expected 9000.0, actual 9095.00" in r.stdout
    assert "(12000.00 − 1300.00) × 85%" in r.stdout


def test_wrong_pack_and_broken_test_are_errors(tmp_path):
    root = copy(tmp_path)
    d = root / "110000" / "2021.1" / "tests"
    (d / "wrong.yaml").write_text(
        "tests:\n  - name: dated 2019, so another version settles it\n    claim:\n      insutype: '310'\n"
        "      med_type: '21'\n      age: 40\n      hosp_lv: '3'\n      setl_time: '2019-01-01'\n"
        "      feedetail: [{feedetl_sn: '1', med_list_codg: '001102000050000', cnt: 1, pric: 1, "
        "det_item_fee_sumamt: 1}]\n    expect: {setlinfo: {hifp_pay: 0}}\n", encoding="utf-8")
    (d / "broken.yaml").write_text("tests:\n  - name: no expectation\n    claim: {}\n    expct: {}\n", encoding="utf-8")
    r = run("test", str(root / "110000" / "2021.1"), "--format", "json")
    out = json.loads(r.stdout)
    assert r.returncode == 1 and out["ERROR"] >= 2
    msgs = " ".join(x["message"] or "" for x in out["results"] if x["status"] == "ERROR")
    assert "110000@2018.1" in msgs and "not by the pack under test" in msgs
    assert "E-SCHEMA" in msgs


def test_pytest_collects_pack_tests(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "--import-mode=importlib",
                        str(ROOT / "regions" / "990001")], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "serious-illness.yaml" in r.stdout and "1 passed" in r.stdout
