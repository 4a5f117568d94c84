"""CLI: `convert icd`, `convert item` (code conversion) and `coding import|rebuild|validate` (coding data).

Until the lead wires coding into the compiled pack, these commands read the coding folders of
the pack chain in force straight from disk: `PackSet.select(region, date)` names the chain,
`rules_engine.coding.load_chain` reads and merges its `coding/` folders.

Exit codes as everywhere: 0 done, 1 a problem in the input (unknown or malformed code, a CSV
without the column, a coding folder with errors), 2 usage (bad option, missing file).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import os
import sys
from pathlib import Path
from typing import Any

import click

from ..cli import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, _regions_default, main
from ..coding import codes as C

_REPO = Path(__file__).resolve().parents[2]
REFERENCE_DATA = _REPO.parent / "shared" / "reference" / "data"
BASELINE_CODING = _REPO / "regions" / "000000" / "2024.1" / "coding"


def _fail(msg: str, code: int = EXIT_PROBLEMS) -> None:
    click.echo(msg, err=True)
    sys.exit(code)


def _base(regions: Path) -> Path:
    """Where file names in messages are relative to (as the pack loader does)."""
    try:
        regions.resolve().relative_to(Path.cwd().resolve())
        return Path.cwd()
    except ValueError:
        return regions.resolve().parent


def _load(regions: str, region: str, date: str):
    """(compiled pack, merged Coding) for the pack of `region` in force on `date`; exits on errors."""
    from ..coding import load_chain
    from ..packs.registry import PackSelectionError, PackSet
    root = Path(regions)
    if not root.is_dir():
        _fail(f"error: no such directory: {regions} (use --regions DIR)", EXIT_USAGE)
    ps = PackSet.load(root)
    try:
        pack = ps.select(region, date)
    except PackSelectionError as e:
        hint = "" if e.code != "E-NO-PACK-ON-DATE" else " — pass --date YYYY-MM-DD"
        _fail(f"error {e.code}: {e.message}{hint}")
    dirs = [ps.raws[k].dir for k in pack.chain]
    coding, problems = load_chain(dirs, _base(root), known_sources=[p.id for p in pack.provenance])
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        click.echo(f"the coding data of {pack.label} has {len(errors)} error(s); run 'rules-engine coding validate "
                   f"{regions}':", err=True)
        for p in errors[:10]:
            click.echo(p.format(), err=True)
        sys.exit(EXIT_PROBLEMS)
    return pack, coding


def _date(date: str | None) -> str:
    if date is None:
        return dt.date.today().isoformat()
    try:
        return dt.date.fromisoformat(date).isoformat()
    except ValueError:
        _fail(f"error: --date '{date}' is not a date YYYY-MM-DD", EXIT_USAGE)
        raise  # unreachable


def _facts(gend: str | None, age: float | None) -> dict | None:
    facts: dict[str, Any] = {}
    if gend is not None:
        facts["gend"] = gend
    if age is not None:
        facts["age"] = age
    return facts or None


# ------------------------------------------------------------------ CSV column mode

class _CsvJob:
    """Read a CSV, add two columns computed from one, write it atomically — or write nothing."""

    def __init__(self, column: str, in_file: Path, out_file: Path, encoding: str, new_cols: tuple[str, str]):
        if in_file.resolve() == out_file.resolve():
            _fail("error: --out must differ from --in (the input is never overwritten)", EXIT_USAGE)
        try:
            text = in_file.read_bytes().decode(encoding)
        except OSError as e:
            _fail(f"error: cannot read {in_file}: {e.strerror}", EXIT_USAGE)
        except (UnicodeDecodeError, LookupError) as e:
            _fail(f"error: {in_file} is not {encoding} text ({e}); try --encoding gbk", EXIT_PROBLEMS)
        self.text = text
        self.file = str(in_file)
        self.out = out_file
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            self.header = next(reader)
        except StopIteration:
            _fail(f"error: {in_file} is empty (it needs a header row with the column '{column}')")
        except csv.Error as e:
            _fail(f"{in_file}:1: error E-CSV-SYNTAX: {e}")
        if column not in self.header:
            from ..problems import did_you_mean
            hint = did_you_mean(column, self.header)
            _fail(f"{in_file}:1: error E-CSV-COLUMN: no column '{column}' (columns: {', '.join(self.header)})"
                  + (f"; {hint}" if hint else "") + " — nothing written")
        for c in new_cols:
            if c in self.header:
                _fail(f"{in_file}:1: error E-CSV-COLUMN: the output column '{c}' already exists; name another with "
                      "--out-column / --kind-column — nothing written", EXIT_USAGE)
        self.col = self.header.index(column)
        self.new_cols = new_cols
        self.rows: list[tuple[int, list[str]]] = []
        try:
            for rec in reader:
                self.rows.append((reader.line_num, rec))
        except csv.Error as e:
            _fail(f"{in_file}:{reader.line_num}: error E-CSV-SYNTAX: {e} — nothing written")
        self.lines = text.splitlines()

    def where(self, line: int, cell: int) -> str:
        from ..packs.source import csv_cell_col
        src = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return f"{self.file}:{line}:{csv_cell_col(src, cell)}"

    def write(self, results: list[tuple[str, str]]) -> None:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.header + list(self.new_cols))
        for (_, rec), extra in zip(self.rows, results):
            w.writerow(rec + list(extra))
        tmp = self.out.with_name(f".{self.out.name}.tmp{os.getpid()}")
        try:
            tmp.write_text(buf.getvalue(), encoding="utf-8")
            os.replace(tmp, self.out)
        except OSError as e:
            try:
                tmp.unlink()
            except OSError:
                pass
            _fail(f"error: cannot write {self.out}: {e.strerror}", EXIT_USAGE)


def _column_mode_args(codes: tuple[str, ...], column: str | None, in_file: Path | None, out_file: Path | None) -> bool:
    given = [x is not None for x in (column, in_file, out_file)]
    if any(given):
        if not all(given):
            _fail("error: --column, --in and --out go together", EXIT_USAGE)
        if codes:
            _fail("error: give either codes or --column/--in/--out, not both", EXIT_USAGE)
        return True
    if not codes:
        _fail("error: give codes to convert, or --column COL --in FILE.csv --out OUT.csv", EXIT_USAGE)
    return False


# ------------------------------------------------------------------ convert

@main.group()
def convert() -> None:
    """Convert codes: ICD editions (国临版 ↔ 医保版), hospital item codes → national codes."""


def _resolve_systems(coding, from_: str, to: str, family: str, sample: list[str]) -> tuple[str, str]:
    from ..coding.systems import UnknownSystem, resolve_systems
    try:
        return resolve_systems(coding, from_, to, family, sample)
    except UnknownSystem as e:
        _fail(f"error: --{e.which} {e}", EXIT_USAGE)
        raise  # unreachable


@convert.command("icd")
@click.argument("codes", nargs=-1)
@click.option("--from", "from_", required=True, help="edition of the codes: clinical-2.0, insurance-2.0, "
              "clinical-3.0 (procedures) or a full id icd10:clinical-2.0")
@click.option("--to", "to", required=True, help="edition to convert to")
@click.option("--family", type=click.Choice(["auto", "icd10", "icd9cm3"]), default="auto", show_default=True,
              help="diagnoses (icd10) or procedures (icd9cm3); auto: from the editions, else from the code")
@click.option("--region", default="000000", show_default=True, help="the pack whose coding data to use")
@click.option("--regions", default=_regions_default, show_default="regions", help="pack directory")
@click.option("--date", help="YYYY-MM-DD: the pack in force, and rows valid, on this date (default: today)")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--column", help="CSV mode: the column holding the codes")
@click.option("--in", "in_file", type=click.Path(path_type=Path), help="CSV mode: input file")
@click.option("--out", "out_file", type=click.Path(path_type=Path), help="CSV mode: output file (a new file)")
@click.option("--out-column", help="CSV mode: name of the converted-code column (default COL_<to>)")
@click.option("--kind-column", help="CSV mode: name of the match-kind column (default COL_match)")
@click.option("--encoding", default="utf-8-sig", show_default=True, help="CSV mode: input encoding (gbk for Excel)")
@click.option("--gend", help="patient sex (1 男 / 2 女) for rows that depend on it")
@click.option("--age", type=float, help="patient age for rows that depend on it")
def convert_icd(codes: tuple[str, ...], from_: str, to: str, family: str, region: str, regions: str, date: str | None,
                fmt: str, column: str | None, in_file: Path | None, out_file: Path | None, out_column: str | None,
                kind_column: str | None, encoding: str, gend: str | None, age: float | None) -> None:
    """Convert diagnosis (ICD-10) or procedure (ICD-9-CM-3) codes between editions.

    Every match is shown — several targets of one code, and every source a reverse lookup
    finds — with its relationship (equivalent, source-is-narrower, source-is-broader, related,
    not-mapped), its note and the table row it comes from. Exit 1 when a code is unknown or
    malformed. CSV mode writes the input plus two columns: the converted code(s) (';'-joined
    when several) and the match kind.
    """
    csv_mode = _column_mode_args(codes, column, in_file, out_file)
    date = _date(date)
    pack, coding = _load(regions, region, date)
    facts = _facts(gend, age)
    if csv_mode:
        assert column and in_file and out_file
        if not in_file.is_file():
            _fail(f"error: no such file: {in_file}", EXIT_USAGE)
        new_cols = (out_column or f"{column}_{to.partition(':')[2] or to}", kind_column or f"{column}_match")
        job = _CsvJob(column, in_file, out_file, encoding, new_cols)
        sample = [rec[job.col].strip() for _, rec in job.rows if len(rec) > job.col and rec[job.col].strip()][:1]
        src, tgt = _resolve_systems(coding, from_, to, family, sample)
        fam = src.partition(":")[0]
        cache: dict[str, tuple[str, str]] = {}
        results: list[tuple[str, str]] = []
        counts: dict[str, int] = {}
        bad = 0
        for line, rec in job.rows:
            v = rec[job.col].strip() if len(rec) > job.col else ""
            if not v:
                results.append(("", ""))
                continue
            r = cache.get(v)
            if r is None:
                why = C.code_problem(fam, v)
                if why:
                    r = ("", "malformed")
                else:
                    t = coding.translate(v, src, tgt, date=date, facts=facts)
                    r = (";".join(t.targets), t.kind)
                cache[v] = r
            if r[1] == "malformed":
                click.echo(f"{job.where(line, job.col)}: error E-CODE-FORM: {C.code_problem(fam, v)}", err=True)
            if r[1] in ("malformed", "unknown"):
                bad += 1
            counts[r[1]] = counts.get(r[1], 0) + 1
            results.append(r)
        job.write(results)
        summary = ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
        click.echo(f"{len(job.rows):,} row(s) of {in_file} converted {src} → {tgt} with {pack.label} on {date}: "
                   f"{summary or 'no codes'} → {out_file}", err=True)
        if bad:
            click.echo(f"{bad:,} row(s) with an unknown or malformed code (marked in column '{new_cols[1]}'); "
                       "the output is complete", err=True)
        sys.exit(EXIT_PROBLEMS if bad else EXIT_OK)

    src, tgt = _resolve_systems(coding, from_, to, family, list(codes))
    fam = src.partition(":")[0]
    malformed = []
    for i, c in enumerate(codes, start=1):
        why = C.code_problem(fam, c)
        if why:
            malformed.append(f"argument {i}: error E-CODE-FORM: {why}")
    if malformed:
        for m in malformed:
            click.echo(m, err=True)
        sys.exit(EXIT_PROBLEMS)
    trs = [coding.translate(c, src, tgt, date=date, facts=facts) for c in codes]
    if fmt == "json":
        from .. import jsonio
        click.echo(jsonio.dumps({"pack": pack.label, "date": date, "from": src, "to": tgt,
                                 "results": [t.to_dict() for t in trs]}))
    else:
        _print_translations(trs, src, tgt, pack.label, date)
    unknown = [t for t in trs if t.kind in ("unknown", "no-map")]
    for t in unknown:
        click.echo(f"error: {t.warning()}", err=True)
    sys.exit(EXIT_PROBLEMS if unknown else EXIT_OK)


def _print_translations(trs, src: str, tgt: str, label: str, date: str) -> None:
    from rich.table import Table
    from ..cli import _console
    t = Table(title=f"{src} → {tgt}  ({label}, {date})", title_justify="left", show_lines=False)
    for col in ("code", "kind", "target", "relationship", "target name", "note", "row"):
        t.add_column(col, overflow="fold")
    for tr in trs:
        if not tr.matches:
            t.add_row(tr.code, tr.kind, "—", "", "", "", "")
            continue
        for j, m in enumerate(tr.matches):
            t.add_row(tr.code if j == 0 else "", tr.kind if j == 0 else "", m.target_code or "—", m.relationship,
                      m.target_name, m.note, m.location + (" (reverse)" if m.reverse else ""))
    con = _console()
    con.print(t)
    for tr in trs:
        w = tr.warning()
        if w and tr.kind not in ("unknown", "no-map"):
            con.print(f"[yellow]claim warning[/yellow] {w}", markup=True, highlight=False)


@convert.command("item")
@click.argument("codes", nargs=-1)
@click.option("--region", required=True, help="region whose item map to use, e.g. 110000")
@click.option("--fixmedins-code", help="the institution (定点医药机构编号): its own rows win over the region's")
@click.option("--regions", default=_regions_default, show_default="regions", help="pack directory")
@click.option("--date", help="YYYY-MM-DD: the pack in force, and rows valid, on this date (default: today)")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--column", help="CSV mode: the column holding local codes (medins_list_codg)")
@click.option("--in", "in_file", type=click.Path(path_type=Path), help="CSV mode: input file")
@click.option("--out", "out_file", type=click.Path(path_type=Path), help="CSV mode: output file (a new file)")
@click.option("--fixmedins-column", help="CSV mode: a column holding each row's institution")
@click.option("--out-column", help="CSV mode: name of the national-code column (default COL_national)")
@click.option("--kind-column", help="CSV mode: name of the match-kind column (default COL_match)")
@click.option("--encoding", default="utf-8-sig", show_default=True, help="CSV mode: input encoding (gbk for Excel)")
def convert_item(codes: tuple[str, ...], region: str, fixmedins_code: str | None, regions: str, date: str | None,
                 fmt: str, column: str | None, in_file: Path | None, out_file: Path | None,
                 fixmedins_column: str | None, out_column: str | None, kind_column: str | None, encoding: str) -> None:
    """Map hospital item codes (medins_list_codg) to national codes (med_list_codg).

    Match kinds: institution / region (mapped by that table), not-mapped (a row says so),
    unknown (no row), not-valid (rows, none valid on the date). The national code is also looked
    up in the pack's catalogue. Exit 1 when a code maps to nothing.
    """
    csv_mode = _column_mode_args(codes, column, in_file, out_file)
    date = _date(date)
    pack, coding = _load(regions, region, date)
    if csv_mode:
        assert column and in_file and out_file
        if not in_file.is_file():
            _fail(f"error: no such file: {in_file}", EXIT_USAGE)
        new_cols = (out_column or f"{column}_national", kind_column or f"{column}_match")
        job = _CsvJob(column, in_file, out_file, encoding, new_cols)
        fix_col = None
        if fixmedins_column:
            if fixmedins_column not in job.header:
                _fail(f"{in_file}:1: error E-CSV-COLUMN: no column '{fixmedins_column}' (columns: "
                      f"{', '.join(job.header)}) — nothing written")
            fix_col = job.header.index(fixmedins_column)
        results, counts, bad = [], {}, 0
        for _line, rec in job.rows:
            v = rec[job.col].strip() if len(rec) > job.col else ""
            if not v:
                results.append(("", ""))
                continue
            fix = (rec[fix_col].strip() if fix_col is not None and len(rec) > fix_col else "") or fixmedins_code
            m = coding.map_item(v, fix or None, date=date)
            results.append((m.national_code or "", m.kind))
            counts[m.kind] = counts.get(m.kind, 0) + 1
            bad += not m.ok
        job.write(results)
        summary = ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
        click.echo(f"{len(job.rows):,} row(s) of {in_file} mapped with {pack.label} on {date}: {summary or 'no codes'}"
                   f" → {out_file}", err=True)
        if bad:
            click.echo(f"{bad:,} row(s) map to no national code (column '{new_cols[1]}' says why); the output is "
                       "complete", err=True)
        sys.exit(EXIT_PROBLEMS if bad else EXIT_OK)

    results = [coding.map_item(c, fixmedins_code, date=date) for c in codes]
    cat = {}
    for m in results:
        if m.national_code:
            e = pack.lookup(m.national_code, date)
            cat[m.local_code] = (f"{e.category} {e.name}" if e else f"not in the catalogue on {date}")
    if fmt == "json":
        from .. import jsonio
        click.echo(jsonio.dumps({"pack": pack.label, "date": date, "region": region, "fixmedins_code": fixmedins_code,
                                 "results": [dict(m.to_dict(), catalogue=cat.get(m.local_code)) for m in results]}))
    else:
        from rich.table import Table
        from ..cli import _console
        t = Table(title=f"local → national item codes  ({pack.label}, {date}"
                        + (f", institution {fixmedins_code}" if fixmedins_code else "") + ")", title_justify="left")
        for col in ("local code", "kind", "national code", "national name", "catalogue", "row / reason"):
            t.add_column(col, overflow="fold")
        for m in results:
            t.add_row(m.local_code, m.kind, m.national_code or "—", m.national_name, cat.get(m.local_code, ""),
                      m.location if m.ok else m.reason)
        _console().print(t)
    for m in results:
        if not m.ok:
            click.echo(f"error: {m.reason}", err=True)
    sys.exit(EXIT_OK if all(m.ok for m in results) else EXIT_PROBLEMS)


# ------------------------------------------------------------------ coding data

@main.group()
def coding() -> None:
    """Coding data of packs: import published edition tables, rebuild the baseline, validate."""


def _parse_columns(spec: str | None) -> dict[str, str] | None:
    if not spec:
        return None
    out = {}
    for piece in spec.split(","):
        k, sep, v = piece.partition("=")
        if not sep or k.strip() not in ("source_code", "source_name", "target_code", "target_name"):
            _fail(f"error: --columns '{piece}': write source_code=COL,source_name=COL,target_code=COL,"
                  "target_name=COL", EXIT_USAGE)
        out[k.strip()] = v.strip()
    if len(out) != 4:
        _fail("error: --columns needs all of source_code, source_name, target_code, target_name", EXIT_USAGE)
    return out


@coding.command("import")
@click.argument("family", type=click.Choice(list(C.FAMILIES)))
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--columns", help="source layout when not a known one: source_code=COL,source_name=COL,"
              "target_code=COL,target_name=COL")
@click.option("--report", type=click.Path(path_type=Path), help="also write the import report (Markdown) here")
def coding_import(family: str, source: Path, out: Path, columns: str | None, report: Path | None) -> None:
    """Import a published edition-mapping table (国临版 → 医保版) as a coding table.

    Each row's relationship is derived from what the row shows (docs/coding.md); repairs and
    rejected rows are listed with their line in the report. The output is written whole or not
    at all.
    """
    from ..coding import importer as I
    try:
        raw = source.read_bytes()
    except OSError as e:
        _fail(f"error: cannot read {source}: {e.strerror}", EXIT_USAGE)
    try:
        rep = I.import_table(raw, source.name, family, _parse_columns(columns))
    except I.ImportError_ as e:
        _fail(f"{source}: error E-IMPORT: {e}")
    files = {out.name: I.table_bytes(rep.rows)}
    I.write_files(out.parent if str(out.parent) else Path("."), files)
    text = I.report_markdown([(rep, out.name)])
    if report:
        I.write_files(report.parent if str(report.parent) else Path("."), {report.name: text.encode("utf-8")})
    byr = rep.by_relationship
    click.echo(f"{source}: {rep.rows_in:,} rows → {out}: " + ", ".join(f"{k} {byr[k]:,}" for k in byr)
               + f"; repaired {len(rep.repairs)}, rejected {len(rep.rejects)}", err=True)
    for line, why in rep.rejects:
        click.echo(f"{source}:{line}: rejected: {why}", err=True)
    sys.exit(EXIT_OK)


@coding.command("rebuild")
@click.option("--data", type=click.Path(path_type=Path), default=REFERENCE_DATA, show_default=True,
              help="the reference data folder (shared/reference/data)")
@click.option("--out", type=click.Path(path_type=Path), default=BASELINE_CODING, show_default=True,
              help="the baseline's coding folder")
@click.option("--check", is_flag=True, help="write nothing; exit 1 when the files on disk differ from a rebuild")
def coding_rebuild(data: Path, out: Path, check: bool) -> None:
    """Rebuild the national baseline's ICD tables and IMPORT-REPORT.md from the reference data."""
    from ..coding import importer as I
    if not data.is_dir():
        _fail(f"error: no such directory: {data} (use --data DIR)", EXIT_USAGE)
    try:
        files = I.rebuild(data, out, write=not check)
    except I.ImportError_ as e:
        _fail(f"error E-IMPORT: {e}")
    if check:
        differ = [n for n, b in files.items() if not (out / n).is_file() or (out / n).read_bytes() != b]
        for n in differ:
            click.echo(f"{out / n}: differs from a rebuild of {data}", err=True)
        click.echo(f"{len(files) - len(differ)} of {len(files)} file(s) identical to a rebuild", err=True)
        sys.exit(EXIT_PROBLEMS if differ else EXIT_OK)
    for n, b in files.items():
        click.echo(f"wrote {out / n} ({len(b):,} bytes)", err=True)


@coding.command("validate")
@click.argument("regions", default=_regions_default, required=False)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def coding_validate(regions: str, fmt: str) -> None:
    """Check the coding folders of every pack, each merged over the chain it extends."""
    from ..coding import load_coding, merge_chain
    from ..packs.registry import PackSet
    from ..problems import Problems
    root = Path(regions)
    if not root.exists():
        _fail(f"error: no such directory: {regions}", EXIT_USAGE)
    ps = PackSet.load(root)
    base = _base(root if root.is_dir() else root.parent)
    problems = Problems()
    seen: set = set()

    def add(ps_: list) -> None:
        for p in ps_:
            k = (p.file, p.line, p.col, p.code, p.message)
            if k not in seen:
                seen.add(k)
                problems.add(p)

    # the provenance ids a pack's coding folder may cite: its own pack.yaml's and its ancestors'
    known: dict[str, set[str]] = {}
    for pack in ps.packs():
        for i, k in enumerate(pack.chain):
            known.setdefault(k, set()).update(p.id for p in pack.provenance if p.pack in pack.chain[:i + 1])
    parts: dict[str, Any] = {}
    folders = 0
    for key, raw in sorted(ps.raws.items()):
        part, ps_ = load_coding(raw.dir, base, known_sources=known.get(key))
        folders += part is not None
        add(ps_)
        parts[key] = part
    from ..coding.model import I_FILE, I_LINE, I_NATIONAL
    from ..problems import Problem
    for pack in ps.packs():
        merged, ps_ = merge_chain([parts.get(k) for k in pack.chain])
        add(ps_)
        if merged.items is None:
            continue
        for r in merged.items.rows:  # a national code the pack's catalogue does not know is likely a typo
            code = r[I_NATIONAL]
            if code and code not in pack.catalogue and not any(code[:n] in pack.catalogue
                                                               for n in pack.prefix_lengths if n < len(code)):
                add([Problem("W-CODING-CATALOGUE", f"national code {code} is not in the catalogue of {pack.key}",
                             file=merged.items.files[r[I_FILE]], line=r[I_LINE], col=1, severity="warning",
                             hint="check the code, or add the entry to the catalogue")])
    items = problems.sorted()
    errors = [p for p in items if p.severity == "error"]
    if fmt == "json":
        from .. import jsonio
        click.echo(jsonio.dumps({"problems": [p.to_dict() for p in items], "errors": len(errors),
                                 "warnings": len(items) - len(errors), "coding_folders": folders}))
    else:
        for p in items:
            click.echo(p.format())
        tail = f"{folders} coding folder(s) checked: {len(errors)} error(s), {len(items) - len(errors)} warning(s)"
        click.echo(tail if items else f"{tail} — clean", err=bool(items))
    sys.exit(EXIT_PROBLEMS if errors else EXIT_OK)
