"""Each rule kind, written in YAML by hand, on claims that meet and break it (both backends)."""
from __future__ import annotations

import textwrap

import pytest

from rules_engine.audit import load_chain

from .conftest import by_rule, claim, run

HEAD = "# yaml-language-server: $schema=../../../../schemas/audit.schema.json\n"


def rules_of(tmp_path, text: str, named=None):
    d = tmp_path / "pack"
    (d / "audit").mkdir(parents=True)
    (d / "audit" / "rules.yaml").write_text(HEAD + textwrap.dedent(text), encoding="utf-8")
    rules, problems = load_chain([d], tmp_path, named=named)
    assert [p.format() for p in problems] == []
    return rules


def test_diagnosis_required_by_icd_prefix_and_range(tmp_path):
    rules = rules_of(tmp_path, """
        rules:
          - id: DX-1
            kind: diagnosis_required
            items: ["prefix:XJ05AX"]
            icd: ["J09", "J10-J11"]
            action: reject_line
            message: 限流感患者
    """)
    drug = "XJ05AXM176X006010181735"
    flu = claim([(drug, "2025-03-02 10:00:00")], diseinfo=[{"diag_code": "J10.100"}])
    assert run(rules, flu) == []
    other = claim([(drug, "2025-03-02 10:00:00")], diseinfo=[{"diag_code": "J18.900"}, {"diag_code": "I10.x00"}])
    h = by_rule(run(rules, other))["DX-1"]
    assert (h.kind, h.action, h.lines) == ("diagnosis_required", "reject_line", ("1",))
    assert "J18.900" in h.detail
    none = claim([(drug, "2025-03-02 10:00:00")])
    assert by_rule(run(rules, none))["DX-1"].detail == "diagnoses: none"


def test_item_condition_on_a_line_fact_and_reject_claim(tmp_path):
    rules = rules_of(tmp_path, """
        rules:
          - id: APPR-1
            kind: item_condition
            items: ["XL01XC"]
            when: {hosp_appr_flag: "1"}
            action: reject_claim
    """.replace('"XL01XC"', '"prefix:XL01XC"'))
    drug = "XL01XCT001B002010100001"
    assert run(rules, claim([(drug, "2025-03-02 10:00:00", 1, {"hosp_appr_flag": "1"})])) == []
    h = run(rules, claim([(drug, "2025-03-02 10:00:00", 1, {"hosp_appr_flag": "0"})]))[0]
    assert (h.rule_id, h.action, h.lines) == ("APPR-1", "reject_claim", ("1",))
    assert "hosp_appr_flag=0" in h.detail and "may be billed only when" in h.message


@pytest.mark.parametrize("per,expect", [("claim", ("3",)), ("admission", ("2", "3"))])
def test_quantity_per_claim_and_per_admission(tmp_path, per, expect):
    rules = rules_of(tmp_path, f"""
        rules:
          - id: Q-{per}
            kind: quantity_limit
            items: ["003402000210000"]
            max: 2
            per: {per}
            action: reject_line
    """)
    hist = [{"med_list_codg": "003402000210000", "fee_ocur_time": "2025-02-01", "cnt": 1, "mdtrt_id": "ADM-1"},
            {"med_list_codg": "003402000210000", "fee_ocur_time": "2025-02-02", "cnt": 5, "mdtrt_id": "ADM-0"}]
    data = claim([("003402000210000", f"2025-03-0{d} 10:00:00") for d in (1, 2, 3)], history=hist)
    h = by_rule(run(rules, data))[f"Q-{per}"]
    assert h.lines == expect
    assert h.history == (() if per == "claim" else (0,))


def test_quantity_counts_fractions_exactly(tmp_path):
    rules = rules_of(tmp_path, """
        rules:
          - {id: Q-1, kind: quantity_limit, items: ["001109000010000"], max: 1.5, per: day, action: warn}
    """)
    ok = claim([("001109000010000", "2025-03-02 08:00:00", 0.5), ("001109000010000", "2025-03-02 09:00:00", 1)])
    assert run(rules, ok) == []
    over = claim([("001109000010000", "2025-03-02 08:00:00", 0.5), ("001109000010000", "2025-03-02 09:00:00", 1.0001)])
    assert run(rules, over)[0].lines == ("2",)


@pytest.mark.parametrize("within,extra,second,hit", [
    ("hours", "hours: 6", "2025-03-02 15:59:59", True),
    ("hours", "hours: 6", "2025-03-02 16:00:00", False),
    ("claim", "", "2025-03-09 16:00:00", True),
    ("admission", "", "2025-03-09 16:00:00", True),
])
def test_duplicate_charge_windows(tmp_path, within, extra, second, hit):
    rules = rules_of(tmp_path, f"""
        rules:
          - id: DUP-1
            kind: duplicate_charge
            items: ["001102000030000"]
            main: ["001103000010000"]
            within: {within}
            {extra}
            action: reject_line
    """)
    data = claim([("001103000010000", "2025-03-02 10:00:00"), ("001102000030000", second)])
    hits = by_rule(run(rules, data))
    assert ("DUP-1" in hits) is hit
    if hit:
        assert (hits["DUP-1"].lines, hits["DUP-1"].related) == (("2",), ("1",))


def test_duplicate_charge_with_the_main_item_in_an_earlier_claim_of_the_admission(tmp_path):
    rules = rules_of(tmp_path, """
        rules:
          - {id: DUP-A, kind: duplicate_charge, items: ["001102000030000"], main: ["001103000010000"],
             within: admission, action: reject_line}
    """)
    same = [{"med_list_codg": "001103000010000", "fee_ocur_time": "2025-03-01", "cnt": 1, "mdtrt_id": "ADM-1"}]
    other = [dict(same[0], mdtrt_id="ADM-0")]
    line = [("001102000030000", "2025-03-05 10:00:00")]
    assert run(rules, claim(line, history=same))[0].history == (0,)
    assert run(rules, claim(line, history=other)) == []


def test_exclusive_items_keep_the_first_and_name_the_others(tmp_path):
    rules = rules_of(tmp_path, """
        rules:
          - id: NURSE
            kind: exclusive
            items: ["001201000030000", "001201000040000", "001201000050000"]
            within: day
            action: reject_line
            message: 同日只能收一种级别护理
    """)
    data = claim([("001201000040000", "2025-03-02 08:00:00"), ("001201000030000", "2025-03-02 09:00:00"),
                  ("001201000040000", "2025-03-02 10:00:00"), ("001201000050000", "2025-03-03 10:00:00")])
    h = by_rule(run(rules, data))["NURSE"]
    assert (h.lines, h.related) == (("2",), ("1", "3"))
    assert "001201000040000 (line 1)" in h.detail


def test_exclusive_prefix_families_count_as_one_item(tmp_path):
    rules = rules_of(tmp_path, """
        rules:
          - {id: EX-P, kind: exclusive, items: ["prefix:XA01AAA", "prefix:XA01"], within: claim, action: warn}
    """)
    same_family = claim([("XA01AAA001A001010100001", "2025-03-02 08:00:00"),
                         ("XA01AAA001A001010100002", "2025-03-03 08:00:00")])
    assert run(rules, same_family) == []   # both are the first entry's family
    two = claim([("XA01AAA001A001010100001", "2025-03-02 08:00:00"), ("XA01BBB002A001010100003", "2025-03-03 08:00:00")])
    assert run(rules, two)[0].lines == ("2",)


def test_course_limit_on_summed_prd_days_within_the_claim(tmp_path):
    rules = rules_of(tmp_path, """
        rules:
          - {id: C-PRD, kind: course_limit, items: ["XB01AC"], days: 10, basis: prd_days, scope: claim,
             action: warn}
    """.replace('"XB01AC"', '"prefix:XB01AC"'))
    drug = "XB01ACA001A001010100001"
    ok = claim([(drug, "2025-03-02 08:00:00", 1, {"prd_days": 7}), (drug, "2025-03-09 08:00:00", 1, {"prd_days": 3})])
    assert run(rules, ok) == []
    over = claim([(drug, "2025-03-02 08:00:00", 1, {"prd_days": 7}), (drug, "2025-03-09 08:00:00", 1, {"prd_days": 3.5})])
    h = run(rules, over)[0]
    assert (h.lines, h.related) == (("2",), ("1",)) and "prd_days 10.5" in h.detail


def test_named_conditions_of_the_audit_folder_and_of_the_pack(tmp_path):
    from rules_engine.conditions.language import Cmp, Src
    named = {"inpatient": Cmp("med_type", "in", frozenset({"21", "24"}), Src("policy.yaml", 3, 5))}
    rules = rules_of(tmp_path, """
        conditions:
          adult_inpatient: {all: [{is: inpatient}, {age: {gte: 18}}]}
        rules:
          - {id: N-1, kind: item_condition, items: ["XN01AX"], when: {is: adult_inpatient}, action: reject_line}
    """.replace('"XN01AX"', '"prefix:XN01AX"'), named=named)
    drug = "XN01AXS001B002010100001"
    assert run(rules, claim([(drug, "2025-03-02 08:00:00")], age=30, med_type="24")) == []
    assert run(rules, claim([(drug, "2025-03-02 08:00:00")], age=30, med_type="11"))[0].rule_id == "N-1"
    assert run(rules, claim([(drug, "2025-03-02 08:00:00")], age=10, med_type="21"))[0].rule_id == "N-1"


def test_line_facts_from_the_settlement_can_be_passed_in(tmp_path):
    from rules_engine.audit import audit, claim_facts
    from rules_engine.model.claim import parse_claim
    rules = rules_of(tmp_path, """
        rules:
          - {id: K-1, kind: item_condition, items: ["XA01AAA001A001010100001"], when: {list_kind: drug},
             action: warn}
    """)
    c = parse_claim(claim([("XA01AAA001A001010100001", "2025-03-02 08:00:00")]))
    assert [h.rule_id for h in audit(rules, c, claim_facts(c), [])] == ["K-1"]   # no catalogue: list_kind missing
    assert audit(rules, c, claim_facts(c), [], line_facts=lambda ln: {"list_kind": "drug"}) == []
    assert audit(rules, c, claim_facts(c), [], line_facts={"1": {"list_kind": "drug"}}) == []


def test_hits_come_in_claim_order_and_serialise(tmp_path):
    rules = rules_of(tmp_path, """
        rules:
          - {id: B, kind: item_condition, items: ["002101030300000"], when: {gend: "2"}, action: warn}
          - {id: A, kind: quantity_limit, items: ["001102000050000"], max: 1, per: claim, action: reject_line,
             source: NHSA, ref: {file: x.csv, batch: 第一批, row: 9}}
    """)
    data = claim([("001102000050000", "2025-03-01 08:00:00"), ("002101030300000", "2025-03-01 09:00:00"),
                  ("001102000050000", "2025-03-02 08:00:00")], gend="1")
    hits = run(rules, data)
    assert [(h.rule_id, h.lines) for h in hits] == [("A", ("3",)), ("B", ("2",))]
    d = hits[0].to_dict()
    assert d["ref_text"] == "第一批 (row 9, x.csv)" and d["related"] == ["1"] and d["source"] == ["NHSA"]
    assert d["rule_at"].endswith("rules.yaml:5")   # the line of its "- {id: A"
