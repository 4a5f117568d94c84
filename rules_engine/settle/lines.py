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
AUDIT_REJECTED = "AUDIT_REJECTED"

CHRGITM_LV = {"甲": "01", "乙": "02", "丙": "03"}
NO_CEILING = 999999  # the platform's "no price ceiling" in pric_uplmt_amt


class Reason:
    """Why a line came out as it did. The words are written only when asked for (explanations,
    results): the per-claim hot path records a code and the objects it refers to."""

    __slots__ = ("code", "entry", "restriction", "arg", "_src")

    def __init__(self, code: str, entry: CatEntry | None = None, restriction=None, arg=None, src: Src | None = None):
        self.code, self.entry, self.restriction, self.arg, self._src = code, entry, restriction, arg, src

    @property
    def src(self) -> Src | None:
        if self._src is not None:
            return self._src
        if self.code == AUDIT_REJECTED:
            return self.arg.src
        if self.restriction is not None:
            return self.restriction.src
        if self.entry is not None:
            return Src(self.entry.file, self.entry.line, 1)
        return None

    @property
    def text(self) -> str | None:
        return self.restriction.text if self.restriction is not None else None

    @property
    def message(self) -> str:
        c, e, r, a = self.code, self.entry, self.restriction, self.arg
        if c == NOT_LISTED or c == UNMAPPED:
            return a
        if c == CLASS_C:
            return f"{e.code} {e.name} is 丙类 (not covered)"
        if c == RESTRICTION_UNMET:
            return f"restriction {r.id} not met"
        if c == REVIEW:
            if a == "unmet":
                return f"restriction {r.id} not met; paid but flagged for review"
            return (f"restriction {r.id} is not encoded as a condition; flagged for review"
                    + (f" ({r.review_reason})" if r.review_reason else ""))
        if c == OVER_CEILING:
            pric, ceil = a
            return f"unit price {pric / 1e6:g} above the ceiling {ceil / 1e6:g}"
        if c == SELFPAY:
            return f"乙类 先行自付 {a / 10_000:g}%"
        if c == AUDIT_REJECTED:
            return f"audit rule {a.rule_id} ({a.kind}): {a.message}" + (f" — {a.ref.label()}" if a.ref is not None else "")
        return str(a or c)

    def __repr__(self) -> str:  # pragma: no cover
        return f"Reason({self.code})"


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
                date: str, coded=None) -> list[LineResult]:
    """`coded`: the claim's code conversion (rules_engine.coding ClaimCoding) when it had to map
    hospital codes — line k is then priced under coded.lines[k].national_code."""
    pack = tplan.pack
    rounding = pack.settings.rounding
    ceiling_first = pack.settings.line_order == "ceiling_first"
    own_defaults = selfpay_pack.selfpay_default
    same_pack = selfpay_pack is pack
    restrictions = tplan.restrictions
    out: list[LineResult] = []
    append = out.append
    lookup = pack.lookup
    exact = pack.catalogue.get
    mapped = coded.lines if coded is not None else None
    for k, ln in enumerate(lines):
        amt = ln.amount
        code = ln.med_list_codg if mapped is None else mapped[k].national_code
        entry = None
        if code is not None:
            # the usual case inline: one exact entry valid on the date; anything else via lookup()
            found = exact(code)
            if found is not None and len(found) == 1:
                e = found[0]
                if e.match == "exact" and (e.valid_from is None or e.valid_from <= date) and (
                        e.valid_to is None or date <= e.valid_to):
                    entry = e
            if entry is None:
                entry = lookup(code, date)
        if entry is None:
            if code is None and mapped is not None:
                append(LineResult(ln, None, "03", PPM, None, amt, 0, 0, 0,
                                  [Reason(UNMAPPED, arg=f"{ln.medins_list_codg or '(no code)'}: {mapped[k].reason}")],
                                  code=None))
                continue
            why = (f"{code} is not in the catalogue of {pack.key} on {date}" if code is not None
                   else "the line has no national code (med_list_codg)")
            append(LineResult(ln, None, "03", PPM, None, amt, 0, 0, 0, [Reason(NOT_LISTED, arg=why)], code=code))
            continue
        cat = entry.category
        if cat == "丙":
            append(LineResult(ln, entry, "03", PPM, entry.ceiling, amt, 0, 0, 0, [Reason(CLASS_C, entry)], code=code))
            continue
        reasons: list[Reason] = []
        review = False
        unmet = False
        if entry.restrictions:
            lfacts = None
            for rid in entry.restrictions:
                fn, r = restrictions[rid]
                if fn is None:
                    review = True
                    reasons.append(Reason(REVIEW, entry, r))
                    continue
                if lfacts is None:
                    lfacts = line_facts(ln, entry)
                if not fn(facts, lfacts):
                    if r.on_fail == "review":
                        review = True
                        reasons.append(Reason(REVIEW, entry, r, "unmet"))
                    else:
                        unmet = True
                        reasons.append(Reason(RESTRICTION_UNMET, entry, r))
        lv = CHRGITM_LV[cat]
        if unmet:
            append(LineResult(ln, entry, lv, PPM, entry.ceiling, amt, 0, 0, 0, reasons, review, True, code=code))
            continue
        # self-pay ratio: entry override (treatment place), else the pack default for the class
        rsrc = None
        if same_pack and entry.selfpay is not None:
            ratio = entry.selfpay
        else:
            ratio = own_defaults.get(cat)
            if cat == "乙":
                rsrc = selfpay_pack.selfpay_src
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
            reasons.append(Reason(OVER_CEILING, entry, arg=(ln.pric, ceil)))
        if pre:
            reasons.append(Reason(SELFPAY, entry, arg=ratio, src=rsrc) if rsrc is not None
                           else Reason(SELFPAY, entry, arg=ratio))
        append(LineResult(ln, entry, lv, ratio, ceil, 0, over, pre, amt - over - pre, reasons, review,
                          bool(entry.restrictions), rsrc, code))
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
