"""POST /v1/audit and POST /v1/convert/icd — the smart audit and the ICD conversion over HTTP.

Why an extension module: the two endpoints use what /v1/settle uses (auth, body limits, the
bounded worker pool, problem+json, metrics labels) through `ServiceContext`, and answer exactly as
`rules-engine audit` and `rules-engine convert icd --format json` do, through the same functions
(`audit.run.audit_claim`, `coding.systems.resolve_systems`, `Coding.translate`).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import Depends, FastAPI, Request
from starlette.responses import Response

from ..model.claim import SettlementError
from ..packs.registry import PackSelectionError
from .jsonout import dumps_plain
from .limits import check_shape, loads
from .problems import CODES, ProblemException, from_settlement_error

CODES.setdefault("E-CODE-SYSTEM", (422, "Not a code system of the pack"))
CODES.setdefault("E-CODE-FORM", (422, "A code is malformed"))
CODES.setdefault("E-CONVERT-REQUEST", (422, "The conversion request is not valid"))

_SECURITY = {"security": [{"bearer": []}, {"apiKey": []}], "x-required-role": "settle"}
_PROBLEMS = {s: {"description": d, "content": {"application/problem+json": {"schema": {
    "$ref": "#/components/schemas/Problem"}}}} for s, d in (
    (400, "Bad request"), (401, "No or a bad API key"), (403, "The key's role does not allow this"),
    (413, "Too large"), (422, "Invalid input, with the field path of each problem"), (429, "Busy"))}

CONVERT_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["codes", "from", "to"], "additionalProperties": False,
    "properties": {
        "codes": {"type": "array", "items": {"type": "string", "maxLength": 40}, "minItems": 1, "maxItems": 10_000,
                  "description": "诊断或手术操作编码 / diagnosis (ICD-10) or procedure (ICD-9-CM-3) codes"},
        "from": {"type": "string", "examples": ["clinical-2.0"], "description": "edition of the codes"},
        "to": {"type": "string", "examples": ["insurance-2.0"], "description": "edition to convert to"},
        "family": {"type": "string", "enum": ["auto", "icd10", "icd9cm3"], "default": "auto"},
        "region": {"type": "string", "pattern": "^[0-9]{6}$", "default": "000000",
                   "description": "the pack whose coding tables to use"},
        "date": {"type": "string", "format": "date", "description": "the pack and rows in force that day (default today)"},
        "gend": {"type": "string", "description": "patient sex, for rows that depend on it"},
        "age": {"type": "number", "minimum": 0, "maximum": 150, "description": "patient age, for rows that depend on it"},
    }}


def install(app: FastAPI, ctx: Any) -> None:
    role = Depends(ctx.require("settle"))

    @app.post("/v1/audit", response_model=None, tags=["audit"], summary="Audit one claim (智能审核)",
              description="The claim (as for /v1/settle, `history` allowed) → the audit rules of the pack in force at "
                          "the treatment place: each hit with its rule, action (reject_line / reject_claim / warn), "
                          "the lines involved and the rule's source row. Same answer as `rules-engine audit`.",
              responses={200: {"description": "The audit", "content": {"application/json": {"schema": {
                  "type": "object", "properties": {
                      "pack": {"type": "string"}, "chain": {"type": "array", "items": {"type": "string"}},
                      "rules": {"type": "integer"},
                      "verdict": {"type": "string", "enum": ["clean", "warnings", "lines refused", "claim refused"]},
                      "hits": {"type": "array", "items": {"type": "object"}}}}}}}, **_PROBLEMS},
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": {"$ref": "#/components/schemas/Claim"}}}}, **_SECURITY})
    async def audit(request: Request, key: Any = role) -> Response:
        async with ctx.pending():
            body = await ctx.body(request)

            def work() -> Response:
                from ..audit.run import audit_claim
                data = ctx.parse_claim_json(body)
                if not isinstance(data, dict):
                    raise ProblemException("E-CLAIM-TYPE", "a claim is a JSON object",
                                           errors=[{"path": "", "code": "E-CLAIM-TYPE", "message": "expected an object"}])
                try:
                    out = audit_claim(ctx.packs.engine.packs, data)
                except SettlementError as e:
                    raise from_settlement_error(e) from None
                request.scope.setdefault("state", {})["region"] = out["pack"].partition("@")[0]
                return Response(dumps_plain(out), media_type="application/json")
            return await ctx.compute(work)

    @app.post("/v1/convert/icd", response_model=None, tags=["coding"], summary="Convert ICD codes between editions",
              description="Diagnosis (ICD-10) or procedure (ICD-9-CM-3) codes from one edition to another (国临版 ↔ "
                          "医保版): every target of a code with its relationship (equivalent, source-is-narrower, "
                          "source-is-broader, related, not-mapped) and its table row. Same answer as `rules-engine "
                          "convert icd --format json`; an unknown code is a result of kind `unknown`, a malformed one "
                          "a 422.",
              responses={200: {"description": "The conversions", "content": {"application/json": {"schema": {
                  "type": "object", "properties": {
                      "pack": {"type": "string"}, "date": {"type": "string"}, "from": {"type": "string"},
                      "to": {"type": "string"}, "results": {"type": "array", "items": {"type": "object"}}}}}}},
                  **_PROBLEMS},
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": CONVERT_SCHEMA}}}, **_SECURITY})
    async def convert_icd(request: Request, key: Any = role) -> Response:
        async with ctx.pending():
            body = await ctx.body(request)

            def work() -> Response:
                req = loads(body)
                check_shape(req, max_depth=ctx.limits.max_depth, max_string=ctx.limits.max_string)
                out = convert(ctx.packs.engine.packs, req)
                request.scope.setdefault("state", {})["region"] = out["pack"].partition("@")[0]
                return Response(dumps_plain(out), media_type="application/json")
            return await ctx.compute(work)


def _bad(path: str, message: str, code: str = "E-CONVERT-REQUEST") -> ProblemException:
    return ProblemException(code, message, errors=[{"path": path, "code": code, "message": message}])


def convert(packs: Any, req: Any) -> dict[str, Any]:
    """The conversion a request asks for; ProblemException (with the field path) for a bad request."""
    from ..coding import codes as C
    from ..coding.systems import UnknownSystem, resolve_systems

    if not isinstance(req, dict):
        raise _bad("", "the body is a JSON object {codes, from, to, …}")
    unknown = sorted(set(req) - set(CONVERT_SCHEMA["properties"]))
    if unknown:
        raise _bad(unknown[0], f"unknown field '{unknown[0]}' (fields: {', '.join(CONVERT_SCHEMA['properties'])})")
    for f in ("codes", "from", "to"):
        if f not in req:
            raise _bad(f, f"'{f}' is required")
    codes = req["codes"]
    if not isinstance(codes, list) or not codes or len(codes) > 10_000 or not all(isinstance(c, str) for c in codes):
        raise _bad("codes", "'codes' is a list of 1 to 10,000 code strings")
    for f in ("from", "to", "region", "family", "date", "gend"):
        if f in req and not isinstance(req[f], str):
            raise _bad(f, f"'{f}' is text")
    family = req.get("family", "auto")
    if family not in ("auto", "icd10", "icd9cm3"):
        raise _bad("family", "'family' is auto, icd10 or icd9cm3")
    date = req.get("date") or dt.date.today().isoformat()
    try:
        date = dt.date.fromisoformat(date).isoformat()
    except ValueError:
        raise _bad("date", f"'{date}' is not a date YYYY-MM-DD", "E-DATE") from None
    facts: dict[str, Any] = {}
    if req.get("gend") is not None:
        facts["gend"] = req["gend"]
    if req.get("age") is not None:
        if isinstance(req["age"], bool) or not isinstance(req["age"], (int, float)) or not 0 <= req["age"] <= 150:
            raise _bad("age", "'age' is a number from 0 to 150")
        facts["age"] = req["age"]
    region = req.get("region", "000000")
    try:
        pack = packs.select(region, date)
    except PackSelectionError as e:
        raise ProblemException(e.code, e.message, errors=[{"path": "region", "code": e.code, "message": e.message}]) \
            from None
    coding = pack.coding
    if coding is None:
        raise _bad("region", f"{pack.label} has no coding tables", "E-CODE-SYSTEM")
    try:
        src, tgt = resolve_systems(coding, req["from"], req["to"], family, [c.strip() for c in codes[:1]])
    except UnknownSystem as e:
        raise _bad(e.which, str(e), "E-CODE-SYSTEM") from None
    fam = src.partition(":")[0]
    errors = [{"path": f"codes[{i}]", "code": "E-CODE-FORM", "message": why}
              for i, c in enumerate(codes) if (why := C.code_problem(fam, c.strip()))]
    if errors:
        raise ProblemException("E-CODE-FORM", f"{len(errors)} malformed code(s): {errors[0]['message']}",
                               errors=errors)
    results = [coding.translate(c.strip(), src, tgt, date=date, facts=facts or None).to_dict() for c in codes]
    return {"pack": pack.label, "date": date, "from": src, "to": tgt, "results": results}
