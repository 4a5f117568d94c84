"""The platform's answer against ours: every difference found, explained with our rule, pack and
YAML line; the tolerance decides block or warn; the 3201 totals follow the region's definition."""
from __future__ import annotations

import json
import sys
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gw_support import example  # noqa: E402

from rules_engine.gateway.compare import compare, daily_totals, settlement_totals  # noqa: E402
from rules_engine.gateway.payloads import Output2204, OutputSettle  # noqa: E402
from rules_engine.gateway.settings import CompareSettings, ReconcileSettings  # noqa: E402


def platform_answer(s, **changes):
    """The platform's 2206 and 2204 answers as the simulator would give them for settlement `s`."""
    d = json.loads(json.dumps(s.to_dict(), default=str))
    si = d["setlinfo"]
    si.update({k: str(v) for k, v in changes.items() if not k.startswith("line_")})
    rows = []
    for r in d["result"]:
        r = {k: v for k, v in r.items() if k not in ("reasons", "review_flag")}
        if changes.get("line_sn") == r["feedetl_sn"]:
            r[changes["line_field"]] = changes["line_value"]
        rows.append(r)
    if changes.get("drop_line"):
        rows = rows[1:]
    return OutputSettle.model_validate({"setlinfo": si, "setldetail": d["setldetail"]}), \
        Output2204.model_validate({"result": rows})


@pytest.fixture(scope="module")
def settled(engine):
    return engine.settle(example("cross-region-hebei"))


def test_the_same_figures_match(settled):
    pre, lines = platform_answer(settled)
    c = compare(settled, pre, lines, CompareSettings())
    assert c.result == "match" and not c.differences and c.compared_lines == 6 and c.compared_fields == 18
    assert "agree to the fen" in c.render()


def test_a_fund_difference_blocks_and_names_our_rule_pack_and_line(settled):
    pre, lines = platform_answer(settled, hifp_pay="400.00", fund_pay_sumamt="400.00")
    c = compare(settled, pre, lines, CompareSettings())
    assert c.blocked
    d = next(x for x in c.differences if x.field == "hifp_pay")
    assert (d.ours, d.theirs, d.delta, d.severity) == ("420.81", "400.00", "-20.81", "block")
    e = d.explanation
    assert e["pack"].startswith("110000@2025.1#") and e["at"].startswith("regions/110000/2025.1/policy.yaml:")
    assert "layer" in e["rule"] and "pays 420.81" in e["formula"]
    text = c.render()
    assert "hifp_pay: platform 400.00  ours 420.81" in text and "policy.yaml:" in text


def test_a_line_difference_is_explained_by_the_line_and_its_catalogue_row(settled):
    pre, lines = platform_answer(settled, line_sn="2", line_field="preselfpay_amt", line_value="0.00")
    c = compare(settled, pre, lines, CompareSettings())
    d = next(x for x in c.differences if x.scope == "line")
    assert d.line == "2" and d.field == "preselfpay_amt" and d.severity == "block"
    assert d.explanation["pack"].startswith("130000@2021.1#")  # the treatment place's catalogue
    assert d.explanation["at"].endswith(tuple("0123456789")) and "catalogue" in d.explanation["rule"]


def test_tolerance_turns_a_small_difference_into_a_warning(settled):
    si = settled.setlinfo()
    pre, lines = platform_answer(settled, psn_cash_pay=str(si["psn_cash_pay"] + Decimal("0.01")))
    assert compare(settled, pre, lines, CompareSettings()).blocked
    c = compare(settled, pre, lines, CompareSettings(tolerance_fen=1))
    assert not c.blocked and c.result == "warn"
    c2 = compare(settled, pre, lines, CompareSettings(field_tolerance_fen={"psn_cash_pay": 1}))
    assert not c2.blocked
    c3 = compare(settled, pre, lines, CompareSettings(on_difference="warn"))
    assert not c3.blocked and c3.differences


def test_missing_and_extra_lines_are_differences(settled):
    pre, lines = platform_answer(settled, drop_line=True)
    c = compare(settled, pre, lines, CompareSettings())
    assert any(d.note and "did not answer" in d.note for d in c.differences) and c.blocked
    c2 = compare(settled, pre, lines, CompareSettings(lines=False))
    assert not c2.differences


def test_a_class_difference_is_reported_as_information(settled):
    pre, lines = platform_answer(settled, line_sn="3", line_field="chrgitm_lv", line_value="03")
    c = compare(settled, pre, lines, CompareSettings())
    d = next(x for x in c.differences if x.field == "chrgitm_lv")
    assert d.severity == "warn" and not c.blocked


def _row(msgid, **t):
    base = {"region": "110000", "insutype": "310", "clr_type": "11", "setl_optins": "110000",
            "medfee_sumamt": "100.00", "fund_pay_sumamt": "60.00", "acct_pay": "10.00"}
    base.update(t)
    return SimpleNamespace(msgid=msgid, totals=json.dumps(base))


def test_daily_totals_follow_the_regional_fund_definition():
    rows = [_row("a"), _row("b", acct_pay="5.00"), _row("c", insutype="390", acct_pay="0.00")]
    without = {(g.insutype): g for g in daily_totals(rows)}
    assert without["310"].fund_pay_sumamt == 12000 and without["310"].acct_pay == 1500 and without["310"].count == 2
    with_acct = {(g.insutype): g for g in daily_totals(rows, includes_acct={"110000": True})}
    assert with_acct["310"].fund_pay_sumamt == 13500 and with_acct["390"].fund_pay_sumamt == 6000


def test_settlement_totals_fall_back_to_the_configured_clearing_type():
    t = settlement_totals({"insutype": "310", "medfee_sumamt": Decimal("1.00"), "fund_pay_sumamt": 0,
                           "acct_pay": Decimal("0")}, region="110000", inpatient=True,
                          reconcile=replace(ReconcileSettings(), clr_type_inpatient="22"))
    assert t["clr_type"] == "22" and t["setl_optins"] == "110000" and t["medfee_sumamt"] == "1.00"
