"""Two uvicorn workers: one decision log, one metrics view, reloads reaching every worker."""
from __future__ import annotations

import re
import time

import httpx
from service_helpers import Server, auth, claim, make_keys, make_regions

from rules_engine.journal import Journal


def metric(text: str, pattern: str) -> float:
    m = re.search(pattern + r" ([0-9.e+]+)", text)
    return float(m.group(1)) if m else 0.0


def test_two_workers(tmp_path):
    keys_file, keys = make_keys(tmp_path)
    srv = Server(tmp_path, make_regions(tmp_path), keys_file=keys_file, journal=tmp_path / "decisions.journal",
                 workers=2, args=["--watch-interval", "0"]).start()  # no folder watcher: peers still follow
    try:
        n = 40
        with httpx.Client(base_url=srv.url, timeout=30, headers=auth(keys["settle"])) as c:
            seqs = []
            for _ in range(n):
                r = c.post("/v1/settle", json=claim())
                assert r.status_code == 200, r.text
                seqs.append(int(r.headers["x-decision-seq"]))
        assert sorted(seqs) == list(range(1, n + 1))
        text = httpx.get(srv.url + "/metrics").text
        assert metric(text, r'rules_engine_http_requests_total\{endpoint="/v1/settle",method="POST",status="200"\}') == n, \
            "/metrics adds up every worker, whichever answers"
        r = httpx.post(srv.url + "/v1/admin/reload", headers=auth(keys["admin"]), timeout=30)
        assert r.status_code == 200

        def peers_reloaded() -> bool:
            t = httpx.get(srv.url + "/metrics").text
            return metric(t, r'rules_engine_pack_reloads_total\{result="ok",trigger="peer"\}') >= 1

        deadline = time.monotonic() + 20
        while not peers_reloaded():
            assert time.monotonic() < deadline, "the other worker never followed the admin reload"
            time.sleep(0.2)
        deadline = time.monotonic() + 10
        while "reloaded (peer)" not in srv.log():
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        srv.stop()
    with Journal(tmp_path / "decisions.journal", create=False) as j:
        v = j.verify()
        assert v.ok and v.entries == n
        assert len({e.payload["request_id"] for e in j.entries()}) == n
