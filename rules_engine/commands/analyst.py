"""The analyst's workflow commands: `diff` two pack versions, make a `new-version` of a pack."""
from __future__ import annotations

import datetime as dt
import shutil
import sys
from pathlib import Path

import click

from .. import jsonio
from ..cli import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, _read_claims, _regions_default, main


def _resolve(spec: str, regions: str):
    """REGION@VERSION (in --regions) or a pack folder → (compiled pack, its pack set)."""
    from ..packs.registry import PackSet
    path = Path(spec)
    if (path / "pack.yaml").is_file():
        root = path.resolve().parent.parent
        ps = PackSet.load(root)
        from ..packs.load import load_pack
        raw = load_pack(path)
        region, version = raw.region, raw.version
    else:
        if "@" not in spec:
            click.echo(f"error: '{spec}' is neither REGION@VERSION nor a pack folder", err=True)
            sys.exit(EXIT_USAGE)
        region, version = spec.split("@", 1)
        if not Path(regions).is_dir():
            click.echo(f"error: no such directory: {regions}", err=True)
            sys.exit(EXIT_USAGE)
        ps = PackSet.load(regions)
    raw = ps.raws.get(f"{region}@{version}")
    if raw is None:
        errors = [p for p in ps.problems if p.severity == "error"]
        click.echo(f"error: no valid pack {region}@{version}" + (f" ({len(errors)} error(s) in the packs: run "
                   "'rules-engine validate')" if errors else ""), err=True)
        sys.exit(EXIT_PROBLEMS)
    date = str(raw.meta.data["effective"]["from"])
    try:
        return ps.effective(raw, date), ps
    except Exception as e:  # PackSelectionError: the version did not compile
        click.echo(f"error: {region}@{version} did not compile: {e}; run 'rules-engine validate'", err=True)
        sys.exit(EXIT_PROBLEMS)


@main.command()
@click.argument("old")
@click.argument("new")
@click.option("--regions", default=_regions_default, show_default="regions", help="pack directory for REGION@VERSION")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--claims", "claims_files", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="claims (JSON files) to settle under both versions; lists those whose settlement changes")
def diff(old: str, new: str, regions: str, fmt: str, claims_files: tuple[Path, ...]) -> None:
    """Policy diff of two versions: OLD and NEW are REGION@VERSION or pack folders."""
    from ..model.claim import SettlementError, parse_claim
    from ..packs.diff import diff_packs, render_markdown, render_text
    from ..packs.registry import PinnedPackSet
    from ..settle.core import settle
    a, ps_a = _resolve(old, regions)
    b, ps_b = _resolve(new, regions)
    d = diff_packs(a, b)
    for name, claim in _read_claims(claims_files) if claims_files else []:
        try:
            ca = parse_claim(claim)
            sa = settle(PinnedPackSet(ps_a, {a.info.region: a}), ca)
            sb = settle(PinnedPackSet(ps_b, {b.info.region: b}), ca)
        except SettlementError as e:
            d.claims.append({"claim": name, "error": e.code, "message": e.message, "fund_before": "", "fund_after": "",
                             "fund_delta": 0, "psn_before": "", "psn_after": "", "psn_delta": 0})
            continue
        if (sa.fund_pay_sumamt, sa.psn_part_amt) != (sb.fund_pay_sumamt, sb.psn_part_amt):
            ia, ib = sa.setlinfo(), sb.setlinfo()
            d.claims.append({"claim": name, "fund_before": ia["fund_pay_sumamt"], "fund_after": ib["fund_pay_sumamt"],
                             "fund_delta": ib["fund_pay_sumamt"] - ia["fund_pay_sumamt"],
                             "psn_before": ia["psn_part_amt"], "psn_after": ib["psn_part_amt"],
                             "psn_delta": ib["psn_part_amt"] - ia["psn_part_amt"]})
    if fmt == "json":
        click.echo(jsonio.dumps(d.to_dict()))
    elif fmt == "markdown":
        click.echo(render_markdown(d), nl=False)
    else:
        click.echo(render_text(d))
    sys.exit(EXIT_OK)


@main.command("new-version")
@click.argument("region")
@click.option("--from", "from_version", required=True, help="the version to copy")
@click.option("--effective", "effective", required=True, help="YYYY-MM-DD: the new version's first day")
@click.option("--version", "new_version", default=None, help="the new version (default: <year>.1)")
@click.option("--regions", default=_regions_default, show_default="regions", help="pack directory")
def new_version(region: str, from_version: str, effective: str, new_version: str | None, regions: str) -> None:
    """Copy REGION@FROM into a new version starting on --effective, close the old one the day before,
    and validate both. Nothing is left half-done: on any problem the change is rolled back."""
    from ..packs.edit import EditError, set_scalar, set_effective_to
    from ..packs.registry import PackSet
    try:
        start = dt.date.fromisoformat(effective)
    except ValueError:
        click.echo(f"error: --effective '{effective}' is not a date YYYY-MM-DD", err=True)
        sys.exit(EXIT_USAGE)
    root = Path(regions)
    src = root / region / from_version
    if not (src / "pack.yaml").is_file():
        click.echo(f"error: no pack {region}@{from_version} under {regions}", err=True)
        sys.exit(EXIT_USAGE)
    version = new_version or f"{start.year}.1"
    dst = root / region / version
    if dst.exists():
        click.echo(f"error: {dst} already exists", err=True)
        sys.exit(EXIT_USAGE)
    old_pack = src / "pack.yaml"
    old_text = old_pack.read_text(encoding="utf-8")
    from ..packs.source import parse_yaml
    old_doc, _ = parse_yaml(old_text.encode("utf-8"), str(old_pack))
    eff = (old_doc.data or {}).get("effective") if old_doc is not None and isinstance(old_doc.data, dict) else None
    old_from = str(eff.get("from")) if isinstance(eff, dict) else None
    old_to = str(eff["to"]) if isinstance(eff, dict) and eff.get("to") else None
    if old_from is None or not (old_from < start.isoformat() <= (old_to or "9999-12-31")):
        click.echo(f"error: {start.isoformat()} is not inside {region}@{from_version}'s dates "
                   f"({old_from} … {old_to or 'open'}), so the new version cannot take over from it", err=True)
        sys.exit(EXIT_USAGE)
    try:
        shutil.copytree(src, dst)
        new_pack = dst / "pack.yaml"
        text = set_scalar(new_pack.read_text(encoding="utf-8"), ("version",), f'"{version}"')
        text = set_scalar(text, ("effective", "from"), start.isoformat())
        text = set_effective_to(text, old_to, new_pack.name)  # the new version takes over the rest of the range
        new_pack.write_text(text, encoding="utf-8")
        old_pack.write_text(set_effective_to(old_text, (start - dt.timedelta(days=1)).isoformat(), str(old_pack)),
                            encoding="utf-8")
        ps = PackSet.load(root)
        keys = (f"{region}@{version}", f"{region}@{from_version}")
        mine = [p for p in ps.problems if p.severity == "error"
                and (str(ps.problem_path(p)).startswith((str(dst.resolve()), str(src.resolve())))
                     or any(k in p.message for k in keys))]
        if mine:
            raise EditError("validation failed:\n" + "\n".join(p.format() for p in mine))
    except (EditError, OSError) as e:
        shutil.rmtree(dst, ignore_errors=True)
        old_pack.write_text(old_text, encoding="utf-8")
        click.echo(f"error: {e}\nnothing was changed", err=True)
        sys.exit(EXIT_PROBLEMS)
    click.echo(f"created {dst} (in force from {start.isoformat()}); {region}@{from_version} now ends "
               f"{(start - dt.timedelta(days=1)).isoformat()}. Both validate.\n"
               f"next: edit {dst}, update its tests/, then 'rules-engine diff {region}@{from_version} {region}@{version}'")
    sys.exit(EXIT_OK)
