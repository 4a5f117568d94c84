"""The batch path equals the per-claim path to the fen — on random packs and claim histories.

For every claim: every setlinfo amount, the account balance after it, pool_prop, every setldetail
row, every line's split, every accumulator after it; people with several claims over two years
(accumulators carried, then reset), a pack version switching at the new year or mid-year. The
treatment places carry random smart-audit rules of every kind and action: which lines an audit rule
refused (and by which rules), and how many W-AUDIT warnings a claim got, must agree too.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings

from rules_engine.batch.tables import BatchInputError, build_block, tables_from_claims
from rules_engine.batch.vectorised import (CLAIM_FIELDS_OUT, PackContext, PackSource, _audit_refused, settle_block,
                                           settle_person)
from rules_engine.model.claim import SettlementError
from rules_engine.packs.registry import PackSet

from .packgen import world, write_packs

LV_CODE = {"01": 0, "02": 1, "03": 2}


def reference(ps: PackSet, claims: list[dict]):
    """Per person (psn_no; none → alone), the per-claim path's settlements by mdtrt_id."""
    groups: dict[str, list[dict]] = {}
    for c in claims:
        groups.setdefault(c.get("psn_no") or "#" + c["mdtrt_id"], []).append(c)
    out = {}
    for cs in groups.values():
        for c, s in zip(cs, settle_person(PackSource(ps), cs)):
            out[c["mdtrt_id"]] = s
    return out


def compare(res, ref) -> list[str]:
    b = res.block
    diffs = []
    det = res.detail.arrays()
    for i in range(b.n):
        mid = b.mdtrt_id.value(i)
        s = ref[mid]
        for f in CLAIM_FIELDS_OUT:
            want = s.funds[f] if f in s.funds else getattr(s, f)
            if int(res.claim[f][i]) != want:
                diffs.append(f"{mid} {f}: batch {res.claim[f][i]} vs per-claim {want}")
        if bool(res.balc_present[i]) != (s.balc is not None) or (s.balc is not None and res.balc[i] != s.balc):
            diffs.append(f"{mid} balc: batch {res.balc[i] if res.balc_present[i] else None} vs {s.balc}")
        if res.pool_prop[i] != s.pool_prop:
            diffs.append(f"{mid} pool_prop: {res.pool_prop[i]} vs {s.pool_prop}")
        if res.review_lines[i] != sum(1 for w in s.warnings if w.code == "W-LINE-REVIEW"):
            diffs.append(f"{mid} review lines")
        lo, hi = np.searchsorted(det["claim"], [i, i + 1])
        mine = [(res.detail.kinds[int(u)][2], int(bs), int(p), int(lm) if lp else None)
                for u, bs, p, lm, lp in zip(det["uid"][lo:hi], det["base"][lo:hi], det["pay"][lo:hi],
                                             det["limit"][lo:hi], det["limit_present"][lo:hi])]
        theirs = [(r.layer.id, r.base, r.pay, min((u.remaining for u in r.caps), default=None))
                  for r in s.layers if r.pay] + ([("personal_account", s.inscp_scp_amt, s.acct_pay, None)]
                                                 if s.acct_pay else [])
        if mine != theirs:
            diffs.append(f"{mid} setldetail: {mine} vs {theirs}")
        want_w = sum(1 for w in s.warnings if w.code == "W-AUDIT")
        if res.audit_warnings[i] != want_w:
            diffs.append(f"{mid} audit warnings: batch {res.audit_warnings[i]} vs per-claim {want_w}")
        refused = _audit_refused(s)
        if res.audit_lines[i] != len(refused):
            diffs.append(f"{mid} audit-rejected lines: batch {res.audit_lines[i]} vs per-claim {len(refused)}")
        ln = res.lines
        for j, lr in zip(range(int(b.line_start[i]), int(b.line_start[i + 1])), s.lines):
            mine_r = res.audit_rules.get(j, []) if ln["audit"][j] else []
            if bool(ln["audit"][j]) != (lr.line.feedetl_sn in refused) or mine_r != refused.get(lr.line.feedetl_sn, []):
                diffs.append(f"{mid} line {lr.line.feedetl_sn} refused by audit rules: batch {mine_r} vs per-claim "
                             f"{refused.get(lr.line.feedetl_sn, [])}")
            got = (int(ln["fulamt"][j]), int(ln["over"][j]), int(ln["pre"][j]), int(ln["inscp"][j]), int(ln["cat"][j]),
                   int(ln["ratio"][j]), int(ln["ceiling"][j]), bool(ln["restricted"][j]), bool(ln["review"][j]))
            want = (lr.fulamt, lr.overlmt, lr.pre, lr.inscp, LV_CODE[lr.chrgitm_lv] if lr.entry is not None else 3,
                    lr.selfpay_ppm, lr.ceiling if lr.ceiling is not None else -1, lr.restricted, lr.review)
            if got != want:
                diffs.append(f"{mid} line {lr.line.feedetl_sn}: {got} vs {want}")
        for k, v in s.accumulators_after.items():
            got = res.accumulators.get(k)
            if got is None or not got[1][i] or int(got[0][i]) != v:
                diffs.append(f"{mid} accumulator {k}: {None if got is None else int(got[0][i])} vs {v}")
    return diffs


def settle_both(packs: dict, claims: list[dict]):
    with tempfile.TemporaryDirectory(prefix="batch-diff-") as d:  # packs are compiled in memory: the files can go
        root = Path(d) / "regions"
        write_packs(root, packs)
        ps = PackSet.load(root)
    # a random pack the validator refuses is not a test case (too many refusals fail the health check)
    if ps.problems.has_errors():
        assume(False)
    ctx = PackContext(PackSource(ps))
    ct, lt = tables_from_claims(claims)
    try:
        ref = reference(ps, claims)
    except SettlementError as e:
        return ps, ctx, ct, lt, None, e
    return ps, ctx, ct, lt, ref, None


SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]


@settings(max_examples=150, deadline=None, suppress_health_check=SLOW)
@given(world())
def test_batch_equals_per_claim(w):
    packs, claims = w
    ps, ctx, ct, lt, ref, err = settle_both(packs, claims)
    if err is not None:
        event(f"the per-claim path refuses: {err.code}")
        # the per-claim path refuses (e.g. a claim's stated accumulators): so does the batch, located
        with pytest.raises(BatchInputError):
            settle_block(build_block(ct, lt), ctx, want_lines=True, want_accumulators=True, verify=0)
        return
    res = settle_block(build_block(ct, lt), ctx, want_lines=True, want_accumulators=True, verify=0)
    share = 1 - res.fallback_claims / res.block.n
    event(f"claims on the vectorised path: {'all' if share == 1 else 'none' if share == 0 else 'some'}")
    for k in res.fallback_reasons:
        event(f"fallback: {k}")
    vec = res.path == 0
    if (res.audit_lines[vec] > 0).any():
        event("audit: lines refused on the vectorised path")
    if (res.audit_warnings[vec] > 0).any():
        event("audit: warnings on the vectorised path")
    diffs = compare(res, ref)
    assert not diffs, "\n".join(diffs[:20])


def test_the_differential_sees_audit_hits_of_every_kind():
    """Guard against a vacuous differential: on the claims the vectorised path settles, the random
    packs and claims produce audit hits of every kind, lines refused by each kind, warnings, and
    the undated note — and the batch agrees on them."""
    seen: set[tuple[str, str]] = set()

    # derandomized: the same examples every run, so the guard does not depend on luck (a kind seen in
    # a few percent of the examples would otherwise be missed now and then)
    @settings(max_examples=150, deadline=None, database=None, derandomize=True, suppress_health_check=SLOW)
    @given(world())
    def collect(w):
        packs, claims = w
        ps, ctx, ct, lt, ref, err = settle_both(packs, claims)
        if err is not None:
            return
        res = settle_block(build_block(ct, lt), ctx, want_lines=True, want_accumulators=True, verify=0)
        for i in np.flatnonzero(res.path == 0):
            for h in ref[res.block.mdtrt_id.value(int(i))].audit_hits:
                seen.add((h.kind, h.action))
        assert not compare(res, ref)

    collect()
    kinds = ("item_condition", "diagnosis_required", "quantity_limit", "duplicate_charge", "exclusive", "course_limit")
    missing = [(k, "reject_line") for k in kinds if (k, "reject_line") not in seen]
    missing += [(k, "warn") for k in ("undated",) if (k, "warn") not in seen]
    assert not missing, f"never produced on the vectorised path: {missing} (seen {sorted(seen)})"


@settings(max_examples=25, deadline=None, suppress_health_check=SLOW)
@given(world())
def test_sample_check_agrees(w):
    """The run-time check (verify) re-settles people by the per-claim path: on a correct batch it
    never fires."""
    packs, claims = w
    ps, ctx, ct, lt, ref, err = settle_both(packs, claims)
    if err is not None:
        return
    res = settle_block(build_block(ct, lt), ctx, verify=50)
    assert res.verified >= 1 or res.fallback_claims == res.block.n


def test_most_claims_take_the_vectorised_path(tmp_path):
    """Plain claims are not all handed to the per-claim path (or the differential test proves little)."""
    from .packgen import INSURED
    packs = {f"{INSURED}/2023.1": {
        "pack.yaml": {"region": INSURED, "name": "t", "version": "2023.1", "effective": {"from": "2023-01-01"},
                      "provenance": [{"id": "T", "title": "t", "confidence": "sample"}],
                      "catalogue_defaults": {"selfpay_prop": {"乙": 0.1}},
                      "catalogues": [{"file": "catalogue/items.yaml", "kind": "drug"}]},
        "policy.yaml": {"accumulators": [{"id": "ded", "adds": {"deductible_of": "L0"}}],
                        "layers": [{"id": "L0", "name": "pool", "fund_pay_type": "310100", "setl_field": "hifp_pay",
                                    "deductible": {"period": "year", "accumulator": "ded", "amount": 100},
                                    "bands": {"ratios": [{"ratio": 0.8}]}}]},
        "catalogue/items.yaml": {"kind": "drug", "entries": [{"code": "A", "name": "a", "category": "乙"}]}}}
    write_packs(tmp_path / "regions", packs)
    ps = PackSet.load(tmp_path / "regions")
    claims = [{"mdtrt_id": f"M{i}", "psn_no": f"P{i % 3}", "insuplc_admdvs": INSURED, "mdtrtarea_admvs": INSURED,
               "insutype": "310", "med_type": "11", "setl_time": f"2023-0{1 + i % 9}-01", "hosp_lv": "2", "age": 40,
               "feedetail": [{"feedetl_sn": "1", "med_list_codg": "A", "cnt": 1, "pric": "90.00",
                              "det_item_fee_sumamt": "90.00"}]} for i in range(12)]
    ct, lt = tables_from_claims(claims)
    res = settle_block(build_block(ct, lt), PackContext(PackSource(ps)), want_lines=True, want_accumulators=True,
                       verify=0)
    assert res.fallback_claims == 0
    assert not compare(res, reference(ps, claims))
    # the yearly deductible is consumed across a person's claims: 100 of the first 81 (90 − 10 % 乙)
    assert int(res.claim["hifp_pay"].sum()) > 0


@pytest.mark.parametrize("within", [{"within": "day"}, {"within": "hours", "hours": 6}, {"within": "claim"}])
def test_a_line_is_never_its_own_duplicate(within):
    """A duplicate-charge rule whose sub item is also its main item: one line of it is no duplicate;
    two lines of it are (each names the other). Found by the differential (the by-day window counted
    the sub line as its own main line)."""
    import copy

    from .conftest import PACKS, REGION
    packs = copy.deepcopy({k: v for k, v in PACKS.items() if k.endswith("2023.1")})
    packs[f"{REGION}/2023.1"]["audit/rules.yaml"] = {"rules": [
        {"id": "D1", "kind": "duplicate_charge", "items": ["A0001"], "main": ["A0001"], "action": "reject_line",
         **within}]}

    def claim(mid: str, n: int) -> dict:
        return {"mdtrt_id": mid, "psn_no": mid, "insuplc_admdvs": REGION, "mdtrtarea_admvs": REGION, "insutype": "310",
                "med_type": "11", "setl_time": "2023-03-01 10:00:00", "hosp_lv": "3", "age": 40,
                "feedetail": [{"feedetl_sn": str(j + 1), "med_list_codg": "A0001", "cnt": 1, "pric": 10,
                               "det_item_fee_sumamt": 10, "fee_ocur_time": "2023-03-01 09:00:00"} for j in range(n)]}
    ps, ctx, ct, lt, ref, err = settle_both(packs, [claim("ONE", 1), claim("TWO", 2)])
    assert err is None
    res = settle_block(build_block(ct, lt), ctx, want_lines=True, want_accumulators=True, verify=0)
    assert not res.path.any(), res.fallback_reasons          # decided on the vectorised path
    assert list(res.audit_lines) == [0, 2]                    # ONE: none refused; TWO: both lines
    assert [len(_audit_refused(ref[m])) for m in ("ONE", "TWO")] == [0, 2]
    assert not compare(res, ref)
