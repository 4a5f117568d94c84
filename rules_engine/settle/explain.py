"""Explain every yuan: for each amount, the rule, the pack (region@version#hash), the YAML line it
came from, and the formula with the numbers put in — so an analyst can check it with a
calculator. Built on demand from what the settlement recorded; the hot path pays nothing for it.
"""
from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..conditions.language import describe
from ..money import PPM, fen_str, ppm_pct

if TYPE_CHECKING:  # pragma: no cover
    from ..model.settlement import Settlement
    from .layers import LayerResult


def _y(fen: int) -> str:
    return fen_str(fen)


def _pct(ppm: int) -> str:
    return ppm_pct(ppm)


def _at(src) -> str | None:
    return f"{src.file}:{src.line}" if src is not None else None


def layer_formula(r: "LayerResult") -> str:
    parts = [f"base {_y(r.base + r.prior_selfpay)}"]
    if r.prior_selfpay:
        parts.append(f"cross-region prior self-pay {_pct(r.cut.value)} = {_y(r.prior_selfpay)} → base {_y(r.base)}")
    if r.shared_from:
        parts.append(f"deductible {_y(r.deductible)} (shared with {r.shared_from})")
    elif r.deductible_amount is not None:
        s = f"deductible {_y(r.deductible)}"
        if r.deductible_used_before:
            s += f" (= {_y(r.deductible_amount)} − {_y(r.deductible_used_before)} already paid this year, at most the base)"
        elif r.deductible != r.deductible_amount:
            s += f" (of {_y(r.deductible_amount)}, limited to the base)"
        parts.append(s)
    if r.position:
        parts.append(f"band axis continues from {_y(r.position)} ({r.layer.bands.position} before this claim)")
    terms = []
    for s in r.segments:
        ratio = _pct(s.ratio) if s.ratio == s.ratio_raw else f"{_pct(s.ratio)} (table {_pct(s.ratio_raw)})"
        terms.append(f"({_y(s.hi)} − {_y(s.lo)}) × {ratio}")
    if terms:
        exact = Decimal(r.exact) / (PPM * 100)
        parts.append(" + ".join(terms) + f" = {exact:.6f} → {_y(r.uncapped)}")
    else:
        parts.append("nothing above the deductible → 0.00")
    for u in r.caps:
        if u.binding:
            parts.append(f"cap {_y(u.amount)}" + (f" − {_y(u.used)} used" if u.used else "") + f" leaves {_y(u.remaining)}")
    if r.bound is not None:
        parts.append(f"limited to what earlier layers left: {_y(r.bound)}")
    parts.append(f"pays {_y(r.pay)}")
    return "; ".join(parts)


def explain(s: "Settlement") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    t, i = s.treatment, s.insured
    tl, il = t.label, i.label

    for lr in s.lines:
        ln = lr.line
        name = lr.entry.name if lr.entry else ""
        parts = []
        if lr.fulamt:
            parts.append(f"全自费 {_y(lr.fulamt)}")
        if lr.overlmt:
            parts.append(f"超限价 ({ln.pric / 1e6:g} − {lr.ceiling / 1e6:g}) × {ln.cnt / 1e4:g} = {_y(lr.overlmt)}")
        if lr.pre:
            base = ln.amount - lr.overlmt if s.treatment.settings.line_order == "ceiling_first" else ln.amount
            parts.append(f"先行自付 {_y(base)} × {_pct(lr.selfpay_ppm)} = {_y(lr.pre)}")
        parts.append(f"符合范围 {_y(lr.inscp)}")
        items.append({
            "field": "result", "line": ln.feedetl_sn, "code": lr.code, "name": name,
            "amount": _y(ln.amount), "pack": tl,
            "at": f"{lr.entry.file}:{lr.entry.line}" if lr.entry else None,
            "rule": "catalogue " + (f"{lr.entry.category}类" if lr.entry else "(not listed)"),
            "formula": f"{_y(ln.amount)} = " + " + ".join(parts),
            "reasons": [{"code": r.code, "message": r.message, "at": _at(r.src), **({"text": r.text} if r.text else {})}
                        for r in lr.reasons],
        })
    if s.facts.get("cross_region"):
        f = s.claim.filing
        cr = i.cross_region
        cut = next((c for c in (cr.cuts if cr else ()) if s.facts.get("filing_type") in c.filing), None)
        elsewhere = s.facts["cross_province"] if cr is None or cr.scope == "province" else True
        items.append({
            "field": "filing", "amount": "", "pack": il, "rule": "异地就医 — 就医地目录、参保地政策",
            "filing_type": s.facts.get("filing_type"),
            "filing": ({"begndate": f.get("begndate"), "enddate": f.get("enddate"), "admdvs": f.get("admdvs"),
                        "source": f.get("source"), "id": f.get("id")} if f else
                       ("stated by the claim's filing_type" if s.claim.filing_type else
                        "no filing on the claim" + ("; the pack's emergency condition holds, so it counts as filed"
                                                    if s.facts.get("filing_type") == "emergency" else ""))),
            "formula": (("no cross-region section in the insured pack: home benefits" if cr is None else
                         "treated in the same province: no cut" if not elsewhere else
                         f"cut {cut.kind} {_pct(cut.value) if cut.kind != 'ratio_times' else cut.value / PPM}"
                         if cut is not None and cut.kind != "none" else "home benefits for this filing type")),
            "at": _at(cut.src) if cut is not None else (_at(cr.src) if cr is not None else None)})
    items.append({"field": "medfee_sumamt", "amount": _y(s.medfee_sumamt), "pack": tl, "rule": "sum of lines",
                  "formula": f"{_y(s.fulamt_ownpay_amt)} + {_y(s.overlmt_selfpay)} + {_y(s.preselfpay_amt)} + "
                             f"{_y(s.inscp_scp_amt)} (全自费 + 超限价 + 先行自付 + 符合范围)"})
    for r in s.layers:
        layer = r.layer
        detail: dict[str, Any] = {
            "field": layer.setl_field, "fund_pay_type": layer.fund_pay_type, "amount": _y(r.pay),
            "rule": f"layer {layer.id} ({layer.name})", "pack": il, "at": _at(layer.src),
            "formula": layer_formula(r), "sources": list(layer.sources),
        }
        steps = []
        if layer.when is not None:
            steps.append({"step": "applies", "because": describe(layer.when), "at": _at(layer.src)})
        if r.cut is not None:
            f = s.claim.filing
            steps.append({"step": "cross-region cut", "filing": s.facts.get("filing_type"), "kind": r.cut.kind,
                          **({"filed": f"{f.get('begndate')} … {f.get('enddate') or 'open'}",
                              "filing_source": f.get("source")} if f else {}),
                          "value": _pct(r.cut.value) if r.cut.kind != "ratio_times" else f"× {r.cut.value / PPM:g}",
                          "at": _at(r.cut.src)})
        ded = layer.deductible
        if ded is not None and ded.amount is not None and not r.shared_from:
            case = ded.amount.cases[r.deductible_case] if r.deductible_case >= 0 else None
            steps.append({"step": "deductible", "amount": _y(r.deductible_amount or 0), "period": ded.period,
                          "case": describe(case.when) if case else "else",
                          "at": _at(case.src if case else ded.amount.otherwise_src)})
        rc = layer.bands.ratios
        case = rc.cases[r.ratio_case] if r.ratio_case >= 0 else None
        steps.append({"step": "bands", "case": describe(case.when) if case else ("else" if rc.cases else "single table"),
                      "at": _at(case.src if case else rc.otherwise_src),
                      "position": _y(r.position) if layer.bands.position else None,
                      "interval": [_y(r.lo), _y(r.hi)], "basis": layer.bands.basis,
                      "segments": [{"from": _y(sg.lo), "to": _y(sg.hi), "ratio": _pct(sg.ratio),
                                    "table_ratio": _pct(sg.ratio_raw), "at": _at(sg.band.src)} for sg in r.segments]})
        for a in r.adjustments:
            steps.append({"step": "ratio adjustment", "kind": a.kind,
                          "value": f"{a.value / PPM:g}", "origin": a.origin,
                          "because": describe(a.when) if a.when is not None else s.facts.get("filing_type"),
                          "at": _at(a.src), **({"note": a.note} if a.note else {})})
        for u in r.caps:
            steps.append({"step": "cap", "amount": _y(u.amount), "period": u.cap.period, "used": _y(u.used),
                          "remaining": _y(u.remaining), "binding": u.binding, "at": _at(u.cap.src)})
        detail["steps"] = steps
        items.append(detail)
    items.append({"field": "fund_pay_sumamt", "amount": _y(s.fund_pay_sumamt), "pack": il,
                  "rule": "sum of fund layers",
                  "formula": " + ".join(f"{r.layer.setl_field} {_y(r.pay)}" for r in s.layers) or "no layer applies"})
    items.append({"field": "act_pay_dedc", "amount": _y(s.act_pay_dedc), "pack": il,
                  "rule": "deductible of the first layer with its own deductible"})
    items.append({"field": "psn_part_amt", "amount": _y(s.psn_part_amt), "pack": il, "rule": "what the funds do not pay",
                  "formula": f"{_y(s.medfee_sumamt)} − {_y(s.fund_pay_sumamt)} − {_y(s.hosp_part_amt)}"})
    if s.acct_pay or (s.insured.personal_account is not None):
        items.append({"field": "acct_pay", "amount": _y(s.acct_pay), "pack": il,
                      "rule": "personal account, bounded by the balance and what it may pay",
                      "at": _at(s.insured.personal_account.src) if s.insured.personal_account else None})
    items.append({"field": "psn_cash_pay", "amount": _y(s.psn_cash_pay), "pack": il, "rule": "cash",
                  "formula": f"{_y(s.psn_part_amt)} − {_y(s.acct_pay)}"})
    return items


def render_text(s: "Settlement") -> str:
    """The explanation as plain text, for `simulate --explain`."""
    out = [f"packs: treatment {s.treatment.label}, insured {s.insured.label}"]
    for item in explain(s):
        head = f"{item['field']}"
        if item["field"] == "filing":
            out.append(f"filing: {item['filing_type']} — {item['filing']}   [{item['rule']}; {item['pack']}"
                       + (f"; {item['at']}" if item.get("at") else "") + "]")
            out.append(f"    {item['formula']}")
            continue
        if item["field"] == "result":
            head = f"line {item['line']} {item.get('code') or ''} {item.get('name') or ''}".rstrip()
        out.append(f"{head}: {item['amount']}   [{item['rule']}; {item['pack']}"
                   + (f"; {item['at']}" if item.get("at") else "") + "]")
        if item.get("formula"):
            out.append(f"    {item['formula']}")
        for r in item.get("reasons", []):
            out.append(f"    · {r['code']}: {r['message']}" + (f" — 「{r['text']}」" if r.get("text") else "")
                       + (f" ({r['at']})" if r.get("at") else ""))
        for st in item.get("steps", []):
            desc = ", ".join(f"{k}={v}" for k, v in st.items() if k not in ("step", "segments", "at") and v is not None)
            out.append(f"    · {st['step']}: {desc}" + (f" ({st['at']})" if st.get("at") else ""))
            for sg in st.get("segments", []):
                out.append(f"        {sg['from']} → {sg['to']} at {sg['ratio']}" + (f" ({sg['at']})" if sg.get("at") else ""))
    return "\n".join(out)
