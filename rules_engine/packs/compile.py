"""Compile: raw documents of a pack and its ancestors → one immutable `CompiledPack`.

Each pack's own files are turned into typed parts (amounts in fen, ratios in ppm, conditions
parsed), then the chain is merged by the rules of docs/pack-format.md §Inheritance:

- settings, catalogue defaults: key by key, the child wins;
- named conditions, accumulators, layers, restrictions: by id, the child's replaces the
  parent's in place, new ids are appended (a layer `{id: x, remove: true}` drops one);
- catalogue entries: by code, the child's entries replace all of the parent's for that code;
- cross_region and personal_account: the child's replaces the parent's whole;
- provenance: concatenated (ids must be unique along the chain).

Semantic checks run on the merged result, so a reference may point at something a parent
defines. Every problem is located; nothing here raises for bad input.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from ..conditions.language import (All, AnyOf, Cmp, Node, Not, Ref, Src, parse_condition, refs_used, resolve_refs,
                                   src_of, to_data)
from ..money import MoneyError, scaled_int, to_fen, to_ppm
from ..problems import Problem, did_you_mean
from .load import CatalogueFile, RawPack
from .model import (Accumulator, Adjust, Band, Bands, Cap, Case, CaseValue, CatEntry, CompiledPack, CrossRegion, Cut,
                    Deductible, Layer, PackInfo, PersonalAccount, Provenance, Restriction, Settings)
from .source import Document, Path_

# The canonical form the content hash is computed over. Bump it only when that form changes (a
# hash must stay the same across engine releases, or recorded settlements could not be replayed).
ENGINE_FORMAT = 2


def _code_digest() -> str:
    """Digest of the modules that define compiled objects: part of the compiled-cache key, so a
    cache written by other code is never unpickled into objects of a different shape."""
    from pathlib import Path as _P
    h = hashlib.sha256()
    here = _P(__file__).resolve().parent
    for f in (here / "model.py", here / "compile.py", here.parent / "conditions" / "language.py"):
        try:
            h.update(f.read_bytes())
        except OSError:
            h.update(f.name.encode())
    return h.hexdigest()[:16]


CODE_DIGEST = _code_digest()

CATEGORY_TO_LV = {"甲": "01", "乙": "02", "丙": "03"}
NATIONAL_BOUNDS = {"referral": 100_000, "emergency": 100_000, "other_temporary": 200_000}
SETL_FIELD_PREFIX = {"310100": "hifp_pay", "390100": "hifp_pay", "320100": "cvlserv_pay", "330100": "hifob_pay",
                     "390200": "hifmi_pay", "370100": "hifes_pay", "610100": "maf_pay"}


@dataclass
class Part:
    """What one pack's own files say, before merging."""

    raw: RawPack
    settings: dict[str, tuple[Any, Src]] = field(default_factory=dict)
    selfpay: dict[str, tuple[int, Src]] = field(default_factory=dict)
    conditions: dict[str, tuple[Node, Src]] = field(default_factory=dict)
    accumulators: list[Accumulator] = field(default_factory=list)
    admission_counter: tuple[str, Src] | None = None
    layers: list[Layer] = field(default_factory=list)
    removed_layers: set[str] = field(default_factory=set)
    cross_region: CrossRegion | None = None
    has_cross_region: bool = False
    account: PersonalAccount | None = None
    has_account: bool = False
    restrictions: dict[str, Restriction] = field(default_factory=dict)
    catalogue: dict[str, list[CatEntry]] = field(default_factory=dict)
    catalogue_refs: list[tuple[CatEntry, tuple[str, int, int]]] = field(default_factory=list)
    provenance: list[Provenance] = field(default_factory=list)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    source_refs: list[tuple[str, Src]] = field(default_factory=list)
    has_errors: bool = False  # its own files had errors: never compiled
    coding: Any = None        # rules_engine.coding CodingPart of coding/, or None
    audit: Any = None         # rules_engine.audit AuditPart of audit/, or None


class _Ctx:
    def __init__(self, doc: Document, problems: list[Problem], part: Part):
        self.doc, self.problems, self.part = doc, problems, part

    def src(self, path: Path_) -> Src:
        return src_of(self.doc, path)

    def err(self, code: str, msg: str, path: Path_, hint: str | None = None, key: bool = False,
            severity: str = "error") -> None:
        self.problems.append(self.doc.problem(code, msg, path, hint=hint, key=key, severity=severity))

    def get(self, path: Path_) -> Any:
        d = self.doc.data
        for p in path:
            if isinstance(d, dict):
                d = d.get(p)
            elif isinstance(d, list) and isinstance(p, int) and p < len(d):
                d = d[p]
            else:
                return None
        return d

    def sources(self, path: Path_) -> tuple[str, ...]:
        v = self.get(path)
        if v is None:
            return ()
        ids = (v,) if isinstance(v, str) else tuple(x for x in v if isinstance(x, str))
        s = self.src(path)
        for i in ids:
            self.part.source_refs.append((i, s))
        return ids

    def cond(self, path: Path_) -> Node | None:
        v = self.get(path)
        if v is None:
            return None
        node, ps = parse_condition(self.doc, path, v)
        self.problems.extend(ps)
        return node

    def fen(self, path: Path_) -> int | None:
        v = self.get(path)
        if v is None:
            return None
        try:
            return to_fen(Decimal(repr(v)) if isinstance(v, float) else v, "amount")
        except MoneyError as e:
            self.err("E-MONEY-DECIMALS", str(e), path, hint="amounts are yuan with at most 2 decimals")
            return None

    def ppm(self, path: Path_) -> int | None:
        v = self.get(path)
        if v is None:
            return None
        try:
            r = to_ppm(Decimal(repr(v)) if isinstance(v, float) else v, "ratio")
        except MoneyError as e:
            self.err("E-RATIO-PRECISION", str(e), path, hint="ratios have at most 6 decimal places")
            return None
        if not 0 <= r <= 1_000_000:
            self.err("E-RATIO-RANGE", f"ratio {v} is outside [0, 1]", path,
                     hint="ratios are written as fractions: 85 % is 0.85")
            return None
        return r

    def case_value(self, path: Path_, convert) -> CaseValue | None:
        """A scalar (or list) value, or {cases: [...], else: ...}; `convert(path)` types one value."""
        v = self.get(path)
        if v is None:
            return None
        if isinstance(v, dict) and "cases" in v:
            cases = []
            for i, c in enumerate(v.get("cases") or []):
                cp = path + ("cases", i)
                when = self.cond(cp + ("when",))
                val = convert(cp + ("value",))
                if when is not None and val is not None:
                    cases.append(Case(when=when, value=val, src=self.src(cp), sources=self.sources(cp + ("source",)),
                                      index=i))
            other = convert(path + ("else",))
            if other is None:
                return None
            return CaseValue(cases=tuple(cases), otherwise=other, otherwise_src=self.src(path + ("else",)))
        val = convert(path)
        if val is None:
            return None
        return CaseValue(otherwise=val, otherwise_src=self.src(path))


# ------------------------------------------------------------------ one pack's own files

def read_part(raw: RawPack, problems: list[Problem]) -> Part:
    part = Part(raw=raw)
    meta = raw.meta
    assert meta is not None
    m = _Ctx(meta, problems, part)
    key = raw.key
    # provenance
    for i, p in enumerate(m.get(("provenance",)) or []):
        if isinstance(p, dict) and isinstance(p.get("id"), str) and isinstance(p.get("title"), str):
            part.provenance.append(Provenance(
                id=p["id"], title=p["title"], confidence=str(p.get("confidence", "unconfirmed")),
                issuer=p.get("issuer"), number=p.get("number"), date=str(p["date"]) if p.get("date") else None,
                link=p.get("link"), via=p.get("via"), covers=p.get("covers"), note=p.get("note"), pack=key))
    # settings
    for name, v in (m.get(("settings",)) or {}).items():
        path = ("settings", name)
        part.settings[name] = (v, m.src(path))
    for cat in ("甲", "乙"):
        ppm = m.ppm(("catalogue_defaults", "selfpay_prop", cat))
        if ppm is not None:
            part.selfpay[cat] = (ppm, m.src(("catalogue_defaults", "selfpay_prop", cat)))
    m.sources(("catalogue_defaults", "source"))

    if raw.policy is not None:
        _read_policy(_Ctx(raw.policy, problems, part))
    if raw.restrictions is not None:
        _read_restrictions(_Ctx(raw.restrictions, problems, part))
    if raw.codes is not None:
        cc = _Ctx(raw.codes, problems, part)
        cc.sources(("source",))
        for table, rows in (cc.get(("tables",)) or {}).items():
            if isinstance(rows, dict):
                part.codes[table] = {str(k): str(v) for k, v in rows.items()}
    if raw.coding_digest is not None:
        from ..coding.load import load_coding
        part.coding, cps = load_coding(raw.dir, raw.base)
        problems.extend(cps)
    if raw.audit_digest is not None:
        from ..audit.load import load_audit
        part.audit, aps = load_audit(raw.dir, raw.base)
        problems.extend(aps)
    n_errors = sum(1 for p in problems if p.severity == "error")
    for cf in raw.catalogues:
        _read_catalogue(cf, part, problems, m)
    part.has_errors = n_errors < sum(1 for p in problems if p.severity == "error")
    return part


def _read_policy(c: _Ctx) -> None:
    part = c.part
    for name in (c.get(("conditions",)) or {}):
        node = c.cond(("conditions", name))
        if node is not None:
            part.conditions[name] = (node, c.src(("conditions", name)))
    ac = c.get(("admission_counter",))
    if isinstance(ac, str):
        part.admission_counter = (ac, c.src(("admission_counter",)))
    seen: dict[str, int] = {}
    for i, a in enumerate(c.get(("accumulators",)) or []):
        if not isinstance(a, dict) or not isinstance(a.get("id"), str):
            continue
        path = ("accumulators", i)
        if a["id"] in seen:
            c.err("E-DUPLICATE-ID", f"accumulator '{a['id']}' is defined twice (also at item {seen[a['id']]})",
                  path + ("id",))
            continue
        seen[a["id"]] = i
        adds = a.get("adds")
        layers: tuple[str, ...] = ()
        if isinstance(adds, dict):
            if len(adds) != 1:
                continue  # the schema reports the shape of 'adds'; nothing half-built here
            (kind, arg), = adds.items()
            layers = tuple(arg) if isinstance(arg, list) else (arg,)
            if not all(isinstance(x, str) for x in layers):
                continue  # e.g. "{deductible_ resident_outpatient}": a key with no layer — the schema says so
        else:
            kind = adds
        part.accumulators.append(Accumulator(id=a["id"], name=a.get("name") or a["id"], adds=str(kind), layers=layers,
                                             when=c.cond(path + ("when",)), src=c.src(path)))
    seen_l: dict[str, int] = {}
    for i, layer in enumerate(c.get(("layers",)) or []):
        if not isinstance(layer, dict) or not isinstance(layer.get("id"), str):
            continue
        path = ("layers", i)
        lid = layer["id"]
        if lid in seen_l:
            c.err("E-DUPLICATE-ID", f"layer '{lid}' is defined twice in this file", path + ("id",))
            continue
        seen_l[lid] = i
        compiled = _read_layer(c, path, layer)
        if compiled is not None:
            part.layers.append(compiled)
    if c.get(("cross_region",)) is not None:
        part.has_cross_region = True
        part.cross_region = _read_cross_region(c)
    if c.get(("personal_account",)) is not None:
        part.has_account = True
        pa = c.get(("personal_account",))
        if isinstance(pa, dict) and isinstance(pa.get("fund_pay_type"), str):
            part.account = PersonalAccount(
                when=c.cond(("personal_account", "when")), fund_pay_type=pa["fund_pay_type"],
                covers=tuple(pa.get("covers") or ("inscp_self", "preselfpay_amt", "overlmt_selfpay",
                                                  "fulamt_ownpay_amt")),
                sources=c.sources(("personal_account", "source")), src=c.src(("personal_account",)))


def _read_bands(c: _Ctx, path: Path_) -> tuple | None:
    v = c.get(path)
    if not isinstance(v, list) or not v:
        return None
    bands: list[Band] = []
    ok = True
    prev = 0
    for i, b in enumerate(v):
        bp = path + (i,)
        if not isinstance(b, dict):
            return None
        ratio = c.ppm(bp + ("ratio",))
        upper = c.fen(bp + ("to",)) if "to" in b else None
        if ratio is None or ("to" in b and upper is None):
            ok = False
            continue
        if upper is None and i != len(v) - 1:
            c.err("E-BANDS-GAP", "only the last band may leave out 'to'; this band has no upper edge, so the "
                  "bands after it can never apply", bp, hint="give this band its upper edge 'to: …'")
            ok = False
        if upper is not None and upper <= prev:
            c.err("E-BANDS-ORDER", f"band edges must increase: 'to: {upper / 100:g}' is not above the previous "
                  f"edge {prev / 100:g}", bp + ("to",), hint="list bands from the lowest amount up")
            ok = False
        if upper is not None:
            prev = upper
        bands.append(Band(upper=upper, ratio=ratio if ratio is not None else 0, src=c.src(bp)))
    return tuple(bands) if ok else None


def _read_layer(c: _Ctx, path: Path_, d: dict) -> Layer | None:
    if d.get("remove") is True:
        c.part.removed_layers.add(d["id"])
        return None
    ok = True
    ded = None
    if isinstance(d.get("deductible"), dict):
        dp = path + ("deductible",)
        dd = d["deductible"]
        amount = c.case_value(dp + ("amount",), c.fen) if "amount" in dd else None
        period = dd.get("period", "claim")
        if "amount" not in dd and "shared_with" not in dd:
            c.err("E-DEDUCTIBLE", "a deductible needs an 'amount' (or 'shared_with' another layer)", dp)
            ok = False
        if period == "year" and not dd.get("accumulator") and "shared_with" not in dd:
            c.err("E-DEDUCTIBLE", "a yearly deductible needs the 'accumulator' that holds what was paid "
                  "toward it so far", dp, hint="add 'accumulator: <id>' naming an accumulator with "
                  "adds: {deductible_of: " + d["id"] + "}")
            ok = False
        ref_key = "accumulator" if "accumulator" in dd else "shared_with" if "shared_with" in dd else None
        ded = Deductible(period=period, amount=amount, accumulator=dd.get("accumulator"),
                         shared_with=dd.get("shared_with"), sources=c.sources(dp + ("source",)), src=c.src(dp),
                         ref_src=c.src(dp + (ref_key,)) if ref_key else None)
        if "amount" in dd and amount is None:
            ok = False
    bp = path + ("bands",)
    bd = d.get("bands") or {}
    ratios = c.case_value(bp + ("ratios",), lambda p: _read_bands(c, p))
    if ratios is None:
        ok = False
    adjust: list[Adjust] = []
    for i, a in enumerate(d.get("adjust") or []):
        ap = path + ("adjust", i)
        if not isinstance(a, dict):
            continue
        kinds = [k for k in ("self_share_times", "ratio_minus", "ratio_times", "ratio_plus") if k in a]
        if len(kinds) != 1:
            continue
        val = c.ppm(ap + (kinds[0],))
        when = c.cond(ap + ("when",))
        if val is None or (when is None and "when" in a):
            ok = False
            continue
        adjust.append(Adjust(when=when, kind=kinds[0], value=val, sources=c.sources(ap + ("source",)),
                             src=c.src(ap), note=a.get("note")))
    caps: list[Cap] = []
    for i, cap in enumerate(d.get("caps") or []):
        cp = path + ("caps", i)
        if not isinstance(cap, dict):
            continue
        amount = c.case_value(cp + ("amount",), c.fen)
        if amount is None:
            ok = False
            continue
        if cap.get("period") == "year" and not cap.get("accumulator"):
            c.err("E-CAP", "a yearly cap needs the 'accumulator' of what counts toward it", cp,
                  hint="add 'accumulator: <id>' naming an accumulator with adds: {paid_by: [" + d["id"] + "]}")
            ok = False
        caps.append(Cap(amount=amount, period=cap.get("period", "claim"), accumulator=cap.get("accumulator"),
                        sources=c.sources(cp + ("source",)), src=c.src(cp),
                        acc_src=c.src(cp + ("accumulator",)) if "accumulator" in cap else None))
    when = c.cond(path + ("when",))
    if "when" in d and when is None:
        ok = False
    fpt, field_ = d.get("fund_pay_type"), d.get("setl_field")
    expect = SETL_FIELD_PREFIX.get(str(fpt))
    if expect and field_ and expect != field_:
        c.err("W-LAYER-FIELD", f"fund_pay_type {fpt} is usually reported in {expect}, not {field_}",
              path + ("setl_field",), severity="warning")
    if not ok or not isinstance(fpt, str) or not isinstance(field_, str):
        return None
    return Layer(id=d["id"], name=d.get("name") or d["id"], fund_pay_type=fpt, setl_field=field_, when=when,
                 base=d.get("base", "inscp"), deductible=ded,
                 bands=Bands(basis=bd.get("basis", "gross"), position=bd.get("position"), ratios=ratios,
                             sources=c.sources(bp + ("source",)), src=c.src(bp),
                             position_src=c.src(bp + ("position",)) if "position" in bd else None),
                 adjust=tuple(adjust), caps=tuple(caps), sources=c.sources(path + ("source",)),
                 confidence=d.get("confidence"), note=d.get("note"), src=c.src(path))


def _read_cross_region(c: _Ctx) -> CrossRegion | None:
    d = c.get(("cross_region",))
    if not isinstance(d, dict) or not isinstance(d.get("cuts"), list):
        return None
    cuts: list[Cut] = []
    seen: dict[str, int] = {}
    for i, cut in enumerate(d["cuts"]):
        p = ("cross_region", "cuts", i)
        if not isinstance(cut, dict) or not isinstance(cut.get("filing"), list):
            continue
        kinds = [k for k in ("none", "ratio_minus", "ratio_times", "prior_selfpay") if k in cut]
        if len(kinds) != 1:
            continue
        kind = kinds[0]
        val = 0 if kind == "none" else c.ppm(p + (kind,))
        if val is None:
            continue
        for f in cut["filing"]:
            if f in seen:
                c.err("E-CROSS-DUPLICATE", f"filing type '{f}' already has a cut (item {seen[f]})", p + ("filing",))
            seen[f] = i
            bound = NATIONAL_BOUNDS.get(f)
            if bound is not None and kind == "ratio_minus" and val > bound:
                c.err("W-CROSS-BOUND", f"a cut of {val / 10_000:g} points for '{f}' exceeds the national bound of "
                      f"{bound / 10_000:g} points (医保发〔2022〕22号)", p + (kind,), severity="warning")
        cuts.append(Cut(filing=tuple(cut["filing"]), kind=kind, value=val, sources=c.sources(p + ("source",)),
                        src=c.src(p), note=cut.get("note")))
    layers = d.get("layers")
    return CrossRegion(scope=d.get("scope", "province"), layers=tuple(layers) if isinstance(layers, list) else None,
                       cuts=tuple(cuts), src=c.src(("cross_region",)))


def _read_restrictions(c: _Ctx) -> None:
    for i, r in enumerate(c.get(("restrictions",)) or []):
        p = ("restrictions", i)
        if not isinstance(r, dict) or not isinstance(r.get("id"), str) or not isinstance(r.get("text"), str):
            continue
        if r["id"] in c.part.restrictions:
            c.err("E-DUPLICATE-ID", f"restriction '{r['id']}' is defined twice", p + ("id",))
            continue
        when = c.cond(p + ("when",))
        if "when" in r and when is None:
            continue
        on_fail = r.get("on_fail", "ownpay")
        if when is None:
            on_fail = "review"
        c.part.restrictions[r["id"]] = Restriction(id=r["id"], text=r["text"], when=when, on_fail=on_fail,
                                                   review_reason=r.get("review_reason"),
                                                   sources=c.sources(p + ("source",)), src=c.src(p))


def _valid_date(s: Any) -> bool:
    try:
        dt.date.fromisoformat(str(s))
        return True
    except ValueError:
        return False


def _read_catalogue(cf: CatalogueFile, part: Part, problems: list[Problem], m: _Ctx) -> None:
    idx = part.catalogue
    for e, (file, line, col) in zip(cf.entries, cf.locate):
        if not isinstance(e, dict) or not isinstance(e.get("code"), str) or e.get("category") not in CATEGORY_TO_LV:
            continue
        bad = False
        sp = ce = None
        try:
            if e.get("selfpay_prop") is not None:
                sp = to_ppm(e["selfpay_prop"], "selfpay_prop")
            if e.get("pric_uplmt_amt") is not None:
                ce = scaled_int(e["pric_uplmt_amt"], 6, "pric_uplmt_amt")
        except MoneyError as err:
            problems.append(Problem("E-CATALOGUE-VALUE", f"entry {e['code']}: {err}", file=file, line=line, col=col))
            bad = True
        vf, vt = e.get("valid_from"), e.get("valid_to")
        for name, v in (("valid_from", vf), ("valid_to", vt)):
            if v is not None and not _valid_date(v):
                problems.append(Problem("E-DATE", f"entry {e['code']}: {name} '{v}' is not a real date",
                                        file=file, line=line, col=col, hint="YYYY-MM-DD"))
                bad = True
        if not bad and vf and vt and vf > vt:
            problems.append(Problem("E-DATES-ORDER", f"entry {e['code']}: valid_from {vf} is after valid_to {vt}",
                                    file=file, line=line, col=col))
            bad = True
        if bad:
            continue
        entry = CatEntry(code=e["code"], name=str(e.get("name", "")), kind=cf.kind, category=e["category"],
                         selfpay=sp, ceiling=ce, restrictions=tuple(e.get("restrictions") or ()),
                         valid_from=vf, valid_to=vt, med_chrgitm_type=e.get("med_chrgitm_type"), file=file, line=line,
                         match=e.get("match", "exact"))
        prior = idx.get(entry.code)
        if prior:
            clash = next((p for p in prior if p.match == entry.match and _overlap(p.valid_from, p.valid_to, vf, vt)),
                         None)
            if clash is not None:
                problems.append(Problem(
                    "E-DUPLICATE-CODE", f"code {entry.code} is listed twice with overlapping validity "
                    f"(also at {clash.file}:{clash.line})", file=file, line=line, col=col,
                    hint="give each listing its own valid_from / valid_to, or remove one"))
                continue
            prior.append(entry)
        else:
            idx[entry.code] = [entry]
        if entry.restrictions:
            part.catalogue_refs.append((entry, (file, line, col)))


def _overlap(a_from, a_to, b_from, b_to) -> bool:
    lo = max(a_from or "0000-00-00", b_from or "0000-00-00")
    hi = min(a_to or "9999-12-31", b_to or "9999-12-31")
    return lo <= hi


# ------------------------------------------------------------------ merge + semantic checks

def compile_chain(parts: list[Part], problems: list[Problem]) -> CompiledPack | None:
    """Merge parts (root ancestor first) and check the result. None if any error was found."""
    n_before = sum(1 for p in problems if p.severity == "error")
    leaf = parts[-1].raw
    meta = leaf.meta
    assert meta is not None
    settings: dict[str, tuple[Any, Src]] = {}
    selfpay: dict[str, tuple[int, Src]] = {}
    conditions: dict[str, tuple[Node, Src]] = {}
    accumulators: dict[str, Accumulator] = {}
    admission_counter = None
    layers: dict[str, Layer] = {}
    cross_region = None
    account = None
    restrictions: dict[str, Restriction] = {}
    catalogue: dict[str, list[CatEntry]] = {}
    provenance: dict[str, Provenance] = {}
    source_refs: list[tuple[str, Src]] = []
    codes: dict[str, dict[str, str]] = {}
    for part in parts:
        for table, rows in part.codes.items():
            codes.setdefault(table, {}).update(rows)
        settings.update(part.settings)
        selfpay.update(part.selfpay)
        conditions.update(part.conditions)
        for a in part.accumulators:
            accumulators[a.id] = a
        if part.admission_counter:
            admission_counter = part.admission_counter
        for lid in part.removed_layers:
            layers.pop(lid, None)
        for layer in part.layers:
            layers[layer.id] = layer
        if part.has_cross_region:
            cross_region = part.cross_region
        if part.has_account:
            account = part.account
        restrictions.update(part.restrictions)
        catalogue.update(part.catalogue)
        for p in part.provenance:
            if p.id in provenance:
                problems.append(Problem("E-DUPLICATE-ID", f"provenance id '{p.id}' is already used by "
                                        f"{provenance[p.id].pack}", file=part.raw.meta.file if part.raw.meta else "?",
                                        hint="choose another id"))
            provenance[p.id] = p
        source_refs += part.source_refs

    # named conditions: references and cycles
    def check_refs(node: Node | None) -> None:
        if node is None:
            return
        for r in refs_used(node):
            if r.name not in conditions:
                hint = did_you_mean(r.name, conditions)
                problems.append(Problem("E-REF-CONDITION", f"unknown named condition '{r.name}'", file=r.src.file,
                                        line=r.src.line, col=r.src.col,
                                        hint=(hint + " " if hint else "") + "named conditions: "
                                        + (", ".join(conditions) or "(none defined)")))

    for name, (node, src) in conditions.items():
        check_refs(node)
    cyc = _find_cycle({n: [r.name for r in refs_used(node)] for n, (node, _) in conditions.items()})
    if cyc:
        src = conditions[cyc[0]][1]
        problems.append(Problem("E-REF-CYCLE", "named conditions refer to each other in a loop: "
                                + " → ".join(cyc + [cyc[0]]), file=src.file, line=src.line, col=src.col))
        return None

    def resolve(node: Node | None) -> Node | None:
        if node is None:
            return None
        try:
            return resolve_refs(node, {k: v[0] for k, v in conditions.items()})
        except KeyError:
            return None

    # accumulators
    layer_ids = list(layers)
    acc_ids = set(accumulators)
    for a in accumulators.values():
        check_refs(a.when)
        for lid in a.layers:
            if lid not in layers:
                _ref_err(problems, a.src, "layer", lid, layer_ids)
    if admission_counter:
        name, src = admission_counter
        if name not in accumulators:
            _ref_err(problems, src, "accumulator", name, acc_ids)
        elif accumulators[name].adds != "count":
            problems.append(Problem("E-ADMISSION-COUNTER", f"admission_counter '{name}' must be an accumulator that "
                                    "adds 'count'", file=src.file, line=src.line, col=src.col))

    # layers
    order = list(layers)
    for pos, layer in enumerate(layers.values()):
        check_refs(layer.when)
        for adj in layer.adjust:
            check_refs(adj.when)
        d = layer.deductible
        if d is not None:
            if d.accumulator and d.accumulator not in accumulators:
                _ref_err(problems, d.ref_src or d.src, "accumulator", d.accumulator, acc_ids)
            if d.shared_with:
                if d.shared_with not in layers:
                    _ref_err(problems, d.ref_src or d.src, "layer", d.shared_with, layer_ids)
                elif order.index(d.shared_with) >= pos:
                    problems.append(Problem("E-REF-LAYER", f"deductible shared_with '{d.shared_with}' must name an "
                                            "earlier layer", file=d.src.file, line=d.src.line, col=d.src.col))
            if d.amount:
                for case in d.amount.cases:
                    check_refs(case.when)
        for case in layer.bands.ratios.cases:
            check_refs(case.when)
        if layer.bands.position and layer.bands.position not in accumulators:
            _ref_err(problems, layer.bands.position_src or layer.bands.src, "accumulator", layer.bands.position, acc_ids)
        for cap in layer.caps:
            if cap.accumulator and cap.accumulator not in accumulators:
                _ref_err(problems, cap.acc_src or cap.src, "accumulator", cap.accumulator, acc_ids)
            for case in cap.amount.cases:
                check_refs(case.when)
            if d is not None and d.amount is not None:
                dmax = max(_values(d.amount))
                cmin = min(_values(cap.amount))
                if cmin < dmax:
                    problems.append(Problem("E-CAP-BELOW-DEDUCTIBLE",
                                            f"cap {cmin / 100:,.2f} is below the deductible {dmax / 100:,.2f} of layer "
                                            f"'{layer.id}'", file=cap.src.file, line=cap.src.line, col=cap.src.col,
                                            hint="a cap this low means the layer can never pay; check the figures"))
    if cross_region is not None and cross_region.layers:
        for lid in cross_region.layers:
            if lid not in layers:
                _ref_err(problems, cross_region.src, "layer", lid, layer_ids)
    if account is not None:
        check_refs(account.when)
    for r in restrictions.values():
        check_refs(r.when)

    # catalogue → restrictions
    for part in parts:
        for entry, (file, line, col) in part.catalogue_refs:
            if catalogue.get(entry.code) is None or entry not in catalogue[entry.code]:
                continue  # overridden by a child
            for rid in entry.restrictions:
                if rid not in restrictions:
                    hint = did_you_mean(rid, restrictions)
                    problems.append(Problem("E-REF-RESTRICTION", f"entry {entry.code} names unknown restriction "
                                            f"'{rid}'", file=file, line=line, col=col,
                                            hint=(hint + " " if hint else "") + "define it in restrictions.yaml"))
    # sources
    for sid, src in source_refs:
        if sid not in provenance:
            hint = did_you_mean(sid, provenance)
            problems.append(Problem("E-REF-SOURCE", f"unknown source '{sid}'", file=src.file, line=src.line,
                                    col=src.col, hint=(hint + " " if hint else "")
                                    + "sources are the ids under 'provenance' in pack.yaml"))

    if sum(1 for p in problems if p.severity == "error") == n_before:
        _check_parallel_layers(list(layers.values()), resolve, problems)
    coding = None
    if any(p.coding is not None for p in parts):
        ckey = coding_key(tuple(p.raw.coding_digest or "" for p in parts))
        coding = _MERGED_CODING.get(ckey)
        if coding is None:
            from ..coding.load import merge_chain
            coding, cps = merge_chain([p.coding for p in parts], known_sources=set(provenance))
            problems.extend(cps)
            if not any(p.severity == "error" for p in cps):
                _MERGED_CODING[ckey] = coding
    if sum(1 for p in problems if p.severity == "error") > n_before:
        return None

    audit = akey = None
    if any(p.audit is not None for p in parts):
        named = {k: resolve(v[0]) for k, v in conditions.items()}
        akey = audit_key(tuple(p.raw.audit_digest or "" for p in parts), named)
        audit = _MERGED_AUDIT.get(akey)
        if audit is None:
            from ..audit.load import merge_chain as merge_audit
            audit, aps = merge_audit([p.audit for p in parts], named=named)
            problems.extend(aps)
            if any(p.severity == "error" for p in aps):
                return None
            _MERGED_AUDIT[akey] = audit

    # resolved, immutable result
    resolved_layers = []
    for layer in layers.values():
        ded = layer.deductible
        if ded is not None and ded.amount is not None:
            ded = ded.model_copy(update={"amount": _resolve_cases(ded.amount, resolve)})
        bands = layer.bands.model_copy(update={"ratios": _resolve_cases(layer.bands.ratios, resolve)})
        adjust = tuple(a.model_copy(update={"when": resolve(a.when)}) for a in layer.adjust)
        caps = tuple(c.model_copy(update={"amount": _resolve_cases(c.amount, resolve)}) for c in layer.caps)
        resolved_layers.append(layer.model_copy(update={"when": resolve(layer.when), "deductible": ded,
                                                        "bands": bands, "adjust": adjust, "caps": caps}))
    accs = tuple(a.model_copy(update={"when": resolve(a.when)}) for a in accumulators.values())
    if account is not None:
        account = account.model_copy(update={"when": resolve(account.when)})
    rests = {k: r.model_copy(update={"when": resolve(r.when)}) for k, r in restrictions.items()}

    st_kwargs = {k: v[0] for k, v in settings.items()}
    st = Settings(**st_kwargs, srcs={k: v[1] for k, v in settings.items()})
    eff = meta.data["effective"]
    info = PackInfo(region=leaf.region or "", name=str(meta.data.get("name")), version=leaf.version or "",
                    effective_from=str(eff["from"]), effective_to=str(eff["to"]) if eff.get("to") else None,
                    select_by=meta.data.get("select_by", "settlement"), extends=meta.data.get("extends"),
                    confidence=meta.data.get("confidence"), description=meta.data.get("description"),
                    dir=leaf.display, files=tuple(sorted({leaf.meta.file} | {c.file for c in leaf.catalogues})))
    cat_frozen = {k: tuple(v) for k, v in catalogue.items()}
    counts: dict[str, int] = {}
    prefix_lengths: set[int] = set()
    for entries in cat_frozen.values():
        for e in entries:
            counts[e.kind] = counts.get(e.kind, 0) + 1
            if e.match == "prefix":
                prefix_lengths.add(len(e.code))
    fields = dict(
        info=info, chain=tuple(p.raw.key for p in parts), content_hash="",
        provenance=tuple(provenance.values()), settings=st,
        selfpay_default={k: v[0] for k, v in selfpay.items()},
        selfpay_src=selfpay["乙"][1] if "乙" in selfpay else None,
        conditions={k: resolve(v[0]) for k, v in conditions.items()},
        accumulators=accs, admission_counter=admission_counter[0] if admission_counter else None,
        layers=tuple(resolved_layers), cross_region=cross_region, personal_account=account,
        restrictions=rests, catalogue=cat_frozen, catalogue_counts=counts, codes=codes,
        prefix_lengths=tuple(sorted(prefix_lengths, reverse=True)), coding=coding,
        coding_digests=tuple(p.raw.coding_digest or "" for p in parts), audit=audit,
        audit_hash=audit.content_hash if audit is not None else None,
        audit_key=akey if audit is not None else None)
    fields["content_hash"] = content_hash(fields)
    return CompiledPack.model_construct(**fields)


def _constraints(nodes) -> tuple[dict[str, frozenset], dict[str, frozenset]]:
    """What a conjunction of conditions says for sure: fact → allowed values, fact → excluded values
    (from eq/in tests and their negations). Other shapes say nothing (conservative)."""
    pos: dict[str, frozenset] = {}
    neg: dict[str, frozenset] = {}

    def visit(n, negated: bool) -> None:
        if n is None:
            return
        if isinstance(n, Cmp) and n.op in ("eq", "in"):
            vals = frozenset([n.value]) if n.op == "eq" else frozenset(n.value)
            if negated:
                neg[n.fact] = neg.get(n.fact, frozenset()) | vals
            else:
                pos[n.fact] = pos[n.fact] & vals if n.fact in pos else vals
        elif isinstance(n, All) and not negated:
            for i in n.items:
                visit(i, False)
        elif isinstance(n, Not):
            visit(n.item, not negated) if isinstance(n.item, Cmp) or not negated else None
    for node in nodes:
        visit(node, False)
    return pos, neg


def _contradictory(nodes) -> bool:
    pos, neg = _constraints(nodes)
    return any(not v or v <= neg.get(k, frozenset()) for k, v in pos.items())


def _profile(table, adjustments) -> list[tuple[int, int | None, int]]:
    from ..settle.layers import adjust_ratio
    out, edge = [], 0
    for b in table:
        r = b.ratio
        for a in adjustments:
            r = max(r, adjust_ratio(r, a.kind, a.value, "half_up"))
        out.append((edge, b.upper, r))
        if b.upper is None:
            break
        edge = b.upper
    return out


def _check_parallel_layers(layers: list[Layer], resolve, problems: list[Problem]) -> None:
    """Layers that pay on the same in-scope amount must not pay more than 100 % of it together:
    the runtime bound stops an overpayment, but a combined marginal ratio above 1 would let a
    patient pay *less* for a bigger bill. Cases whose conditions exclude each other (different
    insutype, community vs not …) are not combined."""
    import itertools

    from ..money import PPM

    def options(layer: Layer):
        when = resolve(layer.when)
        raising = [a for a in layer.adjust if a.kind in ("self_share_times", "ratio_plus")]
        cv = layer.bands.ratios
        opts = [([when, resolve(c.when)], c.value) for c in cv.cases] + [([when], cv.otherwise)]
        out = []
        for conds, table in opts:
            adj = [a for a in raising if not _contradictory(conds + [resolve(a.when)])]
            out.append((conds, _profile(table, adj)))
        return out

    parallel = [l for l in layers if l.base == "inscp"]
    for j, b in enumerate(parallel):
        mates = [a for a in parallel[:j] if not _contradictory([resolve(a.when), resolve(b.when)])]
        if not mates:
            continue
        group = mates + [b]
        same_axis = len({(l.bands.position, l.bands.basis) for l in group}) == 1
        worst = None
        for combo in itertools.product(*(options(l) for l in group)):
            if _contradictory([n for conds, _ in combo for n in conds]):
                continue
            profiles = [prof for _, prof in combo]
            if not same_axis:
                total = sum(max(r for _, _, r in prof) for prof in profiles)
                if total > PPM and (worst is None or total > worst[1]):
                    worst = (0, total, None)
                continue
            cuts = sorted({seg[0] for prof in profiles for seg in prof} | {seg[1] for prof in profiles for seg in prof
                                                                           if seg[1] is not None})
            for k, lo in enumerate(cuts):
                total = sum(next((r for s_lo, s_hi, r in prof if s_lo <= lo and (s_hi is None or lo < s_hi)), 0)
                            for prof in profiles)
                if total > PPM and (worst is None or total > worst[1]):
                    worst = (lo, total, cuts[k + 1] if k + 1 < len(cuts) else None)
        if worst is not None:
            lo, total, hi = worst
            where = f"from {lo / 100:,.2f}" + (f" to {hi / 100:,.2f}" if hi is not None else " up")
            names = ", ".join(f"'{l.id}'" for l in group)
            problems.append(Problem(
                "E-LAYERS-OVER-100", f"layers {names} all pay on the in-scope amount and together can pay "
                f"{total / 10_000:g}% of it ({where} on the band axis)", file=b.src.file, line=b.src.line,
                col=b.src.col, hint="give the later layer 'base: inscp_remaining', lower its ratios, or make the "
                "layers' 'when' exclusive (e.g. different insutype or med_type)"))


# The national ICD tables are tens of MB in memory: chains with the same coding folders share one
# merged object (in memory here, and on disk in the compiled cache) instead of one copy each.
_MERGED_CODING: dict[str, Any] = {}


_MERGED_AUDIT: dict[str, Any] = {}


def coding_key(digests: tuple[str, ...]) -> str:
    return hashlib.sha256(("|".join(digests) + f"|{CODE_DIGEST}").encode()).hexdigest()


def audit_key(digests: tuple[str, ...], named: dict) -> str:
    """Audit rules resolve the chain's named conditions late, so those are part of the key."""
    conds = json.dumps({k: to_data(v) for k, v in sorted(named.items())}, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(("|".join(digests) + f"|{CODE_DIGEST}|" + conds).encode()).hexdigest()


def _resolve_cases(cv: CaseValue, resolve) -> CaseValue:
    if not cv.cases:
        return cv
    return cv.model_copy(update={"cases": tuple(c.model_copy(update={"when": resolve(c.when)}) for c in cv.cases)})


def _values(cv: CaseValue) -> list:
    return [c.value for c in cv.cases] + [cv.otherwise]


def _ref_err(problems: list[Problem], src: Src, what: str, name: str, known) -> None:
    hint = did_you_mean(name, known)
    problems.append(Problem(f"E-REF-{what.upper()}", f"unknown {what} '{name}'", file=src.file, line=src.line,
                            col=src.col, hint=(hint + " " if hint else "") + f"known: {', '.join(sorted(known)) or '(none)'}"))


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in graph.get(n, []):
            if m not in graph:
                continue
            if state.get(m) == 1:
                return stack[stack.index(m):]
            if state.get(m) is None:
                r = visit(m)
                if r:
                    return r
        state[n] = 2
        stack.pop()
        return None

    for n in graph:
        if state.get(n) is None:
            r = visit(n)
            if r:
                return r
    return None


# ------------------------------------------------------------------ content hash

def _canon(x: Any) -> Any:
    if isinstance(x, Src):
        return None
    if isinstance(x, (Cmp, All, AnyOf, Not, Ref)):
        return to_data(x)
    if isinstance(x, CatEntry):
        return [x.code, x.name, x.kind, x.category, x.selfpay, x.ceiling, list(x.restrictions), x.valid_from,
                x.valid_to, x.med_chrgitm_type, x.match]
    if isinstance(x, BaseModel):
        return {k: _canon(getattr(x, k)) for k in type(x).model_fields
                if k not in ("src", "srcs", "otherwise_src", "pack")}
    if isinstance(x, dict):
        return {str(k): _canon(v) for k, v in sorted(x.items(), key=lambda kv: str(kv[0]))}
    if isinstance(x, (list, tuple)):
        return [_canon(v) for v in x]
    return x


def content_hash(fields: dict) -> str:
    """sha256 over the canonical content (no positions): equal policy ⇒ equal hash.

    The policy part is canonical JSON; the catalogue (tens of thousands of entries) is streamed
    into the digest entry by entry, in code order, without building one big document."""
    skip = ("content_hash", "selfpay_src", "catalogue", "catalogue_counts", "prefix_lengths", "coding", "audit",
            "audit_key")
    doc = {k: _canon(v) for k, v in fields.items() if k not in skip}
    doc["info"] = {k: v for k, v in doc["info"].items() if k not in ("dir", "files")}
    doc["format"] = ENGINE_FORMAT
    h = hashlib.sha256()
    h.update(json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    catalogue = fields.get("catalogue") or {}
    for code in sorted(catalogue):
        for e in catalogue[code]:
            h.update(repr((e.code, e.name, e.kind, e.category, e.selfpay, e.ceiling, e.restrictions, e.valid_from,
                           e.valid_to, e.med_chrgitm_type, e.match)).encode("utf-8"))
    return h.hexdigest()
