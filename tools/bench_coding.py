#!/usr/bin/env python3
"""Benchmark: loading the national ICD coding tables, and asking them questions.

    .venv/bin/python tools/bench_coding.py            # 7 fresh-process runs of each load figure
    .venv/bin/python tools/bench_coding.py --runs 3

What it measures (each load figure in a fresh process, pinned to one core, median printed):
- **coding cold**: `load_coding` + `merge_chain` of regions/000000/2024.1/coding — the 35,587-row
  ICD-10 and 13,653-row ICD-9-CM-3 tables read, every row checked, indexes built;
- **baseline + coding cold**: `PackSet.load(regions/)` (every shipped pack, cold, no compiled
  cache) plus the coding of the baseline chain — what an engine start pays once the lead wires
  coding into pack loading (target: well under 1 s);
- **coding from pickle**: unpickling the compiled `Coding` (what the compiled-pack cache pays);
  its size in bytes;
- **memory**: bytes allocated by the compiled coding (tracemalloc);
- **questions** (in one process): µs per `translate` forward, reverse, per `convert_diagnoses`
  of a 5-code claim and per `map_item`.
The import process itself is not timed per start (it runs once per data release).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import ROOT, heading, machine_description, median, pin_one_core, run_child, verdict  # noqa: E402

BASELINE = ROOT / "regions" / "000000" / "2024.1"
REGIONS = ROOT / "regions"


def child(mode: str, extra: str | None) -> None:
    """One measurement in this fresh process; wall seconds, and CPU seconds (`*_cpu`: what the
    process itself used — the honest figure when other work shares the machine)."""
    pin_one_core()
    clock, cpu = time.perf_counter, time.process_time
    t0, c0 = clock(), cpu()
    if mode == "coding":
        from rules_engine.coding import load_coding, merge_chain
        t1, c1 = clock(), cpu()
        part, problems = load_coding(BASELINE, ROOT)
        coding, _ = merge_chain([part])
        t2, c2 = clock(), cpu()
        print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "load_cpu": c2 - c1, "problems": len(problems),
                          "rows": sum(len(m) for m in coding.maps.values())}))
    elif mode == "baseline":
        from rules_engine.coding import load_chain
        from rules_engine.packs.registry import PackSet
        t1, c1 = clock(), cpu()
        ps = PackSet.load(REGIONS)
        t2, c2 = clock(), cpu()
        pack = ps.select("000000", "2025-06-01")
        coding, _ = load_chain([ps.raws[k].dir for k in pack.chain], ROOT)
        t3, c3 = clock(), cpu()
        print(json.dumps({"import_s": t1 - t0, "packs_s": t2 - t1, "coding_s": t3 - t2, "total_s": t3 - t1,
                          "packs_cpu": c2 - c1, "coding_cpu": c3 - c2, "total_cpu": c3 - c1, "packs": len(ps.raws)}))
    elif mode == "pickle":
        import pickle
        data = Path(extra).read_bytes()
        import rules_engine.coding  # noqa: F401  (the classes, as a cache reader has them imported)
        t1, c1 = clock(), cpu()
        pickle.loads(data)
        t2, c2 = clock(), cpu()
        print(json.dumps({"unpickle_s": t2 - t1, "unpickle_cpu": c2 - c1, "bytes": len(data)}))


def questions() -> dict:
    import tracemalloc
    from rules_engine.coding import load_chain, load_coding, merge_chain
    tracemalloc.start()
    part, _ = load_coding(BASELINE, ROOT)
    coding, _ = merge_chain([part])
    del part
    mem = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    c10, i10 = "icd10:clinical-2.0", "icd10:insurance-2.0"
    codes = list(coding.maps[(c10, i10)].cols.source_code[::37])
    targets = list(coding.maps[(c10, i10)].cols.target_code[::37])
    out = {"memory_bytes": mem}

    def per_call(fn, items, rounds=5) -> float:
        best = []
        for _ in range(rounds):
            t = time.perf_counter()
            for x in items:
                fn(x)
            best.append((time.perf_counter() - t) / len(items))
        return median(best) * 1e6

    out["translate_forward_us"] = per_call(lambda c: coding.translate(c, c10, i10), codes)
    out["translate_reverse_us"] = per_call(lambda c: coding.translate(c, i10, c10), targets)
    claims = [codes[i:i + 5] for i in range(0, len(codes) - 5, 5)]
    out["convert_claim_5_codes_us"] = per_call(lambda cs: coding.convert_diagnoses(cs, "clinical-2.0"), claims)
    items, _ = load_chain([BASELINE, REGIONS / "110000" / "2021.1"], ROOT)
    locals_ = ["ZC0001", "CW0101", "YP0001", "NOPE", "TS0001"] * 200
    out["map_item_us"] = per_call(lambda c: items.map_item(c, "H11010500001", date="2021-06-01"), locals_)
    return out, coding


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--child", choices=["coding", "baseline", "pickle"])
    ap.add_argument("--extra")
    a = ap.parse_args()
    if a.child:
        child(a.child, a.extra)
        return 0
    print(f"machine: {machine_description()}")
    try:
        import os
        print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
              "(above ~1 on 2 cores, wall figures include waiting for other work: read the CPU figures)")
    except OSError:
        pass
    me = str(Path(__file__).resolve())

    heading(f"coding cold (load_coding + merge_chain, fresh process × {a.runs})")
    runs = [run_child(Path(me), ["--child", "coding"])[0] for _ in range(a.runs)]
    load = median([r["load_s"] for r in runs])
    load_cpu = median([r["load_cpu"] for r in runs])
    print(f"rows {runs[0]['rows']:,}, problems {runs[0]['problems']}; import of rules_engine.coding "
          f"{median([r['import_s'] for r in runs]) * 1e3:.0f} ms; load+merge median {load * 1e3:.0f} ms wall "
          f"(min {min(r['load_s'] for r in runs) * 1e3:.0f}, max {max(r['load_s'] for r in runs) * 1e3:.0f}), "
          f"{load_cpu * 1e3:.0f} ms CPU")

    heading(f"every shipped pack + the baseline's coding, cold (fresh process × {a.runs})")
    runs = [run_child(Path(me), ["--child", "baseline"])[0] for _ in range(a.runs)]
    total = median([r["total_s"] for r in runs])
    total_cpu = median([r["total_cpu"] for r in runs])
    print(f"wall: PackSet.load ({runs[0]['packs']} packs) median {median([r['packs_s'] for r in runs]) * 1e3:.0f} ms "
          f"+ coding {median([r['coding_s'] for r in runs]) * 1e3:.0f} ms = {total * 1e3:.0f} ms  "
          f"[{verdict(total, 1.0)} ≤ 1 s]")
    print(f"CPU:  PackSet.load {median([r['packs_cpu'] for r in runs]) * 1e3:.0f} ms + coding "
          f"{median([r['coding_cpu'] for r in runs]) * 1e3:.0f} ms = {total_cpu * 1e3:.0f} ms  "
          f"[{verdict(total_cpu, 1.0)} ≤ 1 s]; "
          f"coding share {median([r['coding_cpu'] / r['total_cpu'] for r in runs]):.0%}")

    heading("questions, pickle, memory (one process)")
    pin_one_core()
    q, coding = questions()
    import pickle
    import tempfile
    with tempfile.NamedTemporaryFile(suffix=".pickle", delete=False) as f:
        f.write(pickle.dumps(coding, protocol=pickle.HIGHEST_PROTOCOL))
        path = f.name
    runs = [run_child(Path(me), ["--child", "pickle", "--extra", path])[0] for _ in range(a.runs)]
    Path(path).unlink()
    unp = median([r["unpickle_s"] for r in runs])
    unp_cpu = median([r["unpickle_cpu"] for r in runs])
    print(f"compiled coding pickled: {runs[0]['bytes'] / 1e6:.1f} MB; unpickle median {unp * 1e3:.0f} ms wall, "
          f"{unp_cpu * 1e3:.0f} ms CPU [{verdict(unp_cpu, 0.1)} ≤ 100 ms]; cold load / unpickle (CPU) = "
          f"{load_cpu / unp_cpu:.1f}×")
    print(f"memory of the compiled coding (tracemalloc): {q['memory_bytes'] / 1e6:.1f} MB")
    for k in ("translate_forward_us", "translate_reverse_us", "convert_claim_5_codes_us", "map_item_us"):
        print(f"{k}: {q[k]:.2f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
