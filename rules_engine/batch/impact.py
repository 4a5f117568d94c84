"""Impact of a policy change: the same claims settled under a base pack and a reform, compared.

Both scenarios pin the region's pack (whatever the claims' dates): claims insured in the region
are settled by the base pack and by the reform (a YAML overlay or another version); claims
insured elsewhere are left out and counted. Each partition yields small, exact aggregates (int64
fen, summed with pandas' integer groupby — never float), so the impact of ten million lines is
a sum of partition results, on one process or on Dask workers:

- fund totals by settlement field and by fund type (`fund_pay_type`), base vs reform;
- the change by `med_type`, institution level, amount band (of `medfee_sumamt`) and person type
  (`psn_type`, else insurance type and retirement);
- how many people pay more / less (their `psn_part_amt` over the period) and by how much;
- the claims and people with the largest changes.

A person's claims are settled in order with their accumulators, so a reform that moves a yearly
deductible or cap shows its effect on later claims too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from ..model.settlement import FUND_FIELDS
from ..packs.model import CompiledPack
from .tables import Block, subset_block
from .vectorised import BlockResult, PackContext, PackSource, settle_block

BANDS = (0, 200_00, 1_000_00, 5_000_00, 20_000_00, 50_000_00, 100_000_00)  # fen: upper edges of medfee bands
BAND_LABELS = ("< 200", "200–1k", "1k–5k", "5k–20k", "20k–50k", "50k–100k", "≥ 100k")
SUM_FIELDS = ("medfee_sumamt", "inscp_scp_amt", *FUND_FIELDS, "fund_pay_sumamt", "psn_part_amt", "acct_pay",
              "psn_cash_pay")
GROUPS = ("med_type", "hosp_lv", "amount_band", "person_type")


def insured_in(src: PackSource, region: str, codes: np.ndarray) -> np.ndarray:
    """Which insured-place codes select `region`'s pack (the way PackSet.select falls back)."""
    out = np.zeros(len(codes), dtype=bool)
    versions = src.packs.versions
    for i, c in enumerate(codes):
        tried = [c]
        if len(c) == 6 and c.isdigit():
            tried += [x for x in (c[:4] + "00", c[:2] + "0000") if x != c]
        for r in tried:
            if r == region:
                out[i] = True
                break
            if r in versions or r in src.pinned:
                break
    return out


@dataclass
class Part:
    """One partition's aggregates (all money int fen)."""

    index: int = -1
    claims: int = 0
    lines: int = 0
    skipped: int = 0
    fallback: int = 0
    verified: int = 0
    totals: dict[str, dict[str, int]] = field(default_factory=dict)       # scenario → field → fen
    by_fund: pd.DataFrame | None = None                                    # fund_pay_type, name, base, reform
    groups: dict[str, pd.DataFrame] = field(default_factory=dict)          # group → frame of sums
    person_delta: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    person_fund_delta: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    top_claims: pd.DataFrame | None = None
    top_people: pd.DataFrame | None = None
    names: dict[str, dict[str, str]] = field(default_factory=dict)


def _band(fen: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.array(BANDS[1:]), fen, side="right")


def _detail_frame(r: BlockResult, scenario: str) -> pd.DataFrame:
    d = r.detail.arrays()
    kinds = r.detail.kinds
    fpt = np.array([k[0] for k in kinds] + [""], dtype=object)[:-1]
    name = np.array([k[1] for k in kinds] + [""], dtype=object)[:-1]
    f = pd.DataFrame({"fund_pay_type": fpt[d["uid"]] if len(d["uid"]) else np.zeros(0, dtype=object),
                      "name": name[d["uid"]] if len(d["uid"]) else np.zeros(0, dtype=object),
                      scenario: d["pay"]})
    return f.groupby(["fund_pay_type", "name"], as_index=False)[scenario].sum()


def impact_block(b: Block, base: PackContext, reform: PackContext, region: str, *, verify: int = 2,
                 top: int = 20) -> Part:
    ins = b.codes["insuplc_admdvs"]
    sel_cat = insured_in(base.source, region, ins.cats)
    keep = np.append(sel_cat, False)[ins.codes]
    part = Part(skipped=int((~keep).sum()))
    if not keep.any():
        return part
    sub = b if keep.all() else subset_block(b, np.flatnonzero(keep))
    rb = settle_block(sub, base, verify=verify)
    rr = settle_block(sub, reform, verify=verify)
    part.claims, part.lines = sub.n, sub.m
    part.fallback = int(max(rb.fallback_claims, rr.fallback_claims))
    part.verified = rb.verified + rr.verified
    part.totals = {"base": {k: int(rb.claim[k].sum()) for k in SUM_FIELDS},
                   "reform": {k: int(rr.claim[k].sum()) for k in SUM_FIELDS}}
    fb, fr = _detail_frame(rb, "base"), _detail_frame(rr, "reform")
    part.by_fund = fb.merge(fr, on=["fund_pay_type", "name"], how="outer").fillna(0)
    # per claim
    fund_b, fund_r = rb.claim["fund_pay_sumamt"], rr.claim["fund_pay_sumamt"]
    psn_b, psn_r = rb.claim["psn_part_amt"], rr.claim["psn_part_amt"]
    retired = sub.codes["insutype_retr_flag"].values()
    insutype = sub.codes["insutype"].values()
    psn_type = sub.codes["psn_type"].values()
    ptype = np.where(pd.isna(psn_type), np.char.add(np.char.add(insutype.astype(str), " / "),
                                                    np.where(retired == "1", "retired", "in service")), psn_type)
    frame = pd.DataFrame({
        "med_type": sub.codes["med_type"].values(), "hosp_lv": sub.codes["hosp_lv"].values(),
        "amount_band": np.array(BAND_LABELS, dtype=object)[_band(rb.claim["medfee_sumamt"])],
        "person_type": ptype, "claims": np.ones(sub.n, dtype=np.int64),
        "changed": ((fund_b != fund_r) | (psn_b != psn_r)).astype(np.int64),
        "fund_base": fund_b, "fund_reform": fund_r, "psn_base": psn_b, "psn_reform": psn_r,
        "medfee": rb.claim["medfee_sumamt"]})
    sums = ["claims", "changed", "fund_base", "fund_reform", "psn_base", "psn_reform", "medfee"]
    for g in GROUPS:
        part.groups[g] = frame.groupby(g, as_index=False)[sums].sum()
    # per person over the period
    person = sub.person
    P = len(sub.person_start) - 1
    d_psn = psn_r - psn_b
    d_fund = fund_r - fund_b
    starts = sub.person_start[:-1]
    part.person_delta = np.add.reduceat(d_psn, starts) if P else np.zeros(0, np.int64)
    part.person_fund_delta = np.add.reduceat(d_fund, starts) if P else np.zeros(0, np.int64)
    # the largest changes
    k = min(top, sub.n)
    if k:
        pick = np.argsort(-np.abs(d_fund), kind="stable")[:k]
        pick = pick[d_fund[pick] != 0]
        part.top_claims = pd.DataFrame({
            "mdtrt_id": sub.mdtrt_id.take(pick).values(), "psn_no": sub.psn_no.take(pick).values(),
            "setl_time": sub.setl_time.take(pick).values(), "med_type": frame["med_type"].values[pick],
            "hosp_lv": frame["hosp_lv"].values[pick], "medfee": rb.claim["medfee_sumamt"][pick],
            "fund_base": fund_b[pick], "fund_reform": fund_r[pick], "delta": d_fund[pick]})
    kp = min(top, P)
    if kp:
        pick = np.argsort(-np.abs(part.person_delta), kind="stable")[:kp]
        pick = pick[part.person_delta[pick] != 0]
        first = starts[pick]
        claims_n = np.diff(sub.person_start)[pick]
        part.top_people = pd.DataFrame({
            "psn_no": sub.psn_no.take(first).values(), "claims": claims_n, "person_type": ptype[first],
            "psn_delta": part.person_delta[pick], "fund_delta": part.person_fund_delta[pick]})
    del person
    return part


# ------------------------------------------------------------------ combining partitions


def _yuan(fen: int | np.integer) -> Decimal:
    return Decimal(int(fen)).scaleb(-2)


def combine(parts: list[Part], *, region: str, base_pack: CompiledPack, reform_pack: CompiledPack,
            reform_name: str, changes: list[dict], top: int = 20) -> dict[str, Any]:
    """Partition aggregates → the impact report's data (amounts as exact Decimal yuan)."""
    claims = sum(p.claims for p in parts)
    out: dict[str, Any] = {
        "region": region,
        "base": {"pack": base_pack.label, "name": base_pack.info.name},
        "reform": {"pack": reform_pack.label, "name": reform_name, "changes": changes},
        "claims": claims, "lines": sum(p.lines for p in parts), "skipped_claims": sum(p.skipped for p in parts),
        "fallback_claims": sum(p.fallback for p in parts), "verified_claims": sum(p.verified for p in parts),
    }
    tb = {k: sum(p.totals.get("base", {}).get(k, 0) for p in parts) for k in SUM_FIELDS}
    tr = {k: sum(p.totals.get("reform", {}).get(k, 0) for p in parts) for k in SUM_FIELDS}
    out["totals"] = [{"field": k, "base": _yuan(tb[k]), "reform": _yuan(tr[k]), "delta": _yuan(tr[k] - tb[k]),
                      "pct": _pct(tr[k] - tb[k], tb[k])} for k in SUM_FIELDS]
    frames = [p.by_fund for p in parts if p.by_fund is not None and len(p.by_fund)]
    if frames:
        f = pd.concat(frames).groupby(["fund_pay_type", "name"], as_index=False)[["base", "reform"]].sum()
        f = f.sort_values("fund_pay_type")
        out["by_fund_pay_type"] = [{"fund_pay_type": r.fund_pay_type, "name": r.name, "base": _yuan(r.base),
                                    "reform": _yuan(r.reform), "delta": _yuan(r.reform - r.base),
                                    "pct": _pct(int(r.reform - r.base), int(r.base))}
                                   for r in f.itertuples()]
    else:
        out["by_fund_pay_type"] = []
    names = {"med_type": base_pack.codes.get("med_type", {}), "hosp_lv": {"1": "一级", "2": "二级", "3": "三级",
                                                                          "9": "未定级"},
             "person_type": {}, "amount_band": {}}
    out["by"] = {}
    for g in GROUPS:
        fs = [p.groups[g] for p in parts if g in p.groups]
        if not fs:
            out["by"][g] = []
            continue
        f = pd.concat(fs).groupby(g, as_index=False).sum()
        if g == "amount_band":
            f["_o"] = f[g].map({b: i for i, b in enumerate(BAND_LABELS)})
            f = f.sort_values("_o")
        else:
            f = f.sort_values(g)
        rows = []
        for r in f.to_dict("records"):
            rows.append({"key": r[g], "name": names[g].get(r[g], ""), "claims": int(r["claims"]),
                         "changed": int(r["changed"]), "fund_base": _yuan(r["fund_base"]),
                         "fund_reform": _yuan(r["fund_reform"]), "fund_delta": _yuan(r["fund_reform"] - r["fund_base"]),
                         "psn_delta": _yuan(r["psn_reform"] - r["psn_base"]),
                         "pct": _pct(int(r["fund_reform"] - r["fund_base"]), int(r["fund_base"]))})
        out["by"][g] = rows
    pdlt = np.concatenate([p.person_delta for p in parts]) if parts else np.zeros(0, np.int64)
    more, less = pdlt[pdlt > 0], pdlt[pdlt < 0]
    out["people"] = {
        "persons": int(len(pdlt)), "pay_more": int(len(more)), "pay_less": int(len(less)),
        "unchanged": int((pdlt == 0).sum()),
        "more_total": _yuan(more.sum()), "less_total": _yuan(less.sum()),
        "more_median": _yuan(np.percentile(more, 50, method="lower")) if len(more) else None,
        "more_p90": _yuan(np.percentile(more, 90, method="lower")) if len(more) else None,
        "more_max": _yuan(more.max()) if len(more) else None,
        "less_median": _yuan(np.percentile(less, 50, method="higher")) if len(less) else None,
        "less_p90": _yuan(np.percentile(less, 10, method="higher")) if len(less) else None,
        "less_max": _yuan(less.min()) if len(less) else None,
    }
    out["_person_deltas"] = pdlt  # for the histogram; dropped from JSON
    tc = [p.top_claims for p in parts if p.top_claims is not None and len(p.top_claims)]
    if tc:
        f = pd.concat(tc)
        f = f.iloc[np.argsort(-np.abs(f["delta"].to_numpy()), kind="stable")[:top]]
        out["largest_claims"] = [{**{k: r[k] for k in ("mdtrt_id", "psn_no", "setl_time", "med_type", "hosp_lv")},
                                  "medfee": _yuan(r["medfee"]), "fund_base": _yuan(r["fund_base"]),
                                  "fund_reform": _yuan(r["fund_reform"]), "delta": _yuan(r["delta"])}
                                 for r in f.to_dict("records")]
    else:
        out["largest_claims"] = []
    tp = [p.top_people for p in parts if p.top_people is not None and len(p.top_people)]
    if tp:
        f = pd.concat(tp)
        f = f.iloc[np.argsort(-np.abs(f["psn_delta"].to_numpy()), kind="stable")[:top]]
        out["largest_people"] = [{"psn_no": r["psn_no"], "claims": int(r["claims"]), "person_type": r["person_type"],
                                  "psn_delta": _yuan(r["psn_delta"]), "fund_delta": _yuan(r["fund_delta"])}
                                 for r in f.to_dict("records")]
    else:
        out["largest_people"] = []
    fd = next(x for x in out["totals"] if x["field"] == "fund_pay_sumamt")
    out["summary"] = _summary(out, fd)
    return out


def _pct(delta: int, base: int) -> float | None:
    return round(100.0 * delta / base, 2) if base else None


def _summary(out: dict, fd: dict) -> list[str]:
    p = out["people"]
    lines = [
        f"{out['claims']:,} claims ({out['lines']:,} fee lines) of {p['persons']:,} people insured in "
        f"{out['region']}, settled under {out['base']['pack']} and under {out['reform']['pack']}"
        + (f" ({out['reform']['name']})" if out['reform']['name'] else "") + ".",
        f"The funds pay {fd['reform']:,} yuan instead of {fd['base']:,}: {'+' if fd['delta'] >= 0 else ''}"
        f"{fd['delta']:,} yuan" + (f" ({fd['pct']:+.2f} %)" if fd["pct"] is not None else "") + ".",
        f"{p['pay_less']:,} people pay less (together {-p['less_total']:,} yuan"
        + (f"; median {-p['less_median']:,}" if p["less_median"] is not None else "") + "), "
        f"{p['pay_more']:,} pay more (together {p['more_total']:,} yuan"
        + (f"; median {p['more_median']:,}" if p["more_median"] is not None else "") + "), "
        f"{p['unchanged']:,} are unaffected.",
    ]
    rows = [r for r in out["by"].get("med_type", []) if r["fund_delta"]]
    if rows:
        big = max(rows, key=lambda r: abs(r["fund_delta"]))
        lines.append(f"Most of the change is in med_type {big['key']} {big['name']}: {big['fund_delta']:+,} yuan over "
                     f"{big['changed']:,} claims.")
    if out["skipped_claims"]:
        lines.append(f"{out['skipped_claims']:,} claims insured elsewhere were left out.")
    if out["fallback_claims"]:
        lines.append(f"{out['fallback_claims']:,} claims were settled by the per-claim path (see docs/batch.md).")
    return lines


def to_json_data(report: dict) -> dict:
    return {k: v for k, v in report.items() if not k.startswith("_")}


# ------------------------------------------------------------------ the run


def _impact_part(spec, base: PackContext, reform: PackContext, region: str, verify: int, top: int) -> Part:
    from .runner import load_part
    from .tables import build_block
    c, ln = load_part(spec)
    b = build_block(c, ln, partition=spec.index, claims_name=spec.claims_name, lines_name=spec.lines_name)
    part = impact_block(b, base, reform, region, verify=verify, top=top)
    part.index = spec.index
    return part


def _impact_worker(spec, base: PackContext, reform: PackContext, region: str, verify: int, top: int):
    from .runner import _worker_error
    from .tables import BatchInputError
    from .vectorised import BatchDivergence
    try:
        return _impact_part(spec, base, reform, region, verify, top)
    except BatchInputError as e:
        return _worker_error(e) | {"index": spec.index}
    except BatchDivergence as e:
        return {"error": "diverged", "message": str(e), "index": spec.index}
    except Exception as e:  # noqa: BLE001 - reported by the driver with the partition named
        return {"error": "other", "type": type(e).__name__, "message": str(e), "index": spec.index}


def run_impact(inp, base: PackContext, reform: PackContext, region: str, opts, *, progress=None, top: int = 20,
               log=lambda s: None) -> list[Part]:
    """Every partition settled under both scenarios; returns the partitions' aggregates."""
    import shutil
    import tempfile
    from pathlib import Path

    from .runner import _dask_client, plan_partitions
    from .tables import BatchInputError, InputProblem
    from .vectorised import BatchDivergence
    tmp = Path(tempfile.mkdtemp(prefix="rules-engine-impact-"))
    try:
        specs = plan_partitions(inp, opts, tmp / "parts", log)
        total = sum(s.lines for s in specs)
        if progress:
            progress.start(total, len(specs))
        client, cluster, _desc = _dask_client(opts, total, len(specs), log)
        parts: list[Part] = []
        if client is None:
            for s in specs:
                p = _impact_part(s, base, reform, region, opts.verify, top)
                parts.append(p)
                if progress:
                    progress.advance(s.lines, p.claims)
            return parts
        try:
            from distributed import as_completed
            bf, rf = client.scatter(base, broadcast=True), client.scatter(reform, broadcast=True)
            futs = [client.submit(_impact_worker, s, bf, rf, region, opts.verify, top, pure=False) for s in specs]
            lines_of = {s.index: s.lines for s in specs}
            for fut in as_completed(futs):
                r = fut.result()
                if isinstance(r, dict):
                    for f in futs:
                        f.cancel()
                    if r["error"] == "input":
                        raise BatchInputError([InputProblem(**p) for p in r["problems"]], r.get("more", 0))
                    if r["error"] == "diverged":
                        raise BatchDivergence(r["message"])
                    raise RuntimeError(f"partition {r['index']}: {r['type']}: {r['message']}")
                parts.append(r)
                if progress:
                    progress.advance(lines_of.get(r.index, r.lines), r.claims)
            return parts
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    finally:
        if progress:
            progress.stop()
        shutil.rmtree(tmp, ignore_errors=True)
