"""The app in-process (ASGI, no socket): fuzzing for 500s, and the extension point."""
from __future__ import annotations

import json
import sys
import types
import warnings

import pytest
from fastapi import Depends, Request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_helpers import claim
from starlette.responses import Response

from rules_engine.service.app import create_app, dumps

with warnings.catch_warnings():  # starlette suggests another httpx package for its test client; httpx is what we ship
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient
from rules_engine.service.config import Limits, ServiceConfig


@pytest.fixture(scope="module")
def app_client(tmp_path_factory):
    root = tmp_path_factory.mktemp("inproc")
    from service_helpers import make_regions
    regions = make_regions(root)
    cfg = ServiceConfig(regions=str(regions), allow_anonymous=True, watch_interval_s=0, cache=False,
                        journal=str(root / "j.journal"), limits=Limits(max_lines=200, max_batch_claims=20))
    with TestClient(create_app(cfg), raise_server_exceptions=False) as c:
        yield c


scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12) | st.sampled_from(
    ["", "110000", "2022-06-06", "9" * 400, "1e400", "-0", "310", "\u0000", "名"])
any_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=8)  # lone surrogates too
values = st.recursive(scalars | any_text, lambda ch: st.lists(ch, max_size=3) | st.dictionaries(any_text, ch, max_size=3),
                      max_leaves=8)
FIELDS = ["insuplc_admdvs", "mdtrtarea_admvs", "insutype", "med_type", "setl_time", "begntime", "hosp_lv", "age",
          "brdy", "gend", "feedetail", "diseinfo", "accumulators", "balc", "acct_used_flag", "filing_type", "psn_name"]
LINE_FIELDS = ["feedetl_sn", "med_list_codg", "cnt", "pric", "det_item_fee_sumamt", "hosp_appr_flag", "prd_days"]


@st.composite
def mutated_claims(draw):
    c = claim()
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            c[draw(st.sampled_from(FIELDS))] = draw(values)
        elif isinstance(c.get("feedetail"), list) and c["feedetail"]:
            line = c["feedetail"][draw(st.integers(0, len(c["feedetail"]) - 1))]
            if isinstance(line, dict):
                line[draw(st.sampled_from(LINE_FIELDS))] = draw(values)
    return c


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutated_claims())
def test_no_claim_makes_a_500(app_client, c):
    r = app_client.post("/v1/settle", content=json.dumps(c, ensure_ascii=False).encode("utf-8", "surrogatepass"),
                        headers={"Content-Type": "application/json"})
    assert r.status_code in (200, 400, 413, 422), r.text
    if r.status_code != 200:
        doc = r.json()
        assert doc["code"].startswith("E-") and doc["status"] == r.status_code


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_no_body_makes_a_500(app_client, body):
    for path in ("/v1/settle", "/v1/settle:batch"):
        r = app_client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code in (200, 400, 413, 422), (path, r.text)
    r = app_client.post("/v1/settle:batch", content=body, headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code in (200, 400, 413), r.text
    r = app_client.post("/v1/validate", content=body, headers={"Content-Type": "application/zip"})
    assert r.status_code in (400, 413, 422), r.text


def test_an_extension_gets_routes_auth_and_limits(tmp_path):
    """What the lead does for POST /v1/audit: a module:function that adds routes using the context."""
    from rules_engine.service.auth import hash_key

    mod = types.ModuleType("ext_for_test")

    def install(app, ctx):
        @app.post("/v1/echo-lines", response_model=None)
        async def echo(request: Request, key=Depends(ctx.require("settle"))):
            async with ctx.pending():
                body = await ctx.body(request)

                def work():
                    c = ctx.parse_claim_json(body)
                    return Response(dumps({"lines": len(c["feedetail"]), "key": key.id}), media_type="application/json")
                return await ctx.compute(work)
    mod.install = install
    sys.modules["ext_for_test"] = mod
    from service_helpers import make_regions
    keys = tmp_path / "keys.txt"
    keys.write_text(f"his settle {hash_key('rek_k' * 8)}\n", encoding="utf-8")
    cfg = ServiceConfig(regions=str(make_regions(tmp_path)), keys_file=str(keys), watch_interval_s=0, cache=False,
                        extensions=["ext_for_test:install"], limits=Limits(max_lines=5))
    try:
        with TestClient(create_app(cfg)) as c:
            assert c.post("/v1/echo-lines", json=claim()).status_code == 401
            h = {"X-API-Key": "rek_k" * 8}
            r = c.post("/v1/echo-lines", json=claim(), headers=h)
            assert r.status_code == 413 and r.json()["code"] == "E-LIMIT-LINES", "the service's limits apply"
            small = dict(claim(), feedetail=claim()["feedetail"][:3])
            assert c.post("/v1/echo-lines", json=small, headers=h).json() == {"lines": 3, "key": "his"}
            assert "/v1/echo-lines" in c.get("/openapi.json").json()["paths"]
    finally:
        sys.modules.pop("ext_for_test", None)


def test_a_bad_extension_name_stops_the_start(tmp_path):
    from service_helpers import make_regions

    from rules_engine.service.extensions import ExtensionError
    cfg = ServiceConfig(regions=str(make_regions(tmp_path)), allow_anonymous=True, watch_interval_s=0, cache=False,
                        extensions=["no_such_module:install"])
    with pytest.raises(ExtensionError):
        create_app(cfg)


def test_a_stuck_log_sink_never_blocks_a_request():
    """Log lines go through a bounded queue to a writer thread; when it is full they are dropped, not waited for."""
    import logging
    import queue

    from rules_engine.service.server import _DroppingQueueHandler
    q: queue.Queue = queue.Queue(maxsize=2)  # nobody drains it: the sink is stuck
    h = _DroppingQueueHandler(q)
    before = _DroppingQueueHandler.dropped
    log = logging.getLogger("test.stuck-sink")
    log.propagate = False
    log.addHandler(h)
    try:
        for i in range(5):
            log.warning("line %d", i)  # would block forever on a full pipe
    finally:
        log.removeHandler(h)
    assert q.qsize() == 2 and _DroppingQueueHandler.dropped - before == 3
