"""The shipped national ICD tables: real answers, every match kind, reverse lookups, round trips, rebuild."""
from __future__ import annotations

import csv
import json
import pickle

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from rules_engine.cli import main
from rules_engine.coding import importer

from .conftest import BASELINE, ICD9_TABLE, ICD10_TABLE, REFERENCE_DATA, ROOT

C10, I10 = "icd10:clinical-2.0", "icd10:insurance-2.0"
C9, I9 = "icd9cm3:clinical-3.0", "icd9cm3:insurance-2.0"


def _rows(path):
    with open(path, encoding="utf-8", newline="") as f:
        return [(i, r) for i, r in enumerate(csv.DictReader(f), start=2)]


ROWS10 = _rows(ICD10_TABLE)
EQUIV10 = [(i, r) for i, r in ROWS10 if r["relationship"] == "equivalent"]


def test_cli_converts_the_issue_example_from_the_real_table():
    res = CliRunner().invoke(main, ["convert", "icd", "I50.900x007", "--from", "clinical-2.0", "--to", "insurance-2.0",
                                    "--regions", str(ROOT / "regions"), "--format", "json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    [t] = out["results"]
    assert (t["kind"], t["targets"], t["silent"]) == ("equivalent", ["I50.900x007"], True)
    [m] = t["matches"]
    assert m["target_name"] == "心功能Ⅱ级（NYHA分级）"
    assert m["location"].endswith("icd10_clinical-2.0_to_insurance-2.0.csv:13192")
    assert out["pack"].startswith("000000@2024.1")


def test_claims_arrive_upper_cased_and_still_match(baseline):
    assert baseline.translate("I50.900X007", C10, I10).targets == ("I50.900x007",)
    assert baseline.translate(" i50.900x007 ", C10, I10).targets == ("I50.900x007",)


def test_clinical_extension_folds_into_its_parent_as_narrower_with_a_warning(baseline):
    t = baseline.translate("I50.900x022", C10, I10)  # 心肾衰竭 → I50.900 心力衰竭
    assert (t.kind, t.targets) == ("source-is-narrower", ("I50.900",))
    assert not t.silent
    assert "x022" in t.matches[0].note and "I50.900" in t.warning()


@pytest.mark.parametrize("code,kind", [
    ("A00.000", "equivalent"),            # R1 same code, same name
    ("A02.100x004", "source-is-narrower"),  # R6 extension → parent
    ("A21.200", "source-is-broader"),     # R7 category → subdivision
    ("A01.000x003+G01*", "related"),      # R8 recoded, renamed
    ("A01.003", "related"),               # R4 same code, renamed (败血症 → 脓毒症)
])
def test_every_relationship_kind_occurs_in_the_real_table(baseline, code, kind):
    t = baseline.translate(code, C10, I10)
    assert t.kind == kind
    assert t.silent == (kind == "equivalent")
    assert (t.warning() is None) == (kind == "equivalent")


def test_reverse_returns_every_clinical_code_of_an_insurance_code(baseline):
    from collections import Counter
    busiest, n = Counter(r["target_code"] for _, r in ROWS10).most_common(1)[0]
    assert n > 10
    expected = [r["source_code"] for _, r in ROWS10 if r["target_code"] == busiest]
    t = baseline.translate(busiest, I10, C10)
    assert sorted(t.targets) == sorted(expected) and len(t.targets) == n
    assert all(m.reverse for m in t.matches)
    assert t.kind == "ambiguous" and not t.silent
    assert all(c in t.warning() for c in expected)
    # every row's relationship is read from the other side
    by = {m.target_code: m.relationship for m in baseline.translate("I50.900", I10, C10).matches}
    assert by["I50.900"] == "equivalent" and by["I50.900x022"] == "source-is-broader"


def test_reverse_via_the_cli_lists_all(tmp_path):
    res = CliRunner().invoke(main, ["convert", "icd", "A15.000x001", "--from", "insurance-2.0", "--to", "clinical-2.0",
                                    "--regions", str(ROOT / "regions"), "--format", "json"])
    assert res.exit_code == 0, res.output
    [t] = json.loads(res.stdout)["results"]
    assert set(t["targets"]) == {r["source_code"] for _, r in ROWS10 if r["target_code"] == "A15.000x001"}
    assert len(t["targets"]) == 3


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(EQUIV10))
def test_equivalent_rows_round_trip(baseline, row):
    _, r = row
    fwd = baseline.translate(r["source_code"], C10, I10)
    assert fwd.targets == (r["target_code"],) and fwd.kind == "equivalent"
    back = baseline.translate(r["target_code"], I10, C10)
    assert r["source_code"] in back.targets
    assert {m.relationship for m in back.matches if m.target_code == r["source_code"]} == {"equivalent"}


def test_procedure_codes_convert_too(baseline):
    t = baseline.translate("00.6400x007", C9, I9)  # recoded, same name
    assert (t.kind, t.targets) == ("equivalent", ("00.6500x014",))
    assert baseline.translate("79.7800x001", C9, I9).kind == "source-is-narrower"


def test_every_row_of_the_shipped_tables_is_reachable_both_ways(baseline):
    for path, s, t in ((ICD10_TABLE, C10, I10), (ICD9_TABLE, C9, I9)):
        cmap = baseline.maps[(s, t)]
        rows = _rows(path)
        assert len(cmap) == len(rows)
        fwd_keys = {r["source_code"].upper() for _, r in rows}
        rev_keys = {r["target_code"].upper() for _, r in rows}
        assert set(cmap.forward) == fwd_keys and set(cmap.reverse) == rev_keys


def test_claim_path_converts_diagnoses_and_warns_on_anything_not_equivalent(baseline):
    conv = baseline.convert_diagnoses(["I50.900x007", "I50.900x022", "Z99.999x999"], "clinical-2.0")
    assert conv.target_system == I10
    assert conv.codes == ("I50.900x007", "I50.900", "Z99.999x999")  # the unknown code is kept
    assert len(conv.warnings) == 2
    assert any("narrower" in w for w in conv.warnings) and any("not in the" in w for w in conv.warnings)
    same = baseline.convert_diagnoses(["J18.900"], "insurance-2.0")
    assert same.codes == ("J18.900",) and same.warnings == ()


def test_the_compiled_coding_pickles_and_answers_the_same(baseline):
    copy = pickle.loads(pickle.dumps(baseline, protocol=pickle.HIGHEST_PROTOCOL))
    for code in ("I50.900x007", "I50.900x022", "A21.200"):
        assert copy.translate(code, C10, I10) == baseline.translate(code, C10, I10)
    assert copy.translate("I50.900", I10, C10) == baseline.translate("I50.900", I10, C10)


def test_every_narrower_or_broader_row_has_a_note():
    for path in (ICD10_TABLE, ICD9_TABLE):
        for line, r in _rows(path):
            if r["relationship"] in ("source-is-narrower", "source-is-broader"):
                assert r["note"].strip(), f"{path.name}:{line}"


@pytest.mark.skipif(not (REFERENCE_DATA / "icd10_guolin2.0_to_yibao2.0.csv").is_file(),
                    reason="shared/reference/data is absent: the shipped tables cannot be rebuilt here")
def test_rebuild_is_byte_for_byte_identical_to_the_shipped_files(tmp_path):
    files = importer.rebuild(REFERENCE_DATA, tmp_path, write=True)
    assert set(files) == {"icd10_clinical-2.0_to_insurance-2.0.csv", "icd9cm3_clinical-3.0_to_insurance-2.0.csv",
                          "IMPORT-REPORT.md"}
    for name in files:
        assert (tmp_path / name).read_bytes() == (BASELINE / "coding" / name).read_bytes(), name


@pytest.mark.skipif(not (REFERENCE_DATA / "icd10_guolin2.0_to_yibao2.0.csv").is_file(),
                    reason="shared/reference/data is absent")
def test_every_published_row_is_imported_and_line_numbers_agree():
    with open(REFERENCE_DATA / "icd10_guolin2.0_to_yibao2.0.csv", encoding="utf-8", newline="") as f:
        src = list(csv.DictReader(f))
    assert len(src) == len(ROWS10) == 35_587
    for (line, ours), theirs in zip(ROWS10[::997], src[::997]):
        assert ours["target_code"] == theirs["yibao_code"].strip(), line
