"""The examples of docs/conditions.md hold on both evaluators, and its facts table is complete.

An example is a ```yaml block starting with `# example:`; it has `when`, `meets` and `fails`.
Named conditions (`is:`) resolve against the national baseline's policy.yaml.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from rules_engine.conditions.compiled import compile_condition
from rules_engine.conditions.durable import evaluate_node
from rules_engine.conditions.language import FACTS, parse_condition, resolve_refs
from rules_engine.packs.source import parse_yaml

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "conditions.md"
BASELINE = ROOT / "regions" / "000000" / "2024.1" / "policy.yaml"


def examples() -> list[tuple[str, str, int]]:
    text = DOC.read_text(encoding="utf-8")
    out = []
    for m in re.finditer(r"```yaml\n(# example: ([^\n]*)\n.*?)```", text, re.S):
        out.append((m.group(2), m.group(1), text[: m.start()].count("\n") + 2))
    return out


def named() -> dict:
    doc, problems = parse_yaml(BASELINE.read_bytes(), str(BASELINE))
    assert not problems
    return {name: parse_condition(doc, ("conditions", name))[0] for name in doc.data["conditions"]}


def split(facts: dict) -> tuple[dict, dict | None]:
    if "line" in facts and facts["line"] is None:
        return {k: v for k, v in facts.items() if k != "line"}, None
    return ({k: v for k, v in facts.items() if FACTS[k].scope == "claim"},
            {k: v for k, v in facts.items() if FACTS[k].scope == "line"})


EXAMPLES = examples()


def test_the_page_has_examples() -> None:
    assert len(EXAMPLES) >= 12


@pytest.mark.parametrize("title,block,line", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_example(title: str, block: str, line: int) -> None:
    doc, problems = parse_yaml(block, f"{DOC.name}:{line}")
    assert not problems, [p.format() for p in problems]
    node, problems = parse_condition(doc, ("when",))
    assert not problems, [p.format() for p in problems]
    node = resolve_refs(node, named())
    fn = compile_condition(node)
    assert doc.data["meets"] and doc.data["fails"]
    for want, key in ((True, "meets"), (False, "fails")):
        for facts in doc.data[key]:
            claim, line_facts = split(facts)
            assert fn(claim, line_facts) is want, f"{title}: compiled, {key} {facts}"
            assert evaluate_node(node, claim, line_facts) is want, f"{title}: durable-rules, {key} {facts}"


def test_facts_table_lists_every_fact_with_its_type_and_scope() -> None:
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \| (\w+) \|", DOC.read_text(encoding="utf-8"), re.M)
    assert {name: (typ, scope) for name, typ, scope in rows} == {f.name: (f.type, f.scope) for f in FACTS.values()}
