"""Each validator problem kind: a broken fixture, and the code, file and line the analyst sees."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rules_engine.packs.registry import PackSet

PACK = """
region: "{region}"
name: 测试地区（虚构）
version: "{version}"
effective:
  from: {frm}
{to}select_by: settlement
{extends}confidence: sample
provenance:
  - id: T
    title: test fixture
    confidence: sample
catalogues:
  - file: catalogue/items.csv
    kind: service
"""

POLICY = """
conditions:
  inpatient:
    med_type: ["21"]
accumulators:
  - id: dedc_year
    adds: {deductible_of: pool}
  - id: fund_year
    adds: {paid_by: [pool]}
layers:
  - id: pool
    fund_pay_type: "310100"
    setl_field: hifp_pay
    when: {is: inpatient}
    deductible:
      period: year
      accumulator: dedc_year
      amount: 1000
      source: T
    bands:
      ratios: [{to: 30000, ratio: 0.85}, {ratio: 0.9}]
      source: T
    caps:
      - amount: 100000
        period: year
        accumulator: fund_year
"""

CATALOGUE = "code,name,category,selfpay_prop,pric_uplmt_amt,restrictions\nA1,甲项,甲,,,\nB1,乙项,乙,0.1,20,R1\n"
RESTRICTIONS = """
restrictions:
  - id: R1
    text: 限住院
    when: {is: inpatient}
"""


def make(packs, region="990900", version="1", frm="2020-01-01", to=None, extends=None, **files):
    content = {
        "pack.yaml": PACK.format(region=region, version=version, frm=frm, to=f"  to: {to}\n" if to else "",
                                 extends=f'extends: "{extends}"\n' if extends else ""),
        "policy.yaml": POLICY, "restrictions.yaml": RESTRICTIONS, "catalogue/items.csv": CATALOGUE}
    content.update(files)
    return packs.pack(region, version, content)


def problems(packs):
    ps = PackSet.load(packs.root)
    return ps, [p for p in ps.problems]


def only(ps_problems, code):
    found = [p for p in ps_problems if p.code == code]
    assert found, f"expected {code}, got {[p.format() for p in ps_problems]}"
    return found[0]


def line_of(path: Path, needle: str) -> int:
    for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in text:
            return i
    raise AssertionError(needle)


def test_fixture_is_clean(packs):
    make(packs)
    ps, pr = problems(packs)
    assert pr == [] and len(ps.compiled) == 1


def edit(d: Path, name: str, old: str, new: str) -> Path:
    p = d / name
    text = p.read_text(encoding="utf-8")
    assert old in text, old
    p.write_text(text.replace(old, new, 1), encoding="utf-8")
    return p


CASES = [
    # (file, old, new, code, needle on the reported line)
    ("policy.yaml", "{ratio: 0.9}]", "{ratio: 0.9}", "E-YAML-SYNTAX", None),
    ("policy.yaml", "    setl_field: hifp_pay\n", "    setl_field: hifp_pay\n    setl_field: hifob_pay\n",
     "E-YAML-DUPKEY", "setl_field: hifob_pay"),
    ("policy.yaml", "    fund_pay_type:", "    fund_pay_typ:", "E-SCHEMA-UNKNOWN-KEY", "fund_pay_typ:"),
    ("policy.yaml", '    setl_field: hifp_pay\n', "", "E-SCHEMA-MISSING", "- id: pool"),
    ("pack.yaml", 'region: "990900"', "region: 990900", "E-SCHEMA-TYPE", "region: 990900"),
    ("policy.yaml", "ratio: 0.85", "ratio: 85", "E-RATIO-RANGE", "ratio: 85"),
    ("policy.yaml", "{to: 30000, ratio: 0.85}, {ratio: 0.9}", "{to: 30000, ratio: 0.85}, {to: 20000, ratio: 0.9}, {ratio: 1}",
     "E-BANDS-ORDER", "to: 20000"),
    ("policy.yaml", "{to: 30000, ratio: 0.85}, {ratio: 0.9}", "{ratio: 0.85}, {ratio: 0.9}", "E-BANDS-GAP", "ratios:"),
    ("policy.yaml", "      - amount: 100000", "      - amount: 500", "E-CAP-BELOW-DEDUCTIBLE", "amount: 500"),
    ("policy.yaml", "    when: {is: inpatient}", "    when: {is: inpatent}", "E-REF-CONDITION", "is: inpatent"),
    ("policy.yaml", "      accumulator: dedc_year", "      accumulator: dedc_yr", "E-REF-ACCUMULATOR", "dedc_yr"),
    ("policy.yaml", "{paid_by: [pool]}", "{paid_by: [pol]}", "E-REF-LAYER", "- id: fund_year"),
    ("policy.yaml", "      source: T\n    bands", "      source: TT\n    bands", "E-REF-SOURCE", "source: TT"),
    ("policy.yaml", "      amount: 1000", "      amount: 1000.005", "E-MONEY-DECIMALS", "amount: 1000.005"),
    ("policy.yaml", '    med_type: ["21"]', "    med_typ: ['21']", "E-COND-FACT", "med_typ"),
    ("policy.yaml", '    med_type: ["21"]', "    med_type: {lesser: 21}", "E-COND-OP", "lesser"),
    ("policy.yaml", '    med_type: ["21"]', "    med_type: 21", "E-COND-TYPE", "med_type: 21"),
    ("policy.yaml", '    med_type: ["21"]', "    age: {lt: 'eighteen'}", "E-COND-TYPE", "eighteen"),
    ("restrictions.yaml", "    when: {is: inpatient}", "    when: {diagnoses: {icd: ['J18.9.9.9']}}", "E-COND-ICD",
     "J18.9.9.9"),
    ("restrictions.yaml", "  - id: R1", "  - id: R2", "E-REF-RESTRICTION", "B1,", "catalogue/items.csv"),
    ("catalogue/items.csv", "B1,乙项,乙,0.1", "B1,乙项,乙,15%", "E-CSV-VALUE", "B1,"),
    ("catalogue/items.csv", "code,name,category", "code,name,categry", "E-CSV-COLUMN", "code,name"),
    ("catalogue/items.csv", "B1,乙项,乙,0.1", "A1,乙项,乙,0.1", "E-DUPLICATE-CODE", "A1,乙项"),
    ("catalogue/items.csv", "B1,乙项,乙,0.1", "B1,乙项,戊,0.1", "E-SCHEMA-VALUE", "B1,"),
    ("pack.yaml", "    kind: service", "    kind: service\n  - file: catalogue/missing.csv\n    kind: drug",
     "E-PACK-FILE", "missing.csv"),
    ("pack.yaml", "  from: 2020-01-01", "  from: 2020-02-30", "E-DATE", "from: 2020-02-30"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[3] + ":" + c[1][:12] for c in CASES])
def test_problem_is_located(packs, case):
    name, old, new, code, needle = case[:5]
    reported = case[5] if len(case) > 5 else name
    d = make(packs)
    edit(d, name, old, new)
    path = d / reported
    ps, pr = problems(packs)
    p = only(pr, code)
    assert Path(p.file).name == Path(reported).name
    if needle is not None:
        assert p.line == line_of(path, needle), p.format()
    assert p.line > 0
    assert not ps.compiled, "a pack with errors must not compile"


def test_every_problem_in_one_run(packs):
    d = make(packs)
    edit(d, "policy.yaml", "ratio: 0.85", "ratio: 85")
    edit(d, "policy.yaml", "    when: {is: inpatient}", "    when: {is: inpatent}")
    edit(d, "catalogue/items.csv", "B1,乙项,乙,0.1", "B1,乙项,乙,15%")
    _, pr = problems(packs)
    assert {"E-RATIO-RANGE", "E-CSV-VALUE"} <= {p.code for p in pr}


def test_overlapping_versions_and_gap(packs):
    make(packs, version="1", frm="2020-01-01", to="2020-12-31")
    d2 = make(packs, version="2", frm="2020-06-01", to="2021-06-30")
    make(packs, version="3", frm="2022-01-01")
    _, pr = problems(packs)
    p = only(pr, "E-DATES-OVERLAP")
    assert p.file.endswith("2/pack.yaml") and p.line == line_of(d2 / "pack.yaml", "from: 2020-06-01")
    g = only(pr, "W-DATES-GAP")
    assert g.severity == "warning" and "2021-07-01" in g.message


def test_extends_cycle_and_unknown(packs):
    make(packs, region="990901", extends="990902")
    make(packs, region="990902", extends="990901")
    make(packs, region="990903", extends="990999")
    _, pr = problems(packs)
    assert only(pr, "E-EXTENDS-CYCLE").line > 0
    assert "990999" in only(pr, "E-EXTENDS-UNKNOWN").message


def test_alias_bomb_deep_nesting_and_huge_file_are_refused_quickly(packs):
    import time
    d = make(packs)
    bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(9))
    (d / "policy.yaml").write_text(bomb, encoding="utf-8")
    (d / "restrictions.yaml").write_text("[" * 5000 + "]" * 5000, encoding="utf-8")
    t = time.perf_counter()
    _, pr = problems(packs)
    assert time.perf_counter() - t < 10
    assert only(pr, "E-YAML-LIMIT").file.endswith("policy.yaml")
    assert any(p.file.endswith("restrictions.yaml") and p.code in ("E-YAML-LIMIT", "E-YAML-SYNTAX") for p in pr)


def test_no_python_objects_from_yaml(packs):
    d = make(packs)
    (d / "policy.yaml").write_text("layers: !!python/object/apply:os.system ['echo pwned']\n", encoding="utf-8")
    _, pr = problems(packs)
    assert only(pr, "E-YAML-SYNTAX").line == 1


def test_yaml_and_csv_catalogues_checked_by_the_same_schema(packs):
    d = make(packs)
    (d / "catalogue" / "more.yaml").write_text(
        "kind: service\nentries:\n  - code: C1\n    name: 丙项\n    category: 丙\n  - code: C2\n    name: x\n"
        "    category: 乙\n    selfpay_prop: 1.5\n", encoding="utf-8")
    edit(d, "pack.yaml", "    kind: service", "    kind: service\n  - file: catalogue/more.yaml\n    kind: service")
    _, pr = problems(packs)
    p = only(pr, "E-RATIO-RANGE")
    assert p.file.endswith("more.yaml") and p.line == 9


def test_shipped_packs_validate_clean(regions_dir):
    ps = PackSet.load(regions_dir)
    assert [p.format() for p in ps.problems] == []
    assert len(ps.compiled) >= 5


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "rules_engine.cli", *args], capture_output=True, text=True)


def test_cli_exit_codes_and_json(packs):
    d = make(packs)
    assert run_cli("validate", str(packs.root)).returncode == 0
    edit(d, "policy.yaml", "ratio: 0.85", "ratio: 85")
    r = run_cli("validate", str(packs.root), "--format", "json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["errors"] == 1 and out["problems"][0]["code"] == "E-RATIO-RANGE"
    assert {"file", "line", "col", "code", "message"} <= set(out["problems"][0])
    r = run_cli("validate", str(packs.root / "nope"))
    assert r.returncode == 2
    r = run_cli("validate", "--no-such-option")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr


def test_text_output_has_file_line_col_and_hint(packs):
    d = make(packs)
    edit(d, "policy.yaml", "    fund_pay_type:", "    fund_pay_typ:")
    r = run_cli("validate", str(packs.root))
    assert r.returncode == 1
    line = line_of(d / "policy.yaml", "fund_pay_typ:")
    assert f"policy.yaml:{line}:5: error E-SCHEMA-UNKNOWN-KEY: unknown key 'fund_pay_typ'" in r.stdout
    assert "did you mean 'fund_pay_type'?" in r.stdout


SECOND_LAYER = """
  - id: extra
    fund_pay_type: "330100"
    setl_field: hifob_pay
    when: {when}
    bands:
      ratios: [{{ratio: 0.3}}]
"""


def test_parallel_layers_paying_over_100_percent(packs):
    d = make(packs)
    p = edit(d, "policy.yaml", "    caps:", SECOND_LAYER.format(when="{is: inpatient}").rstrip("\n").replace(
        "  - id: extra", "    caps: []\n  - id: extra", 1) + "\n  - id: tail\n    fund_pay_type: \"999997\"\n"
        "    setl_field: oth_pay\n    when: {med_type: '11'}\n    bands:\n      ratios: [{ratio: 0.1}]\n"
        "    caps:")
    _, pr = problems(packs)
    e = only(pr, "E-LAYERS-OVER-100")
    assert "'pool', 'extra'" in e.message and "120%" in e.message
    assert e.line == line_of(p, "- id: extra")


def test_parallel_layers_with_exclusive_conditions_are_fine(packs):
    d = make(packs)
    edit(d, "policy.yaml", "    caps:", SECOND_LAYER.format(when="{med_type: '11'}").rstrip("\n").replace(
        "  - id: extra", "    caps: []\n  - id: extra", 1) + "\n    caps:")
    _, pr = problems(packs)
    assert [p for p in pr if p.severity == "error"] == []


def test_a_misspelt_key_inside_one_of_several_forms_gets_the_nearest_key(packs):
    d = make(packs)
    p = edit(d, "policy.yaml", "{deductible_of: pool}", "{deductible_o: pool}")
    _, pr = problems(packs)
    found = only(pr, "E-SCHEMA-ONEOF")
    assert (found.file.endswith("policy.yaml"), found.line) == (True, line_of(p, "deductible_o:"))
    assert "{deductible_of: …}" in found.message and "{paid_by: …}" in found.message
    assert found.hint and "deductible_of" in found.hint
