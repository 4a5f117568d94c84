"""`rules-engine member …`: the member service from a terminal — for an operator checking a
person's consent, answering a desk question, or trying the flow against the simulator.

    rules-engine member sandbox DIR                      # keys + settings + simulator on loopback; Ctrl-C stops
    rules-engine member -c DIR/member.yaml --as desk --purpose online-consultation \\
        consent give P-BJ-0001 --data insurance,benefits --channel counter --until 2026-12-31
    rules-engine member -c … insurance P-BJ-0001         # 1101, national fields + summary
    rules-engine member -c … benefits P-BJ-0001          # 5206 + our estimate of what remains
    rules-engine member -c … file P-EX-0012 --type referral --admdvs 110000 --begin … --end …
    rules-engine member -c … revoke P-EX-0012 FILING_ID
    rules-engine member -c … settle claim.json           # with the filing on record
    rules-engine member -c … pay claim.json --ec-token T | pay-status ORDER | refund ORDER

Every command prints the summary (text) or the whole answer (--format json). Exit codes: 0 done;
1 refused (no consent, bad input, the platform said no — each error located); 2 usage; 4 the
platform's answer is unknown (nothing is assumed; ask again).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from ..cli import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, _regions_default, main

EXIT_PENDING = 4
PURPOSE_ENV = "RULES_ENGINE_MEMBER_PURPOSE"


class _Ctx:
    def __init__(self, config: str | None, caller: str, purpose: str | None, fmt: str, regions: str | None):
        from ..member.settings import ENV_FILE
        self.config = Path(config or os.environ.get(ENV_FILE) or "member.yaml")
        self.caller, self.purpose, self.fmt = caller, purpose or os.environ.get(PURPOSE_ENV), fmt
        self.regions = regions
        self._svc = None

    def service(self) -> Any:
        from ..member.settings import MemberConfigError, load_member_settings
        if self._svc is None:
            if not self.config.exists():
                click.echo(f"error: no member settings at {self.config} (give --config, or set "
                           "RULES_ENGINE_MEMBER_CONFIG; 'rules-engine member sandbox DIR' writes a working set)", err=True)
                sys.exit(EXIT_USAGE)
            settings, problems = load_member_settings(self.config)
            for p in problems:
                click.echo(p.format(), err=True)
            if settings is None:
                sys.exit(EXIT_PROBLEMS)
            from ..member import MemberService
            engine = None
            if self.regions or settings.regions_dir is None:
                from ..api import Engine
                engine = Engine.from_directory(self.regions or _regions_default())
            try:
                self._svc = MemberService.from_settings(settings, engine=engine)
            except MemberConfigError as e:
                for p in e.problems:
                    click.echo(p.format(), err=True)
                sys.exit(EXIT_PROBLEMS)
        return self._svc

    def need_purpose(self) -> str:
        if not self.purpose:
            raise click.UsageError(f"give --purpose (what the data is for, as the consent says) or set ${PURPOSE_ENV}")
        return self.purpose

    def run(self, fn: Callable[[Any], Any]) -> None:
        from .. import jsonio
        from ..member import MemberError
        svc = self.service()
        try:
            out = fn(svc)
        except MemberError as e:
            click.echo(f"error {e.code}: {e.message}", err=True)
            for x in e.errors:
                click.echo(f"  {x['path']}: {x['message']}", err=True)
            sys.exit(EXIT_PENDING if e.code in ("E-MEMBER-UNKNOWN", "E-EVOUCHER-PENDING") else EXIT_PROBLEMS)
        finally:
            svc.close()
        if self.fmt == "json":
            click.echo(jsonio.dumps(out))
        elif isinstance(out, list):
            for c in out:
                state = "withdrawn" if c.get("withdrawn") else f"until {c['until'][:10]}"
                click.echo(f"{c['consent_id']}  {c['granted_to']}  {c['purpose']}  [{', '.join(c['data'])}]  {state}")
            if not out:
                click.echo("no consents on record")
        else:
            click.echo(out.get("summary") or jsonio.dumps(out))
            for k in ("consent_id", "order", "state"):
                if out.get(k):
                    click.echo(f"{k}: {out[k]}")
            if isinstance(out.get("filing"), dict) and out["filing"].get("id"):
                click.echo(f"filing: {out['filing']['id']}")


def _claim(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise click.UsageError(f"{path}: not a readable JSON claim ({e})") from None
    if not isinstance(data, dict):
        raise click.UsageError(f"{path}: a claim is a JSON object")
    return data


pass_ctx = click.make_pass_decorator(_Ctx)


@main.group()
@click.option("-c", "--config", default=None, help="member.yaml (or $RULES_ENGINE_MEMBER_CONFIG)")
@click.option("--as", "caller", default="operator", show_default=True, help="who asks: the party a consent is granted to")
@click.option("--purpose", default=None, help=f"what the data is for (or ${PURPOSE_ENV})")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--regions", default=None, help="rule packs (default: member.yaml's regions, else ./regions)")
@click.pass_context
def member(ctx: click.Context, config: str | None, caller: str, purpose: str | None, fmt: str,
           regions: str | None) -> None:
    """Member services: consent, insurance, benefits, filings, e-voucher payment (docs/member.md)."""
    ctx.obj = _Ctx(config, caller, purpose, fmt, regions)


@member.group()
def consent() -> None:
    """Record, withdraw and list consents (kept in the hash-chained journal)."""


@consent.command("give")
@click.argument("psn_no")
@click.option("--data", required=True, help="comma-separated: insurance, eligibility, chronic, benefits, filings, payment")
@click.option("--channel", required=True, help="app, im, web, phone, counter, paper")
@click.option("--until", required=True, help="last day the consent runs (yyyy-MM-dd)")
@click.option("--to", "granted_to", default=None, help="the party it is granted to (default: --as)")
@pass_ctx
def consent_give(c: _Ctx, psn_no: str, data: str, channel: str, until: str, granted_to: str | None) -> None:
    purpose = c.need_purpose()
    c.run(lambda s: s.give_consent(psn_no, granted_to=granted_to or c.caller, data=[x.strip() for x in data.split(",")
                                                                                  if x.strip()],
                                   purpose=purpose, channel=channel, until=until))


@consent.command("withdraw")
@click.argument("consent_id")
@click.option("--reason", default=None)
@pass_ctx
def consent_withdraw(c: _Ctx, consent_id: str, reason: str | None) -> None:
    c.run(lambda s: s.withdraw_consent(consent_id, by=c.caller, reason=reason))


@consent.command("list")
@click.argument("psn_no")
@click.option("--all-parties", is_flag=True, help="every party's consents, not only --as's")
@pass_ctx
def consent_list(c: _Ctx, psn_no: str, all_parties: bool) -> None:
    c.run(lambda s: s.list_consents(psn_no, caller=None if all_parties else c.caller))


def _query(name: str, help_: str) -> None:
    @member.command(name, help=help_)
    @click.argument("psn_no")
    @pass_ctx
    def cmd(c: _Ctx, psn_no: str) -> None:
        purpose = c.need_purpose()
        c.run(lambda s: getattr(s, name)(psn_no, purpose=purpose, caller=c.caller))


_query("insurance", "参保信息 (1101): insurance types, insured place, psn_type, account balance.")
_query("chronic", "慢特病备案 (5301).")
_query("benefits", "Year-to-date figures (5206) and our estimate of what remains and what the next 1,000 yuan gets.")
_query("filings", "异地就医备案 on record (the filing query).")


@member.command()
@click.argument("psn_no")
@click.option("--med-type", required=True, help="医疗类别, e.g. 11, 14, 21")
@click.option("--date", default=None, help="yyyy-MM-dd (default today)")
@pass_ctx
def eligibility(c: _Ctx, psn_no: str, med_type: str, date: str | None) -> None:
    """待遇资格 (2001): whether a benefit applies on a date for a med_type."""
    purpose = c.need_purpose()
    c.run(lambda s: s.eligibility(psn_no, med_type=med_type, date=date, purpose=purpose, caller=c.caller))


@member.command()
@click.argument("psn_no")
@click.option("--type", "type_", required=True, help="resettled_retiree, long_term_resident, resident_worker, "
                                                     "referral, emergency, other_temporary")
@click.option("--admdvs", required=True, help="target region (6 digits)")
@click.option("--begin", required=True, help="first day (yyyy-MM-dd)")
@click.option("--end", default=None, help="last day (required for temporary filings)")
@pass_ctx
def file(c: _Ctx, psn_no: str, type_: str, admdvs: str, begin: str, end: str | None) -> None:
    """异地就医备案 (2501): checked here first (dates, region, overlap), then filed."""
    purpose = c.need_purpose()
    c.run(lambda s: s.file(psn_no, type=type_, admdvs=admdvs, begndate=begin, enddate=end, purpose=purpose,
                           caller=c.caller))


@member.command()
@click.argument("psn_no")
@click.argument("filing_id")
@click.option("--reason", default=None)
@pass_ctx
def revoke(c: _Ctx, psn_no: str, filing_id: str, reason: str | None) -> None:
    """Revoke a filing (2502); later claims are settled as unfiled."""
    purpose = c.need_purpose()
    c.run(lambda s: s.revoke(psn_no, filing_id, purpose=purpose, caller=c.caller, reason=reason))


@member.command()
@click.argument("claim", type=click.Path(dir_okay=False))
@click.option("--submit", is_flag=True, help="also book it through the gateway (2204/2206/2207)")
@pass_ctx
def settle(c: _Ctx, claim: str, submit: bool) -> None:
    """Settle a claim with the person's filing on record attached (or unfiled)."""
    purpose = c.need_purpose()
    data = _claim(claim)
    c.run(lambda s: s.settle(data, purpose=purpose, caller=c.caller, submit=submit))


@member.command()
@click.argument("claim", type=click.Path(dir_okay=False))
@click.option("--ec-token", required=True, help="the token from the person's 医保电子凭证")
@pass_ctx
def pay(c: _Ctx, claim: str, ec_token: str) -> None:
    """Pay a visit by e-voucher (fee upload + payment order)."""
    purpose = c.need_purpose()
    data = _claim(claim)
    c.run(lambda s: s.pay(data, ec_token=ec_token, purpose=purpose, caller=c.caller))


@member.command("pay-status")
@click.argument("order")
@pass_ctx
def pay_status(c: _Ctx, order: str) -> None:
    """An e-voucher order's state; an unknown outcome is resolved with the status query first."""
    purpose = c.need_purpose()
    c.run(lambda s: s.order_status(order, purpose=purpose, caller=c.caller))


@member.command()
@click.argument("order")
@pass_ctx
def refund(c: _Ctx, order: str) -> None:
    """Refund a paid e-voucher order (or revoke an unpaid one)."""
    purpose = c.need_purpose()
    c.run(lambda s: s.refund(order, purpose=purpose, caller=c.caller))


@member.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--regions", default=None, help="rule packs for the simulator (default ./regions)")
def sandbox(directory: Path, regions: str | None) -> None:
    """Write a loopback set-up into DIRECTORY (fresh keys, gateway.yaml, member.yaml) and run the
    platform simulator with two example persons until Ctrl-C."""
    import signal
    import threading
    from ..api import Engine
    from ..member.sandbox import BJ, EX, Sandbox
    directory.mkdir(parents=True, exist_ok=True)
    sb = Sandbox.create(directory, engine=Engine.from_directory(regions or _regions_default()))
    tok = sb.sim.issue_ec_token(BJ)
    click.echo(f"simulator: {sb.sim.url} (移动支付 {sb.sim.payment_url})\nsettings:  {sb.member_yaml}\n"
               f"persons:   {BJ} (Beijing), {EX} (insured in 990012)\ne-voucher token for {BJ}: {tok}\n"
               f"try: rules-engine member -c {sb.member_yaml} --purpose online-consultation consent give {BJ} "
               "--data insurance,benefits --channel counter --until <date>\nCtrl-C stops.")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sb.close()
    sys.exit(EXIT_OK)
