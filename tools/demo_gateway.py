"""The gateway demo (`make demo` calls it): a simulated national platform on loopback, the example
claims submitted through the gateway, the platform's answer compared with ours, a lost answer
recovered by 冲正, the day reconciled, the audit log verified — then the simulator is stopped.

Every step is a real CLI command, printed before it runs. The demo exits non-zero when a step does
not end as it should (a step expected to be refused — the comparison that blocks 2207 — must be
refused). Nothing is left behind: the configuration, outbox and audit log live in a temporary folder.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "rules_engine.cli"]
EXAMPLES = sorted((ROOT / "examples" / "claims").glob("*.json"))


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http(method: str, url: str, body: object | None = None) -> object:
    import httpx
    r = httpx.request(method, url, content=None if body is None else json.dumps(body, ensure_ascii=False),
                      timeout=30)
    r.raise_for_status()
    return r.json()


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="gateway-demo-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, COLUMNS=os.environ.get("COLUMNS", "150"), RULES_ENGINE_REGIONS=str(ROOT / "regions"))
    env.pop("RULES_ENGINE_GATEWAY_CRASH", None)
    regions = sorted({json.loads(p.read_text(encoding="utf-8"))["mdtrtarea_admvs"] for p in EXAMPLES} | {"110000"})
    entries = "".join(f'  "{r}": {{endpoint: "{base}/fsi/api/rsfComIfsService/callService", '
                      f'fixmedins_code: H11010500001, fixmedins_name: 示例医院（虚构）, recer_sys_code: YBXT}}\n'
                      for r in regions)
    (work / "gateway.yaml").write_text(textwrap.dedent("""\
        # demo configuration: the treatment regions of the example claims, the simulator on loopback
        version: 1
        defaults:
          operator: {opter_type: "1", opter: "0001", opter_name: 演示经办人}
          outbox: {path: outbox.sqlite}
          timeouts: {connect: 2, read: 2, write: 2, total: 3}
          retry: {initial_backoff: 0.05, max_backoff: 0.2}
        regions:
        """) + entries, encoding="utf-8")
    shutil.copy(ROOT / "examples" / "gateway-adapter.yaml", work / "gateway-adapter.yaml")
    cfg = ["--config", str(work / "gateway.yaml")]

    # a visit the platform sees differently: it knows no deductible paid this year yet
    differ = json.loads((ROOT / "examples" / "claims" / "beijing-outpatient.json").read_text(encoding="utf-8"))
    differ["psn_no"] = "EXAMPLE-0099"
    (work / "platform-disagrees.json").write_text(json.dumps(differ, ensure_ascii=False, indent=1), encoding="utf-8")
    platform_view = dict(differ, accumulators={"outpatient_dedc_year": 0, "outpatient_fund_year": 0})
    # a visit whose settlement answer will be lost on the way back
    lost = json.loads((ROOT / "examples" / "claims" / "beijing-inpatient.json").read_text(encoding="utf-8"))
    lost["psn_no"] = "EXAMPLE-0098"
    (work / "answer-lost.json").write_text(json.dumps(lost, ensure_ascii=False, indent=1), encoding="utf-8")

    print(f"=== Start the platform simulator on loopback (its own engine, its own ledger)\n"
          f"$ rules-engine platform-sim --port {port} --register examples/claims/*.json", flush=True)
    sim = subprocess.Popen(CLI + ["platform-sim", "--port", str(port), "--regions", str(ROOT / "regions")]
                           + [a for p in EXAMPLES for a in ("--register", str(p))], cwd=ROOT, env=env)
    failures: list[str] = []
    try:
        for _ in range(600):
            try:
                http("GET", f"{base}/sim/health")
                break
            except Exception:
                if sim.poll() is not None:
                    print("the simulator did not start", file=sys.stderr)
                    return 1
                time.sleep(0.05)
        http("POST", f"{base}/sim/register", [platform_view, lost])

        def step(title: str, args: list[str], expect: int | tuple[int, ...] = 0) -> None:
            shown = " ".join(shlex.quote(a.replace(str(work), "$DEMO")) for a in args)
            print(f"\n=== {title}\n$ rules-engine {shown}", flush=True)
            r = subprocess.run(CLI + args, cwd=ROOT, env=env)
            ok = r.returncode in ((expect,) if isinstance(expect, int) else expect)
            if not ok:
                failures.append(f"{title}: exit {r.returncode}, expected {expect}")
                print(f"!!! unexpected exit code {r.returncode}", flush=True)

        step("Check the gateway configuration (every error would be located, before anything is sent)",
             ["gateway", "check-config", *cfg])
        step("Submit the example claims: fee upload, pre-settlement, compare platform vs ours, settlement",
             ["gateway", "submit", *[str(p.relative_to(ROOT)) for p in EXAMPLES], *cfg])
        step("A visit the platform sees differently (it knows no deductible paid this year): the comparison "
             "blocks 2207 and explains our figure", ["gateway", "submit", str(work / "platform-disagrees.json"), *cfg],
             expect=1)
        http("POST", f"{base}/sim/faults", {"kind": "drop", "infno": "2304", "psn_no": "EXAMPLE-0098"})
        step("The platform books a settlement and the answer is lost: 冲正 (2601), then a fresh attempt — "
             "booked once", ["gateway", "submit", str(work / "answer-lost.json"), *cfg])
        step("Submitting a settled visit again is refused before anything is sent",
             ["gateway", "submit", "examples/claims/beijing-outpatient.json", *cfg], expect=1)
        days = sorted({json.loads(p.read_text(encoding="utf-8"))["setl_time"][:10] for p in EXAMPLES})
        for day in days:
            step(f"Reconcile {day} with the platform (3201 from the outbox)", ["gateway", "reconcile", "--date", day,
                                                                           *cfg])
        step("Verify the audit log's hash chain", ["gateway", "log", "verify", *cfg])
        step("Outbox status (nothing left unfinished)", ["gateway", "status", *cfg])
        led = http("GET", f"{base}/sim/ledger")
        print(f"\nsimulator ledger: {led['requests']} requests, settlements {led['settlements']}")
        booked = {}
        for b in led["booked"]:
            booked[b["psn_no"]] = booked.get(b["psn_no"], 0) + 1
        doubled = [k for k, v in booked.items() if v > 1]
        if doubled:
            failures.append(f"doubled settlements: {doubled}")
        expected = {json.loads(p.read_text(encoding="utf-8"))["psn_no"] for p in EXAMPLES} | {"EXAMPLE-0098"}
        if set(booked) != expected:
            failures.append(f"booked {sorted(booked)}, expected {sorted(expected)}")
    finally:
        print("\n=== Stop the simulator", flush=True)
        sim.terminate()
        try:
            sim.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sim.kill()
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print("\nGATEWAY DEMO FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    print("\nGateway demo finished: every claim booked once, the comparison shown, the day reconciled, "
          "the audit log intact.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
