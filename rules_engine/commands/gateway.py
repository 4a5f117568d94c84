"""`rules-engine gateway …` and `rules-engine platform-sim`: the gateway to the national platform.

    rules-engine gateway check-config [--config gateway.yaml] [--adapter gateway-adapter.yaml]
    rules-engine gateway submit CLAIM.json … [--fetch-person] [--accept-differences]
    rules-engine gateway status [--format text|json|prometheus]
    rules-engine gateway resume
    rules-engine gateway reverse MSGID
    rules-engine gateway reconcile --date 2025-03-12
    rules-engine gateway log verify | log show --msgid M
    rules-engine platform-sim --port 8901 --regions regions

Exit codes: 0 done; 1 a problem (bad configuration or claim, a definite failure, 2207 blocked by the
comparison, reconciliation not balanced, a broken audit log); 2 usage; 3 internal error;
4 an outcome not settled yet (a 冲正 waiting for a definite answer — run `gateway resume`).
Every command that writes first resumes what a killed process left unfinished.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from ..cli import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, _regions_default, main

EXIT_PENDING = 4
CONFIG_ENV = "RULES_ENGINE_GATEWAY_CONFIG"
ADAPTER_ENV = "RULES_ENGINE_GATEWAY_ADAPTER"
KEY_ENV = "RULES_ENGINE_JOURNAL_KEY_FILE"


def _dumps(v: Any) -> str:
    from .. import jsonio
    return jsonio.dumps(v)


class _Env:
    """Configuration, adapter settings and engine, loaded once per command, errors located."""

    def __init__(self, config: str | None, adapter: str | None, regions: str | None, key_file: str | None):
        self.config_path = Path(config or os.environ.get(CONFIG_ENV) or "gateway.yaml")
        self.adapter_arg = adapter or os.environ.get(ADAPTER_ENV)
        self.regions = regions or _regions_default()
        self.key_file = key_file or os.environ.get(KEY_ENV)

    def load_config(self, *, quiet: bool = False) -> tuple[Any, Any, list]:
        from ..gateway.config import load_gateway_config
        from ..gateway.settings import default_adapter_path, load_adapter_config
        if not self.config_path.exists():
            click.echo(f"error: no gateway configuration at {self.config_path} (give --config or set ${CONFIG_ENV}; "
                       "examples/gateway.yaml is a template)", err=True)
            sys.exit(EXIT_USAGE)
        pack_dir = self.regions if Path(self.regions).is_dir() else None
        cfg, problems = load_gateway_config(self.config_path, pack_dir=pack_dir)
        adapter_path = Path(self.adapter_arg) if self.adapter_arg else default_adapter_path(self.config_path)
        adapter = None
        if cfg is not None:
            adapter, more = load_adapter_config(adapter_path, gateway_config=cfg)
            problems = problems + more
        errors = [p for p in problems if p.severity == "error"]
        if not quiet or errors:
            for p in problems:
                click.echo(p.format(), err=True)
        if errors or cfg is None or adapter is None:
            click.echo(f"{len(errors)} error(s) in the gateway configuration; nothing was sent", err=True)
            sys.exit(EXIT_PROBLEMS)
        return cfg, adapter, problems

    def journal_key(self) -> bytes | None:
        if not self.key_file:
            return None
        from .journal import read_key_file
        return read_key_file(self.key_file)

    def gateway(self, *, engine: bool = True, **kw: Any) -> Any:
        from ..api import Engine, PackLoadError
        from ..gateway.client import Gateway
        cfg, adapter, _ = self.load_config(quiet=True)
        eng = None
        if engine:  # status and the audit log need no packs (loading them takes a second)
            try:
                eng = Engine.from_directory(self.regions)
            except PackLoadError as e:
                for p in e.problems[:20]:
                    click.echo(p.format(), err=True)
                click.echo("the packs have errors; nothing was sent", err=True)
                sys.exit(EXIT_PROBLEMS)
        return Gateway(cfg, engine=eng, adapter=adapter, journal_key=self.journal_key(), **kw)


def _run(env: _Env, fn: Callable[[Any], Any], *, resume: bool = True, engine: bool = True) -> Any:
    """Run `fn(gateway)` in an event loop, after resuming what dead processes left."""
    from ..gateway.client import GatewayError

    async def go() -> Any:
        gw = env.gateway(engine=engine or resume)
        try:
            if resume:
                for r in await gw.resume():
                    click.echo(f"resumed submission {r.submission}: {r.state}"
                               + (f" ({r.error_code}: {r.error})" if r.error_code else ""), err=True)
            return await fn(gw)
        finally:
            await gw.aclose()

    try:
        return asyncio.run(go())
    except GatewayError as e:
        click.echo(f"error {e.code}: {e.message}", err=True)
        for x in e.errors[:20]:
            click.echo(f"  {x.get('path')}: {x.get('message')}", err=True)
        sys.exit(EXIT_PROBLEMS)


_common = [
    click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
                 help=f"gateway.yaml (default ./gateway.yaml or ${CONFIG_ENV})"),
    click.option("--adapter", "adapter", type=click.Path(dir_okay=False), default=None,
                 help="gateway-adapter.yaml (default: beside the configuration, when present)"),
    click.option("--regions", "regions", type=click.Path(file_okay=False), default=None,
                 help="the rule packs (default ./regions or $RULES_ENGINE_REGIONS)"),
    click.option("--journal-key-file", "key_file", default=None,
                 help=f"masking key of the audit log (or ${KEY_ENV}); without one personal fields are redacted"),
    click.option("--log-json", "log_json", is_flag=True, expose_value=False, is_eager=True,
                 callback=lambda ctx, param, value: _log_json(value),
                 help="write the gateway's events to stderr as JSON lines (no personal field)"),
]


def _log_json(on: bool) -> None:
    if on:
        import logging
        from ..gateway.metrics import json_logging
        json_logging(logging.INFO, sys.stderr)


def common(f: Callable) -> Callable:
    for opt in reversed(_common):
        f = opt(f)
    return f


@main.group()
def gateway() -> None:
    """Submit settlements to the national platform, never losing or doubling one."""


@gateway.command("check-config")
@common
def check_config(config: str | None, adapter: str | None, regions: str | None, key_file: str | None) -> None:
    """Load and check the configuration: regions, endpoints, keys, plug-ins — every error located."""
    env = _Env(config, adapter, regions, key_file)
    cfg, ad, problems = env.load_config()
    for code, rc in sorted(cfg.regions.items()):
        st = ad.region(code)
        click.echo(f"{code} {rc.name or ''}: {rc.endpoint} as {rc.fixmedins_code}; transport "
                   f"{rc.security.transport.name}, message {rc.security.message.name}; outbox {rc.outbox.path}; "
                   f"compare tolerance {st.compare.tolerance_fen / 100:.2f} ({st.compare.on_difference}); "
                   f"3201 fund_pay_sumamt {'includes' if st.reconcile.fund_pay_sumamt_includes_acct_pay else 'excludes'}"
                   " acct_pay")
    warn = sum(1 for p in problems if p.severity == "warning")
    click.echo(f"configuration OK ({len(cfg.regions)} region(s)" + (f", {warn} warning(s))" if warn else ")"))


def _print_result(r: Any, fmt: str, name: str) -> None:
    if fmt == "json":
        click.echo(_dumps(r.to_dict()))
        return
    head = f"{name}: {r.state}"
    if r.setl_id:
        head += f" — setl_id {r.setl_id}, msgid {r.settle_msgid}"
    if r.error_code:
        head += f" — {r.error_code}: {r.error}"
    click.echo(head)
    if r.comparison:
        from ..gateway.compare import Comparison, Difference
        c = r.comparison
        cmp = Comparison([Difference(d["scope"], d["field"], d.get("ours"), d.get("platform"), d.get("delta"),
                                     d["severity"], d.get("line"), d.get("fund_pay_type"), d.get("explanation") or {},
                                     d.get("note")) for d in c["differences"]], c["compared_fields"],
                         c["compared_lines"], c["tolerance"], c["on_difference"], c.get("pack", ""))
        click.echo("  " + cmp.render().replace("\n", "\n  "))
    if r.ours and r.platform:
        keys = ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "psn_cash_pay")
        click.echo("  ours:     " + "  ".join(f"{k} {r.ours.get(k)}" for k in keys))
        click.echo("  platform: " + "  ".join(f"{k} {r.platform.get(k)}" for k in keys))
    for m in r.messages:
        click.echo(f"  {m['infno']} {m['msgid']}: {m['outcome']} {m['code']}" + (f" — {m['detail']}" if m.get("detail")
                                                                               else ""))
    for n in r.notes:
        click.echo(f"  note: {n}")


@gateway.command()
@click.argument("claims", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@common
@click.option("--fetch-person", is_flag=True, help="fill the claim from 1101 / 5206 / 2001 before settling")
@click.option("--accept-differences", is_flag=True,
              help="send 2207 even when the platform's pre-settlement differs beyond the tolerance (recorded)")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def submit(claims: tuple[Path, ...], config: str | None, adapter: str | None, regions: str | None,
           key_file: str | None, fetch_person: bool, accept_differences: bool, fmt: str) -> None:
    """Settle each CLAIM on the platform: upload, pre-settle, compare with our settlement, settle."""
    from ..gateway.client import GatewayError
    loaded = []
    for p in claims:
        try:
            loaded.append((p, json.loads(p.read_text(encoding="utf-8"), parse_float=__import__("decimal").Decimal)))
        except OSError as e:
            click.echo(f"error: cannot read {p}: {e.strerror}", err=True)
            sys.exit(EXIT_USAGE)
        except ValueError as e:
            click.echo(f"{p}: error E-CLAIM-JSON: not valid JSON: {e}", err=True)
            sys.exit(EXIT_PROBLEMS)
    env = _Env(config, adapter, regions, key_file)

    async def go(gw: Any) -> int:
        worst = EXIT_OK
        for p, claim in loaded:
            try:
                r = await gw.submit(claim, fetch_person=fetch_person, accept_differences=accept_differences)
            except GatewayError as e:
                click.echo(f"{p}: error {e.code}: {e.message}", err=True)
                for x in e.errors[:20]:
                    click.echo(f"  {x.get('path')}: {x.get('message')}", err=True)
                worst = max(worst, EXIT_PROBLEMS)
                continue
            _print_result(r, fmt, str(p))
            worst = max(worst, EXIT_OK if r.ok else (EXIT_PENDING if r.pending else EXIT_PROBLEMS))
        return worst

    sys.exit(_run(env, go))


@gateway.command()
@common
def resume(config: str | None, adapter: str | None, regions: str | None, key_file: str | None) -> None:
    """Finish what killed processes left: unanswered settlements go to 冲正, flows continue."""
    env = _Env(config, adapter, regions, key_file)

    async def go(gw: Any) -> int:
        results = await gw.resume()
        for r in results:
            _print_result(r, "text", f"submission {r.submission}")
        if not results:
            click.echo("nothing to resume")
        return max([EXIT_OK] + [EXIT_PENDING if r.pending else EXIT_OK for r in results])

    sys.exit(_run(env, go, resume=False))


@gateway.command()
@common
@click.option("--format", "fmt", type=click.Choice(["text", "json", "prometheus"]), default="text",
              show_default=True)
def status(config: str | None, adapter: str | None, regions: str | None, key_file: str | None, fmt: str) -> None:
    """Outbox depth, unfinished work, what needs an operator (no message is sent)."""
    env = _Env(config, adapter, regions, key_file)

    async def go(gw: Any) -> int:
        s = gw.status()
        if fmt == "json":
            click.echo(_dumps(s))
        elif fmt == "prometheus":
            click.echo(gw.metrics.render(), nl=False)
        else:
            for o in s["outboxes"]:
                click.echo(f"outbox {o['path']}")
                click.echo("  submissions: " + (", ".join(f"{k} {v}" for k, v in sorted(o["submissions"].items()))
                                                or "none"))
                click.echo("  requests:    " + (", ".join(f"{k} {v}" for k, v in sorted(o["requests"].items()))
                                                or "none"))
                click.echo(f"  unfinished:  {o['unfinished']}; oldest {o['oldest_unfinished_seconds']} s")
            for a in s["attention"]:
                click.echo("  attention: " + ", ".join(f"{k}={v}" for k, v in a.items() if v is not None))
            if not s["attention"]:
                click.echo("nothing needs attention")
        return EXIT_PENDING if s["attention"] else EXIT_OK

    sys.exit(_run(env, go, resume=False, engine=False))


@gateway.command()
@click.argument("msgid")
@common
def reverse(msgid: str, config: str | None, adapter: str | None, regions: str | None, key_file: str | None) -> None:
    """Undo the settlement sent as MSGID: refund (2208/2305) when booked, 冲正 (2601) when unknown."""
    env = _Env(config, adapter, regions, key_file)

    async def go(gw: Any) -> int:
        r = await gw.reverse(msgid)
        click.echo(f"{r['action']} ({r['infno']}) of {msgid}: " + ("done" if r["ok"] else "NOT done")
                   + (f" — {r.get('answer') or r.get('error') or ''}" if not r["ok"] else ""))
        for n in r.get("notes", []):
            click.echo(f"  note: {n}")
        return EXIT_OK if r["ok"] else EXIT_PROBLEMS

    sys.exit(_run(env, go))


@gateway.command()
@click.option("--date", "day", required=True, help="the day to reconcile, yyyy-MM-dd")
@click.option("--region", "regions_sel", multiple=True, help="only these regions (default: all configured)")
@common
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def reconcile(day: str, regions_sel: tuple[str, ...], config: str | None, adapter: str | None,
              regions: str | None, key_file: str | None, fmt: str) -> None:
    """3201 对总账 for a day, from the outbox's settlements in force."""
    env = _Env(config, adapter, regions, key_file)

    async def go(gw: Any) -> int:
        rows = await gw.reconcile(day, regions=regions_sel or None)
        if fmt == "json":
            click.echo(_dumps(rows))
        else:
            if not rows:
                click.echo(f"no settlement in force on {day}: nothing to reconcile")
            for r in rows:
                n = r["fixmedins_setl_cnt"]
                click.echo(f"{r['region']} insutype {r['insutype']} clr_type {r['clr_type']} {r['setl_optins']}: "
                           f"{n} settlement{'' if n == 1 else 's'}, medfee {r['medfee_sumamt']}, fund "
                           f"{r['fund_pay_sumamt']}, acct {r['acct_pay']} → "
                           + ("balanced (平)" if r["balanced"] else f"NOT balanced: {r['stmt_rslt_dscr'] or r['answer']}"))
        return EXIT_OK if all(r["balanced"] for r in rows) else EXIT_PROBLEMS

    sys.exit(_run(env, go))


@gateway.group()
def log() -> None:
    """The audit log: every exchange with the platform, hash-chained, personal fields masked."""


def _journal_paths(env: _Env) -> list[Path]:
    cfg, _, _ = env.load_config(quiet=True)
    paths: list[Path] = []
    for code, rc in sorted(cfg.regions.items()):
        p = Path(rc.journal.path) if rc.journal.path is not None else Path(rc.outbox.path).with_name(
            "gateway-journal.sqlite")
        if p not in paths:
            paths.append(p)
    return paths


@log.command("verify")
@common
@click.option("--anchor", help="SEQ:HASH recorded earlier: proves nothing before it changed")
def log_verify(config: str | None, adapter: str | None, regions: str | None, key_file: str | None,
               anchor: str | None) -> None:
    """Check the hash chain of every region's audit log; name the first bad entry."""
    from ..journal import Journal, JournalError
    env = _Env(config, adapter, regions, key_file)
    anc = None
    if anchor:
        seq, _, h = anchor.partition(":")
        if not seq.isdigit() or len(h) != 64:
            raise click.UsageError("--anchor is SEQ:HASH (64 hex digits)")
        anc = (int(seq), h.lower())
    bad = False
    for p in _journal_paths(env):
        if not p.exists():
            click.echo(f"{p}: no audit log yet")
            continue
        try:
            with Journal(p, create=False) as j:
                r = j.verify(anchor=anc)
        except JournalError as e:
            click.echo(f"{p}: error {e.code}: {e.message}", err=True)
            bad = True
            continue
        if r.ok:
            click.echo(f"{p}: {r.entries} entries verify — head {r.last_seq}:{r.head_hash}")
        else:
            bad = True
            click.echo(f"{p}: the chain is broken at seq {r.first_bad}", err=True)
            for q in r.problems:
                click.echo(f"  seq {q.seq}: {q.code}: {q.message}", err=True)
    sys.exit(EXIT_PROBLEMS if bad else EXIT_OK)


@log.command("show")
@common
@click.option("--msgid", default=None, help="entries of this message (request, answer, reversal)")
@click.option("--submission", default=None, help="entries of this submission")
@click.option("--last", type=int, default=None, help="the N newest entries")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def log_show(config: str | None, adapter: str | None, regions: str | None, key_file: str | None,
             msgid: str | None, submission: str | None, last: int | None, fmt: str) -> None:
    """Show audit entries by msgid, by submission, or the newest."""
    from ..journal import Journal, JournalError
    env = _Env(config, adapter, regions, key_file)
    entries = []
    for p in _journal_paths(env):
        if not p.exists():
            continue
        try:
            with Journal(p, create=False) as j:
                if msgid:
                    found = j.find(msgid, limit=0)
                    found += [e for e in j.find(omsgid=msgid, limit=0) if e.seq not in {x.seq for x in found}]
                    entries += sorted(found, key=lambda e: e.seq)
                elif submission:
                    entries += j.find(submission=submission, limit=0)
                else:
                    entries += j.last(last or 20)
        except JournalError as e:
            click.echo(f"{p}: error {e.code}: {e.message}", err=True)
            sys.exit(EXIT_PROBLEMS)
    from .journal import echo_entries
    echo_entries(entries, fmt)


@log.command("purge")
@common
def log_purge(config: str | None, adapter: str | None, regions: str | None, key_file: str | None) -> None:
    """Delete audit entries older than each region's retention (two years by default)."""
    from ..journal import Journal
    env = _Env(config, adapter, regions, key_file)
    cfg, _, _ = env.load_config(quiet=True)
    days = {(Path(rc.journal.path) if rc.journal.path else Path(rc.outbox.path).with_name("gateway-journal.sqlite")):
            rc.journal.retention_days for rc in cfg.regions.values()}
    for p, d in days.items():
        if p.exists():
            with Journal(p, create=False) as j:
                r = j.purge(older_than_days=d)
            click.echo(f"{p}: purged {r.purged} entries older than {d} days")


# --------------------------------------------------------------------------- the simulator

@main.command("platform-sim")
@click.option("--port", type=int, default=8901, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="loopback by default")
@click.option("--regions", "regions", type=click.Path(file_okay=False), default=None,
              help="the simulator's own rule packs (default ./regions)")
@click.option("--register", "register", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="claim files whose person and visit the platform knows (also POST /sim/register)")
@click.option("--fault-rate", type=float, default=0.0, help="inject a random fault into this share of requests")
@click.option("--fault-kinds", default=None, help="comma-separated fault kinds for --fault-rate")
@click.option("--seed", type=int, default=None)
@click.option("--fund-includes-acct", "fund_acct", multiple=True,
              help="regions whose 3201 fund_pay_sumamt includes the personal account")
def platform_sim(port: int, host: str, regions: str | None, register: tuple[Path, ...], fault_rate: float,
                 fault_kinds: str | None, seed: int | None, fund_acct: tuple[str, ...]) -> None:
    """A simulated national platform on loopback: settles with its own packs, keeps its own ledger,
    injects faults on request (POST /sim/faults)."""
    import signal
    import threading
    from ..api import PackLoadError
    from ..gateway.simulator import FAULT_KINDS, PlatformSimulator
    kinds = tuple(k.strip() for k in fault_kinds.split(",")) if fault_kinds else FAULT_KINDS
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown:
        raise click.UsageError(f"unknown fault kind(s) {', '.join(unknown)}; known: {', '.join(FAULT_KINDS)}")
    try:
        sim = PlatformSimulator(regions or _regions_default(), host=host, port=port, fault_rate=fault_rate,
                                fault_kinds=kinds, seed=seed, fund_includes_acct={r: True for r in fund_acct})
    except PackLoadError as e:
        for p in e.problems[:20]:
            click.echo(p.format(), err=True)
        sys.exit(EXIT_PROBLEMS)
    for p in register:
        try:
            data = json.loads(p.read_text(encoding="utf-8"), parse_float=__import__("decimal").Decimal)
            for c in (data if isinstance(data, list) else [data]):
                sim.register_claim(c)
        except (OSError, ValueError, KeyError) as e:
            click.echo(f"error: cannot register {p}: {e}", err=True)
            sys.exit(EXIT_USAGE)
    try:
        sim.start()
    except OSError as e:
        click.echo(f"error: cannot listen on {host}:{port}: {e.strerror}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(f"platform simulator listening on {sim.url} (control: http://{host}:{sim.port}/sim/ledger)",
               err=True)
    stop = threading.Event()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: stop.set())
    stop.wait()
    sim.stop()
    click.echo("platform simulator stopped", err=True)
