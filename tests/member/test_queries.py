"""The queries a chat window shows: national field names, a summary, and — for the year-to-date
figures — our own estimate of what remains, checked against a settlement by the engine."""
from __future__ import annotations

from decimal import Decimal

import pytest
from member_helpers import CLINIC, PURPOSE, consent, entries, today

from rules_engine.member import MemberError
from rules_engine.member.sandbox import BJ


@pytest.fixture
def bj(svc):
    consent(svc, BJ)
    return svc


def test_insurance_answers_in_national_fields_with_a_summary(bj):
    r = bj.insurance(BJ, purpose=PURPOSE, caller=CLINIC)
    assert r["infno"] == "1101"
    row = r["output"]["insuinfo"][0]
    assert {row["insutype"], row["psn_type"], row["insuplc_admdvs"], str(row["balc"])} == {"310", "11", "110000",
                                                                                             "1500.00"}
    assert r["output"]["baseinfo"]["psn_no"] == BJ
    assert "职工基本医疗保险" in r["summary"] and "1,500.00 元" in r["summary"]
    assert "张示例" not in r["summary"]          # the summary never names the person


def test_eligibility_says_yes_for_an_insured_date_and_no_for_chronic_without_filing(bj, sandbox):
    ok = bj.eligibility(BJ, med_type="21", purpose=PURPOSE, caller=CLINIC)
    assert ok["infno"] == "2001" and ok["output"]["trtinfo"][0]["trt_enjymnt_flag"] == "1"
    assert "可以享受" in ok["summary"]
    early = bj.eligibility(BJ, med_type="21", date="2001-01-01", purpose=PURPOSE, caller=CLINIC)
    assert early["output"]["trtinfo"][0]["trt_enjymnt_flag"] == "0" and "暂不能享受" in early["summary"]
    sandbox.sim.chronic.pop(BJ)
    no = bj.eligibility(BJ, med_type="14", purpose=PURPOSE, caller=CLINIC)
    assert no["output"]["trtinfo"][0]["trt_enjymnt_flag"] == "0"


def test_a_bad_date_or_med_type_is_located(bj):
    with pytest.raises(MemberError) as e:
        bj.eligibility(BJ, med_type="inpatient", date="tomorrow", purpose=PURPOSE, caller=CLINIC)
    assert {x["path"] for x in e.value.errors} == {"med_type", "date"} and e.value.status == 422


def test_chronic_filings_are_listed(bj):
    r = bj.chronic(BJ, purpose=PURPOSE, caller=CLINIC)
    assert r["infno"] == "5301"
    rows = r["output"]["feedetail"]
    assert rows[0]["opsp_dise_code"] == "M03900" and "高血压" in r["summary"]


def test_benefits_estimate_matches_an_engine_settlement(bj, engine):
    """5206 figures as the platform gave them; what remains and what the next 1,000 yuan gets back
    are ours, labelled an estimate, and equal to settling that 1,000 yuan with the engine."""
    r = bj.benefits(BJ, purpose=PURPOSE, caller=CLINIC)
    assert r["infno"] == "5206"
    cum = {c["cum_type_code"]: Decimal(str(c["cum"])) for c in r["output"]["cuminfo"]}
    assert cum == {"outpatient_dedc_year": Decimal("1800.00"), "inpatient_fund_year": Decimal("20000.00")}
    est = r["estimate"]
    assert "estimate" in est["label"] and r["summary"].startswith("（估算")
    assert str(est["amount"]) == "1000.00"
    by = {e["med_type"]: e for e in est["by_med_type"]}
    assert set(by) == {"11", "21"}
    for mt, e in by.items():
        claim = {"psn_no": BJ, "insuplc_admdvs": "110000", "mdtrtarea_admvs": "110000", "insutype": "310",
                 "psn_type": "11", "med_type": mt, "hosp_lv": "3", "age": 45, "gend": "1",
                 "setl_time": today().isoformat(),
                 "accumulators": {"outpatient_dedc_year": "1800.00", "inpatient_fund_year": "20000.00"},
                 "feedetail": [{"feedetl_sn": "1", "med_list_codg": e["item"], "cnt": 1, "pric": 1000,
                                "det_item_fee_sumamt": 1000}]}
        s = engine.settle(claim)
        assert str(e["fund_pay_sumamt"]) == str(s.setlinfo()["fund_pay_sumamt"]), mt
    # outpatient: the whole deductible is used this year, so the next 1,000 gets the ratio at once
    assert str(by["11"]["layers"][0]["deductible_remaining"]) == "0.00"
    assert Decimal(str(by["11"]["fund_pay_sumamt"])) > 0
    # inpatient: the year cap less what the fund already paid (20,000.00 from 5206)
    cap = by["21"]["layers"][0]["caps"][0]
    assert Decimal(str(cap["remaining"])) == Decimal(str(cap["amount"])) - Decimal("20000.00")
    assert f"{Decimal(str(cap['remaining'])):,.2f}" in r["summary"]


def test_every_query_is_journalled_with_its_consent(bj):
    bj.insurance(BJ, purpose=PURPOSE, caller=CLINIC)
    bj.benefits(BJ, purpose=PURPOSE, caller=CLINIC)
    q = entries(bj.journal, "member.query")
    assert [e.payload["op"] for e in q] == ["insurance", "benefits"]
    assert all(e.payload["consent_id"] and e.payload["msgids"] for e in q)
    assert q[1].payload["infno"] == ["1101", "5206"]
