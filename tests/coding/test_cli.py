"""`rules-engine convert icd|item` end to end: codes, CSV columns, bad input (exit codes, located messages,
nothing written)."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

from click.testing import CliRunner

from rules_engine.cli import main

from .conftest import ROOT

REGIONS = str(ROOT / "regions")


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def _read(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_csv_column_is_converted_end_to_end_in_a_real_process(tmp_path):
    src = tmp_path / "diagnoses.csv"
    src.write_text("claim,diag_code,diag_name\n"
                   "c1,I50.900x007,心功能Ⅱ级\n"
                   "c2,I50.900x022,心肾衰竭\n"
                   "c3,,\n"
                   "c4,I50.900X007,同上（大写）\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    # (not `python -m rules_engine.cli`: run as __main__, cli.py does not see the commands/ plug-ins)
    r = subprocess.run([sys.executable, "-c", "from rules_engine.cli import main; main()", "convert", "icd", "--from", "clinical-2.0",
                        "--to", "insurance-2.0", "--column", "diag_code", "--in", str(src), "--out", str(out),
                        "--regions", REGIONS], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    rows = _read(out)
    assert list(rows[0]) == ["claim", "diag_code", "diag_name", "diag_code_insurance-2.0", "diag_code_match"]
    assert [(x["diag_code_insurance-2.0"], x["diag_code_match"]) for x in rows] == [
        ("I50.900x007", "equivalent"), ("I50.900", "source-is-narrower"), ("", ""), ("I50.900x007", "equivalent")]
    assert rows[1]["diag_name"] == "心肾衰竭"  # the input columns are kept as they were
    assert "4 row(s)" in r.stderr and "source-is-narrower 1" in r.stderr


def test_csv_with_several_targets_joins_them_and_says_ambiguous(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("code\nA15.000x001\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    res = run("convert", "icd", "--from", "insurance-2.0", "--to", "clinical-2.0", "--column", "code", "--in", str(src),
              "--out", str(out), "--regions", REGIONS, "--out-column", "clinical", "--kind-column", "kind")
    assert res.exit_code == 0, res.output
    [row] = _read(out)
    assert row["kind"] == "ambiguous" and set(row["clinical"].split(";")) == {"A15.000x001", "A15.008", "A15.009"}


def test_csv_missing_the_column_writes_nothing(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("diag\nJ18.900\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    res = run("convert", "icd", "--from", "clinical-2.0", "--to", "insurance-2.0", "--column", "diag_code",
              "--in", str(src), "--out", str(out), "--regions", REGIONS)
    assert res.exit_code == 1
    assert "no column 'diag_code'" in res.output and "nothing written" in res.output and str(src) in res.output
    assert not out.exists()


def test_csv_with_malformed_and_unknown_codes_marks_them_locates_them_and_exits_1(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("id,diag_code\n1,J18.900\n2,J18..9\n3,Z99.999x999\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    res = run("convert", "icd", "--from", "clinical-2.0", "--to", "insurance-2.0", "--column", "diag_code",
              "--in", str(src), "--out", str(out), "--regions", REGIONS)
    assert res.exit_code == 1
    assert f"{src}:3:3: error E-CODE-FORM" in res.output
    kinds = [r["diag_code_match"] for r in _read(out)]
    assert kinds == ["equivalent", "malformed", "unknown"]


def test_csv_output_may_not_overwrite_the_input_or_an_existing_column(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("code,code_match\nJ18.900,x\n", encoding="utf-8")
    res = run("convert", "icd", "--from", "clinical-2.0", "--to", "insurance-2.0", "--column", "code", "--in", str(src),
              "--out", str(src), "--regions", REGIONS)
    assert res.exit_code == 2
    res = run("convert", "icd", "--from", "clinical-2.0", "--to", "insurance-2.0", "--column", "code", "--in", str(src),
              "--out", str(tmp_path / "o.csv"), "--regions", REGIONS)
    assert res.exit_code == 2 and "already exists" in res.output and not (tmp_path / "o.csv").exists()


def test_unknown_code_exits_1_with_a_clear_message():
    res = run("convert", "icd", "J18.900", "Z99.999x999", "--from", "clinical-2.0", "--to", "insurance-2.0",
              "--regions", REGIONS, "--format", "json")
    assert res.exit_code == 1
    assert "Z99.999x999: not in the icd10:clinical-2.0 → icd10:insurance-2.0 map" in res.stderr
    kinds = [t["kind"] for t in json.loads(res.stdout)["results"]]
    assert kinds == ["equivalent", "unknown"]


def test_malformed_code_is_a_located_error_and_nothing_is_converted():
    res = run("convert", "icd", "J18.900", "J18.9x0", "--from", "clinical-2.0", "--to", "insurance-2.0",
              "--regions", REGIONS)
    assert res.exit_code == 1
    assert "argument 2: error E-CODE-FORM: 'J18.9x0'" in res.output
    assert "J18.900 " not in res.stdout


def test_unknown_edition_and_usage_errors():
    res = run("convert", "icd", "J18.900", "--from", "clinical-9.9", "--to", "insurance-2.0", "--regions", REGIONS)
    assert res.exit_code == 2 and "clinical-9.9" in res.output and "icd10:clinical-2.0" in res.output
    assert run("convert", "icd", "--from", "clinical-2.0", "--to", "insurance-2.0", "--regions", REGIONS).exit_code == 2
    res = run("convert", "icd", "J18.900", "--from", "clinical-2.0", "--to", "insurance-2.0", "--regions", REGIONS,
              "--column", "x")
    assert res.exit_code == 2


def test_procedure_edition_is_found_from_the_edition_name():
    res = run("convert", "icd", "00.6400x007", "--from", "clinical-3.0", "--to", "insurance-2.0", "--regions", REGIONS,
              "--format", "json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert (out["from"], out["to"]) == ("icd9cm3:clinical-3.0", "icd9cm3:insurance-2.0")
    assert out["results"][0]["targets"] == ["00.6500x014"]


def test_table_output_shows_every_target_and_the_claim_warning():
    res = run("convert", "icd", "I50.900", "--from", "insurance-2.0", "--to", "clinical-2.0", "--regions", REGIONS)
    assert res.exit_code == 0, res.output
    assert "I50.900x022" in res.stdout and "ambiguous" in res.stdout and "claim warning" in res.stdout


def test_item_codes_map_with_institution_rows_and_catalogue_names():
    res = run("convert", "item", "ZC0001", "1001", "--region", "110000", "--fixmedins-code", "H11010500001",
              "--date", "2021-06-01", "--regions", REGIONS, "--format", "json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    got = {r["local_code"]: (r["national_code"], r["kind"]) for r in out["results"]}
    assert got == {"ZC0001": ("001102000030000", "institution"), "1001": ("001102000050000", "institution")}
    assert out["results"][0]["catalogue"] == "甲 急诊诊查费"


def test_item_code_without_a_mapping_exits_1_with_the_reason():
    res = run("convert", "item", "ZC0001", "TS0001", "NOPE", "--region", "110000", "--date", "2021-06-01",
              "--regions", REGIONS, "--format", "json")
    assert res.exit_code == 1
    kinds = [r["kind"] for r in json.loads(res.stdout)["results"]]
    assert kinds == ["region", "not-mapped", "unknown"]
    assert "marks TS0001 as not mapped" in res.stderr and "NOPE is not in the region's item map" in res.stderr


def test_item_csv_with_an_institution_column(tmp_path):
    src = tmp_path / "lines.csv"
    src.write_text("fixmedins_code,medins_list_codg,amt\nH11010500001,ZC0001,30\n,ZC0001,30\n,TS0001,200\n",
                   encoding="utf-8")
    out = tmp_path / "out.csv"
    res = run("convert", "item", "--region", "110000", "--date", "2021-06-01", "--regions", REGIONS, "--column",
              "medins_list_codg", "--fixmedins-column", "fixmedins_code", "--in", str(src), "--out", str(out))
    assert res.exit_code == 1  # TS0001 maps to nothing; the output is still complete
    rows = _read(out)
    assert [(r["medins_list_codg_national"], r["medins_list_codg_match"]) for r in rows] == [
        ("001102000030000", "institution"), ("001102000050000", "region"), ("", "not-mapped")]


def test_no_pack_on_the_date_says_which_versions_exist():
    res = run("convert", "item", "ZC0001", "--region", "110000", "--date", "1990-01-01", "--regions", REGIONS)
    assert res.exit_code == 1 and "1990-01-01" in res.output


def test_coding_import_command_writes_a_table_and_a_report(tmp_path):
    src = tmp_path / "pub.csv"
    src.write_text("国临版编码,国临版名称,医保版2.0编码,医保版2.0名称\n"
                   "A00.000,霍乱,A00.000,霍乱\n"
                   "A00.000x001,古典生物型霍乱,A00.000,霍乱\n"
                   "B37.600I39.8,念珠菌性心内膜炎,B37.600+I39.8*,念珠菌性心内膜炎\n"
                   "J18,肺炎,J18.900,肺炎\n"
                   "??,坏行,A00.000,霍乱\n", encoding="utf-8")
    out, report = tmp_path / "map.csv", tmp_path / "report.md"
    res = run("coding", "import", "icd10", str(src), str(out), "--report", str(report))
    assert res.exit_code == 0, res.output
    rows = _read(out)
    assert [(r["source_code"], r["relationship"]) for r in rows] == [
        ("A00.000", "equivalent"), ("A00.000x001", "source-is-narrower"), ("B37.600+I39.8*", "equivalent"),
        ("J18", "equivalent")]
    text = report.read_text(encoding="utf-8")
    assert "line 6: malformed code" in text and "`B37.600I39.8` → `B37.600+I39.8*`" in text
    assert f"{src}:6: rejected" in res.output


def test_coding_import_of_an_unknown_layout_is_a_clear_error(tmp_path):
    src = tmp_path / "pub.csv"
    src.write_text("a,b\n1,2\n", encoding="utf-8")
    res = run("coding", "import", "icd10", str(src), str(tmp_path / "o.csv"))
    assert res.exit_code == 1 and "unknown layout" in res.output and not (tmp_path / "o.csv").exists()
    res = run("coding", "import", "icd10", str(src), str(tmp_path / "o.csv"), "--columns",
              "source_code=a,source_name=b,target_code=a,target_name=b")
    assert res.exit_code == 0, res.output
