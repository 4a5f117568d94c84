"""Helpers for the audit tests: the shipped baseline rules, claims from a few words, both backends."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from rules_engine.audit import DurableAudit, audit, claim_facts, load_chain, parse_history
from rules_engine.model.claim import parse_claim

ROOT = Path(__file__).resolve().parents[2]
REGIONS = ROOT / "regions"


@pytest.fixture(scope="session")
def baseline():
    """The audit rules in force for a Beijing claim in 2025: the national baseline's 两库 rules."""
    from rules_engine.packs.registry import PackSet
    ps = PackSet.load(REGIONS)
    pack = ps.select("110000", "2025-06-01")
    rules, problems = load_chain([ps.raws[k].dir for k in pack.chain], ROOT, named=dict(pack.conditions),
                                 known_sources={p.id for p in pack.provenance})
    assert [p.format() for p in problems if p.severity == "error"] == []
    return rules


def claim(lines, *, history=None, **fields) -> dict:
    """A claim dict: `lines` are (code, fee_ocur_time or None[, cnt[, extra fields]]) tuples."""
    feedetail = []
    for i, ln in enumerate(lines, start=1):
        code, when = ln[0], ln[1]
        cnt = ln[2] if len(ln) > 2 else 1
        d = {"feedetl_sn": str(i), "med_list_codg": code, "cnt": cnt, "pric": 10,
             "det_item_fee_sumamt": round(cnt * 10, 2)}
        if when is not None:
            d["fee_ocur_time"] = when
        if len(ln) > 3:
            d.update(ln[3])
        feedetail.append(d)
    c = {"insuplc_admdvs": "110000", "mdtrtarea_admvs": "110000", "insutype": "310", "med_type": "21",
         "age": 40, "gend": "2", "hosp_lv": "3", "setl_time": "2025-03-20 10:00:00",
         "begntime": "2025-03-01 09:00:00", "mdtrt_id": "ADM-1", "feedetail": feedetail}
    c.update(fields)
    if history is not None:
        c["history"] = history
    return c


def run(rules, data: dict, *, both: bool = True):
    """Hits of a claim dict; with `both`, the durable-rules reference must give the same."""
    data = copy.deepcopy(data)
    history = parse_history(data.pop("history", None))
    c = parse_claim(data)
    facts = claim_facts(c)
    hits = audit(rules, c, facts, history)
    if both:
        ref = DurableAudit(rules).audit(c, facts, history)
        assert [h.key() for h in ref] == [h.key() for h in hits]
    return hits


def by_rule(hits) -> dict:
    return {h.rule_id: h for h in hits}
