"""The indexed evaluator: `audit(rules, claim, facts, history) -> list[Hit]` — the hot path.

Rules are indexed by item code (exact codes in one dict, `prefix:` families in one dict per
prefix length), so a claim line costs one dictionary lookup plus one per distinct prefix length,
whatever the number of rules: only the few rules a line's code names are looked at. The joins a
Rete network would do — duplicate charges, exclusive items, counts over a window of days,
courses over the person's history — are done per triggered rule on the handful of lines that
carry its codes, bucketed by day. History lines are scanned only when a triggered rule reads
history.

What each kind decides (docs/audit.md has the full text; durable_ref.py implements the same on
durable-rules and a differential property test holds the two together):

- item_condition / diagnosis_required: each claim line of the items whose condition fails.
- quantity_limit: lines are taken in order — history first (it was billed earlier), then by day
  and feedetail position — and the claim lines that bring the running count above `max` in the
  window (a day, the last N days ending on the line's day, the claim, the admission) are named.
- duplicate_charge: each claim line of `items` with a `main` line (another line) in the window.
- exclusive: in each window, when two or more items of the group are billed, the one billed
  first is kept and the claim lines of the other items are named.
- course_limit: the course starts at its first billing (a pause longer than `gap_days` starts a
  new one); claim lines past `days` days (basis span), or past `days` of summed prd_days, are named.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..conditions.compiled import compile_condition
from ..model.claim import ClaimIn, LineIn
from .hits import (condition_detail, course_detail, duplicate_detail, exclusive_detail, quantity_detail, sort_hits,
                   undated_hit)
from .lines import CLAIM, HISTORY, ALine, claim_line, claim_mdtrt, day_fallback, facts_of, history_line
from .model import AuditRule, AuditRules, Hit, HistoryLine

ITEM, MAIN = 0, 1


@dataclass(slots=True)
class _Index:
    rules: tuple[AuditRule, ...]
    exact: dict[str, tuple[tuple[int, int, int], ...]]     # code → ((rule no, role, member), …)
    prefix: dict[str, tuple[tuple[int, int, int], ...]]    # prefix → …
    plens: tuple[int, ...]                                 # distinct prefix lengths
    conds: tuple[Any, ...]                                 # compiled `when` per rule (None: not a condition rule)
    pos: dict[str, int]
    history: tuple[bool, ...] = ()                         # per rule: does it read the history?
    memo: dict = field(default_factory=dict)               # code → lookup(code): codes repeat across claims

    def lookup(self, code: str) -> tuple[tuple[int, int, int], ...]:
        """(rule no, role, member) for every rule entry matching `code`, one per (rule, role)."""
        hit = self.memo.get(code)
        if hit is None:
            hit = self._lookup(code)
            if len(self.memo) > 200_000:
                self.memo.clear()
            self.memo[code] = hit
        return hit

    def _lookup(self, code: str) -> tuple[tuple[int, int, int], ...]:
        hit = self.exact.get(code, ())
        if not self.plens:
            return hit
        extra = []
        for n in self.plens:
            if n <= len(code):
                p = self.prefix.get(code[:n])
                if p:
                    extra.extend(p)
        if not extra:
            return hit
        best: dict[tuple[int, int], int] = {}
        for r, role, m in (*hit, *extra):
            k = (r, role)
            if k not in best or m < best[k]:
                best[k] = m
        return tuple((r, role, m) for (r, role), m in best.items())


def _build_index(rules: AuditRules) -> _Index:
    exact: dict[str, list[tuple[int, int, int]]] = {}
    prefix: dict[str, list[tuple[int, int, int]]] = {}
    conds = []
    for no, r in enumerate(rules.rules):
        for role, items in ((ITEM, r.items), (MAIN, r.main)):
            if items is None:
                continue
            for code, m in items.exact.items():
                exact.setdefault(code, []).append((no, role, m))
            for p, m in items.prefixes:
                prefix.setdefault(p, []).append((no, role, m))
        conds.append(compile_condition(r.when) if r.kind in ("item_condition", "diagnosis_required") else None)
    return _Index(rules.rules, {k: tuple(v) for k, v in exact.items()}, {k: tuple(v) for k, v in prefix.items()},
                  tuple(sorted({len(p) for p in prefix}, reverse=True)), tuple(conds),
                  {r.id: i for i, r in enumerate(rules.rules)}, tuple(r.uses_history for r in rules.rules))


def index_of(rules: AuditRules) -> _Index:
    return rules.cached("index", _build_index)


# ---------------------------------------------------------------- the audit


def audit(rules: AuditRules, claim: ClaimIn, facts: dict, history: list[HistoryLine] | None = None, *,
          line_facts: Mapping[str, dict] | Callable[[LineIn], dict] | None = None) -> list[Hit]:
    """Every audit hit of a claim, in claim order.

    `facts` is the claim-facts dict of the settlement (or `lines.claim_facts(claim)`); `history`
    the person's recent lines (`lines.parse_history`); `line_facts` optionally the line facts the
    settlement built (by feedetl_sn, or a function of the line), else they are built here without
    catalogue fields.
    """
    if not rules.rules:
        return []
    idx = index_of(rules)
    lookup = idx.lookup
    fallback = day_fallback(claim)
    # per triggered rule: [(line, member)] by role; only lines some rule names are placed in time
    found: dict[int, tuple[list, list]] = {}
    triggered: set[int] = set()
    for raw in claim.lines:
        code = raw.med_list_codg
        if not code:
            continue
        matches = lookup(code)
        if not matches:
            continue
        ln = claim_line(raw, fallback)
        for r, role, m in matches:
            slot = found.get(r)
            if slot is None:
                slot = found[r] = ([], [])
            slot[role].append((ln, m))
            if role == ITEM:
                triggered.add(r)
    if not triggered:
        return []
    if history:
        reads = idx.history
        wanted = {r for r in triggered if reads[r]}
        if wanted:
            adm = claim_mdtrt(claim)
            for i, h in enumerate(history):
                matches = lookup(h.med_list_codg)
                hl = None
                for r, role, m in matches:
                    if r in wanted:
                        if hl is None:
                            hl = history_line(i, h, adm)
                        found[r][role].append((hl, m))
    hits: list[Hit] = []
    undated: list[tuple[ALine, AuditRule]] = []
    for r in sorted(triggered):
        rule = idx.rules[r]
        items, mains = found[r]
        k = rule.kind
        if k in ("item_condition", "diagnosis_required"):
            f = idx.conds[r]
            for ln, _ in items:
                if ln.src == CLAIM:
                    lf = facts_of(ln, line_facts)
                    if not f(facts, lf):
                        hits.append(_hit(rule, (ln.sn,), (), (), condition_detail(rule, facts, lf)))
        elif k == "quantity_limit":
            _quantity(rule, [ln for ln, _ in items], hits, undated)
        elif k == "duplicate_charge":
            _duplicate(rule, [ln for ln, _ in items], [ln for ln, _ in mains], hits, undated)
        elif k == "exclusive":
            _exclusive(rule, items, hits, undated)
        else:
            _course(rule, [ln for ln, _ in items], hits, undated)
    note = undated_hit(undated)
    if note is not None:
        hits.append(note)
    if len(hits) < 2:
        return hits
    return sort_hits(hits, {ln.feedetl_sn: ln.index for ln in claim.lines}, idx.pos)


def _hit(rule: AuditRule, lines: tuple, related: tuple, history: tuple, detail: str) -> Hit:
    return Hit(rule.id, rule.kind, rule.action, rule.message, lines, related, history, detail, rule.ref,
               rule.source, rule.src, rule.name)


def _split(pool: list[ALine], named: set[tuple[int, int]]) -> tuple[tuple, tuple, tuple]:
    """(named claim lines, other claim lines, history indexes) of a pool, each in order."""
    lines = tuple(ln.sn for ln in sorted((x for x in pool if x.src == CLAIM and x.key in named), key=lambda x: x.index))
    related = tuple(ln.sn for ln in sorted((x for x in pool if x.src == CLAIM and x.key not in named),
                                           key=lambda x: x.index))
    hist = tuple(sorted(x.index for x in pool if x.src == HISTORY))
    return lines, related, hist  # type: ignore[return-value]


def _over(pool: list[ALine], limit: int, target: Callable[[ALine], bool]) -> tuple[list[ALine], int]:
    """The target lines that bring the running count above `limit` (pool already in order), and the total."""
    run = 0
    out = []
    for ln in pool:
        run += ln.cnt
        if run > limit and target(ln):
            out.append(ln)
    return out, run


def _quantity(rule: AuditRule, items: list[ALine], hits: list[Hit], undated: list) -> None:
    limit = rule.max or 0
    window = rule.window_days
    if window is None:
        pool = [ln for ln in items if ln.src == CLAIM or (rule.per == "admission" and ln.in_adm)]
        pool.sort(key=lambda x: (x.src, x.index))
        excess, total = _over(pool, limit, lambda x: x.src == CLAIM)
        if excess:
            lines, related, hist = _split(pool, {x.key for x in excess})
            hits.append(_hit(rule, lines, related, hist, quantity_detail(rule, total, None, None)))
        return
    total = 0
    per_day: dict[int, int] = {}
    for ln in items:
        total += ln.cnt
        if ln.day is not None:
            per_day[ln.day] = per_day.get(ln.day, 0) + ln.cnt
    if total <= limit:
        return   # under the limit even all together: nothing to place
    undated.extend((ln, rule) for ln in items if ln.src == CLAIM and ln.day is None)
    claim_days = sorted({ln.day for ln in items if ln.src == CLAIM and ln.day is not None})
    if window == 1:
        claim_days = [d for d in claim_days if per_day[d] > limit]
    else:
        claim_days = [d for d in claim_days if sum(v for k, v in per_day.items() if d - window < k <= d) > limit]
    if not claim_days:
        return
    by_day = sorted((ln for ln in items if ln.day is not None), key=lambda x: x.day)
    days = [x.day for x in by_day]
    for d in claim_days:
        lo = d - window + 1
        window_lines = by_day[bisect_left(days, lo):bisect_right(days, d)]
        pool = sorted(window_lines, key=lambda x: (x.src, x.day, x.index))
        excess, total = _over(pool, limit, lambda x, d=d: x.src == CLAIM and x.day == d)
        if excess:
            lines, related, hist = _split(pool, {x.key for x in excess})
            hits.append(_hit(rule, lines, related, hist, quantity_detail(rule, total, lo, d)))


def _duplicate(rule: AuditRule, subs: list[ALine], mains: list[ALine], hits: list[Hit], undated: list) -> None:
    if not mains:
        return   # the main item is billed nowhere: nothing includes these lines
    w = rule.within
    if w == "day":
        by_day: dict[int, list[ALine]] = {}
        for m in mains:
            if m.day is not None:
                by_day.setdefault(m.day, []).append(m)
    for s in subs:
        if s.src != CLAIM:
            continue
        if w == "day":
            if s.day is None:
                if any(m.key != s.key for m in mains):
                    undated.append((s, rule))
                continue
            found = [m for m in by_day.get(s.day, ()) if m.key != s.key]
        elif w == "hours":
            if s.t is None:
                if any(m.key != s.key for m in mains):
                    undated.append((s, rule))
                continue
            span = (rule.hours or 0) * 3600
            found = [m for m in mains if m.key != s.key and m.t is not None and abs(m.t - s.t) < span]
        elif w == "claim":
            found = [m for m in mains if m.src == CLAIM and m.key != s.key]
        else:
            found = [m for m in mains if (m.src == CLAIM or m.in_adm) and m.key != s.key]
        if found:
            related = tuple(m.sn for m in sorted((m for m in found if m.src == CLAIM), key=lambda x: x.index))
            hist = tuple(sorted(m.index for m in found if m.src == HISTORY))
            hits.append(_hit(rule, (s.sn,), related, hist, duplicate_detail(rule, found)))


def _exclusive(rule: AuditRule, items: list[tuple[ALine, int]], hits: list[Hit], undated: list) -> None:
    if len({m for _, m in items}) < 2:
        return   # one item of the group only, however often
    w = rule.within
    groups: list[tuple[int | None, list[tuple[ALine, int]]]] = []
    if w == "claim":
        groups.append((None, [(ln, m) for ln, m in items if ln.src == CLAIM]))
    elif w == "admission":
        groups.append((None, [(ln, m) for ln, m in items if ln.src == CLAIM or ln.in_adm]))
    else:
        undated.extend((ln, rule) for ln, _ in items if ln.src == CLAIM and ln.day is None)
        by_day: dict[int, list[tuple[ALine, int]]] = {}
        for ln, m in items:
            if ln.day is not None:
                by_day.setdefault(ln.day, []).append((ln, m))
        for d in sorted({ln.day for ln, _ in items if ln.src == CLAIM and ln.day is not None}):
            groups.append((d, by_day[d]))
    for d, group in groups:
        if len({m for _, m in group}) < 2:
            continue
        group = sorted(group, key=lambda x: (x[0].src, x[0].index))
        kept_line, kept = group[0]
        named = {ln.key for ln, m in group if ln.src == CLAIM and m != kept}
        if named:
            lines, related, hist = _split([ln for ln, _ in group], named)
            hits.append(_hit(rule, lines, related, hist, exclusive_detail(rule, kept_line, d)))


def _courses(lines: list[ALine], gap: int | None) -> list[list[ALine]]:
    """Split dated lines into courses: a pause of more than `gap` days starts a new one."""
    lines = sorted(lines, key=lambda x: (x.day, x.src, x.index))
    if gap is None or not lines:
        return [lines] if lines else []
    out = [[lines[0]]]
    for prev, ln in zip(lines, lines[1:]):
        if ln.day - prev.day > gap:  # type: ignore[operator]
            out.append([])
        out[-1].append(ln)
    return out


def _course(rule: AuditRule, items: list[ALine], hits: list[Hit], undated: list) -> None:
    scope = rule.scope
    pool = [ln for ln in items if ln.src == CLAIM or scope == "history" or (scope == "admission" and ln.in_adm)]
    if rule.day_based:
        undated.extend((ln, rule) for ln in pool if ln.src == CLAIM and ln.day is None)
        courses = _courses([ln for ln in pool if ln.day is not None], rule.gap_days)
    else:
        courses = [pool] if pool else []
    limit = rule.days or 0
    for course in courses:
        if rule.basis == "span":
            start = min(ln.day for ln in course)  # type: ignore[type-var]
            excess = [ln for ln in course if ln.src == CLAIM and ln.day - start + 1 > limit]  # type: ignore[operator]
            if excess:
                last = max(ln.day for ln in excess) - start + 1  # type: ignore[operator]
                lines, related, hist = _split(course, {x.key for x in excess})
                hits.append(_hit(rule, lines, related, hist, course_detail(rule, start, last)))
        else:
            ordered = sorted(course, key=lambda x: (x.src, x.index))
            run = 0
            excess = []
            for ln in ordered:
                run += ln.prd or 0
                if run > limit * 10_000 and ln.src == CLAIM:
                    excess.append(ln)
            if excess:
                lines, related, hist = _split(course, {x.key for x in excess})
                hits.append(_hit(rule, lines, related, hist, course_detail(rule, None, run)))
