"""Benchmark the HTTP service: requests/s and p50/p99 for a 20-line claim, next to the in-process figure.

    .venv/bin/python tools/bench_service.py                  # 1/8/64 clients × 1/2 workers × journal off/full/normal
    .venv/bin/python tools/bench_service.py --seconds 3 --repeats 3 --json out/bench_service.json

For each (workers, journal, concurrency) the server is started once (`rules-engine serve`, the
command an operator runs) and driven `--repeats` times for `--seconds` each after a warm-up;
the figures printed are the medians over the repeats. The load generator is a separate
process speaking raw HTTP/1.1 over keep-alive connections on asyncio (uvloop when present):
one connection per client, each sending the next request when the last answer is complete
(closed loop). It is cheap per request but it is not free: on a 2-core machine it takes a
core's share from the server, which is why the load average and the machine are printed.

"in-process" is `Engine.settle(dict)` on the same claim, and the full in-process work the
server does per request (parse the JSON body, settle, to_dict, serialise). The difference at
1 client between the HTTP p50 and the in-process p50 is the HTTP overhead.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import ROOT, load_average, machine_description, median, percentile  # noqa: E402

CLAIM = ROOT / "tests" / "service" / "fixtures" / "claim-20-lines.json"
KEY = "rek_bench-" + "b" * 40


# ------------------------------------------------------------------ load generator (child process)

async def _client(host: str, port: int, request: bytes, t_start: float, t_end: float, lat: list[float],
                  bad: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            t0 = time.perf_counter()
            if t0 >= t_end:
                break
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            n = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    n = int(line[15:])
            await reader.readexactly(n)
            t1 = time.perf_counter()
            if t0 >= t_start:
                lat.append(t1 - t0)
                if status != 200:
                    bad.append(status)
    finally:
        writer.close()


def _drive(host: str, port: int, request: bytes, clients: int, warmup: float, seconds: float, q: mp.Queue) -> None:
    try:
        import uvloop  # type: ignore
        uvloop.install()
    except ImportError:
        pass
    lat: list[float] = []
    bad: list[int] = []

    async def main() -> None:
        now = time.perf_counter()
        t_start, t_end = now + warmup, now + warmup + seconds
        await asyncio.gather(*[_client(host, port, request, t_start, t_end, lat, bad) for _ in range(clients)])
    asyncio.run(main())
    lat.sort()
    q.put({"n": len(lat), "rps": len(lat) / seconds, "p50": percentile(lat, 50), "p99": percentile(lat, 99),
           "errors": len(bad), "statuses": sorted(set(bad))})


def drive(port: int, body: bytes, clients: int, warmup: float, seconds: float) -> dict:
    request = (f"POST /v1/settle HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {KEY}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    q: mp.Queue = mp.get_context("spawn").Queue()
    p = mp.get_context("spawn").Process(target=_drive, args=("127.0.0.1", port, request, clients, warmup, seconds, q))
    p.start()
    result = q.get(timeout=warmup + seconds + 120)
    p.join(timeout=30)
    return result


# ------------------------------------------------------------------ server

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp: Path, regions: str, workers: int, journal: str | None) -> tuple[subprocess.Popen, int]:
    from rules_engine.service.auth import hash_key
    keys = tmp / "keys.txt"
    keys.write_text(f"bench settle {hash_key(KEY)}\n", encoding="utf-8")
    port = free_port()
    cmd = [sys.executable, "-m", "rules_engine.cli", "serve", "--regions", regions, "--port", str(port),
           "--workers", str(workers), "--keys", str(keys), "--watch-interval", "0", "--log-level", "warning"]
    if journal:
        j = tmp / f"bench-{workers}-{time.time_ns()}.journal"
        cmd += ["--journal", str(j), "--journal-sync", journal.upper()]
    log = open(tmp / f"server-{port}.log", "wb")  # a file, not a pipe nobody reads
    proc = subprocess.Popen(cmd, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=log)
    proc.log_path = tmp / f"server-{port}.log"  # type: ignore[attr-defined]
    import httpx
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.log_path.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become ready")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ------------------------------------------------------------------ in-process

def in_process(regions: str, body: bytes, seconds: float) -> dict:
    from decimal import Decimal

    from rules_engine import Engine
    from rules_engine.service.app import dumps
    engine = Engine.from_directory(regions)
    claim = json.loads(body, parse_float=Decimal)
    for _ in range(300):
        engine.settle(claim)

    def timed(fn) -> dict:
        lat = []
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            fn()
            lat.append(time.perf_counter() - t0)
        lat.sort()
        return {"n": len(lat), "rps": len(lat) / sum(lat), "p50": percentile(lat, 50), "p99": percentile(lat, 99)}

    settle_only = timed(lambda: engine.settle(claim))
    full = timed(lambda: dumps(engine.settle(json.loads(body, parse_float=Decimal)).to_dict()))
    return {"settle": settle_only, "server_work": full}


# ------------------------------------------------------------------ main

def us(x: float) -> str:
    return f"{x * 1e6:,.0f} µs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--regions", default=str(ROOT / "regions"))
    ap.add_argument("--claim", default=str(CLAIM), help="a claim JSON file (default: the 20-line fixture)")
    ap.add_argument("--clients", default="1,8,64")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--journal", default="off,full,normal",
                    help="decision log: off, full (synchronous=FULL, the default of serve), normal")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", dest="json_out", default=None, help="also write the figures to this file")
    a = ap.parse_args()
    body = Path(a.claim).read_bytes()
    lines = len(json.loads(body)["feedetail"])
    print(f"machine: {machine_description()}")
    print(f"load average before: {load_average()}")
    print(f"claim: {a.claim} ({lines} fee lines, {len(body):,} bytes); {a.repeats} repeats × {a.seconds:g} s "
          f"after {a.warmup:g} s warm-up; figures are medians over the repeats\n")

    ip = [in_process(a.regions, body, a.seconds) for _ in range(a.repeats)]
    inproc = {k: {m: median([r[k][m] for r in ip]) for m in ("rps", "p50", "p99")} for k in ("settle", "server_work")}
    print(f"in-process Engine.settle(dict):              p50 {us(inproc['settle']['p50'])}, p99 "
          f"{us(inproc['settle']['p99'])}, {inproc['settle']['rps']:,.0f}/s on one thread")
    print(f"in-process parse + settle + to_dict + JSON:  p50 {us(inproc['server_work']['p50'])}, p99 "
          f"{us(inproc['server_work']['p99'])}, {inproc['server_work']['rps']:,.0f}/s on one thread\n")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for journal in [None if j == "off" else j for j in a.journal.split(",")]:
            for workers in [int(w) for w in a.workers.split(",")]:
                proc, port = start_server(Path(tmp), a.regions, workers, journal)
                try:
                    for clients in [int(c) for c in a.clients.split(",")]:
                        runs = [drive(port, body, clients, a.warmup, a.seconds) for _ in range(a.repeats)]
                        row = {"workers": workers, "journal": journal, "clients": clients,
                               **{m: median([r[m] for r in runs]) for m in ("rps", "p50", "p99")},
                               "errors": sum(r["errors"] for r in runs),
                               "statuses": sorted({s for r in runs for s in r["statuses"]})}
                        rows.append(row)
                        print(f"workers {workers}  journal {journal or 'off':6}  clients {clients:>3}: "
                              f"{row['rps']:>7,.0f} req/s  p50 {us(row['p50']):>10}  p99 {us(row['p99']):>10}"
                              + (f"  ERRORS {row['errors']} {row['statuses']}" if row["errors"] else ""), flush=True)
                finally:
                    stop_server(proc)
    base = [r for r in rows if r["clients"] == 1 and r["workers"] == 1 and not r["journal"]]
    if base:
        b = base[0]
        over = b["p50"] - inproc["settle"]["p50"]
        print(f"\nHTTP overhead at 1 client, 1 worker, no journal: p50 {us(b['p50'])} over HTTP vs "
              f"{us(inproc['settle']['p50'])} in-process = +{us(over)} ({b['p50'] / inproc['settle']['p50']:.1f}×); "
              f"of which parse + to_dict + JSON out {us(inproc['server_work']['p50'] - inproc['settle']['p50'])}, "
              f"HTTP/ASGI/threads {us(b['p50'] - inproc['server_work']['p50'])}")
    for mode in ("full", "normal"):
        withj = [r for r in rows if r["clients"] == 1 and r["workers"] == 1 and r["journal"] == mode]
        if base and withj:
            print(f"decision log (synchronous={mode.upper()}) at 1 client, 1 worker: "
                  f"+{us(withj[0]['p50'] - base[0]['p50'])} p50")
    print(f"load average after: {load_average()}")
    if a.json_out:
        Path(a.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json_out).write_text(json.dumps({"machine": machine_description(), "in_process": inproc, "http": rows},
                                               indent=2))


if __name__ == "__main__":
    main()
