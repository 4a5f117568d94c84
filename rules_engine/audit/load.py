"""Load a pack's `audit/` folder into rules, with every problem located; merge a pack chain.

    part, problems = load_audit(pack_dir)                  # one pack (None: it has no audit folder)
    rules, problems = merge_chain([root_part, …, leaf_part], named=pack.conditions)
    rules, problems = load_chain([dir_root, …, dir_leaf], named=pack.conditions)

An audit folder holds YAML rule files (`audit.schema.json`: named `conditions` and `rules`) and
CSV tables for big generated rule sets: a *rule table* (one rule per row, the rule's keys as
column headers) or an *item table* (columns `rule,item`: one code of a rule per row, so that next
year's list of product codes diffs line by line). Nothing here raises for bad input: a broken rule
is reported (file:line:col, for CSV the row and the cell's column) and left out; the rest loads.

Merging follows the pack format: named conditions and rules by id, the child's replaces the
parent's in place, new ids are appended, `{id: X, remove: true}` drops a parent rule. `{is: name}`
resolves late, on the merged result — first the audit conditions, then the pack's named
conditions (`named`, e.g. `inpatient` from policy.yaml) — so a region that redefines `inpatient`
changes the baseline's inpatient-only rules too.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Iterable

from ..conditions.language import (All, AnyOf, Cmp, Node, Not, Ref, Src, describe, parse_condition, parse_icd_pattern,
                                   refs_used)
from ..packs.source import csv_cell_col, load_parts, parse_yaml, path_str
from ..problems import Problem, did_you_mean
from ..validate.schema import load_schema, validate_document, validate_rows
from .model import COMMON, KINDS, PARAMS, AuditRule, AuditRules, ItemSet, SourceRef

AUDIT_DIR = "audit"
MAX_FILE_BYTES = 64 * 1024 * 1024
RULE_SCHEMA = "audit-rule.schema.json"
FILE_SCHEMA = "audit.schema.json"
CNT_SCALE = 10_000

_REF_COLS = {"ref_file": "file", "ref_batch": "batch", "ref_rule_type": "rule_type", "ref_row": "row",
             "ref_rows": "rows", "ref_seq": "seq"}
_LIST_COLS = {"items", "main", "icd", "source"}
_REQUIRED = {"item_condition": ("when",), "diagnosis_required": ("icd",), "quantity_limit": ("max", "per"),
             "duplicate_charge": ("main", "within"), "exclusive": ("within",), "course_limit": ("days",)}
_INT_COLS = {"days", "hours", "gap_days", "ref_row", "ref_seq"}
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_DIGITS = re.compile(r"^[0-9]+$")
_PLAIN_CODE = re.compile(r"[0-9A-Z][0-9A-Z._-]{0,49}")


# ---------------------------------------------------------------- parts


@dataclass
class RawRule:
    """A rule as read from one file, before merging (its condition may still hold `is:` refs)."""

    id: str
    data: dict                 # the checked values: kind, action, items …
    src: Src
    locate: Callable[..., Problem]    # locate(code, message, key_or_path, severity=…, hint=…)
    when: Node | None = None
    ok: bool = True
    remove: bool = False


@dataclass
class AuditPart:
    """One pack's audit folder, read and checked, not yet merged with its ancestors."""

    dir: str
    files: list[str] = field(default_factory=list)
    conditions: dict[str, tuple[Node, Src]] = field(default_factory=dict)
    rules: list[RawRule] = field(default_factory=list)
    digest: str = ""


def _display(path: Path, base: Path | None) -> str:
    for b in ([base] if base is not None else []) + [Path.cwd()]:
        try:
            return str(path.resolve().relative_to(Path(b).resolve()))
        except ValueError:
            continue
    return str(path)


def audit_files(pack_dir: Path | str) -> list[Path]:
    """The files of a pack's audit folder that the loader reads or reports (not notes: .md, .txt)."""
    d = Path(pack_dir) / AUDIT_DIR
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.suffix not in (".md", ".txt"))


def audit_digest(pack_dir: Path | str) -> str:
    """sha256 over the audit folder's files (name + bytes) without parsing — for a compiled-pack
    cache key. '' when the pack has no audit folder."""
    from ..packs.source import files_digest
    return files_digest(Path(pack_dir) / AUDIT_DIR, audit_files(pack_dir))


def load_audit(pack_dir: Path | str, base: Path | None = None, *,
               known_sources: Iterable[str] | None = None) -> tuple[AuditPart | None, list[Problem]]:
    """Read `pack_dir/audit/`. (None, []) when the pack has no audit folder.

    `base` makes file names in problems relative, as the pack loader does; `known_sources`, when
    given, are the provenance ids the pack chain declares: a `source:` naming another is an error.
    """
    pack_dir = Path(pack_dir)
    adir = pack_dir / AUDIT_DIR
    if not adir.is_dir():
        return None, []
    problems: list[Problem] = []
    part = AuditPart(dir=_display(adir, base))
    digest = hashlib.sha256()
    known = set(known_sources) if known_sources is not None else None
    seen_ids: dict[str, Src] = {}
    item_rows: list[tuple[str, str, int, Callable]] = []  # (rule id, code, line, locator(line) → locate)
    for p in audit_files(pack_dir):
        disp = _display(p, base)
        if p.suffix not in (".yaml", ".yml", ".csv"):
            problems.append(Problem("W-AUDIT-FILE", f"file '{p.name}' in the audit folder is not read "
                                    "(only .yaml and .csv files are)", file=disp, severity="warning"))
            continue
        try:
            size = p.stat().st_size
            if size > MAX_FILE_BYTES:
                problems.append(Problem("E-AUDIT-LIMIT", f"file is {size:,} bytes; audit files are limited to "
                                        f"{MAX_FILE_BYTES:,}", file=disp, line=1, col=1))
                continue
            raw = p.read_bytes()
        except OSError as e:
            problems.append(Problem("E-FILE-READ", f"cannot read file: {e.strerror}", file=disp))
            continue
        digest.update(p.name.encode() + b"\0" + raw)
        part.files.append(disp)
        if p.suffix == ".csv":
            _read_csv(raw, disp, part, problems, known, seen_ids, item_rows)
        else:
            _read_yaml(raw, disp, part, problems, known, seen_ids)
    # item tables add codes to rules of this pack
    by_id = {r.id: r for r in part.rules if not r.remove}
    for rid, code, line, locator in item_rows:
        r = by_id.get(rid)
        if r is None:
            hint = did_you_mean(rid, list(by_id))
            problems.append(locator(line)("E-AUDIT-RULE-UNKNOWN", f"item table names rule '{rid}', which no rule file of "
                                   "this audit folder defines", "rule", hint=hint))
            continue
        r.data.setdefault("items", []).append(code)
    for r in part.rules:
        if r.remove or not r.ok:
            continue
        _finish_items(r, problems)
    part.digest = digest.hexdigest()
    return part, _prefer_specific(problems)


def _prefer_specific(problems: list[Problem]) -> list[Problem]:
    """Where our own checks and the schema both report one spot, keep ours (they say more)."""
    cond_spots = {(p.file, p.line, p.col) for p in problems if p.code.startswith(("E-COND", "E-AUDIT"))}
    return [p for p in problems if not (p.code.startswith("E-SCHEMA") and (p.file, p.line, p.col) in cond_spots)]


# ---------------------------------------------------------------- YAML


def _read_yaml(raw: bytes, disp: str, part: AuditPart, problems: list[Problem], known: set[str] | None,
               seen_ids: dict[str, Src]) -> None:
    doc, ps = parse_yaml(raw, disp)
    problems += ps
    if doc is None:
        return
    if doc.data is None:
        doc.data = {}
    if not isinstance(doc.data, dict):
        problems.append(doc.problem("E-SCHEMA-TYPE", "an audit file is a mapping with 'rules' (and 'conditions')", ()))
        return
    problems += validate_document(doc, FILE_SCHEMA)
    conds = doc.data.get("conditions")
    if isinstance(conds, dict):
        for name, value in conds.items():
            if not isinstance(name, str) or not _IDENT.match(name):
                continue  # the schema reported it
            node, ps = parse_condition(doc, ("conditions", name), value)
            problems += ps
            src = Src(doc.file, *doc.pos(("conditions", name), key=True))
            if name in part.conditions:
                first = part.conditions[name][1]
                problems.append(doc.problem("E-AUDIT-DUPLICATE-CONDITION", f"condition '{name}' is defined twice in "
                                            f"this audit folder (first at {first.file}:{first.line})",
                                            ("conditions", name), key=True))
                continue
            if node is not None:
                part.conditions[name] = (node, src)
    rules = doc.data.get("rules")
    if not isinstance(rules, list):
        return
    for i, value in enumerate(rules):
        if not isinstance(value, dict):
            continue  # the schema reported it
        base_path = ("rules", i)

        def locate(code: str, message: str, key: Any = (), *, severity: str = "error", hint: str | None = None,
                   _bp=base_path) -> Problem:
            sub = key if isinstance(key, tuple) else (key,)
            return doc.problem(code, message, _bp + sub, key=bool(sub) and not isinstance(sub[-1], int),
                               severity=severity, hint=hint)

        def cond(v: Any, _bp=base_path) -> tuple[Node | None, list[Problem]]:
            return parse_condition(doc, _bp + ("when",), v)

        src = Src(doc.file, *doc.pos(base_path))
        data = {k: (Decimal(repr(v)) if isinstance(v, float) else v) for k, v in value.items()}
        _add_rule(data, src, locate, cond, part, problems, known, seen_ids)


# ---------------------------------------------------------------- CSV


class _CsvFile:
    def __init__(self, text: str, disp: str):
        self.disp = disp
        self.lines = text.splitlines()

    def col(self, line: int, cell: int | None) -> int:
        if cell is None or not 0 < line <= len(self.lines):
            return 1
        return csv_cell_col(self.lines[line - 1], cell)

    def problem(self, code: str, message: str, line: int, cell: int | None, *, severity: str = "error",
                hint: str | None = None, path: str | None = None) -> Problem:
        src = self.lines[line - 1] if 0 < line <= len(self.lines) else None
        return Problem(code, message, file=self.disp, line=line, col=self.col(line, cell), severity=severity,
                       hint=hint, path=path, source_line=src)


def _read_csv(raw: bytes, disp: str, part: AuditPart, problems: list[Problem], known: set[str] | None,
              seen_ids: dict[str, Src], item_rows: list) -> None:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        problems.append(Problem("E-FILE-ENCODING", f"file is not UTF-8 text ({e.reason} at byte {e.start})",
                                file=disp, hint="save the CSV as UTF-8 (Excel: 'CSV UTF-8')"))
        return
    f = _CsvFile(text, disp)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        problems.append(Problem("E-CSV-EMPTY", "the CSV file is empty; it needs a header row", file=disp))
        return
    except csv.Error as e:
        problems.append(f.problem("E-CSV-SYNTAX", str(e), 1, None))
        return
    cols = {h: i for i, h in enumerate(header)}
    if len(cols) != len(header):
        for i, h in enumerate(header):
            if header.index(h) != i:
                problems.append(f.problem("E-CSV-HEADER", f"column '{h}' appears twice in the header", 1, i))
        return
    if "rule" in cols and "item" in cols:
        _read_item_table(reader, f, cols, header, problems, item_rows)
        return
    props = set(load_schema(RULE_SCHEMA)["properties"]) - {"ref", "remove"}
    allowed = sorted(props | set(_REF_COLS))
    bad_header = False
    for i, h in enumerate(header):
        if h not in allowed:
            hint = did_you_mean(h, allowed)
            problems.append(f.problem("E-CSV-COLUMN", f"unknown column '{h}'", 1, i,
                                      hint=(hint + " " if hint else "") + "columns of a rule table: " + ", ".join(allowed)
                                      + " (an item table has the columns rule,item)"))
            bad_header = True
    if "id" not in cols:
        problems.append(f.problem("E-CSV-COLUMN", "a rule table needs an 'id' column", 1, None,
                                  hint="or, for an item table, the columns rule,item"))
        bad_header = True
    if bad_header:
        return
    width = len(header)
    try:
        for rec in reader:
            line = reader.line_num
            if not rec or all(not c.strip() for c in rec):
                continue
            if len(rec) != width:
                problems.append(f.problem("E-CSV-ROW", f"row has {len(rec)} cells, the header has {width}", line, None,
                                          hint="a cell with a comma must be quoted"))
                continue
            _csv_rule(rec, line, f, cols, part, problems, known, seen_ids)
    except csv.Error as e:
        problems.append(f.problem("E-CSV-SYNTAX", str(e), reader.line_num, None))


def _read_item_table(reader, f: _CsvFile, cols: dict[str, int], header: list[str], problems: list[Problem],
                     item_rows: list) -> None:
    extra = [h for h in header if h not in ("rule", "item", "note")]
    for h in extra:
        problems.append(f.problem("E-CSV-COLUMN", f"unknown column '{h}' in an item table", 1, cols[h],
                                  hint="an item table has the columns rule,item and optionally note"))
    if extra:
        return
    width = len(header)
    ri, ii = cols["rule"], cols["item"]

    def locator(line: int) -> Callable[..., Problem]:
        def locate(code_: str, message: str, key: Any = (), *, severity: str = "error",
                   hint: str | None = None) -> Problem:
            k = key[0] if isinstance(key, tuple) and key else key
            return f.problem(code_, message, line, cols.get(k) if isinstance(k, str) else None,
                             severity=severity, hint=hint, path=k if isinstance(k, str) else None)
        return locate

    try:
        for rec in reader:
            line = reader.line_num
            if len(rec) != width:
                if not rec or all(not c.strip() for c in rec):
                    continue
                problems.append(f.problem("E-CSV-ROW", f"row has {len(rec)} cells, the header has {width}", line, None))
                continue
            rid, code = rec[ri].strip(), rec[ii].strip()
            if not rid and not code:
                continue
            if not rid:
                problems.append(locator(line)("E-AUDIT-ITEM", "the rule id is empty", "rule"))
                continue
            if not (_PLAIN_CODE.fullmatch(code) and (len(code) == 15 or not code.isdigit())):
                loc = locator(line)
                if not _item_ok(code, lambda c, m, h=None, loc=loc: problems.append(loc(c, m, "item", hint=h))):
                    continue
            item_rows.append((rid, code, line, locator))
    except csv.Error as e:
        problems.append(f.problem("E-CSV-SYNTAX", str(e), reader.line_num, None))


def _split_list(v: str) -> list[str]:
    return [x.strip() for x in v.replace("；", ";").split(";") if x.strip()]


def _csv_rule(rec: list[str], line: int, f: _CsvFile, cols: dict[str, int], part: AuditPart,
              problems: list[Problem], known: set[str] | None, seen_ids: dict[str, Src]) -> None:
    def locate(code: str, message: str, key: Any = (), *, severity: str = "error", hint: str | None = None) -> Problem:
        k = key[0] if isinstance(key, tuple) and key else key
        if isinstance(k, str) and k == "ref" and isinstance(key, tuple) and len(key) > 1:
            k = "ref_" + str(key[1])
        cell = cols.get(k) if isinstance(k, str) else None
        return f.problem(code, message, line, cell, severity=severity, hint=hint,
                         path=path_str(key if isinstance(key, tuple) else (key,)) if key not in ((), None) else None)

    data: dict[str, Any] = {}
    ref: dict[str, Any] = {}
    ok = True
    for h, i in cols.items():
        v = rec[i].strip()
        if v == "":
            continue
        target, key = (ref, _REF_COLS[h]) if h in _REF_COLS else (data, h)
        if h in _LIST_COLS:
            target[key] = _split_list(v)
        elif h == "ref_rows":
            try:
                target[key] = [int(x) for x in _split_list(v)]
            except ValueError:
                problems.append(locate("E-CSV-VALUE", f"column '{h}': '{v}' is not a list of row numbers 1;2;3", h))
                ok = False
        elif h in _INT_COLS:
            if not _DIGITS.match(v):
                problems.append(locate("E-CSV-VALUE", f"column '{h}': '{v}' is not a whole number", h))
                ok = False
            else:
                target[key] = int(v)
        elif h == "max":
            try:
                d = Decimal(v)
                if not d.is_finite():
                    raise InvalidOperation
                target[key] = d
            except InvalidOperation:
                problems.append(locate("E-CSV-VALUE", f"column 'max': '{v}' is not a number", h,
                                       hint="write a plain number such as 1 or 0.5"))
                ok = False
        else:
            target[key] = v
    if ref:
        data["ref"] = ref
    src = Src(f.disp, line, 1)

    def cond(v: Any) -> tuple[Node | None, list[Problem]]:
        return _cell_condition(v, f, line, cols.get("when"))

    if not ok:
        rid = data.get("id")
        if isinstance(rid, str):
            seen_ids.setdefault(rid, src)
        return
    _add_rule(data, src, locate, cond, part, problems, known, seen_ids, csv_row=True)


def _cell_condition(text: str, f: _CsvFile, line: int, cell: int | None) -> tuple[Node | None, list[Problem]]:
    """A condition in a CSV cell: a named condition (`lk_child`) or YAML flow text (`{age: {lt: 18}}`).

    Problems found inside the cell are moved to the cell's place in the CSV file."""
    text = text.strip()
    if _IDENT.match(text):
        return Ref(text, Src(f.disp, line, f.col(line, cell))), []
    doc, ps = parse_yaml(text.encode("utf-8"), f.disp)
    start = f.col(line, cell)
    src_line = f.lines[line - 1] if 0 < line <= len(f.lines) else ""
    quoted = start - 1 < len(src_line) and src_line[start - 1:start] == '"'

    def move(p: Problem) -> Problem:
        col = start + (1 if quoted else 0) + max(p.col, 1) - 1
        return Problem(p.code, p.message + " (in the 'when' cell)", file=f.disp, line=line, col=col,
                       severity=p.severity, hint=p.hint, path="when" + ("." + p.path if p.path else ""),
                       source_line=src_line or None)

    if doc is None or not isinstance(doc.data, dict):
        if doc is not None and not ps:
            ps = [Problem("E-COND-SHAPE", "a condition is a named condition (lk_child) or a mapping such as "
                          "{gend: '2'}", file=f.disp, line=1, col=1)]
        return None, [move(p) for p in ps]
    node, ps2 = parse_condition(doc, ())
    # the node's positions are inside the cell: move them too (for explanations)
    return _move_src(node, f.disp, line, start + (1 if quoted else 0)) if node is not None else None, \
        [move(p) for p in ps + ps2]


def _move_src(node: Node, file: str, line: int, col0: int) -> Node:
    s = Src(file, line, col0 + node.src.col - 1)
    if isinstance(node, Cmp):
        return Cmp(node.fact, node.op, node.value, s)
    if isinstance(node, All):
        return All(tuple(_move_src(i, file, line, col0) for i in node.items), s)
    if isinstance(node, AnyOf):
        return AnyOf(tuple(_move_src(i, file, line, col0) for i in node.items), s)
    if isinstance(node, Not):
        return Not(_move_src(node.item, file, line, col0), s)
    return Ref(node.name, s)


# ---------------------------------------------------------------- one rule


def _item_ok(code: Any, report: Callable[..., None]) -> bool:
    if not isinstance(code, str) or not code:
        report("E-AUDIT-ITEM", "an item is a code in text form")
        return False
    body = code[7:] if code.startswith("prefix:") else code
    if not re.fullmatch(r"[0-9A-Z][0-9A-Z._-]*", body) or len(body) > 50:
        hint = None
        if body != body.strip():
            hint = "remove the spaces around the code"
        elif body.upper() != body:
            hint = f"national codes are written in capitals: '{body.upper()}'"
        report("E-AUDIT-CODE", f"'{code}' is not a national catalogue code or 'prefix:' family", hint)
        return False
    if not code.startswith("prefix:") and _DIGITS.match(body) and len(body) != 15:
        report("E-AUDIT-CODE", f"'{code}' has {len(body)} digits; national service item codes have 15",
               "a spreadsheet may have dropped its leading zeros: format the column as text, or write "
               f"'prefix:{body}' if a family of codes is meant")
        return False
    return True


def _add_rule(data: dict, src: Src, locate: Callable[..., Problem], cond: Callable, part: AuditPart,
              problems: list[Problem], known: set[str] | None, seen_ids: dict[str, Src], csv_row: bool = False) -> None:
    """Check one rule (schema first, then what a schema cannot say) and add it to the part."""
    def schema_locate(i: int, path: tuple, key: bool) -> tuple[str, int, int, str | None]:
        p = locate("X", "", path)
        return p.file, p.line, p.col, p.source_line

    checked = dict(data)
    if csv_row and isinstance(checked.get("when"), str):
        checked["when"] = {"is": "x"}  # a CSV cell holds text: its condition is checked below
    if csv_row:
        if _row_screen(checked):
            ok = True
        else:
            ps = validate_rows([checked], RULE_SCHEMA, schema_locate)
            problems += ps
            ok = not any(p.severity == "error" for p in ps)
    else:  # the file's schema check has reported this rule's problems already
        ok = _schema_ok(checked)
    rid = data.get("id")
    if not isinstance(rid, str) or not rid:
        return
    if rid in seen_ids:
        first = seen_ids[rid]
        problems.append(locate("E-AUDIT-DUPLICATE-ID", f"rule id '{rid}' is used twice in this audit folder (first "
                               f"at {first.file}:{first.line})", "id", hint="give each rule its own id"))
        return
    seen_ids[rid] = src
    if data.get("remove") is True:
        part.rules.append(RawRule(rid, {}, src, locate, remove=True))
        return
    # items / main: codes
    for key in ("items", "main"):
        v = data.get(key)
        if isinstance(v, list):
            seen: set[str] = set()
            for j, c in enumerate(v):
                if not _item_ok(c, lambda code, msg, hint=None, _k=key, _j=j: problems.append(
                        locate(code, msg, (_k, _j) if not csv_row else _k, hint=hint))):
                    ok = False
                elif c in seen:
                    problems.append(locate("W-AUDIT-ITEM-DUP", f"item '{c}' is listed twice", (key, j) if not csv_row
                                           else key, severity="warning"))
                seen.add(c) if isinstance(c, str) else None
    kind = data.get("kind")
    if kind not in KINDS:
        return  # the schema named the unknown kind, with a did-you-mean
    for k in ("action",) + _REQUIRED[kind]:
        if k not in data:
            problems.append(locate("E-AUDIT-MISSING", f"a {kind} rule needs '{k}'", (),
                                   hint=f"{kind} takes: " + ", ".join(PARAMS[kind])))
            ok = False
    # keys that do not belong to this kind
    known_keys = _rule_keys()
    for k in data:
        if k in known_keys and k not in COMMON and k not in PARAMS[kind] and k != "remove":
            takes = ", ".join(PARAMS[kind])
            problems.append(locate("E-AUDIT-PARAM", f"'{k}' does not apply to the kind {kind}", k,
                                   hint=f"{kind} takes: {takes}"))
            ok = False
    when = None
    if kind == "item_condition" and "when" in data:
        when, ps = cond(data["when"])
        problems += ps
        if ps and any(p.severity == "error" for p in ps):
            ok = False
    if kind == "diagnosis_required" and isinstance(data.get("icd"), list):
        pats = []
        for j, x in enumerate(data["icd"]):
            pat = parse_icd_pattern(x)
            if pat is None:
                problems.append(locate("E-AUDIT-ICD", f"'{x}' is not an ICD-10 code, prefix or range",
                                       ("icd", j) if not csv_row else "icd",
                                       hint="write 'J18', 'J18.900' or a range of equal length 'C00-C97'"))
                ok = False
            else:
                pats.append(pat)
        if ok:
            when = Cmp("diagnoses", "icd", tuple(pats), src)
    if kind == "quantity_limit":
        per, days = data.get("per"), data.get("days")
        if per == "days" and days is None:
            problems.append(locate("E-AUDIT-PARAM", "per: days needs 'days' (the window length N)", "per",
                                   hint="1 per 15 days: {max: 1, per: days, days: 15}"))
            ok = False
        if per in ("day", "claim", "admission") and days is not None:
            problems.append(locate("E-AUDIT-PARAM", f"'days' applies only with per: days (this rule says per: {per})",
                                   "days"))
            ok = False
        mx = data.get("max")
        if isinstance(mx, (int, Decimal)) and not isinstance(mx, bool):
            scaled = Decimal(mx) * CNT_SCALE
            if scaled != scaled.to_integral_value():
                problems.append(locate("E-AUDIT-VALUE", f"max {mx} has more than 4 decimals (counts are N16,4)", "max"))
                ok = False
    if kind == "duplicate_charge":
        within, hours = data.get("within"), data.get("hours")
        if within == "hours" and hours is None:
            problems.append(locate("E-AUDIT-PARAM", "within: hours needs 'hours'", "within",
                                   hint="同一小时: {within: hours, hours: 1}; 6小时: {within: hours, hours: 6}"))
            ok = False
        if within != "hours" and hours is not None:
            problems.append(locate("E-AUDIT-PARAM", f"'hours' applies only with within: hours (this rule says within: "
                                   f"{within})", "hours"))
            ok = False
    if kind == "exclusive":
        if data.get("within") == "hours":
            problems.append(locate("E-AUDIT-PARAM", "an exclusive rule is judged within a day, a claim or an "
                                   "admission, not within hours", "within"))
            ok = False
    if known is not None:
        srcs = data.get("source")
        for j, s in enumerate([srcs] if isinstance(srcs, str) else srcs if isinstance(srcs, list) else []):
            if isinstance(s, str) and s not in known:
                hint = did_you_mean(s, sorted(known))
                problems.append(locate("E-AUDIT-SOURCE", f"source '{s}' is not a provenance id of this pack chain",
                                       "source" if isinstance(srcs, str) or csv_row else ("source", j),
                                       hint=(hint + " " if hint else "") + "declare it under 'provenance' in pack.yaml"))
                ok = False
    part.rules.append(RawRule(rid, data, src, locate, when=when, ok=ok))


_SCREEN: list = []


def _rule_keys() -> set[str]:
    """The keys a rule may have at all (others are the schema's to name, with a did-you-mean)."""
    return set(load_schema(RULE_SCHEMA)["properties"])


def _row_screen(value: dict) -> bool:
    """True when a CSV rule row surely passes the rule schema: the schema without its per-kind
    'required' clauses (if/then costs ~60 µs a row in fastjsonschema; `_add_rule` checks those
    keys itself). A row that fails is then validated in full, for located messages."""
    if not _SCREEN:
        import copy

        import fastjsonschema

        from ..validate.schema import _inline_refs
        schema = copy.deepcopy(load_schema(RULE_SCHEMA))
        schema.pop("allOf", None)
        _SCREEN.append(fastjsonschema.compile(_inline_refs(schema, RULE_SCHEMA)))
    try:
        _SCREEN[0](value)
        return True
    except Exception:
        return False


def _schema_ok(value: dict) -> bool:
    import fastjsonschema

    from ..validate.schema import fast_validator
    try:
        fast_validator(RULE_SCHEMA)(value)
        return True
    except fastjsonschema.JsonSchemaException:
        return False


def _finish_items(r: RawRule, problems: list[Problem]) -> None:
    items = r.data.get("items")
    if not items:
        problems.append(r.locate("E-AUDIT-ITEMS", f"rule '{r.id}' has no items (give 'items', or rows in an item "
                                 "table with columns rule,item)", "id"))
        r.ok = False
        return
    if r.data.get("kind") == "exclusive" and len(set(items)) < 2:
        problems.append(r.locate("E-AUDIT-ITEMS", "an exclusive rule needs at least two items", "items"))
        r.ok = False


# ---------------------------------------------------------------- merge


def merge_chain(parts: Iterable[AuditPart | None], named: dict[str, Node] | None = None
                ) -> tuple[AuditRules, list[Problem]]:
    """Merge audit parts along a pack chain (root first) into one immutable `AuditRules`.

    `named` are the pack's own named conditions (CompiledPack.conditions, already resolved); an
    audit condition of the same name shadows it for the audit rules (a warning says so).
    """
    parts = [p for p in parts if p is not None]
    problems: list[Problem] = []
    conds: dict[str, tuple[Node, Src]] = {}
    for part in parts:
        conds.update(part.conditions)
    named = dict(named or {})
    for name, (_, src) in conds.items():
        if name in named:
            problems.append(Problem("W-AUDIT-SHADOW", f"audit condition '{name}' shadows the pack's named condition of "
                                    "the same name (policy.yaml) for audit rules", file=src.file, line=src.line,
                                    col=src.col, severity="warning", hint="rename it if both are meant"))
    rules: dict[str, RawRule] = {}
    for part in parts:
        for r in part.rules:
            if r.remove:
                if r.id not in rules:
                    problems.append(r.locate("W-AUDIT-REMOVE", f"remove: no rule '{r.id}' in the packs this one "
                                             "extends", "id", severity="warning"))
                else:
                    del rules[r.id]
                continue
            rules[r.id] = r   # a child's rule replaces the parent's in place (dict keeps the first position)
    # resolve named conditions (audit first, then the pack's), detecting cycles
    resolved: dict[str, Node | None] = {}

    def resolve_name(name: str, stack: tuple[str, ...], where: Src) -> Node | None:
        if name in resolved:
            return resolved[name]
        if name in stack:
            problems.append(Problem("E-AUDIT-CYCLE", "named conditions refer to each other in a loop: "
                                    + " → ".join(stack[stack.index(name):] + (name,)), file=where.file,
                                    line=where.line, col=where.col))
            return None
        if name in conds:
            node = resolve(conds[name][0], stack + (name,))
        elif name in named:
            node = named[name]
        else:
            hint = did_you_mean(name, list(conds) + list(named))
            problems.append(Problem("E-AUDIT-REF", f"'is: {name}' names no condition of the audit folder or of "
                                    "policy.yaml", file=where.file, line=where.line, col=where.col,
                                    hint=(hint + " " if hint else "") + "known: "
                                    + ", ".join(sorted(set(conds) | set(named))[:40])))
            return None
        resolved[name] = node
        return node

    def resolve(node: Node, stack: tuple[str, ...] = ()) -> Node | None:
        if isinstance(node, Ref):
            return resolve_name(node.name, stack, node.src)
        if isinstance(node, (All, AnyOf)):
            items = [resolve(i, stack) for i in node.items]
            if any(i is None for i in items):
                return None
            return type(node)(tuple(items), node.src)
        if isinstance(node, Not):
            inner = resolve(node.item, stack)
            return None if inner is None else Not(inner, node.src)
        return node

    out: list[AuditRule] = []
    for r in rules.values():
        if not r.ok:
            continue
        when = r.when
        if when is not None and refs_used(when):
            before = len([p for p in problems if p.severity == "error"])
            when = resolve(when)
            if when is None or len([p for p in problems if p.severity == "error"]) > before:
                continue
        out.append(_compile_rule(r, when))
    files = tuple(f for p in parts for f in p.files)
    final_conds = {}
    for name in conds:
        node = resolve_name(name, (), conds[name][1])
        if node is not None:
            final_conds[name] = node
    rs = AuditRules(tuple(out), final_conds, files)
    return rs, problems


def _compile_rule(r: RawRule, when: Node | None) -> AuditRule:
    d = r.data
    kind = d["kind"]
    ref = None
    if isinstance(d.get("ref"), dict):
        rd = d["ref"]
        ref = SourceRef(file=rd.get("file"), batch=rd.get("batch"), row=rd.get("row"), rows=tuple(rd.get("rows") or ()),
                        rule_type=rd.get("rule_type"), seq=rd.get("seq"))
    src_ids = d.get("source")
    sources = (src_ids,) if isinstance(src_ids, str) else tuple(src_ids or ())
    items = ItemSet.of(list(d["items"]))
    main = ItemSet.of(list(d["main"])) if kind == "duplicate_charge" else None
    mx = int(Decimal(d["max"]) * CNT_SCALE) if kind == "quantity_limit" else None
    rule = AuditRule(
        id=r.id, kind=kind, action=d["action"], message=d.get("message") or "", items=items, src=r.src,
        name=d.get("name"), when=when, main=main, max=mx, per=d.get("per"), days=d.get("days"),
        within=d.get("within"), hours=d.get("hours"),
        basis=(d.get("basis") or "span") if kind == "course_limit" else None,
        scope=(d.get("scope") or "admission") if kind == "course_limit" else None,
        gap_days=d.get("gap_days"), source=sources, ref=ref)
    if not rule.message:
        rule = _with_default_message(rule)
    return rule


def _label(items: ItemSet, name: str | None) -> str:
    if name:
        return name
    shown = ", ".join(items.entries[:3])
    return shown + (f" … ({len(items)} items)" if len(items) > 3 else "")


def _with_default_message(r: AuditRule) -> AuditRule:
    from dataclasses import replace
    what = _label(r.items, r.name)
    k = r.kind
    if k == "item_condition":
        msg = f"{what}: 限定条件不满足 / may be billed only when {describe(r.when)}"
    elif k == "diagnosis_required":
        msg = f"{what}: 无符合限定诊断的诊断 / needs a diagnosis in {describe(r.when).split(' in ', 1)[-1]}"
    elif k == "quantity_limit":
        per = {"day": "per day", "claim": "per claim", "admission": "per admission"}.get(r.per or "", f"per {r.days} days")
        msg = f"{what}: 超频次 / more than {_count(r.max)} {per}"
    elif k == "duplicate_charge":
        msg = f"{what}: 重复收费 / included in {_label(r.main, None)} billed " + _within_text(r)  # type: ignore[arg-type]
    elif k == "exclusive":
        msg = f"{what}: 互斥项目 / may not be billed together " + _within_text(r)
    else:
        msg = f"{what}: 超支付疗程 / paid for at most {r.days} days"
    return replace(r, message=msg)


def _within_text(r: AuditRule) -> str:
    return {"day": "on the same day", "claim": "in the same claim", "admission": "in the same admission",
            "hours": f"less than {r.hours} hours apart"}.get(r.within or "", "")


def _count(c: int | None) -> str:
    if c is None:
        return "?"
    return str(c // CNT_SCALE) if c % CNT_SCALE == 0 else f"{c / CNT_SCALE:g}"


def load_chain(pack_dirs: Iterable[Path | str], base: Path | None = None, *, named: dict[str, Node] | None = None,
               known_sources: Iterable[str] | None = None) -> tuple[AuditRules, list[Problem]]:
    """load_audit for each pack folder (root first), then merge_chain."""
    known = list(known_sources) if known_sources is not None else None
    parts, problems = load_parts(pack_dirs, lambda d: load_audit(d, base, known_sources=known))
    rules, ps = merge_chain(parts, named)
    return rules, problems + ps


__all__ = ["AuditPart", "RawRule", "load_audit", "merge_chain", "load_chain", "audit_digest", "audit_files"]
