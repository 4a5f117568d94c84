"""A compiled pack's evaluation plan: its conditions turned into closures, once per pack.

Compiled packs hold data (picklable, hashable); closures cannot be pickled, so each pack gets a
plan the first time it is used, kept in a per-pack cache. Building a plan is cheap (a few
hundred conditions at most) and happens off the per-claim path after the first claim.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from ..conditions.compiled import Evaluator, compile_condition
from ..packs.model import Accumulator, Adjust, Cap, CaseValue, CompiledPack, Layer, Restriction


@dataclass(slots=True)
class CasePlan:
    """First-hit choice among cases; returns (value, index of the case or -1 for 'else', CaseValue)."""

    tests: tuple[tuple[Evaluator, Any], ...]
    otherwise: Any
    cv: CaseValue

    def pick(self, facts: dict) -> tuple[Any, int]:
        for i, (f, v) in enumerate(self.tests):
            if f(facts, None):
                return v, i
        return self.otherwise, -1


def case_plan(cv: CaseValue) -> CasePlan:
    return CasePlan(tuple((compile_condition(c.when), c.value) for c in cv.cases), cv.otherwise, cv)


@dataclass(slots=True)
class LayerPlan:
    layer: Layer
    when: Evaluator
    deductible: CasePlan | None
    ratios: CasePlan
    adjust: tuple[tuple[Evaluator, Adjust], ...]
    caps: tuple[tuple[CasePlan, Cap], ...]


@dataclass(slots=True)
class AccPlan:
    acc: Accumulator
    when: Evaluator


@dataclass(slots=True)
class PackPlan:
    pack: CompiledPack
    layers: tuple[LayerPlan, ...]
    accumulators: tuple[AccPlan, ...]
    restrictions: dict[str, tuple[Evaluator | None, Restriction]]
    account_when: Evaluator | None
    count_accumulators: frozenset[str]
    emergency: Evaluator | None
    cut_adjusts: dict  # id(cut) → the Adjust a ratio cut becomes, built once per pack


_plans: dict[int, PackPlan] = {}
_lock = threading.Lock()


def plan_for(pack: CompiledPack) -> PackPlan:
    p = _plans.get(id(pack))
    if p is not None and p.pack is pack:
        return p
    with _lock:
        p = _plans.get(id(pack))
        if p is None or p.pack is not pack:
            p = _build(pack)
            _plans[id(pack)] = p
    return p


def _build(pack: CompiledPack) -> PackPlan:
    layers = []
    for layer in pack.layers:
        ded = layer.deductible
        layers.append(LayerPlan(
            layer=layer,
            when=compile_condition(layer.when),
            deductible=case_plan(ded.amount) if ded is not None and ded.amount is not None else None,
            ratios=case_plan(layer.bands.ratios),
            adjust=tuple((compile_condition(a.when), a) for a in layer.adjust),
            caps=tuple((case_plan(c.amount), c) for c in layer.caps)))
    accs = tuple(AccPlan(a, compile_condition(a.when)) for a in pack.accumulators)
    rests = {rid: (compile_condition(r.when) if r.when is not None else None, r) for rid, r in pack.restrictions.items()}
    acct = compile_condition(pack.personal_account.when) if pack.personal_account else None
    counts = frozenset(a.id for a in pack.accumulators if a.adds == "count")
    emergency = pack.conditions.get("emergency")
    cut_adjusts = {}
    if pack.cross_region is not None:
        for cut in pack.cross_region.cuts:
            if cut.kind in ("ratio_minus", "ratio_times"):
                cut_adjusts[id(cut)] = Adjust(when=None, kind=cut.kind, value=cut.value, sources=cut.sources,
                                              src=cut.src, origin="cross_region", note=cut.note)
    return PackPlan(pack, tuple(layers), accs, rests, acct, counts,
                    compile_condition(emergency) if emergency is not None else None, cut_adjusts)


def forget(pack: CompiledPack) -> None:
    """Drop a pack's plan (after a reload replaced it)."""
    with _lock:
        _plans.pop(id(pack), None)

