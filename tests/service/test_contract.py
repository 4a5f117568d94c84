"""Contract tests: every endpoint through a real HTTP client against `rules-engine serve` on loopback.

Each endpoint with valid and invalid input, and with missing, wrong and under-privileged keys.
Errors must be RFC 9457 problem+json with the same codes the CLI prints.
"""
from __future__ import annotations

import copy
import io
import json
import re
import subprocess
import sys
import zipfile

import httpx
import pytest
from service_helpers import REGIONS, ROOT, auth, claim

from rules_engine.model.settlement import SettlementOut

HASH = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def client(service):
    with httpx.Client(base_url=service.url, timeout=30.0) as c:
        yield c


def keys(service) -> dict[str, str]:
    return service.keys


def assert_problem(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    doc = r.json()
    assert doc["status"] == status and doc["code"] == code, doc
    assert doc["type"] == f"/problems/{code}" and doc["title"] and doc["detail"]
    assert doc["request_id"] == r.headers["x-request-id"]
    return doc


# ------------------------------------------------------------------ settle

def test_settle_answers_the_settlement_and_names_its_packs(service, client):
    r = client.post("/v1/settle", json=claim(), headers=auth(service.keys["settle"]))
    assert r.status_code == 200, r.text
    body = r.json()
    SettlementOut.model_validate(body)  # the contract of the Python API
    info = body["setlinfo"]
    assert info["medfee_sumamt"] == pytest.approx(info["fund_pay_sumamt"] + info["psn_part_amt"] + info["hosp_part_amt"])
    assert info["hifp_pay"] > 0
    header = r.headers["x-rules-engine-packs"]
    for role in ("insured", "treatment"):
        p = body["packs"][role]
        assert HASH.match(p["hash"])
        assert f"{role}={p['region']}@{p['version']}#{p['hash']}" in header
    assert body["packs"]["insured"]["version"] == "2021.1"
    assert HASH.match(r.headers["x-rules-engine-pack-set"])
    assert int(r.headers["x-decision-seq"]) >= 1
    assert "explanation" not in body


def test_the_documented_curl_session(service, client):
    """docs/service.md settles examples/claims/beijing-inpatient.json with curl: the same answer as the CLI."""
    example = ROOT / "examples" / "claims" / "beijing-inpatient.json"
    if not example.exists():
        pytest.skip("no example claim shipped")
    r = client.post("/v1/settle", content=example.read_bytes(),
                    headers={**auth(service.keys["settle"]), "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    out = subprocess.run([sys.executable, "-m", "rules_engine.cli", "simulate", str(example), "--regions",
                          str(service.regions), "--format", "json"], capture_output=True, text=True, cwd=str(ROOT))
    cli = json.loads(out.stdout)
    cli = cli[0] if isinstance(cli, list) else cli
    cli.pop("claim", None)
    assert r.json()["setlinfo"] == cli["setlinfo"] and r.json()["setldetail"] == cli["setldetail"]


def test_settle_matches_the_python_api(service, client):
    from rules_engine import Engine
    from rules_engine.jsonio import dumps
    expected = json.loads(dumps(Engine.from_directory(service.regions, cache=False).settle(claim()).to_dict()))
    got = client.post("/v1/settle", json=claim(), headers=auth(service.keys["settle"])).json()
    assert got == expected


def test_settle_explain(service, client):
    r = client.post("/v1/settle?explain=true", json=claim(), headers=auth(service.keys["settle"]))
    assert r.status_code == 200
    assert r.json()["explanation"], "explain=true adds the explanation"
    r = client.post("/v1/settle?explain=perhaps", json=claim(), headers=auth(service.keys["settle"]))
    assert_problem(r, 400, "E-REQUEST")


def test_request_id_is_echoed_when_well_formed(service, client):
    h = auth(service.keys["settle"])
    r = client.post("/v1/settle", json=claim(), headers={**h, "X-Request-Id": "his-2024-000123"})
    assert r.headers["x-request-id"] == "his-2024-000123"
    r = client.post("/v1/settle", json=claim(), headers={**h, "X-Request-Id": "bad id with spaces"})
    assert r.headers["x-request-id"] != "bad id with spaces" and re.match(r"^[0-9a-f]{32}$", r.headers["x-request-id"])


def _cli_error(tmp_path, data: dict, regions) -> dict:
    f = tmp_path / "claim.json"
    f.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "rules_engine.cli", "simulate", str(f), "--regions",
                          str(regions), "--format", "json"], capture_output=True, text=True, cwd=str(ROOT))
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    return (doc[0] if isinstance(doc, list) else doc)["error"]


@pytest.mark.parametrize("mutate", [
    pytest.param(lambda c: c.update(age=200, insutype=310) or c.pop("hosp_lv"), id="bad-fields"),
    pytest.param(lambda c: c["feedetail"][2].update(det_item_fee_sumamt=1), id="amount-not-cnt-x-pric"),
    pytest.param(lambda c: c.update(insuplc_admdvs="990000", mdtrtarea_admvs="990000"), id="no-pack-for-region"),
    pytest.param(lambda c: c.update(setl_time="1999-06-06 10:00:00", begntime="1999-06-01"), id="no-pack-on-date"),
])
def test_invalid_claims_get_the_cli_codes_with_field_paths(service, client, tmp_path, mutate):
    c = claim()
    mutate(c)
    r = client.post("/v1/settle", json=c, headers=auth(service.keys["settle"]))
    cli = _cli_error(tmp_path, c, service.regions)
    doc = assert_problem(r, 422, cli["code"])
    assert doc["errors"] == cli["errors"] and doc["errors"]
    assert all(e["path"] for e in doc["errors"])


def test_settle_rejects_bad_json_and_media_types(service, client):
    h = auth(service.keys["settle"])
    assert_problem(client.post("/v1/settle", content=b'{"insutype": ', headers={**h, "Content-Type": "application/json"}),
                   400, "E-CLAIM-JSON")
    assert_problem(client.post("/v1/settle", content=b'{"age": NaN}', headers={**h, "Content-Type": "application/json"}),
                   400, "E-CLAIM-JSON")
    assert_problem(client.post("/v1/settle", content=b"\xff\xfe", headers={**h, "Content-Type": "application/json"}),
                   400, "E-CLAIM-JSON")
    assert_problem(client.post("/v1/settle", content=b"age=3", headers={**h, "Content-Type": "text/plain"}),
                   415, "E-MEDIA-TYPE")
    doc = assert_problem(client.post("/v1/settle", json=[claim()], headers=h), 422, "E-CLAIM")
    assert doc["errors"][0]["code"] == "E-CLAIM-TYPE"


@pytest.mark.parametrize("path,method", [("/v1/settle", "POST"), ("/v1/settle:batch", "POST"), ("/v1/packs", "GET"),
                                         ("/v1/packs/110000?date=2022-01-01", "GET")])
def test_settle_role_endpoints_need_a_settle_key(service, client, path, method):
    body = [claim()] if "batch" in path else claim()
    kw = {"json": body} if method == "POST" else {}
    d = assert_problem(client.request(method, path, **kw), 401, "E-AUTH-MISSING")
    assert "bearer" in client.request(method, path, **kw).headers["www-authenticate"].lower() and d
    assert_problem(client.request(method, path, headers=auth("rek_not-a-key"), **kw), 401, "E-AUTH-INVALID")
    assert_problem(client.request(method, path, headers={"Authorization": "Basic dXNlcjpwYXNz"}, **kw), 401,
                   "E-AUTH-MISSING")
    assert_problem(client.request(method, path, headers=auth(service.keys["admin"]), **kw), 403, "E-AUTH-ROLE")
    assert client.request(method, path, headers=auth(service.keys["settle"]), **kw).status_code == 200
    assert client.request(method, path, headers={"X-API-Key": service.keys["both"]}, **kw).status_code == 200


@pytest.mark.parametrize("path", ["/v1/admin/reload", "/v1/validate"])
def test_admin_endpoints_need_an_admin_key(service, client, path):
    kw = {"content": _zip({"pack.yaml": b"region: x"}), "headers": {"Content-Type": "application/zip"}}
    assert_problem(client.post(path, **kw), 401, "E-AUTH-MISSING")
    assert_problem(client.post(path, **{**kw, "headers": {**kw["headers"], **auth("wrong")}}), 401, "E-AUTH-INVALID")
    assert_problem(client.post(path, **{**kw, "headers": {**kw["headers"], **auth(service.keys["settle"])}}), 403,
                   "E-AUTH-ROLE")
    assert client.post(path, **{**kw, "headers": {**kw["headers"], **auth(service.keys["admin"])}}).status_code == 200


# ------------------------------------------------------------------ batch

def test_batch_json_list_settles_each_claim_independently(service, client):
    bad = claim()
    bad["age"] = -3
    r = client.post("/v1/settle:batch", json=[claim(), bad, claim()], headers=auth(service.keys["settle"]))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert [x["status"] for x in doc["results"]] == [200, 422, 200]
    assert (doc["settled"], doc["refused"]) == (2, 1)
    assert doc["results"][1]["problem"]["code"] == "E-CLAIM"
    assert doc["results"][1]["problem"]["errors"][0]["path"] == "age"
    seqs = [x["decision_seq"] for x in doc["results"] if x["status"] == 200]
    assert seqs[1] == seqs[0] + 1, "one transaction, consecutive entries"
    SettlementOut.model_validate(doc["results"][0]["settlement"])
    assert doc["pack_set"] == r.headers["x-rules-engine-pack-set"]
    assert "110000@2021.1#" in r.headers["x-rules-engine-packs"]


def test_batch_ndjson_in_ndjson_out(service, client):
    lines = [json.dumps(claim()), "{not json", "", json.dumps(claim())]
    r = client.post("/v1/settle:batch", content="\n".join(lines).encode(),
                    headers={**auth(service.keys["settle"]), "Content-Type": "application/x-ndjson"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    items = [json.loads(x) for x in r.text.splitlines()]
    assert [x["status"] for x in items] == [200, 400, 200]
    assert items[1]["problem"]["code"] == "E-CLAIM-JSON"
    assert [x["index"] for x in items] == [0, 1, 2]


def test_batch_refuses_what_is_not_a_list_and_too_many_claims(service, client):
    h = auth(service.keys["settle"])
    assert_problem(client.post("/v1/settle:batch", json=claim(), headers=h), 400, "E-CLAIM-JSON")
    assert_problem(client.post("/v1/settle:batch", content=b"[{}, ", headers={**h, "Content-Type": "application/json"}),
                   400, "E-CLAIM-JSON")
    assert_problem(client.post("/v1/settle:batch", content=b"[" + b",".join([b"{}"] * 1001) + b"]",
                               headers={**h, "Content-Type": "application/json"}), 413, "E-LIMIT-BATCH")
    r = client.post("/v1/settle:batch", json=[], headers=h)
    assert r.status_code == 200 and r.json()["results"] == []


# ------------------------------------------------------------------ packs

def test_packs_list_and_one_pack(service, client):
    h = auth(service.keys["settle"])
    r = client.get("/v1/packs", headers=h)
    assert r.status_code == 200
    doc = r.json()
    keys = {f"{p['region']}@{p['version']}": p for p in doc["packs"]}
    assert {"000000@2024.1", "110000@2021.1"} <= set(keys)
    assert HASH.match(keys["110000@2021.1"]["hash"]) and keys["110000@2021.1"]["chain"] == ["000000@2024.1",
                                                                                             "110000@2021.1"]
    assert doc["pack_set"] == r.headers["x-rules-engine-pack-set"]
    one = client.get("/v1/packs/110000", params={"date": "2022-06-06"}, headers=h)
    assert one.status_code == 200
    assert one.json()["pack"]["hash"] == keys["110000@2021.1"]["hash"]
    assert one.json()["document"]["content_hash"] == keys["110000@2021.1"]["hash"]
    district = client.get("/v1/packs/110105", params={"date": "2022-06-06"}, headers=h)
    assert district.status_code == 200 and district.json()["pack"]["region"] == "110000", "falls back to the province"


@pytest.mark.parametrize("path,status,code", [
    ("/v1/packs/110000", 400, "E-DATE"),
    ("/v1/packs/110000?date=2022-13-01", 400, "E-DATE"),
    ("/v1/packs/110000?date=20220101", 400, "E-DATE"),
    ("/v1/packs/990000?date=2022-01-01", 404, "E-UNKNOWN-REGION"),
    ("/v1/packs/beijing?date=2022-01-01", 404, "E-UNKNOWN-REGION"),
    ("/v1/packs/110000?date=1999-01-01", 404, "E-NO-PACK-ON-DATE"),
])
def test_pack_lookup_errors(service, client, path, status, code):
    assert_problem(client.get(path, headers=auth(service.keys["settle"])), status, code)


# ------------------------------------------------------------------ validate

def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def _pack_files(prefix: str = "") -> dict[str, bytes]:
    d = REGIONS / "110000" / "2021.1"
    return {prefix + str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_validate_a_good_pack_as_zip(service, client):
    r = client.post("/v1/validate", content=_zip(_pack_files()),
                    headers={**auth(service.keys["admin"]), "Content-Type": "application/zip"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["ok"] and doc["errors"] == 0, doc["problems"]
    assert doc["packs"][0]["key"] == "110000@2021.1" and doc["packs"][0]["compiled"]


def _broken_policy() -> tuple[bytes, int, int]:
    text = (REGIONS / "110000" / "2021.1" / "policy.yaml").read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    n = next(i for i, ln in enumerate(lines) if "ratio: 0.85" in ln)
    lines[n] = lines[n].replace("ratio: 0.85", "ratio: 1.85", 1)
    return "".join(lines).encode("utf-8"), n + 1, lines[n].index("1.85") + 1


def test_validate_reports_problems_located_in_the_upload(service, client):
    files = _pack_files("regions/110000/2021.1/")
    policy, line, col = _broken_policy()
    files["regions/110000/2021.1/policy.yaml"] = policy
    r = client.post("/v1/validate", content=_zip(files),
                    headers={**auth(service.keys["admin"]), "Content-Type": "application/zip"})
    assert r.status_code == 200
    doc = r.json()
    assert not doc["ok"] and doc["errors"] >= 1
    bad = [p for p in doc["problems"] if p["severity"] == "error"]
    assert bad[0]["file"] == "regions/110000/2021.1/policy.yaml"
    assert bad[0]["line"] == line, bad
    assert bad[0]["location"].startswith(f"regions/110000/2021.1/policy.yaml:{line}:")


def test_validate_multipart_files(service, client):
    files = _pack_files()
    policy, line, _ = _broken_policy()
    files["policy.yaml"] = policy
    upload = [("files", (name, data, "application/octet-stream")) for name, data in files.items()]
    r = client.post("/v1/validate", files=upload, headers=auth(service.keys["admin"]))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert not doc["ok"]
    assert any(p["file"] == "policy.yaml" and p["line"] == line for p in doc["problems"])


@pytest.mark.parametrize("content,ctype,status,code", [
    (b"not a zip", "application/zip", 400, "E-UPLOAD"),
    (_zip({"../../etc/pack.yaml": b"x"}), "application/zip", 400, "E-UPLOAD"),
    (_zip({"/abs/pack.yaml": b"x"}), "application/zip", 400, "E-UPLOAD"),
    (_zip({"readme.txt": b"x"}), "application/zip", 422, "E-UPLOAD-NO-PACK"),
    (b"{}", "application/json", 415, "E-MEDIA-TYPE"),
])
def test_validate_refuses_bad_uploads(service, client, content, ctype, status, code):
    assert_problem(client.post("/v1/validate", content=content,
                               headers={**auth(service.keys["admin"]), "Content-Type": ctype}), status, code)


# ------------------------------------------------------------------ ops

def test_health_ready_metrics_openapi_need_no_key(service, client):
    assert client.get("/healthz").json() == {"status": "alive"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and any(p.startswith("110000@2021.1#") for p in ready["packs"])
    client.post("/v1/settle", json=claim(), headers=auth(service.keys["settle"]))
    client.post("/v1/settle", json=claim())  # a 401
    m = client.get("/metrics")
    assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
    text = m.text
    assert re.search(r'rules_engine_pack_info\{hash="[0-9a-f]{64}",region="110000",version="2021.1"\} 1\.0', text)
    assert re.search(r'rules_engine_http_request_duration_seconds_bucket\{endpoint="/v1/settle",le="[^"]+",'
                     r'region="110000"\}', text)
    assert re.search(r'rules_engine_http_requests_total\{endpoint="/v1/settle",method="POST",status="401"\}', text)
    assert "rules_engine_pack_reloads_total" in text and "rules_engine_pack_reload_failing 0.0" in text
    assert client.get("/openapi.json").json()["paths"]["/v1/settle"]["post"]


def test_unknown_routes_and_methods_are_problems(service, client):
    assert_problem(client.get("/v1/nothing"), 404, "E-NOT-FOUND")
    assert_problem(client.get("/v1/settle", headers=auth(service.keys["settle"])), 405, "E-METHOD")
    assert_problem(client.post("/v1/convert/nothing", json={}, headers=auth(service.keys["settle"])), 404, "E-NOT-FOUND")
    assert client.get("/problems/E-CLAIM").json()["status"] == 422


def test_decision_log_holds_each_settlement_masked(service, client):
    from rules_engine.journal import Journal
    c = claim()
    c["certno"] = "110101198002029876"
    c["psn_name"] = "李四海"
    r = client.post("/v1/settle", json=c, headers={**auth(service.keys["settle"]), "X-Request-Id": "mask-test-1"})
    seq = int(r.headers["x-decision-seq"])
    with Journal(service.journal, create=False) as j:
        e = j.get(seq)
        assert e.kind == "settlement" and e.keys["request_id"] == "mask-test-1"
        assert e.keys["mdtrt_id"] == c["mdtrt_id"]
        p = e.payload
        assert p["input"]["certno"] == "***" and p["input"]["psn_name"] == "***"
        assert p["packs"] == r.json()["packs"]
        assert p["totals"]["hifp_pay"] == f"{r.json()['setlinfo']['hifp_pay']:.2f}"
        assert p["key_id"] == "his" and p["latency_ms"] > 0
        import hashlib
        assert p["input_sha256"] == hashlib.sha256(r.request.content).hexdigest()
        assert j.find(request_id="mask-test-1")[0].seq == seq
        assert j.verify().ok
    raw = service.journal.read_bytes() + service.journal.with_name(service.journal.name + "-wal").read_bytes()
    assert "110101198002029876".encode() not in raw and "李四海".encode() not in raw


def test_service_log_has_no_personal_fields_and_no_keys(service, client):
    c = copy.deepcopy(claim())
    c.update(certno="110101197703037777", psn_name="王五六", tel="13800138000")
    h = auth(service.keys["settle"])
    client.post("/v1/settle", json=c, headers=h)
    bad = dict(c, age="old")
    client.post("/v1/settle", json=bad, headers=h)
    client.post("/v1/settle:batch", json=[c, bad], headers=h)
    import time
    deadline = time.monotonic() + 10
    while service.log().count("rid=") < 4 and time.monotonic() < deadline:
        time.sleep(0.05)  # the log is written by a thread of its own
    log = service.log()
    assert "rid=" in log
    for secret in ("110101197703037777", "王五六", "13800138000", service.keys["settle"], service.keys["admin"]):
        assert secret not in log


# ------------------------------------------------------------------ audit, ICD conversion

AUDIT_EXAMPLE = ROOT / "examples" / "claims" / "national-catalogue-audit.json"


def test_audit_over_http_names_the_real_liangku_hits(service, client):
    r = client.post("/v1/audit", content=AUDIT_EXAMPLE.read_bytes(),
                    headers={**auth(service.keys["settle"]), "content-type": "application/json"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["verdict"] == "lines refused" and body["pack"].startswith("130000@")
    assert {(h["rule"], h["action"]) for h in body["hits"]} >= {("LKD-0760", "reject_line"), ("LKD-0512", "reject_line")}


def test_audit_over_http_refusals(service, client):
    assert_problem(client.post("/v1/audit", json=claim()), 401, "E-AUTH-MISSING")
    assert_problem(client.post("/v1/audit", json=claim(), headers=auth(service.keys["admin"])), 403, "E-AUTH-ROLE")
    bad = claim()
    bad["age"] = -3
    doc = assert_problem(client.post("/v1/audit", json=bad, headers=auth(service.keys["settle"])), 422, "E-CLAIM")
    assert [(e["path"], e["code"]) for e in doc["errors"]] == [("age", "E-CLAIM-VALUE")]
    assert_problem(client.post("/v1/audit", content=b"{", headers={**auth(service.keys["settle"]),
                                                                     "content-type": "application/json"}),
                   400, "E-CLAIM-JSON")


def test_convert_icd_over_http(service, client):
    body = {"codes": ["I63.200x001"], "from": "clinical-2.0", "to": "insurance-2.0", "date": "2025-06-01"}
    r = client.post("/v1/convert/icd", json=body, headers=auth(service.keys["settle"]))
    assert r.status_code == 200, r.text
    [res] = r.json()["results"]
    assert res["kind"] == "source-is-narrower" and res["targets"] == ["I63.200"]
    assert_problem(client.post("/v1/convert/icd", json=body), 401, "E-AUTH-MISSING")
    assert_problem(client.post("/v1/convert/icd", json=body, headers=auth(service.keys["admin"])), 403, "E-AUTH-ROLE")
    doc = assert_problem(client.post("/v1/convert/icd", json={**body, "codes": ["I63..2"]},
                                     headers=auth(service.keys["settle"])), 422, "E-CODE-FORM")
    assert doc["errors"][0]["path"] == "codes[0]"
