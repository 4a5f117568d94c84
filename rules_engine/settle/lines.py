"""Per fee line, with the catalogue of the *treatment* place.

For one line, in this order (docs/settlement.md §Lines):
1. not in the catalogue on the claim's date, 丙类, or a payment restriction unmet → 全自费
   (`fulamt_ownpay_amt`); every unmet restriction is named, not only the first;
2. unit price above the ceiling → the excess × count is 超限价 (`overlmt_amt`);
3. 乙类 → the self-pay ratio of what remains is 先行自付 (`preselfpay_amt`);
4. the rest is 符合政策范围 (`inscp_scp_amt`).
Steps 2 and 3 swap with `settings.line_order: selfpay_first`. Each derived amount is rounded
once, to the fen, with the pack's rounding mode.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..conditions.language import Src
from ..model.claim import LineIn, SettlementError
from ..money import PPM, round_div
from ..packs.model import CatEntry, CompiledPack
from .plan import PackPlan

# reason codes on a line
NOT_LISTED = "NOT_LISTED"
CLASS_C = "CLASS_C"
RESTRICTION_UNMET = "RESTRICTION_UNMET"
REVIEW = "RESTRICTION_REVIEW"
OVER_CEILING = "OVER_CEILING"
SELFPAY = "SELFPAY"
UNMAPPED = "UNMAPPED"

CHRGITM_LV = {"甲": "01", "乙": "02", "丙": "03"}
NO_CEILING = 999999  # the platform's "no price ceiling" in pric_uplmt_amt


@dataclass(slots=True)
class Reason:
    code: str
    message: str
    src: Src | None = None
    text: str | None = None  # a restriction's published wording


@dataclass(slots=True)
class LineResult:
    line: LineIn
    entry: CatEntry | None
    chrgitm_lv: str
    selfpay_ppm: int
    ceiling: int | None
    fulamt: int
    overlmt: int
    pre: int
    inscp: int
    reasons: list[Reason] = field(default_factory=list)
    review: bool = False
    restricted: bool = False
    selfpay_src: Src | None = None
    code: str | None = None  # national code used (after local → national mapping)


class SelfpayUnset(SettlementError):
    code = "E-SELFPAY-UNSET"


def price_lines(lines: list[LineIn], facts: dict, tplan: PackPlan, selfpay_pack: CompiledPack,
                date: str) -> list[LineResult]:
    pack = tplan.pack
    rounding = pack.settings.rounding
    ceiling_first = pack.settings.line_order == "ceiling_first"
    own_defaults = selfpay_pack.selfpay_default
    restrictions = tplan.restrictions
    out: list[LineResult] = []
    lookup = pack.lookup
    for ln in lines:
        amt = ln.amount
        code = ln.med_list_codg
        entry = lookup(code, date) if code is not None else None
        if entry is None:
            why = (f"{code} is not in the catalogue of {pack.key} on {date}" if code is not None
                   else "the line has no national code (med_list_codg)")
            out.append(LineResult(ln, None, "03", PPM, None, amt, 0, 0, 0,
                                  [Reason(NOT_LISTED, why)], code=code))
            continue
        cat = entry.category
        esrc = Src(entry.file, entry.line, 1)
        if cat == "丙":
            out.append(LineResult(ln, entry, "03", PPM, entry.ceiling, amt, 0, 0, 0,
                                  [Reason(CLASS_C, f"{entry.code} {entry.name} is 丙类 (not covered)", esrc)], code=code))
            continue
        reasons: list[Reason] | None = None
        review = False
        unmet = False
        if entry.restrictions:
            reasons = []
            lfacts = None
            for rid in entry.restrictions:
                fn, r = restrictions[rid]
                if fn is None:
                    review = True
                    reasons.append(Reason(REVIEW, f"restriction {rid} is not encoded as a condition; flagged for "
                                          f"review" + (f" ({r.review_reason})" if r.review_reason else ""), r.src, r.text))
                    continue
                if lfacts is None:
                    lfacts = line_facts(ln, entry)
                if not fn(facts, lfacts):
                    if r.on_fail == "review":
                        review = True
                        reasons.append(Reason(REVIEW, f"restriction {rid} not met; paid but flagged for review",
                                              r.src, r.text))
                    else:
                        unmet = True
                        reasons.append(Reason(RESTRICTION_UNMET, f"restriction {rid} not met", r.src, r.text))
        lv = CHRGITM_LV[cat]
        if unmet:
            out.append(LineResult(ln, entry, lv, PPM, entry.ceiling, amt, 0, 0, 0, reasons, review, True, code=code))
            continue
        # self-pay ratio: entry override (treatment place), else the pack default for the class
        if selfpay_pack is pack and entry.selfpay is not None:
            ratio, rsrc = entry.selfpay, esrc
        else:
            ratio = own_defaults.get(cat)
            rsrc = selfpay_pack.selfpay_src if cat == "乙" else None
            if ratio is None:
                if cat == "甲":
                    ratio = 0
                else:
                    raise SelfpayUnset(
                        f"pack {selfpay_pack.key} sets no 乙类 self-pay ratio (catalogue_defaults.selfpay_prop.乙) "
                        f"and entry {entry.code} {entry.name} ({entry.file}:{entry.line}) has none; line "
                        f"{ln.feedetl_sn} cannot be priced")
        over = 0
        ceil = entry.ceiling
        if ceiling_first:
            if ceil is not None and ln.pric > ceil:
                over = min(amt, round_div((ln.pric - ceil) * ln.cnt, 10**8, rounding))
            pre = round_div((amt - over) * ratio, PPM, rounding) if ratio else 0
        else:
            pre = round_div(amt * ratio, PPM, rounding) if ratio else 0
            if ceil is not None and ln.pric > ceil:
                over = min(amt - pre, round_div((ln.pric - ceil) * ln.cnt, 10**8, rounding))
        if over:
            if reasons is None:
                reasons = []
            reasons.append(Reason(OVER_CEILING, f"unit price {ln.pric / 1e6:g} above the ceiling {ceil / 1e6:g}", esrc))
        if pre:
            if reasons is None:
                reasons = []
            reasons.append(Reason(SELFPAY, f"乙类 先行自付 {ratio / 10_000:g}%", rsrc))
        out.append(LineResult(ln, entry, lv, ratio, ceil, 0, over, pre, amt - over - pre,
                              reasons if reasons is not None else [], review, bool(entry.restrictions), rsrc, code))
    return out


def line_facts(ln: LineIn, entry: CatEntry | None) -> dict:
    return {
        "med_list_codg": ln.med_list_codg,
        "medins_list_codg": ln.medins_list_codg,
        "cnt": ln.cnt / 10_000,
        "pric": ln.pric / 1_000_000,
        "det_item_fee_sumamt": ln.amount / 100,
        "hosp_appr_flag": ln.hosp_appr_flag,
        "prd_days": ln.prd_days,
        "med_chrgitm_type": entry.med_chrgitm_type if entry else None,
        "list_kind": entry.kind if entry else None,
    }
