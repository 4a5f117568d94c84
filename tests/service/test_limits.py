"""Bad and hostile input: every limit answers a 4xx problem — never a 500, never a hung worker."""
from __future__ import annotations

import json
import re
import socket
import time

import httpx
import pytest
from service_helpers import Server, auth, claim, make_keys, make_regions


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A server with small limits, so that each one is reached with little traffic."""
    root = tmp_path_factory.mktemp("limits")
    keys_file, keys = make_keys(root)
    srv = Server(root, make_regions(root), keys_file=keys_file,
                 args=["--watch-interval", "0", "--max-body-bytes", "200000", "--max-lines", "50",
                       "--max-inflight", "1", "--max-pending", "1", "--queue-timeout", "0.3",
                       "--body-timeout", "1.5"]).start()
    srv.keys = keys  # type: ignore[attr-defined]
    yield srv
    srv.stop()


def post(srv, body: bytes, **headers) -> httpx.Response:
    return httpx.post(srv.url + "/v1/settle", content=body, timeout=30,
                      headers={**auth(srv.keys["settle"]), "Content-Type": "application/json", **headers})


def problem(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    d = r.json()
    assert d["code"] == code, d
    return d


def test_body_size_with_and_without_content_length(small):
    problem(post(small, b" " * 200_001 + b"{}"), 413, "E-LIMIT-BODY")

    def chunks():
        for _ in range(30):
            yield b" " * 10_000
    r = httpx.post(small.url + "/v1/settle", content=chunks(), timeout=30,
                   headers={**auth(small.keys["settle"]), "Content-Type": "application/json"})
    problem(r, 413, "E-LIMIT-BODY")


def test_fee_lines_per_claim(small):
    c = claim()
    c["feedetail"] = [dict(c["feedetail"][0], feedetl_sn=str(i)) for i in range(51)]
    d = problem(post(small, json.dumps(c).encode()), 413, "E-LIMIT-LINES")
    assert d["errors"][0]["path"] == "feedetail"


def test_json_depth(small):
    c = claim()
    deep: object = "x"
    for _ in range(30):
        deep = [deep]
    c["memo"] = deep
    d = problem(post(small, json.dumps(c).encode()), 400, "E-LIMIT-DEPTH")
    assert d["errors"][0]["path"].startswith("memo")
    problem(post(small, b"[" * 100_000 + b"]" * 100_000), 400, "E-LIMIT-DEPTH")


@pytest.mark.parametrize("field,raw,status,code,path", [
    ("pric", "1e999999999", 422, "E-CLAIM", "feedetail[0].pric"),
    ("cnt", "-1E-999999999", 422, "E-CLAIM", "feedetail[0].cnt"),
    ("pric", "9" * 5000, 400, "E-CLAIM-JSON", None),
    ("psn_name", '"' + "名" * 10_001 + '"', 422, "E-CLAIM", "psn_name"),
    ("psn_name", '"\\ud800"', 422, "E-CLAIM", "psn_name"),
    ("age", "Infinity", 400, "E-CLAIM-JSON", None),
    ("memo", '{"\\udc00": 1}', 422, "E-CLAIM", "memo"),
    ("memo", '{"' + "k" * 201 + '": 1}', 422, "E-CLAIM", "memo"),
])
def test_hostile_values_are_located_problems(small, field, raw, status, code, path):
    c = claim()
    marker = "__MARK__"
    if field in ("pric", "cnt"):
        c["feedetail"][0][field] = marker
    else:
        c[field] = marker
    body = json.dumps(c, ensure_ascii=False).replace(f'"{marker}"', raw).encode()
    d = problem(post(small, body), status, code)
    if path:
        assert d["errors"][0]["path"] == path


def _slow_request(srv) -> socket.socket:
    """Headers and part of a body, then silence: holds the server's only pending place."""
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall((f"POST /v1/settle HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {srv.keys['settle']}\r\n"
               "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"a\":").encode())
    return s


def test_slow_sender_gets_408_and_a_full_service_429(small):
    s = _slow_request(small)
    try:
        time.sleep(0.3)  # the slow request now holds the only place
        busy = post(small, json.dumps(claim()).encode())
        d = problem(busy, 429, "E-LIMIT-BUSY")
        assert busy.headers["retry-after"] == "1" and d["detail"]
        s.settimeout(10)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
        assert re.match(rb"HTTP/1.1 408 ", answer), answer[:200]
    finally:
        s.close()
    # and the worker is free again; nothing on this server ever answered a 5xx
    assert post(small, json.dumps(claim()).encode()).status_code == 200
    text = httpx.get(small.url + "/metrics").text
    assert not re.search(r'rules_engine_http_requests_total\{[^}]*status="5\d\d"', text), text
    assert re.search(r'rules_engine_rejected_total\{reason="busy"\} [1-9]', text)
