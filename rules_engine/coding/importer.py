"""Import a published edition-mapping table (国临版 → 医保版) into a pack's coding table.

The published tables give, per clinical code, one insurance code and the two names — no
statement of how good the match is. The importer derives each row's relationship from what
the row itself shows, by fixed rules (docs/coding.md §How relationships are derived), and says
on the row which rule fired:

  R1 same code, same name                                   → equivalent
  R2 same code, names differ in punctuation form / spacing  → equivalent, note
  R3 same code, names differ only by punctuation marks      → equivalent, note
  R4 same code, different wording                           → related, note (renamed; the row
                                                               does not show whether the meaning moved)
  R5 different code, same name (R1–R3 level)                → equivalent, note (what changed in the code)
  R6 different name, target is an ancestor of the source    → source-is-narrower, note
     (clinical x-extension → its main code; detailed code → its category 'xx.x00')
  R7 different name, source is an ancestor of the target    → source-is-broader, note
  R8 different code, different name, neither above          → related, note
  R9 no target code                                         → not-mapped, note

Messy input is never dropped silently (issue 8): surrounding spaces are removed from codes and
names; an ICD-10 dagger/asterisk pair that lost its '+' or '*' is restored (the only repairs,
each noted on the row and listed in the report); a row whose code is still malformed, or which
repeats a source code, is rejected with its line and reason. The output is deterministic —
same input bytes, same output bytes — so a test can rebuild the shipped tables and compare.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import codes as C
from .model import BROADER, EQUIVALENT, NARROWER, NOT_MAPPED, RELATED, RELATIONSHIPS

OUT_COLUMNS = ("source_code", "source_name", "target_code", "target_name", "relationship", "note")

# Known source layouts: output column → source header
LAYOUTS = {
    "reference": {"source_code": "guolin_code", "source_name": "guolin_name",
                  "target_code": "yibao_code", "target_name": "yibao_name"},
    "icd10-original": {"source_code": "国临版编码", "source_name": "国临版名称",
                       "target_code": "医保版2.0编码", "target_name": "医保版2.0名称"},
    "icd9-original": {"source_code": "国临3.0手术代码", "source_name": "国临3.0手术名称",
                      "target_code": "医保2.0手术代码", "target_name": "医保2.0手术名称"},
}

RULES = {
    "R1": ("same code, same name", EQUIVALENT),
    "R2": ("same code, names differ in punctuation form or spacing", EQUIVALENT),
    "R3": ("same code, names differ only by punctuation marks", EQUIVALENT),
    "R4": ("same code, different wording", RELATED),
    "R5": ("different code, same name", EQUIVALENT),
    "R6": ("target is an ancestor of the source (extension or detailed code folded up)", NARROWER),
    "R7": ("source is an ancestor of the target", BROADER),
    "R8": ("different code and different name", RELATED),
    "R9": ("no target code", NOT_MAPPED),
}

_M10 = r"[A-Z][0-9]{2}\.[0-9X][0-9]{2}(?:X[0-9]{3})?"
_MISSING_PLUS = re.compile(rf"({_M10})([A-Z][0-9]{{2}}(?:\.[0-9]{{1,3}})?)\*?", re.IGNORECASE)
_MISSING_STAR = re.compile(rf"({_M10}\+[A-Z][0-9]{{2}}(?:\.[0-9]{{1,3}})?)", re.IGNORECASE)


class ImportError_(ValueError):
    """The source file cannot be imported at all (unreadable, unknown layout)."""


@dataclass
class Row:
    source_code: str
    source_name: str
    target_code: str
    target_name: str
    relationship: str
    note: str
    rule: str
    line: int


@dataclass
class Report:
    source: str
    family: str
    sha256: str
    rows_in: int = 0
    rows: list[Row] = field(default_factory=list)
    repairs: list[tuple[int, str, str, str]] = field(default_factory=list)   # line, column, before, after
    rejects: list[tuple[int, str]] = field(default_factory=list)             # line, reason
    names_trimmed: int = 0
    layout: str = ""

    @property
    def by_relationship(self) -> Counter:
        return Counter(r.relationship for r in self.rows)

    @property
    def by_rule(self) -> Counter:
        return Counter(r.rule for r in self.rows)


# ---------------------------------------------------------------- names

_PUNCT_FORM = str.maketrans({"—": "-", "–": "-", "－": "-", "〔": "[", "〕": "]", "【": "[", "】": "]",
                             "、": ",", "“": '"', "”": '"', "‘": "'", "’": "'", "·": "·"})


def _form(name: str) -> str:
    """Name with punctuation forms unified (full-width → half-width, dash variants) and spaces removed."""
    s = unicodedata.normalize("NFKC", name).translate(_PUNCT_FORM)
    return "".join(ch for ch in s if not ch.isspace())


def _bare(name: str) -> str:
    """Name without any punctuation mark (Unicode category P*)."""
    return "".join(ch for ch in _form(name) if not unicodedata.category(ch).startswith("P"))


def name_level(a: str, b: str) -> int:
    """0 identical, 1 same up to punctuation form and spacing, 2 same up to punctuation marks, 3 different."""
    if a == b:
        return 0
    if _form(a) == _form(b):
        return 1
    if _bare(a) == _bare(b):
        return 2
    return 3


# ---------------------------------------------------------------- codes

def _repair(family: str, code: str) -> tuple[str, str | None]:
    """(code, what was repaired or None). Only the repairs the module docstring names."""
    what = []
    c = code
    if c != c.strip() or any(ch.isspace() for ch in c):
        c = "".join(ch for ch in c if not ch.isspace())
        what.append("spaces removed 去除空格")
    if family == "icd10" and not C.ICD10.fullmatch(c):
        m = _MISSING_PLUS.fullmatch(c)
        if m:
            c = f"{m.group(1)}+{m.group(2)}*"
            what.append("'+' and '*' of the asterisk code restored 补全星号码的'+'与'*'")
        else:
            m = _MISSING_STAR.fullmatch(c)
            if m:
                c = m.group(1) + "*"
                what.append("'*' of the asterisk code restored 补全星号码的'*'")
    return c, ("; ".join(what) if what else None)


def _code_changes(pg: C.Parts, py: C.Parts) -> list[str]:
    """What differs between two codes beyond their core code, as note phrases (Chinese, English)."""
    out = []
    if pg.asterisk != py.asterisk:
        if not pg.asterisk:
            out.append(f"医保版加星号码 {py.asterisk} (asterisk code added)")
        elif not py.asterisk:
            out.append(f"医保版去掉星号码 {pg.asterisk} (asterisk code dropped)")
        else:
            out.append(f"星号码 {pg.asterisk} 改为 {py.asterisk} (asterisk code changed)")
    if pg.morphology != py.morphology:
        if pg.morphology and not py.morphology:
            out.append(f"医保版不含形态学编码 {pg.morphology} (morphology code not carried)")
        else:
            out.append(f"形态学编码 {pg.morphology or '—'} → {py.morphology or '—'} (morphology code changed)")
    return out


def derive(family: str, g: str, gn: str, y: str, yn: str) -> tuple[str, str, str]:
    """(relationship, note, rule) for one row whose codes are well formed (y may be empty)."""
    if not y:
        return NOT_MAPPED, "源表未给出医保版编码 (the published table gives no insurance-edition code)", "R9"
    level = name_level(gn, yn)
    form_note = {1: "名称仅标点写法或空格不同 (names differ only in punctuation form or spacing)",
                 2: "名称仅标点符号有无不同 (names differ only by punctuation marks)"}
    if g.upper() == y.upper():
        if level == 0:
            return EQUIVALENT, "", "R1"
        if level in (1, 2):
            return EQUIVALENT, form_note[level], "R2" if level == 1 else "R3"
        return RELATED, ("编码相同、名称不同，行内看不出含义是否改变 (same code, renamed; the row does not show "
                         "whether the meaning changed)"), "R4"
    pg, py = C.parts(family, g), C.parts(family, y)
    assert pg is not None and py is not None
    g_core, y_core = g[:len(pg.core)], y[:len(py.core)]  # as written (the parts are upper-cased)
    changes = _code_changes(pg, py)
    if level < 3:
        head = "改码、名称相同 (recoded, same name)" if pg.core != py.core else \
            "主编码与名称相同 (same main code, same name)"
        return EQUIVALENT, "; ".join([head] + changes + ([form_note[level]] if level else [])), "R5"
    if py.core in C.ancestors(family, pg.core):
        if pg.ext and py.core == pg.main:
            what = (f"国临扩展码 {g[len(pg.main):len(pg.core)]} 归入医保版上级编码 {y_core} "
                    "(clinical extension code folded into its parent code)")
        else:
            what = f"国临编码 {g_core} 归入医保版上级编码 {y_core} (source code folded into an ancestor code)"
        return NARROWER, "; ".join([what] + changes), "R6"
    if pg.core in C.ancestors(family, py.core):
        return BROADER, "; ".join([f"医保版编码 {y_core} 是国临编码 {g_core} 的下级 (target is a subdivision of the "
                                   "source code)"] + changes), "R7"
    return RELATED, "; ".join(["改码且名称不同，行内看不出宽窄 (recoded with a different name; the row does not "
                               "show wider or narrower)"] + changes), "R8"


# ---------------------------------------------------------------- the import

def _detect_layout(header: list[str], columns: dict[str, str] | None) -> tuple[str, dict[str, str]]:
    if columns:
        missing = [v for v in columns.values() if v not in header]
        if missing:
            raise ImportError_(f"the source has no column {', '.join(repr(m) for m in missing)} "
                               f"(its header: {', '.join(header)})")
        return "custom", columns
    for name, layout in LAYOUTS.items():
        if all(v in header for v in layout.values()):
            return name, layout
    raise ImportError_("unknown layout: the header is " + ", ".join(header) + "; known layouts: " +
                       "; ".join(f"{n} ({', '.join(l.values())})" for n, l in LAYOUTS.items()) +
                       " — or name the columns with --columns")


def import_table(raw: bytes, source_name: str, family: str, columns: dict[str, str] | None = None) -> Report:
    """Derive a coding table from a published mapping table's bytes."""
    if family not in C.FAMILIES:
        raise ImportError_(f"unknown family '{family}' (families: {', '.join(C.FAMILIES)})")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ImportError_(f"{source_name} is not UTF-8 ({e.reason} at byte {e.start})") from None
    rep = Report(source=source_name, family=family, sha256=hashlib.sha256(raw).hexdigest())
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportError_(f"{source_name} is empty") from None
    rep.layout, layout = _detect_layout([h.strip() for h in header], columns)
    pos = {k: [h.strip() for h in header].index(v) for k, v in layout.items()}
    seen: dict[str, int] = {}
    for rec in reader:
        line = reader.line_num
        if not rec or all(not c.strip() for c in rec):
            continue
        rep.rows_in += 1
        if len(rec) < len(header):
            rep.rejects.append((line, f"row has {len(rec)} cells, the header has {len(header)}"))
            continue
        g_raw, y_raw = rec[pos["source_code"]], rec[pos["target_code"]]
        gn_raw, yn_raw = rec[pos["source_name"]], rec[pos["target_name"]]
        gn, yn = gn_raw.strip(), yn_raw.strip()
        rep.names_trimmed += (gn != gn_raw) + (yn != yn_raw)
        g, g_fix = _repair(family, g_raw)
        y, y_fix = _repair(family, y_raw) if y_raw.strip() else ("", None)
        bad = C.code_problem(family, g) or (C.code_problem(family, y) if y else None)
        if bad:
            rep.rejects.append((line, f"malformed code, not repaired: {bad}"))
            continue
        k = g.upper()
        if k in seen:
            rep.rejects.append((line, f"source code {g} repeats line {seen[k]}"))
            continue
        seen[k] = line
        rel, note, rule = derive(family, g, gn, y, yn)
        fixes = []
        for col, before, after, what in (("source_code", g_raw, g, g_fix), ("target_code", y_raw, y, y_fix)):
            if what:
                rep.repairs.append((line, col, before, after))
                fixes.append(f"源表{'国临' if col == 'source_code' else '医保'}编码 '{before}' 修复为 '{after}' "
                             f"(published code repaired: {what})")
        if fixes:
            note = "; ".join([note] + fixes) if note else "; ".join(fixes)
        rep.rows.append(Row(g, gn, y, yn, rel, note, rule, line))
    return rep


def table_bytes(rows: list[Row]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(OUT_COLUMNS)
    for r in rows:
        w.writerow((r.source_code, r.source_name, r.target_code, r.target_name, r.relationship, r.note))
    return buf.getvalue().encode("utf-8")


def report_markdown(reports: list[tuple[Report, str]], samples: int = 3) -> str:
    """The import report (deterministic): counts by relationship and rule, samples, every repair and reject."""
    out = ["# Coding import report", "",
           "Written by `rules-engine coding rebuild` (rules_engine/coding/importer.py); do not edit by hand.",
           "Relationship rules: docs/coding.md §How relationships are derived.", ""]
    for rep, out_name in reports:
        out += [f"## {out_name}", "",
                f"- source: `{rep.source}` (sha256 `{rep.sha256}`), layout `{rep.layout}`, family `{rep.family}`",
                f"- rows read: {rep.rows_in:,}; imported: {len(rep.rows):,}; rejected: {len(rep.rejects):,}; "
                f"codes repaired: {len(rep.repairs):,}; names with surrounding spaces trimmed: {rep.names_trimmed:,}",
                "- line N of the output table is line N of the source (the order is kept)"
                + ("" if not rep.rejects else " up to the first rejected row"), "",
                "| relationship | rows |", "|---|---:|"]
        byr = rep.by_relationship
        for r in RELATIONSHIPS:
            out.append(f"| {r} | {byr.get(r, 0):,} |")
        out += ["", "| rule | what the row shows | relationship | rows | first source lines |",
                "|---|---|---|---:|---|"]
        by_rule = rep.by_rule
        for rid, (what, rel) in RULES.items():
            lines = [str(r.line) for r in rep.rows if r.rule == rid][:samples]
            out.append(f"| {rid} | {what} | {rel} | {by_rule.get(rid, 0):,} | {', '.join(lines) or '—'} |")
        out += ["", "Repairs (line, column, published, imported):", ""]
        out += [f"- line {ln}, {col}: `{b}` → `{a}`" for ln, col, b, a in rep.repairs] or ["- none"]
        out += ["", "Rejected rows (line, reason):", ""]
        out += [f"- line {ln}: {why}" for ln, why in rep.rejects] or ["- none"]
        out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------- the shipped baseline

BASELINE = (
    # (source file in shared/reference/data, family, output file in the coding folder)
    ("icd10_guolin2.0_to_yibao2.0.csv", "icd10", "icd10_clinical-2.0_to_insurance-2.0.csv"),
    ("icd9cm3_guolin3.0_to_yibao2.0.csv", "icd9cm3", "icd9cm3_clinical-3.0_to_insurance-2.0.csv"),
)
REPORT_FILE = "IMPORT-REPORT.md"


def rebuild(data_dir: Path, out_dir: Path, *, write: bool = True) -> dict[str, bytes]:
    """Rebuild the baseline's coding tables and report from the reference data.

    Returns {file name: bytes}; with write=True also writes them into `out_dir` (each file
    written whole to a temporary name, then renamed: never half a table).
    """
    results: dict[str, bytes] = {}
    reports = []
    for src, family, out_name in BASELINE:
        p = Path(data_dir) / src
        try:
            raw = p.read_bytes()
        except OSError as e:
            raise ImportError_(f"cannot read {p}: {e.strerror}") from None
        rep = import_table(raw, src, family)
        results[out_name] = table_bytes(rep.rows)
        reports.append((rep, out_name))
    results[REPORT_FILE] = report_markdown(reports).encode("utf-8")
    if write:
        write_files(Path(out_dir), results)
    return results


def write_files(out_dir: Path, files: dict[str, bytes]) -> None:
    import os
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        target = out_dir / name
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, target)
