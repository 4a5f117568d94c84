"""`rules-engine replay JOURNAL --at SEQ`: settle a recorded decision again and compare.

Exit 0: the same settlement. 1: it differs, or the replay was refused (a recorded pack version
is missing or its files changed — restore it and pass --regions). 2: usage.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..cli import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, _regions_default, main


@main.command()
@click.argument("journal", type=click.Path(path_type=Path))
@click.option("--at", "seq", type=int, required=True, help="the entry's seq (X-Decision-Seq of the response)")
@click.option("--regions", default=_regions_default, show_default="regions",
              help="pack directory holding the recorded pack versions")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def replay(journal: Path, seq: int, regions: str, fmt: str) -> None:
    """Recompute a decision-log entry with its recorded pack versions; say whether it still matches."""
    from ..journal import Journal, JournalError
    from ..service.decisions import replay as _replay
    if not journal.exists():
        click.echo(f"error: no such journal: {journal}", err=True)
        sys.exit(EXIT_USAGE)
    try:
        with Journal(journal, create=False) as j:
            entry = j.get(seq)
    except JournalError as e:
        click.echo(f"error {e.code}: {e.message}", err=True)
        sys.exit(EXIT_PROBLEMS)
    if entry is None:
        click.echo(f"error: no entry seq {seq} in {journal}", err=True)
        sys.exit(EXIT_PROBLEMS)
    outcome = _replay(entry, regions)
    if fmt == "json":
        click.echo(json.dumps(outcome.to_dict(), ensure_ascii=False, indent=2))
    else:
        packs = ", ".join(f"{role} {p.get('region')}@{p.get('version')}#{str(p.get('hash'))[:12]}"
                          for role, p in outcome.packs.items())
        stream_err = outcome.status != "match"
        click.echo(f"{outcome.status}: {outcome.message}", err=stream_err)
        if packs:
            click.echo(f"  recorded packs: {packs}", err=stream_err)
        for d in outcome.differences:
            click.echo(f"  {d['field']}: recorded {d['recorded']}, now {d['now']}", err=stream_err)
    sys.exit(EXIT_OK if outcome.ok else EXIT_PROBLEMS)
