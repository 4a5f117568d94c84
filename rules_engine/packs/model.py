"""Compiled, immutable pack objects.

What the evaluator reads: amounts already in fen, ratios in millionths, conditions as ASTs,
catalogue entries indexed by code — and every object knows the file:line it came from, so an
explanation can point at the YAML. Policy objects are frozen pydantic models; catalogue entries
are NamedTuples (tens of thousands of them: they must be cheap to build, index and pickle).
"""
from __future__ import annotations

from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict

from ..conditions.language import Node, Src


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")


class Provenance(Frozen):
    id: str
    title: str
    confidence: str
    issuer: str | None = None
    number: str | None = None
    date: str | None = None
    link: str | None = None
    via: str | None = None
    covers: str | None = None
    note: str | None = None
    pack: str = ""  # region@version that declared it


class Case(Frozen):
    when: Any  # Node
    value: Any
    src: Src
    sources: tuple[str, ...] = ()
    index: int = 0


class CaseValue(Frozen):
    """A value chosen by the first case whose condition holds, else `otherwise`."""

    cases: tuple[Case, ...] = ()
    otherwise: Any
    otherwise_src: Src
    sources: tuple[str, ...] = ()


class Band(Frozen):
    upper: int | None  # fen; None = open-ended
    ratio: int         # ppm
    src: Src


class Deductible(Frozen):
    period: str                   # claim | year
    amount: CaseValue | None      # fen values
    accumulator: str | None = None
    shared_with: str | None = None
    sources: tuple[str, ...] = ()
    src: Src
    ref_src: Src | None = None  # where 'accumulator' / 'shared_with' is written


class Bands(Frozen):
    basis: str                    # gross | net
    position: str | None
    ratios: CaseValue             # values: tuple[Band, ...]
    sources: tuple[str, ...] = ()
    src: Src
    position_src: Src | None = None


class Adjust(Frozen):
    when: Any  # Node
    kind: str  # self_share_times | ratio_minus | ratio_times | ratio_plus | prior_selfpay
    value: int  # ppm
    sources: tuple[str, ...] = ()
    src: Src
    origin: str = "layer"  # layer | cross_region
    note: str | None = None


class Cap(Frozen):
    amount: CaseValue
    period: str
    accumulator: str | None = None
    sources: tuple[str, ...] = ()
    src: Src
    acc_src: Src | None = None


class Layer(Frozen):
    id: str
    name: str
    fund_pay_type: str
    setl_field: str
    when: Any  # Node | None
    base: str
    deductible: Deductible | None
    bands: Bands
    adjust: tuple[Adjust, ...] = ()
    caps: tuple[Cap, ...] = ()
    sources: tuple[str, ...] = ()
    confidence: str | None = None
    note: str | None = None
    src: Src


class Accumulator(Frozen):
    id: str
    name: str
    adds: str            # inscp_scp_amt | medfee_sumamt | count | paid_by | deductible_of | base_of
    layers: tuple[str, ...] = ()
    when: Any = None
    src: Src


class Cut(Frozen):
    filing: tuple[str, ...]
    kind: str  # none | ratio_minus | ratio_times | prior_selfpay
    value: int
    sources: tuple[str, ...] = ()
    src: Src
    note: str | None = None


class CrossRegion(Frozen):
    scope: str
    layers: tuple[str, ...] | None
    cuts: tuple[Cut, ...]
    src: Src


class PersonalAccount(Frozen):
    when: Any
    fund_pay_type: str
    covers: tuple[str, ...]
    sources: tuple[str, ...] = ()
    src: Src


class Restriction(Frozen):
    id: str
    text: str
    when: Any  # Node | None — None: not encoded, flagged for review
    on_fail: str
    review_reason: str | None = None
    sources: tuple[str, ...] = ()
    src: Src


class Settings(Frozen):
    rounding: str = "half_up"
    line_order: str = "ceiling_first"
    selfpay_prop_from: str = "treatment"
    unlisted_item: str = "ownpay"
    srcs: dict[str, Src] = {}


class CatEntry(NamedTuple):
    code: str
    name: str
    kind: str
    category: str          # 甲 | 乙 | 丙
    selfpay: int | None    # ppm override
    ceiling: int | None    # micro-yuan per unit
    restrictions: tuple[str, ...]
    valid_from: str | None
    valid_to: str | None
    med_chrgitm_type: str | None
    file: str
    line: int
    match: str = "exact"  # exact | prefix


class PackInfo(Frozen):
    region: str
    name: str
    version: str
    effective_from: str
    effective_to: str | None
    select_by: str
    extends: str | None
    confidence: str | None
    description: str | None = None
    dir: str
    files: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.region}@{self.version}"


class CompiledPack(Frozen):
    """One effective pack: a region's version merged over the packs it extends."""

    info: PackInfo
    chain: tuple[str, ...]               # region@version from the root ancestor to this pack
    content_hash: str
    provenance: tuple[Provenance, ...]
    settings: Settings
    selfpay_default: dict[str, int]       # category → ppm
    selfpay_src: Src | None = None
    conditions: dict[str, Any]            # name → Node (resolved)
    accumulators: tuple[Accumulator, ...]
    admission_counter: str | None
    layers: tuple[Layer, ...]
    cross_region: CrossRegion | None
    personal_account: PersonalAccount | None
    restrictions: dict[str, Restriction]
    catalogue: dict[str, tuple[CatEntry, ...]]
    catalogue_counts: dict[str, int]
    codes: dict[str, dict[str, str]] = {}
    prefix_lengths: tuple[int, ...] = ()   # distinct lengths of prefix entries, longest first
    coding: Any = None                     # rules_engine.coding.model.Coding merged along the chain
    coding_digests: tuple[str, ...] = ()   # digest of each chain pack's coding/ (in the content hash)
    audit: Any = None                      # rules_engine.audit.AuditRules merged along the chain
    audit_hash: str | None = None          # its content hash (in the pack's content hash)
    audit_key: str | None = None           # the key under which chains share one merged AuditRules

    def code_name(self, table: str, code: str | None) -> str | None:
        return self.codes.get(table, {}).get(code) if code is not None else None

    @property
    def key(self) -> str:
        return self.info.key

    @property
    def label(self) -> str:
        return f"{self.info.key}#{self.content_hash[:12]}"

    def lookup(self, code: str, date: str) -> CatEntry | None:
        """The entry for a national code on a date: an exact entry, else the longest prefix entry."""
        entries = self.catalogue.get(code)
        if entries:
            for e in entries:
                if e.match == "exact" and (e.valid_from is None or e.valid_from <= date) and (
                        e.valid_to is None or date <= e.valid_to):
                    return e
        for n in self.prefix_lengths:
            if n >= len(code):
                continue
            entries = self.catalogue.get(code[:n])
            if entries:
                for e in entries:
                    if e.match == "prefix" and (e.valid_from is None or e.valid_from <= date) and (
                            e.valid_to is None or date <= e.valid_to):
                        return e
        return None

    def source(self, sid: str) -> Provenance | None:
        for p in self.provenance:
            if p.id == sid:
                return p
        return None

    def layer(self, lid: str) -> Layer | None:
        for layer in self.layers:
            if layer.id == lid:
                return layer
        return None
