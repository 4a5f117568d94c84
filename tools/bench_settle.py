#!/usr/bin/env python3
"""Benchmark: one 20-line cross-province inpatient claim through three fund layers, parsing included.

    .venv/bin/python tools/bench_settle.py            # full run (5 runs; 20,000 claims of ours per run)
    .venv/bin/python tools/bench_settle.py --quick    # smoke run (1 short run)
    .venv/bin/python tools/bench_settle.py --profile  # also cProfile our path, µs per claim by function

What it measures (issue 3 §9, DESIGN.md §5), pinned to one core:
- **ours**: `engine.settle(claim_dict)` then `.setlinfo()` — the hand-written claim reader, pack
  selection (insured 990100, treated in 980100: another province), pricing 20 lines with the
  treatment place's catalogue, the insured place's three fund layers, the sums of setlinfo;
- the same claim, written natively for what a user might pick instead, timed in the same run:
  (a) durable-rules 2.0.28, every fee line posted as an event to a ruleset that prices it, then a
      claim event whose rule runs the fund layers; (b) GoRules zen-engine (the fast 0.37.x
      binding; the version is printed) with the claim as one JDM decision graph: a catalogue
      decision table in loop mode, then expression nodes; (c) OpenFisca-Core 46.0.1 with the policy
      as a tax-benefit system (fee lines are the persons, the claim the group), one simulation per
      claim;
- every system must agree with ours — and ours with an exact Decimal oracle written here — on the
  key totals, to the fen; a disagreement is printed and the exit status is 1.
The packs are EXAMPLE regions under tools/bench_packs/ (invented figures, not any region's policy).
A missing alternative (zen-engine and openfisca-core come with the `bench` extra) is skipped with
a notice. Targets: p50 ≤ 100 µs, p99 ≤ 500 µs, ≥ 2× faster than each alternative.
"""
from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_common import (ROOT, heading, load_average, machine_description, median, percentile,  # noqa: E402
                           pin_one_core, verdict)

BENCH_PACKS = Path(__file__).resolve().parent / "bench_packs"
INSURED, TREATMENT = "990100", "980100"
TARGET_P50_US, TARGET_P99_US, TARGET_RATIO = 100.0, 500.0, 2.0

# ------------------------------------------------------------------ the claim

# (feedetl_sn, national code, cnt, pric) — 12 甲, 5 乙 (10 % self-pay), 3 丙; two binding ceilings
# (the stent, 甲, and paclitaxel, 乙, which also carries a restriction that holds at a tier-3
# hospital); omeprazole 4.25 × 10 % = 0.425: the half-fen case (half-up 0.43, half-even 0.42).
LINES: list[tuple[str, str, str, str]] = [
    ("1", "001102000010000", "10", "20.00"),            # 住院诊查费 甲
    ("2", "001109000990000", "10", "60.00"),            # 床位费 甲 (an example code: the real 001109000020000 is limited to 1 a day by the 两库, and this line bills 10 days at once)
    ("3", "001202000030000", "10", "30.00"),            # 护理费 甲
    ("4", "002206000050000", "2", "450.00"),            # CT 甲
    ("5", "003306000060000", "1", "6800.00"),           # 髋关节置换术 甲
    ("6", "003302000070000", "1", "2200.00"),           # 全身麻醉 甲
    ("7", "XB01ABH001B002010100001", "5", "45.60"),     # 肝素钠 甲
    ("8", "XJ01CAA001A001010100002", "30", "1.25"),     # 阿莫西林 甲
    ("9", "XN02BEA001A001010100007", "6", "0.35"),      # 对乙酰氨基酚 甲
    ("10", "C0301010010100100001", "1", "9800.00"),     # 支架 甲, ceiling 8,500 → 1,300 超限价
    ("11", "C1402010020200200002", "1", "56000.00"),    # 髋关节假体 甲
    ("12", "C0201010030300300003", "20", "3.50"),       # 输液器 甲
    ("13", "002207000080000", "2", "160.35"),           # 彩超 乙
    ("14", "XJ01DCT002E001010100003", "14", "86.50"),   # 头孢呋辛 乙
    ("15", "XL01CDZ001D001010100004", "2", "1280.00"),  # 紫杉醇 乙, ceiling 1,150.50, 限二级及以上
    ("16", "XA02BCA001A001010100005", "1", "4.25"),     # 奥美拉唑 乙, half-fen 先行自付
    ("17", "C0505010040400400004", "1", "3260.00"),     # 吻合器 乙
    ("18", "003105000090000", "4", "300.00"),           # 康复训练 丙
    ("19", "ZA12BAX0001010100006", "1", "680.00"),      # 中成药 丙
    ("20", "C1001010050500500005", "2", "150.00"),      # 止血材料 丙
]
# the person's year so far: a first admission already settled
ACCUMULATORS = {"admissions_year": Decimal("1"), "inpatient_inscp_year": Decimal("24123.45"),
                "pool_fund_year": Decimal("18000.00"), "large_fund_year": Decimal("0")}


def build_claim() -> dict[str, Any]:
    """The claim as a gateway holds it after `json.loads(text, parse_float=Decimal)`."""
    feed = []
    for sn, code, cnt, pric in LINES:
        c, p = Decimal(cnt), Decimal(pric)
        feed.append({"feedetl_sn": sn, "med_list_codg": code, "cnt": c, "pric": p,
                     "det_item_fee_sumamt": (c * p).quantize(Decimal("0.01")),
                     "fee_ocur_time": "2025-03-10 09:00:00"})
    return {
        "insuplc_admdvs": INSURED, "mdtrtarea_admvs": TREATMENT, "insutype": "310", "psn_type": "1102",
        "insutype_retr_flag": "1", "med_type": "21", "age": 68, "gend": "1", "hosp_lv": "3",
        "setl_time": "2025-03-18 10:30:00", "begntime": "2025-03-08 08:00:00",
        "filing_type": "other_temporary", "mdtrt_id": "BENCH-0001", "psn_no": "BENCH-PSN",
        "diseinfo": [{"diag_code": "M16.101", "diag_name": "髋关节骨关节炎（示例）", "maindiag_flag": "1"}],
        "feedetail": feed, "accumulators": dict(ACCUMULATORS),
    }


KEY_FIELDS = ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt",
              "act_pay_dedc", "hifp_pay", "hifob_pay", "oth_pay", "fund_pay_sumamt", "psn_part_amt")

# ------------------------------------------------------------------ the policy, as the alternatives encode it
# The same figures as tools/bench_packs/990100/2025.1/policy.yaml and the 980100 catalogue, written
# once more by hand the way a user of another engine would; amounts in fen, ratios in ppm.

POLICY = {
    "selfpay_b": 100_000,                                # 乙类 先行自付 10 % (treatment place)
    "deductible_first": 130_000, "deductible_later": 65_000,
    "pool_edges": (3_000_000, 4_000_000, 10_000_000),    # cumulative in-scope band edges
    "pool_ratios": {"3": (850_000, 900_000, 950_000), "other": (870_000, 920_000, 970_000)},
    "retired_self_share_times": 600_000,
    "pool_cap_year": 10_000_000,
    "large_from": 10_000_000, "large_to": 40_000_000, "large_ratio": 850_000, "large_cap_year": 30_000_000,
    "supp_ratio": 500_000, "supp_cap_claim": 200_000,
    "cuts": {"other_temporary": 100_000, "unfiled": 200_000},  # ratio_minus on the basic pool, cross-province
    "inpatient": ("21", "23", "24", "28"),
}


def load_catalogue() -> dict[str, dict[str, Any]]:
    """The treatment place's catalogue as a plain lookup (code → class, ceiling in micro-yuan, restriction)."""
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for f in sorted((BENCH_PACKS / TREATMENT / "2025.1" / "catalogue").glob("*.yaml")):
        for e in yaml.safe_load(f.read_text(encoding="utf-8"))["entries"]:
            ceil = e.get("pric_uplmt_amt")
            out[e["code"]] = {"cat": e["category"],
                              "ceil": int(Decimal(str(ceil)) * 1_000_000) if ceil is not None else None,
                              "restr": "LV2" if "BENCH-LV2" in (e.get("restrictions") or []) else ""}
    return out


def _half_up(n: int, d: int) -> int:
    """n / d rounded half-up (n ≥ 0) — written here, not imported, so the oracle stays independent."""
    q, r = divmod(n, d)
    return q + (1 if 2 * r >= d else 0)


def _fen(d: Decimal, scale: int = 100) -> int:
    v = d * scale
    if v != v.to_integral_value():
        raise ValueError(f"{d} has more decimals than the scale {scale}")
    return int(v)


def _fields(**kw: int) -> dict[str, int]:
    return {k: int(kw[k]) for k in KEY_FIELDS}


# ------------------------------------------------------------------ exact oracle (plain Python, integers)

def oracle(claim: dict, cat: dict[str, dict]) -> dict[str, int]:
    """The policy computed directly: the reference every system must match to the fen."""
    P = POLICY
    lv = claim["hosp_lv"]
    medfee = fulamt = overlmt = pre = 0
    for ln in claim["feedetail"]:
        amt = _fen(ln["det_item_fee_sumamt"])
        pric = _fen(ln["pric"], 1_000_000)
        cnt = _fen(ln["cnt"], 10_000)
        e = cat.get(ln["med_list_codg"])
        medfee += amt
        if e is None or e["cat"] == "丙" or (e["restr"] == "LV2" and lv not in ("2", "3")):
            fulamt += amt
            continue
        over = 0
        if e["ceil"] is not None and pric > e["ceil"]:
            over = min(amt, _half_up((pric - e["ceil"]) * cnt, 10**8))
        overlmt += over
        if e["cat"] == "乙":
            pre += _half_up((amt - over) * P["selfpay_b"], 10**6)
    inscp = medfee - fulamt - overlmt - pre
    acc = {k: _fen(v) for k, v in claim["accumulators"].items()}
    retired = claim.get("insutype_retr_flag") == "1"
    on = claim["insutype"] == "310" and claim["med_type"] in P["inpatient"]
    cross_prov = claim["insuplc_admdvs"][:2] != claim["mdtrtarea_admvs"][:2]
    cut = P["cuts"].get(claim.get("filing_type") or "unfiled", 0) if cross_prov else 0
    pool = large = supp = ded = 0
    if on:
        seq = acc["admissions_year"] // 100 + 1
        ded = min(inscp, P["deductible_first"] if seq == 1 else P["deductible_later"])
        pos = acc["inpatient_inscp_year"]
        lo, hi = pos + ded, pos + inscp
        exact, edge = 0, 0
        for up, r in zip(P["pool_edges"], P["pool_ratios"]["3" if lv == "3" else "other"]):
            if retired:
                r = 10**6 - _half_up((10**6 - r) * P["retired_self_share_times"], 10**6)
            r = max(0, r - cut)
            exact += max(0, min(hi, up) - max(lo, edge)) * r
            edge = up
        pool = min(_half_up(exact, 10**6), max(0, P["pool_cap_year"] - acc["pool_fund_year"]), inscp)
        seg = max(0, min(pos + inscp, P["large_to"]) - max(pos, P["large_from"]))
        large = min(_half_up(seg * P["large_ratio"], 10**6), max(0, P["large_cap_year"] - acc["large_fund_year"]),
                    max(0, inscp - pool))
        if retired:
            base = max(0, inscp + pre - pool - large)
            supp = min(_half_up(base * P["supp_ratio"], 10**6), P["supp_cap_claim"], base)
    fund = pool + large + supp
    return _fields(medfee_sumamt=medfee, fulamt_ownpay_amt=fulamt, overlmt_selfpay=overlmt, preselfpay_amt=pre,
                   inscp_scp_amt=inscp, act_pay_dedc=ded, hifp_pay=pool, hifob_pay=large, oth_pay=supp,
                   fund_pay_sumamt=fund, psn_part_amt=medfee - fund)


# ------------------------------------------------------------------ ours

def make_ours(tmp: Path) -> tuple[Callable[[dict], Any], Callable[[Any], dict[str, int]], Any]:
    """An engine over a copy of the shipped baseline + the example packs; (settle, key totals, engine)."""
    from rules_engine import Engine

    root = tmp / "packs"
    shutil.copytree(ROOT / "regions" / "000000", root / "000000")
    for r in (INSURED, TREATMENT):
        shutil.copytree(BENCH_PACKS / r, root / r)
    engine = Engine.from_directory(root, cache=False)

    def settle(claim: dict) -> Any:
        s = engine.settle(claim)
        s.setlinfo()  # the national output fields, as a gateway would read them
        return s

    def totals(s: Any) -> dict[str, int]:
        info = s.setlinfo()
        return {k: _fen(info[k]) for k in KEY_FIELDS}

    return settle, totals, engine


# ------------------------------------------------------------------ (a) durable-rules

def make_durable(cat: dict[str, dict], policy: dict = POLICY) -> tuple[Callable[[dict], dict[str, int]], str]:
    """Each fee line is posted as an event; rules price it; a claim event's rule runs the fund layers.

    Traps met: numbers inside durable-rules are C doubles, so every amount travels as an integer
    of fen / micro-yuan (exact below 2^53) and the actions compute in Python integers; an event
    that no rule matches raises MessageNotHandledException, so every event kind has a rule.
    """
    from importlib.metadata import version

    from durable.lang import m, post, ruleset, when_all

    P = policy
    state: dict[str, dict[str, int]] = {}
    name = f"bench_settle_{os.getpid()}"

    def acc(c: Any) -> dict[str, int]:
        return state[c.m.claim]

    with ruleset(name):
        @when_all((m.kind == "line") & ((m.cat == "none") | (m.cat == "丙")))
        def ownpay(c):  # not listed, or 丙类: 全自费
            s = acc(c)
            s["medfee"] += c.m.amount
            s["fulamt"] += c.m.amount

        @when_all((m.kind == "line") & (m.restr == "LV2") & (m.hosp_lv != "2") & (m.hosp_lv != "3"))
        def restriction_unmet(c):
            s = acc(c)
            s["medfee"] += c.m.amount
            s["fulamt"] += c.m.amount

        @when_all((m.kind == "line") & ((m.cat == "甲") | (m.cat == "乙")) & (m.ceil > 0) & (m.pric > m.ceil)
                  & ((m.restr == "") | (m.hosp_lv == "2") | (m.hosp_lv == "3")))
        def over_ceiling(c):
            s = acc(c)
            amt = int(c.m.amount)
            over = min(amt, _half_up((int(c.m.pric) - int(c.m.ceil)) * int(c.m.cnt), 10**8))
            s["medfee"] += amt
            s["overlmt"] += over
            if c.m.cat == "乙":
                s["pre"] += _half_up((amt - over) * P["selfpay_b"], 10**6)

        @when_all((m.kind == "line") & ((m.cat == "甲") | (m.cat == "乙")) & ((m.ceil == 0) | (m.pric <= m.ceil))
                  & ((m.restr == "") | (m.hosp_lv == "2") | (m.hosp_lv == "3")))
        def within_ceiling(c):
            s = acc(c)
            amt = int(c.m.amount)
            s["medfee"] += amt
            if c.m.cat == "乙":
                s["pre"] += _half_up(amt * P["selfpay_b"], 10**6)

        @when_all((m.kind == "claim") & (m.insutype == "310") & ((m.med_type == "21") | (m.med_type == "23")
                                                                 | (m.med_type == "24") | (m.med_type == "28")))
        def employee_inpatient(c):
            s = acc(c)
            medfee, fulamt, overlmt, pre = s["medfee"], s["fulamt"], s["overlmt"], s["pre"]
            inscp = medfee - fulamt - overlmt - pre
            retired = c.m.retired == "1"
            cut = P["cuts"].get(c.m.filing, 0) if c.m.cross_province else 0
            seq = int(c.m.admissions) + 1
            ded = min(inscp, P["deductible_first"] if seq == 1 else P["deductible_later"])
            pos = int(c.m.position)
            lo, hi = pos + ded, pos + inscp
            exact, edge = 0, 0
            for up, r in zip(P["pool_edges"], P["pool_ratios"]["3" if c.m.hosp_lv == "3" else "other"]):
                if retired:
                    r = 10**6 - _half_up((10**6 - r) * P["retired_self_share_times"], 10**6)
                r = max(0, r - cut)
                exact += max(0, min(hi, up) - max(lo, edge)) * r
                edge = up
            pool = min(_half_up(exact, 10**6), max(0, P["pool_cap_year"] - int(c.m.pool_fund)), inscp)
            seg = max(0, min(hi, P["large_to"]) - max(pos, P["large_from"]))
            large = min(_half_up(seg * P["large_ratio"], 10**6),
                        max(0, P["large_cap_year"] - int(c.m.large_fund)), max(0, inscp - pool))
            supp = 0
            if retired:
                base = max(0, inscp + pre - pool - large)
                supp = min(_half_up(base * P["supp_ratio"], 10**6), P["supp_cap_claim"], base)
            s.update(inscp=inscp, ded=ded, pool=pool, large=large, supp=supp)

        @when_all(m.kind == "claim")
        def no_benefit(c):
            s = acc(c)
            s.update(inscp=s["medfee"] - s["fulamt"] - s["overlmt"] - s["pre"], ded=0, pool=0, large=0, supp=0)

    seq = [0]

    def run(claim: dict) -> dict[str, int]:
        seq[0] += 1
        cid = f"c{seq[0]}"
        state[cid] = {"medfee": 0, "fulamt": 0, "overlmt": 0, "pre": 0}
        lv = claim["hosp_lv"]
        for ln in claim["feedetail"]:
            e = cat.get(ln["med_list_codg"])
            post(name, {"kind": "line", "claim": cid, "hosp_lv": lv, "cat": e["cat"] if e else "none",
                        "ceil": (e["ceil"] or 0) if e else 0, "restr": e["restr"] if e else "",
                        "amount": _fen(ln["det_item_fee_sumamt"]), "pric": _fen(ln["pric"], 1_000_000),
                        "cnt": _fen(ln["cnt"], 10_000)})
        a = {k: _fen(v) for k, v in claim["accumulators"].items()}
        post(name, {"kind": "claim", "claim": cid, "insutype": claim["insutype"], "med_type": claim["med_type"],
                    "hosp_lv": lv, "retired": claim.get("insutype_retr_flag", "0"),
                    "filing": claim.get("filing_type") or "unfiled",
                    "cross_province": claim["insuplc_admdvs"][:2] != claim["mdtrtarea_admvs"][:2],
                    "admissions": a["admissions_year"] // 100, "position": a["inpatient_inscp_year"],
                    "pool_fund": a["pool_fund_year"], "large_fund": a["large_fund_year"]})
        s = state.pop(cid)
        fund = s["pool"] + s["large"] + s["supp"]
        return _fields(medfee_sumamt=s["medfee"], fulamt_ownpay_amt=s["fulamt"], overlmt_selfpay=s["overlmt"],
                       preselfpay_amt=s["pre"], inscp_scp_amt=s["inscp"], act_pay_dedc=s["ded"], hifp_pay=s["pool"],
                       hifob_pay=s["large"], oth_pay=s["supp"], fund_pay_sumamt=fund,
                       psn_part_amt=s["medfee"] - fund)

    return run, f"durable-rules {version('durable_rules')}"


# ------------------------------------------------------------------ (b) zen-engine

def _zen_graph(cat: dict[str, dict], policy: dict = POLICY) -> dict:
    """The claim as one JDM graph: catalogue table (loop over lines) → expression nodes → output.

    Traps met: zen's round() is half-to-even with no places argument, so half-up is written
    floor(x + 0.5) on integers of fen; inside one expression node a key cannot read another key of
    the same node, hence a chain of nodes; min/max take a list.
    """
    P = policy
    nodes: list[dict] = [{"id": "in", "type": "inputNode", "name": "request", "position": {"x": 0, "y": 0}}]
    rules = []
    for i, (code, e) in enumerate(cat.items()):
        rules.append({"_id": f"r{i}", "i_code": json.dumps(code), "o_cat": json.dumps(e["cat"], ensure_ascii=False),
                      "o_ceil": str(e["ceil"]) if e["ceil"] is not None else "null",
                      "o_restr": json.dumps(e["restr"]),
                      "o_sp": str(P["selfpay_b"] if e["cat"] == "乙" else 0)})
    rules.append({"_id": "rz", "i_code": "", "o_cat": '"none"', "o_ceil": "null", "o_restr": '""', "o_sp": "0"})
    nodes.append({"id": "catalogue", "type": "decisionTableNode", "name": "catalogue", "position": {"x": 0, "y": 0},
                  "content": {"hitPolicy": "first", "executionMode": "loop", "inputField": "lines",
                              "outputPath": "priced", "passThrough": True,
                              "inputs": [{"id": "i_code", "name": "code", "field": "code"}],
                              "outputs": [{"id": f"o_{k}", "name": k, "field": k} for k in ("cat", "ceil", "restr", "sp")],
                              "rules": rules}})
    ok = "((#.cat == '甲' or #.cat == '乙') and (#.restr == '' or hosp_lv == '2' or hosp_lv == '3'))"
    over = "(#.ceil != null and #.pric > #.ceil ? min([#.amount, floor((#.pric - #.ceil) * #.cnt / 100000000 + 0.5)]) : 0)"
    inpatient = "[" + ", ".join(f"'{t}'" for t in P["inpatient"]) + "]"
    r3, ro = P["pool_ratios"]["3"], P["pool_ratios"]["other"]
    t = P["retired_self_share_times"]

    def adj(r: str) -> str:
        return f"max([0, (retired == '1' ? 1000000 - floor((1000000 - {r}) * {t} / 1000000 + 0.5) : {r}) - cut])"

    e1, e2, e3 = P["pool_edges"]

    def seg(a: int, b: int) -> str:
        return f"max([0, min([hi, {b}]) - max([lo, {a}])])"

    stages = [
        [("fulamt_l", f"map(priced, {ok} ? 0 : #.amount)"), ("over_l", f"map(priced, {ok} ? {over} : 0)"),
         ("pre_l", f"map(priced, {ok} and #.sp > 0 ? floor((#.amount - {over}) * #.sp / 1000000 + 0.5) : 0)"),
         ("medfee", "sum(map(priced, #.amount))"),
         ("on", f"insutype == '310' and med_type in {inpatient}"),
         ("cut", f"insuplc[0:2] != mdtrtarea[0:2] ? (filing == 'other_temporary' ? {P['cuts']['other_temporary']}"
                 f" : (filing == 'unfiled' ? {P['cuts']['unfiled']} : 0)) : 0"),
         ("r_1", f"hosp_lv == '3' ? {r3[0]} : {ro[0]}"), ("r_2", f"hosp_lv == '3' ? {r3[1]} : {ro[1]}"),
         ("r_3", f"hosp_lv == '3' ? {r3[2]} : {ro[2]}"),
         ("ded_amount", f"acc.admissions_year + 1 == 1 ? {P['deductible_first']} : {P['deductible_later']}")],
        [("fulamt", "sum(fulamt_l)"), ("overlmt", "sum(over_l)"), ("pre", "sum(pre_l)"),
         ("a_1", adj("r_1")), ("a_2", adj("r_2")), ("a_3", adj("r_3"))],
        [("inscp", "medfee - fulamt - overlmt - pre")],
        [("ded", "on ? min([inscp, ded_amount]) : 0")],
        [("lo", "acc.inpatient_inscp_year + ded"), ("hi", "acc.inpatient_inscp_year + inscp")],
        [("exact", f"{seg(0, e1)} * a_1 + {seg(e1, e2)} * a_2 + {seg(e2, e3)} * a_3"),
         ("large_seg", f"max([0, min([hi, {P['large_to']}]) - max([acc.inpatient_inscp_year, {P['large_from']}])])")],
        [("pool", f"on ? min([floor(exact / 1000000 + 0.5), max([0, {P['pool_cap_year']} - acc.pool_fund_year]),"
                  " inscp]) : 0")],
        [("large", f"on ? min([floor(large_seg * {P['large_ratio']} / 1000000 + 0.5), "
                   f"max([0, {P['large_cap_year']} - acc.large_fund_year]), max([0, inscp - pool])]) : 0")],
        [("supp_base", "max([0, inscp + pre - pool - large])")],
        [("supp", f"on and retired == '1' ? min([floor(supp_base * {P['supp_ratio']} / 1000000 + 0.5), "
                  f"{P['supp_cap_claim']}, supp_base]) : 0")],
        [("fund", "pool + large + supp")],
        [("psn_part", "medfee - fund")],
    ]
    for i, exprs in enumerate(stages):
        nodes.append({"id": f"x{i}", "type": "expressionNode", "name": f"step{i}", "position": {"x": 0, "y": 0},
                      "content": {"passThrough": True,
                                  "expressions": [{"id": f"x{i}_{k}", "key": k, "value": v} for k, v in exprs]}})
    nodes.append({"id": "out", "type": "outputNode", "name": "response", "position": {"x": 0, "y": 0}})
    ids = [n["id"] for n in nodes]
    edges = [{"id": f"e{i}", "sourceId": a, "targetId": b, "type": "edge"} for i, (a, b) in enumerate(zip(ids, ids[1:]))]
    return {"nodes": nodes, "edges": edges}


def make_zen(cat: dict[str, dict], policy: dict = POLICY) -> tuple[Callable[[dict], dict[str, int]], str]:
    from importlib.metadata import version

    import zen

    decision = zen.ZenEngine().create_decision(json.dumps(_zen_graph(cat, policy), ensure_ascii=False))

    def run(claim: dict) -> dict[str, int]:
        ctx = {
            "lines": [{"code": ln["med_list_codg"], "amount": _fen(ln["det_item_fee_sumamt"]),
                       "pric": _fen(ln["pric"], 1_000_000), "cnt": _fen(ln["cnt"], 10_000)}
                      for ln in claim["feedetail"]],
            "hosp_lv": claim["hosp_lv"], "insutype": claim["insutype"], "med_type": claim["med_type"],
            "retired": claim.get("insutype_retr_flag", "0"), "filing": claim.get("filing_type") or "unfiled",
            "insuplc": claim["insuplc_admdvs"], "mdtrtarea": claim["mdtrtarea_admvs"],
            "acc": {k: _fen(v) // (100 if k == "admissions_year" else 1) for k, v in claim["accumulators"].items()},
        }
        r = decision.evaluate(ctx)["result"]
        return _fields(medfee_sumamt=r["medfee"], fulamt_ownpay_amt=r["fulamt"], overlmt_selfpay=r["overlmt"],
                       preselfpay_amt=r["pre"], inscp_scp_amt=r["inscp"], act_pay_dedc=r["ded"], hifp_pay=r["pool"],
                       hifob_pay=r["large"], oth_pay=r["supp"], fund_pay_sumamt=r["fund"],
                       psn_part_amt=r["psn_part"])

    return run, f"zen-engine {version('zen-engine')}"


# ------------------------------------------------------------------ (c) OpenFisca

def make_openfisca(cat: dict[str, dict], policy: dict = POLICY) -> tuple[Callable[[dict], dict[str, int]], str]:
    """The policy as an OpenFisca tax-benefit system; one simulation per claim.

    Traps met: `float` variables are float32 and `int` ones int32, so amounts are int32 fen
    (prices too: micro-yuan would overflow int32 — fine here, every price has ≤ 2 decimals, which
    is checked) and every product is computed in int64 inside the formulas; group sums come back
    as float64 and are rounded back to integers; ratios are parameters read as floats and turned
    into ppm integers once.
    """
    from importlib.metadata import version

    import numpy as np
    from openfisca_core.entities import build_entity
    from openfisca_core.parameters import ParameterNode
    from openfisca_core.periods import DateUnit
    from openfisca_core.simulations import SimulationBuilder
    from openfisca_core.taxbenefitsystems import TaxBenefitSystem
    from openfisca_core.variables import Variable

    P = policy
    Line = build_entity(key="line", plural="lines", label="fee line", is_person=True)
    Claim = build_entity(key="claim", plural="claims", label="claim",
                         roles=[{"key": "item", "plural": "items", "label": "fee line"}])
    YEAR = DateUnit.YEAR
    i64 = np.int64

    def ppm(x: Any) -> int:
        return int(round(float(x) * 1_000_000))

    def half_up(n: Any, d: int) -> Any:
        q, r = np.divmod(n, d)
        return q + (2 * r >= d)

    def var(name: str, entity: Any, vtype: type = int, formula: Callable | None = None) -> type:
        attrs: dict[str, Any] = {"value_type": vtype, "entity": entity, "definition_period": YEAR, "label": name}
        if formula is not None:
            attrs["formula"] = formula
        return type(name, (Variable,), attrs)

    # line inputs: class (0 unlisted, 1 甲, 2 乙, 3 丙), amounts in fen, cnt in 1/10,000, restriction flag
    def l_ok(line, period, parameters):
        lv = line.claim("hosp_lv", period)
        c = line("l_cat", period)
        return ((c == 1) | (c == 2)) & ((line("l_restr", period) == 0) | (lv == 2) | (lv == 3))

    def l_over(line, period, parameters):
        ceil = line("l_ceil", period).astype(i64)
        pric = line("l_pric", period).astype(i64)
        amt = line("l_amount", period).astype(i64)
        over = np.minimum(amt, half_up((pric - ceil) * line("l_cnt", period).astype(i64), 10_000))
        return np.where(line("l_ok", period) & (ceil > 0) & (pric > ceil), over, 0)

    def l_pre(line, period, parameters):
        sp = ppm(parameters(period).bench.selfpay_b)
        base = line("l_amount", period).astype(i64) - line("l_over", period).astype(i64)
        return np.where(line("l_ok", period) & (line("l_cat", period) == 2), half_up(base * sp, 1_000_000), 0)

    def l_fulamt(line, period, parameters):
        return np.where(line("l_ok", period), 0, line("l_amount", period))

    def total(v: str) -> Callable:
        return lambda claim, period, parameters: np.rint(claim.sum(claim.members(v, period))).astype(i64)

    def inscp(claim, period, parameters):
        return (claim("medfee_sumamt", period).astype(i64) - claim("fulamt_ownpay_amt", period)
                - claim("overlmt_selfpay", period) - claim("preselfpay_amt", period))

    def on(claim, period, parameters):
        mt = claim("med_type", period)
        return (claim("insutype", period) == 310) & np.isin(mt, [int(x) for x in P["inpatient"]])

    def act_pay_dedc(claim, period, parameters):
        p = parameters(period).bench.pool
        seq = claim("acc_admissions", period) + 1
        amount = np.where(seq == 1, int(p.deductible_first * 100), int(p.deductible_later * 100))
        return np.where(claim("on", period), np.minimum(claim("inscp_scp_amt", period), amount), 0)

    def hifp_pay(claim, period, parameters):
        p = parameters(period).bench.pool
        inscp_ = claim("inscp_scp_amt", period).astype(i64)
        pos = claim("acc_position", period).astype(i64)
        lo, hi = pos + claim("act_pay_dedc", period), pos + inscp_
        lv3 = claim("hosp_lv", period) == 3
        retired = claim("retired", period)
        cross = (claim("insuplc", period) // 10_000) != (claim("mdtrtarea", period) // 10_000)
        filing = claim("filing", period)  # 1 other_temporary, 2 unfiled, 0 filed otherwise
        cut = np.where(cross, np.where(filing == 1, ppm(parameters(period).bench.cut_other_temporary),
                                       np.where(filing == 2, ppm(parameters(period).bench.cut_unfiled), 0)), 0)
        t = ppm(p.retired_self_share_times)
        exact = np.zeros_like(inscp_)
        edge = 0
        for k in (1, 2, 3):
            up = int(getattr(p, f"edge_{k}") * 100)
            r = np.where(lv3, ppm(getattr(p, f"ratio_lv3_{k}")), ppm(getattr(p, f"ratio_other_{k}"))).astype(i64)
            r = np.where(retired, 1_000_000 - half_up((1_000_000 - r) * t, 1_000_000), r)
            r = np.maximum(0, r - cut)
            exact += np.maximum(0, np.minimum(hi, up) - np.maximum(lo, edge)) * r
            edge = up
        cap = int(p.cap_year * 100) - claim("acc_pool_fund", period).astype(i64)
        pay = np.minimum(np.minimum(half_up(exact, 1_000_000), np.maximum(0, cap)), inscp_)
        return np.where(claim("on", period), pay, 0)

    def hifob_pay(claim, period, parameters):
        p = parameters(period).bench.large
        inscp_ = claim("inscp_scp_amt", period).astype(i64)
        pos = claim("acc_position", period).astype(i64)
        seg = np.maximum(0, np.minimum(pos + inscp_, int(p.to * 100)) - np.maximum(pos, int(getattr(p, "from") * 100)))
        cap = np.maximum(0, int(p.cap_year * 100) - claim("acc_large_fund", period).astype(i64))
        pay = np.minimum(np.minimum(half_up(seg * ppm(p.ratio), 1_000_000), cap),
                         np.maximum(0, inscp_ - claim("hifp_pay", period)))
        return np.where(claim("on", period), pay, 0)

    def oth_pay(claim, period, parameters):
        p = parameters(period).bench.supplement
        base = np.maximum(0, claim("inscp_scp_amt", period).astype(i64) + claim("preselfpay_amt", period)
                          - claim("hifp_pay", period) - claim("hifob_pay", period))
        pay = np.minimum(np.minimum(half_up(base * ppm(p.ratio), 1_000_000), int(p.cap_claim * 100)), base)
        return np.where(claim("on", period) & claim("retired", period), pay, 0)

    def fund(claim, period, parameters):
        return claim("hifp_pay", period) + claim("hifob_pay", period) + claim("oth_pay", period)

    def psn(claim, period, parameters):
        return claim("medfee_sumamt", period) - claim("fund_pay_sumamt", period)

    variables = [
        var("l_cat", Line), var("l_amount", Line), var("l_pric", Line), var("l_cnt", Line), var("l_ceil", Line),
        var("l_restr", Line), var("l_ok", Line, bool, l_ok), var("l_over", Line, int, l_over),
        var("l_pre", Line, int, l_pre), var("l_fulamt", Line, int, l_fulamt),
        var("hosp_lv", Claim), var("retired", Claim, bool), var("insutype", Claim), var("med_type", Claim),
        var("insuplc", Claim), var("mdtrtarea", Claim), var("filing", Claim), var("acc_admissions", Claim),
        var("acc_position", Claim), var("acc_pool_fund", Claim), var("acc_large_fund", Claim),
        var("medfee_sumamt", Claim, int, total("l_amount")), var("fulamt_ownpay_amt", Claim, int, total("l_fulamt")),
        var("overlmt_selfpay", Claim, int, total("l_over")), var("preselfpay_amt", Claim, int, total("l_pre")),
        var("inscp_scp_amt", Claim, int, inscp), var("on", Claim, bool, on),
        var("act_pay_dedc", Claim, int, act_pay_dedc), var("hifp_pay", Claim, int, hifp_pay),
        var("hifob_pay", Claim, int, hifob_pay), var("oth_pay", Claim, int, oth_pay),
        var("fund_pay_sumamt", Claim, int, fund), var("psn_part_amt", Claim, int, psn),
    ]
    tbs = TaxBenefitSystem([Line, Claim])
    tbs.add_variables(*variables)

    def value(x: float) -> dict:
        return {"values": {"2025-01-01": x}}

    edges, r3, ro = P["pool_edges"], P["pool_ratios"]["3"], P["pool_ratios"]["other"]
    pool = {"deductible_first": value(P["deductible_first"] / 100), "deductible_later": value(P["deductible_later"] / 100),
            "retired_self_share_times": value(P["retired_self_share_times"] / 1e6),
            "cap_year": value(P["pool_cap_year"] / 100)}
    for k in (1, 2, 3):
        pool[f"edge_{k}"] = value(edges[k - 1] / 100)
        pool[f"ratio_lv3_{k}"] = value(r3[k - 1] / 1e6)
        pool[f"ratio_other_{k}"] = value(ro[k - 1] / 1e6)
    tbs.parameters = ParameterNode("", data={"bench": {
        "selfpay_b": value(P["selfpay_b"] / 1e6),
        "cut_other_temporary": value(P["cuts"]["other_temporary"] / 1e6),
        "cut_unfiled": value(P["cuts"]["unfiled"] / 1e6),
        "pool": pool,
        "large": {"from": value(P["large_from"] / 100), "to": value(P["large_to"] / 100),
                  "ratio": value(P["large_ratio"] / 1e6), "cap_year": value(P["large_cap_year"] / 100)},
        "supplement": {"ratio": value(P["supp_ratio"] / 1e6), "cap_claim": value(P["supp_cap_claim"] / 100)},
    }})
    CAT = {"甲": 1, "乙": 2, "丙": 3}
    FILING = {"other_temporary": 1, "unfiled": 2}
    period = "2025"
    outputs = ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt",
               "act_pay_dedc", "hifp_pay", "hifob_pay", "oth_pay", "fund_pay_sumamt", "psn_part_amt")

    def run(claim: dict) -> dict[str, int]:
        lines = claim["feedetail"]
        n = len(lines)
        sb = SimulationBuilder()
        sb.create_entities(tbs)
        sb.declare_person_entity("line", [f"l{i}" for i in range(n)])
        group = sb.declare_entity("claim", ["c"])
        sb.join_with_persons(group, ["c"] * n, ["item"] * n)
        sim = sb.build(tbs)
        cats, amts, prics, cnts, ceils, restrs = [], [], [], [], [], []
        for ln in lines:
            e = cat.get(ln["med_list_codg"])
            cats.append(CAT[e["cat"]] if e else 0)
            amts.append(_fen(ln["det_item_fee_sumamt"]))
            prics.append(_fen(ln["pric"]))  # raises if a price has more than 2 decimals (int32 fen only)
            cnts.append(_fen(ln["cnt"], 10_000))
            ceils.append(_fen(Decimal(e["ceil"]) / 1_000_000) if e and e["ceil"] is not None else 0)
            restrs.append(1 if e and e["restr"] else 0)
        for v, data in (("l_cat", cats), ("l_amount", amts), ("l_pric", prics), ("l_cnt", cnts), ("l_ceil", ceils),
                        ("l_restr", restrs)):
            sim.set_input(v, period, np.array(data, dtype=np.int32))
        a = {k: _fen(v) for k, v in claim["accumulators"].items()}
        for v, x in (("hosp_lv", int(claim["hosp_lv"])), ("retired", claim.get("insutype_retr_flag") == "1"),
                     ("insutype", int(claim["insutype"])), ("med_type", int(claim["med_type"])),
                     ("insuplc", int(claim["insuplc_admdvs"])), ("mdtrtarea", int(claim["mdtrtarea_admvs"])),
                     ("filing", FILING.get(claim.get("filing_type") or "unfiled", 0)),
                     ("acc_admissions", a["admissions_year"] // 100), ("acc_position", a["inpatient_inscp_year"]),
                     ("acc_pool_fund", a["pool_fund_year"]), ("acc_large_fund", a["large_fund_year"])):
            sim.set_input(v, period, np.array([x]))
        return {k: int(sim.calculate(k, period)[0]) for k in outputs}

    return run, f"OpenFisca-Core {version('openfisca-core')}"


# ------------------------------------------------------------------ timing

def time_calls(fn: Callable[[dict], Any], claim: dict, n: int) -> dict[str, float]:
    """n calls, each timed alone: p50 / p99 in µs and claims per second over the whole loop."""
    per = [0] * n
    clock = time.perf_counter_ns
    t_start = clock()
    for i in range(n):
        t0 = clock()
        fn(claim)
        per[i] = clock() - t0
    total = clock() - t_start
    per.sort()
    return {"p50": percentile(per, 50) / 1000, "p99": percentile(per, 99) / 1000, "cps": n / (total / 1e9)}


def profile_ours(settle: Callable[[dict], Any], claim: dict, n: int) -> str:
    """cProfile over n claims; µs per claim for the rules_engine functions that cost most."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    gc.collect()
    gc.disable()  # a collection's pause would be charged to whichever function happened to trigger it
    try:
        prof.enable()
        for _ in range(n):
            settle(claim)
        prof.disable()
    finally:
        gc.enable()
    st = pstats.Stats(prof)
    rows = []
    for (file, line, func), (cc, nc, tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        rows.append((tt, ct, nc, f"{_short(file)}:{func}"))
    rows.sort(reverse=True)
    out = [f"  (cProfile adds overhead: read the shares, not the absolute µs; {n:,} claims; GC off while profiling)",
           f"  {'own µs/claim':>13} {'cum µs/claim':>13} {'calls/claim':>12}  function"]
    for tt, ct, nc, name in rows[:22]:
        out.append(f"  {tt / n * 1e6:13.2f} {ct / n * 1e6:13.2f} {nc / n:12.1f}  {name}")
    total = sum(r[0] for r in rows) / n * 1e6
    out.append(f"  {total:13.2f}  total µs/claim under the profiler")
    return "\n".join(out)


def stage_breakdown(engine: Any, claim: dict, n: int) -> str:
    """Mean µs per claim of each stage of our path, timed without a profiler.

    parse, core.settle and setlinfo are called one after the other; inside core.settle the
    module-level names select_pack, price_lines and run_layers are wrapped for the duration (a
    wrapper costs ~0.1 µs a call). Internal names: if the core renames them, the breakdown says so.
    """
    import rules_engine.settle.core as core
    from rules_engine.model.claim import parse_claim

    names = ("select_pack", "price_lines", "run_layers")
    missing = [nm for nm in names if not hasattr(core, nm)]
    if missing:
        return f"  (breakdown unavailable: rules_engine.settle.core has no {', '.join(missing)})"
    acc = dict.fromkeys(("parse", "settle", "setlinfo") + names, 0)
    originals = {nm: getattr(core, nm) for nm in names}
    clock = time.perf_counter_ns

    def wrap(nm: str, f: Callable) -> Callable:
        def w(*a: Any, **k: Any) -> Any:
            t0 = clock()
            try:
                return f(*a, **k)
            finally:
                acc[nm] += clock() - t0
        return w

    packs = engine.packs
    try:
        for nm in names:
            setattr(core, nm, wrap(nm, originals[nm]))
        for i in range(n + n // 10):
            if i == n // 10:  # the first tenth warms up
                acc = dict.fromkeys(acc, 0)
            t0 = clock()
            pc = parse_claim(claim)
            t1 = clock()
            st = core.settle(packs, pc)
            t2 = clock()
            st.setlinfo()
            t3 = clock()
            acc["parse"] += t1 - t0
            acc["settle"] += t2 - t1
            acc["setlinfo"] += t3 - t2
    finally:
        for nm, f in originals.items():
            setattr(core, nm, f)
    us = {k: v / n / 1000 for k, v in acc.items()}
    rest = us["settle"] - us["select_pack"] - us["price_lines"] - us["run_layers"]
    total = us["parse"] + us["settle"] + us["setlinfo"]
    rows = [("rules_engine/model/claim.py:parse_claim (dict → integers, every field checked)", us["parse"]),
            ("rules_engine/settle/core.py:select_pack ×2 (registry.select: insured + treatment)", us["select_pack"]),
            ("rules_engine/settle/lines.py:price_lines (20 lines: lookup, restriction, ceiling, 乙)", us["price_lines"]),
            ("rules_engine/settle/layers.py:run_layers (3 layers: cases, bands, caps)", us["run_layers"]),
            ("rules_engine/settle/core.py:settle, the rest (facts, sums, accumulators, Settlement)", rest),
            ("rules_engine/model/settlement.py:Settlement.setlinfo (Decimal fields)", us["setlinfo"])]
    out = [f"  {v:8.1f} µs  {v / total * 100:4.0f} %  {label}" for label, v in rows]
    out.append(f"  {total:8.1f} µs        total (mean over {n:,} claims, wrappers included)")
    return "\n".join(out)


def _short(file: str) -> str:
    if "rules_engine" in file:
        return "rules_engine" + file.split("rules_engine", 1)[1]
    if file.startswith("~") or file.startswith("<"):
        return file
    return Path(file).name


# ------------------------------------------------------------------ main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 short run, figures not comparable")
    ap.add_argument("--runs", type=int, help="repeated runs; medians are reported (default 5; 1 with --quick)")
    ap.add_argument("--n", type=int, help="claims per run for ours (default 20,000; 300 with --quick)")
    ap.add_argument("--n-alt", type=int, help="claims per run for each alternative (default 1,000; 30 with --quick)")
    ap.add_argument("--only", nargs="*", choices=("durable", "zen", "openfisca"), help="alternatives to run")
    ap.add_argument("--profile", action="store_true", help="cProfile our path even if the targets pass")
    ap.add_argument("--perturb", action="store_true", help=argparse.SUPPRESS)  # tests: the alternatives' 乙 ratio
    #                                                        differs from the pack's, so they must disagree
    a = ap.parse_args(argv)
    runs = a.runs or (1 if a.quick else 5)
    n_ours = a.n or (300 if a.quick else 20_000)
    n_alt = a.n_alt or (30 if a.quick else 1_000)

    machine = machine_description()  # before pinning, so nproc shows the machine's cores
    cpu = pin_one_core()
    print("rules-engine settlement benchmark (issue 3 §9, DESIGN.md §5)")
    print(f"machine: {machine}")
    print(f"load average at start: {load_average()} (other processes on these cores make figures noisier)")
    print(f"pinned to: {'CPU ' + str(cpu) if cpu is not None else 'no pinning (sched_setaffinity unavailable)'}; "
          f"gc enabled; {runs} run(s); {n_ours:,} claims of ours and {n_alt:,} of each alternative per run"
          + (" [--quick: smoke run, figures not comparable with the targets]" if a.quick else ""))

    claim = build_claim()
    cat = load_catalogue()
    alt_policy = dict(POLICY, selfpay_b=150_000) if a.perturb else POLICY  # --perturb: 15 % where the pack says 10 %
    tmp = Path(tempfile.mkdtemp(prefix="bench-settle-"))
    failures: list[str] = []
    try:
        heading("the claim")
        settle, ours_totals, engine = make_ours(tmp)
        s = settle(copy.deepcopy(claim))
        print(f"{len(claim['feedetail'])} fee lines, insured {INSURED} (example), treated in {TREATMENT} (example, "
              f"another province), filing {claim['filing_type']}, retired, tier-3 hospital, 2nd admission; "
              f"packs {s.insured.label} / {s.treatment.label}")
        print("layers: " + ", ".join(f"{r.layer.id} ({r.layer.setl_field}) {r.pay / 100:,.2f}" for r in s.layers))
        bad = s.check_identities()
        if bad:
            failures.append("ours: identities broken: " + "; ".join(bad))

        # ---------------------------------------------------------- alternatives
        systems: list[tuple[str, str, Callable[[dict], Any]]] = [("ours", "rules-engine (ours)", settle)]
        skipped: list[str] = []
        wanted = set(a.only) if a.only is not None else {"durable", "zen", "openfisca"}
        makers = (("durable", "durable-rules", make_durable), ("zen", "zen-engine", make_zen),
                  ("openfisca", "openfisca-core", make_openfisca))
        for key, dist, maker in makers:
            if key not in wanted:
                continue
            try:
                fn, label = maker(cat, alt_policy)
            except ImportError as e:
                skipped.append(f"{dist} is not installed ({e.name}); skipped — install the 'bench' extra: "
                               f"pip install -e '.[bench]'")
                continue
            systems.append((key, label, fn))
        if "zen" in [k for k, _, _ in systems]:
            from importlib.metadata import version
            zv = version("zen-engine")
            if not zv.startswith("0.37."):
                print(f"NOTICE: zen-engine {zv} is not the fast 0.37.x binding; per-call figures will be ~30× slower")

        heading("agreement on the key totals (fen), same claim")
        expect = oracle(claim, cat)
        results = {"oracle (exact integers)": expect, "rules-engine (ours)": ours_totals(s)}
        failed_systems: set[str] = set()
        for key, label, fn in systems[1:]:
            try:
                results[label] = fn(copy.deepcopy(claim))
            except Exception as e:  # an alternative that fails is a disagreement, reported, not a traceback
                failures.append(f"{label} failed on the claim: {type(e).__name__}: {str(e)[:300]}")
                failed_systems.add(label)
        labels = list(results)
        print(f"  {'field':<18}" + "".join(f"{lb[:22]:>24}" for lb in labels))
        for f in KEY_FIELDS:
            row = [results[lb][f] for lb in labels]
            mark = "" if len(set(row)) == 1 else "   ← DISAGREE"
            print(f"  {f:<18}" + "".join(f"{v / 100:>24,.2f}" for v in row) + mark)
        ours_res = results["rules-engine (ours)"]
        for lb in labels[1:]:  # ours against the oracle; each alternative against ours
            ref, ref_name = (expect, "the oracle") if lb == "rules-engine (ours)" else (ours_res, "ours")
            diff = [f for f in KEY_FIELDS if results[lb][f] != ref[f]]
            if diff:
                failures.append(f"{lb} disagrees with {ref_name} on " + ", ".join(
                    f"{f} ({results[lb][f] / 100:.2f} ≠ {ref[f] / 100:.2f})" for f in diff))
        print("  every system agrees to the fen" if not failures else "  DISAGREEMENT — see the end of the output")
        failed_systems |= {lb for lb in labels if any(msg.startswith(lb) for msg in failures)}
        if "rules-engine (ours)" in failed_systems:
            heading("FAILED")
            for msg in failures:
                print(f"  {msg}")
            return 1
        systems = [t for t in systems if t[1] not in failed_systems]

        # ---------------------------------------------------------- timing
        heading("latency per claim, one core (dict in → key totals out)")
        warm = max(20, n_alt // 10)
        for _, _, fn in systems:
            for _ in range(warm):
                fn(claim)
        stats: dict[str, list[dict[str, float]]] = {label: [] for _, label, _ in systems}
        for run in range(runs):
            for key, label, fn in systems:
                stats[label].append(time_calls(fn, claim, n_ours if key == "ours" else n_alt))
        med = {label: {k: median([r[k] for r in rs]) for k in ("p50", "p99", "cps")} for label, rs in stats.items()}
        ours = med["rules-engine (ours)"]
        print(f"  {'system':<26}{'p50 µs':>10}{'p99 µs':>10}{'claims/s':>11}{'ours faster by (p50)':>23}")
        for _, label, _ in systems:
            m = med[label]
            ratio = "" if label.startswith("rules-engine") else f"{m['p50'] / ours['p50']:.1f}×"
            print(f"  {label:<26}{m['p50']:>10.1f}{m['p99']:>10.1f}{m['cps']:>11,.0f}{ratio:>23}")
        for msg in skipped:
            print(f"  NOTICE: {msg}")
        if runs > 1:
            spread = [r["p50"] for r in stats["rules-engine (ours)"]]
            print(f"  ours p50 over the runs: " + ", ".join(f"{x:.1f}" for x in spread) + " µs")

        # secondary figures: the same path from JSON text, and after gc.freeze()
        text = json.dumps(claim, default=str)
        from rules_engine import jsonio
        r_json = time_calls(lambda t: engine.settle(jsonio.loads(t)).setlinfo(), text, max(100, n_ours // 4))
        print(f"  (ours from JSON text, jsonio.loads included: p50 {r_json['p50']:.1f} µs, p99 {r_json['p99']:.1f} µs)")
        gc.collect()
        gc.freeze()  # what a gateway can do after loading packs: old objects leave the collector's scans
        r_frozen = [time_calls(settle, claim, n_ours) for _ in range(max(1, min(runs, 3)))]
        gc.unfreeze()
        print(f"  (ours after gc.freeze(): p50 {median([r['p50'] for r in r_frozen]):.1f} µs, "
              f"p99 {median([r['p99'] for r in r_frozen]):.1f} µs)")

        heading("targets")
        checks = [("p50 latency", ours["p50"], TARGET_P50_US, "µs"), ("p99 latency", ours["p99"], TARGET_P99_US, "µs")]
        for name, v, t, unit in checks:
            print(f"  {name:<34}{v:>9.1f} {unit}   target ≤ {t:.0f} {unit}   {verdict(v, t)}")
        missed = any(v > t for _, v, t, _ in checks)
        for _, label, _ in systems[1:]:
            ratio = med[label]["p50"] / ours["p50"]
            ok = ratio >= TARGET_RATIO
            missed |= not ok
            print(f"  {'faster than ' + label:<34}{ratio:>9.1f} ×    target ≥ {TARGET_RATIO:.0f} ×     "
                  f"{'PASS' if ok else 'MISS'}")

        if a.profile or (missed and not a.quick):
            heading("where our time goes: stages of our path, no profiler (mean µs per claim)")
            print(stage_breakdown(engine, claim, max(500, n_ours // 4)))
            heading("where our time goes: cProfile over our path (µs per claim, inflated by the profiler)")
            print(profile_ours(settle, claim, max(200, n_ours // 10)))

        print(f"\nload average at the end: {load_average()}")
        if failures:
            heading("FAILED")
            for msg in failures:
                print(f"  {msg}")
            return 1
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
