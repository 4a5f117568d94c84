"""Packs swapped while serving: 100 reloads under a steady load, a tenth of them with a broken pack.

What must hold: no request fails; every response was computed on exactly one valid pack set
(its insured and treatment hashes belong to the same generation, and its amounts are that
generation's); the broken packs are never served; the decision log verifies and has one
entry per answered settlement.
"""
from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from service_helpers import Server, auth, claim, make_keys, make_regions

from rules_engine import Engine
from rules_engine.journal import Journal

GENERATIONS = 5      # distinct valid contents, cycled
RELOADS = 100
CLIENTS = 4


def cross_region_claim() -> dict:
    c = claim()
    c["mdtrtarea_admvs"] = "120000"  # insured in Beijing, treated in a second region: two packs per answer
    c["filing_type"] = "long_term_resident"
    return c


def write_generation(regions: Path, g: int, broken: bool = False) -> None:
    """Generation g: the first-admission deductible is 1300 + 10·g in both regions. Broken: a band ratio of 1.85
    (an error) *and* a deductible no valid generation has, so that serving it would show."""
    for region in ("110000", "120000"):
        src = Path(__file__).resolve().parents[2] / "regions" / "110000" / "2021.1" / "policy.yaml"
        text = src.read_text(encoding="utf-8")
        text = text.replace("value: 1300", f"value: {9999 if broken else 1300 + 10 * g}", 1)
        if broken:
            text = text.replace("ratio: 0.85", "ratio: 1.85", 1)
        (regions / region / "2021.1" / "policy.yaml").write_text(text, encoding="utf-8")
        meta = regions / region / "2021.1" / "pack.yaml"
        meta.write_text(meta.read_text(encoding="utf-8").replace('region: "110000"', f'region: "{region}"'),
                        encoding="utf-8")


def expected_answers(root: Path) -> dict[tuple[str, str], tuple[float, int]]:
    """(insured hash, treatment hash) → (hifp_pay, generation), computed in-process for every valid generation."""
    out = {}
    for g in range(GENERATIONS):
        d = root / f"gen{g}"
        shutil.copytree(root / "regions", d)
        write_generation(d, g)
        s = Engine.from_directory(d, cache=False).settle(cross_region_claim())
        out[(s.insured.content_hash, s.treatment.content_hash)] = (float(s.setlinfo()["hifp_pay"]), g)
        shutil.rmtree(d)
    assert len(out) == GENERATIONS and len({v[0] for v in out.values()}) == GENERATIONS, "generations must differ"
    return out


def test_reload_under_load(tmp_path):
    regions = make_regions(tmp_path, "000000/2024.1", "110000/2021.1")
    shutil.copytree(regions / "110000", regions / "120000")
    write_generation(regions, 0)
    expected = expected_answers(tmp_path)
    keys_file, keys = make_keys(tmp_path)
    srv = Server(tmp_path, regions, keys_file=keys_file, journal=tmp_path / "decisions.journal",
                 args=["--watch-interval", "0"]).start()
    results: list[tuple[int, str, str, float | None]] = []
    errors: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def load() -> None:
        body = cross_region_claim()
        with httpx.Client(base_url=srv.url, timeout=30.0, headers=auth(keys["settle"])) as c:
            while not stop.is_set():
                try:
                    r = c.post("/v1/settle", json=body)
                except httpx.HTTPError as e:
                    with lock:
                        errors.append(repr(e))
                    continue
                if r.status_code != 200:
                    with lock:
                        results.append((r.status_code, "", "", None))
                    continue
                d = r.json()
                with lock:
                    results.append((200, d["packs"]["insured"]["hash"], d["packs"]["treatment"]["hash"],
                                    d["setlinfo"]["hifp_pay"]))

    try:
        threads = [threading.Thread(target=load) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        outcomes = Counter()
        with httpx.Client(base_url=srv.url, timeout=60.0, headers=auth(keys["admin"])) as admin:
            for i in range(RELOADS):
                broken = i % 10 == 9
                write_generation(regions, (i + 1) % GENERATIONS, broken=broken)
                r = admin.post("/v1/admin/reload")
                outcomes[(broken, r.status_code)] += 1
                if broken:
                    assert r.status_code == 422 and r.json()["code"] == "E-PACKS-INVALID", r.text
                    ready = httpx.get(srv.url + "/readyz").json()
                    assert ready["status"] == "stale" and not ready["last_reload"]["ok"]
                    assert httpx.get(srv.url + "/readyz?strict=true").status_code == 503
                else:
                    assert r.status_code == 200, r.text
                time.sleep(0.01)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        metrics = httpx.get(srv.url + "/metrics").text
    finally:
        stop.set()
        srv.stop()

    assert outcomes == {(False, 200): 90, (True, 422): 10}
    assert not errors, errors[:5]
    statuses = Counter(r[0] for r in results)
    assert statuses == {200: len(results)}, f"failed requests: {statuses}"
    assert len(results) >= 200, f"the load was too light to mean anything: {len(results)} requests"
    served = Counter()
    for _, ins, trt, hifp in results:
        assert (ins, trt) in expected, "a response computed on a mix of versions, or on the broken pack"
        pay, g = expected[(ins, trt)]
        assert hifp == pay, f"generation {g}'s hash with another generation's amounts"
        served[g] += 1
    assert len(served) >= 3, f"reloads did not take effect under load: {served}"
    assert 'rules_engine_pack_reloads_total{result="failed",trigger="admin"} 10.0' in metrics
    assert 'rules_engine_pack_reloads_total{result="ok",trigger="admin"} 90.0' in metrics
    with Journal(tmp_path / "decisions.journal", create=False) as j:
        v = j.verify()
        assert v.ok and v.entries == len(results), "one decision-log entry per answered settlement"
