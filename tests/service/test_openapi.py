"""schemas/openapi.json is what the app publishes, built from the engine's own pydantic models."""
from __future__ import annotations

import json
from pathlib import Path

import httpx

from rules_engine.model.claim import Claim
from rules_engine.model.settlement import SettlementOut

ROOT = Path(__file__).resolve().parents[2]
CHECKED_IN = ROOT / "schemas" / "openapi.json"


def published() -> dict:
    from rules_engine.commands.serve import openapi_app
    return openapi_app().openapi()


def test_checked_in_document_is_in_sync_with_the_app():
    from rules_engine.service.openapi import render
    from rules_engine.commands.serve import openapi_app
    assert CHECKED_IN.read_text(encoding="utf-8") == render(openapi_app()), (
        "schemas/openapi.json is out of date: run 'rules-engine openapi -o schemas/openapi.json'")


def test_bodies_are_the_python_api_models():
    doc = json.loads(CHECKED_IN.read_text(encoding="utf-8"))
    schemas = doc["components"]["schemas"]
    settle = doc["paths"]["/v1/settle"]["post"]
    assert settle["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Claim"}
    assert settle["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SettlementOut"}
    assert set(schemas["Claim"]["properties"]) == set(Claim.model_fields)
    assert set(schemas["SettlementOut"]["properties"]) == set(SettlementOut.model_fields)
    assert settle["responses"]["422"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"}
    assert settle["x-required-role"] == "settle" and doc["paths"]["/v1/admin/reload"]["post"]["x-required-role"] == "admin"
    assert "HTTPValidationError" not in schemas, "no FastAPI-generated error shapes: every error is a Problem"


def test_the_running_service_serves_the_same_document(service):
    assert httpx.get(service.url + "/openapi.json").json() == json.loads(CHECKED_IN.read_text(encoding="utf-8"))
