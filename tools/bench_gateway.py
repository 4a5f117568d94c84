"""Benchmark the gateway end to end against the simulator: claims per second, p50 / p99, and what
the adapter costs per claim next to the engine alone.

    python tools/bench_gateway.py                      # 400 claims, concurrency 1, 8 and 32, FULL and NORMAL
    python tools/bench_gateway.py --claims 1000 --concurrency 16 --durability NORMAL

One claim, end to end = settle locally → 2204 (2301) fee upload → 2206 (2303) pre-settlement →
compare platform vs ours → 2207 (2304) settlement, each message recorded in the outbox before it is
sent and journalled (request and answer) in the hash-chained audit log.

The simulator runs in its *own process* (`rules-engine platform-sim`), so the figures for the gateway
process are the gateway's alone: its CPU time per claim (all threads) minus the engine's own time
per claim is the adapter's overhead — envelope, outbox, journal, HTTP, parsing, comparison. Wall
latency also contains the simulator (which settles each claim three times, as the platform does)
and loopback HTTP. Medians of the measured runs; the machine's load is printed with them.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def start_sim(port: int) -> subprocess.Popen:
    import httpx
    p = subprocess.Popen([sys.executable, "-m", "rules_engine.cli", "platform-sim", "--port", str(port),
                          "--regions", str(ROOT / "regions")], cwd=ROOT, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/sim/health", timeout=1)
            return p
        except Exception:
            time.sleep(0.05)
    p.kill()
    raise SystemExit("the simulator did not start")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--claims", type=int, default=400, help="claims per measured run")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--durability", nargs="+", default=["FULL", "NORMAL"], choices=["FULL", "NORMAL"])
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    import httpx
    from soak_gateway import example_claims, write_config
    from rules_engine import Engine
    from rules_engine.gateway.client import Gateway
    from rules_engine.gateway.config import require_gateway_config
    from rules_engine.gateway.settings import load_adapter_config

    engine = Engine.from_directory(ROOT / "regions")
    bases = example_claims()
    port = free_port()
    sim = start_sim(port)
    url = f"http://127.0.0.1:{port}/fsi/api/rsfComIfsService/callService"
    results = []
    try:
        # the engine alone, on the same claims
        claims = [dict(bases[i % len(bases)], psn_no=f"BENCH-E-{i:06d}") for i in range(max(a.claims, 400))]
        for c in claims[:50]:
            engine.settle(c)
        t_engine = []
        for c in claims:
            t0 = time.perf_counter()
            engine.settle(c)
            t_engine.append(time.perf_counter() - t0)
        engine_us = statistics.median(t_engine) * 1e6
        print(f"engine alone: p50 {engine_us:.0f} µs, p99 {pct(t_engine, 99) * 1e6:.0f} µs per claim "
              f"({len(bases)} example claims in rotation, 1–6 lines, 1–3 fund layers)")
        run_id = 0
        for durability in a.durability:
            for conc in a.concurrency:
                run_id += 1
                d = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
                cfg_path, ad_path = write_config(d, url, durability=durability, read=30.0, code=f"H{run_id:011d}")
                cfg = require_gateway_config(cfg_path)
                adapter, _ = load_adapter_config(ad_path, gateway_config=cfg)
                batch = [dict(bases[i % len(bases)], psn_no=f"BENCH-{run_id}-{i:06d}") for i in range(a.claims + 20)]
                httpx.post(f"http://127.0.0.1:{port}/sim/register", content=json.dumps(batch), timeout=120)

                async def go() -> tuple[list[float], float, float, int]:
                    gw = Gateway(cfg, engine=engine, adapter=adapter, max_connections=max(8, conc * 2))
                    for c in batch[:20]:  # warm: sign-in, connections, journal and outbox files
                        await gw.submit(c)
                    lat: list[float] = []
                    sem = asyncio.Semaphore(conc)
                    done = 0

                    async def one(c: dict) -> None:
                        nonlocal done
                        async with sem:
                            t0 = time.perf_counter()
                            r = await gw.submit(c)
                            lat.append(time.perf_counter() - t0)
                            done += r.state == "DONE"

                    cpu0, w0 = time.process_time(), time.perf_counter()
                    await asyncio.gather(*(one(c) for c in batch[20:]))
                    wall, cpu = time.perf_counter() - w0, time.process_time() - cpu0
                    await gw.aclose()
                    return lat, wall, cpu, done

                lat, wall, cpu, done = asyncio.run(go())
                n = len(lat)
                row = {"durability": durability, "concurrency": conc, "claims": n, "done": done,
                       "claims_per_s": round(n / wall, 1), "p50_ms": round(statistics.median(lat) * 1000, 2),
                       "p99_ms": round(pct(lat, 99) * 1000, 2),
                       "gateway_cpu_ms_per_claim": round(cpu / n * 1000, 2),
                       "engine_ms_per_claim": round(engine_us / 1000, 3),
                       "adapter_overhead_ms_per_claim": round(cpu / n * 1000 - engine_us / 1000, 2)}
                results.append(row)
                print(f"durability {durability:6} concurrency {conc:3}: {row['claims_per_s']:7.1f} claims/s  "
                      f"p50 {row['p50_ms']:7.2f} ms  p99 {row['p99_ms']:7.2f} ms  gateway CPU "
                      f"{row['gateway_cpu_ms_per_claim']:.2f} ms/claim (engine {row['engine_ms_per_claim']:.3f}, "
                      f"adapter {row['adapter_overhead_ms_per_claim']:.2f})  [{done}/{n} DONE]", flush=True)
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, load average {load[0]:.1f}" if load else "")
    if a.json:
        print(json.dumps(results, indent=2))
    return 0 if all(r["done"] == r["claims"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
