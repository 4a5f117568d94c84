"""`/v1/member/...` in the settlement service, installed through its extension point:

    RULES_ENGINE_MEMBER_CONFIG=member.yaml rules-engine serve --extension rules_engine.member.http:install …

Same keys and role (`settle`), same limits, same problem+json as /v1/settle; the caller's key id is
who a consent is granted to. The service's journal (`--journal`) holds the consents and member
queries when it is set (one chain with the decision log); otherwise member.yaml's journal.
The e-voucher notification (POST /v1/member/evoucher/callback) needs no key: the platform
signs it, and a bad signature is refused (403) without changing anything.

Blocking work (the platform round trip, journal appends) runs in the service's bounded compute
threads (`ctx.compute`), like a settlement.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable

from fastapi import Depends, Request
from starlette.responses import Response

from ..service import problems as service_problems
from ..service.jsonout import dumps
from ..service.limits import check_shape, loads
from ..service.problems import ProblemException
from .errors import CODES, MemberError
from .settings import ENV_FILE

PREFIX = "/v1/member"


def _problem(e: MemberError) -> ProblemException:
    return ProblemException(e.code, e.message, errors=e.errors, status=e.status, title=e.title)


class _Lazy:
    """The member service of this worker, built once (config errors surface at start)."""

    def __init__(self, ctx: Any, path: str | None):
        self.ctx, self.path = ctx, path
        self._svc = None
        self._mu = threading.Lock()

    def build(self) -> Any:
        from .metrics import MemberMetrics
        from .service import MemberService
        from .settings import require_member_settings
        if self.path is None:
            from ..service.extensions import ExtensionError
            raise ExtensionError(f"the member extension needs its settings: set {ENV_FILE}=member.yaml")
        settings = require_member_settings(self.path)
        ctx = self.ctx

        def outboxes() -> list:
            svc = self._svc
            if svc is None:
                return []
            st = svc.adapter.defaults
            out = [(rc.outbox.path, svc.adapter.region(code).infno.reconcile)
                   for code, rc in svc.gateway_config.regions.items()]
            return out or [(None, st.infno.reconcile)]

        metrics = MemberMetrics(ctx.metrics.registry, outboxes=outboxes)
        svc = MemberService.from_settings(settings, engine=lambda: ctx.packs.engine, journal=ctx.journal,
                                          metrics=metrics)
        try:  # the member service's gateway counts on the service's /metrics too
            ctx.metrics.registry.register(svc.gateway.gateway.metrics.registry)
        except ValueError:
            pass
        self._svc = svc
        return svc

    def get(self) -> Any:
        if self._svc is None:
            with self._mu:
                if self._svc is None:
                    self.build()
        return self._svc


def install(app: Any, ctx: Any) -> None:
    for code, (status, title) in CODES.items():  # /problems/{code} explains ours too
        service_problems.CODES.setdefault(code, (status, title))
    holder = _Lazy(ctx, os.environ.get(ENV_FILE))
    if ctx.packs is not None:  # a real service (not the OpenAPI document): build now, fail at start
        holder.get()
    role = Depends(ctx.require("settle"))
    sec = {"security": [{"bearer": []}, {"apiKey": []}], "x-required-role": "settle"}

    def who(request: Request) -> str:
        return getattr(request.state, "key_id", None) or "anonymous"

    async def run(fn: Callable[[], Any], status: int = 200) -> Response:
        def work() -> Response:
            try:
                out = fn()
            except MemberError as e:
                raise _problem(e) from None
            return Response(dumps(out), status_code=status, media_type="application/json")
        return await ctx.compute(work)

    async def body(request: Request) -> dict:
        raw = await ctx.body(request)
        data = loads(raw) if raw.strip() else {}
        check_shape(data, max_depth=ctx.limits.max_depth, max_string=ctx.limits.max_string)
        if not isinstance(data, dict):
            raise ProblemException("E-MEMBER-REQUEST", "the body is a JSON object", status=422)
        return data

    def q(request: Request, name: str) -> str | None:
        v = request.query_params.get(name)
        return v if v not in (None, "") else None

    # ------------------------------------------------------------ consents
    @app.post(f"{PREFIX}/consents", tags=["member"], summary="Record a person's consent", response_model=None,
              openapi_extra=sec)
    async def give(request: Request, key: Any = role) -> Response:
        async with ctx.pending():
            d = await body(request)
            caller = who(request)
            return await run(lambda: holder.get().give_consent(
                d.get("psn_no"), granted_to=caller, data=d.get("data"), purpose=d.get("purpose"),
                channel=d.get("channel"), until=d.get("until"), given_at=d.get("given_at"), certno=d.get("certno"),
                psn_name=d.get("psn_name")), 201)

    @app.post(f"{PREFIX}/consents/{{consent_id}}/withdraw", tags=["member"], summary="Withdraw a consent",
              response_model=None, openapi_extra=sec)
    async def withdraw(request: Request, consent_id: str, key: Any = role) -> Response:
        async with ctx.pending():
            d = await body(request)
            caller = who(request)
            return await run(lambda: holder.get().withdraw_consent(consent_id, by=caller, reason=d.get("reason")))

    @app.get(f"{PREFIX}/persons/{{psn_no}}/consents", tags=["member"], summary="Consents on record (this client's)",
             response_model=None, openapi_extra=sec)
    async def consents(request: Request, psn_no: str, key: Any = role) -> Response:
        caller = who(request)
        return await run(lambda: {"psn_no": psn_no, "consents": holder.get().list_consents(psn_no, caller=caller)})

    # ------------------------------------------------------------ queries
    @app.get(f"{PREFIX}/persons/{{psn_no}}/insurance", tags=["member"], summary="参保信息 (1101)", response_model=None,
             openapi_extra=sec)
    async def insurance(request: Request, psn_no: str, key: Any = role) -> Response:
        caller = who(request)
        return await run(lambda: holder.get().insurance(psn_no, purpose=q(request, "purpose"), caller=caller,
                                                        region=q(request, "region")))

    @app.get(f"{PREFIX}/persons/{{psn_no}}/eligibility", tags=["member"], summary="待遇资格 (2001)",
             response_model=None, openapi_extra=sec)
    async def eligibility(request: Request, psn_no: str, key: Any = role) -> Response:
        caller = who(request)
        return await run(lambda: holder.get().eligibility(
            psn_no, med_type=q(request, "med_type"), date=q(request, "date"), insutype=q(request, "insutype"),
            dise_codg=q(request, "dise_codg"), purpose=q(request, "purpose"), caller=caller,
            region=q(request, "region")))

    @app.get(f"{PREFIX}/persons/{{psn_no}}/chronic", tags=["member"], summary="慢特病备案 (5301)",
             response_model=None, openapi_extra=sec)
    async def chronic(request: Request, psn_no: str, key: Any = role) -> Response:
        caller = who(request)
        return await run(lambda: holder.get().chronic(psn_no, purpose=q(request, "purpose"), caller=caller,
                                                      region=q(request, "region")))

    @app.get(f"{PREFIX}/persons/{{psn_no}}/benefits", tags=["member"],
             summary="Year-to-date figures (5206) and an estimate of what remains", response_model=None,
             openapi_extra=sec)
    async def benefits(request: Request, psn_no: str, key: Any = role) -> Response:
        caller = who(request)
        return await run(lambda: holder.get().benefits(
            psn_no, purpose=q(request, "purpose"), caller=caller, date=q(request, "date"),
            med_types=q(request, "med_types"), hosp_lv=q(request, "hosp_lv"), region=q(request, "region")))

    # ------------------------------------------------------------ filings
    @app.get(f"{PREFIX}/persons/{{psn_no}}/filings", tags=["member"], summary="异地就医备案 on record",
             response_model=None, openapi_extra=sec)
    async def filings(request: Request, psn_no: str, key: Any = role) -> Response:
        caller = who(request)
        return await run(lambda: holder.get().filings(psn_no, purpose=q(request, "purpose"), caller=caller,
                                                      region=q(request, "region")))

    @app.post(f"{PREFIX}/persons/{{psn_no}}/filings", tags=["member"], summary="File (2501)", response_model=None,
              openapi_extra=sec)
    async def file(request: Request, psn_no: str, key: Any = role) -> Response:
        async with ctx.pending():
            d = await body(request)
            caller = who(request)
            return await run(lambda: holder.get().file(
                psn_no, type=d.get("type"), admdvs=d.get("admdvs"), begndate=d.get("begndate"),
                enddate=d.get("enddate"), insutype=d.get("insutype"), purpose=d.get("purpose"), caller=caller,
                region=d.get("region")), 201)

    @app.post(f"{PREFIX}/persons/{{psn_no}}/filings/{{filing_id}}/revoke", tags=["member"], summary="Revoke (2502)",
              response_model=None, openapi_extra=sec)
    async def revoke(request: Request, psn_no: str, filing_id: str, key: Any = role) -> Response:
        async with ctx.pending():
            d = await body(request)
            caller = who(request)
            return await run(lambda: holder.get().revoke(psn_no, filing_id, purpose=d.get("purpose"), caller=caller,
                                                         reason=d.get("reason"), region=d.get("region")))

    @app.post(f"{PREFIX}/settle", tags=["member"], summary="Settle a claim with the filing on record",
              response_model=None, openapi_extra=sec)
    async def settle(request: Request, key: Any = role) -> Response:
        async with ctx.pending():
            d = await body(request)
            caller = who(request)
            submit = q(request, "submit") in ("1", "true", "yes")
            return await run(lambda: holder.get().settle(d, purpose=q(request, "purpose"), caller=caller,
                                                         submit=submit))

    # ------------------------------------------------------------ e-voucher
    @app.post(f"{PREFIX}/evoucher/orders", tags=["member"], summary="Pay by 医保电子凭证 (6201 + 6202)",
              response_model=None, openapi_extra=sec)
    async def pay(request: Request, key: Any = role) -> Response:
        async with ctx.pending():
            d = await body(request)
            caller = who(request)
            return await run(lambda: holder.get().pay(d.get("claim"), ec_token=d.get("ec_token"),
                                                      purpose=d.get("purpose"), caller=caller), 201)

    @app.get(f"{PREFIX}/evoucher/orders/{{order}}", tags=["member"], summary="An e-voucher order (6301 if unknown)",
             response_model=None, openapi_extra=sec)
    async def order(request: Request, order: str, key: Any = role) -> Response:
        caller = who(request)
        return await run(lambda: holder.get().order_status(order, purpose=q(request, "purpose"), caller=caller))

    @app.post(f"{PREFIX}/evoucher/orders/{{order}}/refund", tags=["member"],
              summary="Refund (6203) or revoke (6401) an e-voucher order", response_model=None, openapi_extra=sec)
    async def refund(request: Request, order: str, key: Any = role) -> Response:
        async with ctx.pending():
            d = await body(request)
            caller = who(request)
            return await run(lambda: holder.get().refund(order, purpose=d.get("purpose"), caller=caller))

    @app.post(f"{PREFIX}/evoucher/callback", tags=["member"], summary="The platform's signed payment notification",
              response_model=None)
    async def callback(request: Request) -> Response:
        async with ctx.pending():
            raw = await ctx.body(request)
            return await run(lambda: holder.get().evoucher_callback(raw))
