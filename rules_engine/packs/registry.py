"""The set of packs under a directory: versions, dates, inheritance, selection, compiled cache.

`PackSet.load(root)` reads every pack, checks what only the whole set can show (two versions of
one region overlapping in time, gaps, `extends` pointing nowhere or in a circle), then compiles
every effective pack that can occur: each version merged over each version of its parent that
is in force during its dates. The result is immutable; `select(region, date)` is a dictionary
lookup plus a short scan of a region's versions.
"""
from __future__ import annotations

import datetime as dt
import gc
import hashlib
import os
import pickle
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..problems import Problem, Problems
from . import compile as _compile
from .compile import CODE_DIGEST, ENGINE_FORMAT, Part, compile_chain, read_part
from .load import RawPack, discover, load_pack
from .model import CompiledPack

MAX_DATE = "9999-12-31"


class PackSelectionError(LookupError):
    """No pack for a region and date."""

    def __init__(self, code: str, message: str, region: str | None = None, date: str | None = None):
        super().__init__(message)
        self.code, self.message, self.region, self.date = code, message, region, date


@dataclass
class PackSet:
    root: Path
    raws: dict[str, RawPack] = field(default_factory=dict)          # region@version → raw
    versions: dict[str, list[RawPack]] = field(default_factory=dict)  # region → versions by date
    problems: Problems = field(default_factory=Problems)
    compiled: dict[tuple[str, ...], CompiledPack] = field(default_factory=dict)  # chain keys → pack
    _parts: dict[str, Part] = field(default_factory=dict)
    _base: Path | None = None
    _selected: dict = field(default_factory=dict)  # (region, date, fallback) → pack: the set never changes

    # ------------------------------------------------------------ loading
    @classmethod
    def load(cls, root: Path | str, *, cache_dir: Path | None = None, base: Path | None = None) -> "PackSet":
        # Loading allocates hundreds of thousands of small objects that all stay alive: the cyclic
        # collector would walk them again and again for nothing (measured: ~40 % of a cold load).
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return cls._load(root, cache_dir=cache_dir, base=base)
        finally:
            if was_enabled:
                gc.enable()

    @classmethod
    def _load(cls, root: Path | str, *, cache_dir: Path | None = None, base: Path | None = None) -> "PackSet":
        root = Path(root)
        ps = cls(root=root)
        if not root.exists():
            ps.problems.add(Problem("E-PACK-DIR", f"no such directory: {root}", file=str(root)))
            return ps
        dirs = discover(root)
        if not dirs:
            ps.problems.add(Problem("E-PACK-DIR", f"no pack (a folder with pack.yaml) under {root}", file=str(root)))
            return ps
        cached = _CompiledCache(cache_dir) if cache_dir else None
        ps._base = base if base is not None else _base_for(root)
        for d in dirs:
            raw = load_pack(d, ps._base, parse_files=cached is None)
            ps.problems.extend(raw.problems)
            if not raw.ok or not raw.region or not raw.version:
                continue
            if raw.key in ps.raws:
                other = ps.raws[raw.key]
                ps.problems.add(raw.meta.problem("E-PACK-DUPLICATE", f"{raw.key} is defined twice (also in "
                                                 f"{other.display})", ("version",)))
                continue
            if not _dates_ok(raw, ps.problems):
                continue
            ps.raws[raw.key] = raw
            ps.versions.setdefault(raw.region, []).append(raw)
        for region, vs in ps.versions.items():
            vs.sort(key=lambda r: _from(r))
            _check_overlaps(vs, ps.problems)
        ps._check_extends()
        ps._compile_all(cached)
        return ps

    def problem_path(self, p: Problem) -> Path:
        """The absolute path of the file a problem names (problems carry display paths)."""
        f = Path(p.file)
        return (f if f.is_absolute() else (self._base or Path.cwd()) / f).resolve()

    def _check_extends(self) -> None:
        for raw in self.raws.values():
            ext = raw.get("extends")
            if not isinstance(ext, str):
                continue
            region, _, version = ext.partition("@")
            if region == raw.region:
                self.problems.add(raw.meta.problem("E-EXTENDS-CYCLE", f"{raw.key} extends its own region", ("extends",)))
                continue
            if region not in self.versions:
                self.problems.add(raw.meta.problem("E-EXTENDS-UNKNOWN", f"extends '{ext}': no pack of region {region} "
                                                   f"under {self.root}", ("extends",)))
                continue
            if version and f"{region}@{version}" not in self.raws:
                known = ", ".join(r.version for r in self.versions[region])
                self.problems.add(raw.meta.problem("E-EXTENDS-UNKNOWN", f"extends '{ext}': region {region} has no "
                                                   f"version '{version}'", ("extends",), hint=f"versions: {known}"))
        # cycles along region links
        graph = {}
        for raw in self.raws.values():
            ext = raw.get("extends")
            if isinstance(ext, str):
                graph.setdefault(raw.region, set()).add(ext.partition("@")[0])
        cyc = _compile._find_cycle({k: sorted(v) for k, v in graph.items()})
        if cyc:
            raw = self.versions[cyc[0]][0]
            self.problems.add(raw.meta.problem("E-EXTENDS-CYCLE", "packs extend each other in a loop: "
                                               + " → ".join(cyc + [cyc[0]]), ("extends",)))
            for r in cyc:
                for v in self.versions.get(r, []):
                    self.raws.pop(v.key, None)
                self.versions.pop(r, None)

    def _part(self, raw: RawPack) -> Part:
        if raw.key not in self._parts:
            if not raw.complete:  # cache miss: now read the whole pack
                full = load_pack(raw.dir, self._base)
                self.problems.extend_unique(full.problems)
                raw.__dict__.update(full.__dict__)
            problems: list[Problem] = []
            part = read_part(raw, problems)
            part.has_errors = part.has_errors or any(p.severity == "error" for p in problems)
            self._parts[raw.key] = part
            self.problems.extend_unique(problems)
        return self._parts[raw.key]

    def chains(self, raw: RawPack) -> list[list[RawPack]]:
        """Every ancestor chain `raw` can have during its dates (root first)."""
        ext = raw.get("extends")
        if not isinstance(ext, str):
            return [[raw]]
        region, _, version = ext.partition("@")
        if region not in self.versions:
            return []
        if version:
            parent = self.raws.get(f"{region}@{version}")
            parents = [parent] if parent else []
        else:
            parents = [p for p in self.versions[region] if _overlaps(_from(p), _to(p), _from(raw), _to(raw))]
            uncovered = _uncovered(_from(raw), _to(raw), [(_from(p), _to(p)) for p in parents])
            if uncovered:
                self.problems.add(raw.meta.problem(
                    "E-EXTENDS-DATES", f"extends '{region}' but no version of {region} is in force from "
                    f"{uncovered[0]} to {uncovered[1]}", ("extends",),
                    hint="pin a version with 'region@version' or add a version covering those dates"))
        out = []
        for p in parents:
            for chain in self.chains(p):
                out.append(chain + [raw])
        return out

    def _compile_all(self, cache: "_CompiledCache | None") -> None:
        for raw in list(self.raws.values()):
            for chain in self.chains(raw):
                keys = tuple(r.key for r in chain)
                if keys in self.compiled:
                    continue
                digest = _chain_digest(chain)
                pack = cache.get(digest) if cache else None
                if pack is None:
                    problems: list[Problem] = []
                    parts = [self._part(r) for r in chain]
                    if any(p.severity == "error" for r in chain for p in r.problems) or any(
                            pt.has_errors for pt in parts):
                        continue  # a file of the chain is broken: reported, never compiled
                    pack = compile_chain(parts, problems)
                    self.problems.extend_unique(problems)
                    if pack is not None and cache:
                        cache.put(digest, pack)
                if pack is not None:
                    self.compiled[keys] = pack

    # ------------------------------------------------------------ selection
    def select(self, region: str, date: str, *, fallback: bool = True) -> CompiledPack:
        """The effective pack for a region on a date (YYYY-MM-DD).

        A district or city without its own pack falls back to its city, then its province
        (110105 → 110100 → 110000): regions settle at different levels.
        """
        key = (region, date, fallback)
        pack = self._selected.get(key)
        if pack is None:
            pack = self._select(region, date, fallback)
            if len(self._selected) > 100_000:
                self._selected.clear()
            self._selected[key] = pack
        return pack

    def _select(self, region: str, date: str, fallback: bool) -> CompiledPack:
        tried = [region]
        if fallback and len(region) == 6 and region.isdigit():
            for cand in (region[:4] + "00", region[:2] + "0000"):
                if cand not in tried:
                    tried.append(cand)
        for r in tried:
            if r in self.versions:
                raw = self._in_force(r, date)
                if raw is None:
                    spans = ", ".join(f"{v.version} ({_from(v)}…{_to(v) if _to(v) != MAX_DATE else ''})"
                                      for v in self.versions[r])
                    raise PackSelectionError("E-NO-PACK-ON-DATE", f"no pack of region {r} is in force on {date} "
                                             f"(versions: {spans})", r, date)
                return self._effective(raw, date)
        raise PackSelectionError("E-UNKNOWN-REGION", f"no pack for region {region}"
                                 + (f" (nor {', '.join(tried[1:])})" if len(tried) > 1 else ""), region, date)

    def _in_force(self, region: str, date: str) -> RawPack | None:
        for raw in self.versions.get(region, []):
            if _from(raw) <= date <= _to(raw):
                return raw
        return None

    def effective(self, raw: RawPack, date: str) -> CompiledPack:
        """The compiled pack of this exact version on a date (its parents chosen by that date)."""
        return self._effective(raw, date)

    def _effective(self, raw: RawPack, date: str) -> CompiledPack:
        chain = [raw]
        cur = raw
        while True:
            ext = cur.get("extends")
            if not isinstance(ext, str):
                break
            region, _, version = ext.partition("@")
            parent = self.raws.get(f"{region}@{version}") if version else self._in_force(region, date)
            if parent is None:
                raise PackSelectionError("E-NO-PACK-ON-DATE", f"{cur.key} extends {ext}, which has no version in "
                                         f"force on {date}", region, date)
            chain.insert(0, parent)
            cur = parent
        keys = tuple(r.key for r in chain)
        pack = self.compiled.get(keys)
        if pack is None:
            raise PackSelectionError("E-PACK-INVALID", f"pack {raw.key} did not compile (run 'rules-engine "
                                     f"validate')", raw.region, date)
        return pack

    def packs(self) -> list[CompiledPack]:
        return sorted(self.compiled.values(), key=lambda p: (p.info.region, p.info.effective_from, p.chain))

    def version_of(self, region: str, version: str) -> list[CompiledPack]:
        return [p for k, p in self.compiled.items() if k[-1] == f"{region}@{version}"]


def _base_for(root: Path) -> Path:
    return Path.cwd() if root.resolve().is_relative_to(Path.cwd().resolve()) else root.parent


def _from(raw: RawPack) -> str:
    return str(raw.meta.data["effective"]["from"])


def _to(raw: RawPack) -> str:
    to = raw.meta.data["effective"].get("to")
    return str(to) if to else MAX_DATE


def _dates_ok(raw: RawPack, problems: Problems) -> bool:
    eff = raw.get("effective")
    if not isinstance(eff, dict) or not isinstance(eff.get("from"), str):
        return False
    for k in ("from", "to"):
        v = eff.get(k)
        if v is None:
            continue
        try:
            dt.date.fromisoformat(str(v))
        except ValueError:
            problems.add(raw.meta.problem("E-DATE", f"effective.{k} '{v}' is not a real date", ("effective", k),
                                          hint="YYYY-MM-DD"))
            return False
    if eff.get("to") and str(eff["to"]) < str(eff["from"]):
        problems.add(raw.meta.problem("E-DATES-ORDER", f"effective.to {eff['to']} is before effective.from "
                                      f"{eff['from']}", ("effective", "to")))
        return False
    return True


def _overlaps(a0: str, a1: str, b0: str, b1: str) -> bool:
    return max(a0, b0) <= min(a1, b1)


def _uncovered(lo: str, hi: str, spans: list[tuple[str, str]]) -> tuple[str, str] | None:
    cur = lo
    for s, e in sorted(spans):
        if s > cur:
            return (cur, _day_before(s))
        if e >= cur:
            if e == MAX_DATE:
                return None
            cur = _day_after(e)
        if cur > hi:
            return None
    return (cur, hi) if cur <= hi else None


def _day_after(d: str) -> str:
    return (dt.date.fromisoformat(d) + dt.timedelta(days=1)).isoformat()


def _day_before(d: str) -> str:
    return (dt.date.fromisoformat(d) - dt.timedelta(days=1)).isoformat()


def _check_overlaps(vs: list[RawPack], problems: Problems) -> None:
    for a, b in zip(vs, vs[1:]):
        if _from(b) <= _to(a):
            problems.add(b.meta.problem(
                "E-DATES-OVERLAP", f"{b.key} (from {_from(b)}) overlaps {a.key} (to "
                f"{_to(a) if _to(a) != MAX_DATE else 'open-ended'})", ("effective", "from"),
                hint=f"close {a.key} with 'effective.to: {_day_before(_from(b))}'"))
        elif _day_after(_to(a)) != _from(b):
            problems.add(b.meta.problem(
                "W-DATES-GAP", f"no version of region {b.region} is in force from {_day_after(_to(a))} to "
                f"{_day_before(_from(b))}", ("effective", "from"), severity="warning"))


def _chain_digest(chain: list[RawPack]) -> str:
    h = hashlib.sha256(f"format={ENGINE_FORMAT};code={CODE_DIGEST};py={sys.version_info[:2]}".encode())
    for r in chain:
        h.update(r.key.encode() + b"\0" + r.raw_digest.encode())
    return h.hexdigest()


class _Lazy:
    """Stands for a shared object of the compiled cache (coding tables, audit rules) until first
    used, then is it: a restart pays for unpickling megabytes of ICD tables only when a claim
    first needs a conversion."""

    __slots__ = ("_cache", "_name", "_obj", "_lock")

    def __init__(self, cache: "_CompiledCache", name: str):
        self._cache, self._name, self._obj, self._lock = cache, name, None, threading.Lock()

    def _get(self):
        obj = self._obj
        if obj is None:
            with self._lock:
                if self._obj is None:
                    obj = self._cache._shared_get(self._name)
                    if obj is None:
                        raise RuntimeError(f"compiled cache entry {self._name} vanished; delete the cache and reload")
                    self._obj = obj
                obj = self._obj
        return obj

    def __getattr__(self, attr: str):
        return getattr(self._get(), attr)

    def __repr__(self) -> str:  # pragma: no cover
        return f"<lazy {self._name}>"


class _CompiledCache:
    """Compiled packs pickled by the digest of their files' bytes — outside the pack folders.

    A pack's coding tables (the national ICD maps: megabytes) are stored once per set of coding
    folders, not once per chain, and shared in memory by every pack that uses them."""

    _shared: dict[str, object] = {}  # coding tables and audit rules, by key, shared by every pack using them

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self._lazies: dict[str, _Lazy] = {}

    def _path(self, name: str) -> Path:
        return self.dir / name

    def _read(self, name: str):
        try:
            with open(self._path(name), "rb") as f:
                return pickle.load(f)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
            return None

    def _write(self, name: str, obj) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = self._path(name).with_suffix(f".tmp{os.getpid()}")
            with open(tmp, "wb") as f:
                pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self._path(name))
        except OSError:
            pass  # a cache that cannot be written is only slower

    def _shared_get(self, name: str):
        obj = self._shared.get(name)
        if obj is None:
            obj = self._read(name)
            if obj is not None:
                self._shared[name] = obj
        return obj

    def get(self, digest: str) -> CompiledPack | None:
        pack = self._read(f"{digest}.pack.pickle")
        if pack is None:
            return None
        update = {}
        for attr, name in (("coding", f"{_compile.coding_key(pack.coding_digests)}.coding.pickle"
                            if any(pack.coding_digests) else None),
                           ("audit", f"{pack.audit_key}.audit.pickle" if pack.audit_key else None)):
            if name is None:
                continue
            if name in self._shared:
                update[attr] = self._shared[name]
            elif self._path(name).exists():
                lazy = self._lazies.get(name)
                if lazy is None:
                    lazy = self._lazies[name] = _Lazy(self, name)
                update[attr] = lazy
            else:
                return None
        return pack.model_copy(update=update) if update else pack

    def put(self, digest: str, pack: CompiledPack) -> None:
        update = {}
        for attr, name in (("coding", f"{_compile.coding_key(pack.coding_digests)}.coding.pickle"),
                           ("audit", f"{pack.audit_key}.audit.pickle")):
            obj = getattr(pack, attr)
            if obj is None:
                continue
            if name not in self._shared and not self._path(name).exists():
                self._write(name, obj)
            self._shared[name] = obj
            update[attr] = None
        self._write(f"{digest}.pack.pickle", pack.model_copy(update=update) if update else pack)


def default_cache_dir() -> Path:
    env = os.environ.get("RULES_ENGINE_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rules-engine"


class PinnedPackSet:
    """A pack set in which some regions always answer with one given pack, whatever the date:
    to settle the same claims under two versions (diff, impact) without touching the files."""

    def __init__(self, base: PackSet, pins: dict[str, CompiledPack]):
        self.base, self.pins = base, dict(pins)
        self.root = base.root

    def select(self, region: str, date: str, *, fallback: bool = True) -> CompiledPack:
        if region in self.pins:
            return self.pins[region]
        try:
            pack = self.base.select(region, date, fallback=fallback)
        except PackSelectionError:
            for cand in (region[:4] + "00", region[:2] + "0000"):
                if fallback and cand in self.pins and cand not in self.base.versions:
                    return self.pins[cand]
            raise
        return self.pins.get(pack.info.region, pack)

    def packs(self) -> list[CompiledPack]:
        return self.base.packs()
