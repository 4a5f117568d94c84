"""Soak the gateway against the simulator: many claims, injected faults, then prove nothing was lost
or doubled and that the day reconciles (3201 balanced).

    python tools/soak_gateway.py                  # the CI size: 1,000 claims, 10 % of them faulted
    python tools/soak_gateway.py --full           # 5,000 claims, 10 %, more concurrency
    python tools/soak_gateway.py --claims 200 --fault-share 0.3 --seed 7

What it does:
1. starts the simulator on loopback (its own engine on the same packs) and a gateway with short
   timeouts (a delay or a hang longer than the read timeout makes an *unknown* outcome);
2. submits N claims (the example claims with a distinct person each), `--concurrency` at a time; a
   `--fault-share` of them get exactly one fault — kind and transaction (2204/2206/2207) drawn
   from the seed — which the simulator applies to that person's request;
3. resubmits, like an operator, the claims that ended failed, blocked or reversed (up to 3 rounds);
4. checks: every claim is booked exactly once on the simulator and DONE in the outbox with the same
   msgid and setl_id (0 lost, 0 doubled), no submission is left unfinished, and 3201 for every day
   balances;
5. prints the figures (and returns them as a dict for the test that runs the CI size).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SOAK_FAULTS = ("delay", "hang", "drop", "http_500", "http_503", "infcode_-1", "infcode_-2", "malformed",
               "reject_sign", "missing_field", "wrong_type")


def write_config(d: Path, url: str, *, durability: str = "NORMAL", read: float = 0.5,
                 code: str = "H11010500001", regions: tuple[str, ...] | None = None) -> tuple[Path, Path]:
    """gateway.yaml + gateway-adapter.yaml at `url`, for the treatment regions of the example claims
    (or `regions`). Give each outbox its own institution `code` when several share one simulator
    (a platform refuses a repeated msgid)."""
    regions = regions or tuple(sorted({c["mdtrtarea_admvs"] for c in example_claims()} | {"110000"}))
    entries = "\n".join(f'  "{r}": {{endpoint: "{url}", fixmedins_code: {code}, fixmedins_name: 压测医院, '
                        f'recer_sys_code: YBXT}}' for r in regions)
    (d / "gateway.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        defaults:
          operator: {{opter: "0001", opter_name: 压测}}
          outbox: {{path: outbox.sqlite}}
          timeouts: {{connect: 2, read: {read}, write: {read}, total: {read + 0.1}}}
          retry: {{max_attempts: 4, initial_backoff: 0.01, max_backoff: 0.05}}
        regions:
        """) + entries + "\n", encoding="utf-8")
    (d / "gateway-adapter.yaml").write_text(f"version: 1\ndefaults:\n  durability: {durability}\n", encoding="utf-8")
    return d / "gateway.yaml", d / "gateway-adapter.yaml"


def example_claims() -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "examples" / "claims").glob("*.json"))]


def run_soak(claims: int = 1000, *, fault_share: float = 0.10, concurrency: int = 16, seed: int = 20250312,
             durability: str = "NORMAL", workdir: Path | None = None, quiet: bool = False) -> dict[str, Any]:
    from rules_engine import Engine
    from rules_engine.gateway.client import Gateway, GatewayError
    from rules_engine.gateway.config import require_gateway_config
    from rules_engine.gateway.settings import load_adapter_config
    from rules_engine.gateway.simulator import PlatformSimulator

    def say(*a: Any) -> None:
        if not quiet:
            print(*a, flush=True)

    rng = random.Random(seed)
    engine = Engine.from_directory(ROOT / "regions")
    sim = PlatformSimulator(engine=engine, hang_seconds=1.0).start()
    tmp = workdir or Path(tempfile.mkdtemp(prefix="soak-gateway-"))
    cfg_path, ad_path = write_config(tmp, sim.url, durability=durability)
    cfg = require_gateway_config(cfg_path)
    adapter, _ = load_adapter_config(ad_path, gateway_config=cfg)
    bases = example_claims()
    todo = []
    faults: Counter = Counter()
    faulted = set(rng.sample(range(claims), round(claims * fault_share)))  # exactly the share asked for
    for i in range(claims):
        c = dict(bases[i % len(bases)], psn_no=f"SOAK-{seed % 1000:03d}-{i:06d}")
        c.pop("psn_name", None)
        sim.register_claim(c)
        if i in faulted:
            kind = rng.choice(SOAK_FAULTS)
            step = rng.choice(("upload", "presettle", "settle"))
            inpatient = str(c["med_type"]).startswith("2")
            infno = {"upload": "2301" if inpatient else "2204", "presettle": "2303" if inpatient else "2206",
                     "settle": "2304" if inpatient else "2207"}[step]
            sim.inject(kind, infno, psn_no=c["psn_no"], seconds=1.0 if kind == "delay" else 0.0)
            faults[f"{kind}@{step}"] += 1
        todo.append(c)
    n_faulted = sum(faults.values())
    say(f"soak: {claims} claims, {n_faulted} with an injected fault ({n_faulted / max(claims, 1):.1%}), "
        f"concurrency {concurrency}, durability {durability}, seed {seed}")

    async def main() -> dict[str, Any]:
        gw = Gateway(cfg, engine=engine, adapter=adapter, max_connections=concurrency * 2)
        sem = asyncio.Semaphore(concurrency)
        first: Counter = Counter()
        latencies: list[float] = []

        async def one(c: dict, tally: Counter) -> str:
            async with sem:
                t0 = time.perf_counter()
                try:
                    r = await gw.submit(c)
                    state = r.state
                except GatewayError as e:
                    state = e.code
                latencies.append(time.perf_counter() - t0)
                tally[state] += 1
                return state

        t0 = time.perf_counter()
        states = await asyncio.gather(*(one(c, first) for c in todo))
        elapsed = time.perf_counter() - t0
        say(f"first pass: {dict(first)} in {elapsed:.1f} s ({claims / elapsed:.0f} claims/s)")
        rounds = []
        pending = [c for c, s in zip(todo, states) if s != "DONE"]
        for rnd in range(3):
            if not pending:
                break
            await gw.resume()
            tally: Counter = Counter()
            states = await asyncio.gather(*(one(c, tally) for c in pending))
            rounds.append(dict(tally))
            say(f"resubmission round {rnd + 1}: {dict(tally)}")
            pending = [c for c, s in zip(pending, states) if s != "DONE"]
        # the evening: reconcile each day, faults off
        sim.clear_faults()
        days = sorted({str(c["setl_time"])[:10] for c in todo})
        recon = []
        for day in days:
            recon += await gw.reconcile(day)
        status = gw.status()
        outbox = gw.outbox("110000")
        done = {r.visit_key: r for r in outbox.submissions(states=["DONE"])}
        reversals = len([r for r in outbox.requests(infno="2601") if r.state == "DONE"])
        unknown_2207 = len([r for r in outbox.requests(purpose="settle") if r.state == "REVERSED"])
        await gw.aclose()
        return {"first": dict(first), "rounds": rounds, "pending": len(pending), "recon": recon, "status": status,
                "done": done, "elapsed": elapsed, "latencies": latencies, "reversals": reversals,
                "settlements_reversed": unknown_2207}

    try:
        out = asyncio.run(main())
    finally:
        sim.stop()
    # the proof
    booked_by_visit: Counter = Counter()
    booked_msgids = {}
    for s in sim.settlements.values():
        if s.state == "booked":
            booked_by_visit[f"{s.psn_no}/{s.mdtrt_id}"] += 1
            booked_msgids[f"{s.psn_no}/{s.mdtrt_id}"] = (s.msgid, s.setl_id)
    doubled = sum(1 for v in booked_by_visit.values() if v > 1)
    lost = 0
    mismatched = 0
    for c in todo:
        from rules_engine.gateway.payloads import visit_ids
        key = visit_ids(c)["visit_key"]
        n = booked_by_visit.get(key, 0)
        row = out["done"].get(key)
        if n == 0 or row is None:
            lost += 1
        elif booked_msgids[key] != (row.settle_msgid, row.setl_id):
            mismatched += 1
    unfinished = len(out["status"]["attention"])
    balanced = all(r["balanced"] for r in out["recon"])
    lat = sorted(out["latencies"])
    figures = {
        "claims": claims, "faulted_claims": n_faulted, "faults": dict(sorted(faults.items())),
        "first_pass": out["first"], "resubmission_rounds": out["rounds"],
        "booked": sum(booked_by_visit.values()), "lost": lost, "doubled": doubled, "mismatched": mismatched,
        "unfinished": unfinished, "reversals_2601": out["reversals"],
        "settlements_reversed": out["settlements_reversed"],
        "simulator_faults_applied": len(sim.injected),
        "reconciliation": [{k: r[k] for k in ("region", "insutype", "clr_type", "setl_optins",
                                              "fixmedins_setl_cnt", "medfee_sumamt", "fund_pay_sumamt", "balanced")}
                           for r in out["recon"]],
        "balanced": balanced, "first_pass_seconds": round(out["elapsed"], 2),
        "claims_per_second_first_pass": round(claims / out["elapsed"], 1) if out["elapsed"] else None,
        "latency_ms_p50": round(statistics.median(lat) * 1000, 1) if lat else None,
        "latency_ms_p99": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 1) if lat else None,
        "workdir": str(tmp),
    }
    say(f"result: booked {figures['booked']}, lost {lost}, doubled {doubled}, mismatched {mismatched}, unfinished "
        f"{unfinished}, 冲正 {figures['reversals_2601']}, 3201 " + ("balanced" if balanced else "NOT balanced"))
    for r in figures["reconciliation"]:
        say(f"  3201 {r['region']} {r['insutype']} clr {r['clr_type']} {r['setl_optins']}: {r['fixmedins_setl_cnt']} "
            f"settlements, medfee {r['medfee_sumamt']}, fund {r['fund_pay_sumamt']} → "
            + ("平" if r["balanced"] else "不平"))
    return figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--claims", type=int, default=None)
    ap.add_argument("--fault-share", type=float, default=0.10)
    ap.add_argument("--concurrency", type=int, default=None)
    ap.add_argument("--seed", type=int, default=20250312)
    ap.add_argument("--durability", choices=("FULL", "NORMAL"), default="NORMAL")
    ap.add_argument("--full", action="store_true", help="5,000 claims, concurrency 32")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    a = ap.parse_args()
    n = a.claims or (5000 if a.full else 1000)
    conc = a.concurrency or (32 if a.full else 16)
    f = run_soak(n, fault_share=a.fault_share, concurrency=conc, seed=a.seed, durability=a.durability)
    if a.json:
        print(json.dumps(f, ensure_ascii=False, indent=2))
    ok = f["lost"] == 0 and f["doubled"] == 0 and f["mismatched"] == 0 and f["unfinished"] == 0 and f["balanced"]
    print("SOAK " + ("PASSED" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
