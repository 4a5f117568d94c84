"""`rules-engine batch` and `rules-engine impact`: many claims at once, and what a change costs.

    rules-engine batch out/claims --out out/settlements
    rules-engine impact --claims out/claims --base 110000@2025.1 --reform reform.yaml --format html --out report.html

Exit codes as everywhere: 0 done, 1 problems in the input (located: table, column, row), 2 usage,
3 an internal error — including the vectorised path disagreeing with the per-claim path on a
sampled claim, which stops the run before anything is written.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from ..cli import EXIT_INTERNAL, EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, _regions_default, main


def _context(regions: str, pinned=None, label: str = ""):
    from ..api import PackLoadError
    from ..batch.vectorised import PackContext
    if not Path(regions).exists():
        click.echo(f"error: no such directory: {regions} (use --regions DIR)", err=True)
        sys.exit(EXIT_USAGE)
    try:
        return PackContext.from_directory(regions, pinned, label)
    except PackLoadError as e:
        click.echo(f"the packs under {regions} have errors; run 'rules-engine validate {regions}':", err=True)
        for p in [p for p in e.problems if p.severity == "error"][:10]:
            click.echo(p.format(), err=True)
        sys.exit(EXIT_PROBLEMS)


def _input(path: Path, feedetail: Path | None):
    from ..batch.tables import BatchInputError, read_claims_input
    try:
        return read_claims_input(path, feedetail)
    except BatchInputError as e:
        _input_error(e)


def _input_error(e) -> None:
    click.echo(f"error {e.problems[0].code if e.problems else e.code}: the batch input has problems; nothing was "
               "written:", err=True)
    click.echo(e.format(), err=True)
    sys.exit(EXIT_PROBLEMS)


def _options(**kw):
    from ..batch.runner import Options
    return Options(**kw)


_common = [
    click.option("--regions", default=_regions_default, show_default="regions", help="pack directory"),
    click.option("--feedetail", type=click.Path(path_type=Path), help="the fee-line table, when CLAIMS is a claims "
                 "file whose feedetail file is not beside it"),
    click.option("--partition-lines", type=click.IntRange(min=1), default=1_000_000, show_default=True,
                 help="fee lines per partition when the input has to be split"),
    click.option("--workers", type=click.IntRange(min=0), default=None,
                 help="Dask local worker processes (0: in this process; default: a local cluster for inputs above "
                      "5 million lines)"),
    click.option("--scheduler", metavar="ADDRESS", help="a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (input and "
                 "output paths must be visible to its workers)"),
    click.option("--repartition", is_flag=True, help="split by person even if the Parquet input says it is"),
    click.option("--verify", type=click.IntRange(min=0), default=4, show_default=True,
                 help="people per partition re-settled by the per-claim path and compared (0: none)"),
    click.option("--quiet", "-q", is_flag=True, help="no progress bar"),
]


def _with(opts):
    def deco(f):
        for o in reversed(opts):
            f = o(f)
        return f
    return deco


@main.command()
@click.argument("claims", type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="output folder (made atomically)")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True)
@click.option("--line-results", is_flag=True, help="also write the per-line result table (2204 split)")
@click.option("--accumulators", is_flag=True, help="also write each claim's accumulators after it (acc.* columns)")
@click.option("--force", is_flag=True, help="replace OUT if it exists (only once the new output is complete)")
@_with(_common)
def batch(claims: Path, out: Path, fmt: str, line_results: bool, accumulators: bool, force: bool, regions: str,
          feedetail: Path | None, partition_lines: int, workers: int | None, scheduler: str | None, repartition: bool,
          verify: int, quiet: bool) -> None:
    """Settle a table of claims: CLAIMS is a folder with claims + feedetail (Parquet or CSV), a claims
    file, or a JSON file of claims. Writes setlinfo, setldetail (and result) under OUT, plus
    summary.json — all or nothing."""
    from ..batch.runner import Progress, run_batch
    from ..batch.tables import BatchInputError
    from ..batch.vectorised import BatchDivergence
    inp = _input(claims, feedetail)
    if out.exists() and not force:
        click.echo(f"error: {out} exists (use --force to replace it once the new output is complete)", err=True)
        sys.exit(EXIT_USAGE)
    ctx = _context(regions)
    ctx.by_value = bool(scheduler)  # a remote cluster may not see this folder: send the compiled packs
    opts = _options(want_lines=line_results, want_accumulators=accumulators, verify=verify,
                    partition_lines=partition_lines, fmt=fmt, workers=workers, scheduler=scheduler,
                    repartition=repartition, force=force)
    progress = Progress(enabled=not quiet and sys.stderr.isatty() or False)
    try:
        s = run_batch(inp, ctx, out, opts, progress=progress,
                      log=(lambda m: None) if quiet else (lambda m: click.echo(m, err=True)))
    except BatchInputError as e:
        _input_error(e)
    except BatchDivergence as e:
        click.echo(f"error {e.code}: {e}", err=True)
        sys.exit(EXIT_INTERNAL)
    except FileExistsError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_USAGE)
    if not quiet:
        rate = s.lines / s.wall_seconds if s.wall_seconds else 0
        click.echo(f"settled {s.claims:,} claims ({s.lines:,} fee lines) in {s.partitions} partition(s) on "
                   f"{s.scheduler}: {s.wall_seconds:.1f} s, {rate:,.0f} lines/s; "
                   f"{s.fallback_claims:,} by the per-claim path; {s.verified_claims:,} re-checked against it → {out}",
                   err=True)
    sys.exit(EXIT_OK)


@main.command()
@click.option("--claims", "claims", required=True, type=click.Path(path_type=Path), help="claims (as for batch)")
@click.option("--base", "base", required=True, metavar="REGION@VERSION", help="the pack the claims are settled by now")
@click.option("--reform", "reform", required=True, metavar="PATH|REGION@VERSION",
              help="a YAML overlay on the base pack, or another version")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "html"]), default="table", show_default=True)
@click.option("--out", "out", type=click.Path(path_type=Path), help="write the report here (default: stdout)")
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True, help="largest changes listed")
@_with(_common)
def impact(claims: Path, base: str, reform: str, fmt: str, out: Path | None, top: int, regions: str,
           feedetail: Path | None, partition_lines: int, workers: int | None, scheduler: str | None,
           repartition: bool, verify: int, quiet: bool) -> None:
    """What a policy change costs: the claims settled under --base and --reform; fund totals, who pays
    more or less, where the change falls."""
    from .. import jsonio
    from ..batch.impact import combine, run_impact, to_json_data
    from ..batch.overlay import OverlayError, apply_overlay, read_overlay, resolve_pack
    from ..batch.runner import Progress
    from ..batch.tables import BatchInputError
    from ..batch.vectorised import BatchDivergence, PackContext, PackSource
    inp = _input(claims, feedetail)
    ctx = _context(regions)
    ps = ctx.source.packs
    changes: list[dict] = []
    try:
        base_pack = resolve_pack(ps, base, "--base")
        region = base_pack.info.region
        rp = Path(reform)
        if rp.suffix.lower() in (".yaml", ".yml") or rp.exists():
            from ..packs.registry import PackSet
            full = PackSet.load(regions)  # the overlay needs the packs' documents, not only their compiled form
            ov = read_overlay(rp)
            reform_pack = apply_overlay(full, resolve_pack(full, base, "--base"), ov)
            reform_name = ov.name
            changes = [{"file": c.file if not c.pack else f"{c.pack}:{c.file}", "path": c.path, "op": c.op,
                        "value": "" if c.op == "remove" else str(c.value)} for c in ov.changes]
            for w in ov.warnings:
                click.echo(w.format(), err=True)
        else:
            reform_pack = resolve_pack(ps, reform, "--reform")
            reform_name = f"{reform_pack.key} instead of {base_pack.key}"
            if reform_pack.info.region != region:
                click.echo(f"error: --reform {reform} is not a pack of region {region}", err=True)
                sys.exit(EXIT_USAGE)
    except OverlayError as e:
        click.echo("error: the reform cannot be used:", err=True)
        for p in e.problems:
            click.echo(p.format(), err=True)
        sys.exit(EXIT_PROBLEMS)
    base_ctx = PackContext(PackSource(ps, {region: base_pack}), "base")
    reform_ctx = PackContext(PackSource(ps, {region: reform_pack}), "reform")
    opts = _options(verify=verify, partition_lines=partition_lines, workers=workers, scheduler=scheduler,
                    repartition=repartition)
    progress = Progress(enabled=not quiet and sys.stderr.isatty() or False, label="impact")
    try:
        parts = run_impact(inp, base_ctx, reform_ctx, region, opts, progress=progress, top=top,
                           log=(lambda m: None) if quiet else (lambda m: click.echo(m, err=True)))
    except BatchInputError as e:
        _input_error(e)
    except BatchDivergence as e:
        click.echo(f"error {e.code}: {e}", err=True)
        sys.exit(EXIT_INTERNAL)
    rep = combine(parts, region=region, base_pack=base_pack, reform_pack=reform_pack, reform_name=reform_name,
                  changes=changes, top=top)
    if rep["claims"] == 0:
        click.echo(f"error: no claim of the input is insured in region {region} ({rep['skipped_claims']:,} insured "
                   "elsewhere)", err=True)
        sys.exit(EXIT_PROBLEMS)
    if fmt == "json":
        text = jsonio.dumps(to_json_data(rep))
    elif fmt == "html":
        from ..batch.report import render_html
        text = render_html(rep)
    else:
        text = _table_text(rep)
    if out is not None:
        tmp = out.with_name(out.name + ".partial")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
        click.echo(f"wrote {out}", err=True)
        if fmt != "table":
            click.echo("\n".join(rep["summary"]), err=True)
    else:
        click.echo(text)
    sys.exit(EXIT_OK)


def _table_text(rep: dict) -> str:
    import io

    from rich.console import Console
    from rich.table import Table
    buf = io.StringIO()
    con = Console(file=buf, width=120, soft_wrap=False, highlight=False)
    for line in rep["summary"]:
        con.print(line, markup=False)
    con.print()

    def table(title, rows, cols):
        t = Table(title=title, title_justify="left")
        for _, h in cols:
            t.add_column(h, justify="left")
        for r in rows:
            t.add_row(*[_cell(r.get(k)) for k, _ in cols])
        con.print(t)

    table("fund totals by fund_pay_type (yuan)", rep["by_fund_pay_type"],
          [("fund_pay_type", "fund_pay_type"), ("name", "name"), ("base", "base"), ("reform", "reform"),
           ("delta", "Δ"), ("pct", "Δ %")])
    table("settlement totals (yuan)", rep["totals"], [("field", "field"), ("base", "base"), ("reform", "reform"),
                                                      ("delta", "Δ"), ("pct", "Δ %")])
    for g, rows in rep["by"].items():
        table(f"by {g}", rows, [("key", g), ("name", "name"), ("claims", "claims"), ("changed", "changed"),
                                ("fund_delta", "Δ fund"), ("psn_delta", "Δ personal"), ("pct", "Δ %")])
    p = rep["people"]
    table("people", [
        {"w": "pay less", "n": p["pay_less"], "t": p["less_total"], "m": p["less_median"], "x": p["less_max"]},
        {"w": "pay more", "n": p["pay_more"], "t": p["more_total"], "m": p["more_median"], "x": p["more_max"]},
        {"w": "unchanged", "n": p["unchanged"]}], [("w", ""), ("n", "people"), ("t", "total Δ"), ("m", "median"),
                                                   ("x", "largest")])
    table("largest changes: claims", rep["largest_claims"],
          [("mdtrt_id", "mdtrt_id"), ("psn_no", "psn_no"), ("med_type", "med_type"), ("hosp_lv", "lv"),
           ("medfee", "medfee"), ("fund_base", "fund base"), ("fund_reform", "fund reform"), ("delta", "Δ")])
    table("largest changes: people", rep["largest_people"],
          [("psn_no", "psn_no"), ("claims", "claims"), ("person_type", "type"), ("psn_delta", "Δ personal"),
           ("fund_delta", "Δ fund")])
    return buf.getvalue()


def _cell(v) -> str:
    from decimal import Decimal
    if v is None:
        return "—"
    if isinstance(v, Decimal):
        return f"{v:,.2f}"
    if isinstance(v, float):
        return f"{v:+.2f} %"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)
