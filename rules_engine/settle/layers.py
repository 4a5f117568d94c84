"""Per claim, with the policy of the *insured* place: the chain of fund layers.

Each applicable layer, in pack order (docs/settlement.md §Layers):
1. base — the in-scope amount, or what earlier layers left of it;
2. a cross-region `prior_selfpay` cut takes its share of the base first;
3. deductible d = min(base, amount − paid so far this year) (or shared with an earlier layer);
4. the claim occupies [P + d, P + base] on the band axis (gross; P = the position accumulator)
   or [P, P + base − d] (net); each band contributes overlap × ratio, ratios adjusted in order
   (retired self-share, cross-region points or factor);
5. the exact sum is rounded once to the fen, then limited by each cap (per claim or what is
   left of a yearly cap) and by what the earlier layers left of the in-scope amount.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..money import PPM, round_div
from ..packs.model import Adjust, Band, Cap, Cut  # noqa: F401 (types of the results)
from .plan import LayerPlan, PackPlan


@dataclass(slots=True)
class Segment:
    lo: int
    hi: int
    ratio: int        # ppm after adjustments
    ratio_raw: int    # ppm as the table says
    band: Band
    exact: int        # fen × ppm


@dataclass(slots=True)
class CapUse:
    cap: Cap
    amount: int
    used: int
    remaining: int
    case: int
    binding: bool


@dataclass(slots=True)
class LayerResult:
    plan: LayerPlan
    base: int
    prior_selfpay: int = 0
    cut: Cut | None = None
    deductible: int = 0
    deductible_amount: int | None = None
    deductible_used_before: int = 0
    deductible_case: int = -1
    shared_from: str | None = None
    position: int = 0
    lo: int = 0
    hi: int = 0
    ratio_case: int = -1
    segments: list[Segment] = field(default_factory=list)
    adjustments: list[Adjust] = field(default_factory=list)
    exact: int = 0
    uncapped: int = 0
    caps: list[CapUse] = field(default_factory=list)
    bound: int | None = None  # limit by what earlier layers left
    pay: int = 0

    @property
    def layer(self):
        return self.plan.layer


def adjust_ratio(r: int, kind: str, v: int, rounding: str) -> int:
    if kind == "self_share_times":
        return PPM - round_div((PPM - r) * v, PPM, rounding)
    if kind == "ratio_minus":
        return max(0, r - v)
    if kind == "ratio_times":
        return round_div(r * v, PPM, rounding)
    if kind == "ratio_plus":
        return min(PPM, r + v)
    return r


def cut_for(iplan: PackPlan, facts: dict) -> Cut | None:
    cr = iplan.pack.cross_region
    if cr is None:
        return None
    elsewhere = facts["cross_province"] if cr.scope == "province" else facts["cross_region"]
    if not elsewhere:
        return None
    filing = facts.get("filing_type") or "unfiled"
    for cut in cr.cuts:
        if filing in cut.filing:
            return cut
    return None


def run_layers(iplan: PackPlan, facts: dict, inscp: int, pre: int, acc: dict[str, int]) -> list[LayerResult]:
    pack = iplan.pack
    rounding = pack.settings.rounding
    cut = cut_for(iplan, facts)
    cut_layers = pack.cross_region.layers if pack.cross_region is not None else None
    results: list[LayerResult] = []
    by_id: dict[str, LayerResult] = {}
    paid = 0
    for lp in iplan.layers:
        if not lp.when(facts, None):
            continue
        layer = lp.layer
        kind = layer.base
        if kind == "inscp":
            base, domain = inscp, inscp
        elif kind == "inscp_remaining":
            base, domain = max(0, inscp - paid), inscp
        else:  # policy_remaining
            base, domain = max(0, inscp + pre - paid), inscp + pre
        res = LayerResult(lp, base)
        lcut = cut if cut is not None and (cut_layers is None or layer.id in cut_layers) else None
        if lcut is not None and lcut.kind != "none":
            res.cut = lcut
            if lcut.kind == "prior_selfpay":
                res.prior_selfpay = round_div(base * lcut.value, PPM, rounding)
                base -= res.prior_selfpay
        # deductible
        ded = layer.deductible
        d = 0
        if ded is not None:
            if ded.shared_with:
                other = by_id.get(ded.shared_with)
                d = min(base, other.deductible if other is not None else 0)
                res.shared_from = ded.shared_with
            elif lp.deductible is not None:
                amount, res.deductible_case = lp.deductible.pick(facts)
                res.deductible_amount = amount
                used = acc.get(ded.accumulator, 0) if ded.period == "year" and ded.accumulator else 0
                res.deductible_used_before = used
                d = min(base, max(0, amount - used))
        res.deductible = d
        # bands
        bands, res.ratio_case = lp.ratios.pick(facts)
        adjs = [a for f, a in lp.adjust if f(facts, None)]
        if res.cut is not None and res.cut.kind in ("ratio_minus", "ratio_times"):
            adjs.append(iplan.cut_adjusts[id(res.cut)])
        res.adjustments = adjs
        pos = acc.get(layer.bands.position, 0) if layer.bands.position else 0
        res.position = pos
        if layer.bands.basis == "gross":
            lo, hi = pos + d, pos + base
        else:
            lo, hi = pos, pos + base - d
        res.lo, res.hi = lo, hi
        exact = 0
        edge = 0
        for band in bands:
            up = band.upper
            s_lo = lo if lo > edge else edge
            s_hi = hi if up is None or hi < up else up
            if s_hi > s_lo:
                r = band.ratio
                for a in adjs:
                    r = adjust_ratio(r, a.kind, a.value, rounding)
                x = (s_hi - s_lo) * r
                exact += x
                res.segments.append(Segment(s_lo, s_hi, r, band.ratio, band, x))
            if up is None or up >= hi:
                break
            edge = up
        res.exact = exact
        pay = round_div(exact, PPM, rounding)
        res.uncapped = pay
        for cplan, cap in lp.caps:
            amount, case = cplan.pick(facts)
            used = acc.get(cap.accumulator, 0) if cap.period == "year" and cap.accumulator else 0
            remaining = max(0, amount - used)
            binding = pay > remaining
            if binding:
                pay = remaining
            res.caps.append(CapUse(cap, amount, used, remaining, case, binding))
        left = max(0, domain - paid)
        if pay > left:
            res.bound = left
            pay = left
        res.pay = pay
        paid += pay
        results.append(res)
        by_id[layer.id] = res
    return results

