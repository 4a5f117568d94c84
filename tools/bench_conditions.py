"""Conditions evaluated per second: compiled closures (hot path) vs durable-rules (reference).

The workload is the conditions of the shipped packs (named conditions, layer eligibility, case
choices, payment restrictions — deduplicated) plus generated ones of the same kinds (age bands,
care settings, institution levels, insurance types, approval flags, 限定诊断 ICD lists with
prefixes and ranges, item-code prefixes, nested all/any/not), each evaluated on synthetic claim
and fee-line facts. Every (condition, facts) pair is evaluated once per run on each backend; the
figure is the median of several runs. Verdicts are compared first: a benchmark of two backends
that disagree would be meaningless, so a mismatch aborts.

    .venv/bin/python tools/bench_conditions.py [--runs 5] [--facts 200] [--generated 200] [--threads 4]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rules_engine.conditions.compiled import compile_condition  # noqa: E402
from rules_engine.conditions.durable import DurableConditions, pack_conditions  # noqa: E402
from rules_engine.conditions.language import All, AnyOf, Cmp, Not, Src, parse_icd_pattern, to_data  # noqa: E402
from rules_engine.packs.registry import PackSet  # noqa: E402

SRC = Src("generated", 0, 0)


def shipped_conditions(regions: Path) -> dict[str, object]:
    ps = PackSet.load(regions)
    out: dict[str, object] = {}
    seen: set[str] = set()
    for pack in sorted(ps.compiled.values(), key=lambda p: p.key):
        for cid, node in pack_conditions(pack).items():
            key = json.dumps(to_data(node), sort_keys=True, ensure_ascii=False, default=str)
            if key not in seen:
                seen.add(key)
                out[f"{pack.key}/{cid}"] = node
    return out


ICD_LETTERS = "ABCDEFGIJKLMNRSZ"


def _icd(rng: random.Random) -> str:
    return rng.choice(ICD_LETTERS) + f"{rng.randint(0, 99):02d}"


def generated_conditions(n: int, rng: random.Random) -> dict[str, object]:
    """Conditions of the kinds the catalogue's 限定支付范围 and the policies use."""

    def icd_list() -> Cmp:
        pats = []
        for _ in range(rng.choice([1, 2, 3, 5, 8, 12, 20, 30])):
            a = _icd(rng)
            r = rng.random()
            if r < 0.5:
                text = a
            elif r < 0.8:
                b = a[0] + f"{min(99, int(a[1:]) + rng.randint(1, 20)):02d}"
                text = f"{a}-{b}"
            else:
                text = f"{a}.{rng.randint(0, 9)}"
            pats.append(parse_icd_pattern(text))
        return Cmp("diagnoses", "icd", tuple(pats), SRC)

    simple = [
        lambda: Cmp("age", "lt", rng.choice([6, 12, 14, 18]), SRC),                         # 限儿童
        lambda: Cmp("age", "between", tuple(sorted(rng.sample(range(0, 90), 2))), SRC),    # age bands
        lambda: Cmp("age", "gte", rng.choice([60, 65, 70]), SRC),
        lambda: Cmp("med_type", "in", frozenset(rng.sample(["21", "23", "24", "28"], rng.randint(1, 4))), SRC),
        lambda: Cmp("hosp_lv", "in", frozenset(rng.sample(["1", "2", "3"], rng.randint(1, 2))), SRC),
        lambda: Cmp("insutype", "eq", rng.choice(["310", "390", "410", "510"]), SRC),       # 限工伤保险 = 410
        lambda: Cmp("hosp_appr_flag", "eq", "1", SRC),
        lambda: Cmp("gend", "eq", rng.choice(["1", "2"]), SRC),
        lambda: Cmp("insutype_retr_flag", "eq", "1", SRC),
        lambda: Cmp("med_list_codg", "prefix", tuple(rng.sample(["XA01", "XB02", "ZA04", "XJ01"], 2)), SRC),
        lambda: Cmp("cnt", "lte", rng.choice([1, 2, 10, 30]), SRC),
        lambda: Cmp("prd_days", "lte", rng.choice([7, 14, 30]), SRC),
        lambda: Cmp("list_kind", "eq", "drug", SRC),
        icd_list,
    ]

    def node(depth: int):
        r = rng.random()
        if depth >= 2 or r < 0.45:
            return rng.choice(simple)()
        if r < 0.75:
            return All(tuple(node(depth + 1) for _ in range(rng.randint(2, 3))), SRC)
        if r < 0.92:
            return AnyOf(tuple(node(depth + 1) for _ in range(rng.randint(2, 3))), SRC)
        return Not(node(depth + 1), SRC)

    return {f"generated/{i}": node(0) for i in range(n)}


def facts(n: int, rng: random.Random) -> list[tuple[dict, dict | None]]:
    out = []
    for _ in range(n):
        claim = {
            "insutype": rng.choice(["310", "310", "390", "410"]), "insutype_retr_flag": rng.choice("01"),
            "med_type": rng.choice(["11", "13", "14", "21", "21", "24"]), "age": rng.choice(
                [rng.randint(0, 17), rng.randint(18, 59), rng.randint(60, 95)]),
            "gend": rng.choice("12"), "hosp_lv": rng.choice("1233"), "community_flag": rng.choice("01"),
            "admission_seq": rng.randint(1, 3), "cross_region": rng.random() < 0.2, "cross_province": False,
            "diagnoses": [_icd(rng) + rng.choice(["", ".900", f".{rng.randint(0, 9)}01"])
                          for _ in range(rng.randint(0, 4))],
        }
        if rng.random() < 0.1:
            del claim["age"]  # facts go missing in real data too
        line = None if rng.random() < 0.2 else {
            "med_list_codg": rng.choice(["XA01BAA", "XB02CCD", "ZA04AAB", "XJ01DHC", "001202000010000"]),
            "cnt": rng.choice([1, 2, 0.5, 14, 30]), "pric": round(rng.uniform(0.1, 900), 2),
            "hosp_appr_flag": rng.choice(["0", "1", None]), "prd_days": rng.choice([None, 3, 7, 30]),
            "list_kind": rng.choice(["drug", "service", "consumable"]),
        }
        out.append((claim, line))
    return out


def timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--regions", type=Path, default=ROOT / "regions")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--facts", type=int, default=200, help="claim/line fact sets")
    ap.add_argument("--generated", type=int, default=200, help="generated conditions added to the shipped ones")
    ap.add_argument("--threads", type=int, default=4, help="threads for the concurrent durable run (0: skip)")
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)

    conds = shipped_conditions(args.regions)
    n_shipped = len(conds)
    conds.update(generated_conditions(args.generated, rng))
    cases = facts(args.facts, rng)
    ids = list(conds)

    t = time.perf_counter()
    compiled = [compile_condition(conds[c]) for c in ids]
    t_compile = time.perf_counter() - t
    t = time.perf_counter()
    dc = DurableConditions(conds)
    t_durable = time.perf_counter() - t
    n_rules = sum(len(dc.rules(c)[0]) for c in ids)

    # same verdicts first
    mismatches = [(c, claim, line) for c, fn in zip(ids, compiled) for claim, line in cases
                  if fn(claim, line) != dc.evaluate(c, claim, line)]
    if mismatches:
        print(f"backends disagree on {len(mismatches)} evaluations, e.g. {mismatches[0]}", file=sys.stderr)
        return 1
    holds = sum(fn(claim, line) for fn in compiled for claim, line in cases)

    pairs_c = [(fn, claim, line) for fn in compiled for claim, line in cases]
    pairs_d = [(c, claim, line) for c in ids for claim, line in cases]
    n = len(pairs_c)
    reps = max(1, int(2_000_000 / n))  # compiled is fast: repeat the pass to time ≥ ~0.2 s

    def run_compiled() -> None:
        for _ in range(reps):
            for fn, claim, line in pairs_c:
                fn(claim, line)

    evaluate = dc.evaluate

    def run_durable(part=pairs_d) -> None:
        for c, claim, line in part:
            evaluate(c, claim, line)

    def run_threads() -> None:
        ts = [threading.Thread(target=run_durable, args=(pairs_d[i::args.threads],)) for i in range(args.threads)]
        for th in ts:
            th.start()
        for th in ts:
            th.join()

    run_compiled(), run_durable()  # warm up
    c_rate = statistics.median(n * reps / s for s in timed(run_compiled, args.runs))
    d_rate = statistics.median(n / s for s in timed(run_durable, args.runs))
    t_rate = statistics.median(n / s for s in timed(run_threads, args.runs)) if args.threads else None

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    figures = {
        "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
        "load_average": round(load, 2) if load is not None else None,
        "conditions": len(ids), "shipped": n_shipped, "generated": len(ids) - n_shipped,
        "durable_rules": n_rules, "fact_sets": len(cases), "evaluations_per_run": n, "true_verdicts": holds,
        "runs": args.runs, "compiled_per_s": round(c_rate), "durable_per_s": round(d_rate),
        "durable_threads": args.threads or None, "durable_threads_per_s": round(t_rate) if t_rate else None,
        "ratio": round(c_rate / d_rate, 1), "build_compiled_ms": round(t_compile * 1e3, 1),
        "build_durable_ms": round(t_durable * 1e3, 1),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"Python {figures['python']} on {figures['machine']}, {figures['cpus']} CPUs, "
          f"load average {figures['load_average']}; median of {args.runs} runs")
    print(f"workload: {len(ids)} conditions ({n_shipped} from the shipped packs, {len(ids) - n_shipped} generated) "
          f"× {len(cases)} fact sets = {n:,} evaluations per run, {holds:,} true; backends agree on all")
    print(f"build:    compiled {t_compile * 1e3:8.1f} ms   durable-rules {t_durable * 1e3:8.1f} ms "
          f"({n_rules} rules)")
    print(f"compiled       {c_rate:12,.0f} conditions/s  ({1e6 / c_rate:7.2f} µs each)")
    print(f"durable-rules  {d_rate:12,.0f} conditions/s  ({1e6 / d_rate:7.2f} µs each)")
    if t_rate:
        print(f"durable-rules  {t_rate:12,.0f} conditions/s  with {args.threads} threads (one GIL)")
    print(f"ratio compiled / durable-rules: {c_rate / d_rate:.1f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
