"""How a hit is worded and ordered — shared by both backends, so that their hits compare equal.

The backends decide *which* lines break *which* rule, independently; this module only turns a
decision into text (the `detail` of a hit) and puts hits in a stable order.
"""
from __future__ import annotations

from typing import Iterable

from ..conditions.language import facts_used
from .lines import CLAIM, ALine, day_text
from .model import UNDATED_ID, UNDATED_KIND, AuditRule, Hit


def count_text(c: int) -> str:
    return str(c // 10_000) if c % 10_000 == 0 else f"{c / 10_000:g}"


def condition_detail(rule: AuditRule, facts: dict, lf: dict | None) -> str:
    """The facts the rule's condition reads, with this claim's values: why it failed."""
    if rule.kind == "diagnosis_required":
        dx = facts.get("diagnoses") or ()
        return "diagnoses: " + (", ".join(dx) if dx else "none")
    names = sorted(facts_used(rule.when)) if rule.when is not None else []
    parts = []
    for n in names:
        v = facts.get(n) if n in facts else (lf or {}).get(n)
        if isinstance(v, (list, tuple)):
            v = "[" + ", ".join(map(str, v)) + "]"
        parts.append(f"{n}={'missing' if v is None else v}")
    return ", ".join(parts)


def quantity_detail(rule: AuditRule, total: int, lo: int | None, hi: int | None) -> str:
    if rule.per == "claim":
        where = "in this claim"
    elif rule.per == "admission":
        where = "in this admission"
    elif rule.per == "day":
        where = f"on {day_text(hi)}"  # type: ignore[arg-type]
    else:
        where = f"in {rule.days} days {day_text(lo)}…{day_text(hi)}"  # type: ignore[arg-type]
    return f"count {count_text(total)} {where}; at most {count_text(rule.max or 0)}"


def duplicate_detail(rule: AuditRule, mains: Iterable[ALine]) -> str:
    codes = sorted({m.code for m in mains})
    where = {"day": "on the same day", "claim": "in this claim", "admission": "in this admission",
             "hours": f"less than {rule.hours} h apart"}[rule.within or "day"]
    return f"main item {', '.join(codes)} billed {where}"


def exclusive_detail(rule: AuditRule, kept: ALine, day: int | None) -> str:
    where = f" on {day_text(day)}" if day is not None else ""
    first = f"line {kept.sn}" if kept.src == CLAIM else f"history[{kept.index}]"
    return f"{kept.code} ({first}) billed first{where}; the others of the group may not be billed with it"


def course_detail(rule: AuditRule, start: int | None, measured: int) -> str:
    if rule.basis == "prd_days":
        return f"prd_days {count_text(measured)} in the course; at most {rule.days} days"
    return f"course from {day_text(start)}: day {measured}; at most {rule.days} days"  # type: ignore[arg-type]


def undated_hit(pairs: Iterable[tuple[ALine, AuditRule]]) -> Hit | None:
    """One note for the claim: lines a day/hour rule could not place, and which rules."""
    by_line: dict[tuple[int, int], ALine] = {}
    rules: set[str] = set()
    for ln, r in pairs:
        by_line[ln.key] = ln
        rules.add(r.id)
    if not by_line:
        return None
    lines = tuple(ln.sn for ln in sorted(by_line.values(), key=lambda x: x.index))  # type: ignore[misc]
    return Hit(UNDATED_ID, UNDATED_KIND, "warn",
               "明细缺少发生时间，按日/按小时的审核规则无法判断 / lines without fee_ocur_time (or its clock time) in a "
               "multi-day claim: rules by day or hour could not be checked for them",
               lines, detail="rules not checked: " + ", ".join(sorted(rules)))


def sort_hits(hits: list[Hit], order: dict[str, int], rule_pos: dict[str, int]) -> list[Hit]:
    big = 1 << 30

    def key(h: Hit) -> tuple:
        first = min((order.get(s, big) for s in h.lines + h.related), default=big)
        return (h.rule_id == UNDATED_ID, first, rule_pos.get(h.rule_id, big), h.rule_id, h.lines, h.detail)

    return sorted(hits, key=key)
