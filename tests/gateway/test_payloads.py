"""National payloads: the real answers quoted in the reference parse and validate against our
schemas; what we build validates against the input schemas; an answer with a missing field or a
wrong type is a located problem, never a crash."""
from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gw_support import ROOT, SAMPLES, example, sample  # noqa: E402

from rules_engine.gateway import payloads as P  # noqa: E402
from rules_engine.gateway.security import parse_json_body  # noqa: E402
from rules_engine.gateway.settings import SubmissionSettings  # noqa: E402

NATIONAL = ROOT / "schemas" / "national"
SAMPLE_INFNOS = sorted(p.stem for p in SAMPLES.glob("*.json"))


def schema(name: str) -> jsonschema.Draft202012Validator:
    s = json.loads((NATIONAL / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(s)
    return jsonschema.Draft202012Validator(s)


def test_schema_files_are_current():
    for name, text in P.render_schemas().items():
        p = NATIONAL / name
        assert p.exists() and p.read_text(encoding="utf-8") == text, \
            f"schemas/national/{name} is stale: run 'python -m rules_engine.gateway.payloads --write-schemas'"


@pytest.mark.parametrize("infno", SAMPLE_INFNOS)
def test_real_answers_validate_against_the_schemas(infno):
    raw = json.loads(sample(infno))
    schema("envelope.response.schema.json").validate(raw)
    schema(f"{infno}.output.schema.json").validate(raw["output"])


@pytest.mark.parametrize("infno", SAMPLE_INFNOS)
def test_real_answers_parse_into_the_models(infno):
    msg = parse_json_body(sample(infno))
    model, problem = P.parse_output(infno, msg["output"])
    assert problem is None and model is not None


def test_the_real_2204_line_is_read_exactly():
    """4.52 乙类 at 5 %: 0.23 先行自付 + 4.29 in scope (reference §1.3), amounts exact."""
    m, _ = P.parse_output("2204", parse_json_body(sample("2204"))["output"])
    r = m.result[0]
    assert (r.det_item_fee_sumamt, r.preselfpay_amt, r.inscp_scp_amt, r.selfpay_prop, r.chrgitm_lv) == \
        (Decimal("4.52"), Decimal("0.23"), Decimal("4.29"), Decimal("0.05"), "02")
    assert r.fulamt_ownpay_amt == 0 and r.pric_uplmt_amt == 999999


def test_the_real_2304_identities_hold_on_the_parsed_model():
    """The platform's own arithmetic (reference §2.2) on the 23,442.46 inpatient settlement."""
    m, _ = P.parse_output("2304", parse_json_body(sample("2304"))["output"])
    s = m.setlinfo
    assert s.medfee_sumamt == s.fulamt_ownpay_amt + s.overlmt_selfpay + s.preselfpay_amt + s.inscp_scp_amt
    assert s.medfee_sumamt == s.fund_pay_sumamt + s.psn_part_amt + s.hosp_part_amt
    assert s.psn_part_amt == s.acct_pay + s.psn_cash_pay
    assert {d.fund_pay_type: d.fund_payamt for d in m.setldetail} == {
        "330101": Decimal("18785.39"), "999996": Decimal("505.01"), "310201": Decimal("170.04")}
    assert m.setlinfo.model_extra == {} or "psn_pay" not in m.setlinfo.model_extra


def test_regional_extras_and_nulls_are_kept():
    m, _ = P.parse_output("2303", parse_json_body(sample("2303"))["output"])
    assert m.setlinfo.model_extra["psn_pay"] == Decimal("4152.06")
    assert m.setlinfo.model_extra["cashPayamt"] == Decimal("3982.02")
    r, _ = P.parse_output("2305", parse_json_body(sample("2305"))["output"])
    assert r.setlinfo.psn_part_amt is None and r.setlinfo.medfee_sumamt == Decimal("-3379.26")


@pytest.mark.parametrize("infno,path,value,expect", [
    ("2207", ("setlinfo", "medfee_sumamt"), "abc", "output.setlinfo.medfee_sumamt"),
    ("2207", ("setlinfo", "acct_pay"), None, "output.setlinfo.acct_pay"),
    ("2207", ("setlinfo", "fund_pay_sumamt"), True, "output.setlinfo.fund_pay_sumamt"),
    ("2207", ("setlinfo", "setl_id"), None, "output.setlinfo.setl_id"),
    ("2207", ("setlinfo", "hifp_pay"), "1.234", "output.setlinfo.hifp_pay"),
    ("2207", ("setldetail",), "oops", "output.setldetail"),
    ("2204", ("result", 0, "inscp_scp_amt"), {"x": 1}, "output.result[0].inscp_scp_amt"),
    ("2204", ("result", 0, "chrgitm_lv"), 2, "output.result[0].chrgitm_lv"),
    ("9001", ("signinoutb", "sign_no"), "", "output.signinoutb.sign_no"),
    ("1101", ("baseinfo", "psn_no"), None, "output.baseinfo.psn_no"),
])
def test_a_bad_answer_names_its_field(infno, path, value, expect):
    out = parse_json_body(sample(infno))["output"]
    node = out
    for k in path[:-1]:
        node = node[k]
    if value is None:
        node.pop(path[-1])
    else:
        node[path[-1]] = value
    model, problem = P.parse_output(infno, out)
    assert model is None
    assert problem[0] == expect and expect in problem[1]


@pytest.mark.parametrize("output", [None, [], "text", 12])
def test_an_output_that_is_not_an_object_is_a_problem(output):
    model, problem = P.parse_output("2207", output)
    assert model is None and problem[0] == "output"


def test_numeric_text_amounts_are_accepted_exactly():
    out = parse_json_body(sample("2207"))["output"]
    out["setlinfo"]["medfee_sumamt"] = " 4.52 "
    m, problem = P.parse_output("2207", out)
    assert problem is None and m.setlinfo.medfee_sumamt == Decimal("4.52")


# --------------------------------------------------------------------------- what we send

IDS = {"psn_no": "P1", "mdtrt_id": "M1", "chrg_bchno": "B1"}


@pytest.mark.parametrize("name", ["beijing-outpatient", "beijing-inpatient", "beijing-resident", "cross-region-hebei"])
def test_built_inputs_validate_against_the_input_schemas(name):
    c = example(name)
    inpatient = c["med_type"].startswith("2")
    fee = P.build_feedetail(c, mdtrt_id="M1", psn_no="P1", chrg_bchno="B1")
    schema("2204.input.schema.json").validate(json.loads(json.dumps(fee, default=str)))
    pre = P.build_presettle(c, IDS, SubmissionSettings(), inpatient=inpatient)
    schema(("2303" if inpatient else "2206") + ".input.schema.json").validate(json.loads(json.dumps(pre, default=str)))
    answer, _ = P.parse_output("2207", parse_json_body(sample("2207"))["output"])
    body = P.build_settle(c, IDS, SubmissionSettings(), answer.setlinfo, inpatient=inpatient)
    schema(("2304" if inpatient else "2207") + ".input.schema.json").validate(json.loads(json.dumps(body, default=str)))
    # 2207 repeats the pre-settlement totals (reference §2.1), not our own
    assert body["data"]["medfee_sumamt"] == Decimal("4.52") and body["data"]["preselfpay_amt"] == Decimal("0.23")


def test_the_other_inputs_validate():
    for infno, body in [("2208", P.build_refund("P1", "M1", "S1")), ("2601", P.build_reversal("P1", "H" * 30, "2207")),
                        ("9001", P.build_signin("0001", "00-00", "127.0.0.1")),
                        ("5203", P.build_settlement_query("P1", "S1", "M1")),
                        ("3201", P.build_reconcile(insutype="310", clr_type="11", setl_optins="110000",
                                                   begndate="2025-01-01", enddate="2025-01-01",
                                                   medfee_sumamt=Decimal("1.00"), fund_pay_sumamt=Decimal("0.50"),
                                                   acct_pay=Decimal("0.00"), count=1)),
                        ("1101", P.build_person_query(mdtrt_cert_type="02", mdtrt_cert_no="X")),
                        ("2001", P.build_eligibility(psn_no="P", insutype="310", fixmedins_code="H11010500001",
                                                     med_type="11", begntime="2025-01-01 00:00:00")),
                        ("5206", P.build_cumulative(psn_no="P", cum_ym="202501"))]:
        schema(f"{infno}.input.schema.json").validate(json.loads(json.dumps(body, default=str)))


amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(amounts, st.integers(min_value=1, max_value=9)), min_size=1, max_size=8))
def test_feedetail_keeps_every_amount_exact(rows):
    c = {"setl_time": "2025-01-02 03:04:05",
         "feedetail": [{"feedetl_sn": str(i), "med_list_codg": "X1", "cnt": n, "pric": a,
                        "det_item_fee_sumamt": a * n} for i, (a, n) in enumerate(rows)]}
    fee = P.build_feedetail(c, mdtrt_id="M", psn_no="P", chrg_bchno="B")
    assert [ln["det_item_fee_sumamt"] for ln in fee["feedetail"]] == [a * n for a, n in rows]
    assert P.medfee_sumamt(c) == sum(a * n for a, n in rows)
    assert all(ln["fee_ocur_time"] == "2025-01-02 03:04:05" for ln in fee["feedetail"])


def test_visit_ids_derive_a_stable_local_id_and_refuse_when_asked():
    c = example("beijing-outpatient")
    a, b = P.visit_ids(c), P.visit_ids(dict(c))
    assert a == b and a["mdtrt_id"].startswith("L") and len(a["mdtrt_id"]) == 30
    assert P.visit_ids(dict(c, mdtrt_id="REAL1"))["mdtrt_id"] == "REAL1"
    with pytest.raises(ValueError, match="mdtrt_id"):
        P.visit_ids(c, require_mdtrt_id=True)
    with pytest.raises(ValueError, match="psn_no"):
        P.visit_ids({k: v for k, v in c.items() if k != "psn_no"})


# --------------------------------------------------------------------------- the person's side

def test_fill_claim_from_1101_and_5206():
    person, _ = P.parse_output("1101", parse_json_body(sample("1101"))["output"])
    cum = P.Output5206.model_validate({"cuminfo": [
        {"insutype": "310", "year": "2025", "cum_type_code": "Q0000", "cum": "300.00"},
        {"insutype": "310", "year": "2025", "cum_type_code": "Q0000", "cum": 200},
        {"insutype": "310", "year": "2024", "cum_type_code": "Q0000", "cum": 999},
        {"insutype": "310", "year": "2025", "cum_type_code": "ZZZ", "cum": 1}]})
    claim = {"psn_no": "x", "insutype": "310", "setl_time": "2025-03-01", "age": 1, "med_type": "11"}
    c, notes = P.fill_claim(claim, person, cumulative=cum, accumulator_map={"Q0000": "outpatient_dedc_year"},
                            retired_psn_types=("116032",))
    assert c["psn_no"] == "TEST0000000000000005" and c["insuplc_admdvs"] == "310115"
    assert c["balc"] == Decimal("41509.0") and c["insutype_retr_flag"] == "1" and "age" not in c
    assert c["accumulators"] == {"outpatient_dedc_year": Decimal("500.00")}
    assert any("ZZZ" in n for n in notes)
