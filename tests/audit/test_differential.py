"""The indexed evaluator (hot path) and the durable-rules reference give the same hits.

Random rule sets of every kind — exact codes and `prefix:` families that overlap (so a line can
match several entries, and exclusive rules must pick the first), every window (day, N days,
hours, claim, admission), every course basis and scope, random conditions — against random
claims: lines on several days or without a date or clock time, fractional and zero counts,
prd_days present or not, one-day and multi-day visits, and a history with lines of the same
admission, of others and of none. Every field of every hit must agree, in the same order.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules_engine.audit import AuditRules, DurableAudit, audit, claim_facts, parse_history
from rules_engine.audit.model import AuditRule, ItemSet
from rules_engine.conditions.language import All, AnyOf, Cmp, Not, Src
from rules_engine.model.claim import parse_claim

SRC = Src("rules.yaml", 1, 1)
SETTINGS = settings(max_examples=250, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

CODES = ["001102000050000", "001102000050100", "001102000030000", "001103000010000",
         "XA01AAA001A001010100001", "XA01AAA001A001010100002", "XA01BBB002A001010100003", "ZA01AAA0010010100001"]
ENTRIES = CODES + ["prefix:0011020000", "prefix:XA01AAA", "prefix:XA01", "prefix:ZA"]
DAY0 = dt.date(2025, 3, 1)

code_entries = st.lists(st.sampled_from(ENTRIES), min_size=1, max_size=4, unique=True)


def cmp(fact: str, op: str, value) -> Cmp:
    return Cmp(fact, op, value, SRC)


leaf = st.one_of(
    st.sampled_from(["1", "2", "9"]).map(lambda g: cmp("gend", "eq", g)),
    st.integers(0, 70).map(lambda a: cmp("age", "lt", a)),
    st.sampled_from([("310",), ("410",), ("410", "510")]).map(lambda v: cmp("insutype", "in", frozenset(v))),
    st.sampled_from(["2", "3"]).map(lambda v: cmp("hosp_lv", "eq", v)),
    st.just(cmp("med_type", "in", frozenset({"21", "24"}))),
    st.sampled_from([(("J18", "J18"),), (("C00", "C97"),), (("I50.900", "I50.900"),)]).map(
        lambda p: cmp("diagnoses", "icd", p)),
    st.sampled_from([0.5, 1, 2]).map(lambda v: cmp("cnt", "gt", v)),
    st.booleans().map(lambda b: cmp("prd_days", "exists", b)),
)
condition = st.recursive(leaf, lambda inner: st.one_of(
    st.lists(inner, min_size=2, max_size=3).map(lambda xs: All(tuple(xs), SRC)),
    st.lists(inner, min_size=2, max_size=3).map(lambda xs: AnyOf(tuple(xs), SRC)),
    inner.map(lambda x: Not(x, SRC))), max_leaves=5)


@st.composite
def rule(draw, i: int) -> AuditRule:
    kind = draw(st.sampled_from(["item_condition", "diagnosis_required", "quantity_limit", "duplicate_charge",
                                 "exclusive", "course_limit"]))
    items = draw(code_entries)
    if kind == "exclusive" and len(items) < 2:
        items = items + [e for e in ENTRIES if e not in items][:1]
    base = AuditRule(id=f"R{i}", kind=kind, action=draw(st.sampled_from(["warn", "reject_line", "reject_claim"])),
                     message=f"rule {i}", items=ItemSet.of(items), src=SRC)
    if kind == "item_condition":
        return replace(base, when=draw(condition))
    if kind == "diagnosis_required":
        pats = draw(st.sampled_from([(("J18", "J18"),), (("C00", "C97"), ("D00", "D09")), (("I50.900", "I50.900"),)]))
        return replace(base, when=cmp("diagnoses", "icd", pats))
    if kind == "quantity_limit":
        per = draw(st.sampled_from(["day", "days", "claim", "admission"]))
        return replace(base, max=draw(st.sampled_from([5000, 10_000, 20_000, 30_000])), per=per,
                       days=draw(st.integers(2, 9)) if per == "days" else None)
    if kind == "duplicate_charge":
        within = draw(st.sampled_from(["day", "hours", "claim", "admission"]))
        return replace(base, main=ItemSet.of(draw(code_entries)), within=within,
                       hours=draw(st.integers(1, 30)) if within == "hours" else None)
    if kind == "exclusive":
        return replace(base, within=draw(st.sampled_from(["day", "claim", "admission"])))
    return replace(base, days=draw(st.integers(1, 8)), basis=draw(st.sampled_from(["span", "prd_days"])),
                   scope=draw(st.sampled_from(["claim", "admission", "history"])),
                   gap_days=draw(st.one_of(st.none(), st.integers(1, 5))))


@st.composite
def rule_set(draw) -> AuditRules:
    n = draw(st.integers(1, 6))
    rules = tuple(draw(rule(i)) for i in range(n))
    digest = hashlib.sha256(repr(rules).encode()).hexdigest()
    return AuditRules(rules, {}, (), digest)


def when(draw, dated_p: bool = True) -> str | None:
    if not draw(st.booleans()) and not dated_p:
        return None
    d = DAY0 + dt.timedelta(days=draw(st.integers(0, 12)))
    if draw(st.booleans()):
        return d.isoformat()
    return f"{d.isoformat()} {draw(st.integers(0, 23)):02d}:{draw(st.sampled_from([0, 15, 59])):02d}:00"


@st.composite
def claim_and_history(draw) -> tuple[dict, list]:
    n = draw(st.integers(1, 8))
    lines = []
    for i in range(n):
        cnt = draw(st.sampled_from([0, 0.5, 1, 1, 2, 3]))
        ln = {"feedetl_sn": f"L{i}", "med_list_codg": draw(st.sampled_from(CODES + ["009999999999999"])),
              "cnt": cnt, "pric": 2, "det_item_fee_sumamt": round(cnt * 2, 2)}
        t = when(draw, dated_p=False) if draw(st.integers(0, 5)) else None
        if t is not None:
            ln["fee_ocur_time"] = t
        if draw(st.booleans()):
            ln["prd_days"] = draw(st.sampled_from([0, 1, 2.5, 4]))
        lines.append(ln)
    one_day = draw(st.booleans())
    claim = {"insuplc_admdvs": "110000", "mdtrtarea_admvs": "110000",
             "insutype": draw(st.sampled_from(["310", "390", "410", "510"])),
             "med_type": draw(st.sampled_from(["11", "21"])), "setl_time": (DAY0 + dt.timedelta(days=12)).isoformat(),
             "hosp_lv": draw(st.sampled_from(["1", "2", "3"])), "age": draw(st.sampled_from([0, 5, 17, 18, 40, 70])),
             "feedetail": lines,
             "diseinfo": [{"diag_code": c} for c in draw(st.lists(st.sampled_from(["J18.900", "C34.900", "I50.900x007",
                                                                                   "D05.100", "K35.800"]), max_size=2))]}
    g = draw(st.sampled_from(["1", "2", None]))
    if g:
        claim["gend"] = g
    if not one_day:
        claim["begntime"] = DAY0.isoformat()
    if draw(st.booleans()):
        claim["mdtrt_id"] = "ADM-1"
    history = []
    for j in range(draw(st.integers(0, 6))):
        h = {"med_list_codg": draw(st.sampled_from(CODES)), "fee_ocur_time": when(draw),
             "cnt": draw(st.sampled_from([0.5, 1, 2]))}
        adm = draw(st.sampled_from(["ADM-1", "ADM-0", None]))
        if adm:
            h["mdtrt_id"] = adm
        if draw(st.booleans()):
            h["prd_days"] = draw(st.sampled_from([1, 3]))
        history.append(h)
    return claim, history


@SETTINGS
@given(rule_set(), claim_and_history())
def test_indexed_and_durable_give_the_same_hits(rules, data):
    claim_d, hist_d = data
    claim = parse_claim(claim_d)
    history = parse_history(hist_d)
    facts = claim_facts(claim)
    fast = audit(rules, claim, facts, history)
    ref = DurableAudit(rules).audit(claim, facts, history)
    assert [h.key() for h in fast] == [h.key() for h in ref]


def test_the_differential_test_sees_hits_of_every_kind():
    """Guard against a vacuous differential: the random data does produce hits of each kind."""
    seen: set[str] = set()

    @settings(max_examples=300, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(rule_set(), claim_and_history())
    def collect(rules, data):
        claim = parse_claim(data[0])
        for h in audit(rules, claim, claim_facts(claim), parse_history(data[1])):
            seen.add(h.kind)

    collect()
    assert seen >= {"item_condition", "diagnosis_required", "quantity_limit", "duplicate_charge", "exclusive",
                    "course_limit", "undated"}
