"""The effective pack as a plain document: what `rules-engine show` prints.

Every figure is written back in the analyst's units (yuan, ratios as decimals) with the file:line
it came from and the sources it rests on, so that a reviewer sees at a glance which figure rests
on what — and which pack of the inheritance chain said it.
"""
from __future__ import annotations

from typing import Any

from ..conditions.language import to_data
from ..money import PPM
from .model import Band, CaseValue, CompiledPack


def _y(fen: int | None) -> Any:
    if fen is None:
        return None
    return fen // 100 if fen % 100 == 0 else fen / 100


def _r(ppm: int) -> float:
    return ppm / PPM


def _at(src) -> str | None:
    return f"{src.file}:{src.line}" if src is not None else None


def _value(v: Any) -> Any:
    if isinstance(v, tuple) and v and isinstance(v[0], Band):
        return [{"to": _y(b.upper), "ratio": _r(b.ratio), "at": _at(b.src)} if b.upper is not None
                else {"ratio": _r(b.ratio), "at": _at(b.src)} for b in v]
    if isinstance(v, int):
        return _y(v)
    return v


def _cases(cv: CaseValue | None) -> Any:
    if cv is None:
        return None
    if not cv.cases:
        return _value(cv.otherwise)
    return {"cases": [{"when": to_data(c.when), "value": _value(c.value), "at": _at(c.src),
                       **({"source": list(c.sources)} if c.sources else {})} for c in cv.cases],
            "else": _value(cv.otherwise)}


def effective_document(pack: CompiledPack, *, with_catalogue: bool = False) -> dict[str, Any]:
    i = pack.info
    doc: dict[str, Any] = {
        "region": i.region, "name": i.name, "version": i.version,
        "effective": {"from": i.effective_from, "to": i.effective_to}, "select_by": i.select_by,
        "chain": list(pack.chain), "content_hash": pack.content_hash, "confidence": i.confidence,
        "provenance": [{"id": p.id, "title": p.title, "confidence": p.confidence, "declared_in": p.pack,
                        **{k: v for k, v in (("issuer", p.issuer), ("number", p.number), ("date", p.date),
                                             ("link", p.link), ("via", p.via), ("covers", p.covers),
                                             ("note", p.note)) if v}}
                       for p in pack.provenance],
        "settings": {k: getattr(pack.settings, k) for k in ("rounding", "line_order", "selfpay_prop_from",
                                                          "unlisted_item")},
        "catalogue_defaults": {"selfpay_prop": {k: _r(v) for k, v in pack.selfpay_default.items()}},
        "conditions": {k: to_data(v) for k, v in pack.conditions.items()},
        "admission_counter": pack.admission_counter,
        "accumulators": [{"id": a.id, "name": a.name, "adds": a.adds if not a.layers else {a.adds: list(a.layers)},
                          **({"when": to_data(a.when)} if a.when is not None else {}), "at": _at(a.src)}
                         for a in pack.accumulators],
        "layers": [],
    }
    for layer in pack.layers:
        ld: dict[str, Any] = {"id": layer.id, "name": layer.name, "fund_pay_type": layer.fund_pay_type,
                              "setl_field": layer.setl_field, "at": _at(layer.src)}
        if layer.when is not None:
            ld["when"] = to_data(layer.when)
        ld["base"] = layer.base
        d = layer.deductible
        if d is not None:
            ld["deductible"] = {"period": d.period, **({"amount": _cases(d.amount)} if d.amount else {}),
                                **({"accumulator": d.accumulator} if d.accumulator else {}),
                                **({"shared_with": d.shared_with} if d.shared_with else {}),
                                **({"source": list(d.sources)} if d.sources else {}), "at": _at(d.src)}
        b = layer.bands
        ld["bands"] = {"basis": b.basis, **({"position": b.position} if b.position else {}),
                       "ratios": _cases(b.ratios), **({"source": list(b.sources)} if b.sources else {}),
                       "at": _at(b.src)}
        if layer.adjust:
            ld["adjust"] = [{"when": to_data(a.when), a.kind: _r(a.value), **({"source": list(a.sources)}
                             if a.sources else {}), "at": _at(a.src)} for a in layer.adjust]
        if layer.caps:
            ld["caps"] = [{"amount": _cases(c.amount), "period": c.period,
                           **({"accumulator": c.accumulator} if c.accumulator else {}),
                           **({"source": list(c.sources)} if c.sources else {}), "at": _at(c.src)}
                          for c in layer.caps]
        if layer.sources:
            ld["source"] = list(layer.sources)
            ld["confidence"] = min((s.confidence for s in (pack.source(x) for x in layer.sources) if s),
                                   key=_CONF_ORDER.index, default=None)
        if layer.note:
            ld["note"] = layer.note
        doc["layers"].append(ld)
    if pack.cross_region is not None:
        cr = pack.cross_region
        doc["cross_region"] = {"scope": cr.scope, **({"layers": list(cr.layers)} if cr.layers else {}),
                               "cuts": [{"filing": list(c.filing), c.kind: (True if c.kind == "none" else _r(c.value)),
                                         **({"source": list(c.sources)} if c.sources else {}), "at": _at(c.src)}
                                        for c in cr.cuts]}
    if pack.personal_account is not None:
        pa = pack.personal_account
        doc["personal_account"] = {"fund_pay_type": pa.fund_pay_type, "covers": list(pa.covers),
                                   **({"when": to_data(pa.when)} if pa.when is not None else {}), "at": _at(pa.src)}
    doc["restrictions"] = [{"id": r.id, "text": r.text, **({"when": to_data(r.when)} if r.when is not None
                                                          else {"review": r.review_reason or "not encoded"}),
                            "on_fail": r.on_fail, "at": _at(r.src)} for r in pack.restrictions.values()]
    doc["catalogue"] = {"entries": dict(pack.catalogue_counts)}
    if with_catalogue:
        doc["catalogue"]["items"] = [
            {"code": e.code, "name": e.name, "kind": e.kind, "category": e.category,
             **({"selfpay_prop": _r(e.selfpay)} if e.selfpay is not None else {}),
             **({"pric_uplmt_amt": e.ceiling / 1_000_000} if e.ceiling is not None else {}),
             **({"restrictions": list(e.restrictions)} if e.restrictions else {}),
             **({"valid_from": e.valid_from} if e.valid_from else {}), **({"valid_to": e.valid_to} if e.valid_to else {}),
             "at": f"{e.file}:{e.line}"}
            for entries in pack.catalogue.values() for e in entries]
    return doc


_CONF_ORDER = ["weak", "conflicting", "unconfirmed", "sample", "secondary", "official"]
