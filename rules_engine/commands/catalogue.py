"""`rules-engine catalogue …`: import a published catalogue spreadsheet into a pack.

    rules-engine catalogue import FILE.xlsx|csv --kind drug --region 110000 --into regions/110000/2025.1
        [--mapping NAME|M.yaml] [--file catalogue/drugs.csv] [--report R.json|R.md]
        [--codes CODES.csv --codes-mapping NAME|M.yaml] [--set FIELD=VALUE] [--keep-going] [--dry-run]
    rules-engine catalogue mappings          # the shipped mappings

Exit codes as everywhere: 0 written (or would be, with --dry-run), 1 problems in the input (nothing
written), 2 usage (a missing file, an unknown mapping, the wrong pack).
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ..cli import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, main


@main.group()
def catalogue() -> None:
    """Catalogues: import an authority's spreadsheet into a pack (see docs/catalogue-import.md)."""


def _load_mapping(ref: str, what: str):
    from ..catalogue.mapping import load_mapping, resolve_mapping_path, shipped_mappings
    path = resolve_mapping_path(ref)
    if path is None:
        click.echo(f"error: {what} '{ref}' is neither a mapping file nor a shipped mapping "
                   f"({', '.join(shipped_mappings())})", err=True)
        sys.exit(EXIT_USAGE)
    m, problems = load_mapping(path, str(path) if Path(ref).suffix in (".yaml", ".yml") else f"mappings/{path.name}")
    for p in problems:
        click.echo(p.format(), err=True)
    if m is None:
        click.echo(f"the {what} has errors; nothing was imported", err=True)
        sys.exit(EXIT_PROBLEMS)
    return m


@catalogue.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--kind", type=click.Choice(["drug", "service", "consumable"]), required=True)
@click.option("--region", required=True, help="the pack's region code (checked against pack.yaml)")
@click.option("--into", "into", type=click.Path(path_type=Path), required=True, help="the pack folder")
@click.option("--mapping", "mapping_ref", default=None,
              help="a mapping file, or the name of a shipped mapping (default: nhsa-drug-catalogue-xlsx for .xlsx "
                   "drugs; see 'rules-engine catalogue mappings')")
@click.option("--file", "target", default=None, help="catalogue file inside the pack (default catalogue/<kind>s.csv)")
@click.option("--report", "report_path", type=click.Path(path_type=Path), default=None,
              help="write the report to R.json or R.md")
@click.option("--codes", type=click.Path(path_type=Path), default=None,
              help="a product-code table to link rows without codes to (mappings with a 'link' section)")
@click.option("--codes-mapping", "codes_mapping_ref", default=None, help="the code table's mapping")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="a constant for every row, e.g. category=乙")
@click.option("--keep-going", is_flag=True, help="write the valid rows even when some are rejected (listed)")
@click.option("--dry-run", is_flag=True, help="read, check and report; write nothing")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def import_(file: Path, kind: str, region: str, into: Path, mapping_ref: str | None, target: str | None,
            report_path: Path | None, codes: Path | None, codes_mapping_ref: str | None, sets: tuple[str, ...],
            keep_going: bool, dry_run: bool, fmt: str) -> None:
    """Import FILE (an authority's catalogue spreadsheet) into the pack at --into."""
    from .. import jsonio
    from ..catalogue.importer import ImportRequest, run_import
    from ..catalogue.mapping import ENTRY_FIELDS
    if not file.exists():
        click.echo(f"error: no such file: {file}", err=True)
        sys.exit(EXIT_USAGE)
    if not into.is_dir():
        click.echo(f"error: no such pack folder: {into}", err=True)
        sys.exit(EXIT_USAGE)
    if mapping_ref is None:
        mapping_ref = {"drug": "nhsa-drug-catalogue-xlsx"}.get(kind) if file.suffix.lower() == ".xlsx" else None
        if mapping_ref is None:
            click.echo("error: give --mapping (a mapping file or a shipped mapping: rules-engine catalogue mappings)",
                       err=True)
            sys.exit(EXIT_USAGE)
    overrides: dict[str, str] = {}
    for s in sets:
        k, eq, v = s.partition("=")
        if not eq or k not in ENTRY_FIELDS:
            click.echo(f"error: --set {s}: write FIELD=VALUE with FIELD one of {', '.join(ENTRY_FIELDS)}", err=True)
            sys.exit(EXIT_USAGE)
        overrides[k] = v
    m = _load_mapping(mapping_ref, "mapping")
    cm = _load_mapping(codes_mapping_ref, "codes mapping") if codes_mapping_ref else None
    if codes is not None and not codes.exists():
        click.echo(f"error: no such file: {codes}", err=True)
        sys.exit(EXIT_USAGE)
    req = ImportRequest(file=file, kind=kind, region=region, into=into, mapping=m, target=target, codes=codes,
                        codes_mapping=cm, keep_going=keep_going, dry_run=dry_run, overrides=overrides)
    res = run_import(req)
    rep = res.report
    if report_path is not None:
        text = rep.to_json() if report_path.suffix.lower() == ".json" else rep.to_markdown()
        try:
            from ..catalogue.writer import write_all
            write_all({report_path: text})
        except OSError as e:
            click.echo(f"error: cannot write the report {report_path}: {e.strerror}", err=True)
            sys.exit(EXIT_USAGE)
    if fmt == "json":
        click.echo(jsonio.dumps({"ok": res.ok, "report": rep.to_dict(),
                                 "problems": [p.to_dict() for p in res.problems]}))
    else:
        for p in res.problems:
            click.echo(p.format(), err=True)
        for r in rep.rejected[:20]:
            click.echo(f"{rep.source}:{r.row}: rejected: {r.column}: {r.reason}"
                       + (f" (value '{r.value}')" if r.value else "") + (f"\n    hint: {r.hint}" if r.hint else ""),
                       err=True)
        if len(rep.rejected) > 20:
            click.echo(f"… {len(rep.rejected) - 20} more rejected cells (see the report)", err=True)
        click.echo(rep.to_text())
        if res.ok:
            click.echo(("would write: " if dry_run else "wrote: ") + ", ".join(rep.written))
        else:
            click.echo("nothing was written", err=True)
    if res.usage_error:
        sys.exit(EXIT_USAGE)
    sys.exit(EXIT_OK if res.ok else EXIT_PROBLEMS)


@catalogue.command("mappings")
def mappings() -> None:
    """List the mappings shipped with rules-engine (usable by name with --mapping)."""
    from ..catalogue.mapping import load_mapping, shipped_mappings
    for name, path in shipped_mappings().items():
        m, _ = load_mapping(path)
        title = m.title if m else "(invalid)"
        conf = f" [{m.confidence}]" if m and m.confidence else ""
        click.echo(f"{name:34} {title}{conf}")
