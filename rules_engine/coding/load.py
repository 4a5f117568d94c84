"""Load a pack's `coding/` folder and merge coding folders along a pack chain.

Two steps, as for the rest of a pack:

- `load_coding(pack_dir)` reads `coding/coding.yaml` (schema `schemas/coding.schema.json`) and
  the CSV tables it lists, and checks every row: code forms of the declared families,
  relationship names, a note on every narrower/broader row, `depends_on` conditions, dates,
  duplicate and conflicting rows, names that disagree for one code. Each problem is a
  `Problem` at file:line:col (col is the character column of the offending cell, so the caret
  display points at it). Nothing raises for bad input.
- `merge_chain(parts)` merges the parts of a chain (root first): systems and settlement
  editions by id (child wins), map rows by source code (a child's rows for a source code
  replace all of the parent's rows for it; `inherit: false` drops the parent's table), item
  rows by (institution, local code). Then it checks what only the chain can show — a system
  referenced but declared nowhere — and builds the indexes of the immutable `Coding`.

Speed matters (the national ICD-10 table, 35,587 rows, loads at every engine start): a table is
read with `csv.reader`, turned into columns (`MapCols`, one tuple per column) and screened
column-wise at C speed (`map`/`compress` over compiled regexes, `dict(zip(…))` for indexes);
the slower work (character columns, hints) happens only for rows that have a problem.
"""
from __future__ import annotations

import csv
import datetime as dt
import gc
import hashlib
import io
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from itertools import compress
from operator import eq, ne, not_
from pathlib import Path
from typing import Any, Iterable

from ..problems import Problem, did_you_mean
from ..packs.source import Document, csv_cell_col, load_parts, read_yaml
from ..validate.schema import validate_document
from . import codes as C
from .model import (BROADER, DEPENDS, DEPENDS_FACTS, EQUIVALENT, I_FILE, I_FIX, I_FROM, I_LINE, I_LOCAL, I_NATIONAL,
                    I_TO, LINE, NARROWER, NOT_MAPPED, REL, RELATED, RELATIONSHIPS, S_CODE, T_CODE, V_FROM, V_TO, Coding,
                    ConceptMap, ItemMap, Loc, MapCols, System)

CODING_DIR = "coding"
MANIFEST = "coding.yaml"
MAX_TABLE_BYTES = 256 * 1024 * 1024

MAP_REQUIRED = ("source_code", "target_code", "relationship")
MAP_OPTIONAL = ("source_name", "target_name", "note", "depends_on", "valid_from", "valid_to")
ITEM_REQUIRED = ("medins_list_codg", "med_list_codg")
ITEM_OPTIONAL = ("medins_list_name", "med_list_name", "fixmedins_code", "valid_from", "valid_to", "note")

# FHIR names an analyst may write instead of ours, and what they mean here (R4 names are
# stated from the *target's* point of view: R4 'narrower' = the target is narrower).
FHIR_ALIASES = {
    "equal": EQUIVALENT, "equivalent": EQUIVALENT,
    "wider": NARROWER, "subsumes": NARROWER, "source-is-narrower-than-target": NARROWER,
    "narrower": BROADER, "specializes": BROADER, "source-is-broader-than-target": BROADER,
    "relatedto": RELATED, "related-to": RELATED, "inexact": RELATED,
    "unmatched": NOT_MAPPED, "disjoint": NOT_MAPPED, "not-related-to": NOT_MAPPED, "unmapped": NOT_MAPPED,
}

_DEPENDS = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(!=|>=|<=|=|>|<)\s*([^;\s]+)\s*")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_FIX = re.compile(r"[A-Za-z0-9]{1,30}")
_INTERN: dict[str, str] = {r: r for r in RELATIONSHIPS}


def is_none(x: Any) -> bool:
    return x is None


@contextmanager
def _gc_paused():
    """Pause the cyclic garbage collector while tens of thousands of row tuples are built.

    Why: each allocation burst triggers collections that scan every live container again;
    on the 49,240 ICD rows that is ~40 % of the load time, and nothing built here is cyclic.
    The previous state is restored, also on error."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# ---------------------------------------------------------------- parts

@dataclass
class MapPart:
    id: str
    source_system: str
    target_system: str
    file: str                       # display path of the CSV
    cols: MapCols                   # the rows, column by column (file index column None: all this file)
    forward: dict[str, Any]         # key(source_code) → row number | tuple of row numbers
    reverse: dict[str, Any]         # key(target_code) → row number | tuple (not-mapped rows left out)
    silent: tuple[str, ...] = (EQUIVALENT,)
    inherit: bool = True
    sources: tuple[str, ...] = ()
    confidence: str | None = None
    loc: Loc | None = None


@dataclass
class ItemPart:
    file: str
    rows: list[tuple]               # item row tuples (model.I_LOCAL …), I_FILE = 0
    sources: tuple[str, ...] = ()
    loc: Loc | None = None


@dataclass
class CodingPart:
    """What one pack's coding folder says, before merging."""

    dir: str                        # display path of the coding folder
    manifest: str                   # display path of coding.yaml
    systems: dict[str, System] = field(default_factory=dict)
    maps: list[MapPart] = field(default_factory=list)
    items: list[ItemPart] = field(default_factory=list)
    settlement: dict[str, tuple[str, Loc]] = field(default_factory=dict)
    system_refs: list[tuple[str, Loc]] = field(default_factory=list)
    source_refs: list[tuple[str, Loc, str | None]] = field(default_factory=list)  # (id, where, source line)
    digest: str = ""


def _display(path: Path, base: Path | None) -> str:
    for b in ([base] if base is not None else []) + [Path.cwd()]:
        try:
            return str(path.resolve().relative_to(b.resolve()))
        except ValueError:
            continue
    return str(path)


def coding_digest(pack_dir: Path) -> str:
    """sha256 over every file of `pack_dir/coding` (relative path + bytes), without parsing —
    what a compiled-pack cache key needs. '' when the pack has no coding folder."""
    from ..packs.source import files_digest
    d = Path(pack_dir) / CODING_DIR
    if not d.is_dir():
        return ""
    return files_digest(d, [p for p in sorted(d.rglob("*")) if p.is_file() and not p.name.startswith(".")])


def load_coding(pack_dir: Path | str, base: Path | None = None, *,
                known_sources: Iterable[str] | None = None) -> tuple[CodingPart | None, list[Problem]]:
    """Read `pack_dir/coding/`. Returns (None, []) when the pack has no coding folder.

    `base` makes file names in problems relative (as the pack loader does); `known_sources`,
    when given, are the provenance ids the pack chain declares: a `source:` naming another is
    an error.
    """
    with _gc_paused():
        return _load_coding(pack_dir, base, known_sources)


def _load_coding(pack_dir: Path | str, base: Path | None,
                 known_sources: Iterable[str] | None) -> tuple[CodingPart | None, list[Problem]]:
    pack_dir = Path(pack_dir)
    cdir = pack_dir / CODING_DIR
    if not cdir.is_dir():
        return None, []
    problems: list[Problem] = []
    disp = _display(cdir, base)
    mpath = cdir / MANIFEST
    mdisp = str(Path(disp) / MANIFEST)
    digest = hashlib.sha256()
    if not mpath.is_file():
        problems.append(Problem("E-CODING-MANIFEST", f"the coding folder has no {MANIFEST}", file=disp,
                                hint="list the code systems and tables in coding/coding.yaml (docs/coding.md)"))
        return None, problems
    doc, ps = read_yaml(mpath, mdisp)
    problems += ps
    if doc is None:
        return None, problems
    digest.update(MANIFEST.encode() + b"\0" + doc.raw)
    if doc.data is None:
        doc.data = {}
    if not isinstance(doc.data, dict):
        problems.append(doc.problem("E-SCHEMA-TYPE", f"{MANIFEST} must be a mapping (systems, maps, items)", ()))
        return None, problems
    problems += validate_document(doc, "coding.schema.json")
    part = CodingPart(dir=disp, manifest=mdisp)
    known = set(known_sources) if known_sources is not None else None

    def loc(path: tuple, key: bool = False) -> Loc:
        line, col = doc.pos(path, key=key)
        return Loc(doc.file, line, col)

    def sources_of(value: Any, path: tuple) -> tuple[str, ...]:
        refs = (value,) if isinstance(value, str) else tuple(v for v in value if isinstance(v, str)) \
            if isinstance(value, list) else ()
        for i, r in enumerate(refs):
            p = path if isinstance(value, str) else path + (i,)
            where = loc(p)
            src = doc.lines[where.line - 1] if 0 < where.line <= len(doc.lines) else None
            part.source_refs.append((r, where, src))
        return refs

    if "source" in doc.data:
        sources_of(doc.data["source"], ("source",))

    # systems
    systems = doc.data.get("systems")
    if isinstance(systems, dict):
        for sid, spec in systems.items():
            if not _system_family_ok(sid, doc, ("systems", sid), problems, key=True):
                continue
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                continue  # the schema reported it
            refs = sources_of(spec.get("source", ()), ("systems", sid, "source"))
            part.systems[sid] = System(sid, spec["name"], refs, loc(("systems", sid), key=True))

    # settlement editions
    sett = doc.data.get("settlement")
    if isinstance(sett, dict):
        for what in ("diagnoses", "procedures"):
            sid = sett.get(what)
            if isinstance(sid, str) and _system_family_ok(sid, doc, ("settlement", what), problems):
                want = "icd10" if what == "diagnoses" else "icd9cm3"
                if C.family_of(sid) != want:
                    problems.append(doc.problem("E-CODING-SYSTEM", f"settlement.{what} must be an {want} system, "
                                                f"found '{sid}'", ("settlement", what)))
                    continue
                part.settlement[what] = (sid, loc(("settlement", what)))
                part.system_refs.append((sid, loc(("settlement", what))))

    listed: set[str] = set()
    # mapping tables
    maps = doc.data.get("maps")
    seen_pairs: dict[tuple[str, str], int] = {}
    if isinstance(maps, list):
        for i, spec in enumerate(maps):
            if not isinstance(spec, dict):
                continue
            fname, s, t = spec.get("file"), spec.get("source_system"), spec.get("target_system")
            if not (isinstance(fname, str) and isinstance(s, str) and isinstance(t, str)):
                continue
            ok = _system_family_ok(s, doc, ("maps", i, "source_system"), problems)
            ok = _system_family_ok(t, doc, ("maps", i, "target_system"), problems) and ok
            if ok and C.family_of(s) != C.family_of(t):
                problems.append(doc.problem("E-CODING-SYSTEM", f"a table maps within one family; '{s}' and '{t}' "
                                            "are different families", ("maps", i, "target_system")))
                ok = False
            if ok and s == t:
                problems.append(doc.problem("E-CODING-SYSTEM", f"source and target system are both '{s}'",
                                            ("maps", i, "target_system")))
                ok = False
            if not ok:
                continue
            part.system_refs += [(s, loc(("maps", i, "source_system"))), (t, loc(("maps", i, "target_system")))]
            if (s, t) in seen_pairs:
                problems.append(doc.problem("E-CODING-MAP-DUPLICATE", f"a second table from {s} to {t} (the first is "
                                            f"maps[{seen_pairs[(s, t)]}])", ("maps", i),
                                            hint="put all rows of one direction in one table"))
                continue
            seen_pairs[(s, t)] = i
            path = _table_path(cdir, fname, doc, ("maps", i, "file"), problems)
            if path is None:
                continue
            listed.add(str(path.relative_to(cdir)))
            mid = spec.get("id") if isinstance(spec.get("id"), str) else f"{s}->{t}"
            mp = _read_map(path, str(Path(disp) / fname), mid, s, t, problems, digest, fname)
            if mp is None:
                continue
            silent = spec.get("silent")
            if isinstance(silent, list) and all(x in RELATIONSHIPS for x in silent):
                mp.silent = tuple(silent)
            mp.inherit = spec.get("inherit", True) is not False
            mp.sources = sources_of(spec.get("source", ()), ("maps", i, "source"))
            mp.confidence = spec.get("confidence") if isinstance(spec.get("confidence"), str) else None
            mp.loc = loc(("maps", i))
            part.maps.append(mp)

    # item maps
    items = doc.data.get("items")
    item_keys: dict[tuple[str, str], str] = {}
    if isinstance(items, list):
        for i, spec in enumerate(items):
            if not isinstance(spec, dict) or not isinstance(spec.get("file"), str):
                continue
            path = _table_path(cdir, spec["file"], doc, ("items", i, "file"), problems)
            if path is None:
                continue
            listed.add(str(path.relative_to(cdir)))
            fix = spec.get("fixmedins_code") if isinstance(spec.get("fixmedins_code"), str) else ""
            ip = _read_items(path, str(Path(disp) / spec["file"]), fix, problems, digest, spec["file"])
            if ip is None:
                continue
            ip.sources = sources_of(spec.get("source", ()), ("items", i, "source"))
            ip.loc = loc(("items", i))
            for r in ip.rows:  # one pack's item files must not disagree with each other
                k = (r[I_FIX], r[I_LOCAL].upper())
                other = item_keys.get(k)
                if other is not None:
                    problems.append(Problem(
                        "E-CODING-CONFLICT", f"{r[I_LOCAL]}{' of institution ' + r[I_FIX] if r[I_FIX] else ''} is "
                        f"also mapped by {other}", file=ip.file, line=r[I_LINE], col=1,
                        hint="one pack lists each local code (per institution) in one item file"))
                else:
                    item_keys[k] = f"{ip.file}:{r[I_LINE]}"
            part.items.append(ip)

    for p in sorted(cdir.rglob("*.csv")):
        rel = str(p.relative_to(cdir))
        if rel not in listed and not any(x.startswith(".") for x in p.relative_to(cdir).parts):
            problems.append(Problem("W-CODING-UNUSED", f"'{rel}' is not listed in {MANIFEST}",
                                    file=str(Path(disp) / rel), severity="warning",
                                    hint="list it under 'maps' or 'items', or remove it"))
    part.digest = digest.hexdigest()
    if known is not None:
        problems += _check_sources([part], known)
    return part, problems


def _check_sources(parts: Iterable[CodingPart], known: set[str]) -> list[Problem]:
    out = []
    for part in parts:
        for r, where, src in part.source_refs:
            if r not in known:
                out.append(Problem("E-CODING-SOURCE", f"source '{r}' is not a provenance id of the pack chain",
                                   file=where.file, line=where.line, col=where.col, source_line=src,
                                   hint=did_you_mean(r, known) or "add it to pack.yaml provenance"))
    return out


def _system_family_ok(sid: str, doc: Document, path: tuple, problems: list[Problem], key: bool = False) -> bool:
    fam, _, edition = sid.partition(":")
    if C.family_of(sid) is None:
        problems.append(doc.problem("E-CODING-SYSTEM", f"unknown code system family '{fam}' in '{sid}'", path, key=key,
                                    hint=(did_you_mean(fam, C.FAMILIES) or "") + f" families: {', '.join(C.FAMILIES)}"))
        return False
    return bool(edition)


def _table_path(cdir: Path, fname: str, doc: Document, path: tuple, problems: list[Problem]) -> Path | None:
    p = cdir / fname
    try:
        inside = p.resolve().is_relative_to(cdir.resolve())
    except OSError:
        inside = False
    if not inside:
        problems.append(doc.problem("E-CODING-FILE", f"'{fname}' lies outside the coding folder", path))
        return None
    if not p.is_file():
        problems.append(doc.problem("E-CODING-FILE", f"table '{fname}' does not exist", path,
                                    hint="the path is relative to the coding folder"))
        return None
    return p


# ---------------------------------------------------------------- CSV tables

class _Csv:
    """A CSV file being read: the rows, and located problems for its cells (columns computed lazily)."""

    def __init__(self, raw: bytes, display: str, problems: list[Problem]):
        self.display = display
        self.problems = problems
        self.text: str | None = None
        self._lines: list[str] | None = None
        try:
            self.text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            problems.append(Problem("E-FILE-ENCODING", f"file is not UTF-8 text ({e.reason} at byte {e.start})",
                                    file=display, hint="save the CSV as UTF-8 (Excel: 'CSV UTF-8')"))

    def line_text(self, line: int) -> str | None:
        if self._lines is None:
            self._lines = (self.text or "").splitlines()
        return self._lines[line - 1] if 0 < line <= len(self._lines) else None

    def problem(self, code: str, message: str, line: int, cell: int | None, *, severity: str = "error",
                hint: str | None = None, column: str | None = None) -> None:
        src = self.line_text(line)
        col = csv_cell_col(src, cell) if (src is not None and cell is not None) else 1
        self.problems.append(Problem(code, message, file=self.display, line=line, col=col, severity=severity,
                                     hint=hint, path=column, source_line=src))


def _read_header(f: _Csv, required: tuple[str, ...], optional: tuple[str, ...]) -> tuple[Any, dict[str, int]] | None:
    if f.text is None:
        return None
    reader = csv.reader(io.StringIO(f.text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        f.problems.append(Problem("E-CSV-EMPTY", "the CSV file is empty; it needs a header row", file=f.display))
        return None
    except csv.Error as e:
        f.problem("E-CSV-SYNTAX", str(e), 1, None)
        return None
    cols: dict[str, int] = {}
    ok = True
    allowed = required + optional
    for i, h in enumerate(header):
        if h in cols:
            f.problem("E-CSV-HEADER", f"column '{h}' appears twice in the header", 1, i)
            ok = False
        elif h not in allowed:
            hint = did_you_mean(h, allowed)
            f.problem("E-CODING-COLUMN", f"unknown column '{h}'", 1, i,
                      hint=(hint + " " if hint else "") + "columns: " + ", ".join(allowed))
            ok = False
        cols[h] = i
    for r in required:
        if r not in cols:
            f.problem("E-CODING-COLUMN", f"missing column '{r}'", 1, None,
                      hint="required columns: " + ", ".join(required))
            ok = False
    return (reader, cols) if ok else None


def _read_bytes(path: Path, display: str, problems: list[Problem]) -> bytes | None:
    try:
        size = path.stat().st_size
        if size > MAX_TABLE_BYTES:
            problems.append(Problem("E-CSV-LIMIT", f"file is {size:,} bytes; coding tables are limited to "
                                    f"{MAX_TABLE_BYTES:,}", file=display, line=1, col=1))
            return None
        return path.read_bytes()
    except OSError as e:
        problems.append(Problem("E-FILE-READ", f"cannot read file: {e.strerror}", file=display))
        return None


def _parse_depends(text: str, f: _Csv, line: int, cell: int) -> tuple | None:
    out = []
    for piece in text.split(";"):
        if not piece.strip():
            continue
        m = _DEPENDS.fullmatch(piece)
        if not m:
            f.problem("E-CODING-DEPENDS", f"'{piece.strip()}' is not a condition like gend=2 or age<18", line, cell,
                      column="depends_on", hint="conditions are fact, operator (= != < <= > >=), value; "
                                                "several are separated by ';'")
            return None
        fact, op, value = m.groups()
        kind = DEPENDS_FACTS.get(fact)
        if kind is None:
            f.problem("E-CODING-DEPENDS", f"unknown fact '{fact}' in depends_on", line, cell, column="depends_on",
                      hint=(did_you_mean(fact, DEPENDS_FACTS) or "") + " facts: " + ", ".join(DEPENDS_FACTS))
            return None
        if kind == "number":
            try:
                v: Any = float(value)
            except ValueError:
                f.problem("E-CODING-DEPENDS", f"{fact} is a number; found '{value}'", line, cell, column="depends_on")
                return None
        else:
            if op not in ("=", "!="):
                f.problem("E-CODING-DEPENDS", f"{fact} is text: compare it with = or !=, not {op}", line, cell,
                          column="depends_on")
                return None
            v = value
        out.append((fact, op, v))
    return tuple(out)


def _date_cell(v: str, f: _Csv, line: int, cell: int, column: str) -> str | None | bool:
    """The date text, None when empty, False when bad (reported)."""
    v = v.strip()
    if not v:
        return None
    if not _DATE.fullmatch(v):
        f.problem("E-CODING-DATE", f"{column} '{v}' is not a date YYYY-MM-DD", line, cell, column=column)
        return False
    try:
        dt.date.fromisoformat(v)
    except ValueError:
        f.problem("E-CODING-DATE", f"{column} '{v}' is not a real date", line, cell, column=column)
        return False
    return v


def _overlap(a: tuple, b: tuple, fi: int, ti: int) -> bool:
    return (a[fi] or "0000-00-00") <= (b[ti] or "9999-12-31") and (b[fi] or "0000-00-00") <= (a[ti] or "9999-12-31")


def _records(reader, text: str, width: int, f: _Csv) -> tuple[list[list[str]], list[int]]:
    """All records after the header with their line numbers; rows of the wrong width reported
    and left out. Fast path: when no record spans lines, record i sits on line i + 2."""
    records = list(reader)
    physical = text.count("\n") + (0 if text.endswith("\n") else 1)
    if physical == len(records) + 1:
        lines = list(range(2, len(records) + 2))
    else:  # a quoted cell holds a line break: read again, tracking lines
        rd = csv.reader(io.StringIO(text, newline=""))
        next(rd)
        records, lines = [], []
        for rec in rd:
            records.append(rec)
            lines.append(rd.line_num)
    if set(map(len, records)) != {width}:
        keep_r, keep_l = [], []
        for rec, line in zip(records, lines):
            if len(rec) == width:
                keep_r.append(rec)
                keep_l.append(line)
            elif rec and any(c.strip() for c in rec):
                f.problem("E-CSV-ROW", f"row has {len(rec)} cells, the header has {width}", line, None,
                          hint="a cell with a comma must be quoted")
        records, lines = keep_r, keep_l
    return records, lines


def build_index(keys: list[str]) -> dict[str, Any]:
    """key → row number, or a tuple of row numbers when the key has several rows.

    Built by dict(zip(…)) at C speed; only keys that repeat pay a Python loop. '' keys (rows
    without a code) are left out."""
    d: dict[str, Any] = dict(zip(keys, range(len(keys))))
    if len(d) != len(keys):
        multi: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            multi.setdefault(k, []).append(i)
        for k, v in multi.items():
            if len(v) > 1:
                d[k] = tuple(v)
    d.pop("", None)
    return d


def _open_table(path: Path, display: str, problems: list[Problem], digest, fname: str, required: tuple[str, ...],
                optional: tuple[str, ...]) -> tuple[Any, Any, dict[str, int]] | None:
    """A coding CSV read, added to the folder digest, its header checked: (file, row reader, columns)."""
    raw = _read_bytes(path, display, problems)
    if raw is None:
        return None
    digest.update(fname.encode() + b"\0" + raw)
    f = _Csv(raw, display, problems)
    head = _read_header(f, required, optional)
    if head is None:
        return None
    reader, cols = head
    return f, reader, cols


def _read_map(path: Path, display: str, mid: str, s: str, t: str, problems: list[Problem], digest,
              fname: str) -> MapPart | None:
    opened = _open_table(path, display, problems, digest, fname, MAP_REQUIRED, MAP_OPTIONAL)
    if opened is None:
        return None
    f, reader, cols = opened
    try:
        records, lines = _records(reader, f.text or "", len(cols), f)
    except csv.Error as e:
        f.problem("E-CSV-SYNTAX", str(e), 1, None, hint="a quote (\") inside a cell must be doubled")
        return None
    n = len(records)
    fam_s, fam_t = C.family_of(s), C.family_of(t)
    rx_s, rx_t = C._GRAMMARS[fam_s], C._GRAMMARS[fam_t]  # noqa: SLF001 - same package
    columns = list(zip(*records)) if records else [() for _ in cols]
    empty = ("",) * n

    def col(name: str) -> tuple:
        i = cols.get(name)
        return columns[i] if i is not None else empty

    sc, tc, rel_raw, note = col("source_code"), col("target_code"), col("relationship"), col("note")
    i_sc, i_tc, i_rel = cols["source_code"], cols["target_code"], cols["relationship"]
    bad: set[int] = set()
    every = range(n)

    for i in compress(every, map(not_, map(rx_s.fullmatch, sc))):  # C-speed screen; Python only for failures
        f.problem("E-CODING-CODE", f"source_code: {C.code_problem(fam_s, sc[i]) or 'malformed'}", lines[i], i_sc,
                  column="source_code")
        bad.add(i)
    rel = list(map(_INTERN.get, rel_raw))
    kinds = set(rel)
    if None in kinds:
        for i in compress(every, map(is_none, rel)):
            r0 = rel_raw[i]
            alias = FHIR_ALIASES.get(r0.strip().lower())
            f.problem("E-CODING-RELATIONSHIP", f"unknown relationship '{r0}'", lines[i], i_rel, column="relationship",
                      hint=(f"in FHIR '{r0.strip()}' means '{alias}' here; " if alias and alias != r0 else
                            (did_you_mean(r0, RELATIONSHIPS) or "") + " ")
                      + "relationships: " + ", ".join(RELATIONSHIPS))
            bad.add(i)
    t_bad = set(compress(every, map(not_, map(rx_t.fullmatch, tc))))
    if NOT_MAPPED in kinds:
        t_bad.update(compress(every, map(partial(eq, NOT_MAPPED), rel)))
    for i in sorted(t_bad):
        r = rel[i]
        if r is None:
            continue
        if r == NOT_MAPPED:
            if tc[i].strip():
                f.problem("E-CODING-TARGET", f"a not-mapped row has a target code '{tc[i]}'", lines[i], i_tc,
                          column="target_code", hint="leave target_code empty, or give the relationship it has")
                bad.add(i)
        else:
            empty_t = not tc[i].strip()
            msg = "empty: a mapped row needs a target code" if empty_t else C.code_problem(fam_t, tc[i])
            f.problem("E-CODING-CODE", f"target_code: {msg or 'malformed'}", lines[i], i_tc, column="target_code",
                      hint="write relationship not-mapped for a code without a counterpart" if empty_t else None)
            bad.add(i)
    if kinds - {EQUIVALENT}:
        no_note = set(compress(every, map(not_, map(str.strip, note))))
        for i in sorted(no_note.intersection(compress(every, map(partial(ne, EQUIVALENT), rel)))):
            r = rel[i]
            if r is None:
                continue
            if r in (NARROWER, BROADER):
                f.problem("E-CODING-NOTE", f"a {r} row needs a note saying what is lost or gained", lines[i], i_rel,
                          column="note", hint="FHIR: for narrower/broader maps the comment SHALL say how")
                bad.add(i)
            else:
                f.problem("W-CODING-NOTE", f"a {r} row without a note", lines[i], i_rel, column="note",
                          severity="warning", hint="say how the codes relate, or why there is no counterpart")
    deps: list | None = None
    vfs: list | None = None
    vts: list | None = None
    i_dep, i_from, i_to = cols.get("depends_on"), cols.get("valid_from"), cols.get("valid_to")
    if i_dep is not None and any(columns[i_dep]):
        deps = [()] * n
        for i, v in enumerate(columns[i_dep]):
            if v.strip():
                d = _parse_depends(v, f, lines[i], i_dep)
                if d is None:
                    bad.add(i)
                else:
                    deps[i] = d
    for ci, name in ((i_from, "valid_from"), (i_to, "valid_to")):
        if ci is None or not any(columns[ci]):
            continue
        out: list = [None] * n
        for i, v in enumerate(columns[ci]):
            if v.strip():
                d = _date_cell(v, f, lines[i], ci, name)
                if d is False:
                    bad.add(i)
                else:
                    out[i] = d
        if name == "valid_from":
            vfs = out
        else:
            vts = out
    if vfs is not None and vts is not None:
        for i in range(n):
            if vfs[i] and vts[i] and vts[i] < vfs[i]:
                f.problem("E-CODING-DATE", f"valid_to {vts[i]} is before valid_from {vfs[i]}", lines[i],
                          cols["valid_to"], column="valid_to")
                bad.add(i)
    sn, tn = col("source_name"), col("target_name")
    line_col: Any = range(2, n + 2) if lines and lines[-1] == n + 1 else tuple(lines)
    if bad:
        keep = [i for i in range(n) if i not in bad]

        def pick(c):
            return None if c is None else tuple(c[i] for i in keep)
        sc, sn, tc, tn, rel, note, deps, vfs, vts, line_col = (pick(c) for c in (sc, sn, tc, tn, rel, note, deps, vfs,
                                                                                 vts, line_col))
    skeys = list(map(str.upper, sc))
    tkeys = list(map(str.upper, tc))
    if NOT_MAPPED in kinds:
        tkeys = [k if r != NOT_MAPPED else "" for k, r in zip(tkeys, rel)]
    # codes already written upper-case share one string with their key (less memory, smaller pickle)
    mc = MapCols(tuple(map(_same, sc, skeys)), tuple(sn), tuple(map(_same, tc, tkeys)), tuple(tn), tuple(rel),
                 tuple(note), None if deps is None else tuple(deps), None if vfs is None else tuple(vfs),
                 None if vts is None else tuple(vts), line_col, None)
    forward = build_index(skeys)
    mp = MapPart(mid, s, t, display, mc, forward, build_index(tkeys))
    if len(forward) != len(skeys):
        _check_map_rows(mc, forward, f, cols)
    if "source_name" in cols:
        _check_names(skeys, mc.source_name, mc.source_code, mc.line, "source", f, cols)
    if "target_name" in cols:
        _check_names(tkeys, mc.target_name, mc.target_code, mc.line, "target", f, cols)
    return mp


def _same(written: str, upper: str) -> str:
    return upper if written == upper else written


def _reverse_keys(mc: MapCols) -> list[str]:
    return [t.upper() if r != NOT_MAPPED else "" for t, r in zip(mc.target_code, mc.relationship)]


def _check_map_rows(mc: MapCols, forward: dict[str, Any], f: _Csv, cols: dict[str, int]) -> None:
    """Duplicate and conflicting rows among the rows of one source code."""
    i_rel, i_tc = cols["relationship"], cols["target_code"]
    for idx in forward.values():
        if isinstance(idx, int):
            continue
        for a_pos, ai in enumerate(idx):
            a = mc.row(ai)
            for bi in idx[a_pos + 1:]:
                b = mc.row(bi)
                if a[DEPENDS] != b[DEPENDS] or not _overlap(a, b, V_FROM, V_TO):
                    continue
                line = b[LINE]
                if a[T_CODE].upper() == b[T_CODE].upper():
                    if a[:LINE] == b[:LINE]:
                        f.problem("E-CODING-DUPLICATE", f"row repeats line {a[LINE]} ({a[S_CODE]} → "
                                  f"{a[T_CODE] or '—'})", line, 0, hint="remove one of them")
                    else:
                        f.problem("E-CODING-CONFLICT", f"{a[S_CODE]} → {a[T_CODE] or '—'} is also on line {a[LINE]} "
                                  "with a different relationship, name or note", line, i_tc, column="target_code",
                                  hint="keep one row per source and target (or give them different depends_on / dates)")
                elif a[REL] == NOT_MAPPED or b[REL] == NOT_MAPPED:
                    f.problem("E-CODING-CONFLICT", f"{a[S_CODE]} is marked not-mapped and mapped (line {a[LINE]})",
                              line, i_rel, column="relationship")
                elif a[REL] == EQUIVALENT and b[REL] == EQUIVALENT:
                    f.problem("E-CODING-CONFLICT", f"{a[S_CODE]} is declared equivalent to {a[T_CODE]} (line "
                              f"{a[LINE]}) and to {b[T_CODE]}", line, i_rel, column="relationship",
                              hint="a code is equivalent to one target; the others are related, narrower or broader")


def _check_names(keys: list[str], names: tuple, codes: tuple, lines: Any, what: str, f: _Csv,
                 cols: dict[str, int]) -> None:
    """One code, one name (a warning: published tables do this at times)."""
    if len(set(zip(keys, names))) == len(set(keys)):
        return  # every code has one name: the fast, usual case
    seen_names: dict[str, tuple[str, int]] = {}
    for k, n, c, line in zip(keys, names, codes, lines):
        if not n or not k:
            continue
        seen = seen_names.get(k)
        if seen is None:
            seen_names[k] = (n, line)
        elif seen[0] != n:
            f.problem("W-CODING-NAME", f"{what} code {c} is named '{n}' here and '{seen[0]}' on line {seen[1]}",
                      line, cols.get(f"{what}_name"), severity="warning", column=f"{what}_name")


def _read_items(path: Path, display: str, fix_default: str, problems: list[Problem], digest,
                fname: str) -> ItemPart | None:
    opened = _open_table(path, display, problems, digest, fname, ITEM_REQUIRED, ITEM_OPTIONAL)
    if opened is None:
        return None
    f, reader, cols = opened
    i_l, i_n = cols["medins_list_codg"], cols["med_list_codg"]
    i_ln, i_nn, i_fix = cols.get("medins_list_name"), cols.get("med_list_name"), cols.get("fixmedins_code")
    i_from, i_to, i_note = cols.get("valid_from"), cols.get("valid_to"), cols.get("note")
    width = len(cols)
    rows: list[tuple] = []
    keys: dict[tuple[str, str], list[int]] = {}
    try:
        for rec in reader:
            line = reader.line_num
            if len(rec) != width:
                if not rec or all(not c.strip() for c in rec):
                    continue
                f.problem("E-CSV-ROW", f"row has {len(rec)} cells, the header has {width}", line, None,
                          hint="a cell with a comma must be quoted")
                continue
            local, nat = rec[i_l], rec[i_n]
            bad = False
            if not C.LOCAL_ITEM.fullmatch(local):
                f.problem("E-CODING-CODE", f"medins_list_codg {local!r} is not a code (1–150 characters, no spaces)",
                          line, i_l, column="medins_list_codg")
                bad = True
            note = rec[i_note] if i_note is not None else ""
            if nat and not C.NATIONAL_ITEM.fullmatch(nat):
                f.problem("E-CODING-CODE", f"med_list_codg {nat!r} is not a national code (letters and digits)",
                          line, i_n, column="med_list_codg")
                bad = True
            elif not nat and not note.strip():
                f.problem("W-CODING-NOTE", f"{local} has no national code and no note saying why", line, i_n,
                          severity="warning", column="med_list_codg")
            fix = rec[i_fix].strip() if i_fix is not None else ""
            if fix and fix_default and fix != fix_default:
                f.problem("E-CODING-INSTITUTION", f"fixmedins_code '{fix}' contradicts the file's '{fix_default}' "
                          "(coding.yaml)", line, i_fix, column="fixmedins_code")
                bad = True
            fix = fix or fix_default
            if fix and not _FIX.fullmatch(fix):
                f.problem("E-CODING-INSTITUTION", f"fixmedins_code '{fix}' is not an institution code", line, i_fix,
                          column="fixmedins_code")
                bad = True
            vf = _date_cell(rec[i_from], f, line, i_from, "valid_from") if i_from is not None else None
            vt = _date_cell(rec[i_to], f, line, i_to, "valid_to") if i_to is not None else None
            if vf is False or vt is False:
                bad = True
            elif vf and vt and vt < vf:
                f.problem("E-CODING-DATE", f"valid_to {vt} is before valid_from {vf}", line, i_to, column="valid_to")
                bad = True
            if bad:
                continue
            row = (local, rec[i_ln] if i_ln is not None else "", nat, rec[i_nn] if i_nn is not None else "",
                   fix, vf, vt, note, line, 0)
            k = (fix, local.upper())
            for oi in keys.get(k, ()):
                o = rows[oi]
                if _overlap(o, row, I_FROM, I_TO):
                    if o[I_NATIONAL] == nat:
                        f.problem("E-CODING-DUPLICATE", f"{local} repeats line {o[I_LINE]}", line, i_l,
                                  hint="remove one of them")
                    else:
                        f.problem("E-CODING-CONFLICT", f"{local} maps to '{nat or '—'}' here and to "
                                  f"'{o[I_NATIONAL] or '—'}' on line {o[I_LINE]}", line, i_n, column="med_list_codg",
                                  hint="one national code per local code (per institution); give them different dates")
                    bad = True
                    break
            if bad:
                continue
            keys.setdefault(k, []).append(len(rows))
            rows.append(row)
    except csv.Error as e:
        f.problem("E-CSV-SYNTAX", str(e), reader.line_num, None)
    return ItemPart(display, rows)


# ---------------------------------------------------------------- merge

def merge_chain(parts: Iterable[CodingPart | None], *,
                known_sources: Iterable[str] | None = None) -> tuple[Coding, list[Problem]]:
    """Merge coding parts along a pack chain (root first) into one immutable `Coding`.

    `known_sources`, when given, are the provenance ids the chain declares: every `source:` of
    every part must be one of them (parts loaded without `known_sources` are checked here)."""
    parts = [p for p in parts if p is not None]
    with _gc_paused():
        coding, problems = _merge_chain(parts)
    if known_sources is not None:
        problems += _check_sources(parts, set(known_sources))
    return coding, problems


def _merge_chain(parts: Iterable[CodingPart | None]) -> tuple[Coding, list[Problem]]:
    parts = [p for p in parts if p is not None]
    problems: list[Problem] = []
    systems: dict[str, System] = {}
    settlement: dict[str, str] = {}
    stacks: dict[tuple[str, str], list[MapPart]] = {}   # the tables of each direction, root first
    item_files: list[str] = []
    item_rows: dict[tuple[str, str], list[tuple]] = {}
    item_sources: list[str] = []
    for part in parts:
        systems.update(part.systems)
    for part in parts:
        for sid, where in part.system_refs:
            if sid not in systems:
                problems.append(Problem("E-CODING-SYSTEM", f"code system '{sid}' is declared by no coding.yaml of the "
                                        "pack chain", file=where.file, line=where.line, col=where.col,
                                        hint=(did_you_mean(sid, systems) or "") + " declare it under 'systems'"))
        for what, (sid, _) in part.settlement.items():
            settlement[what] = sid
        for mp in part.maps:
            pair = (mp.source_system, mp.target_system)
            if mp.inherit and pair in stacks:
                stacks[pair].append(mp)
            else:
                stacks[pair] = [mp]
        for ip in part.items:
            fi = len(item_files)
            item_files.append(ip.file)
            item_sources.extend(ip.sources)
            seen: set[tuple[str, str]] = set()
            for r in ip.rows:
                k = (r[I_FIX], r[I_LOCAL].upper())
                r = r[:I_FILE] + (fi,)
                if k not in seen:
                    seen.add(k)
                    item_rows[k] = [r]  # replaces what a parent (or an earlier file) said
                else:
                    item_rows[k].append(r)
    maps: dict[tuple[str, str], ConceptMap] = {}
    for pair, stack in stacks.items():
        last = stack[-1]
        if len(stack) == 1:
            mc, forward, reverse = last.cols, last.forward, last.reverse
        else:
            mc = _concat(stack)
            forward = build_index(list(map(str.upper, mc.source_code)))
            reverse = build_index(_reverse_keys(mc))
        maps[pair] = ConceptMap(last.id, pair[0], pair[1], mc, forward, reverse, tuple(mp.file for mp in stack),
                                last.silent, last.sources, last.confidence, last.loc)
    items = None
    if item_rows:
        rows_i: list[tuple] = []
        index: dict[tuple[str, str], tuple[int, ...]] = {}
        for k, rs in item_rows.items():
            start = len(rows_i)
            rows_i.extend(rs)
            index[k] = tuple(range(start, start + len(rs)))
        items = ItemMap(tuple(rows_i), index, tuple(item_files), tuple(dict.fromkeys(item_sources)))
    return Coding(systems, maps, settlement, items, tuple(p.dir for p in parts)), problems


def _concat(stack: list[MapPart]) -> MapCols:
    """The rows of a stack of tables (root first): each table's rows replace the rows before it
    that have the same source code."""
    kept: list[tuple[MapCols, list[int], int]] = []   # (columns, row numbers kept, file index)
    for fi, mp in enumerate(stack):
        replaced = mp.forward.keys()
        kept = [(c, [i for i in idx if c.source_code[i].upper() not in replaced], f) for c, idx, f in kept]
        kept.append((mp.cols, list(range(len(mp.cols.source_code))), fi))
    out: list[list] = [[] for _ in range(11)]
    any_dep = any(c.depends_on for c, _, _ in kept)
    any_from = any(c.valid_from for c, _, _ in kept)
    any_to = any(c.valid_to for c, _, _ in kept)
    for c, idx, fi in kept:
        for j, name in enumerate(MapCols._fields[:6]):
            col = getattr(c, name)
            out[j].extend(col[i] for i in idx)
        out[6].extend((c.depends_on[i] if c.depends_on else ()) for i in idx)
        out[7].extend((c.valid_from[i] if c.valid_from else None) for i in idx)
        out[8].extend((c.valid_to[i] if c.valid_to else None) for i in idx)
        out[9].extend(c.line[i] for i in idx)
        out[10].extend([fi] * len(idx))
    return MapCols(*(tuple(x) for x in out[:6]), tuple(out[6]) if any_dep else None,
                   tuple(out[7]) if any_from else None, tuple(out[8]) if any_to else None, tuple(out[9]),
                   tuple(out[10]))


def load_chain(pack_dirs: Iterable[Path | str], base: Path | None = None, *,
               known_sources: Iterable[str] | None = None) -> tuple[Coding, list[Problem]]:
    """`load_coding` for each pack folder of a chain (root first), then `merge_chain`."""
    ks = list(known_sources) if known_sources is not None else None
    parts, problems = load_parts(pack_dirs, lambda d: load_coding(d, base, known_sources=ks))
    coding, ps = merge_chain(parts)
    return coding, problems + ps


__all__ = ["CodingPart", "MapPart", "ItemPart", "load_coding", "merge_chain", "load_chain", "coding_digest",
           "build_index", "FHIR_ALIASES"]
