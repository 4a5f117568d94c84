"""The audit rules on durable-rules (a Rete network in C): the reference backend.

`evaluate.py` is the hot path; this module decides the same hits with durable-rules doing the
matching and the joins, so that a differential property test can hold the two together (random
rule sets × random claims → the same hits). It is a reference: exact and isolated first, fast
second — `tools/bench_audit.py` prints how much slower it is.

How the rules become a Rete network
-----------------------------------
Every claim line and history line is asserted as a fact `{x_k: "l", x_src, x_i, x_code, x_day,
x_t, x_cnt, x_prd, x_adm, …condition facts}` into a session of its own. Two stages of rules:

1. *membership* rules match a line's code against a rule's items (`x_code == "…"`, or the range
   `p ≤ x_code < p~~` for a `prefix:` entry) — one durable rule per few codes, one per item for an
   exclusive rule (whose hits depend on *which* item matched); for the condition kinds, each
   claim line a membership rule names is then judged by the rule's condition on durable-rules
   through the conditions backend's public API (`DurableConditions`, conditions/durable.py, held
   to the compiled conditions by its own differential test);
2. for every rule that a claim line triggered, the host asserts a *member* fact
   `{x_k: "m", x_r: rule, x_role: item|main, x_mem, …}` per matching line — forward chaining —
   and the join rules fire on those: a claim member with a main member on the same day
   (`x_day == a.x_day`) or in the same admission (`x_adm`); a claim line with every line of the
   last N days — through *cover* facts, one per window end a line falls in
   (`x_end == a.x_day`); *scope* rules pick the member lines of a claim, an admission or the
   whole history. Only equality joins: see the traps below.

What stays in Python, by necessity: durable-rules has no sum aggregate, so counting (Σ cnt over
what a join delivered), ordering lines and splitting courses at pauses are done on the matches
the network delivers; and "less than H hours apart" is compared on the timed sub × main pairs
the network joins (a join comparing with < is unsafe, below) — written plainly here, separately
from the indexed evaluator.

Traps met (anchors.md §4, and new ones)
---------------------------------------
- A node of the network holds at most 512 children: `create_ruleset` with more **hangs** (no
  error). Rules are packed into shards (separate C rulesets) of at most `SHARD_TERMS` alternative
  paths and `SHARD_RULES` rules; a fact is asserted into every shard that can match it.
- `assert_facts` of a batch answers 1 ("not handled") when its *last* fact matched nothing,
  although earlier facts fired: the actions are drained after every assert, whatever the answer.
- Ruleset names are global to the process: names carry the rule set's content hash and a
  process counter; the C rulesets are deleted when the compiled object is collected.
- A join that compares a correlated value with `$lt/$lte/$gt/$gte/$neq`, or computes one
  (`{"$sub": {"$l": {"a": "x_day"}, "$r": 4}}`, the documented syntax), corrupts memory: the
  process dies later, at random (found by the property test, then by a 20-line stress script).
  Every join here is an equality join.
- A ruleset keeps every session's state in a fixed table: fresh session ids exhaust it
  (MemoryError after some thousands of claims).
- Numbers are C doubles: days and seconds are integers far below 2**53, counts are integers of
  1/10,000; codes are sent through `encode_text`, as the conditions backend does.
- A session's facts stay until retracted, and `delete_state` corrupts memory (a crash, found by
  the property test) once a session's facts took part in joins: each evaluation takes a session
  id from a pool, retracts every fact it asserted, and gives the id back.
"""
from __future__ import annotations

import itertools
import json
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import durable_rules_engine as _dre

from ..conditions.durable import _TOP, DurableConditions, _and, _cost, _leaf, _or, _text, encode_text
from ..model.claim import ClaimIn, LineIn
from .hits import (condition_detail, course_detail, duplicate_detail, exclusive_detail, quantity_detail, sort_hits,
                   undated_hit)
from .lines import CLAIM, HISTORY, ALine, claim_lines, history_lines
from .model import AuditRule, AuditRules, Hit, HistoryLine

SHARD_TERMS = 384     # alternative paths per C ruleset (a node holds at most 512 children)
SHARD_RULES = 40      # rules per C ruleset (matching time grows with the rules of a ruleset)
CHUNK_CODES = 12      # codes per membership rule
ITEM, MAIN = 0, 1

_SESSIONS = itertools.count(1)
_NAMES = itertools.count(1)


@dataclass(frozen=True)
class _Spec:
    """One durable rule: its name in the ruleset, its JSON text, and what its firing means."""

    name: str
    text: str
    terms: int
    rule: int
    what: str             # member | holds | scope | join
    role: int = ITEM
    member: int = 0


def _terms(n: tuple) -> int:
    """Alternative paths (DNF terms) an expression adds to the network."""
    k = n[0]
    if k == "leaf":
        return 1
    if k == "and":
        out = 1
        for i in n[1]:
            out *= _terms(i)
        return out
    if k == "or":
        return sum(_terms(i) for i in n[1])
    return _terms(n[2])


def _eq(prop: str, value: Any) -> tuple:
    if isinstance(value, bool):
        return _leaf("eq", prop, "true" if value else "false")
    if isinstance(value, int):
        return _leaf("eq", prop, str(value))
    return _leaf("eq", prop, '"%s"' % encode_text(value))


def _entry_test(entry: str) -> tuple:
    if entry.startswith("prefix:"):
        p = encode_text(entry[7:])
        return _and([_leaf("gte", "x_code", '"%s"' % p), _leaf("lt", "x_code", '"%s%s"' % (p, _TOP))])
    return _eq("x_code", entry)


def _chunks(entries: tuple[str, ...], max_cost: int) -> list[tuple]:
    """The entries as `or` expressions of at most CHUNK_CODES codes and `max_cost` connectives each."""
    out: list[tuple] = []
    cur: list[tuple] = []
    for e in entries:
        t = _entry_test(e)
        if cur and (len(cur) >= CHUNK_CODES or _cost(_or(cur + [t])) > max_cost):
            out.append(_or(cur))
            cur = []
        cur.append(t)
    if cur:
        out.append(_or(cur))
    return out


def _pattern(alias: str, ir: tuple) -> str:
    return '{"%s":%s}' % (alias, _text(ir))


def _rule_text(patterns: list[str]) -> str:
    return '{"all":[%s]}' % ",".join(patterns)


def _ref(alias: str, prop: str) -> str:
    return '{"%s":"%s"}' % (alias, prop)


def _specs_for(no: int, rule: AuditRule) -> tuple[list[_Spec], list[_Spec]]:
    """(stage-1 specs, stage-2 specs that must share one ruleset) of one audit rule."""
    line = _eq("x_k", "l")
    claim = _eq("x_src", CLAIM)
    stage1: list[_Spec] = []
    k = rule.kind
    cond_kind = k in ("item_condition", "diagnosis_required")
    # membership: which claim (or any) lines carry the rule's codes
    roles = [(ITEM, rule.items)] + ([(MAIN, rule.main)] if rule.main is not None else [])
    for role, items in roles:
        if k == "exclusive":
            groups = [((e,), m) for m, e in enumerate(items.entries)]
        else:
            groups = [(None, 0)]
        for entries, member in groups:
            chunks = _chunks(entries if entries is not None else items.entries, 3)
            for j, ch in enumerate(chunks):
                ir = _and([line, claim, ch]) if cond_kind else _and([line, ch])
                name = f"r{no}.m{role}.{member}.{j}"
                stage1.append(_Spec(name, _rule_text([_pattern("m", ir)]), _terms(ir), no, "member", role, member))
    if cond_kind:
        return stage1, []   # the condition itself: DurableConditions (conditions/durable.py)
    # stage 2, on member facts
    mem = [_eq("x_k", "m"), _eq("x_r", no)]
    item = mem + [_eq("x_role", ITEM)]
    stage2: list[_Spec] = []

    def scope(extra: list[tuple]) -> None:
        ir = _and(item + extra)
        stage2.append(_Spec(f"r{no}.s", _rule_text([_pattern("m", ir)]), _terms(ir), no, "scope"))

    def join(a_extra: list[tuple], b: list[tuple]) -> None:
        a = _and(item + [claim] + a_extra)
        b_ir = _and(b)
        stage2.append(_Spec(f"r{no}.j", _rule_text([_pattern("a", a), _pattern("b", b_ir)]),
                            _terms(a) + _terms(b_ir), no, "join"))

    has_day = _leaf("ex", "x_day", "1")
    has_t = _leaf("ex", "x_t", "1")
    if k == "quantity_limit":
        w = rule.window_days
        if w is None:
            scope([claim] if rule.per == "claim" else [_eq("x_adm", True)])
        else:  # b: the *cover* facts of member lines — one per window end D the line falls in
            join([has_day], [_eq("x_k", "w"), _eq("x_r", no), _leaf("eq", "x_end", _ref("a", "x_day"))])
    elif k == "duplicate_charge":
        main = mem + [_eq("x_role", MAIN)]
        if rule.within == "day":
            join([has_day], main + [_leaf("eq", "x_day", _ref("a", "x_day"))])
        elif rule.within == "hours":
            join([has_t], main + [has_t])  # every timed sub × main pair; the host compares the times
        elif rule.within == "claim":
            join([], main + [claim])
        else:
            join([], main + [_eq("x_adm", True)])
    elif k == "exclusive":
        if rule.within == "day":
            join([has_day], item + [_leaf("eq", "x_day", _ref("a", "x_day"))])
        else:
            scope([claim] if rule.within == "claim" else [_eq("x_adm", True)])
    else:  # course_limit
        scope({"claim": [claim], "admission": [_eq("x_adm", True)], "history": []}[rule.scope or "admission"])
    return stage1, stage2


class _Core:
    """One C ruleset (a shard)."""

    def __init__(self, name: str, specs: list[_Spec]):
        self.name = name
        self.specs = {s.name: s for s in specs}
        self.text = "{" + ",".join('"%s":%s' % (s.name, s.text) for s in specs) + "}"
        self.handle = _dre.create_ruleset(name, self.text)
        self.stage1 = any(s.what == "member" for s in specs)
        weakref.finalize(self, _dre.delete_ruleset, self.handle)

    def run(self, sid: str, facts_json: str) -> list[tuple[_Spec, dict]]:
        """Assert the facts of one session; every action that fires: (its rule, the matched facts)."""
        rc, state = _dre.assert_facts(self.handle, facts_json)
        out = []
        fired = _dre.start_action_for_state(self.handle, state)  # drain whatever rc says (see module doc)
        msg = fired[1] if fired else None
        while msg:
            for name, matched in json.loads(msg).items():
                out.append((self.specs[name], matched))
            msg = _dre.complete_and_start_action(self.handle, state)
        return out

    def forget(self, facts_json: str) -> None:
        """Retract what a session asserted, so that its id can serve the next evaluation."""
        rc, state = _dre.retract_facts(self.handle, facts_json)
        fired = _dre.start_action_for_state(self.handle, state)
        if fired:  # a retraction fires nothing here (no rule tests an absence)
            raise RuntimeError(f"durable-rules fired on a retraction in {self.name}")


@dataclass
class _Compiled:
    cores: list[_Core]
    join_core: dict[int, int] = field(default_factory=dict)   # rule no → shard of its stage-2 rules
    rules: tuple[AuditRule, ...] = ()
    conditions: Any = None   # DurableConditions of the condition rules, by "r<no>"
    _free: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def acquire(self) -> str:
        """A session id no other evaluation holds (sessions are reused: durable-rules' delete_state
        crashes the process on sessions that took part in joins)."""
        with self._lock:
            return self._free.pop() if self._free else str(next(_SESSIONS))

    def release(self, sid: str) -> None:
        with self._lock:
            self._free.append(sid)


def _compile(rules: AuditRules) -> _Compiled:
    groups: list[list[_Spec]] = []
    joins_of: dict[int, list[_Spec]] = {}
    for no, r in enumerate(rules.rules):
        s1, s2 = _specs_for(no, r)
        groups.extend([s] for s in s1)
        if s2:
            groups.append(s2)
            joins_of[no] = s2
    shards: list[list[_Spec]] = []
    terms = 0
    for g in groups:
        t = sum(s.terms for s in g)
        if not shards or terms + t > SHARD_TERMS or len(shards[-1]) + len(g) > SHARD_RULES:
            shards.append([])
            terms = 0
        shards[-1].extend(g)
        terms += t
    prefix = f"rules_engine.audit:{rules.content_hash[:16]}:{next(_NAMES)}"
    cores = [_Core(f"{prefix}/{i}", s) for i, s in enumerate(shards)]
    join_core = {}
    for i, s in enumerate(shards):
        for spec in s:
            if spec.what in ("scope", "join"):
                join_core[spec.rule] = i
    conds = {f"r{no}": r.when for no, r in enumerate(rules.rules)
             if r.kind in ("item_condition", "diagnosis_required") and r.when is not None}
    dc = DurableConditions(conds) if conds else None
    return _Compiled(cores, join_core, rules.rules, dc)


# ---------------------------------------------------------------- facts


def _line_fact(sid: str, ln: ALine) -> str:
    d = ['"sid":"%s"' % sid, '"id":"l%d.%d"' % (ln.src, ln.index), '"x_k":"l"', '"x_src":%d' % ln.src,
         '"x_i":%d' % ln.index, '"x_code":"%s"' % encode_text(ln.code), '"x_cnt":%d' % ln.cnt,
         '"x_adm":%s' % ("true" if ln.in_adm else "false")]
    if ln.day is not None:
        d.append('"x_day":%d' % ln.day)
    if ln.t is not None:
        d.append('"x_t":%d' % ln.t)
    return "{" + ",".join(d) + "}"


def _member_fact(sid: str, no: int, role: int, member: int, ln: ALine) -> str:
    """A line's membership in a rule (forward chaining: asserted when a membership rule fired)."""
    d = ['"sid":"%s"' % sid, '"id":"m%d.%d.%d.%d"' % (no, role, ln.src, ln.index), '"x_k":"m"', '"x_r":%d' % no,
         '"x_role":%d' % role, '"x_mem":%d' % member, '"x_src":%d' % ln.src, '"x_i":%d' % ln.index,
         '"x_adm":%s' % ("true" if ln.in_adm else "false")]
    if ln.day is not None:
        d.append('"x_day":%d' % ln.day)
    if ln.t is not None:
        d.append('"x_t":%d' % ln.t)
    return "{" + ",".join(d) + "}"


def _cover_facts(sid: str, no: int, rule: AuditRule, ln: ALine) -> list[str]:
    """For a count over N days: one fact per window end D ∈ [day, day + N − 1] the line falls in,
    so that the window is an *equality* join (x_end == a.x_day) — durable-rules corrupts memory
    on joins that compare with <, ≤, >, ≥ or compute (`$sub`)."""
    w = rule.window_days
    if w is None or ln.day is None:
        return []
    return ['{"sid":"%s","id":"w%d.%d.%d.%d","x_k":"w","x_r":%d,"x_end":%d,"x_src":%d,"x_i":%d}'
            % (sid, no, ln.src, ln.index, e, no, e, ln.src, ln.index) for e in range(ln.day, ln.day + w)]


def _key(fact: dict) -> tuple[int, int]:
    return (fact["x_src"], fact["x_i"])


# ---------------------------------------------------------------- evaluation


class DurableAudit:
    """The audit rules of one `AuditRules` compiled to durable-rules (built once per rule set)."""

    def __init__(self, rules: AuditRules):
        self.rules = rules
        self._c: _Compiled = rules.cached("durable", _compile)

    @property
    def shards(self) -> int:
        return len(self._c.cores)

    def audit(self, claim: ClaimIn, facts: dict, history: list[HistoryLine] | None = None, *,
              line_facts: Mapping[str, dict] | Callable[[LineIn], dict] | None = None) -> list[Hit]:
        rules = self._c.rules
        if not rules:
            return []
        cl = claim_lines(claim, line_facts)
        hl = history_lines(claim, history or [])
        by_key = {ln.key: ln for ln in cl + hl}
        sid = self._c.acquire()
        asserted: list[tuple[int, str]] = []
        clean = False
        try:
            # stage 1: every line into every shard that has membership or holds rules
            text = "[" + ",".join(_line_fact(sid, ln) for ln in cl + hl) + "]"
            members: dict[int, dict[int, dict[tuple[int, int], int]]] = {}
            for i, core in enumerate(self._c.cores):
                if not core.stage1 or not (cl or hl):
                    continue
                asserted.append((i, text))
                for spec, matched in core.run(sid, text):
                    key = _key(matched["m"])
                    slot = members.setdefault(spec.rule, {}).setdefault(spec.role, {})
                    if key not in slot or spec.member < slot[key]:
                        slot[key] = spec.member
            triggered = sorted(no for no, m in members.items() if any(k[0] == CLAIM for k in m.get(ITEM, {})))
            # stage 2: member facts of the triggered rules into the shard of their joins
            batches: dict[int, list[str]] = {}
            for no in triggered:
                if no not in self._c.join_core:
                    continue
                batch = batches.setdefault(self._c.join_core[no], [])
                for role, slot in members[no].items():
                    for key, member in slot.items():
                        batch.append(_member_fact(sid, no, role, member, by_key[key]))
                        if role == ITEM:
                            batch.extend(_cover_facts(sid, no, rules[no], by_key[key]))
            scoped: dict[int, list[tuple[int, int]]] = {}
            pairs: dict[int, list[tuple[tuple[int, int], tuple[int, int]]]] = {}
            for ci, facts_list in batches.items():
                batch = "[" + ",".join(facts_list) + "]"
                asserted.append((ci, batch))
                for spec, matched in self._c.cores[ci].run(sid, batch):
                    if spec.what == "scope":
                        scoped.setdefault(spec.rule, []).append(_key(matched["m"]))
                    else:
                        pairs.setdefault(spec.rule, []).append((_key(matched["a"]), _key(matched["b"])))
            for ci, batch in reversed(asserted):
                self._c.cores[ci].forget(batch)
            clean = True
        finally:
            if clean:  # a session left half-asserted by an error is never reused
                self._c.release(sid)
        hits: list[Hit] = []
        undated: list[tuple[ALine, AuditRule]] = []
        for no in triggered:
            rule = rules[no]
            mem = members[no]
            k = rule.kind
            if k in ("item_condition", "diagnosis_required"):
                for key in sorted(mem.get(ITEM, {})):
                    ln = by_key[key]
                    if not self._c.conditions.evaluate(f"r{no}", facts, ln.lf):
                        hits.append(_hit(rule, (ln.sn,), (), (), condition_detail(rule, facts, ln.lf)))
            elif k == "quantity_limit":
                self._quantity(rule, mem, scoped.get(no, []), pairs.get(no, []), by_key, hits, undated)
            elif k == "duplicate_charge":
                self._duplicate(rule, mem, pairs.get(no, []), by_key, hits, undated)
            elif k == "exclusive":
                self._exclusive(rule, mem, scoped.get(no, []), pairs.get(no, []), by_key, hits, undated)
            else:
                self._course(rule, scoped.get(no, []), by_key, hits, undated)
        note = undated_hit(undated)
        if note is not None:
            hits.append(note)
        order = {ln.sn: ln.index for ln in cl}
        return sort_hits(hits, order, {r.id: i for i, r in enumerate(rules)})

    # -- the host's share: counting and ordering what the network matched

    @staticmethod
    def _quantity(rule, mem, scoped, pairs, by_key, hits, undated) -> None:
        limit = rule.max or 0
        if rule.window_days is None:
            pool = sorted((by_key[k] for k in set(scoped)), key=lambda x: (x.src, x.index))
            named, run = [], 0
            for ln in pool:
                run += ln.cnt
                if ln.src == CLAIM and run > limit:
                    named.append(ln)
            if named:
                hits.append(_hit(rule, *_parts(pool, named), quantity_detail(rule, run, None, None)))
            return
        everyone = [by_key[k] for k in mem.get(ITEM, {})]
        if sum(ln.cnt for ln in everyone) > limit:
            undated.extend((ln, rule) for ln in everyone if ln.src == CLAIM and ln.day is None)
        windows: dict[int, set[tuple[int, int]]] = {}
        for ln in everyone:   # a claim line is in its own window even when it pairs with nothing
            if ln.src == CLAIM and ln.day is not None:
                windows.setdefault(ln.day, set()).add(ln.key)
        for a, b in pairs:
            windows[by_key[a].day].add(b)
        for d in sorted(windows):
            pool = sorted((by_key[k] for k in windows[d]), key=lambda x: (x.src, x.day, x.index))
            named, run = [], 0
            for ln in pool:
                run += ln.cnt
                if ln.src == CLAIM and ln.day == d and run > limit:
                    named.append(ln)
            if named:
                lo = d - (rule.window_days or 1) + 1
                hits.append(_hit(rule, *_parts(pool, named), quantity_detail(rule, run, lo, d)))

    @staticmethod
    def _duplicate(rule, mem, pairs, by_key, hits, undated) -> None:
        mains = set(mem.get(MAIN, {}))
        found: dict[tuple[int, int], set[tuple[int, int]]] = {}
        span = (rule.hours or 0) * 3600
        for a, b in pairs:
            if a != b and (rule.within != "hours" or abs(by_key[a].t - by_key[b].t) < span):
                found.setdefault(a, set()).add(b)
        for key in sorted(mem.get(ITEM, {})):
            ln = by_key[key]
            if ln.src != CLAIM:
                continue
            missing = (rule.within == "day" and ln.day is None) or (rule.within == "hours" and ln.t is None)
            if missing:
                if mains - {key}:
                    undated.append((ln, rule))
                continue
            if key in found:
                ms = [by_key[b] for b in found[key]]
                related = tuple(m.sn for m in sorted((m for m in ms if m.src == CLAIM), key=lambda x: x.index))
                hist = tuple(sorted(m.index for m in ms if m.src == HISTORY))
                hits.append(_hit(rule, (ln.sn,), related, hist, duplicate_detail(rule, ms)))

    @staticmethod
    def _exclusive(rule, mem, scoped, pairs, by_key, hits, undated) -> None:
        member = mem.get(ITEM, {})
        groups: list[tuple[int | None, set[tuple[int, int]]]] = []
        if rule.within == "day":
            if len(set(member.values())) > 1:
                undated.extend((by_key[k], rule) for k in member if k[0] == CLAIM and by_key[k].day is None)
            windows: dict[int, set[tuple[int, int]]] = {}
            for k in member:
                if k[0] == CLAIM and by_key[k].day is not None:
                    windows.setdefault(by_key[k].day, set()).add(k)
            for a, b in pairs:
                windows[by_key[a].day].add(b)
            groups = sorted(windows.items())
        else:
            groups = [(None, set(scoped))]
        for d, keys in groups:
            if len({member[k] for k in keys}) < 2:
                continue
            ordered = sorted(keys)  # (src, index): history first, then claim order
            kept = member[ordered[0]]
            named = [by_key[k] for k in ordered if k[0] == CLAIM and member[k] != kept]
            if named:
                pool = [by_key[k] for k in ordered]
                hits.append(_hit(rule, *_parts(pool, named), exclusive_detail(rule, by_key[ordered[0]], d)))

    @staticmethod
    def _course(rule, scoped, by_key, hits, undated) -> None:
        pool = [by_key[k] for k in sorted(set(scoped))]
        if rule.day_based:
            undated.extend((ln, rule) for ln in pool if ln.src == CLAIM and ln.day is None)
            dated = sorted((ln for ln in pool if ln.day is not None), key=lambda x: (x.day, x.src, x.index))
            courses: list[list[ALine]] = []
            for ln in dated:
                if courses and (rule.gap_days is None or ln.day - courses[-1][-1].day <= rule.gap_days):
                    courses[-1].append(ln)
                else:
                    courses.append([ln])
        else:
            courses = [pool] if pool else []
        for course in courses:
            if rule.basis == "span":
                start = course[0].day if rule.day_based else None
                start = min(ln.day for ln in course)
                named = [ln for ln in course if ln.src == CLAIM and ln.day - start + 1 > (rule.days or 0)]
                if named:
                    last = max(ln.day for ln in named) - start + 1
                    hits.append(_hit(rule, *_parts(course, named), course_detail(rule, start, last)))
            else:
                run, named = 0, []
                for ln in sorted(course, key=lambda x: (x.src, x.index)):
                    run += ln.prd or 0
                    if ln.src == CLAIM and run > (rule.days or 0) * 10_000:
                        named.append(ln)
                if named:
                    hits.append(_hit(rule, *_parts(course, named), course_detail(rule, None, run)))


def _parts(pool: list[ALine], named: list[ALine]) -> tuple[tuple, tuple, tuple]:
    keys = {ln.key for ln in named}
    lines = tuple(ln.sn for ln in sorted(named, key=lambda x: x.index))
    related = tuple(ln.sn for ln in sorted((x for x in pool if x.src == CLAIM and x.key not in keys),
                                           key=lambda x: x.index))
    hist = tuple(sorted(x.index for x in pool if x.src == HISTORY))
    return lines, related, hist


def _hit(rule: AuditRule, lines: tuple, related: tuple, history: tuple, detail: str) -> Hit:
    return Hit(rule.id, rule.kind, rule.action, rule.message, lines, related, history, detail, rule.ref,
               rule.source, rule.src, rule.name)


def durable_audit(rules: AuditRules, claim: ClaimIn, facts: dict, history: list[HistoryLine] | None = None,
                  **kw: Any) -> list[Hit]:
    """`audit` on durable-rules (same signature as evaluate.audit)."""
    return DurableAudit(rules).audit(claim, facts, history, **kw)
