"""`rules-engine test [PATH…]`: run the tests beside the packs."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import jsonio
from ..cli import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, _regions_default, main


@main.command("test")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("-k", "keyword", default=None, help="only cases whose name or keywords contain this text")
@click.option("-v", "--verbose", is_flag=True, help="list passing cases too")
def packtest(paths: tuple[Path, ...], fmt: str, keyword: str | None, verbose: bool) -> None:
    """Run pack tests (regions/<region>/<version>/tests/*.yaml): PASS, FAIL (expected vs actual, and why),
    ERROR (a broken test). Exit 1 if any case did not pass."""
    from ..packtest import PASS, find_test_files, run_file, summarize
    paths = paths or (Path(_regions_default()),)
    for p in paths:
        if not p.exists():
            click.echo(f"error: no such file or directory: {p}", err=True)
            sys.exit(EXIT_USAGE)
    files = find_test_files(paths)
    results = []
    for f in files:
        for r in run_file(f):
            if keyword and keyword not in r.name and keyword not in r.keywords:
                continue
            results.append(r)
    counts = summarize(results)
    if fmt == "json":
        click.echo(jsonio.dumps({"files": len(files), **counts, "results": [r.to_dict() for r in results]}))
    else:
        for r in results:
            if r.status != PASS or verbose:
                click.echo(r.format())
        click.echo(f"{len(files)} file(s): {counts['PASS']} passed, {counts['FAIL']} failed, {counts['ERROR']} error(s)")
    sys.exit(EXIT_OK if results and counts["FAIL"] == counts["ERROR"] == 0 else EXIT_PROBLEMS)
