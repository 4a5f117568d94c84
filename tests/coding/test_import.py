"""The import rules: each row's relationship is derived from what the row shows (docs/coding.md)."""
from __future__ import annotations

import pytest

from rules_engine.coding import importer as I
from rules_engine.coding.load import load_coding

from .conftest import ONE_MAP, manifest, write_pack


@pytest.mark.parametrize("g,gn,y,yn,rel,rule,note_has", [
    ("A00.000", "霍乱", "A00.000", "霍乱", "equivalent", "R1", ""),
    ("I50.900x007", "心功能Ⅱ级(NYHA分级)", "I50.900x007", "心功能Ⅱ级（NYHA分级）", "equivalent", "R2", "punctuation form"),
    ("Z51.300", "无诊断报告的输血", "Z51.300", "（无诊断报告的）输血", "equivalent", "R3", "punctuation marks"),
    ("A01.003", "伤寒杆菌性败血症", "A01.003", "伤寒杆菌性脓毒症", "related", "R4", "renamed"),
    ("A06.400", "阿米巴肝脓肿", "A06.400+K77.0*", "阿米巴肝脓肿", "equivalent", "R5", "+K77.0*"),
    ("C22.101M81600/3", "胆管癌", "C22.101", "胆管癌", "equivalent", "R5", "M81600/3"),
    ("00.6400x007", "经皮基底动脉支架置入术", "00.6500x014", "经皮基底动脉支架置入术", "equivalent", "R5", "recoded"),
    ("A02.100x004", "沙门菌脓毒血症", "A02.100", "沙门菌脓毒症", "source-is-narrower", "R6", "x004"),
    ("C81.001", "结节性淋巴细胞为主型霍奇金病", "C81.000", "霍奇金淋巴瘤", "source-is-narrower", "R6", "C81.000"),
    ("A21.200", "肺土拉菌病", "A21.201+J17.0*", "肺型土拉菌病", "source-is-broader", "R7", "A21.201"),
    ("A15.008", "浸润型肺结核，痰镜检(+)", "A15.000x001", "肺结核（显微镜检证实）", "related", "R8", "recoded"),
    ("A15.008", "浸润型肺结核", "", "", "not-mapped", "R9", "no insurance-edition code"),
])
def test_each_rule(g, gn, y, yn, rel, rule, note_has):
    fam = "icd9cm3" if g[0].isdigit() else "icd10"
    got_rel, note, got_rule = I.derive(fam, g, gn, y, yn)
    assert (got_rel, got_rule) == (rel, rule)
    assert note_has in note
    assert I.RULES[rule][1] == rel


def test_same_code_and_name_never_gets_a_note_and_differences_always_do():
    assert I.derive("icd10", "J18.900", "肺炎", "J18.900", "肺炎") == ("equivalent", "", "R1")
    for y, yn in (("J18.900", "肺炎，其他"), ("J18.901", "肺炎"), ("J18.901", "大叶性肺炎")):
        assert I.derive("icd10", "J18.900", "肺炎", y, yn)[1]


def test_name_levels():
    assert I.name_level("a", "a") == 0
    assert I.name_level("心功能Ⅱ级(NYHA分级)", "心功能Ⅱ级（NYHA分级） ") == 1
    assert I.name_level("滤泡性淋巴瘤,Ⅰ级", "滤泡性淋巴瘤I级") == 2
    assert I.name_level("败血症", "脓毒症") == 3


def _imp(text: str, family="icd10"):
    return I.import_table(("guolin_code,guolin_name,yibao_code,yibao_name\n" + text).encode(), "t.csv", family)


def test_repairs_are_noted_on_the_row_and_listed():
    rep = _imp("B06.801+J17.1* ,风疹性肺炎,B06.801+J17.1*,风疹性肺炎\n"
               "K74.300x011+I98.2,原发性胆汁型肝硬变,K74.300,原发性胆汁型肝硬化\n"
               "T66.x02H47.5,放射性视神经损害,T66.x02+H47.5*,放射性视神经损害\n")
    assert [r.source_code for r in rep.rows] == ["B06.801+J17.1*", "K74.300x011+I98.2*", "T66.x02+H47.5*"]
    assert [r.relationship for r in rep.rows] == ["equivalent", "source-is-narrower", "equivalent"]
    assert all("修复" in r.note and "repaired" in r.note for r in rep.rows)
    assert [ln for ln, *_ in rep.repairs] == [2, 3, 4]


def test_rows_that_cannot_be_repaired_or_repeat_are_rejected_with_their_line():
    rep = _imp("A00.000,霍乱,A00.000,霍乱\nA00.000,霍乱,A00.100,霍乱\nA0.0,坏,A00.000,霍乱\n")
    assert len(rep.rows) == 1 and rep.rows_in == 3
    assert [ln for ln, _ in rep.rejects] == [3, 4]
    assert "repeats line 2" in rep.rejects[0][1] and "malformed" in rep.rejects[1][1]


def test_the_output_of_an_import_loads_clean(regions):
    rep = _imp("A00.000,霍乱,A00.000,霍乱\nA02.100x004,沙门菌脓毒血症,A02.100,沙门菌脓毒症\n"
               "A15.008,浸润型肺结核,,\n")
    d = write_pack(regions, "990000", "1", {"coding.yaml": manifest(ONE_MAP)})
    (d / "coding" / "map.csv").write_bytes(I.table_bytes(rep.rows))
    _, problems = load_coding(d)
    assert problems == []


def test_import_is_deterministic():
    text = "A00.000,霍乱,A00.000,霍乱\nA02.100x004,沙门菌脓毒血症,A02.100,沙门菌脓毒症\n"
    a, b = _imp(text), _imp(text)
    assert I.table_bytes(a.rows) == I.table_bytes(b.rows)
    assert I.report_markdown([(a, "x.csv")]) == I.report_markdown([(b, "x.csv")])


def test_unknown_family_and_bad_encoding_are_import_errors():
    with pytest.raises(I.ImportError_):
        I.import_table(b"a,b\n", "x.csv", "icd11")
    with pytest.raises(I.ImportError_):
        I.import_table("国临版编码\n".encode("gbk"), "x.csv", "icd10")
