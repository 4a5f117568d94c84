"""The command line: validate, packs, show, simulate.

Exit codes, on every command: 0 done and clean, 1 problems in the input (a pack, a claim),
2 usage error (bad option, missing file), 3 an internal error (a bug: please report it).
Bad input never prints a traceback.
"""
from __future__ import annotations

import csv
import io
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Iterable

import click

from . import jsonio
from .problems import Problem, Problems

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def _regions_default() -> str:
    return os.environ.get("RULES_ENGINE_REGIONS", "regions")


def _console():
    from rich.console import Console
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "150"))
    return Console(soft_wrap=False, highlight=False, width=width)


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:
            sys.exit(0)
        except Exception as e:  # a bug, not bad input
            click.echo(f"internal error: {type(e).__name__}: {e}", err=True)
            if os.environ.get("RULES_ENGINE_DEBUG"):
                traceback.print_exc()
            else:
                click.echo("(set RULES_ENGINE_DEBUG=1 to see the traceback; please report it)", err=True)
            sys.exit(EXIT_INTERNAL)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="rules-engine")
def main() -> None:
    """rules-engine — 医保 settlement from versioned YAML rule packs."""


# ------------------------------------------------------------------ validate

def _find_root(path: Path) -> Path:
    """The regions root a path belongs to, so that a single pack is validated with its parents."""
    p = path.resolve()
    for cand in [p, *p.parents]:
        if cand.name == "regions" and cand.is_dir():
            return cand
    return path


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--max-errors", type=int, default=0, help="stop listing after N problems (0: all)")
@click.option("--strict", is_flag=True, help="warnings count as problems (exit 1)")
def validate(paths: tuple[Path, ...], fmt: str, max_errors: int, strict: bool) -> None:
    """Check packs: YAML, schemas, references, bands, dates, inheritance. Every problem, located."""
    from .packs.registry import PackSet
    paths = paths or (Path(_regions_default()),)
    all_problems = Problems()
    checked = 0
    for path in paths:
        if not path.exists():
            click.echo(f"error: no such file or directory: {path}", err=True)
            sys.exit(EXIT_USAGE)
        root = _find_root(path)
        ps = PackSet.load(root)
        checked += len(ps.raws)
        if root.resolve() != path.resolve():
            prefix = str(path.resolve())
            keep = [p for p in ps.problems if str(ps.problem_path(p)).startswith(prefix)]
            # problems of the pack's ancestors that stop it from compiling still matter
            all_problems.extend(keep)
        else:
            all_problems.extend(ps.problems)
    items = all_problems.sorted()
    if max_errors:
        items = items[:max_errors]
    errors = [p for p in all_problems if p.severity == "error"]
    warnings = [p for p in all_problems if p.severity == "warning"]
    if fmt == "json":
        click.echo(jsonio.dumps({"problems": [p.to_dict() for p in items], "errors": len(errors),
                                 "warnings": len(warnings), "packs": checked}))
    else:
        for p in items:
            click.echo(p.format())
        tail = f"{checked} pack(s) checked: {len(errors)} error(s), {len(warnings)} warning(s)"
        click.echo(tail if items else f"{tail} — clean", err=bool(items))
    sys.exit(EXIT_PROBLEMS if errors or (strict and warnings) else EXIT_OK)


# ------------------------------------------------------------------ packs / show

def _load_packs(regions: str):
    from .packs.registry import PackSet
    path = Path(regions)
    if not path.exists():
        click.echo(f"error: no such directory: {regions} (use --regions DIR)", err=True)
        sys.exit(EXIT_USAGE)
    ps = PackSet.load(path)
    if ps.problems.has_errors():
        click.echo(f"{len(ps.problems.errors)} error(s) in the packs under {regions}; "
                   f"run 'rules-engine validate {regions}'", err=True)
        for p in ps.problems.errors[:5]:
            click.echo(p.format(with_source=False), err=True)
    return ps


@main.command()
@click.option("--regions", default=_regions_default, show_default="regions", help="pack directory")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def packs(regions: str, fmt: str) -> None:
    """List packs: region, version, dates, what they extend, content hash, confidence."""
    ps = _load_packs(regions)
    rows = []
    for p in ps.packs():
        i = p.info
        rows.append({"region": i.region, "name": i.name, "version": i.version, "from": i.effective_from,
                     "to": i.effective_to, "select_by": i.select_by, "extends": " → ".join(p.chain[:-1]) or None,
                     "hash": p.content_hash, "confidence": i.confidence, "layers": len(p.layers),
                     "catalogue": dict(p.catalogue_counts), "sources": {s.id: s.confidence for s in p.provenance
                                                                        if s.pack == i.key}})
    if fmt == "json":
        click.echo(jsonio.dumps(rows))
    else:
        from rich.table import Table
        t = Table(title=f"packs under {regions}")
        for col in ("region", "name", "version", "in force", "extends", "hash", "confidence", "layers", "catalogue"):
            t.add_column(col)
        for r in rows:
            t.add_row(r["region"], r["name"], r["version"], f"{r['from']} … {r['to'] or ''}", r["extends"] or "—",
                      r["hash"][:12], r["confidence"] or "", str(r["layers"]),
                      ", ".join(f"{k} {v:,}" for k, v in sorted(r["catalogue"].items())) or "—")
        _console().print(t)
    sys.exit(EXIT_PROBLEMS if ps.problems.has_errors() else EXIT_OK)


@main.command()
@click.argument("region")
@click.option("--date", "date", required=True, help="YYYY-MM-DD: the pack in force on this date")
@click.option("--regions", default=_regions_default, show_default="regions", help="pack directory")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
@click.option("--catalogue", "with_catalogue", is_flag=True, help="include every catalogue entry")
def show(region: str, date: str, regions: str, fmt: str, with_catalogue: bool) -> None:
    """The effective pack for REGION on a date, merged over what it extends, with its sources."""
    from .packs.registry import PackSelectionError
    from .packs.show import effective_document
    ps = _load_packs(regions)
    try:
        pack = ps.select(region, date)
    except PackSelectionError as e:
        click.echo(f"error {e.code}: {e.message}", err=True)
        sys.exit(EXIT_PROBLEMS)
    doc = effective_document(pack, with_catalogue=with_catalogue)
    if fmt == "json":
        click.echo(jsonio.dumps(doc))
    else:
        import yaml
        click.echo(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=110))


# ------------------------------------------------------------------ simulate

def _read_claims(files: Iterable[Path]) -> list[tuple[str, Any]]:
    out = []
    for f in files:
        try:
            data = jsonio.loads(f.read_bytes())
        except OSError as e:
            click.echo(f"error: cannot read {f}: {e.strerror}", err=True)
            sys.exit(EXIT_USAGE)
        except ValueError as e:
            _claim_failure(str(f), "E-CLAIM-JSON", f"not valid JSON: {e}", [], "text")
            sys.exit(EXIT_PROBLEMS)
        if isinstance(data, list):
            out += [(f"{f}[{i}]", c) for i, c in enumerate(data)]
        else:
            out.append((str(f), data))
    return out


def _claim_failure(name: str, code: str, message: str, errors: list, fmt: str) -> None:
    if fmt == "json":
        click.echo(jsonio.dumps({"claim": name, "error": {"code": code, "message": message,
                                                          "errors": [e.to_dict() for e in errors]}}))
    else:
        click.echo(f"{name}: error {code}: {message}", err=True)
        for e in errors:
            click.echo(f"    {e.path or '(claim)'}: {e.code}: {e.message}", err=True)


SUMMARY_FIELDS = ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt",
                  "act_pay_dedc", "hifp_pay", "hifob_pay", "hifmi_pay", "cvlserv_pay", "maf_pay", "oth_pay",
                  "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay")
FIELD_NAMES = {"medfee_sumamt": "医疗费总额", "fulamt_ownpay_amt": "全自费", "overlmt_selfpay": "超限价",
               "preselfpay_amt": "先行自付", "inscp_scp_amt": "符合范围", "act_pay_dedc": "起付线",
               "hifp_pay": "统筹基金", "hifob_pay": "大额", "hifmi_pay": "大病保险", "cvlserv_pay": "公务员补助",
               "maf_pay": "医疗救助", "oth_pay": "其他", "fund_pay_sumamt": "基金合计", "psn_part_amt": "个人负担",
               "acct_pay": "个人账户", "psn_cash_pay": "个人现金"}


@main.command()
@click.argument("claims", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--regions", default=_regions_default, show_default="regions", help="pack directory")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--explain", is_flag=True, help="explain every amount: rule, pack, YAML line, formula")
def simulate(claims: tuple[Path, ...], regions: str, fmt: str, explain: bool) -> None:
    """Settle claims (JSON files; a file may hold a list). Claims with the same psn_no are one
    person's year: settled in date order, each starting from the accumulators the last one left."""
    from .api import Engine, PackLoadError
    from .model.claim import SettlementError
    from .settle.explain import render_text
    if not Path(regions).exists():
        click.echo(f"error: no such directory: {regions} (use --regions DIR)", err=True)
        sys.exit(EXIT_USAGE)
    try:
        engine = Engine.from_directory(regions)
    except PackLoadError as e:
        click.echo(f"the packs under {regions} have errors; run 'rules-engine validate {regions}':", err=True)
        for p in [p for p in e.problems if p.severity == "error"][:10]:
            click.echo(p.format(), err=True)
        sys.exit(EXIT_PROBLEMS)
    items = _read_claims(claims)
    # group one person's claims; a claim without psn_no stands alone
    groups: dict[str, list[tuple[str, Any]]] = {}
    for name, data in items:
        key = data.get("psn_no") if isinstance(data, dict) and data.get("psn_no") else f"#{name}"
        groups.setdefault(str(key), []).append((name, data))
    results: list[tuple[str, Any]] = []
    failures: list[tuple[str, Any]] = []
    for key, members in groups.items():
        try:
            settled = engine.settle_sequence([d for _, d in members])
            results += [(n, s) for (n, _), s in zip(members, settled)]
        except SettlementError as e:
            # name the claim of the group that failed, settling them one by one for the message
            for n, d in members:
                try:
                    engine.settle(d)
                except SettlementError as e2:
                    failures.append((n, e2))
                    break
            else:
                failures.append((members[0][0], e))
    order = {n: i for i, (n, _) in enumerate(items)}
    results.sort(key=lambda r: order[r[0]])
    if fmt != "json":
        for n, e in failures:
            _claim_failure(n, e.code, e.message, e.errors, "text")
    if fmt == "json":
        out = [(order[n], {"claim": n, **s.to_dict(explain=explain)}) for n, s in results]
        out += [(order[n], {"claim": n, "error": e.to_dict()}) for n, e in failures]
        click.echo(jsonio.dumps([x for _, x in sorted(out, key=lambda t: t[0])]))
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["claim", "psn_no", "setl_time", "insuplc_admdvs", "mdtrtarea_admvs", "med_type", *SUMMARY_FIELDS,
                    "insured_pack", "treatment_pack"])
        for n, s in results:
            info = s.setlinfo()
            w.writerow([n, s.claim.raw.get("psn_no", ""), info["setl_time"], info["insuplc_admdvs"],
                        info["mdtrtarea_admvs"], info["med_type"], *[info[f] for f in SUMMARY_FIELDS],
                        s.insured.label, s.treatment.label])
        click.echo(buf.getvalue(), nl=False)
    else:
        con = _console()
        for n, s in results:
            _print_settlement(con, n, s)
            if explain:
                con.print(render_text(s), markup=False)
            con.print()
    sys.exit(EXIT_PROBLEMS if failures else EXIT_OK)


def _print_settlement(con, name: str, s) -> None:
    from rich.table import Table

    from .settle.explain import layer_formula
    info = s.setlinfo()
    c = s.claim
    con.print(f"[bold]{name}[/bold]  {c.raw.get('psn_name') or c.raw.get('psn_no') or ''}  insutype {c.insutype}  "
              f"med_type {c.med_type}  hosp_lv {c.hosp_lv}  {info['setl_time']}")
    con.print(f"  insured {c.insuplc_admdvs} → {s.insured.label}   treated {c.mdtrtarea_admvs} → {s.treatment.label}"
              + (f"   filing {s.facts.get('filing_type')}" if s.facts.get("cross_region") else ""), markup=False)
    lines = Table(title="fee lines (就医地目录)", title_justify="left")
    for col, right in (("sn", False), ("med_list_codg", False), ("name", False), ("amount", True), ("lv", False),
                       ("ratio", True), ("全自费", True), ("超限价", True), ("先行自付", True), ("符合范围", True),
                       ("why", False)):
        lines.add_column(col, justify="right" if right else "left", overflow="fold")
    for row, lr in zip(s.result(), s.lines):
        lines.add_row(row["feedetl_sn"], row["med_list_codg"] or "", (lr.entry.name if lr.entry else "")[:14],
                      f"{row['det_item_fee_sumamt']:,}", row["chrgitm_lv"], f"{row['selfpay_prop']}",
                      f"{row['fulamt_ownpay_amt']:,}", f"{row['overlmt_amt']:,}", f"{row['preselfpay_amt']:,}",
                      f"{row['inscp_scp_amt']:,}", ", ".join(r.code for r in lr.reasons))
    con.print(lines)
    totals = Table(title="setlinfo (参保地政策)", title_justify="left")
    totals.add_column("field")
    totals.add_column("", overflow="fold")
    totals.add_column("amount", justify="right")
    for f in SUMMARY_FIELDS:
        if info[f] or f in ("medfee_sumamt", "fund_pay_sumamt", "psn_part_amt", "psn_cash_pay", "inscp_scp_amt"):
            totals.add_row(f, FIELD_NAMES[f], f"{info[f]:,}")
    con.print(totals)
    if s.layers:
        detail = Table(title="fund layers", title_justify="left")
        for col in ("fund_pay_type", "layer", "pays", "how"):
            detail.add_column(col, overflow="fold", justify="right" if col == "pays" else "left")
        for r in s.layers:
            detail.add_row(r.layer.fund_pay_type, r.layer.name, f"{r.pay / 100:,.2f}", layer_formula(r))
        con.print(detail)
    for w in s.warnings:
        con.print(f"[yellow]warning {w.code}[/yellow]: {w.message}")


from . import commands as _commands  # noqa: E402,F401  (registers the other commands)

if __name__ == "__main__":  # pragma: no cover - `python -m rules_engine.cli`
    # run the canonical module's group, on which the command modules registered themselves
    from rules_engine.cli import main as _main
    _main()
