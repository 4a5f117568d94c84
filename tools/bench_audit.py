#!/usr/bin/env python3
"""Benchmark: the smart-audit rules (智能审核) — indexed evaluator vs the durable-rules reference.

    .venv/bin/python tools/bench_audit.py            # full run (5 runs)
    .venv/bin/python tools/bench_audit.py --quick    # smoke run (1 short run, figures not comparable)

What it measures, pinned to one core, medians over the runs:
- **load**: the national baseline's audit folder (regions/000000/2024.1/audit: 2,321 rules, 13,827
  drug codes) read, checked and merged with the Beijing pack's chain; the merged rules pickled and
  unpickled (what a compiled-pack cache pays);
- **indexed** (`rules_engine.audit.audit`, the hot path): µs per claim (p50, p99) and claims/s on
  generated 20-line inpatient claims over five days, each with 10 history lines — real 两库 codes
  (bed, consultation and nursing fees every day, drugs with sex / age / level rules, duplicate-charge
  pairs, HbA1c tests 1 per 15 days) and codes no rule names, some claims breaking rules;
- **scaling**: the same claims against the baseline plus 16,000 generated rules on other codes
  (18,321 rules): the per-claim cost must not grow with the number of rules (index by code);
- **for scale**: the same claims settled by `engine.settle` (without the audit) and claims whose
  codes no rule names (the floor: one dictionary lookup per line);
- **durable** (`rules_engine.audit.DurableAudit`, the reference): the ruleset build (shards) and
  claims/s on the same claims; the ratio indexed / durable;
- every claim's hits must be the same from both backends: a disagreement is printed and the exit
  status is 1.
"""
from __future__ import annotations

import argparse
import copy
import gc
import json
import pickle
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import (ROOT, heading, load_average, machine_description, median, percentile,  # noqa: E402
                           pin_one_core)

REGIONS = ROOT / "regions"
DATE = "2025-03-06"

# (code, unit price) of items billed every day of an admission — each under a 两库 frequency rule
DAILY = [("001102000050000", 20), ("001109000010000", 50), ("001201000040000", 30)]
SERVICES = [("002503020030000", 60),   # 糖化血红蛋白 1 per 15 days
            ("001103000010000", 80),   # 急诊监护费: includes 急诊诊查费 the same day (重复收费)
            ("001102000030000", 10),   # 急诊诊查费
            ("002101030300000", 300),  # 子宫造影: women only
            ("003105120040000", 120)]  # 儿童前牙树脂冠修复: children only
PLAIN = [(f"0020{i:011d}", 15) for i in range(40)]                     # codes no rule names
PLAIN_DRUGS = [(f"XZ99ZZZ{i:03d}A001010100001", 3) for i in range(40)]


def rule_drugs() -> list[str]:
    path = REGIONS / "000000" / "2024.1" / "audit" / "drug-rule-items.csv"
    return [line.split(",")[1] for line in path.read_text(encoding="utf-8").splitlines()[1:]]


def make_claims(n: int, seed: int = 7) -> list[dict]:
    rnd = random.Random(seed)
    drugs = rule_drugs()
    out = []
    for k in range(n):
        lines = []
        sn = 0

        def add(code: str, pric: float, day: int, cnt: int = 1) -> None:
            nonlocal sn
            sn += 1
            lines.append({"feedetl_sn": str(sn), "med_list_codg": code, "cnt": cnt, "pric": pric,
                          "det_item_fee_sumamt": round(cnt * pric, 2),
                          "fee_ocur_time": f"2025-03-0{day + 1} {8 + rnd.randrange(10):02d}:00:00"})

        for day in range(3):
            for code, pric in DAILY:
                add(code, pric, day)
        for _ in range(4):
            add(rnd.choice(drugs), 12.5, rnd.randrange(5), rnd.choice([1, 2]))
        for _ in range(3):
            add(*rnd.choice(PLAIN if rnd.random() < 0.5 else PLAIN_DRUGS), rnd.randrange(5))
        add(*rnd.choice(SERVICES), rnd.randrange(5))
        if rnd.random() < 0.3:  # a second consultation fee the same day: over the daily limit
            add("001102000050000", 20, 0)
        while len(lines) < 20:
            add(*rnd.choice(PLAIN), rnd.randrange(5))
        history = [{"med_list_codg": rnd.choice([c for c, _ in DAILY + SERVICES[:1]] + [c for c, _ in PLAIN[:5]]),
                    "fee_ocur_time": f"2025-02-{10 + rnd.randrange(18):02d} 09:00:00", "cnt": 1,
                    "mdtrt_id": rnd.choice(["ADM-EARLIER", f"ADM-{k}"])} for _ in range(10)]
        out.append({"psn_no": f"BENCH-{k}", "insuplc_admdvs": "110000", "mdtrtarea_admvs": "110000", "insutype": "310",
                    "med_type": "21", "age": rnd.choice([8, 35, 52, 70]), "gend": rnd.choice(["1", "2"]),
                    "hosp_lv": rnd.choice(["1", "2", "3"]), "mdtrt_id": f"ADM-{k}", "begntime": "2025-03-01 08:00:00",
                    "setl_time": f"{DATE} 10:00:00", "diseinfo": [{"diag_code": "J18.900"}],
                    "feedetail": lines, "history": history})
    return out


def load_rules():
    from rules_engine.audit import load_chain
    from rules_engine.packs.registry import PackSet
    ps = PackSet.load(REGIONS)
    pack = ps.select("110000", DATE)
    dirs = [ps.raws[k].dir for k in pack.chain]
    t0 = time.perf_counter()
    rules, problems = load_chain(dirs, ROOT, named=dict(pack.conditions),
                                 known_sources={p.id for p in pack.provenance})
    load_s = time.perf_counter() - t0
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise SystemExit("the baseline audit rules have errors:\n" + "\n".join(p.format() for p in errors[:10]))
    return rules, load_s, dirs, pack


def scaled(rules, extra: int):
    """The rules plus `extra` generated rules on codes no claim carries (same kinds and shapes)."""
    from rules_engine.audit import AuditRules
    from rules_engine.audit.model import ItemSet
    base = list(rules.rules)
    out = list(base)
    i = 0
    while len(out) < len(base) + extra:
        r = base[i % len(base)]
        fresh = ItemSet.of([f"{e[:-6] if not e.startswith('prefix:') else e}{i:06d}"[-len(e):].replace(":", "Q")
                            if not e.startswith("prefix:") else f"prefix:QQ{i:06d}" for e in r.items.entries])
        main = ItemSet.of([f"77{i:06d}{j:07d}" for j in range(len(r.main))]) if r.main else None
        out.append(replace(r, id=f"GEN-{i}", items=fresh, main=main))
        i += 1
    return AuditRules(tuple(out), rules.conditions, rules.files, rules.content_hash[:48] + f"{extra:016x}")


def time_backend(fn, inputs, n: int) -> list[float]:
    per = []
    gc.collect()
    gc.disable()
    try:
        for k in range(n):
            claim, facts, history = inputs[k % len(inputs)]
            t0 = time.perf_counter()
            fn(claim, facts, history)
            per.append(time.perf_counter() - t0)
    finally:
        gc.enable()
    return per


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 short run, figures not comparable")
    ap.add_argument("--runs", type=int, help="repeated runs; medians are reported (default 5; 1 with --quick)")
    ap.add_argument("--n", type=int, help="claims per run, indexed (default 20,000; 500 with --quick)")
    ap.add_argument("--n-durable", type=int, help="claims per run, durable (default 200; 10 with --quick)")
    a = ap.parse_args(argv)
    runs = a.runs or (1 if a.quick else 5)
    n_fast = a.n or (500 if a.quick else 20_000)
    n_dur = a.n_durable or (10 if a.quick else 200)
    cpu = pin_one_core()
    print(f"machine: {machine_description()}; pinned to CPU {cpu}; load average {load_average()}"
          + (" [--quick: smoke run]" if a.quick else ""))

    from rules_engine.audit import DurableAudit, audit, claim_facts, parse_history
    from rules_engine.model.claim import parse_claim

    heading("load: the baseline audit folder (national 两库) merged along 000000 → 110000")
    loads, pick_sizes, unpickles = [], [], []
    for _ in range(runs):
        rules, load_s, dirs, pack = load_rules()
        loads.append(load_s)
        blob = pickle.dumps(rules, protocol=pickle.HIGHEST_PROTOCOL)
        t0 = time.perf_counter()
        pickle.loads(blob)
        unpickles.append(time.perf_counter() - t0)
        pick_sizes.append(len(blob))
    print(f"{len(rules):,} rules {dict(sorted(rules.by_kind().items()))}")
    print(f"load + check + merge: median {median(loads) * 1e3:.1f} ms; pickle {pick_sizes[0] / 1e6:.2f} MB, "
          f"unpickle median {median(unpickles) * 1e3:.1f} ms")

    claims = make_claims(200)
    inputs = []
    for c in claims:
        c = copy.deepcopy(c)
        history = parse_history(c.pop("history"))
        claim = parse_claim(c)
        inputs.append((claim, claim_facts(claim), history))

    heading("agreement: indexed vs durable-rules, every benchmark claim")
    t0 = time.perf_counter()
    dur = DurableAudit(rules)
    build_s = time.perf_counter() - t0
    print(f"durable-rules ruleset: {dur.shards} shards (C rulesets), built in {build_s * 1e3:.0f} ms")
    disagree = 0
    hits_total: dict[str, int] = {}
    for claim, facts, history in inputs:
        fast = audit(rules, claim, facts, history)
        ref = dur.audit(claim, facts, history)
        for h in fast:
            hits_total[h.kind] = hits_total.get(h.kind, 0) + 1
        if [h.key() for h in fast] != [h.key() for h in ref]:
            disagree += 1
            if disagree <= 3:
                print(f"DISAGREE on {claim.raw.get('psn_no')}:\n  indexed {[h.key() for h in fast]}\n"
                      f"  durable {[h.key() for h in ref]}")
    print(f"{len(inputs)} claims, hits by kind {dict(sorted(hits_total.items()))}: "
          + ("the same hits from both backends" if not disagree else f"{disagree} claim(s) DISAGREE"))

    def run_fast(r):
        return lambda claim, facts, history: audit(r, claim, facts, history)

    big = scaled(rules, 16_000)
    audit(big, *inputs[0])  # build the index outside the timing
    for claim, facts, history in inputs:
        if [h.key() for h in audit(big, claim, facts, history)] != [h.key() for h in audit(rules, claim, facts, history)]:
            print("DISAGREE: the generated rules changed a hit (they name no code of the claims)")
            disagree += 1
            break
    # for scale: the same claims settled (Beijing 2025 pack, without the audit), and claims whose
    # codes no rule names (the floor of the index: one dictionary lookup per line)
    from rules_engine import Engine
    engine = Engine.from_directory(REGIONS, cache=False)
    from rules_engine.model.claim import SettlementError
    bodies = []
    for c in claims:
        c = copy.deepcopy(c)
        c.pop("history")
        try:
            engine.settle(c)
        except SettlementError:  # e.g. a 乙类 drug where the pack sets no ratio: settle the rest
            c["feedetail"] = [ln for ln in c["feedetail"] if not ln["med_list_codg"][0].isalpha()]
            try:
                engine.settle(c)
            except SettlementError:
                continue
        bodies.append((c, None, None))
    unmatched = []
    for claim, facts, _ in inputs[:50]:
        raw = copy.deepcopy(claim.raw)
        for ln in raw["feedetail"]:
            ln["med_list_codg"] = "0099" + ln["med_list_codg"][4:15]
        c2 = parse_claim(raw)
        unmatched.append((c2, claim_facts(c2), []))
    results: dict[str, list[float]] = {"settle (scale)": [], "indexed": [], "indexed 18k": [],
                                       "indexed, no code ruled": [], "durable": []}
    p99s: dict[str, list[float]] = {k: [] for k in results}
    for run in range(runs):
        for name, fn, n, data in (("settle (scale)", lambda c, f, h: engine.settle(c), n_fast // 4, bodies),
                                  ("indexed", run_fast(rules), n_fast, inputs),
                                  ("indexed 18k", run_fast(big), n_fast, inputs),
                                  ("indexed, no code ruled", run_fast(rules), n_fast, unmatched),
                                  ("durable", dur.audit, n_dur, inputs)):
            per = sorted(time_backend(fn, data, n))
            results[name].append(percentile(per, 50))
            p99s[name].append(percentile(per, 99))

    heading("per claim (20 lines + 10 history lines), one core")
    lines_per_claim = 20
    for name in results:
        p50 = median(results[name])
        p99 = median(p99s[name])
        rules_n = len(big) if name == "indexed 18k" else len(rules)
        what = "engine.settle, no audit" if name.startswith("settle") else f"{rules_n:,} rules"
        print(f"{name:>22}: p50 {p50 * 1e6:10.1f} µs   p99 {p99 * 1e6:10.1f} µs   {1 / p50:12,.0f} claims/s   "
              f"{p50 * 1e6 / lines_per_claim:8.2f} µs/line   ({what})")
    heading("summary")
    fast, big_t, slow = median(results["indexed"]), median(results["indexed 18k"]), median(results["durable"])
    print(f"indexed is {slow / fast:,.0f}× faster than the durable-rules reference (claims/s "
          f"{1 / fast:,.0f} vs {1 / slow:,.1f})")
    print(f"rule count {len(rules):,} → {len(big):,}: per-claim p50 ×{big_t / fast:.2f} (index by code: ~1 expected)")
    settle_t = median(results["settle (scale)"])
    print(f"the audit of a claim costs {fast / settle_t:.2f}× its settlement (settle p50 {settle_t * 1e6:.1f} µs); "
          f"lines no rule names: {median(results['indexed, no code ruled']) * 1e6 / lines_per_claim:.2f} µs/line")
    print(json.dumps({"load_ms": median(loads) * 1e3, "unpickle_ms": median(unpickles) * 1e3,
                      "indexed_p50_us": fast * 1e6, "indexed_18k_p50_us": big_t * 1e6, "durable_p50_us": slow * 1e6,
                      "ratio": slow / fast, "disagree": disagree}))
    return 1 if disagree else 0


if __name__ == "__main__":
    raise SystemExit(main())
