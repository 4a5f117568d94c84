"""POST /v1/audit and POST /v1/convert/icd: the same answers as the CLI, the same roles and
problem+json as /v1/settle."""
from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from service_helpers import make_keys, make_regions

from rules_engine.service.app import create_app
from rules_engine.service.config import ServiceConfig

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
AUDIT_CLAIM = ROOT / "examples" / "claims" / "national-catalogue-audit.json"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit_icd")
    regions = make_regions(root)
    keys_file, keys = make_keys(root)
    cfg = ServiceConfig(regions=str(regions), keys_file=str(keys_file), watch_interval_s=0, cache=False)
    with TestClient(create_app(cfg), raise_server_exceptions=False) as c:
        c.keys = keys  # type: ignore[attr-defined]
        c.regions = regions  # type: ignore[attr-defined]
        yield c


def auth(client, role="settle"):
    return {"Authorization": f"Bearer {client.keys[role]}"}


def cli(*args):
    r = subprocess.run([sys.executable, "-m", "rules_engine.cli", *args], capture_output=True, text=True, cwd=ROOT)
    return r.returncode, r.stdout


def test_audit_answers_as_the_cli_does(client):
    r = client.post("/v1/audit", content=AUDIT_CLAIM.read_bytes(), headers={**auth(client), "content-type": "application/json"})
    assert r.status_code == 200, r.text
    out = r.json()
    code, text = cli("audit", str(AUDIT_CLAIM), "--format", "json", "--regions", str(client.regions))
    assert code == 0
    [expected] = json.loads(text)
    expected.pop("claim")
    assert out == expected
    assert out["verdict"] == "lines refused"
    assert {h["rule"] for h in out["hits"]} >= {"LKD-0760", "LKD-0512"}  # real 两库 children-only rules


def test_audit_refuses_a_bad_claim_with_the_field_path(client):
    bad = json.loads(AUDIT_CLAIM.read_text(encoding="utf-8"))
    bad["feedetail"][0]["cnt"] = "many"
    r = client.post("/v1/audit", json=bad, headers=auth(client))
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    doc = r.json()
    assert doc["code"].startswith("E-CLAIM") and any(e["path"] == "feedetail[0].cnt" for e in doc["errors"])


def test_audit_needs_the_settle_role(client):
    r = client.post("/v1/audit", content=AUDIT_CLAIM.read_bytes(), headers={"content-type": "application/json"})
    assert r.status_code == 401 and r.json()["code"] == "E-AUTH-MISSING"
    r = client.post("/v1/audit", content=AUDIT_CLAIM.read_bytes(),
                    headers={**auth(client, "admin"), "content-type": "application/json"})
    assert r.status_code == 403 and r.json()["code"] == "E-AUTH-ROLE"


def test_convert_icd_returns_every_target_with_its_kind_as_the_cli_does(client):
    body = {"codes": ["I63.200x001", "J18.900"], "from": "clinical-2.0", "to": "insurance-2.0", "date": "2025-06-01"}
    r = client.post("/v1/convert/icd", json=body, headers=auth(client))
    assert r.status_code == 200, r.text
    out = r.json()
    code, text = cli("convert", "icd", "I63.200x001", "J18.900", "--from", "clinical-2.0", "--to", "insurance-2.0",
                     "--date", "2025-06-01", "--format", "json", "--regions", str(client.regions))
    assert code == 0
    assert out == json.loads(text)
    assert out["from"] == "icd10:clinical-2.0" and out["to"] == "icd10:insurance-2.0"
    first = out["results"][0]
    assert (first["code"], first["kind"], first["targets"]) == ("I63.200x001", "source-is-narrower", ["I63.200"])


@pytest.mark.parametrize("body, status, code, path", [
    ({"codes": ["J18..9"], "from": "clinical-2.0", "to": "insurance-2.0"}, 422, "E-CODE-FORM", "codes[0]"),
    ({"codes": ["J18.900"], "from": "clinical-9.9", "to": "insurance-2.0"}, 422, "E-CODE-SYSTEM", "from"),
    ({"codes": [], "from": "clinical-2.0", "to": "insurance-2.0"}, 422, "E-CONVERT-REQUEST", "codes"),
    ({"codes": ["J18.900"], "to": "insurance-2.0"}, 422, "E-CONVERT-REQUEST", "from"),
    ({"codes": ["J18.900"], "from": "clinical-2.0", "to": "insurance-2.0", "date": "2025-13-01"}, 400, "E-DATE", "date"),
    ({"codes": ["J18.900"], "from": "clinical-2.0", "to": "insurance-2.0", "region": "990999"}, 422,
     "E-UNKNOWN-REGION", "region"),
    ({"codes": ["J18.900"], "from": "clinical-2.0", "to": "insurance-2.0", "colour": "red"}, 422,
     "E-CONVERT-REQUEST", "colour"),
])
def test_convert_icd_bad_requests_are_located_problems(client, body, status, code, path):
    r = client.post("/v1/convert/icd", json=body, headers=auth(client))
    assert r.status_code == status, r.text
    doc = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert doc["code"] == code and doc["errors"][0]["path"] == path
