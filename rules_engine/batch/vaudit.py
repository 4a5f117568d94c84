"""The smart audit (智能审核) over a whole partition — the batch twin of rules_engine/audit/evaluate.py.

The per-claim path runs the treatment place's audit rules on every claim (settle/core.py
`apply_audit`): a `reject_line` hit makes each line it names 全自费 before the claim is added up,
a `reject_claim` hit refuses the claim, any other hit is a `W-AUDIT` warning. This module decides
the same hits for every claim of a partition at once, so that the vectorised path can apply them
to its line arrays and keep giving the per-claim path's numbers:

- the rules are indexed by code exactly as the per-claim evaluator does (`evaluate.index_of`, one
  lookup per distinct code of the partition), and every (line, rule, role, member) a lookup yields
  becomes one row of a *pair* table, sorted by (claim, rule, line) — a rule's lines in one claim are
  one run of that table;
- `item_condition` / `diagnosis_required`: the rule's condition as a numpy mask (vcond.py), once
  per distinct condition over every pair that needs it;
- `quantity_limit`: running counts by segmented cumulative sums — per claim, or per day / per N
  days ending on each line's day (the window found by a binary search on (rule run, day));
- `duplicate_charge`: per sub line, the main lines of its run on its day, within N hours (a binary
  search on the run's times), or anywhere in the claim — never the line itself;
- `exclusive`: distinct members per run (per day), the item billed first kept;
- `course_limit`: courses split where a pause exceeds `gap_days`, days from the course's start or
  summed prd_days in feedetail order;
- the `AUDIT-UNDATED` note: the claim's lines a day or hour rule could not place.

What the batch cannot give the evaluator is a claim's `history` (the gateway's recent lines):
claims that bring one are settled per claim (the run names the reason). Without a history, the
windows that reach back (N days, the admission, a course over the history) hold the claim's own
lines — as the per-claim path sees them for the same claim.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .tables import Block, ordinals
from .vcond import Frame, compile_mask

KIND = {"item_condition": 0, "diagnosis_required": 1, "quantity_limit": 2, "duplicate_charge": 3, "exclusive": 4,
        "course_limit": 5}
ACTION = {"warn": 0, "reject_line": 1, "reject_claim": 2}
WITHIN = {"day": 0, "hours": 1, "claim": 2, "admission": 3}
ITEM, MAIN = 0, 1
CNT_GUARD = 2**48   # a count above this (in 1/10,000) could make a claim's running sums leave int64


class AuditPlan:
    """One merged rule set as arrays by rule number (the per-claim index's numbering), with its
    conditions compiled to masks and its code lookups cached. Built once per rule set and process."""

    def __init__(self, rules: Any):
        from ..audit.evaluate import index_of
        from ..conditions.language import to_data
        rs = tuple(rules.rules)
        self.idx = index_of(rules)
        self.n = len(rs)
        self.ids = np.array([r.id for r in rs] + [""], dtype=object)[:-1]
        self.kind = np.array([KIND[r.kind] for r in rs], dtype=np.int8)
        self.action = np.array([ACTION[r.action] for r in rs], dtype=np.int8)
        self.limit = np.array([r.max or 0 for r in rs], dtype=np.int64)
        self.window = np.array([(r.window_days or 0) if r.kind == "quantity_limit" else 0 for r in rs], dtype=np.int64)
        self.within = np.array([WITHIN.get(r.within or "", -1) for r in rs], dtype=np.int8)
        self.span = np.array([(r.hours or 0) * 3600 for r in rs], dtype=np.int64)
        self.days = np.array([r.days or 0 for r in rs], dtype=np.int64)
        self.by_span = np.array([r.basis == "span" for r in rs], dtype=bool)
        self.gap = np.array([r.gap_days if r.gap_days is not None else -1 for r in rs], dtype=np.int64)
        self.day_based = np.array([r.day_based for r in rs], dtype=bool)
        keys: dict[str, int] = {}
        self.masks: list = []
        cond = np.full(self.n, -1, dtype=np.int64)
        for i, r in enumerate(rs):
            if r.kind in ("item_condition", "diagnosis_required"):
                k = json.dumps(to_data(r.when), sort_keys=True, ensure_ascii=False, default=str) \
                    if r.when is not None else "null"
                if k not in keys:
                    keys[k] = len(self.masks)
                    self.masks.append(compile_mask(r.when))
                cond[i] = keys[k]
        self.cond = cond
        self._codes: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._none = (np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros(0, np.int64))

    def matches(self, code: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rule numbers, roles, members) the per-claim index finds for `code`."""
        hit = self._codes.get(code)
        if hit is None:
            found = self.idx.lookup(code)
            hit = self._none if not found else (np.array([x[0] for x in found], dtype=np.int64),
                                                np.array([x[1] for x in found], dtype=np.int8),
                                                np.array([x[2] for x in found], dtype=np.int64))
            if len(self._codes) > 500_000:
                self._codes.clear()
            self._codes[code] = hit
        return hit


_PLANS: dict[str, AuditPlan] = {}
_PLANS_LOCK = threading.Lock()


def plan_of(pack) -> AuditPlan | None:
    """The audit plan of a pack's merged rules (shared by every pack with the same rules), or None."""
    rules = pack.audit
    if rules is None or not rules.rules:
        return None
    key = pack.audit_hash or f"id:{id(rules)}"
    p = _PLANS.get(key)
    if p is None:
        with _PLANS_LOCK:
            p = _PLANS.get(key)
            if p is None:
                p = AuditPlan(rules)
                _PLANS[key] = p
    return p


@dataclass
class AuditResult:
    """What the audit does to a partition, as the per-claim path would do it claim by claim."""

    rejected: np.ndarray                  # bool per line: named by a reject_line hit (→ 全自费)
    refused: np.ndarray                   # bool per claim: a reject_claim hit (the per-claim path refuses it)
    warnings: np.ndarray                  # int64 per claim: W-AUDIT warnings (warn hits and the undated note)
    history: np.ndarray                   # bool per claim: brings a history (settled per claim)
    too_big: np.ndarray                   # bool per claim: an audited count beyond exact int64 sums
    # (line, rule id) of every reject_line hit, by line then rule order; turned into a dict only when
    # line results are asked for (a Python loop over the refused lines)
    reject_pairs: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    def reject_rules(self) -> dict[int, list[str]]:
        """Refused line → the ids of the rules refusing it, in rule order."""
        out: dict[int, list[str]] = {}
        for nl, ids in self.reject_pairs:
            for ln, r in zip(nl.tolist(), ids.tolist()):
                out.setdefault(ln, []).append(r)
        return out


def _starts(keys: np.ndarray) -> np.ndarray:
    """Where each run of equal values of a sorted array begins (bool)."""
    f = np.ones(len(keys), dtype=bool)
    if len(keys) > 1:
        f[1:] = keys[1:] != keys[:-1]
    return f


def _seg_cumsum(v: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Cumulative sums restarting at each run start — exact in int64 when every run's sum fits
    (a wrapped global sum still gives exact differences)."""
    if not len(v):
        return v.copy()
    c = np.cumsum(v)
    st = np.flatnonzero(start)
    base = c[st] - v[st]
    return c - np.repeat(base, np.diff(np.append(st, len(v))))


def _run_first(values: np.ndarray, start: np.ndarray) -> np.ndarray:
    """The first value of each run, repeated over the run."""
    st = np.flatnonzero(start)
    return np.repeat(values[st], np.diff(np.append(st, len(values))))


class _Hits:
    """Hits as arrays: one row per hit (claim, rule), and the lines each names (line, rule)."""

    def __init__(self) -> None:
        self.claim: list[np.ndarray] = []
        self.rule: list[np.ndarray] = []
        self.line: list[np.ndarray] = []
        self.lrule: list[np.ndarray] = []
        self.undated: list[np.ndarray] = []

    def add(self, claim: np.ndarray, rule: np.ndarray, line: np.ndarray, lrule: np.ndarray) -> None:
        self.claim.append(claim)
        self.rule.append(rule)
        self.line.append(line)
        self.lrule.append(lrule)

    def cat(self, xs: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(xs) if xs else np.zeros(0, dtype=np.int64)


def audit_block(b: Block, packs: list, trt: np.ndarray, claim_cols: dict, line_cols: dict) -> AuditResult:
    """Every audit hit of every claim of the block, reduced to what the settlement does with them."""
    n, m = b.n, b.m
    res = AuditResult(rejected=np.zeros(m, dtype=bool), refused=np.zeros(n, dtype=bool),
                      warnings=np.zeros(n, dtype=np.int64), history=np.zeros(n, dtype=bool),
                      too_big=np.zeros(n, dtype=bool))
    h = b.text.get("history")
    if h is not None and h.null_count < len(h):
        res.history = ~h.is_null().to_numpy(zero_copy_only=False)
    if not m:
        return res
    plans = [plan_of(p) for p in packs]
    if all(p is None for p in plans):
        return res
    lc = b.line_claim
    # a line's day: its fee_ocur_time, else the claim's date for a one-day visit (audit.lines.day_fallback)
    one_day = (b.adm_date == 0) | (b.adm_date == b.setl_date)
    fb_day = np.where(one_day, ordinals(np.where(b.setl_date > 0, b.setl_date, 19700101)), -1)
    fee_day = b.fee_day if b.fee_day is not None else np.full(m, -1, dtype=np.int64)
    fee_t = b.fee_t if b.fee_t is not None else np.full(m, -1, dtype=np.int64)
    day = np.where(fee_day >= 0, fee_day, fb_day[lc])
    prd = np.where(b.prd_present, np.rint(np.nan_to_num(b.prd_days) * 10_000), 0).astype(np.int64)
    t_line = trt[lc]
    coded = b.med_list_codg.codes >= 0
    # packs sharing one rule set are audited together
    groups: dict[int, list[int]] = {}
    owner: dict[int, AuditPlan] = {}
    for tp, p in enumerate(plans):
        if p is not None:
            groups.setdefault(id(p), []).append(tp)
            owner[id(p)] = p
    hits = _Hits()
    reject_pairs: list[tuple[AuditPlan, np.ndarray, np.ndarray]] = []
    for key, tps in groups.items():
        plan = owner[key]
        in_group = np.isin(t_line, tps) if len(tps) < len(packs) else np.ones(m, dtype=bool)
        L = np.flatnonzero(in_group & coded)
        if not len(L):
            continue
        pairs = _pairs(b, plan, L)
        if pairs is None:
            continue
        P_line, P_rule, P_role, P_mem = pairs
        big = b.cnt[P_line] >= CNT_GUARD
        if big.any():
            res.too_big[np.unique(lc[P_line[big]])] = True
        P_claim = lc[P_line]
        gkey = P_claim * plan.n + P_rule
        order = np.argsort(gkey, kind="stable")        # pairs came in line order: now (claim, rule, line)
        P_line, P_rule, P_role, P_mem, P_claim, gkey = (x[order] for x in (P_line, P_rule, P_role, P_mem, P_claim,
                                                                            gkey))
        gid = np.cumsum(_starts(gkey)) - 1
        ctx = _Pairs(P_line, P_rule, P_role, P_mem, P_claim, gid, day[P_line], fee_t[P_line], b.cnt[P_line],
                     prd[P_line], plan)
        before = len(hits.claim)
        kinds = plan.kind[P_rule]
        for k, fn in ((0, _conditions), (1, _conditions), (2, _quantity), (3, _duplicate), (4, _exclusive),
                      (5, _course)):
            sel = np.flatnonzero(kinds == k)
            if len(sel):
                fn(ctx.take(sel), hits, claim_cols, line_cols)
        # this plan's hits: the rule numbers are its own
        hc, hr = hits.cat(hits.claim[before:]), hits.cat(hits.rule[before:])
        nl, nr = hits.cat(hits.line[before:]), hits.cat(hits.lrule[before:])
        act = plan.action[hr] if len(hr) else np.zeros(0, dtype=np.int8)
        if len(hc):
            res.warnings += np.bincount(hc[act == 0], minlength=n)
            res.refused |= np.bincount(hc[act == 2], minlength=n) > 0
        if len(nl):
            rj = plan.action[nr] == 1
            res.rejected[nl[rj]] = True
            reject_pairs.append((plan, nl[rj], nr[rj]))
    und = hits.cat(hits.undated)
    if len(und):
        has = np.zeros(n, dtype=bool)
        has[und] = True
        res.warnings += has          # one AUDIT-UNDATED note (a warning) per claim
    for plan, nl, nr in reject_pairs:   # a line is in one treatment pack: one plan names it
        if not len(nl):
            continue
        o = np.lexsort((nr, nl))
        nl, nr = nl[o], nr[o]
        keep = np.ones(len(nl), dtype=bool)
        keep[1:] = (nl[1:] != nl[:-1]) | (nr[1:] != nr[:-1])
        res.reject_pairs.append((nl[keep], plan.ids[nr[keep]]))
    return res


def _pairs(b: Block, plan: AuditPlan, L: np.ndarray):
    """Every (line, rule, role, member) the rule index yields for the lines L, in line order."""
    import pyarrow as pa
    codes = b.med_list_codg.codes[L].astype(np.int64)
    ncat = b.med_list_codg.n_cats()
    present = np.flatnonzero(np.bincount(codes, minlength=ncat))
    strs = b.med_list_codg.dictionary.take(pa.array(present)).to_pylist()
    ms = [plan.matches(s) for s in strs]
    cnts = np.array([len(x[0]) for x in ms], dtype=np.int64)
    if not cnts.any():
        return None
    row_of = np.zeros(ncat, dtype=np.int64)
    row_of[present] = np.arange(len(present))
    r = row_of[codes]
    per = cnts[r]
    keep = per > 0
    Lk, ck, rk = L[keep], per[keep], r[keep]
    offs = np.concatenate([[0], np.cumsum(cnts)])
    flat_r = np.concatenate([x[0] for x in ms])
    flat_role = np.concatenate([x[1] for x in ms])
    flat_m = np.concatenate([x[2] for x in ms])
    total = int(ck.sum())
    P_line = np.repeat(Lk, ck)
    first = np.cumsum(ck) - ck
    idx = np.repeat(offs[rk] - first, ck) + np.arange(total)
    return P_line, flat_r[idx], flat_role[idx], flat_m[idx]


@dataclass
class _Pairs:
    line: np.ndarray
    rule: np.ndarray
    role: np.ndarray
    mem: np.ndarray
    claim: np.ndarray
    gid: np.ndarray       # the (claim, rule) run
    day: np.ndarray       # -1: undated
    t: np.ndarray         # -1: no clock time
    cnt: np.ndarray
    prd: np.ndarray
    plan: AuditPlan

    def take(self, s) -> "_Pairs":
        return _Pairs(self.line[s], self.rule[s], self.role[s], self.mem[s], self.claim[s], self.gid[s], self.day[s],
                      self.t[s], self.cnt[s], self.prd[s], self.plan)

    def __len__(self) -> int:
        return len(self.line)


def _day_key(p: _Pairs, pad: int = 0) -> tuple[np.ndarray, int]:
    """(run, day) as one sortable integer (dated pairs), with room for `pad` days before a run's first."""
    dmin = int(p.day.min()) if len(p) else 0
    dr = int(p.day.max()) - dmin + pad + 1 if len(p) else 1
    return p.gid * dr + (p.day - dmin + pad), dr


def _per_run_hits(p: _Pairs, ex: np.ndarray, run_key: np.ndarray, hits: _Hits) -> None:
    """One hit per distinct run_key among the excess pairs (sorted by run_key), naming those pairs."""
    if not ex.any():
        return
    k = run_key[ex]
    s = _starts(k)
    hits.add(p.claim[ex][s], p.rule[ex][s], p.line[ex], p.rule[ex])


# ------------------------------------------------------------------ the kinds


def _conditions(p: _Pairs, hits: _Hits, claim_cols: dict, line_cols: dict) -> None:
    p = p.take(p.role == ITEM)
    cid = p.plan.cond[p.rule]
    for c in np.unique(cid):
        s = np.flatnonzero(cid == c)
        ok = p.plan.masks[int(c)](Frame(claim_cols, p.claim[s], line_cols, p.line[s]))
        bad = s[~ok]
        if len(bad):   # one hit per failing line
            hits.add(p.claim[bad], p.rule[bad], p.line[bad], p.rule[bad])


def _quantity(p: _Pairs, hits: _Hits, claim_cols: dict, line_cols: dict) -> None:
    p = p.take(p.role == ITEM)
    w = p.plan.window[p.rule]
    lim = p.plan.limit[p.rule]
    # per claim / admission (no history in a batch): the claim's lines in feedetail order
    s = np.flatnonzero(w == 0)
    if len(s):
        q = p.take(s)
        run = _seg_cumsum(q.cnt, _starts(q.gid))
        _per_run_hits(q, run > lim[s], q.gid, hits)
    # per day / per N days
    s = np.flatnonzero(w > 0)
    if not len(s):
        return
    q = p.take(s)
    st = np.flatnonzero(_starts(q.gid))
    total = np.repeat(np.add.reduceat(q.cnt, st), np.diff(np.append(st, len(q))))   # every line of the rule
    over = total > lim[s]      # under the limit even all together: nothing to place (no undated note)
    if not over.any():
        return
    und = over & (q.day < 0)
    if und.any():
        hits.undated.append(q.claim[und])
    d = np.flatnonzero(over & (q.day >= 0))
    if not len(d):
        return
    q = q.take(d)
    W = p.plan.window[q.rule]
    key, _ = _day_key(q, int(W.max()))
    o = np.argsort(key, kind="stable")        # (run, day, line)
    q, key, W = q.take(o), key[o], W[o]
    c = np.cumsum(q.cnt)
    j = np.searchsorted(key, key - (W - 1), "left")
    run = c - np.where(j > 0, c[np.maximum(j - 1, 0)], 0)
    _per_run_hits(q, run > p.plan.limit[q.rule], key, hits)


def _duplicate(p: _Pairs, hits: _Hits, claim_cols: dict, line_cols: dict) -> None:
    G = int(p.gid.max()) + 1
    is_m = p.role == MAIN
    M = np.bincount(p.gid[is_m], minlength=G)
    subs = np.flatnonzero((p.role == ITEM) & (M[p.gid] > 0))
    if not len(subs):
        return
    mains = p.take(np.flatnonzero(is_m))
    s = p.take(subs)
    R = p.plan.n
    mk = np.sort(mains.line * R + mains.rule)
    sk = s.line * R + s.rule
    pos = np.searchsorted(mk, sk)
    twin = (pos < len(mk)) & (mk[np.minimum(pos, len(mk) - 1)] == sk)   # the sub line is a main line too
    others = M[s.gid] - twin
    w = p.plan.within[s.rule]
    found = np.zeros(len(s), dtype=bool)
    undated = np.zeros(len(s), dtype=bool)
    # within the claim / the admission: any other main line
    cl = (w == 2) | (w == 3)
    found[cl] = others[cl] > 0
    # within a day
    dy = w == 0
    if dy.any():
        undated |= dy & (s.day < 0) & (others > 0)
        sd = dy & (s.day >= 0)
        if sd.any():
            md = mains.take(np.flatnonzero(mains.day >= 0))
            if len(md):
                lo_day = min(int(md.day.min()), int(s.day[sd].min()))
                dr = max(int(md.day.max()), int(s.day[sd].max())) - lo_day + 1
                mkey = np.sort(md.gid * dr + (md.day - lo_day))
                skey = s.gid[sd] * dr + (s.day[sd] - lo_day)
                cnt = np.searchsorted(mkey, skey, "right") - np.searchsorted(mkey, skey, "left")
                found[sd] = cnt - twin[sd] > 0     # never the line itself (dated: it is on its own day)
    # within N hours (the clock time is needed)
    hr = w == 1
    if hr.any():
        undated |= hr & (s.t < 0) & (others > 0)
        st = hr & (s.t >= 0)
        if st.any():
            mt = mains.take(np.flatnonzero(mains.t >= 0))
            if len(mt):
                ut = np.unique(mt.t)
                U = len(ut) + 1
                mkey = np.sort(mt.gid * U + np.searchsorted(ut, mt.t))
                ts, span, g = s.t[st], p.plan.span[s.rule[st]], s.gid[st]
                lo = np.searchsorted(ut, ts - span, "right")     # first time > t − span
                hi = np.searchsorted(ut, ts + span, "left")      # first time ≥ t + span
                cnt = np.searchsorted(mkey, g * U + hi, "left") - np.searchsorted(mkey, g * U + lo, "left")
                found[st] = cnt - (twin[st] & (span > 0)) > 0
    if undated.any():
        hits.undated.append(s.claim[undated])
    f = np.flatnonzero(found)
    if len(f):   # one hit per sub line
        hits.add(s.claim[f], s.rule[f], s.line[f], s.rule[f])


def _exclusive(p: _Pairs, hits: _Hits, claim_cols: dict, line_cols: dict) -> None:
    p = p.take(p.role == ITEM)
    G = int(p.gid.max()) + 1
    MM = int(p.mem.max()) + 1
    u = np.unique(p.gid * MM + p.mem)
    members = np.bincount(u // MM, minlength=G)
    p = p.take(np.flatnonzero(members[p.gid] >= 2))
    if not len(p):
        return
    w = p.plan.within[p.rule]
    # the claim / the admission: the item billed first is kept
    s = np.flatnonzero(w != 0)
    if len(s):
        q = p.take(s)
        kept = _run_first(q.mem, _starts(q.gid))
        _per_run_hits(q, q.mem != kept, q.gid, hits)
    # by day
    s = np.flatnonzero(w == 0)
    if not len(s):
        return
    q = p.take(s)
    und = q.day < 0
    if und.any():
        hits.undated.append(q.claim[und])
    q = q.take(np.flatnonzero(~und))
    if not len(q):
        return
    key, _ = _day_key(q)
    o = np.argsort(key, kind="stable")
    q, key = q.take(o), key[o]
    st = _starts(key)
    MMq = int(q.mem.max()) + 1
    dense = np.cumsum(st) - 1
    u = np.unique(dense * MMq + q.mem)
    many = np.bincount(u // MMq, minlength=int(dense[-1]) + 1)[dense] >= 2
    kept = _run_first(q.mem, st)
    _per_run_hits(q, many & (q.mem != kept), key, hits)


def _course(p: _Pairs, hits: _Hits, claim_cols: dict, line_cols: dict) -> None:
    p = p.take(p.role == ITEM)
    db = p.plan.day_based[p.rule]
    # by days (basis span, or courses split by a gap): dated lines by (day, line)
    s = np.flatnonzero(db)
    if len(s):
        q = p.take(s)
        und = q.day < 0
        if und.any():
            hits.undated.append(q.claim[und])
        q = q.take(np.flatnonzero(~und))
        if len(q):
            key, _ = _day_key(q)
            o = np.argsort(key, kind="stable")
            q = q.take(o)
            gap = p.plan.gap[q.rule]
            start = _starts(q.gid)
            if len(q) > 1:
                start[1:] |= (gap[1:] >= 0) & (q.day[1:] - q.day[:-1] > gap[1:])
            course = np.cumsum(start) - 1
            lim = p.plan.days[q.rule]
            span = p.plan.by_span[q.rule]
            first_day = _run_first(q.day, start)
            ex_span = span & (q.day - first_day + 1 > lim)
            _per_run_hits(q, ex_span, course, hits)
            # summed prd_days within a course split by gaps: in feedetail order
            pr = np.flatnonzero(~span)
            if len(pr):
                r = q.take(pr)
                c = course[pr]
                o = np.lexsort((r.line, c))
                r, c = r.take(o), c[o]
                run = _seg_cumsum(r.prd, _starts(c))
                _per_run_hits(r, run > p.plan.days[r.rule] * 10_000, c, hits)
    # summed prd_days, no gap: every line of the claim's course, in feedetail order
    s = np.flatnonzero(~db)
    if len(s):
        q = p.take(s)
        run = _seg_cumsum(q.prd, _starts(q.gid))
        _per_run_hits(q, run > p.plan.days[q.rule] * 10_000, q.gid, hits)
