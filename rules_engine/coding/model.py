"""Compiled coding data and the questions asked of it: translate a code, map a local item code.

Shape, and why:
- A compiled `Coding` is immutable and picklable (the compiled-pack cache stores it): plain
  dicts, tuples and frozen dataclasses, no closures. A mapping table is stored *by column*
  (`MapCols`: one tuple per column) and indexed by `codes.key(code)` → row number(s): no
  object per row, so unpickling 49,240 ICD rows does not build 49,240 row objects (and the
  garbage collector has nothing to walk); the readable `Match` objects are built per question.
- `translate` follows FHIR ConceptMap `$translate`: it returns **every** match — several
  targets of one source are all returned, a reverse lookup returns all sources that map to
  the code (HAPI returns only one, hapi-fhir#4497) — and the caller reads the relationship of
  each. `Translation.kind` and `.warning()` give the verdict the claim path needs: only the
  relationships the map declares `silent` (default: `equivalent`) convert without a warning.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple, Sequence

from .codes import key

# Relationship names (FHIR R5 `concept-map-relationship`, shortened; docs/coding.md §Relationships)
EQUIVALENT = "equivalent"
NARROWER = "source-is-narrower"   # R5 source-is-narrower-than-target; R4 `wider`
BROADER = "source-is-broader"     # R5 source-is-broader-than-target; R4 `narrower`
RELATED = "related"               # R5 related-to; R4 relatedto / inexact
NOT_MAPPED = "not-mapped"         # R5 not-related-to / group.unmapped; R4 unmatched
RELATIONSHIPS = (EQUIVALENT, NARROWER, BROADER, RELATED, NOT_MAPPED)
INVERSE = {EQUIVALENT: EQUIVALENT, NARROWER: BROADER, BROADER: NARROWER, RELATED: RELATED, NOT_MAPPED: NOT_MAPPED}

# Kinds of a whole translation, beyond the relationships of its single match
AMBIGUOUS = "ambiguous"   # several targets
UNKNOWN = "unknown"       # the code is not in the map at all
NO_MAP = "no-map"         # no map between the two systems in this pack
SAME = "same-system"      # source and target system are the same: nothing to do

# Row tuple fields (ConceptMap rows)
S_CODE, S_NAME, T_CODE, T_NAME, REL, NOTE, DEPENDS, V_FROM, V_TO, LINE, FILE = range(11)
# Row tuple fields (item rows)
I_LOCAL, I_LOCAL_NAME, I_NATIONAL, I_NATIONAL_NAME, I_FIX, I_FROM, I_TO, I_NOTE, I_LINE, I_FILE = range(10)

DEPENDS_FACTS = {"gend": "text", "age": "number", "insutype": "text", "med_type": "text"}
DEPENDS_OPS = ("!=", ">=", "<=", "=", ">", "<")


@dataclass(frozen=True, slots=True)
class Loc:
    """Where something is written: file, line, column (1-based)."""

    file: str
    line: int
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class System:
    """A code system edition, e.g. icd10:clinical-2.0 (国临版2.0)."""

    id: str
    name: str
    sources: tuple[str, ...] = ()
    loc: Loc | None = None

    @property
    def family(self) -> str:
        return self.id.partition(":")[0]

    @property
    def edition(self) -> str:
        return self.id.partition(":")[2]


class MapCols(NamedTuple):
    """The rows of a mapping table, column by column (row i is item i of every column)."""

    source_code: tuple[str, ...]
    source_name: tuple[str, ...]
    target_code: tuple[str, ...]      # '' on not-mapped rows
    target_name: tuple[str, ...]
    relationship: tuple[str, ...]
    note: tuple[str, ...]
    depends_on: tuple[tuple, ...] | None   # None: no row has conditions
    valid_from: tuple[str | None, ...] | None   # None: no row has dates
    valid_to: tuple[str | None, ...] | None
    line: Sequence[int]                # a range when the rows sit on consecutive lines
    file: tuple[int, ...] | None       # index into ConceptMap.files; None: all from files[0]

    def row(self, i: int) -> tuple:
        """Row i as a tuple in S_CODE … FILE order."""
        return (self.source_code[i], self.source_name[i], self.target_code[i], self.target_name[i],
                self.relationship[i], self.note[i], self.depends_on[i] if self.depends_on else (),
                self.valid_from[i] if self.valid_from else None, self.valid_to[i] if self.valid_to else None,
                self.line[i], self.file[i] if self.file else 0)


@dataclass(frozen=True, slots=True)
class ConceptMap:
    """One mapping table source_system → target_system, merged along the pack chain."""

    id: str
    source_system: str
    target_system: str
    cols: MapCols
    forward: dict[str, int | tuple[int, ...]]   # key(source_code) → row number(s)
    reverse: dict[str, int | tuple[int, ...]]   # key(target_code) → row number(s); not-mapped rows left out
    files: tuple[str, ...]
    silent: tuple[str, ...] = (EQUIVALENT,)
    sources: tuple[str, ...] = ()
    confidence: str | None = None
    loc: Loc | None = None

    def __len__(self) -> int:
        return len(self.cols.source_code)

    def row(self, i: int) -> tuple:
        return self.cols.row(i)


@dataclass(frozen=True, slots=True)
class ItemMap:
    """Local → national item codes (medins_list_codg → med_list_codg) of a region and its institutions."""

    rows: tuple[tuple, ...]
    index: dict[tuple[str, str], tuple[int, ...]]   # (fixmedins_code or '', key(local)) → rows
    files: tuple[str, ...]
    sources: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.rows)


# ---------------------------------------------------------------- answers

class Match(NamedTuple):
    """One row of a map that answers a question, oriented from the asked code to the answer.

    A NamedTuple, not a frozen dataclass: built on the claim path, where a frozen dataclass's
    __init__ costs ~5 µs and a tuple's ~0.5 µs."""

    source_code: str
    source_name: str
    target_code: str
    target_name: str
    relationship: str
    note: str
    depends_on: tuple
    valid_from: str | None
    valid_to: str | None
    file: str
    line: int
    map_id: str
    reverse: bool = False      # found by reading the map backwards (target → source)
    unresolved: bool = False   # depends_on could not be checked (no facts given)

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"source_code": self.source_code, "source_name": self.source_name,
                             "target_code": self.target_code, "target_name": self.target_name,
                             "relationship": self.relationship, "note": self.note or None,
                             "location": self.location, "map": self.map_id}
        if self.reverse:
            d["reverse"] = True
        if self.depends_on:
            d["depends_on"] = format_depends(self.depends_on)
            d["depends_on_checked"] = not self.unresolved
        if self.valid_from or self.valid_to:
            d["valid"] = [self.valid_from, self.valid_to]
        return d


class Translation(NamedTuple):
    """The answer to 'what is CODE of SOURCE in TARGET': all matches plus a verdict."""

    code: str
    source_system: str
    target_system: str
    matches: tuple = ()
    known: bool = False
    map_id: str | None = None
    silent_kinds: tuple = (EQUIVALENT,)

    @property
    def targets(self) -> tuple[str, ...]:
        """The distinct target codes, in table order (never cut to one)."""
        ms = self.matches
        if len(ms) == 1:
            m = ms[0]
            return (m.target_code,) if m.relationship != NOT_MAPPED and m.target_code else ()
        seen: dict[str, None] = {}
        for m in ms:
            if m.relationship != NOT_MAPPED and m.target_code:
                seen.setdefault(m.target_code, None)
        return tuple(seen)

    @property
    def kind(self) -> str:
        if self.source_system == self.target_system:
            return SAME
        if self.map_id is None:
            return NO_MAP
        ms = self.matches
        if len(ms) == 1 and ms[0].relationship != NOT_MAPPED:
            return ms[0].relationship
        targets = self.targets
        if not targets:
            return NOT_MAPPED if self.known else UNKNOWN
        if len(targets) > 1:
            return AMBIGUOUS
        rels = {m.relationship for m in ms if m.relationship != NOT_MAPPED}
        return rels.pop() if len(rels) == 1 else AMBIGUOUS

    @property
    def silent(self) -> bool:
        """True when the claim path may use the target without a warning."""
        k = self.kind
        if k == SAME:
            return True
        return k in self.silent_kinds and not any(m.unresolved for m in self.matches)

    def codes_for_claim(self) -> tuple[str, ...]:
        """Codes a claim carries after conversion: the targets, else the code unchanged."""
        if self.source_system == self.target_system:
            return (self.code,)
        return self.targets or (self.code,)

    def warning(self) -> str | None:
        """None when the conversion is silent; otherwise what an analyst must know, in one line."""
        if self.silent:
            return None
        k, c, s, t = self.kind, self.code, self.source_system, self.target_system
        if k == NO_MAP:
            return f"{c}: no mapping from {s} to {t} in the pack; the code is kept unconverted"
        if k == UNKNOWN:
            return f"{c}: not in the {s} → {t} map; the code is kept unconverted"
        if k == NOT_MAPPED:
            notes = "; ".join(f"{m.note} ({m.location})" if m.note else m.location
                              for m in self.matches) or "no row in force"
            return f"{c}: the {s} → {t} map says it has no counterpart ({notes}); the code is kept unconverted"
        if k == AMBIGUOUS:
            opts = ", ".join(f"{m.target_code} {m.relationship} ({m.location})" for m in self.matches
                             if m.relationship != NOT_MAPPED)
            return f"{c}: {len(self.targets)} possible {t} codes: {opts}; all are kept"
        m = next(m for m in self.matches if m.relationship != NOT_MAPPED)
        why = {NARROWER: "the source code is narrower than its target (detail is lost)",
               BROADER: "the source code is broader than its target",
               RELATED: "the codes are related but not equivalent",
               EQUIVALENT: "equivalent"}.get(m.relationship, m.relationship)
        text = f"{c} → {m.target_code} ({m.relationship}: {why}"
        if m.note:
            text += f"; {m.note}"
        text += f"; {m.location})"
        if any(x.unresolved for x in self.matches):
            text += f"; applies only when {format_depends(m.depends_on)}, which was not checked"
        return text

    def to_dict(self) -> dict:
        return {"code": self.code, "from": self.source_system, "to": self.target_system, "kind": self.kind,
                "targets": list(self.targets), "silent": self.silent, "warning": self.warning(),
                "matches": [m.to_dict() for m in self.matches]}


@dataclass(frozen=True, slots=True)
class CodeConversion:
    """A claim's codes after conversion: what settlement uses, and the warnings it must show."""

    source_system: str
    target_system: str
    codes: tuple[str, ...]
    translations: tuple[Translation, ...] = ()

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(w for w in (t.warning() for t in self.translations) if w)


@dataclass(frozen=True, slots=True)
class ItemMapping:
    """The national code of a hospital's local item code, or None with the reason."""

    local_code: str
    fixmedins_code: str | None
    national_code: str | None
    reason: str
    national_name: str = ""
    local_name: str = ""
    scope: str | None = None      # 'institution' | 'region' | None (no row)
    file: str | None = None
    line: int = 0
    note: str = ""
    kind: str = "unknown"         # institution | region (mapped) | not-mapped | unknown | not-valid | no-map

    @property
    def ok(self) -> bool:
        return self.national_code is not None

    @property
    def location(self) -> str | None:
        return f"{self.file}:{self.line}" if self.file else None

    def to_dict(self) -> dict:
        return {"local_code": self.local_code, "fixmedins_code": self.fixmedins_code,
                "national_code": self.national_code, "national_name": self.national_name or None,
                "local_name": self.local_name or None, "scope": self.scope, "reason": self.reason,
                "location": self.location, "note": self.note or None, "kind": self.kind}


def format_depends(conds: Iterable[tuple[str, str, Any]]) -> str:
    return ";".join(f"{f}{op}{v}" for f, op, v in conds)


def _holds(cond: tuple[str, str, Any], facts: dict) -> bool | None:
    fact, op, value = cond
    have = facts.get(fact)
    if have is None:
        return None
    if DEPENDS_FACTS.get(fact) == "number":
        try:
            have = float(have)
        except (TypeError, ValueError):
            return None
    else:
        have = str(have)
    if op == "=":
        return have == value
    if op == "!=":
        return have != value
    if op == ">":
        return have > value
    if op == ">=":
        return have >= value
    if op == "<":
        return have < value
    return have <= value


# ---------------------------------------------------------------- the compiled whole

@dataclass(frozen=True, slots=True)
class Coding:
    """Everything a pack chain says about codes: systems, maps, item maps. Immutable, picklable."""

    systems: dict[str, System] = field(default_factory=dict)
    maps: dict[tuple[str, str], ConceptMap] = field(default_factory=dict)
    settlement: dict[str, str] = field(default_factory=dict)   # 'diagnoses'|'procedures' → system id
    items: ItemMap | None = None
    folders: tuple[str, ...] = ()                              # the coding folders merged, root first

    # ------------------------------------------------------------ systems
    def system_id(self, name: str, family: str | None = None) -> str | None:
        """'icd10:clinical-2.0' as is; 'clinical-2.0' with a family → 'icd10:clinical-2.0'.
        An edition without a family resolves when only one family declares it. None: unknown."""
        if ":" in name:
            return name if name in self.systems else None
        if family:
            cand = f"{family}:{name}"
            return cand if cand in self.systems else None
        found = [s for s in self.systems if s.partition(":")[2] == name]
        return found[0] if len(found) == 1 else None

    def find_map(self, source_system: str, target_system: str) -> tuple[ConceptMap | None, bool]:
        """The map to read and whether to read it backwards."""
        m = self.maps.get((source_system, target_system))
        if m is not None:
            return m, False
        m = self.maps.get((target_system, source_system))
        if m is not None:
            return m, True
        return None, False

    # ------------------------------------------------------------ translate
    def translate(self, code: str, source_system: str, target_system: str, *, date: str | None = None,
                  facts: dict | None = None) -> Translation:
        """Every match of `code` from one system to another (reverse when only the opposite map exists).

        `date` (YYYY-MM-DD) drops rows not valid on that day; `facts` ({'gend': '1', 'age': 70})
        drops rows whose `depends_on` fails. Without facts, conditional rows stay, marked
        unresolved, and the translation is not silent.
        """
        if source_system == target_system:
            return Translation(code, source_system, target_system, known=True, map_id=None)
        cmap, backwards = self.find_map(source_system, target_system)
        if cmap is None:
            return Translation(code, source_system, target_system)
        k = key(code)
        idx = (cmap.reverse if backwards else cmap.forward).get(k)
        if isinstance(idx, int):
            idx = (idx,)
        if not idx:
            return Translation(code, source_system, target_system, known=False, map_id=cmap.id,
                               silent_kinds=cmap.silent)
        matches = []
        c = cmap.cols
        files = cmap.files
        for i in idx:
            vf = c.valid_from[i] if c.valid_from else None
            vt = c.valid_to[i] if c.valid_to else None
            if date is not None and ((vf and date < vf) or (vt and date > vt)):
                continue
            dep = c.depends_on[i] if c.depends_on else ()
            unresolved = False
            if dep:
                if facts is None:
                    unresolved = True
                else:
                    verdicts = [_holds(x, facts) for x in dep]
                    if any(v is False for v in verdicts):
                        continue
                    unresolved = any(v is None for v in verdicts)
            rel = c.relationship[i]
            f = files[c.file[i]] if c.file else files[0]
            if backwards:
                if rel == NOT_MAPPED:
                    continue
                matches.append(Match(c.target_code[i], c.target_name[i], c.source_code[i], c.source_name[i],
                                     INVERSE[rel], c.note[i], dep, vf, vt, f, c.line[i], cmap.id, True, unresolved))
            else:
                matches.append(Match(c.source_code[i], c.source_name[i], c.target_code[i], c.target_name[i], rel,
                                     c.note[i], dep, vf, vt, f, c.line[i], cmap.id, False, unresolved))
        return Translation(code, source_system, target_system, tuple(matches), known=True, map_id=cmap.id,
                           silent_kinds=cmap.silent)

    def convert(self, codes: Iterable[str], source_system: str, target_system: str, *, date: str | None = None,
                facts: dict | None = None) -> CodeConversion:
        """Convert a list of codes (a claim's diagnoses): each becomes its targets (all of them when
        ambiguous) or stays as it is when it has none; duplicates are dropped, order kept."""
        out: dict[str, None] = {}
        trs = []
        for c in codes:
            t = self.translate(c, source_system, target_system, date=date, facts=facts)
            trs.append(t)
            for x in t.codes_for_claim():
                out.setdefault(x, None)
        return CodeConversion(source_system, target_system, tuple(out), tuple(trs))

    def convert_diagnoses(self, codes: Iterable[str], edition: str, *, date: str | None = None,
                          facts: dict | None = None) -> CodeConversion:
        """A claim's diseinfo codes written in `edition` ('clinical-2.0' or 'icd10:clinical-2.0') →
        the edition the pack settles in (`settlement.diagnoses`)."""
        return self._convert_to_settlement("diagnoses", "icd10", codes, edition, date, facts)

    def convert_procedures(self, codes: Iterable[str], edition: str, *, date: str | None = None,
                           facts: dict | None = None) -> CodeConversion:
        return self._convert_to_settlement("procedures", "icd9cm3", codes, edition, date, facts)

    def _convert_to_settlement(self, what: str, family: str, codes: Iterable[str], edition: str,
                               date: str | None, facts: dict | None) -> CodeConversion:
        codes = list(codes)
        src = edition if ":" in edition else f"{family}:{edition}"
        target = self.settlement.get(what)
        if target is None:  # the pack names no settlement edition: nothing to convert to
            return CodeConversion(src, src, tuple(dict.fromkeys(codes)), ())
        return self.convert(codes, src, target, date=date, facts=facts)

    # ------------------------------------------------------------ items
    def map_item(self, local_code: str, fixmedins_code: str | None = None, *, date: str | None = None) -> ItemMapping:
        """The national code (med_list_codg) of a hospital's code (medins_list_codg).

        The institution's own table (rows with its fixmedins_code) wins over the region's; a row
        with an empty national code says "deliberately not mapped" and is an answer too.
        """
        im = self.items
        if im is None or not im.rows:
            return ItemMapping(local_code, fixmedins_code, None, "the pack has no local → national item map",
                               kind="no-map")
        k = key(local_code)
        scopes = ([("institution", fixmedins_code)] if fixmedins_code else []) + [("region", "")]
        out_of_date: list[str] = []
        for scope, fix in scopes:
            idx = im.index.get((fix, k))
            if not idx:
                continue
            for i in idx:
                r = im.rows[i]
                if date is not None and ((r[I_FROM] and date < r[I_FROM]) or (r[I_TO] and date > r[I_TO])):
                    continue
                loc = f"{im.files[r[I_FILE]]}:{r[I_LINE]}"
                who = f"institution {fix}" if scope == "institution" else "the region"
                if not r[I_NATIONAL]:
                    why = f"the item map of {who} marks {local_code} as not mapped ({loc})"
                    if r[I_NOTE]:
                        why += f": {r[I_NOTE]}"
                    return ItemMapping(local_code, fixmedins_code, None, why, "", r[I_LOCAL_NAME], scope,
                                       im.files[r[I_FILE]], r[I_LINE], r[I_NOTE], "not-mapped")
                return ItemMapping(local_code, fixmedins_code, r[I_NATIONAL],
                                   f"mapped by the item map of {who} ({loc})", r[I_NATIONAL_NAME],
                                   r[I_LOCAL_NAME], scope, im.files[r[I_FILE]], r[I_LINE], r[I_NOTE], scope)
            out_of_date.append(scope)
        inst = f" (nor for institution {fixmedins_code})" if fixmedins_code else ""
        if out_of_date:
            return ItemMapping(local_code, fixmedins_code, None,
                               f"local code {local_code} has item-map rows ({', '.join(out_of_date)}) but none is "
                               f"valid on {date}", kind="not-valid")
        return ItemMapping(local_code, fixmedins_code, None,
                           f"local code {local_code} is not in the region's item map{inst}")

    def summary(self) -> dict:
        return {"systems": sorted(self.systems), "maps": {f"{a} → {b}": len(m) for (a, b), m in self.maps.items()},
                "items": len(self.items) if self.items else 0, "settlement": dict(self.settlement),
                "folders": list(self.folders)}
