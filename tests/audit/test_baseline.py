"""The national baseline's audit rules, generated from the real 两库 rows, on claims that break
and keep them — each also run on the durable-rules reference (tests/audit/conftest.py `run`)."""
from __future__ import annotations

import pytest

from .conftest import by_rule, claim, run

# real codes of the 两库 tables (shared/reference/data) and the rules made from their rows
UTERUS_XRAY = "002101030300000"       # 子宫造影, 第一批 限定性别对象 row 3: women only
WARD_CONSULT = "001102000050000"      # 住院诊查费, 第八批-1 限定频次 row 800: 1 per day
ER_MONITOR = "001103000010000"        # 急诊监护费, 第七批 序号 1: includes …
ER_CONSULT = "001102000030000"        # … 急诊诊查费 the same day
HBA1C = "002503020030000"             # 糖化血红蛋白测定, 第八批-4 row 879: 1 per 15 days
CHILD_DRUG = "ZA04CAE0023010100166"   # 儿童清肺口服液, 第一批 限定年龄对象 row 482: 儿童
INJURY_DRUG = "ZH01AAB0066010100716"  # 疤痕止痒软化膏, 第三批 限定保险类型 row 764: 工伤
MATERNITY_DRUG = "XG02ADD082D003010179504"  # 地诺前列酮栓, 第三批 row 773: 生育
INPATIENT_DRUG = "XB05BAU012B002010102180"  # 第四批 限定就医方式 row 776: 住院
LEVEL2_DRUG = "ZC01AAA0042010105549"  # 艾迪注射液, 第五批 限定机构等级 row 811: 二级及以上
COURSE_DRUG = "XB01AXA223B004010180963"     # 奥扎格雷氨丁三醇注射用浓溶液, 第六批 row 872: 14 days
STAY_COURSE_DRUG = "ZA12HAY0771010101463"   # 银杏二萜内酯葡胺注射液, row 885: 14 days per admission
GASTRIC_A, GASTRIC_B = "003310010140000", "003310010160000"  # 胃肠手术组 (第二批 限定主次操作)
NEWBORN_CARE = "001201000070000"      # 新生儿护理: 新生儿 (row 404), 1 per day (row 813)
WORK_TRAINING = "003402000320000"     # 职业功能训练: 法定就业年龄 (第八批-2, row 866)


def test_a_male_patient_billed_a_uterus_xray_is_refused_the_line(baseline):
    hits = run(baseline, claim([(UTERUS_XRAY, "2025-03-02 10:00:00")], gend="1"))
    h = by_rule(hits)["LKS-0003"]
    assert (h.kind, h.action, h.lines) == ("item_condition", "reject_line", ("1",))
    assert (h.ref.batch, h.ref.rule_type, h.ref.row, h.ref.file) == (
        "第一批", "限定性别对象", 3, "nhsa_liangku_service_item_rules.csv")
    assert "gend=1" in h.detail
    assert "第一批" in h.to_dict()["ref_text"] and "row 3" in h.to_dict()["ref_text"]


@pytest.mark.parametrize("gend", ["2", "9", None])
def test_a_uterus_xray_is_fine_unless_the_claim_says_male(baseline, gend):
    data = claim([(UTERUS_XRAY, "2025-03-02 10:00:00")], gend=gend)
    if gend is None:
        del data["gend"]
    assert "LKS-0003" not in by_rule(run(baseline, data))


def test_the_ward_consultation_fee_twice_on_one_day_refuses_the_second(baseline):
    hits = run(baseline, claim([(WARD_CONSULT, "2025-03-02 08:00:00"), (WARD_CONSULT, "2025-03-02 16:00:00"),
                                (WARD_CONSULT, "2025-03-03 08:00:00")]))
    h = by_rule(hits)["LKS-0800"]
    assert (h.kind, h.action, h.lines, h.related) == ("quantity_limit", "reject_line", ("2",), ("1",))
    assert "2025-03-02" in h.detail and (h.ref.batch, h.ref.row) == ("第八批-1", 800)


def test_the_ward_consultation_fee_once_a_day_passes_and_a_count_of_two_does_not(baseline):
    ok = claim([(WARD_CONSULT, f"2025-03-0{d} 08:00:00") for d in range(1, 6)])
    assert "LKS-0800" not in by_rule(run(baseline, ok))
    two = claim([(WARD_CONSULT, "2025-03-02 08:00:00", 2)])
    assert by_rule(run(baseline, two))["LKS-0800"].lines == ("1",)


def test_an_earlier_claim_of_the_same_day_counts(baseline):
    hist = [{"med_list_codg": WARD_CONSULT, "fee_ocur_time": "2025-03-02 07:00:00", "cnt": 1, "mdtrt_id": "ADM-0"}]
    h = by_rule(run(baseline, claim([(WARD_CONSULT, "2025-03-02 08:00:00")], history=hist)))["LKS-0800"]
    assert (h.lines, h.history) == (("1",), (0,))


def test_er_monitoring_includes_the_er_consultation_the_same_day(baseline):
    hits = run(baseline, claim([(ER_MONITOR, "2025-03-02 01:00:00"), (ER_CONSULT, "2025-03-02 02:00:00")]))
    h = by_rule(hits)["LKR-0001"]
    assert (h.kind, h.action, h.lines, h.related) == ("duplicate_charge", "reject_line", ("2",), ("1",))
    assert (h.ref.batch, h.ref.seq, h.ref.row) == ("第七批", 1, 1)


def test_er_consultation_on_another_day_is_not_a_duplicate(baseline):
    hits = run(baseline, claim([(ER_MONITOR, "2025-03-02 01:00:00"), (ER_CONSULT, "2025-03-03 02:00:00")]))
    assert "LKR-0001" not in by_rule(hits)


@pytest.mark.parametrize("age,hit", [(30, True), (18, True), (17, False), (6, False), (0, False)])
def test_a_childrens_drug_for_an_adult(baseline, age, hit):
    hits = by_rule(run(baseline, claim([(CHILD_DRUG, "2025-03-02 10:00:00")], age=age)))
    assert ("LKD-0482" in hits) is hit
    if hit:
        assert hits["LKD-0482"].action == "reject_line" and hits["LKD-0482"].ref.rule_type == "限定年龄对象"


@pytest.mark.parametrize("insutype,hit", [("310", True), ("390", True), ("410", False)])
def test_a_work_injury_only_drug(baseline, insutype, hit):
    hits = by_rule(run(baseline, claim([(INJURY_DRUG, "2025-03-02 10:00:00")], insutype=insutype)))
    assert ("LKD-0764" in hits) is hit
    if hit:
        assert (hits["LKD-0764"].ref.batch, hits["LKD-0764"].ref.row) == ("第三批", 764)


@pytest.mark.parametrize("insutype,med_type,hit", [("310", "21", True), ("510", "21", False), ("310", "52", False)])
def test_a_maternity_only_drug(baseline, insutype, med_type, hit):
    hits = by_rule(run(baseline, claim([(MATERNITY_DRUG, "2025-03-02 10:00:00")], insutype=insutype,
                                       med_type=med_type)))
    assert ("LKD-0773" in hits) is hit


@pytest.mark.parametrize("med_type,hit", [("11", True), ("13", True), ("21", False), ("24", False)])
def test_an_inpatient_only_drug_uses_the_packs_inpatient_condition(baseline, med_type, hit):
    data = claim([(INPATIENT_DRUG, "2025-03-02 10:00:00")], med_type=med_type)
    assert ("LKD-0776" in by_rule(run(baseline, data))) is hit


@pytest.mark.parametrize("hosp_lv,hit", [("1", True), ("9", True), ("2", False), ("3", False)])
def test_a_level_two_drug(baseline, hosp_lv, hit):
    data = claim([(LEVEL2_DRUG, "2025-03-02 10:00:00")], hosp_lv=hosp_lv)
    assert ("LKD-0811" in by_rule(run(baseline, data))) is hit


def test_hba1c_twice_within_15_days_names_the_earlier_test_in_the_history(baseline):
    hist = [{"med_list_codg": HBA1C, "fee_ocur_time": "2025-02-25 09:00:00", "cnt": 1, "mdtrt_id": "OUT-7"}]
    h = by_rule(run(baseline, claim([(HBA1C, "2025-03-06 08:00:00")], history=hist)))["LKS-0879"]
    assert (h.lines, h.history, h.action) == (("1",), (0,), "reject_line")
    assert h.to_dict(None)["history"] == [0]


def test_hba1c_after_15_days_passes(baseline):
    hist = [{"med_list_codg": HBA1C, "fee_ocur_time": "2025-02-19 09:00:00", "cnt": 1}]
    assert "LKS-0879" not in by_rule(run(baseline, claim([(HBA1C, "2025-03-06 08:00:00")], history=hist)))


def test_a_14_day_course_over_the_history_warns_from_day_15(baseline):
    hist = [{"med_list_codg": COURSE_DRUG, "fee_ocur_time": f"2025-03-0{d} 09:00:00", "cnt": 1} for d in (1, 5)]
    data = claim([(COURSE_DRUG, "2025-03-10 09:00:00"), (COURSE_DRUG, "2025-03-15 09:00:00")], history=hist)
    h = by_rule(run(baseline, data))["LKD-0872"]
    assert (h.kind, h.action, h.lines, h.related, h.history) == ("course_limit", "warn", ("2",), ("1",), (0, 1))
    assert "day 15" in h.detail


def test_a_pause_longer_than_30_days_starts_a_new_course(baseline):
    hist = [{"med_list_codg": COURSE_DRUG, "fee_ocur_time": "2025-01-01 09:00:00", "cnt": 1}]
    assert "LKD-0872" not in by_rule(run(baseline, claim([(COURSE_DRUG, "2025-03-10 09:00:00")], history=hist)))


def test_a_per_admission_course_counts_only_this_admission(baseline):
    earlier = "2025-02-20 09:00:00"
    same = [{"med_list_codg": STAY_COURSE_DRUG, "fee_ocur_time": earlier, "cnt": 1, "mdtrt_id": "ADM-1"}]
    other = [{"med_list_codg": STAY_COURSE_DRUG, "fee_ocur_time": earlier, "cnt": 1, "mdtrt_id": "ADM-0"}]
    line = [(STAY_COURSE_DRUG, "2025-03-10 09:00:00")]
    assert by_rule(run(baseline, claim(line, history=same)))["LKD-0885"].history == (0,)
    assert "LKD-0885" not in by_rule(run(baseline, claim(line, history=other)))


def test_two_procedures_of_one_surgical_group_warn_on_the_second(baseline):
    hits = by_rule(run(baseline, claim([(GASTRIC_A, "2025-03-02 10:00:00"), (GASTRIC_B, "2025-03-02 11:00:00")])))
    h = hits["LKS-MS1"]
    assert (h.kind, h.action, h.lines, h.related) == ("exclusive", "warn", ("2",), ("1",))
    assert h.ref.rule_type == "限定主次操作" and len(h.ref.rows) == 87 and "折价" in h.message


def test_procedures_of_one_group_on_different_days_do_not_warn(baseline):
    hits = by_rule(run(baseline, claim([(GASTRIC_A, "2025-03-02 10:00:00"), (GASTRIC_B, "2025-03-05 11:00:00")])))
    assert "LKS-MS1" not in hits


@pytest.mark.parametrize("age,hit", [(0, False), (1, True)])
def test_newborn_care(baseline, age, hit):
    assert ("LKS-0404" in by_rule(run(baseline, claim([(NEWBORN_CARE, "2025-03-02 10:00:00")], age=age)))) is hit


@pytest.mark.parametrize("age,gend,hit", [(40, "1", False), (15, "1", True), (59, "1", False), (60, "1", True),
                                          (54, "2", False), (55, "2", True)])
def test_occupational_training_out_of_working_age_warns(baseline, age, gend, hit):
    hits = by_rule(run(baseline, claim([(WORK_TRAINING, "2025-03-02 10:00:00")], age=age, gend=gend)))
    assert ("LKS-0866" in hits) is hit
    if hit:
        assert hits["LKS-0866"].action == "warn"


def test_a_line_without_a_time_in_a_multi_day_stay_is_named_not_passed(baseline):
    hits = run(baseline, claim([(WARD_CONSULT, "2025-03-02 08:00:00"), (WARD_CONSULT, None)]))
    note = by_rule(hits)["AUDIT-UNDATED"]
    assert (note.action, note.lines) == ("warn", ("2",)) and "LKS-0800" in note.detail
    assert "LKS-0800" not in by_rule(hits)


def test_an_outpatient_visit_places_undated_lines_on_its_day(baseline):
    data = claim([(WARD_CONSULT, None), (WARD_CONSULT, None)], med_type="11", begntime=None)
    del data["begntime"]
    hits = by_rule(run(baseline, data))
    assert hits["LKS-0800"].lines == ("2",) and "AUDIT-UNDATED" not in hits


def test_every_baseline_rule_names_its_source_batch_and_row(baseline):
    for r in baseline.rules:
        assert r.ref is not None and r.ref.batch and r.ref.row and r.ref.file, r.id
        assert r.source == ("NHSA-LIANGKU-RULES",)
    kinds = baseline.by_kind()
    assert kinds == {"item_condition": 1292, "quantity_limit": 81, "duplicate_charge": 900, "exclusive": 7,
                     "course_limit": 41}
