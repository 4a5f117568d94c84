"""Compile condition ASTs to Python closures — the hot-path evaluator.

A compiled condition is `f(claim_facts: dict, line_facts: dict | None) -> bool`. Named
conditions are inlined before compiling. A missing fact (None) makes every test false except
`exists: false`; `not` then turns that into true — documented in docs/conditions.md and held
to the durable-rules reference by a differential property test.
"""
from __future__ import annotations

from typing import Any, Callable

from .language import FACTS, All, AnyOf, Cmp, Node, Not, Ref, icd_matches

Evaluator = Callable[[dict, "dict | None"], bool]


def compile_condition(node: Node | None) -> Evaluator:
    if node is None:
        return _always
    return _compile(node)


def _always(c: dict, l: dict | None) -> bool:  # noqa: E741
    return True


def _compile(node: Node) -> Evaluator:
    if isinstance(node, All):
        fs = tuple(_compile(i) for i in node.items)
        if len(fs) == 2:
            a, b = fs
            return lambda c, l: a(c, l) and b(c, l)
        return lambda c, l: all(f(c, l) for f in fs)
    if isinstance(node, AnyOf):
        fs = tuple(_compile(i) for i in node.items)
        return lambda c, l: any(f(c, l) for f in fs)
    if isinstance(node, Not):
        f = _compile(node.item)
        return lambda c, l: not f(c, l)
    if isinstance(node, Ref):
        raise ValueError(f"named condition '{node.name}' must be resolved before compiling")
    if isinstance(node, Cmp):
        return _compile_cmp(node)
    raise TypeError(node)


def _compile_cmp(node: Cmp) -> Evaluator:
    fact = FACTS[node.fact]
    name, op, v = node.fact, node.op, node.value
    line = fact.scope == "line"

    def get(c: dict, l: dict | None) -> Any:  # noqa: E741
        if line:
            return None if l is None else l.get(name)
        return c.get(name)

    if op == "exists":
        return (lambda c, l: (get(c, l) not in (None, (), []))) if v else (lambda c, l: get(c, l) in (None, (), []))
    if op == "icd":
        return lambda c, l: any(icd_matches(code, v) for code in (get(c, l) or ()))
    if op == "eq":
        return lambda c, l: (x := get(c, l)) is not None and x == v
    if op == "ne":
        return lambda c, l: (x := get(c, l)) is not None and x != v
    if op == "in":
        return lambda c, l: (x := get(c, l)) is not None and x in v
    if op == "not_in":
        return lambda c, l: (x := get(c, l)) is not None and x not in v
    if op == "lt":
        return lambda c, l: (x := get(c, l)) is not None and x < v
    if op == "lte":
        return lambda c, l: (x := get(c, l)) is not None and x <= v
    if op == "gt":
        return lambda c, l: (x := get(c, l)) is not None and x > v
    if op == "gte":
        return lambda c, l: (x := get(c, l)) is not None and x >= v
    if op == "between":
        lo, hi = v
        return lambda c, l: (x := get(c, l)) is not None and lo <= x <= hi
    if op == "prefix":
        return lambda c, l: (x := get(c, l)) is not None and x.startswith(v)
    raise ValueError(f"unknown operator {op!r}")
