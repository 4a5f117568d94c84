"""Restriction texts → conditions, on real rows of the 2024 catalogue (the texts below are its 备注).

Each pattern the parser reads has a test on a real text; so has each trap found in the data (an
age in a label note, a level in a prescriber clause, a disease named as absent). A wrong condition
pays or refuses real money, so the tests pin both what is read and what must not be.
"""
from __future__ import annotations

import csv
import json

import pytest

from rules_engine.catalogue.restrictions_parser import parse


def read(text):
    p = parse(text)
    return p.status, p.exact, p.check, p


# ------------------------------------------------------------------ each pattern, on real rows

def test_insurance_type():
    assert read("限工伤保险。")[:3] == ("condition", {"insutype": "410"}, None)
    assert read("限生育保险。")[:3] == ("condition", {"insutype": "510"}, None)


def test_insurance_as_an_alternative_is_not_required():
    status, exact, check, _ = read("限子宫肌瘤患者或生育保险。")
    assert exact is None  # a 子宫肌瘤 patient outside maternity insurance must not be refused
    assert check == {"any": [{"diagnoses": {"icd": ["D25"]}}, {"insutype": "510"}]}


def test_institution_level():
    assert read("限二级及以上医疗机构。")[:3] == ("condition", {"hosp_lv": ["2", "3"]}, None)


def test_institution_level_with_a_diagnosis():
    status, exact, check, _ = read("限二级及以上医疗机构的肿瘤患者。")
    assert (status, exact, check) == ("condition", {"hosp_lv": ["2", "3"]}, {"diagnoses": {"icd": ["C00-D48"]}})


def test_children_widest_reading_refuses_narrowest_flags():
    status, exact, check, _ = read("限儿童。")
    assert exact == {"age": {"lte": 17}} and check == {"age": {"lte": 13}}


def test_adults_and_age_bounds():
    assert read("限成人高钾血症。")[1] == {"age": {"gte": 18}}
    assert read("限13岁和13岁以上重度免疫缺陷患者。")[1] == {"age": {"gte": 13}}
    assert read("限2岁至11岁儿童慢性便秘。")[1] == {"age": {"between": [2, 11]}}
    assert read("限6-17岁儿童和青少年的注意缺陷多动障碍(ADHD)。")[1] == {"age": {"between": [6, 17]}}
    assert read("限成人、青少年和≥2岁儿童的遗传性血管性水肿(HAE)急性发作。")[1] == {"age": {"gte": 2}}


def test_age_bound_with_two_readings():
    """'5至12岁以下': 12 is in by the 民法典 §1259 reading, out by the label's: refuse above 12, flag at 12."""
    status, exact, check, p = read("限5至12岁以下单纯性甲型和乙型流感儿童患者。")
    assert exact == {"age": {"between": [5, 12]}}
    assert check == {"all": [{"age": {"between": [5, 11]}}, {"diagnoses": {"icd": ["J09-J11"]}}]}
    assert status == "partial" and "单纯性" in p.review_reason()


def test_age_groups_joined_by_and_are_a_union():
    _, exact, _, _ = read("限成人和5岁及以上儿童单纯性甲型和乙型流感患者，或存在流感相关并发症高风险的成人和12岁及以上儿童流感患者。")
    assert exact == {"any": [{"age": {"gte": 5}}, {"age": {"gte": 12}}]}


def test_sex():
    _, exact, check, _ = read("限女性绝经后骨质疏松症。")
    assert exact == {"gend": "2"} and check == {"diagnoses": {"icd": ["M80-M81"]}}


def test_setting():
    assert read("限急诊或住院患者。")[:3] == (
        "condition", {"any": [{"is": "emergency"}, {"is": "inpatient"}]}, None)
    status, exact, _, p = read("需经营养风险筛查，明确具有营养风险，且不能经饮食或“肠内营养剂”补充足够营养的住院患者方予支付。")
    assert exact == {"is": "inpatient"} and status == "partial" and "screening" in p.review_reason()


def test_diagnosis_lists_are_checks_never_enforced():
    assert read("限2型糖尿病。")[:3] == ("condition", None, {"diagnoses": {"icd": ["E11", "O24.1"]}})
    assert read("限慢性阻塞性肺病(COPD)。")[2] == {"diagnoses": {"icd": ["J44"]}}
    assert read("限有明确慢性肾功能衰竭诊断的患者。")[:3] == ("condition", None, {"diagnoses": {"icd": ["N18"]}})
    assert read("限：1.反流性食管炎；2.十二指肠溃疡。")[2] == {
        "any": [{"diagnoses": {"icd": ["K21.0"]}}, {"diagnoses": {"icd": ["K26"]}}]}


def test_approval_flag():
    text = ("限：1.视网膜静脉阻塞(RVO)的黄斑水肿；2.糖尿病性黄斑水肿(DME)。应同时符合以下条件：1.需三级综合医院眼科或二级及以上眼科"
            "专科医院医师处方；2.首次处方时病眼基线矫正视力0.05-0.5；3.事前审查后方可用，初次申请需有血管造影或OCT(全身情况不允许的患者"
            "可以提供OCT血管成像)证据；4.每眼累计最多支付5支，每个年度最多支付2支。")
    status, exact, check, p = read(text)
    # item 1 names no mapped disease, so item 2's diabetes check cannot apply; the approval applies to both
    assert exact is None and status == "partial" and check == {"hosp_appr_flag": "1"}
    assert "prescriber" in p.review_reason() and "quantity limit" in p.review_reason()


def test_second_line_and_course_limits_stay_text():
    status, exact, check, p = read("限二线用药。")
    assert (status, exact, check) == ("review", None, None) and "line of therapy" in p.review_reason()
    status, _, check, p = read("限新发的缺血性脑梗死，支付不超过14天。")
    assert status == "partial" and check == {"diagnoses": {"icd": ["I63"]}}
    assert "course limit" in p.review_reason()
    assert read("支付不超过10天。")[0] == "review"


def test_texts_that_are_not_restrictions():
    assert read("◇")[0] == "review" and "symbol" in parse("◇").review_reason()
    p = parse("温阳化饮，健脾利湿。用于中阳不足之痰饮。症见胸胁支满，目眩心悸，短气而咳，舌苔白滑，脉弦滑。")
    assert p.status == "review" and "indication" in p.review_reason()


# ------------------------------------------------------------------ traps found in the data

def test_a_label_note_is_not_an_age_limit():
    status, exact, check, _ = read("限法布雷病(α-半乳糖苷酶A缺乏症)患者的长期酶替代治疗，适用于成人、儿童和青少年。尚未确定本品在0-6岁"
                                   "儿童中的安全性和有效性。")
    assert exact is None and check is None and status == "review"


def test_a_per_admission_course_limit_is_not_an_inpatient_restriction():
    _, exact, _, _ = read("限二级及以上医疗机构脑梗死恢复期患者，单次住院最多支付14天。")
    assert exact == {"hosp_lv": ["2", "3"]}


def test_a_prescriber_clause_is_not_an_institution_level():
    status, exact, _, _ = read("限二甲双胍等口服降糖药或胰岛素控制效果不佳的BMI≥25的患者，首次处方时需由二级及以上医疗机构专科医师开具处方。")
    assert exact is None and status == "review"


def test_a_disease_named_as_absent_is_not_required():
    _, exact, check, _ = read("限人体免疫缺陷病毒(HIV)阴性和人疱疹病毒8型(HHV-8)阴性的多中心Castleman病(MCD)成人患者。")
    assert exact == {"age": {"gte": 18}} and check is None


def test_kangxi_radicals_of_the_pdf_export_are_read():
    _, exact, _, _ = read("限：1.预防⼉童肝脏或肾脏移植术后的移植物排斥反应；2.治疗⼉童肝脏或肾脏移植术后应用其他免疫抑制药物无法控制的"
                          "移植物排斥反应。")
    assert exact == {"age": {"lte": 17}}


def test_an_alternative_without_a_condition_voids_the_others():
    status, exact, check, _ = read("限：1.反流性食管炎；2.与适当的抗生素联用以根除幽门螺杆菌。")
    assert (status, exact, check) == ("review", None, None)


# ------------------------------------------------------------------ the restriction entries

def test_entries_per_part():
    ids = [e["id"] for e in parse("限5至12岁以下单纯性甲型和乙型流感儿童患者。").restrictions("N144")]
    assert ids == ["N144", "N144.check", "N144.text"]
    e = parse("限二线用药。").restrictions("X1", "SRC")
    assert e == [{"id": "X1", "text": "限二线用药。", "review_reason": e[0]["review_reason"], "source": "SRC"}]
    e = parse("限2型糖尿病。").restrictions("Z9")
    assert [x.get("on_fail") for x in e] == ["review"] and "when" in e[0]


# ------------------------------------------------------------------ every real text

@pytest.fixture(scope="module")
def real_texts(request):
    from pathlib import Path
    data = Path(__file__).resolve().parents[3] / "shared" / "reference" / "data" / "nhsa_drug_catalogue_2024.csv"
    if not data.is_file():
        pytest.skip(f"{data} is absent (the reference data is not part of the repository)")
    with open(data, encoding="utf-8") as f:
        return [r["remark"] for r in csv.DictReader(f) if r["remark"]]


def test_all_673_texts_give_valid_conditions_and_never_enforce_a_diagnosis(real_texts):
    from rules_engine.catalogue.writer import restriction_yaml
    from rules_engine.conditions.language import parse_condition
    from rules_engine.packs.source import parse_yaml
    from rules_engine.validate.schema import validate_document
    assert len(real_texts) == 673
    entries = []
    for i, t in enumerate(dict.fromkeys(real_texts)):
        p = parse(t)
        made = p.restrictions(f"R{i}")
        assert made, t
        if p.exact is not None:
            blob = json.dumps(p.exact, ensure_ascii=False)
            assert "diagnoses" not in blob and "hosp_appr_flag" not in blob, t
        if p.status == "review":
            assert len(made) == 1 and "when" not in made[0] and made[0]["review_reason"], t
        entries += made
    doc, problems = parse_yaml("restrictions:\n" + restriction_yaml(entries, 2), "r.yaml")
    assert doc is not None and not problems
    assert not validate_document(doc, "restrictions.schema.json")
    for i, e in enumerate(doc.data["restrictions"]):
        if "when" in e:
            node, ps = parse_condition(doc, ("restrictions", i, "when"))
            assert node is not None and not ps, e


def test_coverage_is_what_the_report_says(real_texts):
    """The shipped docs/restriction-coverage.md counts what the parser does today."""
    from collections import Counter
    from pathlib import Path
    status = Counter(parse(t).status for t in real_texts)
    doc = (Path(__file__).resolve().parents[2] / "docs" / "restriction-coverage.md").read_text(encoding="utf-8")
    assert f"| read in full (conditions only, no text left) | {status['condition']:,} |" in doc
    assert f"| kept as text for review (nothing encodable) | {status['review']:,} |" in doc


def test_daily_quantity_and_rescue_stay_text():
    status, exact, check, p = read("限因胰岛素抵抗无法使用葡萄糖的抢救患者，果糖总量每日不超过50g。")
    assert (status, exact, check) == ("review", None, None)
    assert "daily quantity" in p.review_reason() and "emergency" in p.review_reason()


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

WORDS = ["限", "二级及以上医疗机构", "的", "儿童", "成人", "12岁以下", "5至", "岁", "或", "、", "；", "，", "。", "1.", "2.",
         "工伤保险", "生育保险", "住院患者", "2型糖尿病", "非", "阴性", "女性", "二线用药", "支付不超过14天", "(", ")", "≥"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=12).map("".join) | st.text(max_size=40))
def test_parse_never_raises_and_ids_are_unique(text):
    p = parse(text)
    made = p.restrictions("R1")
    ids = [e["id"] for e in made]
    assert made and len(ids) == len(set(ids)) and ids[0] == "R1"
    if p.exact is not None:
        assert "diagnoses" not in json.dumps(p.exact, ensure_ascii=False)
