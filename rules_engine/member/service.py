"""The member service: what an internet clinic or an enterprise IM asks about a person, through our
gateway (never straight to the platform), with the person's consent on record.

    svc = MemberService.from_settings(require_member_settings("member.yaml"))
    svc.give_consent("P1", granted_to="clinic-a", data=["insurance", "benefits"], purpose="online-consultation",
                     channel="im", until="2025-12-31")
    svc.insurance("P1", purpose="online-consultation", caller="clinic-a")     # 1101
    svc.benefits("P1", purpose=…, caller=…)        # 5206 + our own estimate of what remains
    svc.file("P1", type="referral", admdvs="110000", begndate=…, enddate=…, purpose=…, caller=…)   # 2501
    svc.settle(claim, purpose=…, caller=…)         # the filing on record attached, or unfiled

Every answer: the platform's output in national field names, a short Chinese `summary`, the
`consent` that allowed it and the gateway `msgids` it took. Every query — answered or refused — is
a `member.query` / `member.refused` entry in the journal (personal fields masked), written before
the answer is returned: an answer that cannot be journalled is not given (E-JOURNAL).

Order of checks, so that a refusal records and sends nothing but its own journal entry: the
request's own fields (located errors), then the consent, then what needs the platform.
"""
from __future__ import annotations

import datetime as dt
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from ..journal import Journal, JournalError
from ..model.claim import SettlementError
from ..money import fen_decimal
from . import summary as say
from .consent import Consent, ConsentRegistry, tz
from .errors import MemberError, field_error, invalid
from .filings import FilingRecord, iso_date, pick, read_filings, region_covers
from .settings import FILEABLE, LONG_TERM, TEMPORARY, MemberSettings

_PSN = re.compile(r"^[0-9A-Za-z_-]{1,30}$")
_MED = re.compile(r"^[0-9]{2,4}$")
_REGION = re.compile(r"^[0-9]{6}$")
ESTIMATE_LABEL = "estimate: computed by this service's own rule packs from the platform's year-to-date figures; " \
                 "not the platform's answer"


@dataclass
class Context:
    """One member operation in flight: what the journal entry will say."""

    op: str
    psn_no: str
    caller: str
    purpose: str
    scope: str
    region: str | None = None
    consent: Consent | None = None
    msgids: list[str] = field(default_factory=list)
    infnos: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class _EngineProxy:
    """The gateway's engine, when the service swaps packs under us: always the current one."""

    def __init__(self, provider: Callable[[], Any]):
        self._provider = provider

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider(), name)


class MemberService:
    def __init__(self, settings: MemberSettings, *, gateway: Any, gateway_config: Any, adapter: Any,
                 engine: Any, journal: Journal, metrics: Any = None, evoucher: Any = None,
                 clock: Callable[[], dt.datetime] | None = None, utc_offset_hours: int = 8):
        self.settings = settings
        self.gateway = gateway                    # SyncGateway
        self.gateway_config = gateway_config
        self.adapter = adapter
        self._engine = engine if callable(engine) and not hasattr(engine, "settle") else (lambda: engine)
        self.journal = journal
        self.metrics = metrics
        self.evoucher = evoucher
        self.zone = tz(utc_offset_hours)
        self._clock = clock or (lambda: dt.datetime.now(self.zone))
        self.consents = ConsentRegistry(journal, settings.consent, utc_offset_hours=utc_offset_hours, clock=self._clock)
        self._lines: dict[tuple[str, str], Any] = {}

    # ------------------------------------------------------------ building
    @classmethod
    def from_settings(cls, settings: MemberSettings, *, engine: Any = None, journal: Journal | None = None,
                      metrics: Any = None, http_transport: Any = None) -> "MemberService":
        """Everything from member.yaml: the gateway (gateway.yaml + adapter), the journal, the packs,
        the e-voucher channel. A bad file stops here with every located problem."""
        from ..gateway.client import SyncGateway
        from ..gateway.config import require_gateway_config
        from ..gateway.settings import default_adapter_path, load_adapter_config
        from .settings import MemberConfigError
        if settings.gateway is None:
            raise MemberConfigError([_problem(settings, "E-MEMBER-MISSING", "member.yaml names no gateway "
                                              "(the gateway.yaml of the 定点 interface)")])
        cfg = require_gateway_config(settings.gateway)
        apath = settings.adapter or default_adapter_path(settings.gateway)
        adapter, problems = load_adapter_config(apath, gateway_config=cfg)
        if adapter is None:
            raise MemberConfigError(problems)
        if engine is None:
            from ..api import Engine
            import os
            engine = Engine.from_directory(settings.regions_dir or os.environ.get("RULES_ENGINE_REGIONS", "regions"))
        key = None
        if settings.journal.key_file is not None:
            from ..commands.journal import read_key_file
            key = read_key_file(str(settings.journal.key_file))
        if journal is None:
            path = settings.journal.path or Path(cfg.file).resolve().parent / "member-journal.sqlite"
            try:
                journal = Journal(path, mask_key=key, retention_days=settings.journal.retention_days,
                                  synchronous=settings.journal.sync)
                journal._check_writable()
            except JournalError as e:
                raise MemberConfigError([_problem(settings, e.code, f"the journal {path}: {e.message}")]) from None
        eng_obj = _EngineProxy(engine) if callable(engine) and not hasattr(engine, "settle") else engine
        gw = SyncGateway(cfg, engine=eng_obj, adapter=adapter, journal_key=key, http_transport=http_transport)
        ev = None
        if settings.evoucher.gateway is not None:
            ev = build_evoucher(settings, journal_key=key, metrics=metrics)
        return cls(settings, gateway=gw, gateway_config=cfg, adapter=adapter, engine=engine, journal=journal,
                   metrics=metrics, evoucher=ev)

    def close(self) -> None:
        for x in (self.gateway, self.evoucher):
            if x is not None:
                try:
                    x.close()
                except Exception:
                    pass

    @property
    def engine(self) -> Any:
        return self._engine()

    def now(self) -> dt.datetime:
        return self._clock()

    # ------------------------------------------------------------ the frame of every operation
    def _region(self, region: str | None, errs: list[dict]) -> str:
        r = region or self.settings.region or (next(iter(self.gateway_config.regions)) if len(
            self.gateway_config.regions) == 1 else None)
        if r is None:
            errs.append(field_error("region", "E-MEMBER-REGION", "name the region to send through; configured: "
                                    + ", ".join(sorted(self.gateway_config.regions))))
            return ""
        if r not in self.gateway_config.regions:
            errs.append(field_error("region", "E-MEMBER-REGION", f"region {r!r} is not configured in "
                                    f"{self.gateway_config.file} (configured: "
                                    f"{', '.join(sorted(self.gateway_config.regions))})"))
        return r

    @contextmanager
    def _op(self, op: str, psn_no: Any, *, caller: str, purpose: Any, scope: str, region: str | None = None,
            errs: list[dict] | None = None, need_region: bool = True,
            invalid_code: str = "E-MEMBER-REQUEST") -> Iterator[Context]:
        """Validate, check the consent, run, journal. Refusals are journalled too (member.refused)."""
        t0 = time.perf_counter()
        errs = list(errs or [])
        if not isinstance(psn_no, str) or not _PSN.match(psn_no):
            errs.insert(0, field_error("psn_no", "E-MEMBER-REQUEST", "psn_no (人员编号) is 1–30 letters or digits"))
        if not isinstance(purpose, str) or not purpose.strip():
            errs.append(field_error("purpose", "E-MEMBER-REQUEST", "say what the data is for (purpose), as the "
                                    "consent does"))
        r = self._region(region, errs) if need_region else (region or "")
        ctx = Context(op, str(psn_no)[:30], caller, str(purpose)[:100], scope, r or None)
        try:
            if errs:
                code = "E-MEMBER-REGION" if all(e["code"] == "E-MEMBER-REGION" for e in errs) else invalid_code
                raise invalid(code, errs)
            ctx.consent = self.consents.check(ctx.psn_no, caller=caller, purpose=ctx.purpose, scope=scope)
            yield ctx
        except MemberError as e:
            self._record(ctx, "refused", e)
            self._count(op, "refused" if e.status < 500 and e.code != "E-MEMBER-PLATFORM" else "failed", t0)
            raise
        self._record(ctx, "ok", None)
        self._count(op, "ok", t0)

    def _count(self, op: str, outcome: str, t0: float) -> None:
        if self.metrics is not None:
            self.metrics.queries.labels(op, outcome).inc()
            self.metrics.latency.labels(op).observe(time.perf_counter() - t0)

    def _record(self, ctx: Context, outcome: str, err: MemberError | None) -> None:
        if err is not None and err.code == "E-JOURNAL":
            return
        payload: dict[str, Any] = {"op": ctx.op, "psn_no": ctx.psn_no, "caller": ctx.caller, "purpose": ctx.purpose,
                                   "data": ctx.scope, "region": ctx.region, "outcome": outcome,
                                   "consent_id": ctx.consent.consent_id if ctx.consent else None,
                                   "consent_seq": ctx.consent.seq if ctx.consent else None,
                                   "infno": ctx.infnos, "msgids": ctx.msgids, **ctx.extra}
        if err is not None:
            payload.update({"code": err.code, "detail": err.message[:500], "errors": err.errors[:20]})
        keys = {"psn_no": ctx.psn_no, "member_op": ctx.op,
                "consent_id": ctx.consent.consent_id if ctx.consent else None}
        try:
            self.journal.append("member.query" if err is None else "member.refused", payload, keys=keys)
        except JournalError as e:
            if err is None:  # an answer that cannot be recorded is not given
                raise MemberError("E-JOURNAL", f"the journal cannot be written; the answer is withheld: {e.message}") \
                    from None

    def _call(self, ctx: Context, infno: str, input_: Mapping[str, Any], *, purpose: str = "member") -> Any:
        a = self.gateway.call(ctx.region, infno, input_, purpose=purpose, insuplc=ctx.region, psn_no=ctx.psn_no)
        ctx.infnos.append(infno)
        if a.msgid:
            ctx.msgids.append(a.msgid)
        return a

    @staticmethod
    def _fail(a: Any, what: str) -> MemberError:
        if a.outcome.value == "unknown":
            return MemberError("E-MEMBER-UNKNOWN", f"{what}: no trustworthy answer from the platform ({a.summary()}); "
                               "nothing is known to have changed")
        return MemberError("E-MEMBER-PLATFORM", f"{what}: the platform refused — {a.err_msg or a.detail}",
                           infcode=a.infcode)

    def _output(self, a: Any) -> dict:
        out = (a.message or {}).get("output")
        return out if isinstance(out, dict) else {}

    # ------------------------------------------------------------ consents
    def give_consent(self, psn_no: Any, *, granted_to: str, data: Any, purpose: Any, channel: Any, until: Any,
                     given_at: Any = None, certno: Any = None, psn_name: Any = None) -> dict[str, Any]:
        c = self.consents.give(psn_no, granted_to=granted_to, data=data, purpose=purpose, channel=channel,
                               until=until, given_at=given_at, certno=certno, psn_name=psn_name)
        if self.metrics is not None:
            self.metrics.consents.labels("given").inc()
        return {**c.to_dict(), "summary": f"已记录您的授权：{c.granted_to} 可为「{c.purpose}」查询 "
                f"{'、'.join(c.data)}，有效至 {c.until[:10]}。您可随时撤回。"}

    def withdraw_consent(self, consent_id: Any, *, by: str, reason: str | None = None) -> dict[str, Any]:
        c = self.consents.withdraw(consent_id, by=by, reason=reason)
        if self.metrics is not None:
            self.metrics.consents.labels("withdrawn").inc()
        return {**c.to_dict(), "summary": f"授权 {c.consent_id} 已撤回，此后的查询将被拒绝。"}

    def list_consents(self, psn_no: Any, *, caller: str | None = None) -> list[dict[str, Any]]:
        if not isinstance(psn_no, str) or not _PSN.match(psn_no):
            raise invalid("E-MEMBER-REQUEST", [field_error("psn_no", "E-MEMBER-REQUEST", "psn_no is 1–30 letters "
                                                           "or digits")])
        return [c.to_dict() for c in self.consents.of(psn_no) if caller is None or c.granted_to == caller]

    # ------------------------------------------------------------ 1101 参保信息
    def _person(self, ctx: Context, certno: str | None = None) -> Any:
        from ..gateway.payloads import build_person_query
        st = self.gateway.gateway.settings(ctx.region)
        a = self._call(ctx, st.infno.person, build_person_query(
            mdtrt_cert_type=self.settings.cert_type if certno else self.settings.psn_cert_type,
            mdtrt_cert_no=certno or ctx.psn_no, certno=certno))
        if not a.ok:
            raise self._fail(a, f"person query ({st.infno.person})")
        if a.model.baseinfo.psn_no != ctx.psn_no:
            raise MemberError("E-MEMBER-REQUEST", "the ID number names another person than psn_no: the consent on "
                              "record does not cover them", errors=[field_error("certno", "E-MEMBER-REQUEST",
                                                                                "belongs to another psn_no")])
        return a

    def insurance(self, psn_no: Any, *, purpose: Any, caller: str, certno: str | None = None,
                  region: str | None = None) -> dict[str, Any]:
        """参保信息 (1101): the person, their insurance types, insured place, psn_type, account balance."""
        with self._op("insurance", psn_no, caller=caller, purpose=purpose, scope="insurance", region=region) as ctx:
            a = self._person(ctx, certno)
            out = self._output(a)
            return self._answer(ctx, out, say.insurance(out))

    def _answer(self, ctx: Context, output: Any, text: str, **more: Any) -> dict[str, Any]:
        return {"psn_no": ctx.psn_no, "infno": ctx.infnos[-1] if ctx.infnos else None, "output": output,
                "summary": text, "consent": ctx.consent.consent_id if ctx.consent else None, "msgids": list(ctx.msgids),
                **more}

    # ------------------------------------------------------------ 2001 待遇资格
    def eligibility(self, psn_no: Any, *, med_type: Any, date: Any = None, insutype: Any = None, dise_codg: Any = None,
                    purpose: Any, caller: str, region: str | None = None) -> dict[str, Any]:
        from ..gateway.payloads import build_eligibility
        errs = []
        if not isinstance(med_type, str) or not _MED.match(med_type):
            errs.append(field_error("med_type", "E-MEMBER-REQUEST", "med_type is a 医疗类别 code in text form (11, 14, "
                                    "21 …)"))
        day = self._date(date, "date", errs)
        if insutype is not None and (not isinstance(insutype, str) or not insutype.isdigit()):
            errs.append(field_error("insutype", "E-MEMBER-REQUEST", "insutype is a code in text form (310, 390 …)"))
        with self._op("eligibility", psn_no, caller=caller, purpose=purpose, scope="eligibility", region=region,
                      errs=errs) as ctx:
            if insutype is None:
                person = self._person(ctx)
                rows = person.model.insuinfo
                insutype = rows[0].insutype if rows else "310"
            st = self.gateway.gateway.settings(ctx.region)
            rc = self.gateway.gateway.region(ctx.region)
            a = self._call(ctx, st.infno.eligibility, build_eligibility(
                psn_no=ctx.psn_no, insutype=insutype, fixmedins_code=rc.fixmedins_code, med_type=med_type,
                begntime=f"{day} 00:00:00", dise_codg=dise_codg))
            if not a.ok:
                raise self._fail(a, f"eligibility check ({st.infno.eligibility})")
            out = self._output(a)
            return self._answer(ctx, out, say.eligibility(out, med_type=med_type, day=day), med_type=med_type,
                                date=day, insutype=insutype)

    def _date(self, v: Any, name: str, errs: list[dict], *, default_today: bool = True) -> str:
        if v is None and default_today:
            return self.now().strftime("%Y-%m-%d")
        d = iso_date(v) if isinstance(v, str) and len(v) == 10 else None
        if d is None:
            errs.append(field_error(name, "E-MEMBER-REQUEST", f"{name} is a date yyyy-MM-dd, not {str(v)[:30]!r}"))
            return ""
        return d

    # ------------------------------------------------------------ 5301 慢特病备案
    def chronic(self, psn_no: Any, *, purpose: Any, caller: str, region: str | None = None) -> dict[str, Any]:
        f = self.settings.chronic_fields
        with self._op("chronic", psn_no, caller=caller, purpose=purpose, scope="chronic", region=region) as ctx:
            infno = self.settings.transactions.chronic_query
            a = self._call(ctx, infno, {"data": {"psn_no": ctx.psn_no}})
            if not a.ok:
                raise self._fail(a, f"chronic-disease query ({infno})")
            out = self._output(a)
            rows = out.get(f.node) or []
            rows = rows if isinstance(rows, list) else [rows]
            return self._answer(ctx, out, say.chronic(rows, f))

    # ------------------------------------------------------------ 5206 累计 + our estimate
    def benefits(self, psn_no: Any, *, purpose: Any, caller: str, date: Any = None, med_types: Any = None,
                 hosp_lv: Any = None, region: str | None = None) -> dict[str, Any]:
        """Year-to-date figures (5206) and, computed by our packs and labelled so, what remains before
        each cap and what the next 1,000 yuan of in-scope cost would get back."""
        from ..gateway.payloads import build_cumulative
        errs: list[dict] = []
        day = self._date(date, "date", errs)
        mts = med_types if med_types is not None else list(self.settings.estimate.med_types)
        if isinstance(mts, str):
            mts = [x.strip() for x in mts.split(",") if x.strip()]
        if not isinstance(mts, (list, tuple)) or not mts or not all(isinstance(m, str) and _MED.match(m) for m in mts):
            errs.append(field_error("med_types", "E-MEMBER-REQUEST", "med_types lists 医疗类别 codes (11, 21 …)"))
            mts = []
        lv = hosp_lv if hosp_lv is not None else self.settings.estimate.hosp_lv
        if not isinstance(lv, str) or lv not in ("1", "2", "3"):
            errs.append(field_error("hosp_lv", "E-MEMBER-REQUEST", "hosp_lv is 1, 2 or 3 (医院等级)"))
        with self._op("benefits", psn_no, caller=caller, purpose=purpose, scope="benefits", region=region,
                      errs=errs) as ctx:
            person = self._person(ctx)
            st = self.gateway.gateway.settings(ctx.region)
            cum = self._call(ctx, st.infno.cumulative, build_cumulative(psn_no=ctx.psn_no, cum_ym=day[:7].replace("-", "")))
            if not cum.ok:
                raise self._fail(cum, f"year-to-date query ({st.infno.cumulative})")
            rows = person.model.insuinfo
            if not rows:
                raise MemberError("E-MEMBER-PLATFORM", "the platform lists no insurance for this person")
            ins = rows[0]
            base = {"psn_no": ctx.psn_no, "insutype": ins.insutype, "insuplc_admdvs": ins.insuplc_admdvs,
                    "mdtrtarea_admvs": ins.insuplc_admdvs, "setl_time": day, "hosp_lv": lv}
            estimates = []
            amount = fen_decimal(self.settings.estimate.amount_fen)
            for mt in mts:
                estimates.append(self._estimate(dict(base, med_type=mt), person.model, cum.model, st, amount))
            out = self._output(cum)
            ctx.extra["estimate_packs"] = sorted({e["pack"] for e in estimates if e.get("pack")})
            return self._answer(ctx, out, say.benefits(estimates, f"{amount:,.0f}"),
                                estimate={"label": ESTIMATE_LABEL, "amount": amount, "date": day, "hosp_lv": lv,
                                          "by_med_type": estimates})

    def _estimate(self, base: dict, person: Any, cumulative: Any, st: Any, amount: Decimal) -> dict[str, Any]:
        from ..gateway.payloads import fill_claim
        eng = self.engine
        try:
            pack = eng.packs.select(base["mdtrtarea_admvs"], base["setl_time"])
            insured = eng.packs.select(base["insuplc_admdvs"], base["setl_time"])
        except Exception as e:
            return {"med_type": base["med_type"], "error": getattr(e, "message", str(e))}
        code = self._in_scope_code(pack, base["setl_time"])
        if code is None:
            return {"med_type": base["med_type"], "error": f"no 甲类 item without ceiling in {pack.label}"}
        amap = dict(st.person.accumulators)
        for a in insured.accumulators:
            amap.setdefault(a.id, a.id)
        claim, notes = fill_claim({**base, "feedetail": [{"feedetl_sn": "1", "med_list_codg": code, "cnt": 1,
                                                          "pric": amount, "det_item_fee_sumamt": amount}]},
                                  person, cumulative=cumulative, accumulator_map=amap,
                                  retired_psn_types=st.person.retired_psn_types)
        claim["setl_time"] = base["setl_time"]
        for k in ("psn_name", "certno", "psn_cert_type", "naty", "balc"):
            claim.pop(k, None)
        try:
            s = eng.settle(claim)
        except SettlementError as e:
            return {"med_type": base["med_type"], "error": e.message}
        layers = []
        for r in s.layers:
            d_amt = r.deductible_amount
            layers.append({"layer": r.layer.id, "name": r.layer.name, "fund_pay_type": r.layer.fund_pay_type,
                           "pays": fen_decimal(r.pay),
                           "deductible": fen_decimal(d_amt) if d_amt is not None else None,
                           "deductible_remaining": (fen_decimal(max(0, d_amt - r.deductible_used_before))
                                                    if d_amt is not None else None),
                           "caps": [{"amount": fen_decimal(c.amount), "used": fen_decimal(c.used),
                                     "remaining": fen_decimal(c.remaining), "period": c.cap.period}
                                    for c in r.caps]})
        info = s.setlinfo()
        return {"med_type": base["med_type"], "item": code, "fund_pay_sumamt": info["fund_pay_sumamt"],
                "psn_part_amt": info["psn_part_amt"], "funds": s.setldetail(), "layers": layers,
                "accumulators": {k: str(v) for k, v in (claim.get("accumulators") or {}).items()},
                "pack": s.insured.label, "notes": notes}

    def _in_scope_code(self, pack: Any, day: str) -> str | None:
        """A catalogue item wholly in scope (甲类, no ceiling, no restriction) for the synthetic claim."""
        key = (pack.label, day[:4])
        if key not in self._lines:
            found = None
            for code, entries in sorted(pack.catalogue.items()):
                e = pack.lookup(code, day)
                if e is not None and e.category == "甲" and e.ceiling is None and not e.restrictions \
                        and not e.selfpay and e.match == "exact":
                    found = code
                    break
            self._lines[key] = found
        return self._lines[key]

    # ------------------------------------------------------------ 异地就医备案
    def _filings(self, ctx: Context) -> tuple[list[FilingRecord], str | None]:
        infno = self.settings.transactions.filing_query
        a = self._call(ctx, infno, {"data": {"psn_no": ctx.psn_no}})
        if not a.ok:
            raise self._fail(a, f"filing query ({infno})")
        return read_filings(self._output(a), self.settings, ctx.psn_no), a.msgid

    def filings(self, psn_no: Any, *, purpose: Any, caller: str, region: str | None = None) -> dict[str, Any]:
        with self._op("filings", psn_no, caller=caller, purpose=purpose, scope="filings", region=region) as ctx:
            recs, _ = self._filings(ctx)
            return self._answer(ctx, {"filings": [r.to_dict() for r in recs]}, say.filings(recs))

    def _check_region(self, code: Any, day: str, path: str, errs: list[dict]) -> None:
        if not isinstance(code, str) or not _REGION.match(code):
            errs.append(field_error(path, "E-MEMBER-REGION", "a region is a 6-digit code in text form"))
            return
        from ..packs.registry import PackSelectionError
        try:
            self.engine.packs.select(code, day or self.now().strftime("%Y-%m-%d"))
        except PackSelectionError as e:
            errs.append(field_error(path, "E-MEMBER-REGION", f"unknown region {code}: {e.message}"))

    def file(self, psn_no: Any, *, type: Any, admdvs: Any, begndate: Any, enddate: Any = None, insutype: Any = None,
             purpose: Any, caller: str, region: str | None = None) -> dict[str, Any]:
        """异地就医备案 (2501): validated here first — type, target region, dates, no overlap with a
        filing of the same type — then filed. An unknown outcome is resolved from the filing query."""
        errs: list[dict] = []
        if type not in FILEABLE:
            errs.append(field_error("type", "E-FILING-INVALID", f"type is one of {', '.join(FILEABLE)} (long-term: "
                                    f"{', '.join(LONG_TERM)}; temporary: {', '.join(TEMPORARY)})"))
        b = self._date(begndate, "begndate", errs, default_today=False)
        e = self._date(enddate, "enddate", errs, default_today=False) if enddate is not None else None
        if b and e and e < b:
            errs.append(field_error("enddate", "E-FILING-INVALID", f"the filing ends ({e}) before it starts ({b})"))
        if type in TEMPORARY and enddate is None:
            errs.append(field_error("enddate", "E-FILING-INVALID", "a temporary filing needs its last day (enddate)"))
        self._check_region(admdvs, b, "admdvs", errs)
        with self._op("file", psn_no, caller=caller, purpose=purpose, scope="filings", region=region, errs=errs,
                      invalid_code="E-FILING-INVALID") as ctx:
            person = self._person(ctx)
            rows = person.model.insuinfo
            if insutype is None:
                insutype = rows[0].insutype if rows else None
            row = next((r for r in rows if r.insutype == insutype), None)
            if row is None:
                raise invalid("E-FILING-INVALID", [field_error("insutype", "E-FILING-INVALID",
                                                               f"the person has no insurance {insutype}")], "the filing")
            if row.insuplc_admdvs and (admdvs == row.insuplc_admdvs or region_covers(row.insuplc_admdvs, admdvs)):
                raise invalid("E-FILING-INVALID", [field_error("admdvs", "E-FILING-INVALID", f"{admdvs} is the "
                                                               f"person's insured place ({row.insuplc_admdvs}): "
                                                               "treatment there needs no filing")], "the filing")
            existing, _ = self._filings(ctx)
            clash = [f for f in existing if f.type == type and f.overlaps(b, e)]
            if clash:
                c = clash[0]
                raise MemberError("E-FILING-OVERLAP", f"the filing {b} … {e or 'open'} overlaps filing {c.id} of the "
                                  f"same type ({c.begndate} … {c.enddate or 'open'}): revoke or change that one first",
                                  errors=[field_error("begndate" if c.begndate <= b else "enddate", "E-FILING-OVERLAP",
                                                      f"overlaps {c.id} ({c.begndate} … {c.enddate or 'open'})")],
                                  filing=c.id)
            f = self.settings.filing_fields
            node: dict[str, Any] = {"psn_no": ctx.psn_no, "insutype": insutype,
                                    f.type: self.settings.filing_type_codes[type], f.region: admdvs, f.begndate: b}
            if e:
                node[f.enddate] = e
            infno = self.settings.transactions.filing
            a = self._call(ctx, infno, {f.node: node}, purpose="member.file")
            fid = None
            if a.ok:
                res = self._output(a).get("result")
                fid = (res or {}).get(f.id) if isinstance(res, dict) else None
            elif a.outcome.value == "unknown":
                # resolve before anything else: did the platform record it?
                after, _ = self._filings(ctx)
                hit = [x for x in after if x.type == type and x.admdvs == admdvs and x.begndate == b
                       and x.enddate == e and not x.revoked and x.id not in {y.id for y in existing}]
                if not hit:
                    raise MemberError("E-MEMBER-UNKNOWN", f"the filing ({infno}) got no trustworthy answer and the "
                                      "platform's filing query shows none: nothing was filed; file again")
                fid = hit[0].id
            else:
                raise self._fail(a, f"filing ({infno})")
            if not fid:
                raise MemberError("E-MEMBER-PLATFORM", f"the filing answer names no {f.id}")
            rec = FilingRecord(id=str(fid), psn_no=ctx.psn_no, type=type, admdvs=admdvs, begndate=b, enddate=e,
                               insutype=insutype)
            ctx.extra["filing"] = rec.id
            return self._answer(ctx, self._output(a), say.filed(rec), filing=rec.to_dict())

    def revoke(self, psn_no: Any, filing_id: Any, *, purpose: Any, caller: str, reason: str | None = None,
               region: str | None = None) -> dict[str, Any]:
        """Revoke a filing (2502). Later claims are settled without it."""
        errs = []
        if not isinstance(filing_id, str) or not filing_id.strip():
            errs.append(field_error("filing_id", "E-FILING-INVALID", "name the filing to revoke"))
        with self._op("revoke", psn_no, caller=caller, purpose=purpose, scope="filings", region=region,
                      errs=errs, invalid_code="E-FILING-INVALID") as ctx:
            recs, _ = self._filings(ctx)
            rec = next((r for r in recs if r.id == filing_id), None)
            if rec is None:
                raise MemberError("E-FILING-UNKNOWN", f"the person has no filing {filing_id}",
                                  errors=[field_error("filing_id", "E-FILING-UNKNOWN", "no such filing")])
            if rec.revoked:
                raise MemberError("E-FILING-STATE", f"filing {filing_id} is revoked already")
            f = self.settings.filing_fields
            infno = self.settings.transactions.filing_revoke
            a = self._call(ctx, infno, {f.revoke_node: {"psn_no": ctx.psn_no, f.id: filing_id,
                                                       "memo": (reason or "")[:200]}}, purpose="member.revoke")
            if not a.ok:
                if a.outcome.value == "unknown":
                    after, _ = self._filings(ctx)
                    if not any(x.id == filing_id and x.revoked for x in after):
                        raise self._fail(a, f"revocation ({infno})")
                else:
                    raise self._fail(a, f"revocation ({infno})")
            ctx.extra["filing"] = filing_id
            gone = FilingRecord(**{**rec.__dict__, "revoked": True})
            return self._answer(ctx, self._output(a), f"备案 {filing_id} 已撤销；此后的就医按未备案结算（急诊除外）。",
                                filing=gone.to_dict())

    # ------------------------------------------------------------ settle with the filing on record
    def _attach_filing(self, ctx: Context, claim: dict) -> tuple[dict, dict | None]:
        day = str(claim.get("setl_time") or "")[:10]
        where = str(claim.get("mdtrtarea_admvs") or "")
        given = claim.get("filing")
        if given is not None or claim.get("filing_type") not in (None, "unfiled"):
            fid = given.get("id") if isinstance(given, dict) else None
            if not isinstance(fid, str) or not fid:
                raise invalid("E-FILING-INVALID", [field_error("filing.id" if isinstance(given, dict) else "filing_type",
                                                               "E-FILING-INVALID", "a claim settled here takes its "
                                                               "filing from the platform's record: leave filing out, "
                                                               "or name its id (filing.id) to have it checked")],
                              "the claim")
        recs, qmsgid = self._filings(ctx)
        src = f"platform filing query {self.settings.transactions.filing_query} (msgid {qmsgid})"
        if isinstance(given, dict):
            rec = next((r for r in recs if r.id == given["id"]), None)
            if rec is None:
                raise MemberError("E-FILING-UNKNOWN", f"the claim names filing {given['id']}, which the platform does "
                                  "not hold for this person",
                                  errors=[field_error("filing.id", "E-FILING-UNKNOWN", "no such filing")])
            if rec.revoked:
                raise MemberError("E-FILING-REVOKED", f"the claim names filing {rec.id}, which was revoked (2502): it "
                                  "cannot be settled under it; leave the filing out to be settled as unfiled",
                                  errors=[field_error("filing.id", "E-FILING-REVOKED", f"{rec.id} is revoked")])
            if not rec.covers(day, where):
                raise MemberError("E-FILING-INVALID", f"filing {rec.id} ({rec.admdvs}, {rec.begndate} … "
                                  f"{rec.enddate or 'open'}) does not cover treatment in {where} on {day}",
                                  errors=[field_error("filing.id", "E-FILING-INVALID", "not in force for this visit")])
        else:
            rec = pick([r for r in recs if r.psn_no == ctx.psn_no], day, where)
        claim = dict(claim)
        claim.pop("filing_type", None)
        if rec is None:
            claim.pop("filing", None)
            return claim, None
        claim["filing"] = rec.claim_filing(src)
        ctx.extra["filing"] = rec.id
        return claim, claim["filing"]

    def settle(self, claim: Any, *, purpose: Any, caller: str, region: str | None = None,
               submit: bool = False, explain: bool = False) -> dict[str, Any]:
        """Settle a claim with the person's filing on record attached (or none: unfiled; emergency
        counts as filed by the insured pack). `submit=True` also books it through the gateway
        (2204/2206/2207), the platform applying the filing *it* holds."""
        if not isinstance(claim, dict):
            raise invalid("E-MEMBER-REQUEST", [field_error("claim", "E-MEMBER-REQUEST", "the claim is a JSON object")])
        with self._op("settle", claim.get("psn_no"), caller=caller, purpose=purpose, scope="filings",
                      region=region or claim.get("mdtrtarea_admvs")) as ctx:
            c, filing = self._attach_filing(ctx, claim)
            try:
                s = self.engine.settle({k: v for k, v in c.items() if k not in _GATEWAY_ONLY})
            except SettlementError as e:
                raise MemberError(e.code, e.message, errors=[x.to_dict() for x in getattr(e, "errors", [])],
                                  status=422) from None
            info = s.setlinfo()
            cross = c.get("insuplc_admdvs") != c.get("mdtrtarea_admvs")
            expl = [x for x in s.explain() if x.get("field") in ("filing", "hifp_pay", "fund_pay_sumamt")] \
                if not explain else s.explain()
            out: dict[str, Any] = {"setlinfo": info, "setldetail": s.setldetail(), "filing": filing,
                                   "filing_type": s.facts.get("filing_type"), "explanation": expl,
                                   "packs": s.packs()}
            if submit:
                r = self.gateway.submit(c)
                ctx.msgids.extend(m.get("msgid") for m in r.messages if m.get("msgid"))
                out["submission"] = {"state": r.state, "setl_id": r.setl_id, "settle_msgid": r.settle_msgid,
                                     "platform": r.platform, "comparison": (r.comparison or {}).get("result"),
                                     "error": r.error}
                if not r.ok:
                    raise MemberError("E-MEMBER-PLATFORM", f"the settlement was not booked: {r.state} "
                                      f"{r.error_code or ''} {r.error or ''}".strip())
            return self._answer(ctx, out, say.settlement(info, filing, cross), filing=filing)

    # ------------------------------------------------------------ e-voucher payment
    def _ev(self) -> Any:
        if self.evoucher is None:
            raise MemberError("E-MEMBER-REQUEST", "no e-voucher channel is configured (member.yaml evoucher.gateway)",
                              status=501)
        return self.evoucher

    def pay(self, claim: Any, *, ec_token: Any, purpose: Any, caller: str) -> dict[str, Any]:
        """Pay a visit with the person's 医保电子凭证: fee upload, payment order (scheme B)."""
        from ..gateway.payloads import visit_ids
        from .evoucher import order_view
        ev = self._ev()
        errs = []
        if not isinstance(claim, dict):
            raise invalid("E-EVOUCHER-INVALID", [field_error("claim", "E-EVOUCHER-INVALID", "a JSON object")])
        if not isinstance(ec_token, str) or not ec_token.strip():
            errs.append(field_error("ec_token", "E-EVOUCHER-INVALID", "the e-voucher token from the person's app"))
        with self._op("pay", claim.get("psn_no"), caller=caller, purpose=purpose, scope="payment",
                      region=ev.rc.region, errs=errs, need_region=False) as ctx:
            c, filing = self._attach_filing(ctx, claim) if claim.get("insuplc_admdvs") != claim.get(
                "mdtrtarea_admvs") else (dict(claim), None)
            c = self._with_year_to_date(ctx, c)
            try:
                s = self.engine.settle({k: v for k, v in c.items() if k not in _GATEWAY_ONLY})
            except SettlementError as e:
                raise MemberError(e.code, e.message, errors=[x.to_dict() for x in getattr(e, "errors", [])],
                                  status=422) from None
            info = s.setlinfo()
            ours = {"feeSumamt": str(info["medfee_sumamt"]), "fundPay": str(info["fund_pay_sumamt"]),
                    "psnAcctPay": str(info["acct_pay"]), "ownPayAmt": str(info["psn_cash_pay"])}
            key = visit_ids(c)["visit_key"]
            o = ev.pay(claim=c, order_key=key, ec_token=ec_token, ours=ours, insutype=str(c.get("insutype")))
            v = order_view(o)
            ctx.extra.update({"order": o.id, "order_state": o.state})
            ctx.msgids.extend(m for m in (o.upload_msgid, o.pay_msgid) if m)
            return {**self._answer(ctx, v, say.order(v)), "order": o.id, "state": o.state, "filing": filing}

    def _with_year_to_date(self, ctx: Context, claim: dict) -> dict:
        """The claim with the person's year-to-date figures (5206) when it carries none, so that our
        figure kept beside the order is computed on what the platform will use (deductible already
        paid, caps used). When 5206 fails the claim is settled as given: the platform's figure is
        the one paid either way, and ours is only compared with it."""
        if claim.get("accumulators") is not None:
            return claim
        from ..gateway.payloads import build_cumulative, fill_claim
        st = self.gateway.gateway.settings(ctx.region)
        day = str(claim.get("setl_time") or self.now().date().isoformat())[:10]
        cum = self._call(ctx, st.infno.cumulative, build_cumulative(psn_no=ctx.psn_no, cum_ym=day[:7].replace("-", "")))
        if not cum.ok:
            return claim
        try:
            insured = self.engine.packs.select(str(claim.get("insuplc_admdvs")), day)
        except Exception:  # the settlement below names the missing pack with its own code
            return claim
        amap = dict(st.person.accumulators)
        for a in insured.accumulators:
            amap.setdefault(a.id, a.id)
        filled, _ = fill_claim(claim, None, cumulative=cum.model, accumulator_map=amap,
                               retired_psn_types=st.person.retired_psn_types)
        return filled

    def _order_op(self, op: str, order: Any, *, purpose: Any, caller: str, fn: Callable[[Any, str], Any]) -> dict:
        from .evoucher import order_view
        ev = self._ev()
        o = ev.order(order)
        with self._op(op, o.psn_no, caller=caller, purpose=purpose, scope="payment", region=ev.rc.region,
                      need_region=False) as ctx:
            o = fn(ev, o.id)
            v = order_view(o)
            ctx.extra.update({"order": o.id, "order_state": o.state})
            return {**self._answer(ctx, v, say.order(v)), "order": o.id, "state": o.state}

    def refund(self, order: Any, *, purpose: Any, caller: str) -> dict[str, Any]:
        """Refund (6203) a paid order, or revoke (6401) one not paid."""
        return self._order_op("refund", order, purpose=purpose, caller=caller, fn=lambda ev, oid: ev.refund(oid))

    def order_status(self, order: Any, *, purpose: Any, caller: str) -> dict[str, Any]:
        """An order's state; an unknown outcome is resolved with the status query (6301) first."""
        return self._order_op("status", order, purpose=purpose, caller=caller, fn=lambda ev, oid: ev.status(oid))

    def evoucher_callback(self, body: bytes) -> dict[str, Any]:
        from .evoucher import order_view
        o = self._ev().callback(body)
        return order_view(o)


_GATEWAY_ONLY = frozenset({"mdtrt_cert_type", "mdtrt_cert_no", "psn_setlway", "invono", "mid_setl_flag"})


def build_evoucher(settings: MemberSettings, *, journal_key: bytes | None = None, metrics: Any = None,
                   transport: Any = None) -> Any:
    """The e-voucher client from member.yaml's `evoucher` block: a gateway.yaml-format file whose one
    region entry is the 移动支付 channel (endpoint, scheme_b keys, timeouts, outbox)."""
    from ..gateway.config import require_gateway_config
    from .evoucher import EVoucherClient
    ev = settings.evoucher
    cfg = require_gateway_config(ev.gateway)
    code = ev.region or (next(iter(cfg.regions)) if len(cfg.regions) == 1 else None)
    if code is None or code not in cfg.regions:
        from .settings import MemberConfigError
        raise MemberConfigError([_problem(settings, "E-MEMBER-REGION", f"evoucher.region must name one region of "
                                          f"{cfg.file} ({', '.join(cfg.regions)})")])
    rc = cfg.region(code)
    jpath = rc.journal.path if rc.journal.path is not None else Path(rc.outbox.path).with_name("gateway-journal.sqlite")
    journal = Journal(jpath, mask_key=journal_key, retention_days=rc.journal.retention_days)
    return EVoucherClient(rc, ev, journal=journal, metrics=metrics, transport=transport)


def _problem(settings: MemberSettings, code: str, message: str) -> Any:
    from ..problems import Problem
    return Problem(code, message, file=settings.file or "member.yaml")
