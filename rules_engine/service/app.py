"""The HTTP API over the same `Engine` the Python API gives: FastAPI on uvicorn.

Why FastAPI: typed OpenAPI from the engine's own pydantic models (a C# or Java team generates
its client from schemas/openapi.json), dependency-injected auth, and uvicorn's workers and
TLS options — the stack gateway.md §4.2 recommends. One deliberate departure from FastAPI
habits: request bodies are *not* parsed by pydantic. The engine's hand-written reader is 10×
faster, reports every bad field with the codes the CLI prints (E-CLAIM-…) and reads amounts as
exact decimals; the `Claim` model documents the same contract in the OpenAPI document, and a
property test in the core holds the two readers to the same verdicts.

Every response carries `X-Request-Id`; settlements carry `X-Rules-Engine-Packs` (the pack
versions and full content hashes used), `X-Rules-Engine-Pack-Set` and, with a journal,
`X-Decision-Seq` (the decision-log entry, for `rules-engine replay`).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import re
import threading
import time
import uuid
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..model.claim import SettlementError
from ..packs.registry import PackSelectionError, PackSet
from .auth import ApiKey, KeyFileError, KeyStore, presented_key
from .config import Limits, ServiceConfig
from .decisions import KIND, decision, digest_fields
from .jsonout import dumps, dumps_plain, to_plain
from .limits import check_lines, check_shape, loads, read_body
from .metrics import Metrics
from .packstate import PackState, pack_set_id
from .problems import CODES, PROBLEM_JSON, ProblemException, from_settlement_error, problem_document, problem_response

log = logging.getLogger("rules_engine.service")
_RID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines")
ZIP_TYPES = ("application/zip", "application/x-zip-compressed", "application/octet-stream")


# ------------------------------------------------------------------ JSON out

def _header_safe(text: str) -> str:
    return text.encode("ascii", "backslashreplace").decode("ascii")


def packs_header(packs: dict[str, Any]) -> str:
    return ", ".join(f"{role}={_header_safe(p['region'])}@{_header_safe(p['version'])}#{p['hash']}"
                     for role, p in packs.items())


# ------------------------------------------------------------------ context

class ServiceContext:
    """What handlers (and extensions such as /v1/audit) use: engine, auth, limits, journal, metrics."""

    def __init__(self, config: ServiceConfig, *, metrics: Metrics | None = None, document_only: bool = False):
        self.config = config
        self.limits: Limits = config.limits
        self.metrics = metrics or Metrics()
        self.packs: PackState = None  # type: ignore[assignment]
        if not document_only:  # an app built only for its OpenAPI document needs no packs
            self.packs = PackState(config.regions, cache=config.cache, metrics=self.metrics,
                                   runtime_dir=config.runtime_dir)
        self.keys: KeyStore | None = KeyStore.load(config.keys_file) if config.keys_file else None
        if self.keys is None and not config.allow_anonymous and not document_only:
            raise KeyFileError("no keys file: give --keys FILE (anonymous access only on a loopback address)")
        self.journal = None
        self.digest_excludes = digest_fields()
        if config.journal and not document_only:
            from ..commands.journal import read_key_file
            from ..journal import Journal
            self.journal = Journal(config.journal, mask_key=read_key_file(config.journal_key_file) if
                                   config.journal_key_file else None, synchronous=config.journal_sync,
                                   retention_days=config.journal_retention_days)
            self.journal._check_writable()  # a wrong masking key fails at start, not on the first claim
            self.digest_excludes = digest_fields(self.journal.masker.fields)
        self._pending = anyio.CapacityLimiter(self.limits.max_pending)
        self._compute = anyio.CapacityLimiter(self.limits.max_inflight)
        self._set_ids: dict[int, str] = {}
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._last_purge = 0.0

    # ------------------------------------------------------------ auth
    def require(self, role: str) -> Callable:
        """A FastAPI dependency: the caller's key must hold `role` (401 / 403 otherwise)."""
        async def dependency(request: Request) -> ApiKey | None:
            if self.keys is None:
                return None
            given = presented_key(request.headers)
            if not given:
                self.metrics.rejected.labels("auth").inc()
                raise ProblemException("E-AUTH-MISSING", "give the API key as 'Authorization: Bearer <key>' or "
                                       "'X-API-Key: <key>'", headers={"WWW-Authenticate": 'Bearer realm="rules-engine"'})
            key = self.keys.authenticate(given)
            if key is None:
                self.metrics.rejected.labels("auth").inc()
                raise ProblemException("E-AUTH-INVALID", "this API key is not known to the service",
                                       headers={"WWW-Authenticate": 'Bearer realm="rules-engine", error="invalid_token"'})
            request.state.key_id = key.id
            if not key.allows(role):
                self.metrics.rejected.labels("role").inc()
                raise ProblemException("E-AUTH-ROLE", f"key '{key.id}' has role(s) {', '.join(sorted(key.roles))}; "
                                       f"this needs '{role}'")
            return key
        dependency.__name__ = f"require_{role}"
        return dependency

    # ------------------------------------------------------------ limits
    @contextlib.asynccontextmanager
    async def _slot(self, limiter: anyio.CapacityLimiter, what: str) -> AsyncIterator[None]:
        with anyio.move_on_after(self.limits.queue_timeout_s) as scope:
            await limiter.acquire()
        if scope.cancelled_caught:
            self.metrics.rejected.labels("busy").inc()
            raise ProblemException("E-LIMIT-BUSY", f"{what}: the service is at its limit of "
                                   f"{int(limiter.total_tokens)} and none freed up within "
                                   f"{self.limits.queue_timeout_s:g} s", headers={"Retry-After": "1"})
        try:
            yield
        finally:
            limiter.release()

    def pending(self) -> contextlib.AbstractAsyncContextManager:
        """Hold one of `max_pending` places while a body is read and processed."""
        return self._slot(self._pending, "requests waiting")

    async def body(self, request: Request, limit: int | None = None) -> bytes:
        return await read_body(request, limit or self.limits.max_body_bytes, self.limits.body_timeout_s)

    async def compute(self, fn: Callable[[], Any]) -> Any:
        """Run CPU work in a thread, at most `max_inflight` at once (429 past the queue timeout)."""
        async with self._slot(self._compute, "computations in flight"):
            self.metrics.inflight.inc()
            try:
                return await anyio.to_thread.run_sync(fn)
            finally:
                self.metrics.inflight.dec()

    def parse_claim_json(self, body: bytes) -> Any:
        claim = loads(body)
        check_shape(claim, max_depth=self.limits.max_depth, max_string=self.limits.max_string)
        check_lines(claim, self.limits.max_lines)
        return claim

    # ------------------------------------------------------------ packs
    def set_id(self, ps: PackSet) -> str:
        sid = self._set_ids.get(id(ps))
        if sid is None:
            sid = pack_set_id(ps)
            if len(self._set_ids) > 32:
                self._set_ids.clear()
            self._set_ids[id(ps)] = sid
        return sid

    def set_of(self, before: PackSet, after: PackSet, settlement: Any) -> PackSet:
        """The set a settlement was computed with, when a reload landed while it ran."""
        if before is after:
            return before
        return after if any(p is settlement.insured for p in after.compiled.values()) else before

    # ------------------------------------------------------------ background
    def start(self) -> None:
        """The watcher thread: the pack folder and keys file (when --watch-interval > 0), other workers'
        admin reloads (always, when there is a runtime folder), the daily journal purge."""
        watching = self.config.watch_interval_s > 0
        if (watching or self.config.runtime_dir) and self._watcher is None:
            extra = [self._maybe_reload_keys, self._maybe_purge] if watching else [self._maybe_purge]
            self._watcher = threading.Thread(target=self.packs.watch, name="pack-watcher", daemon=True,
                                             args=(self.config.watch_interval_s if watching else 1.0, self._stop, extra),
                                             kwargs={"folder": watching})
            self._watcher.start()
        self._maybe_purge()

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        if self.journal is not None:
            self.journal.close()
        self.metrics.close()

    def _maybe_reload_keys(self) -> None:
        if self.keys is None or not self.config.keys_file:
            return
        try:
            mtime = Path(self.config.keys_file).stat().st_mtime
        except OSError:
            return
        if mtime != self.keys.mtime:
            try:
                self.keys = KeyStore.load(self.config.keys_file)
                log.info("API keys reloaded: %d key(s)", len(self.keys))
            except KeyFileError as e:
                self.keys.mtime = mtime  # do not retry until it changes again
                log.error("API keys file invalid, keeping the previous keys: %s", e)

    def _maybe_purge(self) -> None:
        if self.journal is None or time.time() - self._last_purge < 86400:
            return
        self._last_purge = time.time()
        try:
            r = self.journal.purge()
            if r.purged:
                log.info("journal: purged %d entries older than %s (checkpoint through seq %s)", r.purged, r.cutoff,
                         r.purged_through)
        except Exception as e:
            log.error("journal purge failed: %s", e)


# ------------------------------------------------------------------ middleware

class RequestMiddleware:
    """Request id, latency and status metrics, one log line per request (never a body or a key)."""

    def __init__(self, app: ASGIApp, ctx: ServiceContext):
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        rid = None
        for k, v in scope.get("headers", []):
            if k == b"x-request-id":
                try:
                    cand = v.decode("ascii")
                except UnicodeDecodeError:
                    cand = ""
                rid = cand if _RID.match(cand) else None
                break
        rid = rid or uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "other"
            region = state.get("region") or "-"
            dt_s = time.perf_counter() - t0
            m = self.ctx.metrics
            m.requests.labels(endpoint, scope.get("method", ""), str(status)).inc()
            m.latency.labels(endpoint, region).observe(dt_s)
            if endpoint not in ("/metrics", "/healthz", "/readyz"):
                log.info("rid=%s %s %s %d %.1fms key=%s region=%s%s", rid, scope.get("method"), endpoint, status,
                         dt_s * 1000, state.get("key_id", "-"), region,
                         f" code={state['code']}" if state.get("code") else "")


# ------------------------------------------------------------------ OpenAPI helpers

def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


_PROBLEM = {"content": {PROBLEM_JSON: {"schema": _ref("Problem")}}}


def _problems(*statuses: int) -> dict:
    desc = {400: "Bad request (JSON syntax, nesting)", 401: "No or unknown API key", 403: "The key's role does not allow this",
            404: "Not found", 408: "The body arrived too slowly", 413: "Body, batch or fee lines over the limit",
            415: "Unsupported media type", 422: "The claim or pack cannot be processed (field errors listed)",
            429: "At the concurrency limit: retry after Retry-After seconds",
            503: "Not ready, or the decision log cannot be written"}
    return {s: {"description": desc.get(s, "problem"), **_PROBLEM} for s in statuses}


def _security(role: str) -> dict:
    return {"security": [{"bearer": []}, {"apiKey": []}], "x-required-role": role}


def _flag(request: Request, name: str) -> bool:
    v = request.query_params.get(name)
    if v is None:
        return False
    low = v.lower()
    if low in ("1", "true", "yes", ""):
        return True
    if low in ("0", "false", "no"):
        return False
    raise ProblemException("E-REQUEST", f"?{name}= takes true or false, not '{v[:20]}'")


def _media(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _require_json(request: Request, also: tuple[str, ...] = ()) -> str:
    mt = _media(request)
    if mt in ("application/json", "") or mt.endswith("+json") or mt in also:
        return mt
    raise ProblemException("E-MEDIA-TYPE", f"send application/json{', '.join([''] + list(also))}, not '{mt[:60]}'")


# ------------------------------------------------------------------ the app

def create_app(config: ServiceConfig, *, metrics: Metrics | None = None, document_only: bool = False) -> FastAPI:
    """Build the app: loads the packs (PackLoadError if they are invalid), keys and journal.

    `document_only=True` builds the routes without loading anything: for the OpenAPI document.
    """
    from .decisions import _ENGINE
    ctx = ServiceContext(config, metrics=metrics, document_only=document_only)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx.start()
        try:
            yield
        finally:
            ctx.stop()

    app = FastAPI(title="rules-engine settlement service", version=_ENGINE.split(" ")[-1],
                  description="医保 settlement by versioned rule packs, in the national interface's field names. "
                              "See docs/service.md.", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.ctx = ctx
    settle_role = Depends(ctx.require("settle"))
    admin_role = Depends(ctx.require("admin"))

    # ------------------------------------------------------------ errors as problem+json
    @app.exception_handler(ProblemException)
    async def _problem(request: Request, exc: ProblemException) -> Response:
        rid = request.scope.get("state", {}).get("request_id")
        request.scope.setdefault("state", {})["code"] = exc.code
        return problem_response(exc.document(rid, request.url.path), headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "E-NOT-FOUND", 405: "E-METHOD"}.get(exc.status_code, "E-INTERNAL")
        rid = request.scope.get("state", {}).get("request_id")
        detail = f"no endpoint {request.method} {request.url.path}" if exc.status_code in (404, 405) else str(exc.detail)
        return problem_response(problem_document(code, detail, status=exc.status_code, request_id=rid,
                                                 instance=request.url.path), headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        rid = request.scope.get("state", {}).get("request_id")
        errs = [{"path": ".".join(str(x) for x in e.get("loc", ())), "code": "E-REQUEST", "message": e.get("msg", "")}
                for e in exc.errors()]
        return problem_response(problem_document("E-REQUEST", "the request is malformed", errors=errs,
                                                 request_id=rid))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Response:
        rid = request.scope.get("state", {}).get("request_id")
        log.error("rid=%s internal error %s: %s", rid, type(exc).__name__, exc, exc_info=exc)
        return problem_response(problem_document("E-INTERNAL", "an internal error; the log has the details under "
                                                 "this request id", request_id=rid))

    # ------------------------------------------------------------ settle
    def settle_one(body: bytes, explain: bool, request: Request, key: ApiKey | None) -> Response:
        state = request.scope.setdefault("state", {})
        claim = ctx.parse_claim_json(body)
        engine = ctx.packs.engine
        before = engine.packs
        t0 = time.perf_counter()
        try:
            s = engine.settle(claim)
        except SettlementError as e:
            ctx.metrics.settlements.labels("-", "refused").inc()
            raise from_settlement_error(e) from None
        after = engine.packs
        out = s.to_dict(explain=explain, numbers="float")
        data = dumps_plain(out)
        latency = (time.perf_counter() - t0) * 1000
        region = s.insured.info.region
        state["region"] = region
        ps = ctx.set_of(before, after, s)
        headers = {"X-Rules-Engine-Packs": packs_header(out["packs"]), "X-Rules-Engine-Pack-Set": ctx.set_id(ps)}
        if ctx.journal is not None:
            payload, keys = decision(claim, s, out, request_id=state["request_id"], endpoint="/v1/settle", index=None,
                                     input_sha256=hashlib.sha256(body).hexdigest(), latency_ms=latency,
                                     key_id=key.id if key else None, explain=explain, pack_set=ctx.set_id(ps),
                                     excludes=ctx.digest_excludes)
            headers["X-Decision-Seq"] = str(_journal(ctx, [(payload, keys)])[0])
        ctx.metrics.settlements.labels(region, "ok").inc()
        return Response(data, media_type="application/json", headers=headers)

    @app.post("/v1/settle", response_model=None, tags=["settle"], summary="Settle one claim",
              description="One claim (2204 feedetail + 2203 diseinfo + the person's year-to-date accumulators) → the "
                          "settlement (2206/2207 setlinfo and setldetail, per-line results). `?explain=true` adds the "
                          "explanation of every amount.",
              responses={200: {"description": "The settlement", "content": {"application/json": {
                  "schema": _ref("SettlementOut")}}, "headers": {
                  "X-Rules-Engine-Packs": {"schema": {"type": "string"}, "description":
                                           "insured=REGION@VERSION#HASH, treatment=REGION@VERSION#HASH"},
                  "X-Decision-Seq": {"schema": {"type": "integer"}, "description": "decision-log entry"}}},
                  **_problems(400, 401, 403, 408, 413, 415, 422, 429, 503)},
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": _ref("Claim")}}}, "parameters": [
                  {"name": "explain", "in": "query", "required": False, "schema": {"type": "boolean", "default": False},
                   "description": "add the explanation (rule, pack, YAML line, formula) of every amount"}],
                  **_security("settle")})
    async def settle(request: Request, key: ApiKey | None = settle_role) -> Response:
        explain = _flag(request, "explain")
        _require_json(request)
        async with ctx.pending():
            body = await ctx.body(request)
            return await ctx.compute(partial(settle_one, body, explain, request, key))

    # ------------------------------------------------------------ batch
    def settle_batch(items: list[tuple[Any, bytes | None, dict | None]], explain: bool, ndjson: bool,
                     request: Request, key: ApiKey | None) -> Response:
        state = request.scope.setdefault("state", {})
        results: list[dict[str, Any]] = [{} for _ in items]
        todo: list[int] = []
        for i, (claim, raw, problem) in enumerate(items):
            if problem is not None:
                results[i] = {"index": i, "status": problem["status"], "problem": problem}
                continue
            try:
                check_shape(claim, max_depth=ctx.limits.max_depth, max_string=ctx.limits.max_string)
                check_lines(claim, ctx.limits.max_lines)
            except ProblemException as e:
                results[i] = {"index": i, "status": e.status, "problem": e.document(state["request_id"])}
                continue
            todo.append(i)
        engine = ctx.packs.engine
        before = engine.packs
        t0 = time.perf_counter()
        settled = engine.settle_many([items[i][0] for i in todo], errors="return")
        after = engine.packs
        outs: dict[int, tuple[Any, dict]] = {}
        for i, s in zip(todo, settled):
            if isinstance(s, SettlementError):
                p = from_settlement_error(s)
                results[i] = {"index": i, "status": p.status, "problem": p.document(state["request_id"])}
                ctx.metrics.settlements.labels("-", "refused").inc()
            else:
                outs[i] = (s, s.to_dict(explain=explain, numbers="float"))
        latency = (time.perf_counter() - t0) * 1000 / max(1, len(todo))
        first = next(iter(outs.values()))[0] if outs else None
        ps = ctx.set_of(before, after, first) if first is not None else after
        sid = ctx.set_id(ps)
        records = []
        for i, (s, out) in outs.items():
            results[i] = {"index": i, "status": 200, "settlement": out}
            if ctx.journal is not None:
                records.append((i, decision(items[i][0], s, out, request_id=state["request_id"],
                                            endpoint="/v1/settle:batch", index=i,
                                            input_sha256=hashlib.sha256(items[i][1] or b"").hexdigest(),
                                            latency_ms=latency, key_id=key.id if key else None, explain=explain,
                                            pack_set=sid, excludes=ctx.digest_excludes)))
            ctx.metrics.settlements.labels(s.insured.info.region, "ok").inc()
        if records:
            seqs = _journal(ctx, [r for _, r in records])
            for (i, _), seq in zip(records, seqs):
                results[i]["decision_seq"] = seq
        labels = sorted({f"{p['region']}@{p['version']}#{p['hash']}" for _, out in outs.values()
                         for p in out["packs"].values()})
        if outs:
            state["region"] = next(iter(outs.values()))[0].insured.info.region
        headers = {"X-Rules-Engine-Packs": _header_safe(", ".join(labels)), "X-Rules-Engine-Pack-Set": sid}
        if ndjson:
            data = b"".join(dumps(r) + b"\n" for r in results)
            return Response(data, media_type="application/x-ndjson", headers=headers)
        doc = {"results": results, "settled": len(outs), "refused": len(items) - len(outs), "pack_set": sid}
        return Response(dumps(doc), media_type="application/json", headers=headers)

    def split_batch(body: bytes, ndjson: bool, rid: str) -> list[tuple[Any, bytes | None, dict | None]]:
        limit = ctx.limits.max_batch_claims
        items: list[tuple[Any, bytes | None, dict | None]] = []
        if ndjson:
            for line in body.split(b"\n"):
                line = line.strip()
                if not line:
                    continue
                if len(items) >= limit:
                    raise ProblemException("E-LIMIT-BATCH", f"more than {limit:,} claims in one batch")
                try:
                    items.append((loads(line), line, None))
                except ProblemException as e:
                    items.append((None, line, e.document(rid)))
            return items
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProblemException("E-CLAIM-JSON", f"the body is not UTF-8 text (byte {e.start})") from None
        from .limits import _no_constant
        dec = json.JSONDecoder(parse_float=Decimal, parse_constant=_no_constant)
        ws = re.compile(r"[ \t\n\r]*")
        i = ws.match(text, 0).end()
        if not text.startswith("[", i):
            raise ProblemException("E-CLAIM-JSON", "a batch is a JSON list of claims (or NDJSON: one claim a line, "
                                   "Content-Type application/x-ndjson)")
        i = ws.match(text, i + 1).end()
        if text.startswith("]", i):
            return items
        while True:
            if len(items) >= limit:
                raise ProblemException("E-LIMIT-BATCH", f"more than {limit:,} claims in one batch")
            try:
                obj, j = dec.raw_decode(text, i)
            except RecursionError:
                raise ProblemException("E-LIMIT-DEPTH", "the JSON is nested too deeply") from None
            except ValueError as e:
                raise ProblemException("E-CLAIM-JSON", f"the body is not valid JSON: {e}") from None
            items.append((obj, text[i:j].encode("utf-8"), None))
            i = ws.match(text, j).end()
            if text.startswith(",", i):
                i = ws.match(text, i + 1).end()
                continue
            if text.startswith("]", i):
                if text[ws.match(text, i + 1).end():]:
                    raise ProblemException("E-CLAIM-JSON", "text after the end of the list")
                return items
            raise ProblemException("E-CLAIM-JSON", f"expected ',' or ']' at character {i}")

    @app.post("/v1/settle:batch", response_model=None, tags=["settle"], summary="Settle many claims",
              description="A JSON list of claims, or NDJSON (one claim a line, Content-Type application/x-ndjson; "
                          "the answer is then NDJSON too). Claims are settled independently, all with one pack set; "
                          "a bad claim gets its problem in its place and does not stop the others.",
              responses={200: {"description": "One result per claim, in order", "content": {
                  "application/json": {"schema": _ref("BatchOut")},
                  "application/x-ndjson": {"schema": _ref("BatchItem")}}},
                  **_problems(400, 401, 403, 408, 413, 415, 429, 503)},
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": {"type": "array", "items": _ref("Claim")}},
                  "application/x-ndjson": {"schema": _ref("Claim")}}}, "parameters": [
                  {"name": "explain", "in": "query", "required": False, "schema": {"type": "boolean", "default": False}}],
                  **_security("settle")})
    async def settle_batch_route(request: Request, key: ApiKey | None = settle_role) -> Response:
        explain = _flag(request, "explain")
        mt = _require_json(request, NDJSON_TYPES)
        ndjson = mt in NDJSON_TYPES
        rid = request.scope["state"]["request_id"]
        async with ctx.pending():
            body = await ctx.body(request, ctx.limits.max_batch_body_bytes)

            def work() -> Response:
                return settle_batch(split_batch(body, ndjson, rid), explain, ndjson, request, key)
            return await ctx.compute(work)

    # ------------------------------------------------------------ packs
    def summary(p: Any) -> dict[str, Any]:
        i = p.info
        return {"region": i.region, "name": i.name, "version": i.version, "effective_from": i.effective_from,
                "effective_to": i.effective_to, "select_by": i.select_by, "chain": list(p.chain),
                "hash": p.content_hash, "confidence": i.confidence, "layers": len(p.layers),
                "catalogue": dict(p.catalogue_counts)}

    @app.get("/v1/packs", response_model=None, tags=["packs"], summary="The packs in force",
             responses={200: {"description": "Every compiled pack", "content": {"application/json": {
                 "schema": _ref("PacksOut")}}}, **_problems(401, 403)}, openapi_extra=_security("settle"))
    async def list_packs(request: Request, key: ApiKey | None = settle_role) -> Response:
        ps = ctx.packs.engine.packs
        doc = {"pack_set": ctx.set_id(ps), "loaded_at": _iso(ctx.packs.loaded_at),
               "packs": [summary(p) for p in ps.packs()]}
        return Response(dumps(doc), media_type="application/json", headers={"X-Rules-Engine-Pack-Set": doc["pack_set"]})

    @app.get("/v1/packs/{region}", response_model=None, tags=["packs"], summary="The pack in force for a region on a date",
             description="The effective pack (merged over what it extends) as `rules-engine show` prints it. A district "
                         "without its own pack falls back to its city, then its province.",
             responses={200: {"description": "The effective pack", "content": {"application/json": {
                 "schema": _ref("PackOut")}}}, **_problems(400, 401, 403, 404)},
             openapi_extra={"parameters": [
                 {"name": "region", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9]{6}$"}},
                 {"name": "date", "in": "query", "required": True, "schema": {"type": "string", "format": "date"}}],
                 **_security("settle")})
    async def get_pack(request: Request, key: ApiKey | None = settle_role) -> Response:
        region = request.path_params["region"]
        date = request.query_params.get("date")
        if not date:
            raise ProblemException("E-DATE", "give ?date=YYYY-MM-DD: the pack in force on that date")
        try:
            dt.date.fromisoformat(date)
            if len(date) != 10:
                raise ValueError
        except ValueError:
            raise ProblemException("E-DATE", f"'{date[:20]}' is not a date YYYY-MM-DD") from None
        if not re.fullmatch(r"[0-9]{6}", region):
            raise ProblemException("E-UNKNOWN-REGION", f"'{region[:20]}' is not a 6-digit region code", status=404)
        request.scope["state"]["region"] = region if region in ctx.packs.engine.packs.versions else "-"
        try:
            pack = ctx.packs.engine.packs.select(region, date)
        except PackSelectionError as e:
            raise ProblemException(e.code, e.message, status=404,
                                   errors=[{"path": "region", "code": e.code, "message": e.message}]) from None
        from ..packs.show import effective_document
        doc = {"pack": summary(pack), "document": effective_document(pack)}
        return Response(dumps(doc), media_type="application/json",
                        headers={"X-Rules-Engine-Packs": f"{pack.info.key}#{pack.content_hash}"})

    # ------------------------------------------------------------ validate
    @app.post("/v1/validate", response_model=None, tags=["admin"], summary="Validate a pack before publishing it",
              description="Upload a pack as a zip (Content-Type application/zip) or as multipart/form-data files whose "
                          "file names carry their paths (policy.yaml, catalogue/drugs.csv …). It is checked together "
                          "with the packs in force; every problem comes back with file:line:col as named in the upload. "
                          "Nothing is published.",
              responses={200: {"description": "The verdict (ok false: problems listed)", "content": {
                  "application/json": {"schema": _ref("ValidateOut")}}}, **_problems(400, 401, 403, 413, 415, 422, 429)},
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/zip": {"schema": {"type": "string", "format": "binary"}},
                  "multipart/form-data": {"schema": {"type": "object", "properties": {"files": {
                      "type": "array", "items": {"type": "string", "format": "binary"}}}}}}},
                  **_security("admin")})
    async def validate(request: Request, key: ApiKey | None = admin_role) -> Response:
        from .validate import files_from_zip, validate_upload
        mt = _media(request)
        if mt not in ZIP_TYPES and mt != "multipart/form-data":
            raise ProblemException("E-MEDIA-TYPE", "send the pack as application/zip or multipart/form-data files")
        async with ctx.pending():
            body = await ctx.body(request, ctx.limits.max_upload_bytes)
            if mt == "multipart/form-data":
                files = await _multipart_files(request, body, ctx.limits)
            else:
                files = await anyio.to_thread.run_sync(files_from_zip, body, ctx.limits)
            served = ctx.packs.engine.packs
            result = await ctx.compute(partial(validate_upload, files, served, cache_dir=ctx.packs.cache_dir,
                                               tmp_parent=ctx.config.runtime_dir))
        return Response(dumps(result), media_type="application/json")

    # ------------------------------------------------------------ admin reload
    @app.post("/v1/admin/reload", response_model=None, tags=["admin"], summary="Reload the packs now",
              description="Loads the pack folder again off the request path and swaps the new set in only if every "
                          "pack is valid; other workers follow within one watch interval. A refused reload answers "
                          "422 with the problems (E-PACKS-INVALID); the previous packs stay in force.",
              responses={200: {"description": "Reloaded", "content": {"application/json": {"schema": _ref("ReloadOut")}}},
                         **_problems(401, 403, 422)}, openapi_extra=_security("admin"))
    async def reload(request: Request, key: ApiKey | None = admin_role) -> Response:
        status = await anyio.to_thread.run_sync(ctx.packs.reload, "admin")
        ctx.packs.bump_generation()
        ps = ctx.packs.engine.packs
        doc = {"ok": status.ok, "pack_set": ctx.set_id(ps), "packs": [p.label for p in ps.packs()],
               "reload": status.to_dict()}
        if not status.ok:
            errs = doc["reload"]["problems"]
            raise ProblemException("E-PACKS-INVALID", f"{doc['reload']['errors']} error(s) in the packs; the previous "
                                   f"packs stay in force. First: {errs[0]['location'] + ': ' + errs[0]['message'] if errs else '?'}",
                                   status=422, title="The new packs are invalid",
                                   errors=[{"path": p["location"], "code": p["code"], "message": p["message"]} for p in errs],
                                   extra={"pack_set": doc["pack_set"], "packs": doc["packs"]})
        return Response(dumps(doc), media_type="application/json")

    # ------------------------------------------------------------ health, readiness, metrics
    @app.get("/healthz", response_model=None, tags=["ops"], summary="Alive",
             responses={200: {"description": "The process answers", "content": {"application/json": {
                 "schema": _ref("HealthOut")}}}})
    async def healthz() -> Response:
        return Response(b'{"status":"alive"}', media_type="application/json")

    @app.get("/readyz", response_model=None, tags=["ops"], summary="Ready: packs loaded and valid",
             description="200 while valid packs are served. `status` is 'stale' when the newest packs on disk failed "
                         "validation and the previous set is still served (the failure is listed); `?strict=true` "
                         "answers 503 then.",
             responses={200: {"description": "Ready", "content": {"application/json": {"schema": _ref("ReadyOut")}}},
                        503: {"description": "Not ready", "content": {"application/json": {"schema": _ref("ReadyOut")}}}},
             openapi_extra={"parameters": [{"name": "strict", "in": "query", "required": False,
                                            "schema": {"type": "boolean", "default": False}}]})
    async def readyz(request: Request) -> Response:
        strict = _flag(request, "strict")
        ps = ctx.packs.engine.packs
        last = ctx.packs.last
        ready = ctx.packs.ready
        doc: dict[str, Any] = {"status": "ready" if ready and last.ok else ("stale" if ready else "not-ready"),
                               "pack_set": ctx.set_id(ps), "packs": [p.label for p in ps.packs()],
                               "loaded_at": _iso(ctx.packs.loaded_at), "last_reload": last.to_dict(limit=20)}
        if ctx.journal is not None:
            doc["journal"] = {"kept": True}
        code = 200 if ready and (last.ok or not strict) else 503
        return Response(dumps(doc), status_code=code, media_type="application/json")

    @app.get("/metrics", response_model=None, tags=["ops"], summary="Prometheus metrics",
             responses={200: {"description": "Prometheus text format", "content": {"text/plain": {
                 "schema": {"type": "string"}}}}})
    async def metrics() -> Response:
        data, ctype = ctx.metrics.exposition()
        return Response(data, media_type=ctype)

    @app.get("/problems/{code}", response_model=None, tags=["ops"], summary="What a problem code means",
             responses={200: {"description": "The code's status and title", "content": {
                 "application/json": {"schema": {"type": "object"}}}}},
             openapi_extra={"parameters": [{"name": "code", "in": "path", "required": True,
                                            "schema": {"type": "string"}}]})
    async def problem_type(request: Request) -> Response:
        code = request.path_params["code"]
        if code not in CODES and not code.startswith("E-"):
            raise ProblemException("E-NOT-FOUND", f"no problem code {code[:40]}", status=404)
        st, title = CODES.get(code, (422, "See docs/service.md"))
        return Response(dumps({"code": code, "status": st, "title": title, "see": "docs/service.md#errors"}),
                        media_type="application/json")

    # ------------------------------------------------------------ extensions (POST /v1/audit, /v1/convert/icd …)
    from .extensions import install
    install(app, ctx, config.extensions)

    app.add_middleware(RequestMiddleware, ctx=ctx)
    app.openapi = partial(_openapi, app)  # type: ignore[method-assign]
    return app


def _journal(ctx: ServiceContext, records: list[tuple[dict, dict]]) -> list[int]:
    """Append decision records; 503 (nothing answered as settled) if the log cannot be written."""
    from ..journal import JournalError
    assert ctx.journal is not None
    try:
        entries = ctx.journal.append_many([(KIND, p, k) for p, k in records])
    except JournalError as e:
        ctx.metrics.journal.labels("failed").inc()
        log.error("decision log append failed: %s", e.message)
        raise ProblemException("E-JOURNAL", "the decision log cannot be written; the settlement was not answered. "
                               "Retry later") from None
    ctx.metrics.journal.labels("ok").inc(len(entries))
    return [e.seq for e in entries]


async def _multipart_files(request: Request, body: bytes, limits: Limits) -> list[tuple[str, bytes]]:
    from starlette.datastructures import UploadFile
    from .validate import safe_name
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    replay = Request(request.scope, receive)
    try:
        form = await replay.form(max_files=limits.max_upload_files, max_fields=100,
                                 max_part_size=limits.max_upload_bytes)
    except Exception as e:  # MultiPartException and parser errors: the upload is malformed
        raise ProblemException("E-UPLOAD", f"cannot read the multipart upload: {e}") from None
    files: list[tuple[str, bytes]] = []
    total = 0
    for _, v in form.multi_items():
        if isinstance(v, UploadFile):
            data = await v.read()
            total += len(data)
            if total > limits.max_upload_unpacked_bytes:
                raise ProblemException("E-LIMIT-BODY", "the upload is too large")
            files.append((safe_name(v.filename or ""), data))
    await form.close()
    if not files:
        raise ProblemException("E-UPLOAD-NO-PACK", "the multipart upload holds no files")
    return files


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    from .openapi import build
    app.openapi_schema = build(app)
    return app.openapi_schema


def app_from_env() -> FastAPI:
    """uvicorn factory for worker processes: settings from RULES_ENGINE_SERVICE_CONFIG."""
    from .server import configure_logging
    config = ServiceConfig.from_env()
    configure_logging(config.log_level)
    return create_app(config)


__all__ = ["create_app", "app_from_env", "ServiceContext", "dumps", "pack_set_id"]
