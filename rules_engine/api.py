"""The Python API a gateway imports.

    from rules_engine import Engine
    engine = Engine.from_directory("regions")
    s = engine.settle(claim_dict)          # or JSON text, or a `Claim` model
    s.to_dict()["setlinfo"]["hifp_pay"]

Thread-safe: an engine holds one immutable `PackSet`; `settle` reads that reference once, so a
concurrent `reload()` — which builds a new set off to the side and swaps the reference in one
step — is seen entirely or not at all. A set with errors never replaces a good one.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable

from .model.claim import Claim, ClaimError, FieldError, SettlementError, parse_claim
from .model.settlement import Settlement
from .money import fen_decimal
from .packs.registry import PackSet, default_cache_dir
from .problems import Problem
from .settle import plan as _plan
from .settle.core import settle as _settle


class PackLoadError(Exception):
    """The packs under a directory have errors; `problems` lists every one, located."""

    code = "E-PACKS-INVALID"

    def __init__(self, problems: list[Problem]):
        errors = [p for p in problems if p.severity == "error"]
        super().__init__(f"{len(errors)} error(s) in the packs; first: {errors[0].format(with_source=False)}"
                         if errors else "packs invalid")
        self.problems = problems


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    problems: list[Problem]
    packs: list[str]


def _claim_dict(claim: Any) -> dict:
    if isinstance(claim, dict):
        return claim
    if isinstance(claim, (str, bytes, bytearray)):
        try:
            data = json.loads(claim, parse_float=Decimal)
        except (ValueError, RecursionError) as e:
            raise ClaimError(f"the claim is not valid JSON: {e}", [FieldError("", "E-CLAIM-JSON", str(e))]) from None
        return data
    if isinstance(claim, Claim):
        return claim.model_dump(mode="python", exclude_none=True)
    raise ClaimError(f"cannot read a claim from {type(claim).__name__}",
                     [FieldError("", "E-CLAIM-TYPE", "expected a dict, JSON text or a Claim")])


class Engine:
    def __init__(self, packs: PackSet, *, cache_dir: Path | None = None):
        self._packs = packs
        self._cache_dir = cache_dir
        self._reload_lock = threading.Lock()

    @classmethod
    def from_directory(cls, path: str | Path, *, cache: bool | str | Path = True) -> "Engine":
        """Load and compile every pack under `path`; raise PackLoadError listing all problems.

        `cache=True` keeps compiled packs in ~/.cache/rules-engine (or $RULES_ENGINE_CACHE),
        keyed by the bytes of their files, so a restart skips parsing and validation.
        """
        cache_dir = (default_cache_dir() if cache is True else Path(cache)) if cache else None
        packs = PackSet.load(path, cache_dir=cache_dir)
        if packs.problems.has_errors() or not packs.compiled:
            raise PackLoadError(packs.problems.items or [Problem("E-PACK-DIR", f"no usable pack under {path}")])
        return cls(packs, cache_dir=cache_dir)

    @property
    def packs(self) -> PackSet:
        return self._packs

    def settle(self, claim: Any) -> Settlement:
        """Settle one claim. Raises a `SettlementError` subclass (ClaimError, PackNotFound …) for bad input."""
        packs = self._packs  # one consistent snapshot for the whole claim
        return _settle(packs, parse_claim(_claim_dict(claim)))

    def settle_many(self, claims: Iterable[Any], *, errors: str = "raise") -> list[Settlement | SettlementError]:
        """Settle claims independently (no accumulator carry-over; see `settle_sequence`).

        errors="raise" stops at the first bad claim; errors="return" puts the error in its place.
        """
        packs = self._packs
        out: list[Settlement | SettlementError] = []
        for c in claims:
            try:
                out.append(_settle(packs, parse_claim(_claim_dict(c))))
            except SettlementError as e:
                if errors == "raise":
                    raise
                out.append(e)
        return out

    def settle_sequence(self, claims: Iterable[Any]) -> list[Settlement]:
        """A person's claims in settlement order, each starting from the accumulators the previous
        one left (reset at each new calendar year) — a patient's year."""
        packs = self._packs
        parsed = [_claim_dict(c) for c in claims]
        order = sorted(range(len(parsed)), key=lambda i: (str(parsed[i].get("setl_time", "")), i))
        results: list[Settlement] = []
        carry: dict[str, Any] | None = None
        year = None
        balc = None
        for i in order:
            data = dict(parsed[i])
            y = str(data.get("setl_time", ""))[:4]
            if carry is not None and y == year:
                data["accumulators"] = {k: _acc_out(k, v, results[-1]) for k, v in carry.items()}
            if balc is not None and "balc" not in parsed[i]:
                data["balc"] = fen_decimal(balc)  # the account balance carries on unless the claim states it
            s = _settle(packs, parse_claim(data))
            results.append(s)
            carry, year = s.accumulators_after, y
            balc = s.balc
        by_index = dict(zip(order, results))
        return [by_index[i] for i in range(len(parsed))]

    def reload(self, path: str | Path | None = None) -> ReloadResult:
        """Load the packs again (a new version published) and swap them in only if all are valid."""
        with self._reload_lock:
            new = PackSet.load(path or self._packs.root, cache_dir=self._cache_dir)
            if new.problems.has_errors() or not new.compiled:
                return ReloadResult(False, new.problems.items, [p.label for p in self._packs.packs()])
            old = self._packs
            self._packs = new
            for p in old.packs():
                _plan.forget(p)
            return ReloadResult(True, new.problems.items, [p.label for p in new.packs()])


def _acc_out(name: str, value: int, s: Settlement) -> Any:
    if name in s.count_accumulators:
        return value
    return Decimal(value).scaleb(-2)


__all__ = ["Engine", "PackLoadError", "ReloadResult", "Settlement", "SettlementError", "ClaimError", "Claim"]
