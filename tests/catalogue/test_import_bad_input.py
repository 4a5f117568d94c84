"""Every input an analyst can get wrong: handled, reported with row and column, never half-written.

One test per bad-input kind of issue 6 (missing column, duplicate codes, '15%' / '0,15', dates in
three formats, unreadable file) and of the published spreadsheets themselves (codes that lost
their leading zeros, full-width characters, trailing spaces, merged header rows, heading rows).
"""
from __future__ import annotations

import json

import pytest

GOOD = [["000000000001", "阿莫西林胶囊", "甲", "", "", "2025-01-01", "", ""],
        ["000000000002", "头孢克洛胶囊", "乙", "0.1", "3.50", "2025-01-01", "2025-12-31", ""]]


def report_of(tmp_path, name="r.json"):
    return json.loads((tmp_path / name).read_text(encoding="utf-8"))


def snapshot(pack):
    return {p.relative_to(pack): p.read_bytes() for p in pack.rglob("*") if p.is_file()}


def test_clean_file_imports_and_reports(tmp_path, pack, mapping, cli, h):
    f = h.write_csv(tmp_path / "drugs.csv", GOOD)
    r = h.do_import(cli, f, pack, mapping, "--report", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    csv_text = h.read(pack / "catalogue" / "drugs.csv")
    assert csv_text.splitlines()[0].startswith("code,")
    assert "000000000002,头孢克洛胶囊,乙,0.1,3.5," in csv_text
    rep = report_of(tmp_path)
    assert rep["summary"]["added"] == 2 and rep["summary"]["rows rejected"] == 0
    assert "catalogue/drugs.csv" in h.read(pack / "pack.yaml")


def test_missing_required_column_is_located_and_nothing_written(tmp_path, pack, mapping, cli, h):
    header = [c for c in h.HEADER if c != "甲乙类别"]
    rows = [[c for i, c in enumerate(r) if h.HEADER[i] != "甲乙类别"] for r in GOOD]
    f = h.write_csv(tmp_path / "drugs.csv", rows, header=header)
    before = snapshot(pack)
    r = h.do_import(cli, f, pack, mapping)
    assert r.exit_code == 1
    assert "E-COLUMN-MISSING" in r.output and "甲乙类别" in r.output and "drugs.csv:1:" in r.output
    assert snapshot(pack) == before


def test_missing_column_suggests_the_near_header(tmp_path, pack, mapping, cli, h):
    header = ["医保编码", "药品名称", "甲乙类", "自付比例", "限价", "开始日期", "结束日期", "限定支付范围"]
    f = h.write_csv(tmp_path / "drugs.csv", GOOD, header=header)
    r = h.do_import(cli, f, pack, mapping)
    assert r.exit_code == 1 and "did you mean '甲乙类'" in r.output


def test_duplicate_codes_name_both_rows_and_nothing_written(tmp_path, pack, mapping, cli, h):
    rows = GOOD + [["000000000001", "阿莫西林胶囊", "乙", "", "", "2025-06-01", "", ""]]
    f = h.write_csv(tmp_path / "drugs.csv", rows)
    before = snapshot(pack)
    r = h.do_import(cli, f, pack, mapping)
    assert r.exit_code == 1
    assert "E-IMPORT-DUPLICATE" in r.output and "rows 2, 4" in r.output
    assert snapshot(pack) == before


def test_same_code_with_separate_validity_is_not_a_duplicate(tmp_path, pack, mapping, cli, h):
    rows = [["000000000001", "阿莫西林胶囊", "甲", "", "", "2025-01-01", "2025-06-30", ""],
            ["000000000001", "阿莫西林胶囊", "乙", "", "", "2025-07-01", "", ""]]
    r = h.do_import(cli, h.write_csv(tmp_path / "d.csv", rows), pack, mapping)
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("cell", ["15%", "0,15", "0.15", "１５％"])
def test_ratio_written_as_percent_or_decimal_comma_is_converted(tmp_path, pack, mapping, cli, h, cell):
    rows = [["000000000003", "布洛芬片", "乙", cell, "", "", "", ""]]
    r = h.do_import(cli, h.write_csv(tmp_path / "d.csv", rows), pack, mapping, "--report", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    assert ",0.15," in h.read(pack / "catalogue" / "drugs.csv")
    conv = report_of(tmp_path)["conversions"]
    if cell != "0.15":
        assert any(c["row"] == 2 and c["column"].startswith("自付比例") for c in conv)


def test_ratio_without_percent_above_one_is_rejected_with_row_and_column(tmp_path, pack, mapping, cli, h):
    rows = GOOD + [["000000000004", "布洛芬片", "乙", "15", "", "", "", ""]]
    f = h.write_csv(tmp_path / "d.csv", rows)
    before = snapshot(pack)
    r = h.do_import(cli, f, pack, mapping, "--report", tmp_path / "r.json")
    assert r.exit_code == 1
    assert "d.csv:4: rejected: 自付比例 (D)" in r.output and "15 % or 0.15" in r.output
    assert snapshot(pack) == before
    rej = report_of(tmp_path)["rejected"]
    assert rej == [{"row": 4, "column": "自付比例 (D)", "value": "15",
                    "reason": rej[0]["reason"], "hint": "write 0.15 or 15%"}]


def test_keep_going_writes_the_other_rows_and_lists_the_rejected(tmp_path, pack, mapping, cli, h):
    rows = GOOD + [["000000000004", "布洛芬片", "乙", "15", "", "", "", ""]]
    r = h.do_import(cli, h.write_csv(tmp_path / "d.csv", rows), pack, mapping, "--keep-going",
                    "--report", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    text = h.read(pack / "catalogue" / "drugs.csv")
    assert "000000000001" in text and "000000000004" not in text
    rep = report_of(tmp_path)
    assert rep["summary"]["rows rejected"] == 1 and rep["summary"]["rows imported"] == 2


@pytest.mark.parametrize("cell,want", [("2025/3/1", "2025-03-01"), ("2025年3月1日", "2025-03-01"),
                                       ("20250301", "2025-03-01"), ("2025-03-01", "2025-03-01")])
def test_dates_in_three_formats_are_converted(tmp_path, pack, mapping, cli, h, cell, want):
    rows = [["000000000005", "二甲双胍片", "甲", "", "", cell, "", ""]]
    r = h.do_import(cli, h.write_csv(tmp_path / "d.csv", rows), pack, mapping)
    assert r.exit_code == 0, r.output
    assert f",{want}" in h.read(pack / "catalogue" / "drugs.csv")


def test_ambiguous_date_is_rejected(tmp_path, pack, mapping, cli, h):
    rows = [["000000000005", "二甲双胍片", "甲", "", "", "03/01/2025", "", ""]]
    r = h.do_import(cli, h.write_csv(tmp_path / "d.csv", rows), pack, mapping)
    assert r.exit_code == 1 and "开始日期 (F)" in r.output and "day-month or month-day" in r.output


@pytest.mark.parametrize("content,code", [
    (b"PK\x03\x04 this is not really a workbook", "E-XLSX-READ"),
    (b"\x00\x01\x02\x03binary", "E-FILE-FORMAT"),
])
def test_unreadable_file_is_a_located_error(tmp_path, pack, mapping, cli, h, content, code):
    suffix = ".xlsx" if code == "E-XLSX-READ" else ".csv"
    f = tmp_path / f"broken{suffix}"
    f.write_bytes(content)
    before = snapshot(pack)
    r = h.do_import(cli, f, pack, mapping)
    assert r.exit_code == 1 and code in r.output and "Traceback" not in r.output
    assert snapshot(pack) == before


def test_empty_file(tmp_path, pack, mapping, cli, h):
    f = tmp_path / "empty.csv"
    f.write_text("", encoding="utf-8")
    r = h.do_import(cli, f, pack, mapping)
    assert r.exit_code == 1 and "E-FILE-EMPTY" in r.output


def test_gb18030_csv_from_chinese_excel_is_read(tmp_path, pack, mapping, cli, h):
    f = h.write_csv(tmp_path / "d.csv", GOOD, encoding="gb18030")
    r = h.do_import(cli, f, pack, mapping, "--report", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    assert "头孢克洛胶囊" in h.read(pack / "catalogue" / "drugs.csv")
    assert any("GB18030" in n for n in report_of(tmp_path)["notes"])


def test_codes_stored_as_numbers_get_their_leading_zeros_back(tmp_path, pack, mapping, cli, h):
    f = h.write_xlsx(tmp_path / "d.xlsx", [h.HEADER, [1, "阿莫西林胶囊", "甲", None, None, None, None, None],
                                           [12345, "头孢克洛胶囊", "乙", 0.1, 3.5, None, None, None]])
    r = h.do_import(cli, f, pack, mapping, "--report", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    text = h.read(pack / "catalogue" / "drugs.csv")
    assert "000000000001,阿莫西林胶囊" in text and "000000012345,头孢克洛胶囊" in text
    conv = [c for c in report_of(tmp_path)["conversions"] if c["kind"] == "leading-zeros"]
    assert [c["row"] for c in conv] == [2, 3]


def test_full_width_characters_and_trailing_spaces(tmp_path, pack, mapping, cli, h):
    rows = [["０００００００００００６ ", "  维生素Ｃ片  ", "甲类", "", "", "", "", ""]]
    r = h.do_import(cli, h.write_csv(tmp_path / "d.csv", rows), pack, mapping, "--report", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    assert "000000000006,维生素C片,甲," in h.read(pack / "catalogue" / "drugs.csv")
    kinds = report_of(tmp_path)["conversion_counts"]
    assert kinds.get("full-width", 0) >= 2 and kinds.get("trimmed", 0) >= 2


def test_merged_header_rows_and_title_are_found(tmp_path, pack, tmp_path_factory, cli, h):
    """A title merged over all columns, a merged group heading over two columns, the header below."""
    m = tmp_path / "m.yaml"
    m.write_text(h.dedent("""
        name: merged
        fields:
          code: {column: 编码, required: true}
          name: {column: 名称, required: true}
          category: {column: 类别}
          pric_uplmt_amt: {column: 门诊}
    """), encoding="utf-8")
    rows = [["某市2025年医保药品目录", None, None, None, None],
            ["编码", "名称", "类别", "限价（元）", None],
            [None, None, None, "门诊", "住院"],
            ["A1", "阿司匹林肠溶片", "甲", 1.2, 1.5]]
    f = h.write_xlsx(tmp_path / "d.xlsx", rows, merges=["A1:E1", "D2:E2", "A2:A3", "B2:B3", "C2:C3"])
    r = h.do_import(cli, f, pack, m, "--report", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    assert "A1,阿司匹林肠溶片,甲,1.2\n" in h.read(pack / "catalogue" / "drugs.csv")  # 门诊, not 住院
    assert report_of(tmp_path)["header_row"] == 3


def test_heading_rows_are_skipped_and_counted_never_silently(tmp_path, pack, cli, h):
    m = tmp_path / "m.yaml"
    m.write_text(h.dedent("""
        name: headings
        source: {fill_down: [分类], skip_when_empty: [编码, 名称]}
        fields:
          code: {column: 编码, required: true}
          name: {column: 名称, required: true}
          category: {column: 类别}
          note: {column: 分类}
    """), encoding="utf-8")
    rows = [["分类", "编码", "名称", "类别"], ["XA 消化道", None, None, None], [None, "C1", "奥美拉唑肠溶胶囊", "乙"],
            [None, None, None, None], ["XB 血液", None, None, None], [None, "C2", "华法林钠片", "甲"]]
    f = h.write_xlsx(tmp_path / "d.xlsx", rows)
    r = h.do_import(cli, f, pack, m, "--report", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    rep = report_of(tmp_path)
    assert [s["row"] for s in rep["skipped"]] == [2, 5] and rep["blank_rows"] == [4]
    assert "C2,华法林钠片,甲,XB 血液" in h.read(pack / "catalogue" / "drugs.csv")  # the category filled down


def test_every_row_is_accounted_for(tmp_path, pack, mapping, cli, h):
    """rows read = blank + skipped + rejected + imported: nothing disappears."""
    rows = GOOD + [["", "", "", "", "", "", "", ""], ["000000000009", "X", "丁", "", "", "", "", ""],
                   ["000000000010", "Y", "乙", "", "", "", "", ""]]
    h.do_import(cli, h.write_csv(tmp_path / "d.csv", rows), pack, mapping, "--keep-going", "--report",
                tmp_path / "r.json")
    s = report_of(tmp_path)["summary"]
    assert s["rows read"] == s["blank rows"] + s["heading rows skipped"] + s["rows rejected"] + s["rows imported"]
    assert s["rows rejected"] == 1 and s["rows imported"] == 3


def test_unknown_class_word_is_rejected_with_hint(tmp_path, pack, mapping, cli, h):
    rows = [["000000000009", "X", "B类", "", "", "", "", ""]]
    r = h.do_import(cli, h.write_csv(tmp_path / "d.csv", rows), pack, mapping)
    assert r.exit_code == 1 and "'B类' is not a class" in r.output and "values" in r.output


def test_usage_errors_exit_2(tmp_path, pack, mapping, cli, h):
    f = h.write_csv(tmp_path / "d.csv", GOOD)
    assert h.do_import(cli, tmp_path / "nope.csv", pack, mapping).exit_code == 2
    assert h.do_import(cli, f, pack, "no-such-mapping").exit_code == 2
    r = cli("catalogue", "import", f, "--kind", "drug", "--region", "110000", "--into", pack, "--mapping", mapping)
    assert r.exit_code == 2 and "region" in r.output
    r = cli("catalogue", "import", f, "--kind", "service", "--region", "990009", "--into", pack, "--mapping",
            "nhsa-drug-catalogue-2024-csv")
    assert r.exit_code == 2 and "for drug catalogues" in r.output


def test_bad_mapping_is_located(tmp_path, pack, cli, h):
    m = tmp_path / "m.yaml"
    m.write_text("name: bad\nfields:\n  code: {colum: 编码}\n", encoding="utf-8")
    r = h.do_import(cli, h.write_csv(tmp_path / "d.csv", GOOD), pack, m)
    assert r.exit_code == 1 and "m.yaml:3:" in r.output


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

CELLS = st.one_of(st.sampled_from(["", " ", "甲", "乙类", "15%", "0,15", "2025/1/1", "01/02/2025", "1.1E+14", "★(3)",
                                   "０００１", "\u3000", '"', ",", "\n"]), st.text(max_size=6))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(CELLS, min_size=0, max_size=9), max_size=6), st.booleans())
def test_any_csv_gives_a_result_never_a_traceback(tmp_path, pack, mapping, h, rows, with_header):
    """Whatever the cells, the import answers with a report and problems; it writes only when it is clean."""
    from rules_engine.catalogue.importer import ImportRequest, run_import
    from rules_engine.catalogue.mapping import load_mapping
    f = h.write_csv(tmp_path / "fuzz.csv", rows, header=h.HEADER if with_header else None)
    m, _ = load_mapping(mapping)
    res = run_import(ImportRequest(file=f, kind="drug", region="990009", into=pack, mapping=m, dry_run=True))
    s = res.report.summary()
    if res.ok:
        assert s["rows read"] == s["blank rows"] + s["heading rows skipped"] + s["rows rejected"] + s["rows imported"]
    else:
        assert res.problems and not (pack / "catalogue").exists()
