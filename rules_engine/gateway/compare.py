"""The platform's answer against our own settlement — before 2207, field by field, line by line.

No hospital system does this: they send 2207 with whatever 2206 said. Here each 2204 line result
and each 2206 total is set against the engine's figure for the same claim, and every difference is
reported with the explanation of *our* figure — the rule, the pack (region@version#hash) and the
YAML/CSV line it came from — so a billing officer sees at once whether the platform or our pack is
wrong. The region's tolerance decides: a difference above it blocks 2207 (default) or only warns.

Also here: the day's totals for 3201 from the outbox, with the region's definition of
`fund_pay_sumamt` (with or without the personal account — Hunan and Zhuhai differ, reference
gateway.md §3.5).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterable, Mapping

from ..money import fen_str, scaled_int

#: setlinfo totals compared (the platform's field names = ours)
SETLINFO_FIELDS = ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt",
                   "act_pay_dedc", "hifp_pay", "cvlserv_pay", "hifes_pay", "hifmi_pay", "hifob_pay", "maf_pay",
                   "oth_pay", "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay", "hosp_part_amt")
#: 2204 result amounts compared per line
LINE_AMOUNTS = ("det_item_fee_sumamt", "fulamt_ownpay_amt", "overlmt_amt", "preselfpay_amt", "inscp_scp_amt")
#: per-line values that explain an amount difference (reported, never blocking by themselves)
LINE_INFO = ("chrgitm_lv", "selfpay_prop")


def _fen(v: Any) -> int | None:
    if v is None:
        return None
    if isinstance(v, float):
        v = repr(v)
    return scaled_int(v, 2)


@dataclass
class Difference:
    scope: str                 # "setlinfo" | "line" | "setldetail"
    field: str
    ours: str | None
    theirs: str | None
    delta: str | None          # platform − ours, yuan
    severity: str              # "block" | "warn"
    line: str | None = None    # feedetl_sn
    fund_pay_type: str | None = None
    explanation: dict[str, Any] = field(default_factory=dict)
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"scope": self.scope, "field": self.field, "ours": self.ours, "platform": self.theirs,
             "delta": self.delta, "severity": self.severity}
        for k in ("line", "fund_pay_type", "note"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        if self.explanation:
            d["explanation"] = self.explanation
        return d


@dataclass
class Comparison:
    """Every difference, and whether 2207 may go ahead."""

    differences: list[Difference]
    compared_fields: int
    compared_lines: int
    tolerance: str
    on_difference: str
    pack: str = ""

    @property
    def blocked(self) -> bool:
        return any(d.severity == "block" for d in self.differences)

    @property
    def result(self) -> str:
        return "block" if self.blocked else ("warn" if self.differences else "match")

    def to_dict(self) -> dict[str, Any]:
        return {"result": self.result, "blocked": self.blocked, "compared_fields": self.compared_fields,
                "compared_lines": self.compared_lines, "tolerance": self.tolerance,
                "on_difference": self.on_difference, "pack": self.pack,
                "differences": [d.to_dict() for d in self.differences]}

    def render(self, *, title: str = "platform vs engine") -> str:
        lines = f"{self.compared_lines} line" + ("" if self.compared_lines == 1 else "s")
        head = (f"{title}: {self.compared_fields} totals and {lines} compared "
                f"(tolerance {self.tolerance}, above it: {self.on_difference}) — ")
        if not self.differences:
            return head + "no difference: the platform and the engine agree to the fen."
        n_block = sum(1 for d in self.differences if d.severity == "block")
        out = [head + f"{len(self.differences)} difference{'s' if len(self.differences) != 1 else ''}"
               + (f", {n_block} above tolerance → 2207 blocked" if n_block else ", within tolerance or informative")]
        for d in self.differences:
            where = (f"line {d.line} " if d.line else "") + (f"fund {d.fund_pay_type} " if d.fund_pay_type else "")
            delta = f"  Δ {d.delta}" if d.delta is not None else ""
            out.append(f"  {d.severity.upper():5} {where}{d.field}: platform {d.theirs}  ours {d.ours}{delta}"
                       + (f"  ({d.note})" if d.note else ""))
            e = d.explanation
            if e:
                src = " · ".join(x for x in (e.get("rule"), e.get("pack"), e.get("at")) if x)
                if src:
                    out.append(f"        ours: {src}")
                if e.get("formula"):
                    out.append(f"        {e['formula']}")
                for r in e.get("reasons", [])[:3]:
                    out.append(f"        · {r.get('code')}: {r.get('message')}"
                               + (f" ({r['at']})" if r.get("at") else ""))
        return "\n".join(out)


def _explanations(settlement: Any) -> tuple[dict[str, dict], dict[str, dict], str]:
    """Our explanation items by setlinfo field and by line."""
    by_field: dict[str, dict] = {}
    by_line: dict[str, dict] = {}
    try:
        items = settlement.explain()
    except Exception:  # an explanation is a courtesy: never let it stop a comparison
        items = []
    for it in items:
        f = it.get("field")
        if f == "result" and it.get("line") is not None:
            by_line[str(it["line"])] = it
        elif f and f not in by_field:
            by_field[f] = it
    label = getattr(getattr(settlement, "insured", None), "label", "") or ""
    return by_field, by_line, label


def _explain(item: Mapping[str, Any] | None, pack: str) -> dict[str, Any]:
    if not item:
        return {"pack": pack} if pack else {}
    out = {k: item[k] for k in ("rule", "pack", "at", "formula") if item.get(k)}
    if item.get("reasons"):
        out["reasons"] = [{k: r.get(k) for k in ("code", "message", "at") if r.get(k)} for r in item["reasons"]]
    return out


def compare(settlement: Any, pre: Any, lines: Any | None, settings: Any) -> Comparison:
    """Compare our `Settlement` with the platform's pre-settlement (`OutputSettle`) and, when
    given, its 2204/2301 line results (`Output2204`). `settings` is a `CompareSettings`."""
    ours = settlement.to_dict()
    si = ours["setlinfo"]
    theirs = pre.setlinfo
    by_field, by_line, pack = _explanations(settlement)
    diffs: list[Difference] = []

    def sev(name: str, delta_fen: int) -> str:
        if abs(delta_fen) <= settings.tolerance(name):
            return "warn"
        return "block" if settings.on_difference == "block" else "warn"

    n_fields = 0
    for f in SETLINFO_FIELDS:
        o = _fen(si.get(f))
        t_raw = getattr(theirs, f, None)
        t = _fen(t_raw)
        note = None
        if t is None:
            t, note = 0, "not given by the platform; read as 0.00"
        if o is None:
            o = 0
        n_fields += 1
        if o != t:
            item = by_field.get(f)
            if item is None and f in ("hifp_pay", "cvlserv_pay", "hifes_pay", "hifmi_pay", "hifob_pay", "maf_pay",
                                      "oth_pay"):
                item = by_field.get("fund_pay_sumamt")
            diffs.append(Difference("setlinfo", f, fen_str(o), fen_str(t), fen_str(t - o), sev(f, t - o),
                                    explanation=_explain(item, pack), note=note))

    n_lines = 0
    if lines is not None and settings.lines:
        mine = {str(r["feedetl_sn"]): r for r in ours["result"]}
        seen: set[str] = set()
        for r in lines.result:
            sn = str(r.feedetl_sn)
            seen.add(sn)
            m = mine.get(sn)
            if m is None:
                diffs.append(Difference("line", "feedetl_sn", None, sn, None,
                                        "block" if settings.on_difference == "block" else "warn", line=sn,
                                        note="the platform answered a line the claim does not have"))
                continue
            n_lines += 1
            item = by_line.get(sn)
            for f in LINE_AMOUNTS:
                o, t = _fen(m.get(f)), _fen(getattr(r, f))
                if o != t:
                    diffs.append(Difference("line", f, fen_str(o), fen_str(t), fen_str(t - o),
                                            sev("result." + f, t - o), line=sn, explanation=_explain(item, pack)))
            if r.chrgitm_lv is not None and m.get("chrgitm_lv") is not None and r.chrgitm_lv != m["chrgitm_lv"]:
                diffs.append(Difference("line", "chrgitm_lv", m["chrgitm_lv"], r.chrgitm_lv, None, "warn", line=sn,
                                        explanation=_explain(item, pack), note="甲/乙/丙 class differs"))
            if r.selfpay_prop is not None and m.get("selfpay_prop") is not None \
                    and Decimal(r.selfpay_prop) != Decimal(m["selfpay_prop"]):
                diffs.append(Difference("line", "selfpay_prop", str(m["selfpay_prop"]), str(r.selfpay_prop), None,
                                        "warn", line=sn, explanation=_explain(item, pack)))
        for sn in mine:
            if sn not in seen:
                diffs.append(Difference("line", "feedetl_sn", sn, None, None,
                                        "block" if settings.on_difference == "block" else "warn", line=sn,
                                        note="the platform did not answer this line"))

    # setldetail: informative (the setlinfo fund fields are what block); platform-only rows for the
    # account (3102xx) and the hospital-borne part (9999xx) have no counterpart in the engine
    our_det: dict[str, int] = {}
    for row in ours["setldetail"]:
        our_det[row["fund_pay_type"]] = our_det.get(row["fund_pay_type"], 0) + (_fen(row["fund_payamt"]) or 0)
    their_det: dict[str, int] = {}
    for row in pre.setldetail:
        their_det[row.fund_pay_type] = their_det.get(row.fund_pay_type, 0) + (_fen(row.fund_payamt) or 0)
    for fpt in sorted(set(our_det) | set(their_det)):
        o, t = our_det.get(fpt, 0), their_det.get(fpt, 0)
        if o != t and not (fpt not in our_det and fpt[:4] in ("3102", "9999")):
            diffs.append(Difference("setldetail", "fund_payamt", fen_str(o), fen_str(t), fen_str(t - o), "warn",
                                    fund_pay_type=fpt, note="fund rows are informative; setlinfo decides"))
    return Comparison(diffs, n_fields, n_lines, fen_str(settings.tolerance_fen), settings.on_difference, pack)


# --------------------------------------------------------------------------- 3201 daily totals

@dataclass
class DailyTotal:
    """One 3201 group: the outbox's settlements of a day for one insutype / clr_type / 经办机构."""

    region: str
    insutype: str
    clr_type: str
    setl_optins: str
    medfee_sumamt: int = 0
    fund_pay_sumamt: int = 0
    acct_pay: int = 0
    count: int = 0
    msgids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"region": self.region, "insutype": self.insutype, "clr_type": self.clr_type,
                "setl_optins": self.setl_optins, "medfee_sumamt": fen_str(self.medfee_sumamt),
                "fund_pay_sumamt": fen_str(self.fund_pay_sumamt), "acct_pay": fen_str(self.acct_pay),
                "fixmedins_setl_cnt": self.count}


def settlement_totals(setlinfo: Any, *, region: str, inpatient: bool, reconcile: Any) -> dict[str, str]:
    """What the outbox keeps of a booked settlement for 3201 (from the platform's answer)."""
    def g(name: str) -> Any:
        return getattr(setlinfo, name, None) if not isinstance(setlinfo, Mapping) else setlinfo.get(name)
    clr = g("clr_type") or (reconcile.clr_type_inpatient if inpatient else reconcile.clr_type_outpatient)
    return {"region": region, "insutype": str(g("insutype") or ""), "clr_type": str(clr),
            "setl_optins": str(g("clr_optins") or g("insuplc_admdvs") or region),
            "medfee_sumamt": fen_str(_fen(g("medfee_sumamt")) or 0),
            "fund_pay_sumamt": fen_str(_fen(g("fund_pay_sumamt")) or 0),
            "acct_pay": fen_str(_fen(g("acct_pay")) or 0)}


def daily_totals(rows: Iterable[Any], *, includes_acct: Mapping[str, bool] | bool = False) -> list[DailyTotal]:
    """Group the day's settlements (outbox rows with `totals`) for 3201. With the region's
    `fund_pay_sumamt_includes_acct_pay`, the personal account is added into fund_pay_sumamt."""
    groups: dict[tuple, DailyTotal] = {}
    for r in rows:
        t = json.loads(r.totals) if isinstance(r.totals, str) else r.totals
        if not t:
            continue
        key = (t["region"], t["insutype"], t["clr_type"], t["setl_optins"])
        g = groups.get(key)
        if g is None:
            g = groups[key] = DailyTotal(*key)
        inc = includes_acct.get(t["region"], False) if isinstance(includes_acct, Mapping) else includes_acct
        acct = scaled_int(t["acct_pay"], 2)
        g.medfee_sumamt += scaled_int(t["medfee_sumamt"], 2)
        g.fund_pay_sumamt += scaled_int(t["fund_pay_sumamt"], 2) + (acct if inc else 0)
        g.acct_pay += acct
        g.count += 1
        g.msgids.append(r.msgid)
    return [groups[k] for k in sorted(groups)]
