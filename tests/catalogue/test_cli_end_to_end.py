"""End to end, as an analyst does it: a workbook shaped like the national catalogue, a code table,
`rules-engine catalogue import`, `rules-engine validate`, then a claim settled against the result."""
from __future__ import annotations

import json
import shutil

import pytest

SHEET = [
    ["国家基本医疗保险、工伤保险和生育保险药品目录（2024年）", None, None, None, None, None, None],
    ["药品分类代码", "药品分类", "编号", "甲乙类", "药品名称", "剂型", "备注"],
    ["XC", "心血管系统", None, None, None, None, None],
    ["XC05", "血管保护剂", None, None, None, None, None],
    [None, None, 395, "乙", "曲克芦丁", "口服常释剂型", None],
    [None, None, "★(395)", "乙", "曲克芦丁", "注射剂", "限新发的缺血性脑梗死，支付不超过14天。"],
    ["XJ07", "疫苗", None, None, None, None, None],
    [None, None, 803, "乙", "人用狂犬病疫苗(Vero细胞)", "注射剂", "限工伤保险。"],
    [None, None, "★(803)", "乙", "人用狂犬病疫苗(地鼠肾细胞)", "注射剂", "限工伤保险。"],
    [None, None, 804, "甲", "从未生产的疫苗", "注射剂", "限儿童。"],
]
CODES = ("drug_code,drug_generic_name\n"
         "XC05CAQ094B002010100267,曲克芦丁注射液\n"
         "XC05CAQ094B002010100268,曲克芦丁注射液\n"
         "XC05CAQ094A001010100001,曲克芦丁片\n"
         "XJ07BGR032B001010103056,人用狂犬病疫苗(地鼠肾细胞)\n"
         "XJ07BGR030B001010101119,人用狂犬病疫苗(Vero细胞)\n"
         "XA99ZZZ999A001010100001,与目录无关的药片\n")


@pytest.fixture
def regions(tmp_path, h):
    """The shipped national baseline (for its named conditions) and a test region extending it."""
    root = tmp_path / "regions"
    shutil.copytree(h.ROOT / "regions" / "000000", root / "000000")
    d = root / "990009" / "2025.1"
    d.mkdir(parents=True)
    (d / "pack.yaml").write_text(h.dedent("""
        region: "990009"
        name: 测试地区
        version: "2025.1"
        effective: {from: 2025-01-01}
        select_by: settlement
        extends: "000000"
        confidence: sample
        provenance:
          - {id: TEST, title: test data, confidence: sample}
        catalogue_defaults:
          selfpay_prop: {甲: 0, 乙: 0.1}
    """), encoding="utf-8")
    return root


def test_import_validate_settle(tmp_path, regions, cli, h):
    pack = regions / "990009" / "2025.1"
    book = h.write_xlsx(tmp_path / "目录.xlsx", SHEET, merges=["A1:G1"], sheet="西药部分")
    codes = tmp_path / "codes.csv"
    codes.write_text(CODES, encoding="utf-8")
    r = cli("catalogue", "import", book, "--kind", "drug", "--region", "990009", "--into", pack,
            "--codes", codes, "--codes-mapping", "nhsa-liangku-drug-codes", "--report", tmp_path / "r.json")
    assert r.exit_code == 0, r.output   # the default mapping for a drug .xlsx: nhsa-drug-catalogue-xlsx
    rep = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert rep["summary"]["heading rows skipped"] == 3 and rep["summary"]["rows read"] == 8
    assert [u["name"] for u in rep["unlinked"]] == ["从未生产的疫苗"]       # listed, not dropped
    s = rep["summary"]
    assert s["rows read"] == s["heading rows skipped"] + s["rows imported"] + s["rows unlinked"] + s["rows rejected"]
    assert rep["link"]["product codes matching no row"] == 1
    unlinked = h.read(pack / "catalogue" / "drugs.unlinked.tsv")
    assert "从未生产的疫苗" in unlinked and "限儿童。" in unlinked
    csv_text = h.read(pack / "catalogue" / "drugs.csv")
    assert "XC05CAQ094B002,prefix,曲克芦丁注射液,乙,NHSA-X395;NHSA-X395.text" in csv_text
    assert "XC05CAQ094A001,prefix,曲克芦丁片,乙,," in csv_text   # the oral row has no restriction
    rtext = h.read(pack / "restrictions.yaml")
    assert '"NHSA-X803"' in rtext and 'when: {"insutype": "410"}' in rtext

    r = cli("validate", regions)
    assert r.exit_code == 0, r.output

    from rules_engine import Engine
    engine = Engine.from_directory(regions, cache=False)

    def line(code, **claim):
        c = {"insuplc_admdvs": "990009", "mdtrtarea_admvs": "990009", "insutype": "310", "med_type": "21",
             "age": 45, "hosp_lv": "3", "setl_time": "2025-06-01 10:00:00",
             "feedetail": [{"feedetl_sn": "1", "med_list_codg": code, "cnt": 1, "pric": 100,
                            "det_item_fee_sumamt": 100}]}
        c.update(claim)
        return engine.settle(c).lines[0]

    vaccine = line("XJ07BGR032B001010103056")                # 限工伤保险, an employee: 全自费
    assert vaccine.fulamt == 10000 and vaccine.reasons[0].code == "RESTRICTION_UNMET"
    assert vaccine.reasons[0].text == "限工伤保险。"
    ok = line("XJ07BGR032B001010103056", insutype="410")     # work injury: paid, 乙类 10 %
    assert ok.fulamt == 0 and ok.pre == 1000 and ok.inscp == 9000
    other_maker = line("XC05CAQ094B002019999999")            # an unknown product under the prefix
    assert other_maker.entry is not None and other_maker.review and other_maker.fulamt == 0
    assert line("XA99ZZZ999A001010100001").entry is None      # in the code table, not in the catalogue


def test_shipped_xlsx_mapping_refuses_a_sheet_without_its_columns(tmp_path, regions, cli, h):
    pack = regions / "990009" / "2025.1"
    book = h.write_xlsx(tmp_path / "x.xlsx", [["编号", "名称"], [1, "某药"]])
    codes = tmp_path / "codes.csv"
    codes.write_text(CODES, encoding="utf-8")
    r = cli("catalogue", "import", book, "--kind", "drug", "--region", "990009", "--into", pack,
            "--codes", codes, "--codes-mapping", "nhsa-liangku-drug-codes")
    assert r.exit_code == 1 and "E-COLUMN-MISSING" in r.output and "药品名称" in r.output


def test_json_output_for_programs(tmp_path, regions, cli, h):
    pack = regions / "990009" / "2025.1"
    f = tmp_path / "d.csv"
    f.write_text("code,name,category\nA1,某药片,甲\nA2,某药胶囊,戊\n", encoding="utf-8")
    m = tmp_path / "m.yaml"
    m.write_text("name: plain\nfields:\n  code: {column: code}\n  name: {column: name}\n"
                 "  category: {column: category}\n", encoding="utf-8")
    r = cli("catalogue", "import", f, "--kind", "drug", "--region", "990009", "--into", pack, "--mapping", m,
            "--format", "json", "--dry-run")
    out = json.loads(r.output)
    assert r.exit_code == 1 and out["ok"] is False
    assert out["report"]["rejected"][0]["row"] == 3 and out["problems"][0]["code"] == "E-IMPORT-REJECTED"
