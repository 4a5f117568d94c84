"""Where further endpoints plug in (POST /v1/audit and POST /v1/convert/icd are the first: service/audit_icd.py).

An extension is a function `install(app: FastAPI, ctx: ServiceContext) -> None`, named as
"module:function". The service installs those in `DEFAULT` and those given with
`rules-engine serve --extension module:function`. Inside, use what the settle endpoint uses,
so limits, auth, errors, metrics and the decision log behave the same:

    from fastapi import Depends, Request
    from starlette.responses import Response
    from rules_engine.service.app import dumps
    from rules_engine.service.problems import ProblemException, from_settlement_error

    def install(app, ctx):
        @app.post("/v1/audit", tags=["audit"], response_model=None,
                  openapi_extra={"requestBody": {...}, "security": [{"bearer": []}, {"apiKey": []}],
                                 "x-required-role": "settle"})
        async def audit(request: Request, key=Depends(ctx.require("settle"))):
            async with ctx.pending():                       # bounded waiting bodies (429)
                body = await ctx.body(request)              # size and time limits (413, 408)
                def work():
                    claim = ctx.parse_claim_json(body)      # JSON, depth, numbers, lines (400/413/422)
                    request.scope["state"]["region"] = ... # latency metric label
                    ...                                     # errors: raise ProblemException(code, detail, errors=[…])
                    return Response(dumps(result), media_type="application/json")
                return await ctx.compute(work)              # bounded CPU work in a thread (429)

Then regenerate the checked-in OpenAPI document: `rules-engine openapi -o schemas/openapi.json`
(tests/service/test_openapi.py fails until it is in sync).
"""
from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI

    from .app import ServiceContext

#: Extensions always installed, as "module:function": the audit and the ICD conversion.
DEFAULT: tuple[str, ...] = ("rules_engine.service.audit_icd:install",)
#: Installed when its settings file is named in the environment (docs/member.md): the member routes.
WHEN_CONFIGURED: dict[str, str] = {"RULES_ENGINE_MEMBER_CONFIG": "rules_engine.member.http:install"}


class ExtensionError(RuntimeError):
    pass


def install(app: "FastAPI", ctx: "ServiceContext", names: Iterable[str] = ()) -> list[str]:
    done = []
    configured = [ext for var, ext in WHEN_CONFIGURED.items() if os.environ.get(var)]
    for name in dict.fromkeys([*DEFAULT, *configured, *names]):
        module, _, func = name.partition(":")
        if not module or not func:
            raise ExtensionError(f"extension '{name}': write it as module:function")
        try:
            fn = getattr(importlib.import_module(module), func)
        except (ImportError, AttributeError) as e:
            raise ExtensionError(f"extension '{name}' cannot be loaded: {e}") from None
        fn(app, ctx)
        done.append(name)
    return done
