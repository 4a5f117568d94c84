"""A policy diff of two compiled packs — in the words of policy, not of YAML.

"职工住院统筹基金: ratio for hosp_lv = 3, band 0–30,000: 0.85 → 0.9", "cap (year) 500,000 →
400,000", "142 entries added to 乙类, 3 moved 乙 → 甲, 5 price ceilings lowered". Compared are
the *effective* packs (merged over what they extend), matched by ids and by the conditions of
their cases, so moving a block in a file or re-indenting it is no change at all.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..conditions.language import describe, to_data
from ..money import PPM
from .model import Band, CaseValue, CompiledPack, Layer


@dataclass
class Change:
    area: str        # settings | catalogue defaults | layer | cross-region | account | accumulator | condition | restriction | catalogue | coding
    text: str        # one sentence a reviewer reads
    before: Any = None
    after: Any = None
    subject: str | None = None

    def to_dict(self) -> dict:
        return {"area": self.area, "subject": self.subject, "text": self.text,
                "before": _plain(self.before), "after": _plain(self.after)}


@dataclass
class PolicyDiff:
    old: CompiledPack
    new: CompiledPack
    changes: list[Change] = field(default_factory=list)
    catalogue_summary: dict[str, int] = field(default_factory=dict)
    claims: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"old": self.old.label, "new": self.new.label, "changes": [c.to_dict() for c in self.changes],
                "catalogue": self.catalogue_summary, **({"claims": self.claims} if self.claims else {})}


def _plain(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def _y(fen: int | None) -> str:
    if fen is None:
        return "—"
    return f"{fen / 100:,.2f}".rstrip("0").rstrip(".") if fen % 100 else f"{fen // 100:,}"


def _r(ppm: int) -> str:
    return f"{ppm / PPM:g}"


def _bands_text(bands: tuple[Band, ...]) -> str:
    out, edge = [], 0
    for b in bands:
        out.append(f"{_y(edge)}–{_y(b.upper) if b.upper is not None else '∞'}: {_r(b.ratio)}")
        edge = b.upper or edge
    return "[" + ", ".join(out) + "]"


def _case_map(cv: CaseValue | None) -> dict[str, Any]:
    if cv is None:
        return {}
    m = {describe(c.when): c.value for c in cv.cases}
    m["other cases" if cv.cases else "all cases"] = cv.otherwise
    return m


def diff_packs(old: CompiledPack, new: CompiledPack) -> PolicyDiff:
    d = PolicyDiff(old, new)
    ch = d.changes
    # settings and defaults
    for k in ("rounding", "line_order", "selfpay_prop_from", "unlisted_item"):
        a, b = getattr(old.settings, k), getattr(new.settings, k)
        if a != b:
            ch.append(Change("settings", f"setting {k}: {a} → {b}", a, b, k))
    for cat in ("甲", "乙"):
        a, b = old.selfpay_default.get(cat), new.selfpay_default.get(cat)
        if a != b:
            ch.append(Change("catalogue defaults", f"{cat}类 self-pay ratio: {_r(a) if a is not None else 'not set'} → "
                             f"{_r(b) if b is not None else 'not set'}", a, b, cat))
    if old.info.effective_from != new.info.effective_from or old.info.effective_to != new.info.effective_to:
        ch.append(Change("dates", f"in force {old.info.effective_from} … {old.info.effective_to or ''} → "
                         f"{new.info.effective_from} … {new.info.effective_to or ''}"))
    # named conditions
    for name in sorted(set(old.conditions) | set(new.conditions)):
        a, b = old.conditions.get(name), new.conditions.get(name)
        if a is None:
            ch.append(Change("condition", f"named condition '{name}' added: {describe(b)}", None, to_data(b), name))
        elif b is None:
            ch.append(Change("condition", f"named condition '{name}' removed", to_data(a), None, name))
        elif to_data(a) != to_data(b):
            ch.append(Change("condition", f"named condition '{name}': {describe(a)} → {describe(b)}", to_data(a),
                             to_data(b), name))
    # accumulators
    oa, na = {a.id: a for a in old.accumulators}, {a.id: a for a in new.accumulators}
    for k in sorted(set(oa) | set(na)):
        if k not in oa:
            ch.append(Change("accumulator", f"accumulator '{k}' added ({na[k].adds})", subject=k))
        elif k not in na:
            ch.append(Change("accumulator", f"accumulator '{k}' removed", subject=k))
        elif (oa[k].adds, oa[k].layers, to_data(oa[k].when) if oa[k].when else None) != (
                na[k].adds, na[k].layers, to_data(na[k].when) if na[k].when else None):
            ch.append(Change("accumulator", f"accumulator '{k}' now adds {na[k].adds} {list(na[k].layers) or ''}".rstrip(),
                             subject=k))
    # layers
    ol, nl = {x.id: x for x in old.layers}, {x.id: x for x in new.layers}
    for lid in list(ol) + [x for x in nl if x not in ol]:
        a, b = ol.get(lid), nl.get(lid)
        if a is None:
            ch.append(Change("layer", f"layer added: {b.name} ({lid}), fund_pay_type {b.fund_pay_type}", subject=lid))
        elif b is None:
            ch.append(Change("layer", f"layer removed: {a.name} ({lid})", subject=lid))
        else:
            ch += _layer_changes(a, b)
    # cross-region
    ocr, ncr = old.cross_region, new.cross_region
    ocuts = {f: c for c in (ocr.cuts if ocr else ()) for f in c.filing}
    ncuts = {f: c for c in (ncr.cuts if ncr else ()) for f in c.filing}
    for f in sorted(set(ocuts) | set(ncuts)):
        a, b = ocuts.get(f), ncuts.get(f)
        ta = f"{a.kind} {_r(a.value)}" if a and a.kind != "none" else ("home benefits" if a else "no cut")
        tb = f"{b.kind} {_r(b.value)}" if b and b.kind != "none" else ("home benefits" if b else "no cut")
        if ta != tb:
            ch.append(Change("cross-region", f"cross-region cut for {f}: {ta} → {tb}", ta, tb, f))
    if (ocr.scope if ocr else None) != (ncr.scope if ncr else None):
        ch.append(Change("cross-region", f"cross-region scope: {ocr.scope if ocr else '—'} → {ncr.scope if ncr else '—'}"))
    # account
    oa_, na_ = old.personal_account, new.personal_account
    if (oa_ is None) != (na_ is None) or (oa_ and na_ and (oa_.covers, oa_.fund_pay_type) != (na_.covers, na_.fund_pay_type)):
        ch.append(Change("account", "personal account: " + (f"covers {list(oa_.covers)}" if oa_ else "none") + " → "
                         + (f"covers {list(na_.covers)}" if na_ else "none")))
    # restrictions
    orr, nrr = old.restrictions, new.restrictions
    for rid in sorted(set(orr) | set(nrr)):
        a, b = orr.get(rid), nrr.get(rid)
        if a is None:
            ch.append(Change("restriction", f"restriction {rid} added: 「{b.text}」", subject=rid))
        elif b is None:
            ch.append(Change("restriction", f"restriction {rid} removed: 「{a.text}」", subject=rid))
        else:
            if a.text != b.text:
                ch.append(Change("restriction", f"restriction {rid} text: 「{a.text}」 → 「{b.text}」", subject=rid))
            ca = to_data(a.when) if a.when is not None else None
            cb = to_data(b.when) if b.when is not None else None
            if ca != cb:
                ch.append(Change("restriction", f"restriction {rid} condition: "
                                 f"{describe(a.when) if a.when is not None else 'review'} → "
                                 f"{describe(b.when) if b.when is not None else 'review'}", ca, cb, rid))
    d.catalogue_summary = _catalogue_changes(old, new, ch)
    return d


def _layer_changes(a: Layer, b: Layer) -> list[Change]:
    out: list[Change] = []
    name = f"{b.name} ({b.id})"

    def add(text: str, before=None, after=None) -> None:
        out.append(Change("layer", f"{name}: {text}", before, after, b.id))

    for attr in ("fund_pay_type", "setl_field", "base"):
        if getattr(a, attr) != getattr(b, attr):
            add(f"{attr} {getattr(a, attr)} → {getattr(b, attr)}", getattr(a, attr), getattr(b, attr))
    wa, wb = (to_data(a.when) if a.when is not None else None), (to_data(b.when) if b.when is not None else None)
    if wa != wb:
        add(f"applies when {describe(a.when) if a.when is not None else 'always'} → "
            f"{describe(b.when) if b.when is not None else 'always'}", wa, wb)
    da, db = a.deductible, b.deductible
    if (da is None) != (db is None):
        add("deductible " + ("added" if db else "removed"))
    elif da and db:
        if da.period != db.period:
            add(f"deductible period {da.period} → {db.period}", da.period, db.period)
        ma, mb = _case_map(da.amount), _case_map(db.amount)
        for case in list(ma) + [c for c in mb if c not in ma]:
            va, vb = ma.get(case), mb.get(case)
            if va != vb:
                add(f"deductible for {case}: {_y(va)} → {_y(vb)}", va, vb)
        if da.shared_with != db.shared_with:
            add(f"deductible shared with {da.shared_with} → {db.shared_with}")
    if (a.bands.basis, a.bands.position) != (b.bands.basis, b.bands.position):
        add(f"bands basis {a.bands.basis}/{a.bands.position} → {b.bands.basis}/{b.bands.position}")
    ra, rb = _case_map(a.bands.ratios), _case_map(b.bands.ratios)
    for case in list(ra) + [c for c in rb if c not in ra]:
        ta, tb = ra.get(case), rb.get(case)
        if ta is None or tb is None:
            add(f"bands for {case}: {_bands_text(ta) if ta else '—'} → {_bands_text(tb) if tb else '—'}")
            continue
        if [x.upper for x in ta] == [x.upper for x in tb]:
            edge = 0
            for x, y in zip(ta, tb):
                if x.ratio != y.ratio:
                    band = f"{_y(edge)}–{_y(x.upper) if x.upper is not None else '∞'}"
                    add(f"ratio for {case}, band {band}: {_r(x.ratio)} → {_r(y.ratio)}", x.ratio / PPM, y.ratio / PPM)
                edge = x.upper or edge
        else:
            add(f"bands for {case}: {_bands_text(ta)} → {_bands_text(tb)}")
    adj_a = {(describe(x.when) if x.when is not None else "always", x.kind): x.value for x in a.adjust}
    adj_b = {(describe(x.when) if x.when is not None else "always", x.kind): x.value for x in b.adjust}
    for k in list(adj_a) + [k for k in adj_b if k not in adj_a]:
        va, vb = adj_a.get(k), adj_b.get(k)
        if va != vb:
            add(f"{k[1]} when {k[0]}: {_r(va) if va is not None else '—'} → {_r(vb) if vb is not None else '—'}")
    ca = {(c.period, c.accumulator): c for c in a.caps}
    cb = {(c.period, c.accumulator): c for c in b.caps}
    for k in list(ca) + [k for k in cb if k not in ca]:
        x, y = ca.get(k), cb.get(k)
        if x is None or y is None:
            add(f"cap ({k[0]}) " + (f"added: {_y(y.amount.otherwise)}" if y else f"removed (was {_y(x.amount.otherwise)})"))
            continue
        mx, my = _case_map(x.amount), _case_map(y.amount)
        for case in list(mx) + [c for c in my if c not in mx]:
            if mx.get(case) != my.get(case):
                label = "" if case in ("all cases",) else f" for {case}"
                add(f"cap ({k[0]}){label} {_y(mx.get(case))} → {_y(my.get(case))}", mx.get(case), my.get(case))
    return out


def _catalogue_changes(old: CompiledPack, new: CompiledPack, ch: list[Change]) -> dict[str, int]:
    def current(p: CompiledPack) -> dict[str, Any]:
        return {code: entries[-1] for code, entries in p.catalogue.items()}

    a, b = current(old), current(new)
    s = {"added": 0, "removed": 0, "class_changed": 0, "ceiling_lowered": 0, "ceiling_raised": 0,
         "selfpay_changed": 0, "restrictions_changed": 0, "validity_changed": 0}
    added_by: dict[str, int] = {}
    moved: dict[str, int] = {}
    for code in b.keys() - a.keys():
        s["added"] += 1
        added_by[b[code].category] = added_by.get(b[code].category, 0) + 1
    removed_by: dict[str, int] = {}
    for code in a.keys() - b.keys():
        s["removed"] += 1
        removed_by[a[code].category] = removed_by.get(a[code].category, 0) + 1
    for code in a.keys() & b.keys():
        x, y = a[code], b[code]
        if x.category != y.category:
            s["class_changed"] += 1
            key = f"{x.category} → {y.category}"
            moved[key] = moved.get(key, 0) + 1
        if x.ceiling != y.ceiling:
            if x.ceiling is not None and (y.ceiling is None or y.ceiling > x.ceiling):
                s["ceiling_raised"] += 1
            else:
                s["ceiling_lowered"] += 1
        if x.selfpay != y.selfpay:
            s["selfpay_changed"] += 1
        if x.restrictions != y.restrictions:
            s["restrictions_changed"] += 1
        if (x.valid_from, x.valid_to) != (y.valid_from, y.valid_to):
            s["validity_changed"] += 1
    for cat, n in sorted(added_by.items()):
        ch.append(Change("catalogue", f"{n:,} entr{'y' if n == 1 else 'ies'} added to {cat}类", None, n, cat))
    for cat, n in sorted(removed_by.items()):
        ch.append(Change("catalogue", f"{n:,} entr{'y' if n == 1 else 'ies'} removed from {cat}类", n, None, cat))
    for k, n in sorted(moved.items()):
        ch.append(Change("catalogue", f"{n:,} moved {k}", None, n, k))
    for key, words in (("ceiling_lowered", "price ceilings lowered (or added)"), ("ceiling_raised", "price ceilings raised (or removed)"),
                       ("selfpay_changed", "self-pay ratios changed"), ("restrictions_changed", "restriction lists changed"),
                       ("validity_changed", "validity periods changed")):
        if s[key]:
            ch.append(Change("catalogue", f"{s[key]:,} {words}", None, s[key], key))
    return s


def render_text(d: PolicyDiff) -> str:
    lines = [f"policy diff {d.old.label} → {d.new.label}"]
    if not d.changes:
        lines.append("  no policy change")
    area = None
    for c in d.changes:
        if c.area != area:
            area = c.area
            lines.append(f"{area}:")
        lines.append(f"  - {c.text}")
    if d.claims:
        lines.append(f"claims whose settlement changes: {len(d.claims)}")
        for c in d.claims:
            lines.append(f"  - {c['claim']}: fund {c['fund_before']} → {c['fund_after']} ({c['fund_delta']:+}), "
                         f"patient {c['psn_before']} → {c['psn_after']} ({c['psn_delta']:+})")
    return "\n".join(lines)


def render_markdown(d: PolicyDiff) -> str:
    out = [f"### Policy diff `{d.old.label}` → `{d.new.label}`", ""]
    if not d.changes:
        out.append("No policy change.")
    area = None
    for c in d.changes:
        if c.area != area:
            area = c.area
            out += ["", f"**{area}**", ""]
        out.append(f"- {c.text}")
    if d.claims:
        out += ["", f"**Claims whose settlement changes ({len(d.claims)})**", "",
                "| claim | fund before | fund after | Δ fund | patient before | patient after | Δ patient |",
                "|---|---:|---:|---:|---:|---:|---:|"]
        for c in d.claims:
            out.append(f"| {c['claim']} | {c['fund_before']} | {c['fund_after']} | {c['fund_delta']:+} | "
                       f"{c['psn_before']} | {c['psn_after']} | {c['psn_delta']:+} |")
    return "\n".join(out) + "\n"
