"""Member queries per second through the settlement service against the platform simulator.

The service runs in-process (the ASGI app through Starlette's TestClient: routing, auth, limits,
problem+json and the journal as in production, without the socket); the simulator listens on
loopback (the sandbox's 定点 interface sends plain JSON, as regions' test environments do; every
message is still recorded in the outbox and the audit journal before it is sent). Each query is
timed end to end, sequentially; a round is `--n` queries; the figure is the median of `--rounds`
rounds. Printed: queries per second per kind, the median latency, and ratios against the Python
API without HTTP (what the service layer costs) and against a refusal (what the platform round trip
costs). No assertion on time: figures vary with the machine (printed at the top, with the load).

    .venv/bin/python tools/bench_member.py [--n 200] [--rounds 5] [--journal-sync NORMAL|FULL]
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT))

from _bench_common import load_average, machine_description  # noqa: E402

PURPOSE = "online-consultation"


def rounds(fn, n: int, k: int) -> tuple[float, float]:
    """(median queries/s over k rounds, median latency ms over all queries)."""
    qps, lat = [], []
    fn()  # warm
    for _ in range(k):
        t0 = time.perf_counter()
        for _ in range(n):
            t = time.perf_counter()
            fn()
            lat.append((time.perf_counter() - t) * 1000)
        qps.append(n / (time.perf_counter() - t0))
    return statistics.median(qps), statistics.median(lat)


def main() -> int:
    ap = argparse.ArgumentParser(description="member queries per second through the service")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--journal-sync", choices=["NORMAL", "FULL"], default="FULL")
    a = ap.parse_args()
    from rules_engine import Engine
    from rules_engine.member.sandbox import BJ, Sandbox
    from rules_engine.service.app import create_app
    from rules_engine.service.auth import hash_key
    from rules_engine.service.config import ServiceConfig
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    import logging
    logging.getLogger("rules_engine").setLevel(logging.WARNING)

    print(f"machine: {machine_description()}; load {load_average()}")
    root = Path(tempfile.mkdtemp(prefix="bench-member-"))
    engine = Engine.from_directory(ROOT / "regions")
    sb = Sandbox.create(root, engine=engine, journal_sync=a.journal_sync)
    until = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    key = "rek_bench-" + "d" * 40
    (root / "keys.txt").write_text(f"bench settle {hash_key(key)}\n", encoding="utf-8")
    os.environ["RULES_ENGINE_MEMBER_CONFIG"] = str(sb.member_yaml)
    cfg = ServiceConfig(regions=str(ROOT / "regions"), keys_file=str(root / "keys.txt"), watch_interval_s=0,
                        journal=str(root / "service-journal.sqlite"), journal_sync=a.journal_sync)
    py = sb.service(engine=engine)
    try:
        py.give_consent(BJ, granted_to="bench", data=["insurance", "benefits"], purpose=PURPOSE, channel="im",
                        until=until)
        with TestClient(create_app(cfg), headers={"Authorization": f"Bearer {key}"}) as http:
            r = http.post("/v1/member/consents", json={"psn_no": BJ, "data": ["insurance", "benefits"],
                                                       "purpose": PURPOSE, "channel": "im", "until": until})
            assert r.status_code == 201, r.text

            def get(path: str, want: int):
                def f():
                    resp = http.get(path, params={"purpose": PURPOSE})
                    if resp.status_code != want:
                        raise SystemExit(f"{path}: {resp.status_code} {resp.text[:200]}")
                return f

            cases = [
                ("python insurance (1101)", lambda: py.insurance(BJ, purpose=PURPOSE, caller="bench")),
                ("http insurance (1101)", get(f"/v1/member/persons/{BJ}/insurance", 200)),
                ("python benefits (1101+5206+estimate)", lambda: py.benefits(BJ, purpose=PURPOSE, caller="bench")),
                ("http benefits (1101+5206+estimate)", get(f"/v1/member/persons/{BJ}/benefits", 200)),
                ("http refused (no consent)", get("/v1/member/persons/P-NOBODY/insurance", 403)),
            ]
            res = {}
            print(f"\n{a.rounds} rounds × {a.n} sequential queries; journal sync {a.journal_sync}")
            print(f"{'kind':<40}{'q/s (median)':>14}{'latency ms (median)':>22}")
            for name, fn in cases:
                res[name] = rounds(fn, a.n, a.rounds)
                print(f"{name:<40}{res[name][0]:>14.0f}{res[name][1]:>22.2f}")
        print("\nratios (q/s)")
        print(f"  http / python, insurance : {res['http insurance (1101)'][0] / res['python insurance (1101)'][0]:.2f}")
        print(f"  http / python, benefits  : {res['http benefits (1101+5206+estimate)'][0] / res['python benefits (1101+5206+estimate)'][0]:.2f}")
        print(f"  benefits / insurance, http: {res['http benefits (1101+5206+estimate)'][0] / res['http insurance (1101)'][0]:.2f}")
        print(f"  insurance / refusal, http: {res['http insurance (1101)'][0] / res['http refused (no consent)'][0]:.2f}")
    finally:
        py.close()
        sb.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
