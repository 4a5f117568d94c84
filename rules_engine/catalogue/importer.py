"""`rules-engine catalogue import`: a published spreadsheet → a pack's catalogue CSV + report.

The pipeline, each step reporting rather than raising:

1. check the target pack (pack.yaml there, its region is --region) and the mapping (--kind fits);
2. read the file (reader.py): header found, merged heading rows joined, rows numbered;
3. per row: fill-down columns, skip blank and heading rows (counted), clean every mapped cell
   (cleaning.py: '15%' → 0.15, '2025年1月1日' → 2025-01-01, 1102000050000 → 001102000050000 …),
   rejecting the row — with its number, column, value and reason — when a cell cannot be read
   without guessing;
4. optionally link rows without codes to a product-code table (link.py);
5. turn restriction texts into restrictions.yaml entries (restrictions_parser.py);
6. validate every entry with the pack's own schema (validate_rows), refuse duplicate codes;
7. compare with the catalogue file already in the pack: added, changed, removed;
8. write the CSV, the restrictions block, the unlinked table and pack.yaml atomically — or,
   when anything was wrong, nothing at all.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..packs.source import parse_csv, parse_yaml, read_yaml
from ..problems import Problem
from ..validate.schema import validate_document, validate_rows
from . import cleaning
from .cleaning import CellError
from .link import CodeRow, LinkRow, link
from .mapping import FieldSpec, Mapping, find_column, missing_fields
from .reader import Sheet, read_sheet
from .report import Change, Conversion, ImportReport, Rejected, Skipped, Unlinked
from .restrictions_parser import Parsed, parse
from .writer import (SpliceError, catalogue_csv, check_pack_text, check_restrictions_text, existing_restrictions,
                     fmt_value, remove_block, splice_pack_catalogue, splice_restrictions, tsv, write_all)

KINDS = ("drug", "service", "consumable")
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


@dataclass
class ImportRequest:
    file: Path
    kind: str
    region: str
    into: Path
    mapping: Mapping
    target: str | None = None            # file inside the pack; default catalogue/<kind>s.csv
    codes: Path | None = None
    codes_mapping: Mapping | None = None
    keep_going: bool = False              # write the valid rows even when some are rejected
    overrides: dict[str, str] = field(default_factory=dict)   # --set FIELD=VALUE: a constant for every row
    dry_run: bool = False
    report_path: Path | None = None


@dataclass
class SourceRow:
    row: int
    entry: dict[str, Any]
    restriction_text: str = ""
    restriction_id: str = ""
    link: dict[str, str] = field(default_factory=dict)
    cols: dict[str, str] = field(default_factory=dict)     # field → column label, for messages


@dataclass
class ImportResult:
    report: ImportReport
    problems: list[Problem] = field(default_factory=list)
    files: dict[Path, str] = field(default_factory=dict)
    parsed: list[tuple[SourceRow, Parsed, list[str]]] = field(default_factory=list)  # rows with a restriction
    usage_error: bool = False

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_import(req: ImportRequest) -> ImportResult:
    m = req.mapping
    for k, v in req.overrides.items():
        m.fields[k] = FieldSpec(name=k, value=v)
    target = req.target or f"catalogue/{req.kind}s.csv"
    rep = ImportReport(source=req.file.name, source_sha256="", mapping=m.name, kind=req.kind, region=req.region,
                       pack=req.into.name if req.into.name else str(req.into), target=target)
    res = ImportResult(report=rep)

    def usage(code: str, msg: str, hint: str | None = None, file: str | None = None) -> ImportResult:
        res.problems.append(Problem(code, msg, file=file or str(req.into), hint=hint))
        rep.errors.append(msg)
        res.usage_error = True
        return res

    # 1. the pack and the mapping
    if req.kind not in KINDS:
        return usage("E-IMPORT-KIND", f"--kind must be one of {', '.join(KINDS)}")
    for f in missing_fields(m):
        return usage("E-MAPPING-FIELD", f"mapping '{m.name}' gives no source for '{f}', which every catalogue entry "
                     "needs", hint=f"give it for every row with --set {f}=…, or map a column in the mapping file",
                     file=m.file)
    if m.kinds and req.kind not in m.kinds:
        return usage("E-IMPORT-KIND", f"mapping '{m.name}' is for {', '.join(m.kinds)} catalogues, not {req.kind}",
                     file=m.file)
    pack_yaml = req.into / "pack.yaml"
    if not pack_yaml.is_file():
        return usage("E-IMPORT-PACK", f"{req.into} is not a pack folder (no pack.yaml)",
                     hint="--into takes a pack folder such as regions/110000/2025.1")
    meta, ps = read_yaml(pack_yaml, str(pack_yaml))
    if meta is None or not isinstance(meta.data, dict):
        res.problems += ps
        return usage("E-IMPORT-PACK", f"{pack_yaml} cannot be read", file=str(pack_yaml))
    rep.pack = f"{meta.data.get('region')}@{meta.data.get('version')}"
    if str(meta.data.get("region")) != req.region:
        return usage("E-IMPORT-REGION", f"--region {req.region} but {pack_yaml} is region "
                     f"{meta.data.get('region')}", hint="import into the pack of the region the catalogue belongs to",
                     file=str(pack_yaml))
    tpath = (req.into / target)
    if not target.endswith(".csv") or ".." in Path(target).parts or Path(target).is_absolute():
        return usage("E-IMPORT-TARGET", f"--file {target}: give a .csv path inside the pack, e.g. catalogue/drugs.csv")
    if req.codes is not None and not m.link:
        rep.notes.append(f"--codes is ignored: mapping '{m.name}' has no 'link' section (its rows carry codes)")
    if m.link and req.codes is None:
        return usage("E-IMPORT-CODES", f"mapping '{m.name}' links rows to product codes: give the code table with "
                     "--codes FILE (and --codes-mapping)", file=m.file)
    if not req.file.is_file():
        return usage("E-FILE-READ", f"no such file: {req.file}", file=str(req.file))
    rep.source_sha256 = _sha256(req.file)

    # 2. read
    sheet, ps = read_sheet(req.file, m, req.file.name)
    res.problems += ps
    if sheet is None:
        rep.errors += [p.message for p in ps if p.severity == "error"]
        return res
    rep.sheet, rep.encoding, rep.header_row = sheet.sheet_name, sheet.encoding, sheet.header_row
    for p in ps:
        if p.severity != "error":
            rep.notes.append(p.message)

    # 3. rows
    rows = _read_rows(sheet, m, rep)
    rep.rows_read = len(sheet.rows)

    # 5. restriction ids and texts (before linking: every entry of a row shares them)
    _restrictions_for_rows(rows, m, rep, res)

    # 4. entries (linked or direct)
    entries, entry_rows = _entries(rows, req, rep, res)
    if not res.ok:
        return res

    # 6. validate entries with the pack schema; a failing entry rejects its source row
    entries, entry_rows = _validate(entries, entry_rows, rows, rep, req)
    dups = _duplicates(entries, entry_rows)
    for (code, match), rws in dups:
        res.problems.append(Problem("E-IMPORT-DUPLICATE", f"code {code} ({match}) is listed on rows "
                                    f"{', '.join(map(str, rws))} with overlapping validity", file=req.file.name,
                                    line=rws[1], hint="keep one row per code, or give the rows distinct valid_from / "
                                    "valid_to"))
        rep.errors.append(f"duplicate code {code} on rows {', '.join(map(str, rws))}")
    if rep.rejected and not req.keep_going:
        res.problems.append(Problem("E-IMPORT-REJECTED", f"{len({r.row for r in rep.rejected})} row(s) rejected; "
                                    "nothing was written", file=req.file.name,
                                    hint="fix the rows listed in the report, or pass --keep-going to write the "
                                         "others (the rejected rows are then left out, and listed)"))
        rep.errors.append("rows were rejected (see 'Rejected rows'); nothing was written")
    imported = {entry_rows[i] for i in range(len(entries))}
    rep.rows_imported = len(imported)
    rep.entries = len(entries)
    rep.prefix_entries = sum(1 for e in entries if e.get("match") == "prefix")

    # 7. diff with the file in the pack
    _diff(tpath, entries, entry_rows, rep, res)

    # 8. outputs
    files: dict[Path, str] = {tpath: catalogue_csv(entries)}
    if m.link:
        files[tpath.with_suffix(".unlinked.tsv")] = tsv(
            ["row", "name", "dosage_form", "category", "catalogue_no", "restriction", "reason"],
            [[u.row, u.name, u.form, u.category, u.catalogue_no, u.restriction, u.reason] for u in rep.unlinked])
    if m.restriction_text is not None:
        _restrictions_file(req, rows, imported, rep, res, files)
    try:
        new_pack = splice_pack_catalogue(pack_yaml.read_text(encoding="utf-8"), target, req.kind, [])
        if new_pack is not None:
            cats = meta.data.get("catalogues") or []
            check_pack_text(new_pack, target, len(cats) if isinstance(cats, list) else 0)
            files[pack_yaml] = new_pack
            rep.notes.append(f"pack.yaml: {target} added to 'catalogues' (give it a 'source')")
    except SpliceError as e:
        res.problems.append(Problem("E-IMPORT-PACK", str(e), file=str(pack_yaml)))
        rep.errors.append(str(e))
    if not res.ok:
        return res
    res.files = files
    rep.written = sorted(str(p.relative_to(req.into)) if p.is_relative_to(req.into) else p.name for p in files)
    if not req.dry_run:
        try:
            write_all(files)
        except OSError as e:
            msg = f"cannot write {e.filename or 'the pack'}: {e.strerror}; the pack was left as it was"
            res.problems.append(Problem("E-IMPORT-WRITE", msg, file=str(e.filename or req.into)))
            rep.errors.append(msg)
            rep.written = []
    return res


# ------------------------------------------------------------------ rows

def _getter(sheet: Sheet, m: Mapping, rep: ImportReport) -> Callable[..., tuple[Any, str]]:
    """A function reading one field's raw value from a row: (value, column label)."""
    cache: dict[str, tuple[int | None, str]] = {}
    warned: set[str] = set()

    def col(ref: str | int) -> tuple[int | None, str]:
        key = str(ref)
        if key not in cache:
            i = find_column(sheet.headers, ref, m.header)
            label = (f"{sheet.headers[i]} ({sheet.col_letter(i)})" if i is not None and m.header
                     else f"column {ref}" if i is not None else str(ref))
            cache[key] = (i, label)
        return cache[key]

    builtins = {"_sheet": sheet.sheet_name or "", "_file": Path(sheet.file).stem}

    def get(spec: FieldSpec, cells: list[Any], rownum: int = 0) -> tuple[Any, str]:
        if spec.value is not None:
            return spec.value, spec.name
        if spec.template is not None:
            out = spec.template
            filled = False
            for ph in _PLACEHOLDER.findall(spec.template):
                if ph in builtins or ph == "_row":
                    t = str(rownum) if ph == "_row" else builtins[ph]
                    t = spec.lookup.get(ph, {}).get(t, t)
                    filled = filled or bool(t)
                    out = out.replace("{" + ph + "}", t)
                    continue
                i, _ = col(int(ph) if not m.header and ph.isdigit() else ph)
                if i is None and ph not in warned:
                    warned.add(ph)
                    rep.notes.append(f"{spec.name}: template column '{ph}' is not in the file (left empty)")
                v = cells[i] if i is not None and i < len(cells) else None
                t, _ = cleaning.clean_text(v)
                if spec.strip:
                    t = "".join(ch for ch in t if ch not in spec.strip)
                filled = filled or bool(t)  # before lookup: a value translated to "" still counts
                t = spec.lookup.get(ph, {}).get(t, t)
                out = out.replace("{" + ph + "}", t)
            return (out if filled else ""), spec.name
        for ref in spec.columns:
            i, label = col(ref)
            if i is not None:
                v = cells[i] if i < len(cells) else None
                if spec.strip and isinstance(v, str):
                    v = "".join(ch for ch in v if ch not in spec.strip)
                return v, label
        if spec.name not in warned:
            warned.add(spec.name)
            rep.notes.append(f"{spec.name}: column {' / '.join(map(str, spec.columns))} is not in the file "
                             "(left empty)")
        return None, str(spec.columns[0])
    return get


def _clean_field(name: str, spec: FieldSpec, raw: Any) -> tuple[Any, list[tuple[str, str]]]:
    if name in ("category",):
        return cleaning.clean_category(raw, spec.values)
    if isinstance(raw, str) and spec.values:
        t, conv = cleaning.clean_text(raw)
        if t in spec.values:
            raw = spec.values[t]
    elif spec.values and raw is not None:
        t, _ = cleaning.clean_text(raw)
        raw = spec.values.get(t, raw)
    if name == "code":
        return cleaning.clean_code(raw, spec.width)
    if name == "selfpay_prop":
        return cleaning.clean_ratio(raw)
    if name == "pric_uplmt_amt":
        return cleaning.clean_money(raw)
    if name in ("valid_from", "valid_to"):
        return cleaning.clean_date(raw)
    if name == "validity":
        return cleaning.clean_date_range(raw)
    if name == "catalogue_no":
        return cleaning.clean_catalogue_no(raw)
    return cleaning.clean_text(raw)


def _read_rows(sheet: Sheet, m: Mapping, rep: ImportReport) -> list[SourceRow]:
    get = _getter(sheet, m, rep)
    fill_idx = [find_column(sheet.headers, r, m.header) for r in m.fill_down]
    skip_idx = [find_column(sheet.headers, r, m.header) for r in m.skip_when_empty]
    skip_vals = [(ref, find_column(sheet.headers, int(ref) if not m.header and ref.isdigit() else ref, m.header), vals)
                 for ref, vals in m.skip_values.items()]
    last: dict[int, Any] = {}
    out: list[SourceRow] = []
    widest = 0
    if not m.header:
        refs = [r for spec in m.all_specs() for r in spec.refs()] + list(m.skip_values)
        widest = max((int(r) for r in map(str, refs) if r.isdigit()), default=0)
    for rownum, cells in sheet.rows:
        cells = list(cells)
        if all(cleaning.is_empty(c) for c in cells):
            rep.blank_rows.append(rownum)
            continue
        for i in fill_idx:
            if i is None:
                continue
            while len(cells) <= i:
                cells.append(None)
            if cleaning.is_empty(cells[i]):
                if i in last:
                    cells[i] = last[i]
            else:
                last[i] = cells[i]
        skipped_by = next((f"{ref} is '{cleaning.clean_text(cells[i])[0]}'" for ref, i, vals in skip_vals
                           if i is not None and i < len(cells) and cleaning.clean_text(cells[i])[0] in vals), None)
        if skipped_by:
            text = " ".join(cleaning.clean_text(c)[0] for c in cells if not cleaning.is_empty(c))
            rep.skipped.append(Skipped(rownum, f"skipped: {skipped_by} (source.skip_values)", text[:80]))
            continue
        if skip_idx and all(i is None or i >= len(cells) or cleaning.is_empty(cells[i]) for i in skip_idx):
            text = " ".join(cleaning.clean_text(c)[0] for c in cells if not cleaning.is_empty(c))
            rep.skipped.append(Skipped(rownum, "heading row: " + " and ".join(map(str, m.skip_when_empty))
                                       + " empty", text[:80]))
            continue
        if not m.header and len(cells) < widest:
            # a positional file: a short line has its columns shifted, so nothing in it can be trusted
            rep.rejected.append(Rejected(rownum, f"column {widest}", "", f"the line has {len(cells)} columns; the "
                                         f"mapping reads up to column {widest}", "check the file's layout"))
            continue
        row = SourceRow(row=rownum, entry={})
        bad = False
        for name, spec in m.fields.items():
            raw, label = get(spec, cells, rownum)
            row.cols[name] = label
            if cleaning.is_empty(raw):
                if spec.required:
                    rep.rejected.append(Rejected(rownum, label, "", f"'{name}' is empty", None))
                    bad = True
                continue
            try:
                val, conv = _clean_field(name, spec, raw)
            except CellError as e:
                rep.rejected.append(Rejected(rownum, label, cleaning.clean_text(raw)[0], e.reason, e.hint))
                bad = True
                continue
            for kind, detail in conv:
                rep.conversions.append(Conversion(rownum, label, kind, detail))
            if name == "validity":
                row.entry["valid_from"], row.entry["valid_to"] = val
                row.cols["valid_from"] = row.cols["valid_to"] = label
            elif val != "":
                row.entry[name] = val
        if bad:
            continue
        # defaults and the edition's first day
        for k in ("valid_from", "valid_to"):
            if k not in row.entry and k in m.defaults:
                row.entry[k] = m.defaults[k]
        nb = m.defaults.get("not_before")
        if nb and row.entry.get("valid_to") and row.entry["valid_to"] < nb:
            rep.rejected.append(Rejected(rownum, row.cols.get("valid_to", "valid_to"), row.entry["valid_to"],
                                         f"valid only until {row.entry['valid_to']}, before this edition starts "
                                         f"({nb})", None))
            continue
        if nb and row.entry.get("valid_from", nb) < nb:
            rep.conversions.append(Conversion(rownum, row.cols.get("valid_from", "valid_from"), "edition-start",
                                              f"{row.entry['valid_from']} → {nb} (listed by this edition from its "
                                              "first day)"))
            row.entry["valid_from"] = nb
        if m.restriction_text is not None:
            raw, label = get(m.restriction_text, cells, rownum)
            row.restriction_text = cleaning.clean_text(raw)[0]
            if row.restriction_text and m.restriction_id is not None:
                rid, _ = get(m.restriction_id, cells, rownum)
                row.restriction_id = cleaning.clean_text(rid)[0]
                if not re.fullmatch(r"[A-Za-z0-9_.-]+", row.restriction_id):
                    rep.rejected.append(Rejected(rownum, "restrictions.id", row.restriction_id,
                                                 "the restriction id template gives an id with characters other than "
                                                 "letters, digits, '_', '.', '-'",
                                                 "translate the template's columns with 'lookup'"))
                    continue
        for k, spec in m.link_fields.items():
            raw, _ = get(spec, cells, rownum)
            row.link[k] = cleaning.clean_text(raw)[0]
        out.append(row)
    return out


# ------------------------------------------------------------------ restrictions

def _restrictions_for_rows(rows: list[SourceRow], m: Mapping, rep: ImportReport, res: ImportResult) -> None:
    """Give every distinct (id, text) its id; a second text under one id gets '-2', '-3' …"""
    if m.restriction_text is None:
        return
    by_id: dict[str, str] = {}
    text_ids: dict[tuple[str, str], str] = {}
    cache: dict[str, Parsed] = {}
    for r in rows:
        if not r.restriction_text:
            continue
        base = r.restriction_id or f"R{r.row}"
        key = (base, r.restriction_text)
        if key in text_ids:
            rid = text_ids[key]
        else:
            rid, n = base, 1
            while rid in by_id and by_id[rid] != r.restriction_text:
                n += 1
                rid = f"{base}-{n}"
            by_id[rid] = r.restriction_text
            text_ids[key] = rid
        r.restriction_id = rid
        p = cache.get(r.restriction_text)
        if p is None:
            p = parse(r.restriction_text) if m.restriction_parse else _unparsed(r.restriction_text)
            cache[r.restriction_text] = p
        ids = [e["id"] for e in p.restrictions(rid)]
        r.entry["restrictions"] = ids
        res.parsed.append((r, p, ids))


def _unparsed(text: str) -> Parsed:
    p = Parsed(text=text.strip())
    p.whole_reason = "restriction parsing is switched off in the mapping (restrictions.parse: false)"
    return p


def _restrictions_file(req: ImportRequest, rows: list[SourceRow], imported: set[int], rep: ImportReport,
                       res: ImportResult, files: dict[Path, str]) -> None:
    m = req.mapping
    src = list(m.restriction_source)
    source: Any = src[0] if len(src) == 1 else (src or None)
    entries: list[dict] = []
    comments: dict[str, str] = {}
    seen: set[str] = set()
    stats = {"texts": 0, "distinct texts": 0, "condition": 0, "partial": 0, "review": 0,
             "rows not imported (their restriction is not written)": 0}
    kinds: dict[str, int] = {}
    for r, p, ids in res.parsed:
        if r.row not in imported:
            stats["rows not imported (their restriction is not written)"] += 1
            continue
        stats["texts"] += 1
        stats[p.status] += 1
        for k in p.kinds:
            kinds[k] = kinds.get(k, 0) + 1
        if ids[0] in seen:
            continue
        seen.add(ids[0])
        stats["distinct texts"] += 1
        made = p.restrictions(r.restriction_id, source)
        label = " ".join(x for x in (r.entry.get("catalogue_no", ""), r.entry.get("name", "")) if x)
        comments[made[0]["id"]] = (f"row {r.row}{' · ' + label if label else ''} · {p.status}"
                                   + (f" ({', '.join(sorted(p.kinds))})" if p.kinds else ""))
        entries.extend(made)
    entries.sort(key=lambda e: _id_key(e["id"]))
    rep.restrictions = dict(stats, **{f"texts reading {k}": v for k, v in sorted(kinds.items())})
    rfile = req.into / "restrictions.yaml"
    old = rfile.read_text(encoding="utf-8") if rfile.is_file() else None
    block = f"{m.name} → {req.target or f'catalogue/{req.kind}s.csv'}"
    outside, _ = existing_restrictions(old, block)
    clash = sorted(set(outside) & {e["id"] for e in entries})
    if clash:
        msg = (f"restrictions.yaml already defines {', '.join(clash[:5])}{' …' if len(clash) > 5 else ''} outside "
               f"the block this import writes")
        res.problems.append(Problem("E-IMPORT-RESTRICTION", msg, file=str(rfile),
                                    hint="rename the hand-written entries or the mapping's restrictions.id template"))
        rep.errors.append(msg)
        return
    note = (f"written by `rules-engine catalogue import` from {req.file.name} with mapping '{m.name}': re-run the "
            "import rather than editing these lines")
    if not entries and old is None:
        return  # no texts and no file: nothing to write
    try:
        if entries:
            text = splice_restrictions(old, block, entries, note, comments)
        else:
            text = remove_block(old or "", block)
        check_restrictions_text(text, outside, entries)
    except SpliceError as e:
        res.problems.append(Problem("E-IMPORT-RESTRICTION", str(e), file=str(rfile)))
        rep.errors.append(str(e))
        return
    # the generated conditions must be valid pack data (a parser bug must not reach a pack)
    doc, ps = parse_yaml(text, str(rfile))
    ps = list(ps)
    if doc is not None:
        ps += validate_document(doc, "restrictions.schema.json")
        from ..conditions.language import parse_condition
        for i, e in enumerate(doc.data.get("restrictions") or []):
            if isinstance(e, dict) and "when" in e:
                _, cps = parse_condition(doc, ("restrictions", i, "when"))
                ps += cps
    errs = [p for p in ps if p.severity == "error"]
    if errs:
        res.problems += errs
        rep.errors.append(f"{len(errs)} generated restriction(s) are not valid pack data")
        return
    files[rfile] = text


def _id_key(rid: str) -> tuple:
    """Natural order: X2 before X10."""
    return tuple((0, int(t)) if t.isdigit() else (1, t) for t in re.findall(r"\d+|\D+", rid))


# ------------------------------------------------------------------ entries

def _entries(rows: list[SourceRow], req: ImportRequest, rep: ImportReport,
             res: ImportResult) -> tuple[list[dict], list[int]]:
    m = req.mapping
    if not m.link:
        entries = [dict(r.entry) for r in rows]
        missing = [r for r, e in zip(rows, entries) if not e.get("code")]
        for r in missing:
            rep.rejected.append(Rejected(r.row, r.cols.get("code", "code"), "", "the row has no code", None))
        keep = [(e, r.row) for r, e in zip(rows, entries) if e.get("code")]
        return [e for e, _ in keep], [n for _, n in keep]
    # linked
    assert req.codes is not None
    cm = req.codes_mapping
    if cm is None:
        res.problems.append(Problem("E-IMPORT-CODES", "--codes needs --codes-mapping (the code table's layout)"))
        return [], []
    if "code" not in cm.fields or "name" not in cm.fields:
        res.problems.append(Problem("E-IMPORT-CODES", f"the codes mapping '{cm.name}' must map 'code' and 'name'",
                                    file=cm.file))
        rep.errors.append(res.problems[-1].message)
        return [], []
    csheet, ps = read_sheet(req.codes, cm, req.codes.name)
    res.problems += [p for p in ps if p.severity == "error"]
    if csheet is None:
        rep.errors += [p.message for p in ps if p.severity == "error"]
        return [], []
    cget = _getter(csheet, cm, rep)
    codes: list[CodeRow] = []
    code_rejects: list[dict] = []
    for rownum, cells in csheet.rows:
        if all(cleaning.is_empty(c) for c in cells):
            continue
        try:
            raw, _ = cget(cm.fields["code"], cells)
            code, _ = cleaning.clean_code(raw, cm.fields["code"].width)
            nm, _ = cleaning.clean_text(cget(cm.fields["name"], cells)[0])
            if not code or not nm:
                raise CellError("empty code or name")
        except CellError as e:
            code_rejects.append({"row": rownum, "reason": e.reason})
            continue
        codes.append(CodeRow(code, nm, rownum))
    lrows = [LinkRow(i, r.row, r.link.get("name", r.entry.get("name", "")), r.link.get("form", ""),
                     r.link.get("group", "")) for i, r in enumerate(rows)]
    lr = link(lrows, codes, m.link or {})
    entries: list[dict] = []
    entry_rows: list[int] = []
    rule_counts: dict[str, int] = {}
    exact_mode = (m.link or {}).get("exact_entries", "all")
    covered = {mm.code for v in lr.prefixes.values() for _, members in v for mm in members}
    rep_covered = 0
    for i, r in enumerate(rows):
        for c, rule in lr.codes.get(i, []):
            if exact_mode == "uncovered" and c.code in covered:
                rep_covered += 1
                rule_counts[rule] = rule_counts.get(rule, 0) + 1
                continue
            e = dict(r.entry)
            e["code"] = c.code
            e["name"] = c.name
            entries.append(e)
            entry_rows.append(r.row)
            rule_counts[rule] = rule_counts.get(rule, 0) + 1
        for prefix, members in lr.prefixes.get(i, []):
            e = dict(r.entry)
            e["code"] = prefix
            e["match"] = "prefix"
            names = sorted({mm.name for mm in members})
            e["name"] = names[0] if len(names) == 1 else r.entry.get("name", names[0])
            tag = f"前缀条目：{len(members)}个已知产品编码同属此通用名+剂型"
            e["note"] = tag + ("；" + r.entry["note"] if r.entry.get("note") else "")
            entries.append(e)
            entry_rows.append(r.row)
    for i, why in sorted(lr.unlinked_rows.items()):
        r = rows[i]
        rep.unlinked.append(Unlinked(r.row, r.entry.get("name", ""), r.entry.get("dosage_form", ""),
                                     r.entry.get("category", ""), r.entry.get("catalogue_no", ""),
                                     r.restriction_text, why))
    linked_rows = len(lr.codes)
    rep.link = {
        "code table": f"{req.codes.name} (mapping {cm.name}, sha256 {_sha256(req.codes)[:16]}…)",
        "code table rows": len(csheet.rows), "code table rows rejected": len(code_rejects),
        "distinct product codes": len({c.code for c in codes}),
        "catalogue rows linked": linked_rows, "catalogue rows not linked": len(lr.unlinked_rows),
        "product codes linked": sum(rule_counts.values()),
        **{f"linked by {k}": v for k, v in sorted(rule_counts.items())},
        "product codes matching no row": len(lr.unmatched_codes),
        "product codes matching two rows, linked to the row naming the product exactly": lr.resolved_by_name,
        "product codes matching two rows (not linked)": len(lr.ambiguous),
        "product codes outside the row's category (not linked)": len(lr.group_mismatch),
        "prefix entries": sum(len(v) for v in lr.prefixes.values()),
        "linked codes written as exact entries": sum(rule_counts.values()) - rep_covered,
        "linked codes resolved by their prefix entry only (exact_entries: uncovered)": rep_covered,
        "prefixes not written (their products link to different rows or to none)": lr.prefix_blocked,
        "ambiguous": [{"code": c.code, "name": c.name, "rows": ", ".join(str(rows[i].row) for i in idx)}
                      for c, idx in lr.ambiguous],
        "outside category": [{"code": c.code, "name": c.name,
                              "rows": ", ".join(f"{rows[i].row} ({rows[i].link.get('group', '')})" for i in idx)}
                             for c, idx in lr.group_mismatch],
        "code table rows rejected (list)": code_rejects,
        "same code, two names in the code table": [{"code": a.code, "first": f"{a.name} (row {a.row})",
                                                    "second": f"{b.name} (row {b.row})"}
                                                   for a, b in lr.duplicate_codes],
    }
    return entries, entry_rows


def _validate(entries: list[dict], entry_rows: list[int], rows: list[SourceRow], rep: ImportReport,
              req: ImportRequest) -> tuple[list[dict], list[int]]:
    cols = {r.row: r.cols for r in rows}

    def locate(i: int, path: tuple, key: bool) -> tuple[str, int, int, str | None]:
        return req.file.name, entry_rows[i], 1, None

    typed = [{k: v for k, v in e.items()} for e in entries]
    problems = validate_rows(typed, "catalogue-entry.schema.json", locate)
    bad_rows: dict[int, list[Problem]] = {}
    for p in problems:
        bad_rows.setdefault(p.line, []).append(p)
    for rownum, ps in sorted(bad_rows.items()):
        for p in ps:
            field_ = (p.path or "").split(".")[0].split("[")[0]
            label = cols.get(rownum, {}).get(field_, field_ or "(row)")
            value = ""
            for e, n in zip(entries, entry_rows):
                if n == rownum and field_ in e:
                    value = fmt_value(e[field_])
                    break
            rep.rejected.append(Rejected(rownum, label, value, f"{field_}: {p.message}" if field_ else p.message,
                                         p.hint))
    keep = [(e, n) for e, n in zip(entries, entry_rows) if n not in bad_rows]
    return [e for e, _ in keep], [n for _, n in keep]


def _duplicates(entries: list[dict], entry_rows: list[int]) -> list[tuple[tuple[str, str], list[int]]]:
    seen: dict[tuple[str, str], list[tuple[str, str, int]]] = {}
    out = []
    for e, n in zip(entries, entry_rows):
        key = (e["code"], e.get("match", "exact"))
        vf, vt = e.get("valid_from", "0000-00-00"), e.get("valid_to", "9999-12-31")
        for (pf, pt, pn) in seen.get(key, []):
            if max(vf, pf) <= min(vt, pt) and pn != n:
                out.append((key, [pn, n]))
                break
        seen.setdefault(key, []).append((vf, vt, n))
    return out


def _diff(tpath: Path, entries: list[dict], entry_rows: list[int], rep: ImportReport, res: ImportResult) -> None:
    def key(d: dict) -> tuple[str, str, str]:
        return (d.get("code", ""), d.get("match") or "exact", d.get("valid_from") or "")

    new = {key(e): (e, n) for e, n in zip(entries, entry_rows)}
    old: dict[tuple[str, str, str], dict[str, str]] = {}
    if tpath.is_file():
        table, ps = parse_csv(tpath.read_bytes(), tpath.name)
        if table is None:
            rep.notes.append(f"the existing {tpath.name} cannot be read ({'; '.join(p.message for p in ps)}): "
                             "every entry counts as added")
        else:
            for r in table.rows:
                d = {k: v.strip() for k, v in r.items() if v.strip()}
                old[key(d)] = d
    for k, (e, n) in sorted(new.items()):
        ne = {c: fmt_value(v) for c, v in e.items() if fmt_value(v) != ""}
        ne.setdefault("match", "exact")
        if k not in old:
            rep.added.append(Change(k[0], k[1], n, e.get("name", "")))
            continue
        oe = dict(old[k])
        oe.setdefault("match", "exact")
        changes = {c: [oe.get(c, ""), ne.get(c, "")] for c in sorted(set(oe) | set(ne)) if oe.get(c, "") != ne.get(c, "")}
        if changes:
            rep.changed.append(Change(k[0], k[1], n, e.get("name", ""), changes))
        else:
            rep.unchanged += 1
    for k, d in sorted(old.items()):
        if k not in new:
            rep.removed.append(Change(k[0], k[1], None, d.get("name", "")))
