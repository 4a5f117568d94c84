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
from typing import Any

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
    from ..audit import check_line_times, claim_facts, load_chain, parse_history
    from ..audit import audit as run_audit
    from ..model.claim import ClaimError, SettlementError, parse_claim
    from ..packs.registry import PackSet
    from ..settle.core import select_pack

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
    items = _read_claims(claims)
    rule_sets: dict[tuple[str, ...], Any] = {}
    results: list[dict] = []
    failed = False
    for name, data in items:
        if not isinstance(data, dict):
            _claim_failure(name, "E-CLAIM", "a claim must be a JSON object", [], fmt)
            failed = True
            continue
        body = {k: v for k, v in data.items() if k != "history"}
        try:
            # every problem of the claim and of its history at once, never the first only
            errs = []
            history = claim = None
            try:
                history = parse_history(data.get("history"))
            except ClaimError as e:
                errs += e.errors
            try:
                claim = parse_claim(body)
            except ClaimError as e:
                errs = e.errors + errs
            errs += check_line_times(body)
            if errs:
                raise ClaimError(f"the claim has {len(errs)} problem{'s' if len(errs) != 1 else ''}: "
                                 + "; ".join(f"{e.path}: {e.message}" for e in errs[:3])
                                 + (" …" if len(errs) > 3 else ""), errs)
            pack = select_pack(packs, claim.mdtrtarea_admvs, claim, "treatment")
        except SettlementError as e:
            _claim_failure(name, e.code, e.message, e.errors, fmt)
            failed = True
            continue
        if pack.chain not in rule_sets:
            dirs = [packs.raws[k].dir for k in pack.chain]
            rules, problems = load_chain(dirs, packs._base, named=dict(pack.conditions),
                                         known_sources={p.id for p in pack.provenance})
            errors = [p for p in problems if p.severity == "error"]
            for p in problems:
                if p.severity == "warning":
                    click.echo(p.format(with_source=False), err=True)
            if errors:
                click.echo(f"the audit rules of {' → '.join(pack.chain)} have {len(errors)} error(s):", err=True)
                for p in errors[:20]:
                    click.echo(p.format(), err=True)
                sys.exit(EXIT_PROBLEMS)
            rule_sets[pack.chain] = rules
        rules = rule_sets[pack.chain]
        hits = run_audit(rules, claim, claim_facts(claim), history)
        results.append({"claim": name, "pack": pack.label, "chain": list(pack.chain), "rules": len(rules),
                        "verdict": _verdict(hits), "hits": [h.to_dict(history) for h in hits],
                        "_lines": {ln.feedetl_sn: ln for ln in claim.lines}})
    if fmt == "json":
        click.echo(jsonio.dumps([{k: v for k, v in r.items() if not k.startswith("_")} for r in results]))
    else:
        con = _console()
        for r in results:
            _print(con, r)
    sys.exit(EXIT_PROBLEMS if failed else EXIT_OK)


def _verdict(hits: list) -> str:
    actions = {h.action for h in hits}
    if "reject_claim" in actions:
        return "claim refused"
    if "reject_line" in actions:
        return "lines refused"
    if actions:
        return "warnings"
    return "clean"


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
