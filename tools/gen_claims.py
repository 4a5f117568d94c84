#!/usr/bin/env python3
"""Seeded synthetic claim populations for benchmarks and demos, in the batch table format.

    .venv/bin/python tools/gen_claims.py --lines 10000000 --out out/claims-10m
    .venv/bin/python tools/gen_claims.py --persons 2000 --out out/demo --format csv --json out/demo.json

What it draws, from what the packs contain when it runs (nothing is hard-coded but the shares):
- the insured region(s): every region whose pack has fund layers (or --region), and the year in
  which its catalogue has most entries in force (or --year);
- fee-line codes: catalogue entries of the treatment place's pack valid in that year, split into
  甲 / 乙 / 丙 by their class; a class the catalogue lacks is drawn as unlisted codes (全自费 too),
  and the summary says so. Prices sit around each entry's ceiling when it has one (some above);
- medical types from the pack's `med_type` code table (11/13/14 outpatient, 21/24 inpatient when
  present), hospital levels, a cross-region share (other regions with packs, else districts of the
  insured region, which select the same pack but count as 异地), several claims per person per
  year with long-tailed counts and amounts, diagnoses including codes the restrictions test for.

Output: a folder with claims.parquet + feedetail.parquet, row groups paired and partitioned by
person (so `rules-engine batch` streams them without re-partitioning), or the same as CSV, or
JSON claims (--json). The same seed gives the same population.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rules_engine.batch.tables import decimal_array, parquet_meta  # noqa: E402
from rules_engine.conditions.language import All, AnyOf, Cmp, Not  # noqa: E402
from rules_engine.packs.registry import PackSet  # noqa: E402

SHARES = {"甲": 0.55, "乙": 0.35, "丙": 0.05, "unlisted": 0.05}
FILINGS = ("resettled_retiree", "long_term_resident", "resident_worker", "referral", "other_temporary")
COMMON_DIAG = ("I10.X00", "E11.900", "J18.900", "K35.800", "M54.500", "J06.900", "N39.000", "I63.900")


@dataclass
class Catalogue:
    codes: dict[str, np.ndarray]       # class → codes
    price: dict[str, np.ndarray]       # class → typical unit price (yuan, float)
    notes: list[str]
    own_selfpay: np.ndarray | None = None  # 乙 entries carrying their own self-pay ratio


def _icd_codes(pack) -> list[str]:
    """Diagnosis codes the pack's restrictions and conditions test for (so some lines meet them)."""
    found: set[str] = set()

    def walk(n):
        if isinstance(n, Cmp) and n.op == "icd":
            for lo, _hi in n.value:
                found.add(lo + (".900" if len(lo) == 3 else ""))
        elif isinstance(n, (All, AnyOf)):
            for i in n.items:
                walk(i)
        elif isinstance(n, Not):
            walk(n.item)
    for r in pack.restrictions.values():
        walk(r.when)
    for layer in pack.layers:
        walk(layer.when)
    return sorted(found)


def _catalogue(pack, date: str, rng: np.random.Generator) -> Catalogue:
    by: dict[str, list[str]] = {"甲": [], "乙": [], "丙": []}
    price: dict[str, list[float]] = {"甲": [], "乙": [], "丙": []}
    own: list[bool] = []
    base = {"drug": 30.0, "service": 60.0, "consumable": 250.0}
    for code, entries in pack.catalogue.items():
        for e in entries:
            if (e.valid_from or "0000") <= date <= (e.valid_to or "9999"):
                c = e.code if e.match == "exact" else e.code + f"{int(rng.integers(0, 10**6)):06d}"
                by[e.category].append(c)
                p = e.ceiling / 1e6 if e.ceiling else base.get(e.kind, 50.0) * float(rng.lognormal(0, 0.8))
                price[e.category].append(max(0.5, p))
                if e.category == "乙":
                    own.append(e.selfpay is not None)
                break
    notes = []
    for k, v in by.items():
        if not v:
            notes.append(f"{pack.key} has no {k} entry in force on {date}: its share is drawn as unlisted codes")
    return Catalogue({k: np.array(v, dtype=object) for k, v in by.items()},
                     {k: np.array(p, dtype=float) for k, p in price.items()}, notes, np.array(own, dtype=bool))


def _yi_pool(place_pack, insured_pack, cat: Catalogue) -> np.ndarray:
    """Which 乙 entries the packs can price for this insured / treatment pair (settle/lines.py: the
    self-pay ratio comes from the entry when the treatment pack decides, else the pack default)."""
    sp = insured_pack if insured_pack.settings.selfpay_prop_from == "insured" else place_pack
    n = len(cat.codes["乙"])
    if "乙" in sp.selfpay_default:
        return np.ones(n, dtype=bool)
    if sp is place_pack and cat.own_selfpay is not None:
        return cat.own_selfpay
    return np.zeros(n, dtype=bool)


def choose(ps: PackSet, region: str | None, year: int | None) -> tuple[list[str], int]:
    regions = sorted({p.info.region for p in ps.packs() if p.layers}) if region is None else [region]
    if not regions:
        raise SystemExit("no pack with fund layers under the regions folder: nothing to insure claims with")
    if year is not None:
        return regions, year
    best = None
    this = dt.date.today().year
    for r in regions:
        for raw in ps.versions.get(r, []):
            eff = raw.meta.data["effective"]
            y0 = int(str(eff["from"])[:4])
            y1 = int(str(eff.get("to") or f"{this + 1}-12-31")[:4])
            for y in range(max(y0, 2000), min(y1, this + 1) + 1):
                try:
                    pack = ps.select(r, f"{y}-07-01")
                except Exception:
                    continue
                d = f"{y}-07-01"
                n = sum(1 for es in pack.catalogue.values() for e in es
                        if (e.valid_from or "0000") <= d <= (e.valid_to or "9999"))
                if best is None or (n, y) > best[:2]:
                    best = (n, y)
    if best is None:
        raise SystemExit(f"no pack of {', '.join(regions)} is in force in any year")
    return regions, best[1]


def _districts(region: str, taken: set[str]) -> list[str]:
    """Codes below `region` that have no pack of their own, so they select `region`'s pack the way
    PackSet.select falls back (110105 → 110100 → 110000) — yet count as 异地 (another code)."""
    if region[2:] == "0000":
        cands = [f"{region[:2]}01{k:02d}" for k in range(1, 9)]
    elif region[4:] == "00":
        cands = [f"{region[:4]}{k:02d}" for k in range(1, 9)]
    else:
        return []
    return [d for d in cands if d not in taken and d[:4] + "00" not in taken - {region}][:5]


def generate(regions_dir: str | Path, *, persons: int | None = None, lines: int | None = None, seed: int = 1,
             year: int | None = None, years: int = 1, region: str | None = None, cross_share: float = 0.05,
             partition_lines: int = 1_000_000, log=print):
    """Yield (claims, feedetail) pyarrow tables, one pair per partition of whole persons."""
    rng = np.random.default_rng(seed)
    _LOG[0] = log
    _NOTES.clear()
    ps = PackSet.load(regions_dir)
    if ps.problems.has_errors():
        raise SystemExit(f"the packs under {regions_dir} have errors; run 'rules-engine validate'")
    regions, y0 = choose(ps, region, year)
    all_regions = sorted({p.info.region for p in ps.packs() if p.info.region != "000000"})
    # the year's packs and catalogues of every region a claim can be treated in
    places: dict[str, dict] = {}
    notes: list[str] = []
    for yy in range(y0, y0 + years):
        for r in all_regions:
            try:
                pack = ps.select(r, f"{yy}-07-01")
            except Exception:
                continue
            cat = _catalogue(pack, f"{yy}-07-01", rng)
            notes += [n for n in cat.notes if n not in notes]
            places[(r, yy)] = {"pack": pack, "cat": cat}
    if not any((r, y0) in places for r in regions):
        raise SystemExit(f"no pack of {', '.join(regions)} is in force in {y0}")
    for n in notes:
        log(f"note: {n}")
    any_pack = places[next(k for k in places if k[0] in regions)]["pack"]
    med_types = set(any_pack.codes.get("med_type", {}))
    out_types = [t for t in ("11", "13", "14") if t in med_types] or ["11"]
    in_types = [t for t in ("21", "24") if t in med_types] or ["21"]
    diag_pool = np.array(sorted(set(_icd_codes(any_pack)) | set(COMMON_DIAG)), dtype=object)
    other_provinces = [r for r in all_regions if r[:2] not in {x[:2] for x in regions}]
    log(f"insured: {', '.join(regions)}; year {y0}" + (f"–{y0 + years - 1}" if years > 1 else "")
        + f"; cross-region to: {', '.join(other_provinces) or 'districts of the insured region (no other province has a pack)'}")

    # persons: enough to reach the requested lines (≈ 14 lines per person-year on average)
    if persons is None:
        persons = max(1, int((lines or 100_000) / (14.5 * years)))
    target = lines
    pid = 0
    made = 0
    t0 = time.time()
    while pid < persons:
        k = min(persons - pid, max(50, partition_lines // 15))
        c, ln = _people(rng, pid, k, regions, y0, years, places, out_types, in_types, diag_pool, other_provinces,
                        cross_share)
        pid += k
        if target is not None and made + ln.num_rows > target:
            # trim to the target: whole persons only
            keep_persons = _persons_within(c, ln, target - made)
            c = c.filter(pc.is_in(c.column("psn_no"), keep_persons))
            ln = ln.filter(pc.is_in(ln.column("psn_no"), keep_persons))
            pid = persons
        made += ln.num_rows
        yield c, ln
        if target is not None and made >= target:
            break
    log(f"generated {made:,} fee lines in {time.time() - t0:.1f} s")


def _persons_within(c: pa.Table, ln: pa.Table, budget: int) -> pa.Array:
    psn = ln.column("psn_no").to_numpy(zero_copy_only=False)
    uniq, first, counts = np.unique(psn, return_index=True, return_counts=True)
    order = np.argsort(first)
    cum = np.cumsum(counts[order])
    keep = uniq[order][cum <= max(budget, counts[order][0])]
    return pa.array(keep)


_NOTES: list[str] = []
_LOG = [print]


def _note(msg: str) -> None:
    if msg not in _NOTES:
        _NOTES.append(msg)
        _LOG[0](f"note: {msg}")


def _people(rng, start, k, regions, y0, years, places, out_types, in_types, diag_pool, other_provinces, cross_share):
    ids = np.arange(start, start + k)
    psn_no = np.char.add("P", np.char.zfill(ids.astype(str), 9)).astype(object)
    insured = np.array(regions, dtype=object)[rng.integers(0, len(regions), k)]
    employee = rng.random(k) < 0.65
    retired = employee & (rng.random(k) < 0.30)
    age = np.where(employee, np.where(retired, rng.integers(60, 95, k), rng.integers(22, 60, k)),
                   rng.integers(0, 90, k))
    gend = np.where(rng.random(k) < 0.5, "1", "2").astype(object)
    balc0 = np.where(employee, np.round(rng.lognormal(7.5, 0.8, k), 2), 0.0)
    chronic = rng.random(k) < np.where(age >= 60, 0.25, 0.06)
    rows = []
    for yy in range(y0, y0 + years):
        # claims per person-year: outpatient long-tailed, inpatient rarer and likelier when old
        n_out = rng.negative_binomial(1.2, 1.2 / (1.2 + np.where(chronic, 14.0, 3.0)), k)
        n_in = rng.poisson(np.where(age >= 60, 0.35, 0.08), k)
        n = n_out + n_in
        owner = np.repeat(np.arange(k), n)
        inpat = _rank(owner) >= n_out[owner]
        rows.append((yy, owner, inpat))
    claims_parts = []
    lines_parts = []
    for yy, owner, inpat in rows:
        m = len(owner)
        if not m:
            continue
        day = rng.integers(0, 365 if yy % 4 else 366, m)
        d0 = np.datetime64(f"{yy}-01-01")
        hh = rng.integers(8, 18, m)
        mm = rng.integers(0, 60, m)
        setl = np.char.add(np.char.add((d0 + day).astype(str), " "),
                           np.char.add(np.char.zfill(hh.astype(str), 2),
                                       np.char.add(":", np.char.add(np.char.zfill(mm.astype(str), 2), ":00"))))
        setl = setl.astype(object)
        los = np.where(inpat, 2 + rng.negative_binomial(2, 2 / (2 + 8.0), m), 0)
        adm = (d0 + day - los).astype(str).astype(object)
        med_type = np.where(inpat, np.array(in_types, dtype=object)[np.minimum(
            (rng.random(m) < 0.12).astype(int), len(in_types) - 1)],
            np.array(out_types, dtype=object)[rng.choice(len(out_types), m, p=_p(len(out_types), [0.82, 0.1, 0.08]))])
        hosp_lv = np.where(inpat, np.where(rng.random(m) < 0.65, "3", "2"),
                           np.array(["1", "2", "3"], dtype=object)[rng.choice(3, m, p=[0.4, 0.3, 0.3])]).astype(object)
        community = np.where((hosp_lv == "1") & ~inpat & (rng.random(m) < 0.5), "1", "0").astype(object)
        ins_r = insured[owner]
        cross = rng.random(m) < cross_share
        treat = ins_r.copy()
        if cross.any():
            for i in np.flatnonzero(cross):
                choices = other_provinces + _districts(ins_r[i], set(places_r[0] for places_r in places))
                treat[i] = choices[int(rng.integers(0, len(choices)))] if choices else ins_r[i]
        filing = np.where(cross & (rng.random(m) < 0.6), np.array(FILINGS, dtype=object)[
            rng.integers(0, len(FILINGS), m)], None)
        n_diag = np.where(inpat, 1 + rng.poisson(1.0, m), (rng.random(m) < 0.4).astype(int))
        diag = np.full(m, "", dtype=object)
        pool_s = diag_pool.astype(str)
        for j in range(int(n_diag.max()) if m else 0):
            have = n_diag > j
            pick = pool_s[rng.integers(0, len(pool_s), m)]
            sep = np.where(j > 0, ";", "")
            diag = np.where(have, np.char.add(np.char.add(diag.astype(str), sep), pick), diag.astype(str)).astype(object)
        diag = np.where(n_diag > 0, diag, None)
        # lines per claim: outpatient few, inpatient many (long tail)
        nl = np.where(inpat, 8 + rng.negative_binomial(2, 2 / (2 + 22.0), m), 1 + rng.negative_binomial(1.5, 1.5 / (1.5 + 3.0), m))
        mdtrt = np.char.add(np.char.add(f"M{yy}", np.char.zfill((start + owner).astype(str), 9)),
                            np.char.zfill(_rank(owner).astype(str), 3)).astype(object)
        claims_parts.append({
            "mdtrt_id": mdtrt, "psn_no": psn_no[owner], "insuplc_admdvs": ins_r, "mdtrtarea_admvs": treat,
            "insutype": np.where(employee[owner], "310", "390").astype(object),
            "insutype_retr_flag": np.where(retired[owner], "1", "0").astype(object),
            "med_type": med_type, "hosp_lv": hosp_lv, "community_flag": community, "setl_time": setl,
            "begntime": np.where(inpat, adm, None), "age": age[owner].astype(np.int32), "gend": gend[owner],
            "filing_type": filing, "acct_used_flag": np.where(employee[owner], "1", "0").astype(object),
            "diag_code": diag, "_owner": owner, "_lines": nl, "_inpat": inpat, "_year": np.full(m, yy),
            "_treat": treat})
        # fee lines
        L = int(nl.sum())
        lc = np.repeat(np.arange(m), nl)
        sn = _rank(lc) + 1
        cls_draw = rng.choice(4, L, p=[SHARES["甲"], SHARES["乙"], SHARES["丙"], SHARES["unlisted"]])
        code = np.empty(L, dtype=object)
        price = np.empty(L, dtype=float)
        tr = treat[lc]
        ir = ins_r[lc]
        pairs = np.unique(np.char.add(np.char.add(tr.astype(str), "|"), ir.astype(str)))
        for pair in pairs:
            place, who = pair.split("|")
            pk = (place, yy) if (place, yy) in places else (_resolve(place, yy, places), yy)
            cat = places[pk]["cat"]
            yi_ok = _yi_pool(places[pk]["pack"], places[(who, yy)]["pack"], cat)
            if not yi_ok.all():
                _note(f"{places[pk]['pack'].key} (insured {who}): {int((~yi_ok).sum())} 乙类 entr"
                      f"{'y' if (~yi_ok).sum() == 1 else 'ies'} cannot be priced (no 乙类 self-pay ratio in "
                      "catalogue_defaults.selfpay_prop.乙 nor on the entry); their share is drawn as unlisted codes")
            sel_place = (tr == place) & (ir == who)
            for ci, cname in enumerate(("甲", "乙", "丙", "unlisted")):
                sel = sel_place & (cls_draw == ci)
                cnt_sel = int(sel.sum())
                if not cnt_sel:
                    continue
                pool = cat.codes.get(cname) if cname != "unlisted" else None
                prices = cat.price.get(cname) if cname != "unlisted" else None
                if cname == "乙" and pool is not None:
                    pool, prices = pool[yi_ok], prices[yi_ok]
                if pool is None or not len(pool):
                    code[sel] = np.char.add(f"X{place}U", np.char.zfill(rng.integers(0, 3000, cnt_sel).astype(str), 5)).astype(object)
                    price[sel] = rng.lognormal(3.5, 1.0, cnt_sel)
                    continue
                pick = rng.integers(0, len(pool), cnt_sel)
                code[sel] = pool[pick]
                # around the entry's price; 15 % above a ceiling
                bump = np.where(rng.random(cnt_sel) < 0.15, rng.uniform(1.01, 1.4, cnt_sel),
                                rng.uniform(0.6, 1.0, cnt_sel))
                price[sel] = prices[pick] * bump
        inl = inpat[lc]
        cnt = np.where(inl, rng.integers(1, 15, L), rng.integers(1, 5, L)).astype(np.int64)
        # long tail: a few expensive lines (implants, ICU days)
        tail = rng.random(L) < 0.004
        price = np.where(tail, price * rng.uniform(20, 200, L), price)
        pric_fen = np.maximum(1, np.round(price * 100)).astype(np.int64)      # 2-decimal prices
        amount = cnt * pric_fen
        lines_parts.append({
            "mdtrt_id": mdtrt[lc], "psn_no": psn_no[owner][lc], "feedetl_sn": sn.astype(np.int64),
            "med_list_codg": code, "cnt": cnt * 10_000, "pric": pric_fen * 10_000, "det_item_fee_sumamt": amount,
            "hosp_appr_flag": np.where(inl & (rng.random(L) < 0.5), "1", None)})
    claims = {k: np.concatenate([p[k] for p in claims_parts]) for k in claims_parts[0]} if claims_parts else None
    lines_ = {k: np.concatenate([p[k] for p in lines_parts]) for k in lines_parts[0]} if lines_parts else None
    if claims is None:
        return _empty_tables()
    # balance on each person's first claim of the population (later claims carry it on)
    order = np.lexsort((claims["setl_time"], claims["psn_no"]))
    claims = {k: v[order] for k, v in claims.items()}
    first = np.ones(len(order), dtype=bool)
    first[1:] = claims["psn_no"][1:] != claims["psn_no"][:-1]
    owner = claims["_owner"]
    has_b = first & (claims["acct_used_flag"] == "1")
    balc = np.round(balc0[owner] * 100).astype(np.int64)
    lorder = np.argsort(pd_index(claims["mdtrt_id"], lines_["mdtrt_id"]), kind="stable")
    lines_ = {k: v[lorder] for k, v in lines_.items()}
    ct = pa.table({
        "mdtrt_id": pa.array(claims["mdtrt_id"], pa.string()), "psn_no": pa.array(claims["psn_no"], pa.string()),
        "insuplc_admdvs": _dict(claims["insuplc_admdvs"]), "mdtrtarea_admvs": _dict(claims["mdtrtarea_admvs"]),
        "insutype": _dict(claims["insutype"]), "insutype_retr_flag": _dict(claims["insutype_retr_flag"]),
        "med_type": _dict(claims["med_type"]), "hosp_lv": _dict(claims["hosp_lv"]),
        "community_flag": _dict(claims["community_flag"]), "setl_time": pa.array(claims["setl_time"], pa.string()),
        "begntime": pa.array(claims["begntime"], pa.string()), "age": pa.array(claims["age"], pa.int32()),
        "gend": _dict(claims["gend"]), "filing_type": _dict(claims["filing_type"]),
        "acct_used_flag": _dict(claims["acct_used_flag"]),
        "balc": decimal_array(np.where(has_b, balc, 0), 2, has_b, precision=16),
        "diag_code": pa.array(claims["diag_code"], pa.string()),
    })
    lt = pa.table({
        "mdtrt_id": pa.array(lines_["mdtrt_id"], pa.string()), "psn_no": pa.array(lines_["psn_no"], pa.string()),
        "feedetl_sn": pc.cast(pa.array(lines_["feedetl_sn"]), pa.string()).dictionary_encode(),
        "med_list_codg": _dict(lines_["med_list_codg"]),
        "cnt": decimal_array(lines_["cnt"], 4, precision=16),
        "pric": decimal_array(lines_["pric"], 6, precision=16),
        "det_item_fee_sumamt": decimal_array(lines_["det_item_fee_sumamt"], 2, precision=16),
        "hosp_appr_flag": _dict(lines_["hosp_appr_flag"]),
    })
    return ct, lt


def pd_index(claim_ids: np.ndarray, line_ids: np.ndarray) -> np.ndarray:
    import pandas as pd
    return pd.Index(claim_ids).get_indexer(line_ids)


def _resolve(place: str, yy: int, places: dict) -> str:
    for cand in (place[:4] + "00", place[:2] + "0000"):
        if (cand, yy) in places:
            return cand
    raise SystemExit(f"no pack for treatment place {place} in {yy}")


def _p(n: int, w: list[float]) -> list[float]:
    w = w[:n]
    s = sum(w)
    return [x / s for x in w]


def _rank(owner: np.ndarray) -> np.ndarray:
    """Position of each element within its run of equal (sorted) owners."""
    if not len(owner):
        return owner
    start = np.r_[0, np.flatnonzero(owner[1:] != owner[:-1]) + 1]
    ranks = np.arange(len(owner)) - np.repeat(start, np.diff(np.r_[start, len(owner)]))
    return ranks


def _dict(values: np.ndarray) -> pa.Array:
    return pa.array(values, pa.string()).dictionary_encode()


def _empty_tables():
    return pa.table({"mdtrt_id": pa.array([], pa.string())}), pa.table({"mdtrt_id": pa.array([], pa.string())})


# ------------------------------------------------------------------ writing


def write(parts, out: Path, fmt: str, json_path: Path | None, partition_lines: int, log=print) -> dict:
    """Write partitions as paired row groups (Parquet) or whole CSV files; atomically (temp + rename)."""
    out = Path(out)
    tmp = out.with_name(out.name + f".partial-{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    did = uuid.uuid4().hex
    cw = lw = None
    n_claims = n_lines = groups = 0
    json_claims: list[dict] = []
    buf_c, buf_l, buf_n = [], [], 0
    csv_c = csv_l = None

    def flush():
        nonlocal cw, lw, groups, buf_c, buf_l, buf_n, csv_c, csv_l
        if not buf_c:
            return
        c = pa.concat_tables(buf_c, promote_options="permissive")
        ln = pa.concat_tables(buf_l, promote_options="permissive")
        buf_c, buf_l, buf_n = [], [], 0
        if fmt == "parquet":
            if cw is None:
                meta = parquet_meta(did)
                cw = pq.ParquetWriter(tmp / "claims.parquet", c.schema.with_metadata(meta))
                lw = pq.ParquetWriter(tmp / "feedetail.parquet", ln.schema.with_metadata(meta))
            cw.write_table(c.cast(cw.schema), row_group_size=max(1, c.num_rows))
            lw.write_table(ln.cast(lw.schema), row_group_size=max(1, ln.num_rows))
        else:
            import pyarrow.csv as pcsv
            c2 = _plain(c)
            l2 = _plain(ln)
            if csv_c is None:
                csv_c = pcsv.CSVWriter(tmp / "claims.csv", c2.schema)
                csv_l = pcsv.CSVWriter(tmp / "feedetail.csv", l2.schema)
            csv_c.write_table(c2)
            csv_l.write_table(l2)
        groups += 1

    for c, ln in parts:
        n_claims += c.num_rows
        n_lines += ln.num_rows
        buf_c.append(c)
        buf_l.append(ln)
        buf_n += ln.num_rows
        if json_path is not None:
            json_claims += _to_json(c, ln)
        if buf_n >= partition_lines:
            flush()
    flush()
    if cw is not None:
        cw.close()
        lw.close()
    if csv_c is not None:
        csv_c.close()
        csv_l.close()
    if out.exists():
        import shutil
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    os.replace(tmp, out)
    if json_path is not None:
        Path(json_path).write_text(json.dumps(json_claims, ensure_ascii=False, indent=1), encoding="utf-8")
    log(f"wrote {n_claims:,} claims and {n_lines:,} fee lines in {groups} partition(s) to {out}"
        + (f" and {len(json_claims):,} JSON claims to {json_path}" if json_path else ""))
    return {"claims": n_claims, "lines": n_lines, "partitions": groups}


def _plain(t: pa.Table) -> pa.Table:
    cols = []
    for c in t.columns:
        if pa.types.is_dictionary(c.type):
            c = c.cast(pa.string())
        cols.append(c)
    return pa.table(cols, names=t.column_names)


def _to_json(c: pa.Table, ln: pa.Table) -> list[dict]:
    rows = c.to_pylist()
    lines: dict[str, list] = {}
    for r in ln.to_pylist():
        mid = r.pop("mdtrt_id")
        r.pop("psn_no", None)
        lines.setdefault(mid, []).append({k: (format(v, "f") if hasattr(v, "as_tuple") else v) for k, v in r.items()
                                          if v is not None})
    out = []
    for r in rows:
        d = {k: (format(v, "f") if hasattr(v, "as_tuple") else v) for k, v in r.items() if v is not None}
        diag = d.pop("diag_code", None)
        if diag:
            d["diseinfo"] = [{"diag_code": x} for x in diag.split(";")]
        d["feedetail"] = lines.get(d["mdtrt_id"], [])
        out.append(d)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="output folder (claims + feedetail tables)")
    ap.add_argument("--regions", default="regions", help="pack folder (default: regions)")
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--lines", type=int, help="about this many fee lines (whole persons)")
    size.add_argument("--persons", type=int, help="this many persons")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--year", type=int, help="settlement year (default: the year the packs cover best)")
    ap.add_argument("--years", type=int, default=1, help="consecutive years per person (accumulators reset)")
    ap.add_argument("--region", help="insured region (default: every region whose pack has fund layers)")
    ap.add_argument("--cross-share", type=float, default=0.05, help="share of claims treated elsewhere (异地)")
    ap.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    ap.add_argument("--json", type=Path, help="also write the claims as a JSON list (small populations)")
    ap.add_argument("--partition-lines", type=int, default=1_000_000, help="fee lines per partition / row group")
    a = ap.parse_args(argv)
    if a.lines is None and a.persons is None:
        a.lines = 100_000
    if a.json and (a.lines or 0) > 500_000:
        print("note: --json with more than 500,000 lines makes a very large file", file=sys.stderr)
    parts = generate(a.regions, persons=a.persons, lines=a.lines, seed=a.seed, year=a.year, years=a.years,
                     region=a.region, cross_share=a.cross_share, partition_lines=a.partition_lines,
                     log=lambda s: print(s, file=sys.stderr))
    write(parts, a.out, a.format, a.json, a.partition_lines, log=lambda s: print(s, file=sys.stderr))
    return 0


if __name__ == "__main__":
    sys.exit(main())
