"""The vectorised settlement of a partition, over the same compiled packs as the per-claim path.

The per-claim path (settle/lines.py, settle/layers.py, settle/core.py) is the reference; this
module computes the same numbers for many claims at once:

1. **packs** — each claim's insured and treatment pack, selected once per distinct
   (region, date) exactly as `settle.core.select_pack` does (a pinned pack replaces a region's
   versions for impact analysis);
2. **lines** — catalogue lookup per distinct code (exact entries, then prefixes, first valid on
   the date), payment restrictions as numpy masks (batch/vcond.py), ceiling and 乙类 self-pay
   with one rounding each in the treatment pack's mode and line order;
3. **claims** — sums per claim, then the fund-layer chain. A person's claims depend on each
   other (yearly deductibles, band positions, caps, the account balance), so the chain runs as a
   *wavefront*: step t settles every person's t-th claim at once, reading and writing the
   persons' accumulators as arrays. Everything that does not depend on those accumulators
   (conditions, case picks, band tables, adjusted ratios) is computed once, before the steps.

What this path does not express is settled by the per-claim path, person by person (their claims
depend on each other): claims with `icd_edition` (diagnosis conversion), lines with only a local
code (code mapping), stated `accumulators`, a person whose insured pack changes within a year,
amounts so large that int64 products could overflow, and a pack whose admission counter depends on
itself. The count is reported; the numbers are the per-claim path's own. A sample of persons of
every partition is re-settled by the per-claim path and compared field by field: a difference
stops the run (`BatchDivergence`) rather than writing a different number.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..model.claim import SettlementError
from ..model.settlement import FUND_FIELDS, Settlement
from ..money import PPM
from ..packs.model import CompiledPack
from ..packs.registry import PackSelectionError, PackSet
from .tables import Block, BatchInputError, Cat, InputProblem, Num, build_block, claim_dicts, decimal_array
from .vcond import BoolCol, CatCol, CodesCol, Frame, NumCol, compile_mask, uses

INF = np.int64(2**61)
GUARD_LINE_FEN = 9 * 10**10        # a line above 900 million yuan: cnt × pric may leave int64
GUARD_CLAIM_FEN = 4 * 10**12       # a claim above 40 billion yuan: width × ratio may leave int64
GUARD_RATIO = 2 * PPM              # an adjusted ratio beyond 200 %: same
GUARD_FLOAT = 2**53                # cnt / pric beyond exact floats: line facts would differ
CAT_CODE = {"甲": 0, "乙": 1, "丙": 2}
LV = np.array(["01", "02", "03", "03"], dtype=object)  # by category code; 3 = not listed
FUND_INDEX = {f: i for i, f in enumerate(FUND_FIELDS)}
KINDS = ["drug", "service", "consumable"]

CLAIM_FIELDS_OUT = ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt",
                    "act_pay_dedc", *FUND_FIELDS, "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay",
                    "hosp_part_amt")


class BatchDivergence(Exception):
    """The vectorised path and the per-claim path disagree on a claim: a bug, never written out."""

    code = "E-BATCH-DIVERGED"


# ------------------------------------------------------------------ packs


class PackSource:
    """A PackSet, with some regions pinned to one compiled pack whatever the date (impact analysis).

    Duck-types `PackSet.select`, so the per-claim path (`settle.core.settle`) runs on it unchanged;
    a pinned region is found the way `PackSet.select` falls back (110105 → 110100 → 110000).
    """

    def __init__(self, packs: PackSet, pinned: dict[str, CompiledPack] | None = None):
        self.packs = packs
        self.pinned = dict(pinned or {})
        self.root = packs.root

    def select(self, region: str, date: str, *, fallback: bool = True) -> CompiledPack:
        if self.pinned:
            tried = [region]
            if fallback and len(region) == 6 and region.isdigit():
                tried += [c for c in (region[:4] + "00", region[:2] + "0000") if c != region]
            for r in tried:
                if r in self.pinned:
                    return self.pinned[r]
                if r in self.packs.versions:
                    break
        return self.packs.select(region, date, fallback=fallback)

    def packs_list(self) -> list[CompiledPack]:
        return self.packs.packs() + list(self.pinned.values())


def slim_packset(ps: PackSet) -> PackSet:
    """The same selection, without parsed documents (what a Dask worker needs: small to ship).

    `PackSet.select` reads only pack.yaml data (dates, extends) and the compiled packs."""
    from ..packs.load import RawPack
    from ..packs.source import Document
    raws = {}
    for k, r in ps.raws.items():
        meta = Document(file=r.meta.file, data=r.meta.data) if r.meta is not None else None
        raws[k] = RawPack(dir=r.dir, display=r.display, meta=meta, raw_digest=r.raw_digest, complete=False)
    versions = {reg: [raws[v.key] for v in vs if v.key in raws] for reg, vs in ps.versions.items()}
    # packs of one chain share their coding tables (ICD maps: megabytes): one object, pickled once
    shared: dict[tuple, Any] = {}
    compiled = {}
    for k, p in ps.compiled.items():
        dig = getattr(p, "coding_digests", None)
        coding = getattr(p, "coding", None)
        if coding is not None and dig:
            if dig in shared and shared[dig] is not coding:
                p = p.model_copy(update={"coding": shared[dig]})
            else:
                shared.setdefault(dig, coding)
        compiled[k] = p
    return PackSet(root=ps.root, raws=raws, versions=versions, compiled=compiled)


_LOADED: dict[tuple[str, str], PackSource] = {}  # per process: packs loaded from a folder, by (path, digest)
_LOADED_LOCK = threading.Lock()


class PackContext:
    """What a partition is settled against: the packs (possibly with pinned regions) and, per pack,
    its vectorised plan. Picklable (plans are rebuilt where it is unpickled).

    Shipping to Dask workers: a context loaded from a folder, with nothing pinned, travels as that
    folder's path and the digest of what was loaded — a worker loads the packs itself once (from the
    compiled cache) and checks the digest, instead of receiving tens of megabytes of compiled packs
    through the scheduler. `by_value=True` (a remote cluster without the folder) ships the packs."""

    def __init__(self, source: PackSource | PackSet, label: str = "", recipe: tuple[str, str] | None = None):
        self.source = source if isinstance(source, PackSource) else PackSource(source)
        self.label = label
        self.recipe = recipe
        self.by_value = False
        self._vpacks: dict[int, VPack] = {}
        self._lock = threading.Lock()
        self._engine = None

    @classmethod
    def from_directory(cls, regions: str | Path, pinned: dict[str, CompiledPack] | None = None,
                       label: str = "") -> "PackContext":
        from ..api import Engine
        eng = Engine.from_directory(regions)  # raises PackLoadError with every problem
        src = PackSource(slim_packset(eng.packs), pinned)
        recipe = None if pinned else (str(Path(regions).resolve()), _digest(src))
        return cls(src, label, recipe)

    def __getstate__(self) -> dict:
        if self.recipe is not None and not self.by_value and not self.source.pinned:
            return {"recipe": self.recipe, "label": self.label}
        return {"source": self.source, "label": self.label}

    def __setstate__(self, st: dict) -> None:
        if "recipe" in st:
            path, digest = st["recipe"]
            with _LOADED_LOCK:
                src = _LOADED.get((path, digest))
                if src is None:
                    from ..api import Engine
                    src = PackSource(slim_packset(Engine.from_directory(path).packs))
                    if _digest(src) != digest:
                        raise RuntimeError(f"the packs under {path} on this worker differ from the ones the run "
                                           "started with (changed meanwhile, or another folder): refusing to mix them")
                    _LOADED[(path, digest)] = src
            self.__init__(src, st["label"], (path, digest))
        else:
            self.__init__(st["source"], st["label"])

    def vpack(self, pack: CompiledPack) -> "VPack":
        vp = self._vpacks.get(id(pack))
        if vp is None or vp.pack is not pack:
            with self._lock:
                vp = self._vpacks.get(id(pack))
                if vp is None or vp.pack is not pack:
                    vp = VPack(pack)
                    self._vpacks[id(pack)] = vp
        return vp

    def engine(self):
        """The per-claim path over the same packs (fallback and verification)."""
        if self._engine is None:
            from ..api import Engine
            self._engine = Engine(self.source)  # type: ignore[arg-type]
        return self._engine


def _digest(src: PackSource) -> str:
    """The content hashes of every compiled pack (and the pinned ones): what the run settles with."""
    import hashlib
    h = hashlib.sha256()
    for k in sorted(src.packs.compiled):
        h.update(("/".join(k) + "=" + src.packs.compiled[k].content_hash + ";").encode())
    for r, p in sorted(src.pinned.items()):
        h.update(f"pin {r}={p.content_hash};".encode())
    return h.hexdigest()


# ------------------------------------------------------------------ per-pack vectorised plan


def _date_int(s: str | None, default: int) -> int | None:
    if s is None:
        return default
    s = str(s)
    if len(s) == 10 and s[4] == "-" and s[7] == "-" and s[:4].isdigit() and s[5:7].isdigit() and s[8:].isdigit():
        return int(s[:4] + s[5:7] + s[8:])
    return None  # an unusual date text: the per-claim path compares text; leave such entries to it


class VCatalogue:
    """Catalogue lookups of one pack, per distinct code: the candidate entries in the order
    `CompiledPack.lookup` tries them (exact entries, then prefix entries, longest prefix first)."""

    def __init__(self, pack: CompiledPack):
        self.pack = pack
        self.entries: list = []
        self._eid: dict[int, int] = {}
        self._cands: dict[str, tuple[int, ...]] = {}
        self._arrays: dict[str, np.ndarray] | None = None
        self._lock = threading.Lock()

    def _id(self, e) -> int:
        k = id(e)
        i = self._eid.get(k)
        if i is None:
            i = len(self.entries)
            self.entries.append(e)
            self._eid[k] = i
            self._arrays = None
        return i

    def candidates(self, code: str) -> tuple[int, ...]:
        c = self._cands.get(code)
        if c is not None:
            return c
        with self._lock:
            out = []
            for e in self.pack.catalogue.get(code) or ():
                if e.match == "exact":
                    out.append(self._id(e))
            for n in self.pack.prefix_lengths:
                if n >= len(code):
                    continue
                for e in self.pack.catalogue.get(code[:n]) or ():
                    if e.match == "prefix":
                        out.append(self._id(e))
            c = tuple(out)
            self._cands[code] = c
        return c

    def arrays(self) -> dict[str, np.ndarray]:
        a = self._arrays
        if a is not None and len(a["cat"]) == len(self.entries):
            return a
        es = self.entries
        vf = [_date_int(e.valid_from, 0) for e in es]
        vt = [_date_int(e.valid_to, 99999999) for e in es]
        a = {
            "vf": np.array([x if x is not None else 0 for x in vf], dtype=np.int64),
            "vt": np.array([x if x is not None else 99999999 for x in vt], dtype=np.int64),
            "odd": np.array([x is None or y is None for x, y in zip(vf, vt)], dtype=bool),
            "cat": np.array([CAT_CODE[e.category] for e in es], dtype=np.int8),
            "selfpay": np.array([e.selfpay if e.selfpay is not None else -1 for e in es], dtype=np.int64),
            "ceiling": np.array([e.ceiling if e.ceiling is not None else -1 for e in es], dtype=np.int64),
            "restricted": np.array([bool(e.restrictions) for e in es], dtype=bool),
            "kind": np.array([KINDS.index(e.kind) if e.kind in KINDS else -1 for e in es], dtype=np.int32),
            "chrg": np.array([e.med_chrgitm_type for e in es] + [None], dtype=object)[:-1],
        }
        self._arrays = a
        return a


@dataclass
class VLayer:
    layer: Any
    when: Any
    ded_cases: list[tuple[Any, int]] | None
    ded_else: int | None
    bands: list[tuple]            # options: case values then else
    band_when: list[Any]          # masks of the cases
    adjust: list[tuple[Any, str, int]]
    caps: list[tuple[list[tuple[Any, int]], int, str | None, str]]  # (cases, else, accumulator, period)


class VPack:
    """A compiled pack with its conditions compiled to masks (once per pack, per process)."""

    def __init__(self, pack: CompiledPack):
        self.pack = pack
        self.catalogue = VCatalogue(pack)
        self.rounding = pack.settings.rounding
        self.layers: list[VLayer] = []
        for layer in pack.layers:
            ded = layer.deductible
            dc, de = None, None
            if ded is not None and ded.amount is not None and not ded.shared_with:
                dc = [(compile_mask(c.when), c.value) for c in ded.amount.cases]
                de = ded.amount.otherwise
            cv = layer.bands.ratios
            caps = []
            for cap in layer.caps:
                caps.append(([(compile_mask(c.when), c.value) for c in cap.amount.cases], cap.amount.otherwise,
                             cap.accumulator, cap.period))
            self.layers.append(VLayer(
                layer=layer, when=compile_mask(layer.when), ded_cases=dc, ded_else=de,
                bands=[c.value for c in cv.cases] + [cv.otherwise], band_when=[compile_mask(c.when) for c in cv.cases],
                adjust=[(compile_mask(a.when), a.kind, a.value) for a in layer.adjust], caps=caps))
        self.accs = [(a, compile_mask(a.when)) for a in pack.accumulators]
        self.restrictions = {rid: (compile_mask(r.when) if r.when is not None else None, r)
                             for rid, r in pack.restrictions.items()}
        pa_ = pack.personal_account
        self.account_when = compile_mask(pa_.when) if pa_ is not None else None
        em = pack.conditions.get("emergency")
        self.emergency = compile_mask(em) if em is not None else None
        self.counter = pack.admission_counter
        self.counter_when = None
        self.supported = True
        self.why_unsupported = ""
        if self.counter:
            acc = next(a for a in pack.accumulators if a.id == self.counter)
            self.counter_when = compile_mask(acc.when)
            if "admission_seq" in uses(acc.when):
                self.supported = False
                self.why_unsupported = "the admission counter's condition reads admission_seq"
        self.count_accs = frozenset(a.id for a in pack.accumulators if a.adds == "count")


# ------------------------------------------------------------------ arithmetic


def vround_div(num: np.ndarray, den, mode: str) -> np.ndarray:
    """`money.round_div` over arrays: symmetric for negatives, half_up | half_even | down."""
    if isinstance(den, int) and (num.size == 0 or num.min() >= 0):
        # the usual case, one integer division: half-up of n/d is ⌊(n + ⌊d/2⌋)/d⌋ for an even d
        if mode == "half_up" and den % 2 == 0:
            return (num + den // 2) // den
        if mode == "down":
            return num // den
    neg = num < 0
    n = np.abs(num)
    q, r = np.divmod(n, den)
    if mode == "half_up":
        q = q + (2 * r >= den)
    elif mode == "half_even":
        q = q + ((2 * r > den) | ((2 * r == den) & (q % 2 == 1)))
    elif mode != "down":
        raise ValueError(f"unknown rounding mode {mode!r}")
    return np.where(neg, -q, q)


def vadjust(r: np.ndarray, kind: str, v: int, rounding: str) -> np.ndarray:
    """`settle.layers.adjust_ratio` over arrays."""
    if kind == "self_share_times":
        return PPM - vround_div((PPM - r) * v, PPM, rounding)
    if kind == "ratio_minus":
        return np.maximum(0, r - v)
    if kind == "ratio_times":
        return vround_div(r * v, PPM, rounding)
    if kind == "ratio_plus":
        return np.minimum(PPM, r + v)
    return r


def _pick(cases: list[tuple[Any, Any]], otherwise: Any, frame: Frame, dtype=np.int64) -> tuple[np.ndarray, np.ndarray]:
    """First case whose mask holds, else `otherwise`: (values, case index or -1)."""
    n = frame.n
    idx = np.full(n, -1, dtype=np.int64)
    vals = np.full(n, otherwise, dtype=dtype) if dtype is not None else None
    free = np.ones(n, dtype=bool)
    for i, (m, v) in enumerate(cases):
        hit = m(frame) & free
        if hit.any():
            idx[hit] = i
            if vals is not None:
                vals[hit] = v
            free &= ~hit
    return vals, idx


# ------------------------------------------------------------------ results


class DetailRows:
    """setldetail rows (one per claim and paying fund), gathered as array chunks."""

    def __init__(self) -> None:
        self.kinds: list[tuple[str, str, str]] = []   # (fund_pay_type, name, layer id)
        self._uid: dict[tuple[str, str, str], int] = {}
        self.chunks: list[tuple[np.ndarray, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def uid(self, fpt: str, name: str, layer: str) -> int:
        k = (fpt, name, layer)
        u = self._uid.get(k)
        if u is None:
            u = self._uid[k] = len(self.kinds)
            self.kinds.append(k)
        return u

    def add(self, claims: np.ndarray, uid: int, base: np.ndarray, limit: np.ndarray | None, pay: np.ndarray) -> None:
        lp = np.ones(len(claims), dtype=bool) if limit is not None else np.zeros(len(claims), dtype=bool)
        lim = limit if limit is not None else np.zeros(len(claims), dtype=np.int64)
        self.chunks.append((np.asarray(claims, dtype=np.int64), uid, np.asarray(base, dtype=np.int64),
                            np.asarray(lim, dtype=np.int64), lp, np.asarray(pay, dtype=np.int64)))

    def arrays(self) -> dict[str, np.ndarray]:
        """Concatenated, ordered by claim (within a claim: layer order, then the account)."""
        if not self.chunks:
            z = np.zeros(0, dtype=np.int64)
            return {"claim": z, "uid": z, "base": z, "limit": z, "limit_present": np.zeros(0, bool), "pay": z}
        claim = np.concatenate([c[0] for c in self.chunks])
        uid = np.concatenate([np.full(len(c[0]), c[1], dtype=np.int64) for c in self.chunks])
        out = {"claim": claim, "uid": uid, "base": np.concatenate([c[2] for c in self.chunks]),
               "limit": np.concatenate([c[3] for c in self.chunks]),
               "limit_present": np.concatenate([c[4] for c in self.chunks]),
               "pay": np.concatenate([c[5] for c in self.chunks])}
        order = np.argsort(claim, kind="stable")
        return {k: v[order] for k, v in out.items()}

    def of_claim(self, arrays: dict[str, np.ndarray], i: int) -> list[tuple[str, int]]:
        lo, hi = np.searchsorted(arrays["claim"], [i, i + 1])
        return [(self.kinds[int(u)][0], int(p)) for u, p in zip(arrays["uid"][lo:hi], arrays["pay"][lo:hi])]


@dataclass
class BlockResult:
    """A partition's settlements, claims in block order. Money as int64 fen."""

    block: Block
    packs: list[CompiledPack]
    claim: dict[str, np.ndarray]            # CLAIM_FIELDS_OUT → int64
    balc: np.ndarray
    balc_present: np.ndarray
    pool_prop: np.ndarray                   # ppm
    review_lines: np.ndarray
    insured: np.ndarray                     # index into packs
    treatment: np.ndarray
    path: np.ndarray                        # 0 vectorised, 1 per-claim fallback
    detail: DetailRows
    lines: dict[str, np.ndarray] | None = None
    accumulators: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
    count_accumulators: set[str] = field(default_factory=set)
    fallback_reasons: dict[str, int] = field(default_factory=dict)
    verified: int = 0
    audit_lines: np.ndarray | None = None      # per claim: lines an audit rule refused (全自费)
    audit_warnings: np.ndarray | None = None   # per claim: W-AUDIT warnings the per-claim path gives
    audit_rules: dict[int, list[str]] | None = None  # (want_lines) refused line → the rules refusing it

    @property
    def fallback_claims(self) -> int:
        return int(self.path.sum())

    # ------------------------------------------------------------ tables
    def setlinfo(self) -> pa.Table:
        b = self.block
        cols: dict[str, pa.Array] = {
            "mdtrt_id": pa.array(b.mdtrt_id.values(), pa.string()),
            "psn_no": pa.array(b.psn_no.values(), pa.string()),
            "setl_time": pa.array(b.setl_time.values(), pa.string()),
        }
        for k in ("insuplc_admdvs", "mdtrtarea_admvs", "insutype", "psn_type", "med_type", "hosp_lv",
                  "insutype_retr_flag"):
            cols[k] = pa.array(b.codes[k].values(), pa.string())
        for k in CLAIM_FIELDS_OUT:
            cols[k] = decimal_array(self.claim[k], 2, precision=16)
            if k == "hifp_pay":
                cols["pool_prop_selfpay"] = decimal_array(self.pool_prop, 6, precision=10)
        cols["balc"] = decimal_array(self.balc, 2, self.balc_present, precision=16)
        cols["review_lines"] = pa.array(self.review_lines.astype(np.int32))
        z = np.zeros(b.n, dtype=np.int32)
        cols["audit_rejected_lines"] = pa.array(self.audit_lines.astype(np.int32) if self.audit_lines is not None else z)
        cols["audit_warnings"] = pa.array(self.audit_warnings.astype(np.int32) if self.audit_warnings is not None else z)
        labels = np.array([p.label for p in self.packs], dtype=object)
        cols["insured_pack"] = pa.array(labels[self.insured] if len(labels) else [], pa.string())
        cols["treatment_pack"] = pa.array(labels[self.treatment] if len(labels) else [], pa.string())
        cols["path"] = pa.array(np.where(self.path == 1, "claim", "vector").astype(object), pa.string())
        if self.accumulators:
            for k, (v, present) in sorted(self.accumulators.items()):
                if k in self.count_accumulators:
                    cols[f"acc.{k}"] = pa.array(v, pa.int64(), mask=~present)
                else:
                    cols[f"acc.{k}"] = decimal_array(v, 2, present, precision=18)
        return pa.table(cols)

    def setldetail(self) -> pa.Table:
        d = self.detail.arrays()
        claim = d["claim"]
        ids = self.block.mdtrt_id.take(claim).values() if len(claim) else np.array([], dtype=object)
        kinds = self.detail.kinds
        col = [np.array([k[j] for k in kinds] + [None], dtype=object)[:-1] for j in range(3)]
        uid = d["uid"]
        return pa.table({
            "mdtrt_id": pa.array(ids, pa.string()),
            "psn_no": pa.array(self.block.psn_no.take(claim).values() if len(claim) else [], pa.string()),
            "fund_pay_type": pa.array(col[0][uid] if len(uid) else [], pa.string()),
            "fund_pay_type_name": pa.array(col[1][uid] if len(uid) else [], pa.string()),
            "layer": pa.array(col[2][uid] if len(uid) else [], pa.string()),
            "inscp_scp_amt": decimal_array(d["base"], 2, precision=16),
            "crt_payb_lmt_amt": decimal_array(d["limit"], 2, d["limit_present"], precision=16),
            "fund_payamt": decimal_array(d["pay"], 2, precision=16),
        })

    def result(self) -> pa.Table | None:
        if self.lines is None:
            return None
        b, ln = self.block, self.lines
        ceil = ln["ceiling"]
        return pa.table({
            "mdtrt_id": pa.array(b.mdtrt_id.take(b.line_claim).values(), pa.string()),
            "feedetl_sn": pa.array(b.feedetl_sn.values(), pa.string()),
            "med_list_codg": pa.array(b.med_list_codg.values(), pa.string()),
            "det_item_fee_sumamt": decimal_array(b.amount, 2, precision=16),
            "pric_uplmt_amt": decimal_array(np.where(ceil >= 0, ceil, 999999 * 10**6), 6, precision=22),
            "selfpay_prop": decimal_array(ln["ratio"], 6, precision=10),
            "fulamt_ownpay_amt": decimal_array(ln["fulamt"], 2, precision=16),
            "overlmt_amt": decimal_array(ln["over"], 2, precision=16),
            "preselfpay_amt": decimal_array(ln["pre"], 2, precision=16),
            "inscp_scp_amt": decimal_array(ln["inscp"], 2, precision=16),
            "chrgitm_lv": pa.array(LV[ln["cat"]], pa.string()),
            "lmt_used_flag": pa.array(np.where(ln["restricted"], "1", "0").astype(object), pa.string()),
            "review_flag": pa.array(np.where(ln["review"], "1", "0").astype(object), pa.string()),
            "audit_rejected": pa.array(np.where(ln["audit"], "1", "0").astype(object), pa.string()),
            "audit_rules": pa.array(self._audit_rule_texts(), pa.string()),
        })

    def _audit_rule_texts(self) -> np.ndarray:
        """Per line: the ids of the audit rules that refused it ('A;B', rule order), else null."""
        out = np.full(self.block.m, None, dtype=object)
        for j, ids in (self.audit_rules or {}).items():
            out[j] = ";".join(ids)
        return out


# ------------------------------------------------------------------ the partition


def settle_block(b: Block, ctx: PackContext, *, want_lines: bool = False, want_accumulators: bool = False,
                 verify: int = 4, force_fallback: bool = False) -> BlockResult:
    """Settle one checked partition. Raises BatchInputError (located) for what the per-claim path
    would refuse, BatchDivergence if the sample check finds a difference."""
    n, m = b.n, b.m
    if n == 0:
        z = np.zeros(0, dtype=np.int64)
        return BlockResult(block=b, packs=[], claim={k: z.copy() for k in CLAIM_FIELDS_OUT}, balc=z.copy(),
                           balc_present=np.zeros(0, bool), pool_prop=z.copy(), review_lines=z.copy(), insured=z.copy(),
                           treatment=z.copy(), path=np.zeros(0, np.int8), detail=DetailRows(),
                           lines=None, accumulators={} if want_accumulators else None)
    # ------------------------------------------------------------ packs per claim
    packs: list[CompiledPack] = []
    pidx: dict[int, int] = {}

    def pack_index(p: CompiledPack) -> int:
        k = id(p)
        if k not in pidx:
            pidx[k] = len(packs)
            packs.append(p)
        return pidx[k]

    ins = _select(b, ctx, "insuplc_admdvs", pack_index, packs)
    same = _same_region(b)
    trt = ins.copy()
    if (~same).any():
        sub = np.flatnonzero(~same)
        trt[sub] = _select(b, ctx, "mdtrtarea_admvs", pack_index, packs, subset=sub)
    nP = len(packs)
    by_admission = np.array([p.info.select_by == "admission" for p in packs], dtype=bool)
    has_adm = b.adm_date > 0
    lookup_date = np.where(by_admission[trt] & has_adm, b.adm_date, b.setl_date)
    vps = [ctx.vpack(p) for p in packs]

    # ------------------------------------------------------------ facts
    claim_cols = _claim_facts(b, same)
    # filing_type as the per-claim path completes it: cross-region without a filing → emergency | unfiled
    filing = b.codes["filing_type"]
    cross = claim_cols["cross_region"].values
    need = cross & (filing.codes < 0)
    fcats = list(filing.cats)
    fcodes = filing.codes.copy()
    if need.any():
        for k in ("emergency", "unfiled"):
            if k not in fcats:
                fcats.append(k)
        e_code, u_code = fcats.index("emergency"), fcats.index("unfiled")
        claim_cols["filing_type"] = CatCol(filing)
        for p in range(nP):
            rows = np.flatnonzero(need & (ins == p))
            if not len(rows):
                continue
            em = vps[p].emergency
            hit = em(Frame(claim_cols, rows)) if em is not None else np.zeros(len(rows), dtype=bool)
            fcodes[rows] = np.where(hit, e_code, u_code)
    claim_cols["filing_type"] = CatCol(Cat(fcodes, np.array(fcats, dtype=object)))

    # ------------------------------------------------------------ person runs and what goes per claim
    first = np.zeros(n, dtype=bool)
    first[b.person_start[:-1]] = True
    run_start = first.copy()
    run_start[1:] |= b.year[1:] != b.year[:-1]
    run_id = np.cumsum(run_start) - 1
    reasons: dict[str, np.ndarray] = {}

    def flag(name: str, mask: np.ndarray) -> None:
        if mask.any():
            reasons[name] = reasons.get(name, np.zeros(n, dtype=bool)) | mask

    flag("icd_edition (diagnosis conversion)", b.codes["icd_edition"].codes >= 0)
    flag("stated accumulators", np.isin(np.arange(n), np.fromiter(b.accumulators.keys(), dtype=np.int64)))
    # a person whose insured pack changes within a year
    rs = np.flatnonzero(run_start)
    run_first_pack = ins[rs][run_id]
    flag("insured pack changes within a year", (ins != run_first_pack))
    flag("pack not expressible", np.array([not vp.supported for vp in vps], dtype=bool)[ins] if nP else
         np.zeros(n, dtype=bool))
    lc = b.line_claim
    bad_line = ((b.med_list_codg.codes < 0) & (b.medins_list_codg.codes >= 0))
    flag("local code only (code mapping)", np.bincount(lc[bad_line], minlength=n) > 0)
    big_line = (b.amount >= GUARD_LINE_FEN) | (b.pric >= GUARD_FLOAT) | (b.cnt >= GUARD_FLOAT)
    flag("amount beyond the exact int64 range", np.bincount(lc[big_line], minlength=n) > 0)
    if force_fallback:
        flag("forced", np.ones(n, dtype=bool))

    # ------------------------------------------------------------ lines
    lines, line_cols = _price_lines(b, packs, vps, ins, trt, lookup_date, claim_cols, flag)

    # admission_seq: 1 + earlier claims of the run counted by the pack's counter (a claim fact the
    # audit's conditions may read, as the layers' do)
    adm_seq = np.zeros(n, dtype=np.int64)
    has_counter = np.zeros(n, dtype=bool)
    w = np.zeros(n, dtype=np.int64)
    for p in range(nP):
        vp = vps[p]
        rows = np.flatnonzero(ins == p)
        if not len(rows) or not vp.counter:
            continue
        has_counter[rows] = True
        w[rows] = vp.counter_when(Frame(claim_cols, rows)).astype(np.int64)
    if has_counter.any():
        c = np.cumsum(w)
        excl = c - w
        adm_seq = excl - excl[rs][run_id] + 1
    claim_cols["admission_seq"] = NumCol(adm_seq, has_counter)

    # ------------------------------------------------------------ smart audit (智能审核), treatment place's rules
    # decided for every claim at once (vaudit.py); a rejected line becomes 全自费 before the sums,
    # as settle.core.apply_audit does
    from .vaudit import audit_block
    au = audit_block(b, packs, trt, claim_cols, line_cols)
    flag("audit: a reject_claim rule refuses the claim", au.refused)
    flag("audit: the claim brings a history", au.history)
    flag("amount beyond the exact int64 range", au.too_big)
    rj = au.rejected
    if rj.any():
        lines["fulamt"][rj] = b.amount[rj]
        lines["over"][rj] = 0
        lines["pre"][rj] = 0
        lines["inscp"][rj] = 0
        lines["ratio"][rj] = PPM
    lines["audit"] = rj
    starts = b.line_start[:-1]
    medfee = np.add.reduceat(b.amount, starts) if m else np.zeros(n, np.int64)
    fulamt = np.add.reduceat(lines["fulamt"], starts) if m else np.zeros(n, np.int64)
    overlmt = np.add.reduceat(lines["over"], starts) if m else np.zeros(n, np.int64)
    pre = np.add.reduceat(lines["pre"], starts) if m else np.zeros(n, np.int64)
    inscp = np.add.reduceat(lines["inscp"], starts) if m else np.zeros(n, np.int64)
    review_lines = np.add.reduceat(lines["review"].astype(np.int64), starts) if m else np.zeros(n, np.int64)
    audit_lines = np.add.reduceat(rj.astype(np.int64), starts) if m else np.zeros(n, np.int64)
    flag("amount beyond the exact int64 range", medfee >= GUARD_CLAIM_FEN)

    # ------------------------------------------------------------ static layer plans per insured pack
    statics: dict[int, _Static] = {}
    for p in range(nP):
        rows = np.flatnonzero(ins == p)
        if len(rows):
            st = _static(vps[p], rows, Frame(claim_cols, rows), b, inscp, pre)
            statics[p] = st
            bad = np.zeros(n, dtype=bool)
            bad[rows[st.bad]] = True
            flag("amount beyond the exact int64 range", bad)

    # whole persons go per claim
    fb_claim = np.zeros(n, dtype=bool)
    for v in reasons.values():
        fb_claim |= v
    fb_person = np.zeros(len(b.person_start) - 1, dtype=bool)
    fb_person[b.person[fb_claim]] = True
    fb = fb_person[b.person]

    # ------------------------------------------------------------ the wavefront over persons' claims
    out = {k: np.zeros(n, dtype=np.int64) for k in CLAIM_FIELDS_OUT}
    out["medfee_sumamt"][:] = medfee
    out["fulamt_ownpay_amt"][:] = fulamt
    out["overlmt_selfpay"][:] = overlmt
    out["preselfpay_amt"][:] = pre
    out["inscp_scp_amt"][:] = inscp
    balc_out = np.zeros(n, dtype=np.int64)
    balc_out_p = np.zeros(n, dtype=bool)
    pool = np.zeros(n, dtype=np.int64)
    detail = DetailRows()
    acc_ids = sorted({a.id for p in range(nP) for a, _ in vps[p].accs})
    acc_row = {a: i for i, a in enumerate(acc_ids)}
    P = len(b.person_start) - 1
    S = np.zeros((max(1, len(acc_ids)), P), dtype=np.int64)
    bal = np.zeros(P, dtype=np.int64)
    bal_p = np.zeros(P, dtype=bool)
    acc_after = {a: (np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)) for a in acc_ids} \
        if want_accumulators else None
    rank = np.arange(n) - b.person_start[b.person]
    live = np.flatnonzero(~fb)
    if len(live):
        wo = live[np.lexsort((live, ins[live], rank[live]))]
        for p, st in statics.items():  # each insured pack's claims in wavefront order, statics aligned
            Wp = wo[ins[wo] == p]
            if not len(Wp):
                continue
            pos = np.searchsorted(st.rows, Wp)
            stp = st.take(pos)
            bounds = np.searchsorted(rank[Wp], np.arange(rank[Wp].max() + 2))
            st.steps = (Wp, stp, bounds)
        max_rank = int(rank[live].max())
        for t in range(max_rank + 1):
            for p, st in statics.items():
                if st.steps is None:
                    continue
                Wp, stp, bounds = st.steps
                if t + 1 >= len(bounds):
                    continue
                a, z = bounds[t], bounds[t + 1]
                if a == z:
                    continue
                _step(vps[p], stp, a, z, Wp[a:z], b, S, acc_row, bal, bal_p, inscp, pre, medfee, fulamt, overlmt,
                      out, pool, balc_out, balc_out_p, detail, acc_after, run_start)

    res = BlockResult(block=b, packs=packs, claim=out, balc=balc_out, balc_present=balc_out_p, pool_prop=pool,
                      review_lines=review_lines, insured=ins, treatment=trt, path=fb.astype(np.int8), detail=detail,
                      lines=lines if want_lines else None, accumulators=acc_after,
                      count_accumulators={a for vp in vps for a in vp.count_accs},
                      audit_lines=audit_lines, audit_warnings=au.warnings,
                      audit_rules=au.reject_rules() if want_lines else None)
    res.fallback_reasons = {k: int((v & fb).sum()) for k, v in reasons.items()}
    if fb.any():
        _fallback(res, ctx, np.flatnonzero(fb_person), want_lines, want_accumulators)
    if verify:
        res.verified = _verify(res, ctx, verify, want_accumulators)
    return res


def _same_region(b: Block) -> np.ndarray:
    a, c = b.codes["insuplc_admdvs"], b.codes["mdtrtarea_admvs"]
    return c.remap_to(a) == a.codes


def _select(b: Block, ctx: PackContext, column: str, pack_index, packs: list, subset: np.ndarray | None = None
            ) -> np.ndarray:
    """Pack per claim, once per distinct (region, date); then by admission date where the pack says so."""
    rows = np.arange(b.n) if subset is None else subset
    reg = b.codes[column].codes[rows].astype(np.int64)
    key = reg * 100_000_000 + b.setl_date[rows]
    uk, inv = np.unique(key, return_inverse=True)
    out = np.zeros(len(rows), dtype=np.int64)
    firsts = np.zeros(len(uk), dtype=np.int64)
    firsts[inv[::-1]] = np.arange(len(rows))[::-1]
    res = np.zeros(len(uk), dtype=np.int64)
    setl_txt = b.setl_time
    for j, k in enumerate(uk):
        i = int(rows[firsts[j]])
        region = b.codes[column].value(i)
        date = setl_txt.value(i).strip()[:10]
        res[j] = _select_one(ctx, region, date, b, i, column, pack_index)
    out[:] = res[inv]
    # select_by admission: the admission date decides when it differs
    adm = b.adm_date[rows]
    again = np.flatnonzero((np.array([p.info.select_by == "admission" for p in packs], dtype=bool)[out])
                           & (adm > 0) & (adm != b.setl_date[rows]))
    if len(again):
        key2 = reg[again] * 100_000_000 + adm[again]
        uk2, inv2 = np.unique(key2, return_inverse=True)
        res2 = np.zeros(len(uk2), dtype=np.int64)
        first2 = np.zeros(len(uk2), dtype=np.int64)
        first2[inv2[::-1]] = np.arange(len(again))[::-1]
        for j in range(len(uk2)):
            i = int(rows[again[first2[j]]])
            region = b.codes[column].value(i)
            date = b.begntime.value(i).strip()[:10]
            res2[j] = _select_one(ctx, region, date, b, i, column, pack_index)
        out[again] = res2[inv2]
    return out


def _select_one(ctx: PackContext, region: str, date: str, b: Block, i: int, column: str, pack_index) -> int:
    try:
        return pack_index(ctx.source.select(region, date))
    except PackSelectionError as e:
        raise BatchInputError([b.claim_where().problem(i, column, e.code, e.message)]) from None


def _cat_default(c: Cat, default: str) -> Cat:
    if not (c.codes < 0).any():
        return c
    cats = list(c.cats)
    if default not in cats:
        cats.append(default)
    k = cats.index(default)
    return Cat(np.where(c.codes < 0, k, c.codes).astype(np.int32), np.array(cats, dtype=object))


def _claim_facts(b: Block, same: np.ndarray) -> dict:
    c = b.codes
    ins, trt = c["insuplc_admdvs"], c["mdtrtarea_admvs"]
    ins_p = np.array([v[:2] for v in ins.cats], dtype=object)[ins.codes] if len(ins.cats) else np.zeros(0, object)
    trt_p = np.array([v[:2] for v in trt.cats], dtype=object)[trt.codes] if len(trt.cats) else np.zeros(0, object)
    cols = {
        "insutype": CatCol(c["insutype"]), "psn_type": CatCol(c["psn_type"]),
        "insutype_retr_flag": CatCol(_cat_default(c["insutype_retr_flag"], "0")),
        "cvlserv_flag": CatCol(_cat_default(c["cvlserv_flag"], "0")), "med_type": CatCol(c["med_type"]),
        "age": NumCol(b.age, np.ones(b.n, dtype=bool)), "gend": CatCol(c["gend"]), "hosp_lv": CatCol(c["hosp_lv"]),
        "community_flag": CatCol(_cat_default(c["community_flag"], "0")),
        "cross_region": BoolCol(~same), "cross_province": BoolCol(ins_p != trt_p),
        "diagnoses": CodesCol(b.diag_owner, b.diag, b.n, np.arange(b.n)),
        "dise_codg": CatCol(c["dise_codg"]), "insuplc_admdvs": CatCol(ins), "mdtrtarea_admvs": CatCol(trt),
    }
    return cols


# ------------------------------------------------------------------ lines


class _LazyCols(dict):
    """Fact columns made on first use: most packs' restrictions read two or three facts."""

    def __init__(self, makers: dict):
        super().__init__()
        self._makers = makers

    def get(self, name, default=None):
        if name not in self:
            mk = self._makers.get(name)
            if mk is None:
                return default
            self[name] = mk()
        return dict.get(self, name)


def _price_lines(b: Block, packs: list[CompiledPack], vps: list[VPack], ins: np.ndarray, trt: np.ndarray,
                 lookup_date: np.ndarray, claim_cols: dict, flag) -> tuple[dict[str, np.ndarray], dict]:
    m = b.m
    lc = b.line_claim
    selfpay_from_insured = np.array([p.settings.selfpay_prop_from == "insured" for p in packs], dtype=bool)
    t_line = trt[lc]
    s_claim = np.where(selfpay_from_insured[ins], ins, trt)
    s_line = s_claim[lc]
    fulamt = np.zeros(m, dtype=np.int64)
    over = np.zeros(m, dtype=np.int64)
    pre = np.zeros(m, dtype=np.int64)
    inscp = np.zeros(m, dtype=np.int64)
    cat = np.full(m, 3, dtype=np.int8)
    ratio = np.full(m, PPM, dtype=np.int64)
    ceiling = np.full(m, -1, dtype=np.int64)
    restricted = np.zeros(m, dtype=bool)
    review = np.zeros(m, dtype=bool)
    entry_of = np.full(m, -1, dtype=np.int64)
    chrg = np.full(m, -1, dtype=np.int32)
    kind = np.full(m, -1, dtype=np.int32)
    chrg_cats: dict[str, int] = {}
    kinds = KINDS
    date = lookup_date[lc]
    odd_line = np.zeros(m, dtype=bool)
    nP = len(packs)
    groups = []
    for tp in range(nP):
        lines_t = np.flatnonzero(t_line == tp)
        if not len(lines_t):
            continue
        vc = vps[tp].catalogue
        codes = b.med_list_codg.codes[lines_t]
        u = np.flatnonzero(np.bincount(codes[codes >= 0], minlength=b.med_list_codg.n_cats()))
        cands = [vc.candidates(c) for c in b.med_list_codg.dictionary.take(pa.array(u)).to_pylist()]
        K = max((len(x) for x in cands), default=0)
        arr = vc.arrays()
        chosen = np.full(len(lines_t), -1, dtype=np.int64)
        if K:
            M = np.full((len(u) + 1, K), -1, dtype=np.int64)
            for i, x in enumerate(cands):
                M[i, :len(x)] = x
            row_of = np.full(b.med_list_codg.n_cats() + 1, len(u), dtype=np.int64)
            row_of[u] = np.arange(len(u))
            r = row_of[codes]
            d = date[lines_t]
            free = np.ones(len(lines_t), dtype=bool)
            for k in range(K):
                e = M[r, k]
                ok = free & (e >= 0)
                if not ok.any():
                    continue
                ee = np.maximum(e, 0)
                odd_line[lines_t[ok & arr["odd"][ee]]] = True
                valid = ok & (arr["vf"][ee] <= d) & (d <= arr["vt"][ee])
                chosen[valid] = e[valid]
                free &= ~valid
        entry_of[lines_t] = chosen
        has = chosen >= 0
        ce = np.maximum(chosen, 0)
        cat[lines_t] = np.where(has, arr["cat"][ce] if len(arr["cat"]) else 3, 3)
        ceiling[lines_t] = np.where(has, arr["ceiling"][ce] if len(arr["ceiling"]) else -1, -1)
        groups.append((tp, lines_t, chosen))
    flag("catalogue entry with an unusual date", np.bincount(lc[odd_line], minlength=b.n) > 0)

    def entry_facts() -> None:
        """med_chrgitm_type and list_kind of each line's entry — only when a restriction reads them."""
        for tp, lines_t, chosen in groups:
            arr = vps[tp].catalogue.arrays()
            has = chosen >= 0
            if not has.any():
                continue
            hc = chosen[has]
            local = np.full(len(arr["cat"]), -1, dtype=np.int32)
            for e in np.flatnonzero(np.bincount(hc, minlength=len(arr["cat"]))):
                v = arr["chrg"][e]
                if v is not None:
                    local[e] = chrg_cats.setdefault(v, len(chrg_cats))
            chrg[lines_t[has]] = local[hc]
            kind[lines_t[has]] = arr["kind"][hc]

    def chrg_col() -> CatCol:
        if not chrg_cats and (kind < 0).all():
            entry_facts()
        return CatCol(Cat(chrg, np.array(list(chrg_cats), dtype=object)))

    def kind_col() -> CatCol:
        if not chrg_cats and (kind < 0).all():
            entry_facts()
        return CatCol(Cat(kind, np.array(kinds, dtype=object)))

    # restrictions, as masks over the lines that carry them (line facts made only when a condition asks)
    line_cols = _LazyCols({
        "med_list_codg": lambda: CatCol(b.med_list_codg), "medins_list_codg": lambda: CatCol(b.medins_list_codg),
        "cnt": lambda: NumCol(b.cnt / 10_000, np.ones(m, dtype=bool)),
        "pric": lambda: NumCol(b.pric / 1_000_000, np.ones(m, dtype=bool)),
        "det_item_fee_sumamt": lambda: NumCol(b.amount / 100, np.ones(m, dtype=bool)),
        "hosp_appr_flag": lambda: CatCol(b.hosp_appr_flag), "prd_days": lambda: NumCol(b.prd_days, b.prd_present),
        "med_chrgitm_type": chrg_col, "list_kind": kind_col,
    })
    unmet = np.zeros(m, dtype=bool)
    for tp, lines_t, chosen in groups:
        vp = vps[tp]
        vc = vp.catalogue
        arr = vc.arrays()
        has = chosen >= 0
        if not has.any() or not len(arr["restricted"]):
            continue
        rmask = has & (cat[lines_t] != 2) & arr["restricted"][np.maximum(chosen, 0)]
        if not rmask.any():
            continue
        R = lines_t[rmask]                 # the restricted lines of this treatment pack
        eR = chosen[rmask]
        restricted[R] = True
        ents = np.flatnonzero(np.bincount(eR, minlength=len(arr["cat"])))
        rids: dict[str, list[int]] = {}
        for e in ents:
            for rid in vc.entries[e].restrictions:
                rids.setdefault(rid, []).append(int(e))
        for rid, es in rids.items():
            fn, r = vp.restrictions[rid]
            carries = np.zeros(len(arr["cat"]), dtype=bool)
            carries[es] = True
            L = R[carries[eR]]
            if fn is None:
                review[L] = True
                continue
            met = fn(Frame(claim_cols, lc[L], line_cols, L))
            notmet = L[~met]
            if r.on_fail == "review":
                review[notmet] = True
            else:
                unmet[notmet] = True

    # amounts: 全自费, then ceiling and 乙类 self-pay in the pack's order, one rounding each
    amt = b.amount
    full = (cat == 3) | (cat == 2) | unmet
    fulamt[full] = amt[full]
    ratio[full] = PPM
    restricted[(cat == 3) | (cat == 2)] = False
    paid = ~full
    combo = t_line * nP + s_line
    present = np.flatnonzero(np.bincount(combo[paid], minlength=nP * nP)) if paid.any() else []
    for k in present:
        tp, sp = divmod(int(k), nP)
        if True:
            L = np.flatnonzero(paid & (combo == k)) if len(present) > 1 else np.flatnonzero(paid)
            tpack, spack = packs[tp], packs[sp]
            rounding = tpack.settings.rounding
            ceiling_first = tpack.settings.line_order == "ceiling_first"
            defaults = spack.selfpay_default
            c = cat[L]
            r = np.zeros(len(L), dtype=np.int64)
            for code, name in ((0, "甲"), (1, "乙")):
                dv = defaults.get(name)
                r[c == code] = dv if dv is not None else (0 if name == "甲" else -1)
            if tpack is spack:
                arr = vps[tp].catalogue.arrays()
                own = arr["selfpay"][entry_of[L]]
                r = np.where(own >= 0, own, r)
            unset = np.flatnonzero(r < 0)
            if len(unset):
                j = int(L[unset[0]])
                e = vps[tp].catalogue.entries[entry_of[j]]
                from .tables import _Where
                wh = _Where(b.lines_name, b.line_row, b.partition, b.mdtrt_id.take(lc))
                raise BatchInputError([wh.problem(j, "med_list_codg", "E-SELFPAY-UNSET",
                                                  f"pack {spack.key} sets no 乙类 self-pay ratio "
                                                  f"(catalogue_defaults.selfpay_prop.乙) and entry {e.code} {e.name} "
                                                  f"({e.file}:{e.line}) has none; the line cannot be priced")])
            if len(present) == 1 and len(L) > m // 2:  # one pack pair: whole arrays, no gathers
                L = slice(None)
                r_full = np.zeros(m, dtype=np.int64)
                r_full[paid] = r
                r = r_full
            a = amt[L]
            ce = ceiling[L]
            pr, cn = b.pric[L], b.cnt[L]
            above = (ce >= 0) & (pr > ce)
            excess = vround_div(np.where(above, (pr - ce) * cn, 0), 10**8, rounding)
            if ceiling_first:
                o = np.where(above, np.minimum(a, excess), 0)
                pp = np.where(r != 0, vround_div((a - o) * r, PPM, rounding), 0)
            else:
                pp = np.where(r != 0, vround_div(a * r, PPM, rounding), 0)
                o = np.where(above, np.minimum(a - pp, excess), 0)
            if isinstance(L, slice):
                over[:], pre[:], inscp[:] = np.where(paid, o, 0), np.where(paid, pp, 0), np.where(paid, a - o - pp, 0)
                ratio[paid] = r[paid]
            else:
                over[L], pre[L], inscp[L], ratio[L] = o, pp, a - o - pp, r
    return {"fulamt": fulamt, "over": over, "pre": pre, "inscp": inscp, "cat": cat, "ratio": ratio,
            "ceiling": ceiling, "restricted": restricted, "review": review}, line_cols


# ------------------------------------------------------------------ claims: static part of the layer chain


@dataclass
class _SLayer:
    applies: np.ndarray
    base_kind: str
    prior_ppm: np.ndarray | None      # cross-region prior_selfpay cut on this layer (0 where none)
    ded_kind: str                     # none | shared | amount
    shared_index: int
    ded_amount: np.ndarray | None
    ded_acc: int                      # row of the yearly accumulator, -1 per claim
    upper: np.ndarray                 # (n, B) band upper edges (INF open)
    edge: np.ndarray                  # (n, B) band lower edges
    ratio: np.ndarray                 # (n, B) adjusted ratios
    real: np.ndarray                  # (n, B) a band of the table (not padding)
    pos_acc: int
    gross: bool
    caps: list[tuple[np.ndarray, int]]  # (amount per claim, accumulator row or -1)
    setl: int
    fund_pay_type: str
    name: str
    layer_id: str
    has_ded: bool
    shared: bool


@dataclass
class _Static:
    rows: np.ndarray                  # claims (block order) of this pack
    layers: list[_SLayer]
    accs: list[tuple[str, str, np.ndarray, list[int]]]  # (id, adds, when mask, layer indices)
    acct_ok: np.ndarray
    acct_covers: tuple[str, ...]
    acct_fpt: str | None
    bad: np.ndarray
    steps: Any = None

    def take(self, pos: np.ndarray) -> "_Static":
        def t(a):
            return a[pos] if a is not None else None
        ls = []
        for L in self.layers:
            ls.append(_SLayer(
                applies=L.applies[pos], base_kind=L.base_kind, prior_ppm=t(L.prior_ppm), ded_kind=L.ded_kind,
                shared_index=L.shared_index, ded_amount=t(L.ded_amount), ded_acc=L.ded_acc, upper=L.upper[pos],
                edge=L.edge[pos], ratio=L.ratio[pos], real=L.real[pos], pos_acc=L.pos_acc, gross=L.gross,
                caps=[(a[pos], r) for a, r in L.caps], setl=L.setl, fund_pay_type=L.fund_pay_type, name=L.name,
                layer_id=L.layer_id, has_ded=L.has_ded, shared=L.shared))
        return _Static(rows=self.rows[pos], layers=ls, accs=[(i, k, w[pos], li) for i, k, w, li in self.accs],
                       acct_ok=self.acct_ok[pos], acct_covers=self.acct_covers, acct_fpt=self.acct_fpt,
                       bad=self.bad[pos])


def _static(vp: VPack, rows: np.ndarray, frame: Frame, b: Block, inscp: np.ndarray, pre: np.ndarray) -> _Static:
    pack = vp.pack
    k = len(rows)
    rounding = vp.rounding
    # cross-region cut per claim
    cr = pack.cross_region
    cut_i = np.full(k, -1, dtype=np.int64)
    if cr is not None:
        fcol = frame.get("cross_province" if cr.scope == "province" else "cross_region")
        elsewhere = fcol.values
        fil = frame.get("filing_type").cat
        fvals = fil.cats
        for ci in range(len(cr.cuts) - 1, -1, -1):  # first match wins: assign in reverse
            t = np.zeros(len(fvals) + 1, dtype=bool)
            for j, v in enumerate(fvals):
                t[j] = v in cr.cuts[ci].filing
            t[-1] = "unfiled" in cr.cuts[ci].filing  # missing filing reads as 'unfiled'
            hit = elsewhere & t[fil.codes]
            cut_i[hit] = ci
    bad = np.zeros(k, dtype=bool)
    layers: list[_SLayer] = []
    ids = [vl.layer.id for vl in vp.layers]
    for vl in vp.layers:
        L = vl.layer
        applies = vl.when(frame)
        lcut_ok = cut_i >= 0
        if cr is not None and cr.layers is not None and L.id not in cr.layers:
            lcut_ok = np.zeros(k, dtype=bool)
        kinds = np.array([c.kind for c in cr.cuts] + ["none"], dtype=object) if cr is not None else \
            np.array(["none"], dtype=object)
        vals = np.array([c.value for c in cr.cuts] + [0], dtype=np.int64) if cr is not None else np.zeros(1, np.int64)
        ck = kinds[cut_i]
        cv = vals[cut_i]
        prior = np.where(lcut_ok & (ck == "prior_selfpay"), cv, 0)
        # deductible
        ded = L.deductible
        ded_kind, shared_index, ded_amount, ded_acc = "none", -1, None, -1
        if ded is not None:
            if ded.shared_with:
                ded_kind, shared_index = "shared", ids.index(ded.shared_with)
            elif vl.ded_cases is not None:
                ded_kind = "amount"
                ded_amount, _ = _pick(vl.ded_cases, vl.ded_else, frame)
                if ded.period == "year" and ded.accumulator:
                    ded_acc = ded.accumulator  # resolved to a row by the caller
        # bands
        opts = vl.bands
        B = max(len(o) for o in opts)
        U = np.full((len(opts), B), INF, dtype=np.int64)
        R = np.zeros((len(opts), B), dtype=np.int64)
        REAL = np.zeros((len(opts), B), dtype=bool)
        for oi, bands in enumerate(opts):
            for bi, band in enumerate(bands):
                U[oi, bi] = band.upper if band.upper is not None else INF
                R[oi, bi] = band.ratio
                REAL[oi, bi] = True
            if len(bands) < B:  # padding above the last band pays nothing
                U[oi, len(bands):] = INF
        _, case = _pick([(m, None) for m in vl.band_when], None, frame, dtype=None)
        ci = np.where(case >= 0, case, len(opts) - 1)
        upper, ratio, real = U[ci], R[ci].copy(), REAL[ci]
        edge = np.zeros_like(upper)
        edge[:, 1:] = upper[:, :-1]
        for m, kind, v in vl.adjust:
            hit = m(frame)
            if hit.any():
                ratio[hit] = vadjust(ratio[hit], kind, v, rounding)
        for kind in ("ratio_minus", "ratio_times"):
            hit = lcut_ok & (ck == kind)
            if hit.any():
                ratio[hit] = vadjust(ratio[hit], kind, cv[hit][:, None], rounding)
        ratio = np.where(real, ratio, 0)  # padding above a table's last band pays nothing, adjusted or not
        bad |= (np.abs(ratio) > GUARD_RATIO).any(axis=1)
        caps = []
        for cases, otherwise, acc, period in vl.caps:
            amount, _ = _pick(cases, otherwise, frame)
            caps.append((amount, acc if period == "year" and acc else -1))
        layers.append(_SLayer(
            applies=applies, base_kind=L.base, prior_ppm=prior if (prior != 0).any() else None, ded_kind=ded_kind,
            shared_index=shared_index, ded_amount=ded_amount, ded_acc=ded_acc, upper=upper, edge=edge, ratio=ratio,
            real=real, pos_acc=L.bands.position or -1, gross=L.bands.basis == "gross", caps=caps,
            setl=FUND_INDEX[L.setl_field], fund_pay_type=L.fund_pay_type,
            name=pack.code_name("fund_pay_type", L.fund_pay_type) or L.name, layer_id=L.id,
            has_ded=ded is not None, shared=bool(ded is not None and ded.shared_with)))
    accs = []
    for a, m in vp.accs:
        accs.append((a.id, a.adds, m(frame), [ids.index(x) for x in a.layers if x in ids]))
    pa_ = pack.personal_account
    if pa_ is not None:
        acct_flag = b.codes["acct_used_flag"].codes[rows]
        one = b.codes["acct_used_flag"].code_of("1")
        acct_ok = (acct_flag == one) & vp.account_when(frame)
        covers, fpt = pa_.covers, pa_.fund_pay_type
    else:
        acct_ok, covers, fpt = np.zeros(k, dtype=bool), (), None
    return _Static(rows=rows, layers=layers, accs=accs, acct_ok=acct_ok, acct_covers=covers, acct_fpt=fpt, bad=bad)


# ------------------------------------------------------------------ claims: one wavefront step


def _step(vp: VPack, st: _Static, a: int, z: int, claims: np.ndarray, b: Block, S: np.ndarray, acc_row: dict,
          bal: np.ndarray, bal_p: np.ndarray, inscp_all, pre_all, medfee_all, fulamt_all, overlmt_all,
          out: dict, pool_out: np.ndarray, balc_out, balc_out_p, detail: dict, acc_after, run_start) -> None:
    rounding = vp.rounding
    g = z - a
    persons = b.person[claims]
    Sg = S[:, persons]
    start = run_start[claims]
    if start.any():
        Sg[:, start] = 0
    inscp, pre = inscp_all[claims], pre_all[claims]
    paid = np.zeros(g, dtype=np.int64)
    funds = np.zeros((len(FUND_FIELDS), g), dtype=np.int64)
    act = np.zeros(g, dtype=np.int64)
    act_set = np.zeros(g, dtype=bool)
    pool = np.zeros(g, dtype=np.int64)
    nl = len(st.layers)
    L_pay = np.zeros((nl, g), dtype=np.int64)
    L_d = np.zeros((nl, g), dtype=np.int64)
    L_base = np.zeros((nl, g), dtype=np.int64)
    L_prior = np.zeros((nl, g), dtype=np.int64)
    L_app = np.zeros((nl, g), dtype=bool)

    def accv(name, idx):
        if isinstance(name, str):
            return Sg[acc_row[name], idx]
        return 0

    for j, L in enumerate(st.layers):
        ap = L.applies[a:z]
        if not ap.any():
            continue
        idx = np.flatnonzero(ap)
        sl = slice(a, z)
        ins_i, pre_i = inscp[idx], pre[idx]
        if L.base_kind == "inscp":
            base, domain = ins_i, ins_i
        elif L.base_kind == "inscp_remaining":
            base, domain = np.maximum(0, ins_i - paid[idx]), ins_i
        else:
            base, domain = np.maximum(0, ins_i + pre_i - paid[idx]), ins_i + pre_i
        L_base[j, idx] = base
        if L.prior_ppm is not None:
            pp = L.prior_ppm[sl][idx]
            prior = np.where(pp != 0, vround_div(base * pp, PPM, rounding), 0)
            L_prior[j, idx] = prior
            base = base - prior
        if L.ded_kind == "shared":
            o = L.shared_index
            d = np.minimum(base, np.where(L_app[o, idx], L_d[o, idx], 0))
        elif L.ded_kind == "amount":
            used = accv(L.ded_acc, idx)
            d = np.minimum(base, np.maximum(0, L.ded_amount[sl][idx] - used))
        else:
            d = np.zeros(len(idx), dtype=np.int64)
        L_d[j, idx] = d
        posv = accv(L.pos_acc, idx)
        if L.gross:
            lo, hi = posv + d, posv + base
        else:
            lo, hi = posv + np.zeros_like(d), posv + base - d
        U, E, R = L.upper[sl][idx], L.edge[sl][idx], L.ratio[sl][idx]
        s_lo = np.maximum(lo[:, None], E)
        s_hi = np.minimum(hi[:, None], U)
        ov = np.maximum(0, s_hi - s_lo)
        exact = (ov * R).sum(axis=1)
        pay = vround_div(exact, PPM, rounding)
        limit = None
        for amount, acc in L.caps:
            used = accv(acc, idx)
            remaining = np.maximum(0, amount[sl][idx] - used)
            pay = np.minimum(pay, remaining)
            limit = remaining if limit is None else np.minimum(limit, remaining)
        left = np.maximum(0, domain - paid[idx])
        pay = np.minimum(pay, left)
        L_pay[j, idx] = pay
        L_app[j, idx] = True
        paid[idx] += pay
        funds[L.setl, idx] += pay
        if L.has_ded and not L.shared:
            take = ~act_set[idx]
            act[idx[take]] = d[take]
            act_set[idx] = True
        if L.setl == 0:  # hifp_pay: the ratio of the claim's highest band, of the first such layer that has one
            seg = (ov > 0) & L.real[sl][idx]
            has = seg.any(axis=1)
            last = (seg.shape[1] - 1) - np.argmax(seg[:, ::-1], axis=1)
            r_last = R[np.arange(len(idx)), last]
            setp = (pool[idx] == 0) & has
            pool[idx[setp]] = r_last[setp]
        nz = np.flatnonzero(pay != 0)
        if len(nz):
            detail.add(claims[idx[nz]], detail.uid(L.fund_pay_type, L.name, L.layer_id), L_base[j, idx[nz]],
                       limit[nz] if limit is not None else None, pay[nz])

    fund_sum = funds.sum(axis=0)
    medfee, fulamt, overlmt = medfee_all[claims], fulamt_all[claims], overlmt_all[claims]
    psn_part = medfee - fund_sum
    # personal account: the balance carries on through the person's claims unless a claim states it
    own_p = b.balc.present[claims]
    balc_in = np.where(own_p, b.balc.values[claims], bal[persons])
    balc_in_p = own_p | bal_p[persons]
    acct = np.zeros(g, dtype=np.int64)
    ok = st.acct_ok[a:z] & balc_in_p & (balc_in > 0)
    if ok.any():
        borne_pre = np.maximum(0, np.minimum(pre, psn_part - fulamt - overlmt))
        inscp_self = np.maximum(0, psn_part - fulamt - overlmt - borne_pre)
        parts = {"fulamt_ownpay_amt": fulamt, "overlmt_selfpay": overlmt, "preselfpay_amt": borne_pre,
                 "inscp_self": inscp_self}
        allowed = np.zeros(g, dtype=np.int64)
        for c in st.acct_covers:
            allowed += parts[c]
        acct = np.where(ok, np.minimum(np.minimum(allowed, balc_in), psn_part), 0)
        nz = np.flatnonzero(acct != 0)
        if len(nz):
            fpt = st.acct_fpt or "310200"
            detail.add(claims[nz], detail.uid(fpt, vp.pack.code_name("fund_pay_type", fpt) or "个人账户",
                                              "personal_account"), inscp[nz], None, acct[nz])
    balc_after = balc_in - acct
    bal[persons] = np.where(balc_in_p, balc_after, 0)
    bal_p[persons] = balc_in_p
    balc_out[claims] = np.where(balc_in_p, balc_after, 0)
    balc_out_p[claims] = balc_in_p

    # accumulators after the claim
    for aid, adds, when, lidx in st.accs:
        wv = when[a:z]
        if adds == "inscp_scp_amt":
            add = inscp
        elif adds == "medfee_sumamt":
            add = medfee
        elif adds == "count":
            add = np.ones(g, dtype=np.int64)
        # (per-layer rows are 0 where the layer did not apply, as `by_id` holds applied layers only)
        elif adds == "paid_by":
            add = L_pay[lidx].sum(axis=0)
        elif adds == "deductible_of":
            add = L_d[lidx].sum(axis=0)
        elif adds == "base_of":
            add = L_base[lidx].sum(axis=0)
        else:  # above_deductible_of
            add = (L_base[lidx] - L_d[lidx] - L_prior[lidx]).sum(axis=0)
        r = acc_row[aid]
        Sg[r] = Sg[r] + np.where(wv, add, 0)
    S[:, persons] = Sg
    if acc_after is not None:
        for aid, _, _, _ in st.accs:
            v, pr = acc_after[aid]
            v[claims] = Sg[acc_row[aid]]
            pr[claims] = True

    for f, i in FUND_INDEX.items():
        out[f][claims] = funds[i]
    out["act_pay_dedc"][claims] = act
    out["fund_pay_sumamt"][claims] = fund_sum
    out["psn_part_amt"][claims] = psn_part
    out["acct_pay"][claims] = acct
    out["psn_cash_pay"][claims] = psn_part - acct
    out["hosp_part_amt"][claims] = 0
    pool_out[claims] = pool


# ------------------------------------------------------------------ the per-claim path: fallback and verification


def settle_person(packs, claims: list[dict]) -> list[Settlement]:
    """A person's claims in settlement order, each starting from the accumulators the previous one
    left (reset at each new calendar year), the account balance carried on unless a claim states it.

    The same walk as `Engine.settle_sequence` (the carried balance written in yuan, as both do)."""
    from decimal import Decimal

    from ..api import _acc_out
    from ..model.claim import parse_claim
    from ..settle.core import settle as _settle
    order = sorted(range(len(claims)), key=lambda i: (str(claims[i].get("setl_time", "")), i))
    results: list[Settlement] = []
    carry: dict[str, Any] | None = None
    year = None
    balc = None
    for i in order:
        data = dict(claims[i])
        y = str(data.get("setl_time", ""))[:4]
        if carry is not None and y == year:
            data["accumulators"] = {k: _acc_out(k, v, results[-1]) for k, v in carry.items()}
        if balc is not None and "balc" not in claims[i]:
            data["balc"] = Decimal(balc).scaleb(-2)
        s = _settle(packs, parse_claim(data))
        results.append(s)
        carry, year = s.accumulators_after, y
        balc = s.balc
    by_index = dict(zip(order, results))
    return [by_index[i] for i in range(len(claims))]


def _person_dicts(b: Block, person: int) -> tuple[np.ndarray, list[dict]]:
    idx = np.arange(b.person_start[person], b.person_start[person + 1])
    return idx, claim_dicts(b, idx)


def _settle_person(ctx: PackContext, b: Block, person: int) -> tuple[np.ndarray, list[Settlement]]:
    idx, dicts = _person_dicts(b, person)
    eng = ctx.engine()
    try:
        return idx, settle_person(ctx.source, dicts)
    except SettlementError as e:
        # name the claim: settle them one by one in order for the message
        for i, d in zip(idx, dicts):
            try:
                eng.settle(d)
            except SettlementError as e2:
                e = e2
                path = e.errors[0].path if e.errors else None
                col = path.split(".")[0].split("[")[0] if path else None
                raise BatchInputError([b.claim_where().problem(int(i), col, e.code, e.message)]) from None
        raise BatchInputError([b.claim_where().problem(int(idx[0]), None, e.code, e.message)]) from None


def _fill(res: BlockResult, i: int, s: Settlement, want_lines: bool, want_acc: bool) -> None:
    c = res.claim
    for k in ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt",
              "act_pay_dedc", "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay", "hosp_part_amt"):
        c[k][i] = getattr(s, k)
    for f in FUND_FIELDS:
        c[f][i] = s.funds[f]
    res.balc[i] = s.balc if s.balc is not None else 0
    res.balc_present[i] = s.balc is not None
    res.pool_prop[i] = s.pool_prop
    res.review_lines[i] = sum(1 for w in s.warnings if w.code == "W-LINE-REVIEW")
    refused = _audit_refused(s)
    if res.audit_lines is not None:
        res.audit_lines[i] = len(refused)
    if res.audit_warnings is not None:
        res.audit_warnings[i] = sum(1 for w in s.warnings if w.code == "W-AUDIT")
    packs = res.packs
    for role, p in (("insured", s.insured), ("treatment", s.treatment)):
        k = next((j for j, q in enumerate(packs) if q is p), None)
        if k is None:
            packs.append(p)
            k = len(packs) - 1
        getattr(res, role)[i] = k
    d = res.detail
    one = np.array([i], dtype=np.int64)
    for r in s.layers:
        if r.pay == 0:
            continue
        remaining = min((u.remaining for u in r.caps), default=None)
        d.add(one, d.uid(r.layer.fund_pay_type, s.insured.code_name("fund_pay_type", r.layer.fund_pay_type)
                         or r.layer.name, r.layer.id), np.array([r.base]),
              np.array([remaining]) if remaining is not None else None, np.array([r.pay]))
    if s.acct_pay:
        fpt = s.acct_fund_pay_type or "310200"
        d.add(one, d.uid(fpt, s.insured.code_name("fund_pay_type", fpt) or "个人账户", "personal_account"),
              np.array([s.inscp_scp_amt]), None, np.array([s.acct_pay]))
    if want_lines and res.lines is not None:
        b = res.block
        ln = res.lines
        for j, lr in zip(range(int(b.line_start[i]), int(b.line_start[i + 1])), s.lines):
            ln["fulamt"][j], ln["over"][j], ln["pre"][j], ln["inscp"][j] = lr.fulamt, lr.overlmt, lr.pre, lr.inscp
            ln["cat"][j] = {"01": 0, "02": 1, "03": 2}[lr.chrgitm_lv] if lr.entry is not None else 3
            ln["ratio"][j] = lr.selfpay_ppm
            ln["ceiling"][j] = lr.ceiling if lr.ceiling is not None else -1
            ln["restricted"][j] = lr.restricted
            ln["review"][j] = lr.review
            ln["audit"][j] = lr.line.feedetl_sn in refused
            if res.audit_rules is not None:
                res.audit_rules.pop(j, None)
                if lr.line.feedetl_sn in refused:
                    res.audit_rules[j] = refused[lr.line.feedetl_sn]
    if want_acc and res.accumulators is not None:
        for k, v in s.accumulators_after.items():
            if k not in res.accumulators:
                res.accumulators[k] = (np.zeros(res.block.n, dtype=np.int64), np.zeros(res.block.n, dtype=bool))
            res.accumulators[k][0][i] = v
            res.accumulators[k][1][i] = True
        res.count_accumulators |= set(s.count_accumulators)


def _audit_refused(s: Settlement) -> dict[str, list[str]]:
    """feedetl_sn → ids of the audit rules that refused the line (rule order), from a per-claim settlement."""
    from ..settle.lines import AUDIT_REJECTED
    out: dict[str, list[str]] = {}
    for lr in s.lines:
        ids = {r.arg.rule_id for r in lr.reasons if r.code == AUDIT_REJECTED}
        if ids:
            out[lr.line.feedetl_sn] = sorted(ids)
    if out and s.treatment.audit is not None:
        from ..audit.evaluate import index_of
        pos = index_of(s.treatment.audit).pos
        out = {k: sorted(v, key=lambda x: pos.get(x, 1 << 30)) for k, v in out.items()}
    return out


def _fallback(res: BlockResult, ctx: PackContext, persons: np.ndarray, want_lines: bool, want_acc: bool) -> None:
    # the vectorised detail rows of these claims (none were made: they were not in the wavefront)
    for p in persons:
        idx, settled = _settle_person(ctx, res.block, int(p))
        for i, s in zip(idx, settled):
            _fill(res, int(i), s, want_lines, want_acc)


def _verify(res: BlockResult, ctx: PackContext, k: int, want_acc: bool) -> int:
    """Re-settle k persons (spread over the partition) by the per-claim path; compare every field."""
    b = res.block
    P = len(b.person_start) - 1
    vec = np.flatnonzero(np.bincount(b.person[res.path == 0], minlength=P) > 0)
    if not len(vec):
        return 0
    pick = vec[np.unique(np.linspace(0, len(vec) - 1, min(k, len(vec))).astype(int))]
    det = res.detail.arrays()
    checked = 0
    for p in pick:
        idx, settled = _settle_person(ctx, b, int(p))
        for i, s in zip(idx, settled):
            i = int(i)
            diffs = []
            for f in CLAIM_FIELDS_OUT:
                ref = s.funds[f] if f in s.funds else getattr(s, f)
                if int(res.claim[f][i]) != ref:
                    diffs.append((f, int(res.claim[f][i]), ref))
            if int(res.pool_prop[i]) != s.pool_prop:
                diffs.append(("pool_prop_selfpay", int(res.pool_prop[i]), s.pool_prop))
            if res.audit_lines is not None and int(res.audit_lines[i]) != len(_audit_refused(s)):
                diffs.append(("audit_rejected_lines", int(res.audit_lines[i]), len(_audit_refused(s))))
            if res.audit_warnings is not None:
                want_w = sum(1 for w in s.warnings if w.code == "W-AUDIT")
                if int(res.audit_warnings[i]) != want_w:
                    diffs.append(("audit_warnings", int(res.audit_warnings[i]), want_w))
            if bool(res.balc_present[i]) != (s.balc is not None) or (s.balc is not None and res.balc[i] != s.balc):
                diffs.append(("balc", int(res.balc[i]) if res.balc_present[i] else None, s.balc))
            mine = sorted(res.detail.of_claim(det, i))
            ref_d = sorted([(r.layer.fund_pay_type, r.pay) for r in s.layers if r.pay]
                           + ([(s.acct_fund_pay_type or "310200", s.acct_pay)] if s.acct_pay else []))
            if mine != ref_d:
                diffs.append(("setldetail", mine, ref_d))
            if want_acc and res.accumulators is not None:
                for aid, v in s.accumulators_after.items():
                    got = res.accumulators.get(aid)
                    if got is None or not got[1][i] or int(got[0][i]) != v:
                        diffs.append((f"accumulators.{aid}", None if got is None else int(got[0][i]), v))
            if diffs:
                f, got, want = diffs[0]
                raise BatchDivergence(
                    f"the vectorised path and the per-claim path disagree on claim {b.mdtrt_id.value(i)} "
                    f"({b.claims_name} row {int(b.row[i]) + 1:,}): {f} = {got} (vectorised) vs {want} (per claim)"
                    + (f"; {len(diffs) - 1} more field(s)" if len(diffs) > 1 else "")
                    + " — nothing was written; please report this with the claim")
            checked += 1
    return checked


# ------------------------------------------------------------------ convenience API


def settle_tables(claims, lines, regions: str | Path | PackContext, *, want_lines: bool = False,
                  want_accumulators: bool = False, verify: int = 4) -> "BatchResult":
    """Settle claims and fee lines given as pandas DataFrames or pyarrow Tables (one partition)."""
    ctx = regions if isinstance(regions, PackContext) else PackContext.from_directory(regions)
    ct = claims if isinstance(claims, pa.Table) else pa.Table.from_pandas(claims, preserve_index=False)
    lt = lines if isinstance(lines, pa.Table) else pa.Table.from_pandas(lines, preserve_index=False)
    block = build_block(ct, lt)
    return settle_block(block, ctx, want_lines=want_lines, want_accumulators=want_accumulators, verify=verify)


__all__ = ["BatchDivergence", "BlockResult", "BatchResult", "PackContext", "PackSource", "settle_block",
           "settle_tables", "InputProblem", "Num"]
BatchResult = BlockResult
