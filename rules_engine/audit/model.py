"""Audit rules (智能审核) as immutable, picklable data — and the hits they produce.

A loaded rule set is plain data: codes, numbers, condition ASTs, source locations. Nothing here
holds a closure, so a rule set pickles into the compiled-pack cache and crosses processes; the
evaluators (`evaluate.py`, `durable_ref.py`) build what they need from it lazily, once per rule
set, and keep it off the pickle (`AuditRules.__getstate__`).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from ..conditions.language import Node, Src

KINDS = ("item_condition", "diagnosis_required", "quantity_limit", "duplicate_charge", "exclusive", "course_limit")
ACTIONS = ("warn", "reject_line", "reject_claim")
PER = ("day", "days", "claim", "admission")          # quantity_limit: the window a count is taken over
WITHIN = ("day", "hours", "claim", "admission")      # duplicate_charge / exclusive: when two lines meet
BASIS = ("span", "prd_days")                         # course_limit: how days are counted
SCOPE = ("claim", "admission", "history")            # course_limit: which lines form the course

# kind → the parameter keys it takes (besides id, kind, name, items, action, message, source, ref)
PARAMS: dict[str, tuple[str, ...]] = {
    "item_condition": ("when",),
    "diagnosis_required": ("icd",),
    "quantity_limit": ("max", "per", "days"),
    "duplicate_charge": ("main", "within", "hours"),
    "exclusive": ("within",),
    "course_limit": ("days", "basis", "scope", "gap_days"),
}
COMMON = ("id", "kind", "name", "items", "action", "message", "source", "ref")

UNDATED_ID = "AUDIT-UNDATED"   # the note a claim gets when a day rule cannot place some of its lines
UNDATED_KIND = "undated"


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where in the published source a rule comes from, so that a hit can name it.

    `row` is the 1-based data row of `file` (the header is row 0); `rows` lists every row a rule
    built from several rows was made of (a 主次操作 group); `seq` is the source's own 序号 when it
    has one; `batch` and `rule_type` are the source's 批次 and 规则类型.
    """

    file: str | None = None
    batch: str | None = None
    row: int | None = None
    rows: tuple[int, ...] = ()
    rule_type: str | None = None
    seq: int | None = None

    def label(self) -> str:
        parts = [p for p in (self.batch, self.rule_type) if p]
        if self.seq is not None:
            parts.append(f"序号 {self.seq}")
        where = []
        if self.rows:
            where.append("rows " + _ranges_text(self.rows))
        elif self.row is not None:
            where.append(f"row {self.row}")
        if self.file:
            where.append(self.file)
        return " ".join(parts) + (f" ({', '.join(where)})" if where else "")

    def to_dict(self) -> dict:
        d: dict[str, Any] = {}
        for k in ("file", "batch", "rule_type", "row", "seq"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        if self.rows:
            d["rows"] = list(self.rows)
        return d


def _ranges_text(rows: tuple[int, ...]) -> str:
    out: list[str] = []
    rs = sorted(set(rows))
    start = prev = rs[0]
    for r in rs[1:] + [None]:  # type: ignore[list-item]
        if r is not None and r == prev + 1:
            prev = r
            continue
        out.append(str(start) if start == prev else f"{start}–{prev}")
        if r is not None:
            start = prev = r
    return ", ".join(out)


@dataclass(frozen=True, slots=True)
class ItemSet:
    """The items a rule is about: exact national codes and `prefix:` families, in written order.

    A line's *member* is the index of the first entry that matches its code — exclusive rules
    compare members, so every code under one prefix counts as one item.
    """

    entries: tuple[str, ...]                 # as written: "001102000050000", "prefix:XL02BB"
    exact: dict[str, int] = field(default_factory=dict)      # code → member index (first entry)
    prefixes: tuple[tuple[str, int], ...] = ()               # (prefix, member index), written order

    @classmethod
    def of(cls, entries: list[str] | tuple[str, ...]) -> "ItemSet":
        exact: dict[str, int] = {}
        prefixes: list[tuple[str, int]] = []
        for i, e in enumerate(entries):
            if e.startswith("prefix:"):
                prefixes.append((e[7:], i))
            else:
                exact.setdefault(e, i)
        return cls(tuple(entries), exact, tuple(prefixes))

    def member(self, code: str) -> int | None:
        """Index of the first entry matching `code`, or None — the reference definition."""
        best = self.exact.get(code)
        for p, i in self.prefixes:
            if code.startswith(p) and (best is None or i < best):
                best = i
        return best

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(frozen=True, slots=True)
class AuditRule:
    """One compiled rule. Numbers are integers in the claim's units: `max` in 1/10,000 of a count."""

    id: str
    kind: str
    action: str
    message: str
    items: ItemSet
    src: Src
    name: str | None = None
    when: Any = None                 # Node (resolved) for item_condition / diagnosis_required
    main: ItemSet | None = None      # duplicate_charge: the items whose billing includes `items`
    max: int | None = None           # quantity_limit, in 1/10,000
    per: str | None = None           # quantity_limit
    days: int | None = None          # quantity_limit (per: days) / course_limit
    within: str | None = None        # duplicate_charge / exclusive
    hours: int | None = None         # duplicate_charge (within: hours)
    basis: str | None = None         # course_limit
    scope: str | None = None         # course_limit
    gap_days: int | None = None      # course_limit (scope: history)
    source: tuple[str, ...] = ()
    ref: SourceRef | None = None

    def __reduce__(self):
        """Pickle as plain values: a frozen dataclass's generic unpickling costs ~30 µs a rule
        (2,321 rules: 70 ms), rebuilding from values a fraction of it."""
        ref = self.ref
        return (_rule_from, (self.id, self.kind, self.action, self.message, self.items.entries,
                             (self.src.file, self.src.line, self.src.col), self.name, self.when,
                             self.main.entries if self.main is not None else None, self.max, self.per, self.days,
                             self.within, self.hours, self.basis, self.scope, self.gap_days, self.source,
                             None if ref is None else (ref.file, ref.batch, ref.row, ref.rows, ref.rule_type, ref.seq)))

    @property
    def window_days(self) -> int | None:
        """The day window of a quantity rule: per day = 1 day, per days = N, else None."""
        if self.kind != "quantity_limit":
            return None
        return 1 if self.per == "day" else self.days if self.per == "days" else None

    @property
    def day_based(self) -> bool:
        """Whether the rule must know the day (or hour) of a line to judge it."""
        k = self.kind
        if k == "quantity_limit":
            return self.per in ("day", "days")
        if k in ("duplicate_charge", "exclusive"):
            return self.within in ("day", "hours")
        if k == "course_limit":
            return self.basis == "span" or self.gap_days is not None
        return False

    @property
    def needs_time(self) -> bool:
        return self.kind == "duplicate_charge" and self.within == "hours"

    @property
    def uses_history(self) -> bool:
        k = self.kind
        if k == "quantity_limit":
            return self.per != "claim"
        if k in ("duplicate_charge", "exclusive"):
            return self.within != "claim"
        if k == "course_limit":
            return self.scope != "claim"
        return False


def _rule_from(id_, kind, action, message, items, src, name, when, main, max_, per, days, within, hours, basis, scope,
               gap_days, source, ref) -> AuditRule:
    return AuditRule(id_, kind, action, message, ItemSet.of(items), Src(*src), name, when,
                     ItemSet.of(main) if main is not None else None, max_, per, days, within, hours, basis, scope,
                     gap_days, source, SourceRef(*ref) if ref is not None else None)


@dataclass(frozen=True, slots=True)
class HistoryLine:
    """One line of the person's recent history (already settled claims), as the claim brings it."""

    med_list_codg: str
    date: str                 # yyyy-mm-dd of fee_ocur_time
    time: str | None          # HH:MM:SS when fee_ocur_time has one
    cnt: int                  # 1/10,000
    prd_days: float | None = None
    mdtrt_id: str | None = None
    feedetl_sn: str | None = None

    def to_dict(self, index: int) -> dict:
        d: dict[str, Any] = {"index": index, "med_list_codg": self.med_list_codg,
                             "fee_ocur_time": self.date + (f" {self.time}" if self.time else "")}
        if self.mdtrt_id is not None:
            d["mdtrt_id"] = self.mdtrt_id
        if self.feedetl_sn is not None:
            d["feedetl_sn"] = self.feedetl_sn
        return d


@dataclass(frozen=True, slots=True)
class Hit:
    """A rule that a claim breaks: which rule, what it does, and the lines involved.

    `lines` are the claim's lines the action applies to (feedetl_sn); `related` the claim's other
    lines that make the case (the main item of a duplicate charge, the earlier units of a count);
    `history` the indexes into the claim's `history` that take part.
    """

    rule_id: str
    kind: str
    action: str
    message: str
    lines: tuple[str, ...]
    related: tuple[str, ...] = ()
    history: tuple[int, ...] = ()
    detail: str = ""
    ref: SourceRef | None = None
    source: tuple[str, ...] = ()
    src: Src | None = None
    name: str | None = None

    def key(self) -> tuple:
        """Everything that identifies a hit (for comparing backends)."""
        return (self.rule_id, self.kind, self.action, self.lines, self.related, self.history, self.detail)

    def to_dict(self, history: list[HistoryLine] | None = None) -> dict:
        d: dict[str, Any] = {"rule": self.rule_id, "kind": self.kind, "action": self.action,
                             "message": self.message, "lines": list(self.lines)}
        if self.name:
            d["name"] = self.name
        if self.related:
            d["related"] = list(self.related)
        if self.history:
            d["history"] = ([history[i].to_dict(i) for i in self.history] if history is not None
                            else list(self.history))
        if self.detail:
            d["detail"] = self.detail
        if self.ref is not None:
            d["ref"] = self.ref.to_dict()
            d["ref_text"] = self.ref.label()
        if self.source:
            d["source"] = list(self.source)
        if self.src is not None:
            d["rule_at"] = f"{self.src.file}:{self.src.line}"
        return d


class AuditRules:
    """The merged audit rules of one pack chain: immutable, picklable, shareable across threads.

    Evaluators attach what they build (an index by code, compiled conditions, a durable-rules
    ruleset) through `cached`; that cache is dropped when pickling and rebuilt on first use.
    """

    __slots__ = ("rules", "conditions", "files", "_hash", "_cache", "_lock")

    def __init__(self, rules: tuple[AuditRule, ...], conditions: dict[str, Node], files: tuple[str, ...],
                 content_hash: str | None = None):
        self.rules = rules
        self.conditions = conditions
        self.files = files
        self._hash = content_hash
        self._cache: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def content_hash(self) -> str:
        """sha256 over the canonical data of the rules (no positions, no formatting): equal rules,
        equal hash, whatever the files look like. Computed on first use."""
        if self._hash is None:
            self._hash = _content_hash(self.rules)
        return self._hash

    def __getstate__(self) -> dict:
        return {"rules": self.rules, "conditions": self.conditions, "files": self.files, "_hash": self._hash}

    def __setstate__(self, state: dict) -> None:
        for k, v in state.items():
            object.__setattr__(self, k, v)
        self._cache = {}
        self._lock = threading.Lock()

    def cached(self, key: str, build):
        """`build(self)` once per rule set and key (thread-safe); the value is never pickled."""
        v = self._cache.get(key)
        if v is None:
            with self._lock:
                v = self._cache.get(key)
                if v is None:
                    v = build(self)
                    self._cache[key] = v
        return v

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self):
        return iter(self.rules)

    def get(self, rule_id: str) -> AuditRule | None:
        for r in self.rules:
            if r.id == rule_id:
                return r
        return None

    def by_kind(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rules:
            out[r.kind] = out.get(r.kind, 0) + 1
        return out

    def __repr__(self) -> str:
        return f"AuditRules({len(self.rules)} rules, {self.content_hash[:12]})"


def _content_hash(rules: tuple[AuditRule, ...]) -> str:
    import hashlib
    import json

    from ..conditions.language import to_data
    h = hashlib.sha256()
    for r in rules:
        d = {"id": r.id, "kind": r.kind, "action": r.action, "message": r.message, "items": list(r.items.entries),
             "when": to_data(r.when) if r.when is not None else None,
             "main": list(r.main.entries) if r.main else None, "max": r.max, "per": r.per, "days": r.days,
             "within": r.within, "hours": r.hours, "basis": r.basis, "scope": r.scope, "gap_days": r.gap_days,
             "source": list(r.source), "ref": r.ref.to_dict() if r.ref else None, "name": r.name}
        h.update(json.dumps(d, sort_keys=True, ensure_ascii=False, default=str).encode() + b"\n")
    return h.hexdigest()


EMPTY = AuditRules((), {}, ())
