"""Parse errors of the condition language: the code, the file and line, and a useful hint.

An analyst's typo must stop at load time with a location — never reach an evaluator (durable-rules
would only say "error code: 202"; a compiled closure would silently answer false).
"""
from __future__ import annotations

import pytest

from rules_engine.conditions.language import All, Cmp, Not, parse_condition
from rules_engine.packs.registry import PackSet
from rules_engine.packs.source import parse_yaml


def parse(text: str, file: str = "restrictions.yaml"):
    doc, problems = parse_yaml(text, file)
    assert doc is not None and not problems, problems
    return parse_condition(doc, ("when",))


def line_of(text: str, needle: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


CASES = [
    # (YAML, code, text on the reported line, words the message or hint must contain)
    ("when: {agee: {lt: 18}}\n", "E-COND-FACT", "agee", ["unknown fact 'agee'", "did you mean 'age'?"]),
    ("when:\n  all:\n    - med_type: '21'\n    - hosp_levl: ['2', '3']\n", "E-COND-FACT", "hosp_levl",
     ["did you mean 'hosp_lv'?"]),
    ("when: {alll: [{age: 3}]}\n", "E-COND-FACT", "alll", ["did you mean 'all'?"]),
    ("when:\n  any:\n    - age: {lt: 6}\n    - hosp_lv: {lessthan: '2'}\n", "E-COND-OP", "lessthan",
     ["unknown operator 'lessthan'", "operators for code facts"]),
    ("when: {age: {gtee: 60}}\n", "E-COND-OP", "gtee", ["did you mean 'gte'?"]),
    ("when: {med_type: {lt: '21'}}\n", "E-COND-OP", "lt", ["'lt' does not apply to 'med_type'", "a code fact"]),
    ("when: {diagnoses: {eq: J18}}\n", "E-COND-OP", "eq", ["does not apply to 'diagnoses'", "icd"]),
    ("when: {cross_region: [true]}\n", "E-COND-OP", "cross_region", ["'in' does not apply"]),
    ("when: {age: {gte: '18'}}\n", "E-COND-TYPE", "gte", ["'age' is a number but is compared with the text '18'"]),
    ("when: {age: {lt: eighteen}}\n", "E-COND-TYPE", "eighteen", ["number"]),
    ("when: {med_type: 21}\n", "E-COND-TYPE", "med_type: 21", ["a code (text) but is compared with the number 21",
                                                              "quotes"]),
    ("when: {hosp_lv: {in: ['2', 3]}}\n", "E-COND-TYPE", "hosp_lv", ["number 3"]),
    ("when: {cross_region: 'yes'}\n", "E-COND-TYPE", "cross_region", ["true/false"]),
    ("when: {age: {between: [18, 6]}}\n", "E-COND-VALUE", "between", ["reversed"]),
    ("when: {age: {between: [6]}}\n", "E-COND-TYPE", "between", ["two numbers"]),
    ("when: {med_list_codg: {prefix: XA01}}\n", "E-COND-TYPE", "prefix", ["list of code prefixes"]),
    ("when: {prd_days: {exists: 'no'}}\n", "E-COND-TYPE", "exists", ["true or false"]),
    ("when: {hosp_lv: '4'}\n", "E-COND-VALUE", "hosp_lv", ["'4' is not a value of 'hosp_lv'", "values: 1, 2, 3, 9"]),
    ("when: {list_kind: drugs}\n", "E-COND-VALUE", "list_kind", ["did you mean 'drug'?"]),
    ("when:\n  diagnoses:\n    icd:\n      - J18\n      - C00-C9\n", "E-COND-ICD", "C00-C9",
     ["'C00-C9' is not an ICD-10 code, prefix or range", "equal length"]),
    ("when: {diagnoses: {icd: ['18']}}\n", "E-COND-ICD", "18", ["'18'"]),
    ("when: {diagnoses: {icd: ['J18-J17']}}\n", "E-COND-ICD", "J18-J17", ["J18-J17"]),
    ("when: {diagnoses: {icd: ['J18.9.9']}}\n", "E-COND-ICD", "J18.9.9", ["J18.9.9"]),
    ("when: {}\n", "E-COND-SHAPE", "when", ["a condition is a mapping"]),
    ("when: {all: {age: 3}}\n", "E-COND-SHAPE", "all", ["'all' takes a list"]),
    ("when: {is: 'in patient'}\n", "E-COND-SHAPE", "is", ["name of a condition"]),
]


@pytest.mark.parametrize("text,code,needle,words", CASES, ids=[f"{c[1]}:{c[2]}" for c in CASES])
def test_problem_is_located(text: str, code: str, needle: str, words: list[str]) -> None:
    node, problems = parse(text)
    assert node is None, "a condition with an error yields no AST"
    assert [p.code for p in problems] == [code], [p.format() for p in problems]
    p = problems[0]
    assert p.file == "restrictions.yaml"
    assert p.line == line_of(text, needle), p.format()
    assert p.col >= 1
    told = p.message + " " + (p.hint or "")
    for w in words:
        assert w in told, p.format()
    assert p.source_line is not None and needle in p.source_line


def test_every_problem_of_a_condition_is_reported_at_once() -> None:
    text = ("when:\n"
            "  all:\n"
            "    - agee: {lt: 18}\n"
            "    - hosp_lv: '4'\n"
            "    - med_type: {lt: '21'}\n"
            "    - diagnoses: {icd: [X1]}\n")
    node, problems = parse(text)
    assert node is None
    assert [(p.code, p.line) for p in problems] == [
        ("E-COND-FACT", 3), ("E-COND-VALUE", 4), ("E-COND-OP", 5), ("E-COND-ICD", 6)]


def test_valid_conditions_parse_to_the_expected_ast() -> None:
    node, problems = parse("when:\n  age: {gte: 6, lt: 12}\n  not: {hosp_lv: '1'}\n")
    assert not problems
    assert isinstance(node, All)
    ops = [(i.fact, i.op, i.value) for i in node.items if isinstance(i, Cmp)]
    assert ops == [("age", "gte", 6), ("age", "lt", 12)]
    neg = [i for i in node.items if isinstance(i, Not)]
    assert len(neg) == 1 and neg[0].item.src.line == 3
    icd, _ = parse("when: {diagnoses: {icd: [j18, 'C00-C97', 'I63.0-I63.9']}}\n")
    assert icd.value == (("J18", "J18"), ("C00", "C97"), ("I63.0", "I63.9"))
    shorthand, _ = parse("when: {hosp_lv: ['2', '3']}\n")
    assert shorthand.op == "in" and shorthand.value == frozenset({"2", "3"})


def test_exponent_without_a_dot_is_text_in_yaml() -> None:
    """PyYAML (YAML 1.1) reads 1e-05 as text: the validator stops it instead of comparing text."""
    _, problems = parse("when: {pric: {lt: 1e-05}}\n")
    assert [p.code for p in problems] == ["E-COND-TYPE"]
    node, problems = parse("when: {pric: {lt: 1.0e-05}}\n")
    assert not problems and node.value == 1e-05


PACK = """region: "990800"
name: 条件语言测试（虚构）
version: "1"
effective:
  from: 2020-01-01
select_by: settlement
confidence: sample
provenance:
  - id: T
    title: test fixture
    confidence: sample
catalogues:
  - file: catalogue/items.csv
    kind: drug
"""

POLICY = """conditions:
  inpatient:
    med_type: ["21"]
"""

RESTRICTIONS = """restrictions:
  - id: R-KIDS
    text: 限儿童。
    when: {age: {lt: '18'}}
  - id: R-DIAG
    text: 限肺炎。
    when: {diagnoses: {icd: [J18, 'J1-J18']}}
  - id: R-LEVEL
    text: 限二级及以上医疗机构。
    when: {hosp_lvl: ['2', '3']}
"""


def test_a_pack_with_bad_conditions_reports_each_with_its_location(packs) -> None:
    packs.pack("990800", "1", {"pack.yaml": PACK, "policy.yaml": POLICY, "restrictions.yaml": RESTRICTIONS,
                               "catalogue/items.csv": "code,name,category,restrictions\nA1,甲药,甲,R-KIDS\n"})
    ps = PackSet.load(packs.root)
    found = sorted((p.code, p.line) for p in ps.problems.errors if p.code.startswith("E-COND"))
    assert found == [("E-COND-FACT", line_of(RESTRICTIONS, "hosp_lvl")),
                     ("E-COND-ICD", line_of(RESTRICTIONS, "J1-J18")),
                     ("E-COND-TYPE", line_of(RESTRICTIONS, "'18'"))]
    assert all(p.file.endswith("restrictions.yaml") for p in ps.problems.errors if p.code.startswith("E-COND"))
    assert not ps.compiled, "a pack with a bad condition is never compiled"


def test_non_finite_numbers_are_refused(tmp_path):
    from rules_engine.conditions.language import parse_condition
    from rules_engine.packs.source import parse_yaml
    for text in ("when: {age: {lt: .nan}}\n", "when: {age: {ne: .inf}}\n", "when: {age: {between: [.nan, 5]}}\n"):
        doc, _ = parse_yaml(text.encode(), "c.yaml")
        node, problems = parse_condition(doc, ("when",))
        assert node is None and problems[0].code == "E-COND-VALUE" and problems[0].line == 1, text


def test_exponent_text_gets_a_helpful_hint():
    from rules_engine.conditions.language import parse_condition
    from rules_engine.packs.source import parse_yaml
    doc, _ = parse_yaml(b"when: {pric: {lt: 1e-05}}\n", "c.yaml")
    node, problems = parse_condition(doc, ("when",))
    assert problems[0].code == "E-COND-TYPE" and "YAML reads 1e-05 as text" in problems[0].hint
