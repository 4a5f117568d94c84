"""The JSON Schemas are the analyst's editor help and the integrator's contract: complete and current."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = sorted((ROOT / "schemas").glob("*.schema.json"))
PACK_SCHEMAS = [p for p in SCHEMAS if p.name not in ("claim.schema.json", "settlement.schema.json")]


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.name)
def test_schema_is_valid_2020_12(path):
    schema = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)


def _properties_without_description(node, where="#"):
    missing = []
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict):
            for name, sub in props.items():
                if isinstance(sub, dict) and "description" not in sub and "title" not in sub and "$ref" not in sub:
                    missing.append(f"{where}/properties/{name}")
        for k, v in node.items():
            missing += _properties_without_description(v, f"{where}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            missing += _properties_without_description(v, f"{where}/{i}")
    return missing


@pytest.mark.parametrize("path", PACK_SCHEMAS, ids=lambda p: p.name)
def test_every_pack_schema_property_is_described(path):
    """Editors show the description on hover; an analyst should never meet a bare key."""
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert _properties_without_description(schema) == []


def test_claim_and_settlement_schemas_are_current():
    sys.path.insert(0, str(ROOT / "tools"))
    import gen_schemas
    for name, text in gen_schemas.render().items():
        assert (ROOT / "schemas" / name).read_text(encoding="utf-8") == text, \
            f"schemas/{name} is stale: run 'python tools/gen_schemas.py'"


def test_shipped_yaml_files_name_their_schema():
    for p in (ROOT / "regions").rglob("*.yaml"):
        if "tests" in p.parts or "coding" in p.parts:
            continue
        first = p.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), p
        target = (p.parent / first.split("$schema=", 1)[1].strip()).resolve()
        assert target.is_file(), f"{p}: {target}"


def test_settlement_output_matches_its_schema(engine):
    from rules_engine import jsonio
    validator = jsonschema.Draft202012Validator(json.loads((ROOT / "schemas" / "settlement.schema.json").read_text()))
    for f in sorted((ROOT / "examples" / "claims").glob("*.json")):
        out = json.loads(jsonio.dumps(engine.settle(json.loads(f.read_text(encoding="utf-8"))).to_dict(explain=True)))
        errors = list(validator.iter_errors(out))
        assert errors == [], (f.name, [e.message for e in errors[:3]])
