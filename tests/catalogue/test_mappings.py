"""The shipped mappings and the mapping schema."""
from __future__ import annotations

import pytest

from rules_engine.catalogue.mapping import load_mapping, shipped_mappings
from rules_engine.validate.schema import load_schema


@pytest.mark.parametrize("name", sorted(shipped_mappings()))
def test_shipped_mapping_loads_clean(name):
    m, problems = load_mapping(shipped_mappings()[name])
    assert m is not None and not problems, [p.format() for p in problems]
    assert m.name == name and m.description and m.confidence and m.kinds


def test_every_mapping_schema_property_has_a_chinese_and_english_description():
    schema = load_schema("catalogue-mapping.schema.json")
    missing = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in (node.get("properties") or {}).items():
                d = v.get("description", "") if isinstance(v, dict) else ""
                if not d or not any("\u4e00" <= c <= "\u9fff" for c in d) or not any(c.isascii() and c.isalpha()
                                                                                      for c in d):
                    missing.append(path + "." + k)
                walk(v, path + "." + k)
            for k in ("$defs", "additionalProperties", "items"):
                sub = node.get(k)
                if isinstance(sub, dict):
                    for kk, vv in (sub.items() if k == "$defs" else [(k, sub)]):
                        walk(vv, path + "." + kk)
    walk(schema, "")
    assert not missing


def test_include_of_an_unknown_mapping_is_located(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("name: x\nfields:\n  name: {column: a}\n  category: {value: 甲}\nlink:\n  name: {column: a}\n"
                 "  include: no-such\n", encoding="utf-8")
    m, problems = load_mapping(p)
    assert m is None and any(pr.code == "E-MAPPING-INCLUDE" and pr.line == 7 for pr in problems)
