"""Every worked example of shared/reference/ that a shipped pack can express, settled to the fen."""
from __future__ import annotations

from decimal import Decimal

import pytest

from rules_engine import Engine


def claim(**kw):
    base = {"insuplc_admdvs": "110000", "mdtrtarea_admvs": "110000", "insutype": "310", "med_type": "21",
            "age": 45, "gend": "1", "hosp_lv": "3", "setl_time": "2021-06-01 10:00:00"}
    base.update(kw)
    return base


def line(sn, code, amount, cnt=1, pric=None):
    return {"feedetl_sn": sn, "med_list_codg": code, "cnt": cnt, "pric": pric if pric is not None else amount,
            "det_item_fee_sumamt": amount}


def money(s, field):
    return s.to_dict()["setlinfo"][field]


def test_hmia_illustration_inpatient_first_band(engine: Engine):
    # regions.md §1.2: in-scope 12,000, deductible 1,300, 85 % → fund 9,095.00, patient 2,905.00
    s = engine.settle(claim(feedetail=[line("1", "001102000050000", 12000)]))
    assert money(s, "hifp_pay") == Decimal("9095.00")
    assert money(s, "psn_part_amt") == Decimal("2905.00")
    assert money(s, "act_pay_dedc") == Decimal("1300.00")
    assert s.insured.key == "110000@2021.1"


def test_beijing_receipt_outpatient_70_percent_half_up(engine: Engine):
    # regions.md §1.2: in service, deductible already met, 611.14 → 门诊大额支付 427.80, 自付一 183.34
    s = engine.settle(claim(med_type="11", accumulators={"outpatient_dedc_year": 1800},
                            feedetail=[line("1", "001102000030000", 611.14)]))
    assert money(s, "hifob_pay") == Decimal("427.80")
    assert money(s, "psn_part_amt") == Decimal("183.34")
    assert money(s, "act_pay_dedc") == Decimal("0.00")


def test_second_admission_half_deductible(engine: Engine):
    # 650 for each later admission of the year (regions.md §1.1)
    s = engine.settle(claim(accumulators={"admissions_year": 1, "inpatient_inscp_year": 30000},
                            feedetail=[line("1", "001102000050000", 5000)]))
    assert money(s, "act_pay_dedc") == Decimal("650.00")
    # band axis continues at 30,000 + 650: (35000 − 30650) × 90 % = 3915.00
    assert money(s, "hifp_pay") == Decimal("3915.00")


@pytest.mark.parametrize("hosp_lv,in_service,retired", [
    ("3", "0.85", "0.91"), ("2", "0.87", "0.922"), ("1", "0.90", "0.94")])
def test_retired_ratio_is_derived_from_in_service(engine: Engine, hosp_lv, in_service, retired):
    # "退休人员个人支付比例为职工支付比例的60%": fund = 1 − 0.6 × (1 − in-service ratio)
    amount = 11300  # 10,000 above the 1,300 deductible, all in the first band
    for flag, ratio in (("0", in_service), ("1", retired)):
        s = engine.settle(claim(hosp_lv=hosp_lv, insutype_retr_flag=flag,
                                feedetail=[line("1", "001102000050000", amount)]))
        assert money(s, "hifp_pay") == (Decimal(10000) * Decimal(ratio)).quantize(Decimal("0.01"))
        assert money(s, "pool_prop_selfpay") == Decimal(ratio)


def test_bands_are_cumulative_from_zero(engine: Engine):
    # 三级, first admission, in-scope 45,000: (30000−1300)×85% + 10000×90% + 5000×95% = 38145.00
    s = engine.settle(claim(feedetail=[line("1", "001102000050000", 45000)]))
    assert money(s, "hifp_pay") == Decimal("38145.00")


def test_inpatient_ceiling_500000_per_year(engine: Engine):
    s = engine.settle(claim(accumulators={"admissions_year": 2, "inpatient_inscp_year": 600000,
                                          "inpatient_fund_year": 499000},
                            feedetail=[line("1", "001102000050000", 20000)]))
    assert money(s, "hifp_pay") == Decimal("1000.00")
    assert s.to_dict()["setldetail"][0]["crt_payb_lmt_amt"] == Decimal("1000.00")


def test_older_version_selected_by_date_and_large_fund_band(engine: Engine):
    # before 2021 the basic fund stops at 100,000 and 大额 pays 85 % of 100,000–300,000 (MOSH)
    s = engine.settle(claim(setl_time="2019-05-05", accumulators={"admissions_year": 1, "inpatient_inscp_year": 90000},
                            feedetail=[line("1", "001102000050000", 20000)]))
    assert s.insured.key == "110000@2018.1"
    assert money(s, "act_pay_dedc") == Decimal("650.00")
    # basic: (100000 − 90650) × 95 % = 8882.50; 大额: 10000 × 85 % = 8500.00
    assert money(s, "hifp_pay") == Decimal("8882.50")
    assert money(s, "hifob_pay") == Decimal("8500.00")


def test_older_version_retired_large_band_split(engine: Engine):
    s = engine.settle(claim(setl_time="2020-03-01", insutype_retr_flag="1",
                            accumulators={"admissions_year": 1, "inpatient_inscp_year": 100000},
                            feedetail=[line("1", "001102000050000", 10000)]))
    # 100,000–300,000: 80 % 大额 + 10 % retirees' supplementary; the basic fund has nothing left.
    # The deductible (650) belongs to the basic layer; 大额 has none, so it pays on all 10,000.
    assert money(s, "act_pay_dedc") == Decimal("650.00")
    assert money(s, "hifp_pay") == Decimal("0.00")
    assert money(s, "hifob_pay") == Decimal("8000.00")   # (110000 − 100000) × 80 %
    assert money(s, "oth_pay") == Decimal("1000.00")     # (110000 − 100000) × 10 %


def test_hebei_line_sample_5_percent(engine: Engine):
    # national-interface.md §1.3: a 乙类 line of 4.52 at 5 % → 先行自付 0.23, in scope 4.29
    # 依西美坦 is a women's drug in the 两库 (限定性别对象 女): the patient is a woman
    s = engine.settle(claim(mdtrtarea_admvs="130000", setl_time="2025-06-01", gend="2",
                            feedetail=[line("1", "XL02BGY096A001010100107", 4.52)]))
    r = s.to_dict()["result"][0]
    assert (r["chrgitm_lv"], r["selfpay_prop"]) == ("02", Decimal("0.05"))
    assert (r["preselfpay_amt"], r["inscp_scp_amt"]) == (Decimal("0.23"), Decimal("4.29"))
    assert r["pric_uplmt_amt"] == Decimal(999999)


def test_class_a_line_in_scope_and_unlisted_line_ownpay(engine: Engine):
    # json1.json: 甲 6.00 = 3 × 2.0 fully in scope; an unlisted item is 全自费 with selfpay_prop 1
    # (急诊诊查费: 住院诊查费 would meet the 两库 rule "at most 1 per day")
    s = engine.settle(claim(feedetail=[line("1", "001102000030000", 6.00, cnt=3, pric=2.0),
                                       line("2", "NOT-IN-ANY-CATALOGUE", 1.50)]))
    a, c = s.to_dict()["result"]
    assert (a["chrgitm_lv"], a["selfpay_prop"], a["inscp_scp_amt"]) == ("01", Decimal(0), Decimal("6.00"))
    assert (c["chrgitm_lv"], c["selfpay_prop"], c["fulamt_ownpay_amt"]) == ("03", Decimal(1), Decimal("1.50"))


def test_shandong_serious_illness_illustration(engine: Engine):
    # national-interface.md §7: 27万 in scope, basic pays 10万; (10万−1万)×50% + 7万×60% = 8.7万
    # the example region (990001) is the insured place; the line is a 甲 item of the Beijing sample catalogue
    s = engine.settle(claim(insuplc_admdvs="990001", mdtrtarea_admvs="110000", insutype="390",
                            setl_time="2021-07-01", feedetail=[line("1", "001102000050000", 270000)]))
    assert money(s, "hifp_pay") == Decimal("100000.00")
    assert money(s, "hifmi_pay") == Decimal("87000.00")
    assert money(s, "psn_part_amt") == Decimal("83000.00")


def test_restriction_unmet_goes_ownpay_and_names_the_text(engine: Engine):
    # 玛巴洛沙韦干混悬剂 限5至12岁以下…儿童患者: an adult fails it
    s = engine.settle(claim(mdtrtarea_admvs="130000", setl_time="2025-06-01", age=40,
                            diseinfo=[{"diag_code": "J10.100"}],
                            feedetail=[line("1", "XJ05AXM176X006010181735", 98)]))
    r = s.to_dict()["result"][0]
    assert r["fulamt_ownpay_amt"] == Decimal("98.00") and r["lmt_used_flag"] == "1"
    assert r["reasons"][0]["code"] == "RESTRICTION_UNMET"
    assert "儿童" in r["reasons"][0]["text"]
    # a child with influenza meets it
    s = engine.settle(claim(mdtrtarea_admvs="130000", setl_time="2025-06-01", age=8,
                            diseinfo=[{"diag_code": "J10.100"}],
                            feedetail=[line("1", "XJ05AXM176X006010181735", 98)]))
    assert s.to_dict()["result"][0]["inscp_scp_amt"] == Decimal("93.10")


def test_unencoded_restriction_is_flagged_never_silent(engine: Engine):
    s = engine.settle(claim(mdtrtarea_admvs="130000", setl_time="2025-06-01",
                            feedetail=[line("1", "XC05CAQ094B002010100267", 100)]))
    r = s.to_dict()["result"][0]
    assert r["review_flag"] == "1"
    assert any(w["code"] == "W-LINE-REVIEW" for w in s.to_dict()["warnings"])


def test_beijing_has_no_class_b_ratio_so_class_b_lines_are_refused(engine: Engine):
    from rules_engine.settle.lines import SelfpayUnset
    with pytest.raises(SelfpayUnset) as e:
        engine.settle(claim(setl_time="2025-06-01", feedetail=[line("1", "XL02BGY096A001010100107", 10)]))
    assert "catalogue_defaults.selfpay_prop.乙" in e.value.message


def test_identities_hold_on_the_shipped_examples(engine: Engine, regions_dir):
    import json
    from pathlib import Path
    for f in sorted((regions_dir.parent / "examples" / "claims").glob("*.json")):
        s = engine.settle(json.loads(f.read_text(encoding="utf-8")))
        assert s.check_identities() == [], f.name
