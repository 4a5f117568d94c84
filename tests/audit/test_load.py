"""Loading audit folders: every mistake located (file:line:col; for CSV the row and the cell's
column), the rest loads; merging along a pack chain by id; rule sets that pickle."""
from __future__ import annotations

import pickle
import textwrap

from rules_engine.audit import audit, audit_digest, claim_facts, load_audit, load_chain, merge_chain
from rules_engine.model.claim import parse_claim

from .conftest import claim, run

HEAD = "# yaml-language-server: $schema=../../../../schemas/audit.schema.json\n"


def write(d, name: str, text: str) -> None:
    (d / "audit").mkdir(parents=True, exist_ok=True)
    body = textwrap.dedent(text).lstrip("\n")
    (d / "audit" / name).write_text((HEAD + body) if name.endswith(".yaml") else body, encoding="utf-8")


def problems_of(tmp_path, files: dict[str, str]):
    d = tmp_path / "p"
    for name, text in files.items():
        write(d, name, text)
    rules, problems = load_chain([d], tmp_path)
    return rules, problems


def codes(problems) -> list[tuple[str, int, int, str]]:
    return [(p.code, p.line, p.col, p.file.rsplit("/", 1)[-1]) for p in problems]


def at(tmp_path, name: str, line: int, text: str, nth: int = 1) -> int:
    """The 1-based column of the nth `text` on a line of a written file."""
    s = (tmp_path / "p" / "audit" / name).read_text(encoding="utf-8").splitlines()[line - 1]
    i = -1
    for _ in range(nth):
        i = s.index(text, i + 1)
    return i + 1


def test_unknown_kind_names_the_right_one(tmp_path):
    _, ps = problems_of(tmp_path, {"a.yaml": """
        rules:
          - {id: R1, kind: item_conditon, items: ["001102000050000"], action: warn}
    """})
    assert codes(ps) == [("E-SCHEMA-VALUE", 3, at(tmp_path, "a.yaml", 3, "item_conditon"), "a.yaml")]
    assert "did you mean 'item_condition'" in ps[0].hint


def test_bad_conditions_are_located_at_the_fact_and_the_operand(tmp_path):
    rules, ps = problems_of(tmp_path, {"a.yaml": """
        rules:
          - id: R1
            kind: item_condition
            items: ["001102000050000"]
            when: {gendr: "1", age: {lt: "x"}, hosp_lv: 3}
            action: warn
          - {id: R2, kind: item_condition, items: ["001102000050000"], when: {age: {below: 5}}, action: warn}
    """})
    col = lambda line, text: at(tmp_path, "a.yaml", line, text)  # noqa: E731
    assert codes(ps) == [("E-COND-FACT", 6, col(6, "gendr"), "a.yaml"), ("E-COND-TYPE", 6, col(6, '"x"'), "a.yaml"),
                         ("E-COND-TYPE", 6, col(6, "3}"), "a.yaml"), ("E-COND-OP", 8, col(8, "below"), "a.yaml")]
    assert "did you mean 'gend'" in ps[0].hint and "below" in ps[3].message
    assert len(rules) == 0


def test_unknown_and_misplaced_keys(tmp_path):
    _, ps = problems_of(tmp_path, {"a.yaml": """
        rules:
          - id: R1
            kind: exclusive
            items: ["001102000050000", "001102000030000"]
            within: day
            max: 1
            actoin: warn
    """})
    got = {(p.code, p.line) for p in ps}
    assert ("E-SCHEMA-UNKNOWN-KEY", 8) in got and ("E-AUDIT-PARAM", 7) in got
    assert any("did you mean 'action'" in (p.hint or "") for p in ps)


def test_duplicate_ids_across_files_name_the_first(tmp_path):
    rules, ps = problems_of(tmp_path, {
        "a.yaml": """
            rules:
              - {id: R1, kind: quantity_limit, items: ["001102000050000"], max: 1, per: day, action: warn}
        """,
        "b.csv": "id,kind,items,max,per,action\nR1,quantity_limit,001102000030000,1,day,warn\n"})
    assert codes(ps) == [("E-AUDIT-DUPLICATE-ID", 2, 1, "b.csv")]
    assert "a.yaml:3" in ps[0].message
    assert [r.id for r in rules] == ["R1"] and rules.rules[0].items.entries == ("001102000050000",)


def test_malformed_codes(tmp_path):
    _, ps = problems_of(tmp_path, {"a.yaml": """
        rules:
          - id: R1
            kind: quantity_limit
            items: ["1102000050000", "xa01", " 001102000050000", "prefix:"]
            max: 1
            per: day
            action: warn
    """})
    bad = [(p.code, p.col) for p in ps if p.code == "E-AUDIT-CODE"]
    assert bad == [("E-AUDIT-CODE", 13), ("E-AUDIT-CODE", 30), ("E-AUDIT-CODE", 38), ("E-AUDIT-CODE", 58)]
    assert "leading zeros" in ps[[p.code for p in ps].index("E-AUDIT-CODE")].hint
    assert any("capitals" in (p.hint or "") for p in ps)


def test_kind_parameters_are_checked(tmp_path):
    _, ps = problems_of(tmp_path, {"a.yaml": """
        rules:
          - {id: Q1, kind: quantity_limit, items: ["001102000050000"], max: 1, per: days, action: warn}
          - {id: Q2, kind: quantity_limit, items: ["001102000050000"], max: 0.00001, per: day, action: warn}
          - {id: D1, kind: duplicate_charge, items: ["001102000050000"], main: ["001102000030000"], within: hours,
             action: warn}
          - {id: X1, kind: exclusive, items: ["001102000050000"], within: day, action: warn}
          - {id: I1, kind: diagnosis_required, items: ["001102000050000"], icd: ["J18", "18.9"], action: warn}
          - {id: C1, kind: course_limit, items: ["001102000050000"], action: warn}
    """})
    got = [(p.code, p.line) for p in ps if p.code.startswith("E-AUDIT")]
    assert got == [("E-AUDIT-PARAM", 3), ("E-AUDIT-VALUE", 4), ("E-AUDIT-PARAM", 5), ("E-AUDIT-ICD", 8),
                   ("E-AUDIT-MISSING", 9), ("E-AUDIT-ITEMS", 7)]


def test_csv_rule_table_problems_point_at_the_row_and_cell(tmp_path):
    table = ("id,kind,items,when,max,per,action,message,ref_batch,ref_row\n"
             'R1,item_condition,002101030300000,"{gend: \'2\', age: {lt: \'x\'}}",,,reject_line,m,第一批,3\n'
             "R2,quantity_limit,001102000050000,,one,day,warn,m,第八批,4\n"
             "R3,quantity_limit,1102000050000,,1,week,warn,m,第八批,5\n"
             "R4,item_condition,002101030300000,lk_nobody,,,warn,m,第一批,x\n")
    rules, ps = problems_of(tmp_path, {"rules.csv": table})
    got = [(p.code, p.line, p.col) for p in ps]
    col = lambda line, text: at(tmp_path, "rules.csv", line, text)  # noqa: E731
    assert ("E-COND-TYPE", 2, col(2, "'x'")) in got          # inside the quoted 'when' cell
    assert ("E-CSV-VALUE", 3, col(3, "one")) in got          # max 'one'
    assert ("E-AUDIT-CODE", 4, col(4, "1102")) in got and ("E-SCHEMA-VALUE", 4, col(4, "week")) in got
    assert ("E-CSV-VALUE", 5, col(5, ",x") + 1) in got       # ref_row 'x'
    src = {p.line: p.source_line for p in ps}
    assert src[3].startswith("R2,")
    assert len(rules) == 0


def test_item_tables_add_codes_and_name_unknown_rules(tmp_path):
    rules, ps = problems_of(tmp_path, {
        "rules.csv": "id,kind,when,action\nS1,item_condition,lk_female,reject_line\nS2,item_condition,lk_female,warn\n",
        "items.csv": "rule,item\nS1,XL02BBA326A001010102180\nS1,prefix:ZD03AAA\nS9,XL02BBA326A001010178537\nS1,12345\n",
        "c.yaml": """
            conditions:
              lk_female: {gend: "2"}
        """})
    got = [(p.code, p.line, p.col, p.file.rsplit("/", 1)[-1]) for p in ps]
    assert got == [("E-AUDIT-CODE", 5, 4, "items.csv"), ("E-AUDIT-RULE-UNKNOWN", 4, 1, "items.csv"),
                   ("E-AUDIT-ITEMS", 3, 1, "rules.csv")]
    assert [r.id for r in rules] == ["S1"]
    assert rules.rules[0].items.entries == ("XL02BBA326A001010102180", "prefix:ZD03AAA")


def test_unknown_named_condition_and_loops(tmp_path):
    rules, ps = problems_of(tmp_path, {"a.yaml": """
        conditions:
          a: {is: b}
          b: {any: [{is: a}, {age: {lt: 3}}]}
        rules:
          - {id: R1, kind: item_condition, items: ["001102000050000"], when: {is: inpatent}, action: warn}
          - {id: R2, kind: item_condition, items: ["001102000050000"], when: {is: a}, action: warn}
    """})
    got = {p.code for p in ps}
    assert got == {"E-AUDIT-REF", "E-AUDIT-CYCLE"}
    ref = next(p for p in ps if p.code == "E-AUDIT-REF")
    assert (ref.line, ref.col) == (6, 75)
    assert len(rules) == 0


def test_unknown_source_ids_when_the_chain_declares_its_sources(tmp_path):
    d = tmp_path / "p"
    write(d, "a.yaml", """
        rules:
          - {id: R1, kind: quantity_limit, items: ["001102000050000"], max: 1, per: day, action: warn,
             source: NHSA-LIANGKU-RULE}
    """)
    _, ps = load_chain([d], tmp_path, known_sources={"NHSA-LIANGKU-RULES"})
    assert [(p.code, p.line) for p in ps] == [("E-AUDIT-SOURCE", 4)]
    assert "NHSA-LIANGKU-RULES" in ps[0].hint


def test_a_pack_without_an_audit_folder_has_no_part(tmp_path):
    assert load_audit(tmp_path) == (None, [])
    assert audit_digest(tmp_path) == ""
    rules, ps = merge_chain([None, None])
    assert len(rules) == 0 and ps == []


def test_merging_a_chain_replaces_by_id_removes_and_appends(tmp_path):
    parent, child = tmp_path / "parent", tmp_path / "child"
    write(parent, "a.yaml", """
        conditions:
          women: {gend: "2"}
        rules:
          - {id: P1, kind: item_condition, items: ["002101030300000"], when: {is: women}, action: reject_line}
          - {id: P2, kind: quantity_limit, items: ["001102000050000"], max: 1, per: day, action: reject_line}
          - {id: P3, kind: quantity_limit, items: ["001109000010000"], max: 1, per: day, action: reject_line}
    """)
    write(child, "b.yaml", """
        conditions:
          women: {gend: ["2", "9"]}
        rules:
          - {id: P2, kind: quantity_limit, items: ["001102000050000"], max: 2, per: day, action: warn}
          - {id: P3, remove: true}
          - {id: C1, kind: exclusive, items: ["001201000030000", "001201000040000"], within: day, action: warn}
          - {id: GONE, remove: true}
    """)
    rules, ps = load_chain([parent, child], tmp_path)
    assert [(p.code, p.line) for p in ps] == [("W-AUDIT-REMOVE", 8)]
    assert [(r.id, r.action) for r in rules] == [("P1", "reject_line"), ("P2", "warn"), ("C1", "warn")]
    # late binding: the parent's rule uses the child's definition of 'women'
    assert run(rules, claim([("002101030300000", "2025-03-02 08:00:00")], gend="9")) == []
    assert run(rules, claim([("002101030300000", "2025-03-02 08:00:00")], gend="1"))[0].rule_id == "P1"


def test_rule_sets_pickle_without_their_evaluators_and_give_the_same_hits(baseline):
    data = claim([("002101030300000", "2025-03-02 10:00:00"), ("001102000050000", "2025-03-02 08:00:00"),
                  ("001102000050000", "2025-03-02 09:00:00")], gend="1")
    before = run(baseline, data, both=False)
    assert baseline._cache  # the index was built …
    copy = pickle.loads(pickle.dumps(baseline))
    assert copy._cache == {}  # … and is not part of the pickle
    assert copy.content_hash == baseline.content_hash
    c = parse_claim(data)
    assert [h.key() for h in audit(copy, c, claim_facts(c), [])] == [h.key() for h in before]


def test_equal_rules_hash_equal_whatever_the_layout(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, "x.yaml", """
        rules:
          - {id: R1, kind: quantity_limit, items: ["001102000050000"], max: 1, per: day, action: warn}
    """)
    write(b, "y.csv", "id,kind,items,max,per,action\nR1,quantity_limit,001102000050000,1,day,warn\n")
    ra, _ = load_chain([a], tmp_path)
    rb, _ = load_chain([b], tmp_path)
    assert ra.content_hash == rb.content_hash
    assert audit_digest(a) != audit_digest(b)
