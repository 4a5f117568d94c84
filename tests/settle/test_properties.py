"""Invariants of settlement over random packs and claims (hypothesis).

- the platform's identities hold to the fen;
- the funds never pay more than the in-scope amount, nor past a yearly cap over any sequence;
- adding a fee line never lowers the patient's share nor the funds';
- with yearly deductibles, cumulative bands and yearly caps, a year's fund total does not depend
  on how the same lines are split into claims (within one fen per claim and layer).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rules_engine import Engine

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PACK = """\
region: "990950"
name: 随机测试地区（虚构）
version: "1"
effective: {{from: 2020-01-01}}
confidence: sample
provenance: [{{id: T, title: generated, confidence: sample}}]
settings: {{rounding: {rounding}, line_order: {line_order}}}
catalogue_defaults: {{selfpay_prop: {{甲: 0, 乙: {b_ratio}}}}}
catalogues: [{{file: items.csv, kind: service}}]
"""


@st.composite
def bands(draw, max_edge=200_000, max_ratio=1000):
    n = draw(st.integers(1, 4))
    edges = sorted(draw(st.lists(st.integers(1, max_edge), min_size=n - 1, max_size=n - 1, unique=True)))
    ratios = draw(st.lists(st.integers(0, max_ratio), min_size=n, max_size=n))
    out = [{"to": e, "ratio": r / 1000} for e, r in zip(edges, ratios)]
    last = {"ratio": ratios[-1] / 1000}
    if draw(st.booleans()):
        last["to"] = (edges[-1] if edges else 0) + draw(st.integers(1, max_edge))
    return out + [last]


def _yaml_bands(bs):
    return "[" + ", ".join("{" + ", ".join(f"{k}: {v}" for k, v in b.items()) + "}" for b in bs) + "]"


@st.composite
def policies(draw, split_invariant=False):
    n_layers = 1 if split_invariant else draw(st.integers(1, 3))
    accs = ["  - {id: n_year, adds: count}"]
    layers = []
    fields = ["hifp_pay", "hifob_pay", "hifmi_pay"]
    for i in range(n_layers):
        lid = f"l{i}"
        base = "inscp" if i == 0 or split_invariant else draw(st.sampled_from(["inscp", "inscp_remaining",
                                                                            "policy_remaining"]))
        text = [f"  - id: {lid}", f'    fund_pay_type: "99990{i}"', f"    setl_field: {fields[i]}", f"    base: {base}"]
        ded_amount = draw(st.integers(0, 5000))
        ded_period = "year" if split_invariant else draw(st.sampled_from(["claim", "year"]))
        if ded_amount:
            text += ["    deductible:", f"      period: {ded_period}", f"      amount: {ded_amount}"]
            if ded_period == "year":
                accs.append(f"  - {{id: d{i}, adds: {{deductible_of: {lid}}}}}")
                text.append(f"      accumulator: d{i}")
        basis = draw(st.sampled_from(["gross", "net"]))
        positioned = split_invariant or draw(st.booleans())
        # layers paying on the same in-scope amount share it: their ratios must not add up past 100 %
        share = 1000 if base != "inscp" or n_layers == 1 else 1000 // n_layers
        text += ["    bands:", f"      basis: {basis}", f"      ratios: {_yaml_bands(draw(bands(max_ratio=share)))}"]
        if positioned:
            kind = "base_of" if basis == "gross" else "above_deductible_of"
            accs.append(f"  - {{id: p{i}, adds: {{{kind}: {lid}}}}}")
            text.append(f"      position: p{i}")
        if draw(st.booleans()):
            text.append("    adjust:")
            text.append('      - when: {insutype_retr_flag: "1"}')
            if share == 1000:
                text.append(f"        self_share_times: {draw(st.integers(0, 1000)) / 1000}")
            else:  # a lowering adjustment keeps parallel layers within their share
                text.append(f"        ratio_times: {draw(st.integers(0, 1000)) / 1000}")
        caps = []
        if draw(st.booleans()):
            amt = draw(st.integers(ded_amount + 1, 300_000))
            accs.append(f"  - {{id: c{i}, adds: {{paid_by: [{lid}]}}}}")
            caps.append(f"      - {{amount: {amt}, period: year, accumulator: c{i}}}")
        if not split_invariant and draw(st.booleans()):
            caps.append(f"      - {{amount: {draw(st.integers(ded_amount + 1, 300_000))}, period: claim}}")
        if caps:
            text += ["    caps:"] + caps
        layers.append("\n".join(text))
    return "accumulators:\n" + "\n".join(accs) + "\nlayers:\n" + "\n".join(layers) + "\n"


@st.composite
def catalogues(draw):
    rows = ["code,name,category,selfpay_prop,pric_uplmt_amt"]
    for i in range(8):
        cat = draw(st.sampled_from(["甲", "乙", "丙"]))
        sp = draw(st.one_of(st.just(""), st.integers(0, 1000).map(lambda x: str(x / 1000)))) if cat == "乙" else ""
        ceil = draw(st.one_of(st.just(""), st.integers(1, 50_000).map(lambda x: str(x / 100))))
        rows.append(f"C{i},项目{i},{cat},{sp},{ceil}")
    return "\n".join(rows) + "\n"


@st.composite
def packs(draw, split_invariant=False):
    return {"pack.yaml": PACK.format(rounding=draw(st.sampled_from(["half_up", "half_even", "down"])),
                                     line_order=draw(st.sampled_from(["ceiling_first", "selfpay_first"])),
                                     b_ratio=draw(st.integers(0, 300)) / 1000),
            "policy.yaml": draw(policies(split_invariant)), "items.csv": draw(catalogues())}


@st.composite
def fee_lines(draw, n_min=1, n_max=8, prefix=""):
    n = draw(st.integers(n_min, n_max))
    out = []
    for i in range(n):
        cnt = draw(st.integers(1, 400)) / 4          # 0.25 … 100
        pric = draw(st.integers(1, 2_000_000)) / 100  # 0.01 … 20,000.00
        code = draw(st.sampled_from([f"C{j}" for j in range(8)] + ["UNLISTED"]))
        amount = round(cnt * pric, 2)
        out.append({"feedetl_sn": f"{prefix}{i}", "med_list_codg": code, "cnt": str(cnt), "pric": f"{pric:.2f}",
                    "det_item_fee_sumamt": f"{amount:.2f}"})
    return out


def claim(lines, day="2021-03-01", retired="0", accumulators=None):
    return {"insuplc_admdvs": "990950", "mdtrtarea_admvs": "990950", "insutype": "310", "med_type": "21",
            "age": 50, "hosp_lv": "3", "insutype_retr_flag": retired, "setl_time": day, "feedetail": lines,
            **({"accumulators": accumulators} if accumulators else {})}


def engine_for(files: dict) -> Engine:
    d = Path(tempfile.mkdtemp(prefix="rules-engine-prop-")) / "regions" / "990950" / "1"
    d.mkdir(parents=True)
    for name, text in files.items():
        (d / name).write_text(text, encoding="utf-8")
    return Engine.from_directory(d.parent.parent, cache=False)


def _fund_on_inscp_only(engine: Engine) -> bool:
    pack = engine.packs.packs()[0]
    return all(layer.base != "policy_remaining" for layer in pack.layers)


@SETTINGS
@given(packs(), fee_lines(), st.sampled_from(["0", "1"]))
def test_identities_and_fund_bounds(files, lines, retired):
    engine = engine_for(files)
    s = engine.settle(claim(lines, retired=retired))
    assert s.check_identities() == []
    assert all(v >= 0 for v in s.funds.values()) and s.psn_part_amt >= 0
    assert s.medfee_sumamt == sum(round(float(ln["det_item_fee_sumamt"]) * 100) for ln in lines)
    if _fund_on_inscp_only(engine):
        assert s.fund_pay_sumamt <= s.inscp_scp_amt
    else:
        assert s.fund_pay_sumamt <= s.inscp_scp_amt + s.preselfpay_amt
    for lr in s.lines:
        assert lr.fulamt + lr.overlmt + lr.pre + lr.inscp == lr.line.amount
        assert min(lr.fulamt, lr.overlmt, lr.pre, lr.inscp) >= 0


@SETTINGS
@given(packs(), st.lists(fee_lines(1, 4), min_size=2, max_size=6))
def test_year_caps_hold_over_any_sequence(files, claims_lines):
    engine = engine_for(files)
    days = [f"2021-{m:02d}-15" for m in range(1, 13)]
    seq = [claim([dict(ln, feedetl_sn=f"{k}-{ln['feedetl_sn']}") for ln in lines], day=days[k % 12])
           for k, lines in enumerate(claims_lines)]
    results = engine.settle_sequence(seq)
    pack = engine.packs.packs()[0]
    for layer in pack.layers:
        for cap in layer.caps:
            if cap.period == "year":
                total = sum(r.pay for s in results for r in s.layers if r.layer.id == layer.id)
                assert total <= cap.amount.otherwise
            else:
                for s in results:
                    assert all(r.pay <= cap.amount.otherwise for r in s.layers if r.layer.id == layer.id)
    for s in results:
        assert s.check_identities() == []


@SETTINGS
@given(packs(), fee_lines(), fee_lines(1, 1, prefix="extra"), st.sampled_from(["0", "1"]))
def test_adding_a_line_never_lowers_either_share(files, lines, extra, retired):
    engine = engine_for(files)
    a = engine.settle(claim(lines, retired=retired))
    b = engine.settle(claim(lines + extra, retired=retired))
    assert b.psn_part_amt >= a.psn_part_amt
    assert b.fund_pay_sumamt >= a.fund_pay_sumamt


@SETTINGS
@given(packs(split_invariant=True), fee_lines(2, 10), st.data())
def test_year_total_does_not_depend_on_how_lines_are_split(files, lines, data):
    engine = engine_for(files)
    whole = engine.settle(claim(lines))
    cuts = sorted(data.draw(st.sets(st.integers(1, len(lines) - 1), max_size=len(lines) - 1)))
    assume(cuts)
    parts, prev = [], 0
    for c in cuts + [len(lines)]:
        parts.append(lines[prev:c])
        prev = c
    seq = [claim(p, day=f"2021-{k + 1:02d}-01") for k, p in enumerate(parts)]
    split = engine.settle_sequence(seq)
    total_split = sum(s.fund_pay_sumamt for s in split)
    n_layers = len(engine.packs.packs()[0].layers)
    assert abs(total_split - whole.fund_pay_sumamt) <= len(parts) * n_layers
    assert sum(s.inscp_scp_amt for s in split) == whole.inscp_scp_amt
