"""The OpenAPI document: FastAPI's paths plus the engine's own pydantic models as components.

Request and response bodies are described by `$ref`s to `Claim` and `SettlementOut` — the
models of the Python API (rules_engine/model/) — and to the service's envelopes (models.py),
all in pydantic's validation mode, which is the JSON the service reads and writes (amounts as
JSON numbers; input amounts may also be decimal text, as the national interface sends them).
`rules-engine openapi -o schemas/openapi.json` writes it; a test keeps the file in sync.
"""
from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from ..model.claim import Claim
from ..model.settlement import SettlementOut
from . import models as m

MODELS = (Claim, SettlementOut, m.Problem, m.FieldErrorOut, m.BatchItem, m.BatchOut, m.PackSummary, m.PacksOut,
          m.PackOut, m.ValidateOut, m.ValidateProblem, m.ValidatePack, m.ReloadOut, m.ReloadInfo, m.ReadyOut,
          m.HealthOut)


def build(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes,
                      tags=[{"name": "settle", "description": "Settlement in the national interface's field names"},
                            {"name": "packs", "description": "The rule packs in force"},
                            {"name": "admin", "description": "Reload and validate (role admin)"},
                            {"name": "ops", "description": "Health, readiness, metrics"}])
    _, defs = models_json_schema([(model, "validation") for model in MODELS],
                                 ref_template="#/components/schemas/{model}")
    comps = doc.setdefault("components", {})
    schemas = comps.setdefault("schemas", {})
    schemas.update(defs.get("$defs", {}))
    comps["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <API key>"},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    return json.loads(json.dumps(doc, sort_keys=True))


def render(app: FastAPI) -> str:
    return json.dumps(app.openapi(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
