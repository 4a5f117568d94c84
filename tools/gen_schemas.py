"""Write schemas/claim.schema.json and schemas/settlement.schema.json from the pydantic models.

The claim and settlement contracts have one source — the pydantic models of the Python API —
so the JSON Schemas (and the service's OpenAPI) cannot drift from what the engine accepts.
`tests/test_schemas.py` fails when the checked-in files are stale: rerun this tool.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rules_engine.model.claim import Claim  # noqa: E402
from rules_engine.model.settlement import SettlementOut  # noqa: E402


def render() -> dict[str, str]:
    out = {}
    for name, model, title in (("claim.schema.json", Claim, "A claim to settle (national field names)"),
                               ("settlement.schema.json", SettlementOut, "A settlement (2206/2207-shaped)")):
        schema = model.model_json_schema(mode="validation" if model is Claim else "serialization")
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title, **schema}
        out[name] = json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=False) + "\n"
    return out


def main() -> int:
    for name, text in render().items():
        (ROOT / "schemas" / name).write_text(text, encoding="utf-8")
        print(f"wrote schemas/{name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
