"""`rules-engine audit CLAIM.json [MORE…]`: run the smart-audit rules (智能审核) alone.

The rules are those of the pack in force for the claim's treatment place and date (the pack that
prices its lines: 就医地目录) and of the packs it extends — each pack's `audit/` folder, merged
along the chain. A claim may carry the person's recent lines as `history` (docs/audit.md).

Exit codes as for every command: 0 audited (hits are findings, not errors), 1 a claim or a pack
has problems (each named with its path or file:line:col), 2 usage.
"""
from __future__ import annotations

import sys
from pathlib import Path
import click

from ..cli import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, _claim_failure, _console, _read_claims, _regions_default, main


@main.command()
@click.argument("claims", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--regions", default=_regions_default, show_default="regions", help="pack directory")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def audit(claims: tuple[Path, ...], regions: str, fmt: str) -> None:
    """Audit claims (JSON files; a file may hold a list): duplicate charges, sex / age / insurance /
    inpatient / institution-level restrictions, counts per day or N days, exclusive items, 限定诊断,
    支付疗程. Every hit names its rule, the lines involved and the rule's source row."""
    from .. import jsonio
    from ..audit.run import audit_claim
    from ..model.claim import SettlementError
    from ..packs.registry import PackSet

    root = Path(regions)
    if not root.exists():
        click.echo(f"error: no such directory: {regions} (use --regions DIR)", err=True)
        sys.exit(EXIT_USAGE)
    for f in claims:
        if not f.exists():
            click.echo(f"error: no such file: {f}", err=True)
            sys.exit(EXIT_USAGE)
    packs = PackSet.load(root)
    if packs.problems.has_errors():
        click.echo(f"the packs under {regions} have errors; run 'rules-engine validate {regions}':", err=True)
        for p in packs.problems.errors[:10]:
            click.echo(p.format(), err=True)
        sys.exit(EXIT_PROBLEMS)
    results: list[dict] = []
    failed = False
    for name, data in _read_claims(claims):
        if not isinstance(data, dict):
            _claim_failure(name, "E-CLAIM", "a claim must be a JSON object", [], fmt)
            failed = True
            continue
        try:
            r = audit_claim(packs, data)
        except SettlementError as e:
            _claim_failure(name, e.code, e.message, e.errors, fmt)
            failed = True
            continue
        results.append({"claim": name, **r})
    if fmt == "json":
        click.echo(jsonio.dumps(results))
    else:
        con = _console()
        for r in results:
            _print(con, r)
    sys.exit(EXIT_PROBLEMS if failed else EXIT_OK)


def _print(con, r: dict) -> None:
    from rich.table import Table

    con.print(f"[bold]{r['claim']}[/bold]  audit rules of {r['pack']} ({r['rules']:,} rules): "
              f"[bold]{r['verdict']}[/bold], {len(r['hits'])} hit(s)")
    if not r["hits"]:
        return
    t = Table(show_lines=False)
    for col in ("rule", "action", "lines", "message", "why", "source"):
        t.add_column(col, overflow="fold")
    for h in r["hits"]:
        lines = ", ".join(h["lines"])
        also = [f"with {', '.join(h['related'])}"] if h.get("related") else []
        if h.get("history"):
            also.append("history " + ", ".join(f"#{x['index']} {x['fee_ocur_time'][:10]}" for x in h["history"]))
        t.add_row(h["rule"], h["action"], lines + ("\n" + "; ".join(also) if also else ""), h["message"],
                  h.get("detail", ""), h.get("ref_text", "") or h.get("rule_at", ""))
    con.print(t)
