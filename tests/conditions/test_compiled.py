"""Each operator and combinator of the condition language on hand-picked facts: meets and fails.

Conditions are written as an analyst writes them (YAML, parsed by language.py) and evaluated on
the compiled evaluator — the hot path — and, in the same test, on the durable-rules reference,
so a case here pins the meaning of the language, not of one backend.
"""
from __future__ import annotations

import pytest

from rules_engine.conditions.compiled import compile_condition
from rules_engine.conditions.durable import evaluate_node
from rules_engine.conditions.language import FACTS, parse_condition, resolve_refs
from rules_engine.packs.source import parse_yaml

NAMED = {
    "inpatient": "{med_type: ['21', '23', '24', '28']}",
    "child": "{age: {lt: 18}}",
}


def cond(text: str):
    doc, problems = parse_yaml(f"when: {text}\n", "case.yaml")
    assert not problems, problems
    node, problems = parse_condition(doc, ("when",))
    assert not problems, [p.format() for p in problems]
    named = {}
    for name, t in NAMED.items():
        d, _ = parse_yaml(f"c: {t}\n", "named.yaml")
        named[name] = parse_condition(d, ("c",))[0]
    return resolve_refs(node, named)


def split(facts: dict) -> tuple[dict, dict | None]:
    """One dict of facts → (claim facts, line facts); `line: None` means no fee line at all."""
    if facts.get("line", 0) is None:
        return {k: v for k, v in facts.items() if k != "line"}, None
    claim = {k: v for k, v in facts.items() if FACTS[k].scope == "claim"}
    line = {k: v for k, v in facts.items() if FACTS[k].scope == "line"}
    return claim, line


BACKENDS = {
    "compiled": lambda node, c, l: compile_condition(node)(c, l),  # noqa: E741
    "durable": evaluate_node,
}

CASES = [
    # (condition, facts that meet it, facts that fail it)
    ("{med_type: '21'}", [{"med_type": "21"}], [{"med_type": "11"}, {}, {"med_type": None}]),
    ("{age: 18}", [{"age": 18}, {"age": 18.0}], [{"age": 17}, {}]),
    ("{cross_region: true}", [{"cross_region": True}], [{"cross_region": False}, {}]),
    ("{hosp_lv: {eq: '3'}}", [{"hosp_lv": "3"}], [{"hosp_lv": "2"}]),
    # ne: a missing fact fails every test but `exists: false`, ne included
    ("{hosp_lv: {ne: '1'}}", [{"hosp_lv": "2"}, {"hosp_lv": "9"}], [{"hosp_lv": "1"}, {}]),
    ("{age: {ne: 60}}", [{"age": 59}], [{"age": 60}, {}]),
    ("{age: {lt: 18}}", [{"age": 17}, {"age": 17.99}, {"age": 0}], [{"age": 18}, {"age": 65}, {}]),
    ("{age: {lte: 17}}", [{"age": 17}], [{"age": 17.5}, {"age": 18}]),
    ("{age: {gt: 60}}", [{"age": 61}, {"age": 60.5}], [{"age": 60}, {}]),
    ("{age: {gte: 60}}", [{"age": 60}, {"age": 99}], [{"age": 59}, {"age": 59.999}]),
    ("{age: {gte: 6, lt: 12}}", [{"age": 6}, {"age": 11}], [{"age": 5}, {"age": 12}]),  # two tests: both hold
    ("{age: {between: [6, 12]}}", [{"age": 6}, {"age": 12}, {"age": 9.5}], [{"age": 5.99}, {"age": 12.01}, {}]),
    ("{hosp_lv: ['2', '3']}", [{"hosp_lv": "2"}, {"hosp_lv": "3"}], [{"hosp_lv": "1"}, {}]),
    ("{hosp_lv: {in: ['2', '3']}}", [{"hosp_lv": "3"}], [{"hosp_lv": "9"}]),
    ("{admission_seq: {in: [1, 2]}}", [{"admission_seq": 1}, {"admission_seq": 2.0}], [{"admission_seq": 3}]),
    ("{med_type: {not_in: ['11', '13']}}", [{"med_type": "21"}], [{"med_type": "11"}, {}]),
    ("{cnt: {not_in: [0]}}", [{"cnt": 2.5}], [{"cnt": 0}, {"cnt": 0.0}]),
    ("{med_list_codg: {prefix: ['XA01', 'ZA']}}", [{"med_list_codg": "XA01ABC123"}, {"med_list_codg": "ZA09"}],
     [{"med_list_codg": "XA0"}, {"med_list_codg": "xa01abc"}, {"med_list_codg": "XB01"}, {}]),
    # icd: any diagnosis, by prefix (case-insensitive) or by an equal-length range on the code's head
    ("{diagnoses: {icd: [J18]}}", [{"diagnoses": ["J18.900"]}, {"diagnoses": ["A00", "j18.1"]},
                                  {"diagnoses": ["J180"]}],
     [{"diagnoses": ["J17.9"]}, {"diagnoses": ["J1"]}, {"diagnoses": []}, {}]),
    ("{diagnoses: {icd: ['C00-C97']}}", [{"diagnoses": ["C50.900"]}, {"diagnoses": ["C97"]}, {"diagnoses": ["C00.0"]}],
     [{"diagnoses": ["D00.1"]}, {"diagnoses": ["C98"]}, {"diagnoses": ["C9"]}, {"diagnoses": ["B99"]}]),
    ("{diagnoses: {icd: ['I63.0-I63.9', E11]}}", [{"diagnoses": ["I63.512"]}, {"diagnoses": ["E11.900"]}],
     [{"diagnoses": ["I63"]}, {"diagnoses": ["I64.0"]}, {"diagnoses": ["I62.9"]}]),
    ("{prd_days: {exists: true}}", [{"prd_days": 7}, {"prd_days": 0}], [{"prd_days": None}, {}]),
    ("{prd_days: {exists: false}}", [{}, {"prd_days": None}], [{"prd_days": 7}]),
    ("{diagnoses: {exists: false}}", [{}, {"diagnoses": []}], [{"diagnoses": ["A00"]}]),
    # line facts evaluated without a fee line are missing
    ("{hosp_appr_flag: '1'}", [{"hosp_appr_flag": "1"}], [{"hosp_appr_flag": "0"}, {"line": None}]),
    # combinators
    ("{all: [{age: {lt: 18}}, {hosp_lv: ['2', '3']}]}", [{"age": 5, "hosp_lv": "2"}],
     [{"age": 5, "hosp_lv": "1"}, {"age": 30, "hosp_lv": "3"}]),
    ("{age: {lt: 18}, hosp_lv: ['2', '3']}", [{"age": 5, "hosp_lv": "3"}], [{"age": 5}, {"hosp_lv": "3"}]),
    ("{any: [{age: {lt: 6}}, {age: {gte: 65}}]}", [{"age": 3}, {"age": 70}], [{"age": 30}, {}]),
    ("{not: {med_type: '21'}}", [{"med_type": "11"}, {}], [{"med_type": "21"}]),
    # not of a test on a missing fact is true: the test was false
    ("{not: {age: {lt: 18}}}", [{"age": 18}, {}], [{"age": 17}]),
    ("{not: {not: {age: {lt: 18}}}}", [{"age": 17}], [{"age": 18}, {}]),
    ("{not: {any: [{gend: '1'}, {age: {gt: 50}}]}}", [{"gend": "2", "age": 30}, {}], [{"gend": "1"}, {"age": 51}]),
    ("{is: inpatient}", [{"med_type": "21"}, {"med_type": "28"}], [{"med_type": "11"}, {}]),
    ("{all: [{is: child}, {not: {is: inpatient}}]}", [{"age": 4, "med_type": "11"}, {"age": 4}],
     [{"age": 4, "med_type": "21"}, {"age": 40, "med_type": "11"}]),
]


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("text,meets,fails", CASES, ids=[c[0] for c in CASES])
def test_operator(backend: str, text: str, meets: list[dict], fails: list[dict]) -> None:
    node = cond(text)
    run = BACKENDS[backend]
    for facts in meets:
        assert run(node, *split(facts)) is True, f"{text} should hold for {facts}"
    for facts in fails:
        assert run(node, *split(facts)) is False, f"{text} should fail for {facts}"


def test_an_absent_condition_always_holds() -> None:
    assert compile_condition(None)({}, None) is True
    assert evaluate_node(None, {}, None) is True


def test_unresolved_named_condition_is_refused() -> None:
    doc, _ = parse_yaml("when: {is: inpatient}\n", "case.yaml")
    node, _ = parse_condition(doc, ("when",))
    with pytest.raises(ValueError, match="resolved"):
        compile_condition(node)
