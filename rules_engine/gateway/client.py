"""The gateway: an async client (asyncio + httpx) with a sync wrapper, that carries a claim to the
national platform and brings the answer back without ever losing or doubling a settlement.

    gw = Gateway(config, engine=Engine.from_directory("regions"), adapter=adapter)
    result = await gw.submit(claim)          # 2204 → 2206 → compare → 2207 (2301/2303/2304 inpatient)
    await gw.reverse(result.settle_msgid)    # 2208/2305 refund (or 2601 冲正 of an unknown outcome)
    await gw.resume()                        # after a crash: finish what the outbox says is unfinished
    await gw.reconcile("2025-03-12")         # 3201 from the outbox

    with SyncGateway(config, engine=engine) as gw:   # the same, for synchronous callers
        gw.submit(claim)

The rules, each enforced in one place:

1. **Record before send.** `Outbox.record` allocates the msgid and writes the request (PENDING) in one
   transaction; only then does a byte go out (`_exchange`). The audit journal gets the request
   before it is sent and the answer after.
2. **Three outcomes.** `envelope.classify` turns every answer, timeout and garbage into success,
   definite failure or unknown; it never raises.
3. **Idempotent calls only are retried** (sign-in, queries, 3201: `RetryPolicy.retryable`), with
   backoff and a new msgid per attempt. A settlement (2207/2304) is sent once. Its unknown outcome
   (or infcode −1, or an unreadable success) goes to 冲正: 2601 with omsgid/oinfno is recorded,
   sent (and re-sent until definite — reversing twice has no second effect), and only after it
   succeeded may a fresh attempt start with a new msgid (`submission.fresh_attempts`).
4. **One visit, one submission.** The outbox's unique index refuses a second open submission for
   a visit — concurrent or after a booked settlement that was not refunded.
5. **Compare before booking.** The platform's 2204/2206 answer is compared with the engine's own
   settlement; a difference above the region's tolerance blocks 2207.
6. **Resume.** A submission whose process died is taken over (pid gone, or lease expired) and
   driven on from its recorded state; a settlement that was PENDING is unknown → 冲正.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Mapping

from ..journal import Journal, JournalError
from ..model.claim import SettlementError
from ..money import fen_decimal
from . import outbox as ob
from .compare import Comparison, compare, daily_totals, settlement_totals
from .envelope import Answer, Outcome, build_envelope, classify, transport_failure
from .metrics import GatewayMetrics, log_event
from .payloads import (ROLE_DEFAULT, build_cumulative, build_eligibility, build_feedetail, build_person_query,
                       build_presettle, build_reconcile, build_refund, build_reversal, build_settle, build_signin,
                       fill_claim, parse_output, visit_ids)
from .security import SecurityError
from .settings import AdapterConfig, AdapterSettings

log = logging.getLogger("rules_engine.gateway")

#: claim fields that feed the national messages but not the engine
GATEWAY_FIELDS = frozenset({"mdtrt_cert_type", "mdtrt_cert_no", "psn_setlway", "invono", "mid_setl_flag"})
CRASH_ENV = "RULES_ENGINE_GATEWAY_CRASH"
_LIVE: set[str] = set()  # owners of live Gateway objects in this process (see outbox.owner_alive)


class GatewayError(Exception):
    """A refusal before or outside the platform: bad claim, visit in flight, sign-in impossible …"""

    def __init__(self, code: str, message: str, *, errors: list[dict] | None = None, **info: Any):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.errors = errors or []
        self.info = info


class SimulatedCrash(BaseException):
    """Raised by a test's crash hook: unwinds without any cleanup that writes (like a kill)."""


def _owner_alive(owner: str | None) -> bool:
    if not owner:
        return False
    parts = owner.split(":")
    if len(parts) == 3 and parts[1] == str(os.getpid()):
        import socket
        if parts[0] == socket.gethostname():
            return owner in _LIVE
    return ob.owner_alive(owner)


@dataclass
class SubmitResult:
    """What became of a claim: the submission's state and everything an operator needs to act."""

    submission: str
    state: str
    region: str
    psn_no: str
    mdtrt_id: str
    attempt: int = 1
    setl_id: str | None = None
    settle_msgid: str | None = None
    ours: dict | None = None
    platform: dict | None = None
    comparison: dict | None = None
    error_code: str | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.state == ob.S_DONE

    @property
    def pending(self) -> bool:
        """An outcome not yet settled either way (a 冲正 still to be confirmed)."""
        return self.state in (ob.S_UNKNOWN, ob.S_REVERSING, ob.S_SETTLING, ob.S_REVERSAL_FAILED)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("submission", "state", "region", "psn_no", "mdtrt_id", "attempt",
                                              "setl_id", "settle_msgid", "ours", "platform", "comparison",
                                              "error_code", "error", "notes", "messages")}


@dataclass
class _Ctx:
    """Per-drive working state (rebuilt from the outbox on resume)."""

    rc: Any
    st: AdapterSettings
    claim: dict
    ids: dict
    inpatient: bool
    settlement: Any = None
    accept_differences: bool = False
    fresh_attempts: int | None = None
    notes: list[str] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    stop: bool = False
    comparison: Comparison | None = None


class Gateway:
    """The async gateway. One instance per process is the normal case; several may share outboxes."""

    def __init__(self, config: Any, *, engine: Any, adapter: AdapterConfig | None = None,
                 journal_key: bytes | None = None, metrics: GatewayMetrics | None = None,
                 http_transport: Any = None, crash: Callable[[str, str], None] | None = None,
                 owner: str | None = None, lease_seconds: float | None = None,
                 clock: Callable[[], float] = time.time, max_connections: int = 100):
        import httpx

        self.config = config
        self.engine = engine
        self.adapter = adapter or AdapterConfig(file=None)
        self.journal_key = journal_key
        self.owner = owner or ob.new_owner()
        _LIVE.add(self.owner)
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._outboxes: dict[Path, ob.Outbox] = {}
        self._journals: dict[Path, Journal] = {}
        self._open_mu = threading.Lock()
        self.metrics = metrics or GatewayMetrics(lambda: list(self._outboxes.values()))
        self._http = httpx.AsyncClient(transport=http_transport,
                                       limits=httpx.Limits(max_connections=max_connections,
                                                           max_keepalive_connections=max_connections))
        self._signin_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._crash_hook = crash
        self._crash_points = self._parse_crash(os.environ.get(CRASH_ENV, ""))
        self._driving: set[str] = set()  # submissions this gateway is driving right now

    # ------------------------------------------------------------------ resources
    def settings(self, region: str) -> AdapterSettings:
        return self.adapter.region(region)

    def region(self, code: str) -> Any:
        try:
            return self.config.region(code)
        except KeyError as e:
            raise GatewayError("E-GW-REGION-UNKNOWN", str(e.args[0])) from None

    def outbox(self, region: str) -> ob.Outbox:
        rc = self.region(region)
        p = Path(rc.outbox.path)
        with self._open_mu:
            o = self._outboxes.get(p)
            if o is None:
                st = self.settings(region)
                o = self._outboxes[p] = ob.Outbox(p, synchronous=st.durability, utc_offset_hours=st.utc_offset_hours,
                                                  clock=self._clock)
            return o

    def journal_path(self, region: str) -> Path:
        rc = self.region(region)
        if rc.journal.path is not None:
            return Path(rc.journal.path)
        return Path(rc.outbox.path).with_name("gateway-journal.sqlite")

    def journal(self, region: str) -> Journal:
        p = self.journal_path(region)
        with self._open_mu:
            j = self._journals.get(p)
            if j is None:
                rc = self.region(region)
                try:
                    j = self._journals[p] = Journal(p, mask_key=self.journal_key,
                                                    retention_days=rc.journal.retention_days,
                                                    synchronous=self.settings(region).durability)
                except JournalError as e:
                    raise GatewayError(e.code, f"the audit log {p} cannot be opened: {e.message}") from None
            return j

    def outboxes(self) -> list[ob.Outbox]:
        for code in self.config.regions:
            self.outbox(code)
        seen, out = set(), []
        for o in self._outboxes.values():
            if id(o) not in seen:
                seen.add(id(o))
                out.append(o)
        return out

    async def aclose(self) -> None:
        await self._http.aclose()
        for o in self._outboxes.values():
            o.close()
        for j in self._journals.values():
            j.close()
        _LIVE.discard(self.owner)

    def abandon(self) -> None:
        """Forget this gateway as if its process had died (tests of crash recovery): nothing is
        written, its owner id is no longer alive."""
        _LIVE.discard(self.owner)

    async def __aenter__(self) -> "Gateway":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ crash points (tests)
    @staticmethod
    def _parse_crash(spec: str) -> set[tuple[str, str]]:
        out = set()
        for part in spec.split(","):
            point, _, infno = part.strip().partition(":")
            if point:
                out.add((point, infno or "*"))
        return out

    def _crash(self, point: str, infno: str) -> None:
        if self._crash_hook is not None:
            self._crash_hook(point, infno)
        if (point, infno) in self._crash_points or (point, "*") in self._crash_points:
            os.kill(os.getpid(), signal.SIGKILL)

    # ------------------------------------------------------------------ one exchange
    async def _send(self, rc: Any, st: AdapterSettings, infno: str, env: Mapping[str, Any]) -> Answer:
        """Seal, post and classify one request. Never raises (except a test's SimulatedCrash)."""
        import httpx

        t0 = time.perf_counter()
        try:
            prepared = await rc.security.aprepare(env)
        except SecurityError as e:  # nothing was sent: definite
            return Answer(Outcome.FAILURE, "E-GW-SECURITY", f"the request could not be sealed: {e.message}")
        try:
            resp = await asyncio.wait_for(
                self._http.post(rc.endpoint, content=prepared.body, headers=dict(prepared.headers),
                                timeout=rc.timeouts.as_httpx()), timeout=rc.timeouts.total)
        except asyncio.TimeoutError:
            return Answer(Outcome.UNKNOWN, "E-GW-TIMEOUT", f"no answer within {rc.timeouts.total:g} s",
                          elapsed=time.perf_counter() - t0)
        except httpx.HTTPError as e:
            return transport_failure(e, elapsed=time.perf_counter() - t0)
        except OSError as e:
            return transport_failure(e, elapsed=time.perf_counter() - t0)
        elapsed = time.perf_counter() - t0
        if resp.status_code in (401, 403):
            rc.security.unauthorized()
        role = st.infno.role(infno)
        model_infno = ROLE_DEFAULT.get(role or "", infno)
        return classify(resp.status_code, resp.content, security=rc.security, infno=infno,
                        parse_output=lambda i, o: parse_output(i, o, model_infno=model_infno),
                        sign_patterns=st.signin.reject_patterns, elapsed=elapsed)

    async def _exchange(self, rc: Any, st: AdapterSettings, infno: str, input_: Mapping[str, Any], *,
                        purpose: str, insuplc: str = "", sign_no: str = "", submission: str | None = None,
                        attempt: int = 1, psn_no: str | None = None, mdtrt_id: str | None = None,
                        omsgid: str | None = None, oinfno: str | None = None,
                        submission_update: Mapping[str, Any] | None = None,
                        packs: Mapping[str, Any] | None = None) -> tuple[str, dict, Answer]:
        """Record, journal, send. The caller records the outcome (`_finish`), so that the answer and
        the submission's next state are written in one transaction."""
        outbox = self.outbox(rc.region)
        journal = self.journal(rc.region)

        def build(msgid: str, local: dt.datetime) -> dict:
            return build_envelope(rc, infno, msgid, input_, insuplc_admdvs=insuplc, sign_no=sign_no, inf_time=local)

        def record_and_journal() -> tuple[str, dict]:
            # one hop to a worker thread for both writes: the outbox row, then the audit entry
            msgid, env = outbox.record(
                region=rc.region, fixmedins_code=rc.fixmedins_code, infno=infno, purpose=purpose, owner=self.owner,
                build=build, submission=submission, attempt=attempt, psn_no=psn_no, mdtrt_id=mdtrt_id, omsgid=omsgid,
                oinfno=oinfno, submission_update=submission_update)
            keys = {"msgid": msgid, "infno": infno, "region": rc.region, "submission": submission, "psn_no": psn_no,
                    "mdtrt_id": mdtrt_id, "omsgid": omsgid}
            payload = {"region": rc.region, "infno": infno, "msgid": msgid, "purpose": purpose, "attempt": attempt,
                       "submission": submission, "request": env}
            if packs:
                payload["packs"] = packs
            try:
                journal.append("gateway.request", payload, keys=keys)
            except JournalError as e:  # the audit log must hold every exchange: not sent
                outbox.finish(msgid, state=ob.FAILED,
                              answer=Answer(Outcome.FAILURE, "E-GW-JOURNAL", f"not sent: {e.message}"))
                raise GatewayError("E-GW-JOURNAL", f"the audit log cannot be written, nothing sent: "
                                                   f"{e.message}") from None
            return msgid, env

        msgid, env = await asyncio.to_thread(record_and_journal)
        log_event(log, "gateway.send", logging.DEBUG, msgid=msgid, infno=infno, region=rc.region, purpose=purpose)
        self._crash("before_send", infno)
        answer = await self._send(rc, st, infno, env)
        answer.msgid, answer.infno = msgid, infno
        self._crash("after_answer", infno)
        return msgid, env, answer

    async def _finish(self, rc: Any, msgid: str, answer: Answer, state: str, **kw: Any) -> None:
        outbox = self.outbox(rc.region)
        journal = self.journal(rc.region)
        owner = kw.pop("owner", None)
        payload = {"region": rc.region, "infno": answer.infno, "msgid": msgid, "state": state, **answer.to_dict(),
                   "response": answer.message}
        keys = {"msgid": msgid, "infno": answer.infno, "region": rc.region, "submission": kw.get("submission")}

        def finish_and_journal() -> None:
            lost = None
            try:
                outbox.finish(msgid, state=state, owner=owner, answer=answer, **kw)
            except ob.LeaseLost as e:  # the answer is recorded; the submission moved on without us
                lost = e
            try:
                journal.append("gateway.response", payload, keys=keys)
            except JournalError as e:  # the outbox has the answer; the gap is logged loudly
                log_event(log, "gateway.journal_failed", logging.ERROR, msgid=msgid, error=e.message)
            if lost is not None:
                raise lost

        await asyncio.to_thread(finish_and_journal)
        self.metrics.observe(answer.infno or "", answer.outcome.value, answer.elapsed)
        level = logging.INFO if answer.ok else logging.WARNING
        log_event(log, "gateway.answer", level, msgid=msgid, infno=answer.infno, region=rc.region,
                  outcome=answer.outcome.value, code=answer.code, detail=answer.detail[:200],
                  elapsed_ms=round(answer.elapsed * 1000, 2))

    @staticmethod
    def _state_of(answer: Answer) -> str:
        if answer.ok:
            return ob.DONE
        return ob.UNKNOWN if answer.outcome is Outcome.UNKNOWN else ob.FAILED

    @staticmethod
    def _transient(answer: Answer) -> bool:
        return answer.outcome is Outcome.UNKNOWN or answer.code in ("E-GW-SYSTEM", "E-GW-CONNECTION") or (
            answer.code == "E-GW-HTTP" and (answer.http_status or 0) in (408, 429) or (answer.http_status or 0) >= 500)

    # ------------------------------------------------------------------ sign-in
    async def sign_no(self, region: str, *, refused: str | None = None) -> str:
        """The region's current sign_no: from the outbox's cache while it is fresh (same day, younger
        than signin.max_age_hours), else from a new 9001. `refused`: the sign_no the platform just
        rejected — sign in again unless another task already did."""
        rc = self.region(region)
        st = self.settings(region)
        key = (rc.region, rc.operator.opter)
        lock = self._signin_locks.setdefault(key, asyncio.Lock())
        outbox = self.outbox(region)
        async with lock:
            row = await asyncio.to_thread(outbox.signin, rc.region, rc.operator.opter)
            today = outbox.now_local().strftime("%Y-%m-%d")
            reason = "first"
            if row is not None:
                fresh = row.day == today and self._clock() - row.signed_at < st.signin.max_age_hours * 3600
                if fresh and row.sign_no != refused:
                    return row.sign_no
                reason = "rejected" if row.sign_no == refused else "expired"
            if refused is not None:
                await asyncio.to_thread(outbox.drop_signin, rc.region, rc.operator.opter, refused)
            answer = await self.call(region, st.infno.signin,
                                     build_signin(rc.operator.opter, st.signin.mac, st.signin.ip),
                                     purpose="signin", insuplc=rc.region, sign=False)
            if not answer.ok:
                raise GatewayError("E-GW-SIGNIN", f"sign-in (9001) failed: {answer.summary()}")
            s = answer.model.signinoutb
            await asyncio.to_thread(outbox.store_signin, rc.region, rc.operator.opter, s.sign_no, s.sign_time)
            self.metrics.signins.labels(reason).inc()
            return s.sign_no

    # ------------------------------------------------------------------ a call outside a submission
    async def call(self, region: str, infno: str, input_: Mapping[str, Any], *, purpose: str = "query",
                   insuplc: str = "", psn_no: str | None = None, mdtrt_id: str | None = None, sign: bool = True,
                   submission: str | None = None, omsgid: str | None = None, oinfno: str | None = None,
                   finish: Callable[[Answer], Mapping[str, Any]] | None = None) -> Answer:
        """One transaction outside the settlement flow. Idempotent ones (the region's
        retry.idempotent_infnos) are retried with backoff on transient failure; a refused sign_no is
        renewed and the call sent once more (a definite refusal means nothing happened)."""
        rc = self.region(region)
        st = self.settings(region)
        retryable = rc.retry.retryable(infno) and infno not in st.infno.settlements
        attempts = max(1, rc.retry.max_attempts) if retryable else 1
        resigned = False
        n = 0
        while True:
            n += 1
            sign_no = await self.sign_no(region) if sign else ""
            msgid, env, answer = await self._exchange(rc, st, infno, input_, purpose=purpose, insuplc=insuplc,
                                                      sign_no=sign_no, psn_no=psn_no, mdtrt_id=mdtrt_id,
                                                      submission=submission, omsgid=omsgid, oinfno=oinfno, attempt=n)
            extra = dict(finish(answer)) if finish is not None else {}
            await self._finish(rc, msgid, answer, extra.pop("state", self._state_of(answer)), **extra)
            if answer.ok:
                return answer
            if answer.code == "E-GW-SIGN-REJECTED" and sign and not resigned and infno not in st.infno.settlements:
                resigned = True
                await self.sign_no(region, refused=sign_no)
                n -= 1
                continue
            if retryable and n < attempts and self._transient(answer):
                self.metrics.retries.labels(infno).inc()
                await asyncio.sleep(rc.retry.delay(n))
                continue
            return answer

    # ------------------------------------------------------------------ the person's side (1101/2001/5206)
    async def fetch_person(self, claim: Mapping[str, Any]) -> tuple[dict, list[str]]:
        """Fill a claim from 1101 (person, insurance), 5206 (year-to-date accumulators) and 2001
        (eligibility), so an estimate before the visit uses the platform's own figures."""
        region = str(claim.get("mdtrtarea_admvs") or "")
        rc = self.region(region)
        st = self.settings(region)
        cert_type = claim.get("mdtrt_cert_type") or st.submission.mdtrt_cert_type
        cert_no = claim.get("mdtrt_cert_no") or claim.get("certno") or claim.get("psn_no")
        if not cert_no:
            raise GatewayError("E-GW-PERSON", "the claim names no certno, mdtrt_cert_no or psn_no to look the person up")
        a = await self.call(region, st.infno.person, build_person_query(
            mdtrt_cert_type=cert_type, mdtrt_cert_no=str(cert_no), psn_cert_type=claim.get("psn_cert_type"),
            certno=claim.get("certno"), psn_name=claim.get("psn_name"), begntime=claim.get("begntime")),
            insuplc=rc.region)
        if not a.ok:
            raise GatewayError("E-GW-PERSON", f"1101 failed: {a.summary()}")
        person = a.model
        partial, notes = fill_claim(claim, person, retired_psn_types=st.person.retired_psn_types)
        insuplc = str(partial.get("insuplc_admdvs") or "")
        psn_no = partial["psn_no"]
        cum = await self.call(region, st.infno.cumulative, build_cumulative(
            psn_no=psn_no, cum_ym=str(partial.get("setl_time") or "")[:7].replace("-", "") or None),
            insuplc=insuplc, psn_no=psn_no)
        elig = await self.call(region, st.infno.eligibility, build_eligibility(
            psn_no=psn_no, insutype=str(partial.get("insutype") or ""), fixmedins_code=rc.fixmedins_code,
            med_type=str(partial.get("med_type") or ""),
            begntime=str(partial.get("begntime") or partial.get("setl_time") or "")), insuplc=insuplc, psn_no=psn_no)
        if not cum.ok:
            notes.append(f"5206 failed ({cum.summary()}): the claim's own accumulators are used")
        if not elig.ok:
            notes.append(f"2001 failed ({elig.summary()})")
        filled, more = fill_claim(claim, person, cumulative=cum.model if cum.ok else None,
                                  eligibility=elig.model if elig.ok else None,
                                  accumulator_map=st.person.accumulators, retired_psn_types=st.person.retired_psn_types)
        return filled, notes + [n for n in more if n not in notes]

    # ------------------------------------------------------------------ settle locally
    def settle_locally(self, claim: Mapping[str, Any]) -> Any:
        try:
            return self.engine.settle({k: v for k, v in claim.items() if k not in GATEWAY_FIELDS})
        except SettlementError as e:
            raise GatewayError(e.code, e.message, errors=[x.to_dict() for x in e.errors]) from None

    # ------------------------------------------------------------------ submission
    async def submit(self, claim: Mapping[str, Any], *, fetch_person: bool = False,
                     accept_differences: bool = False, fresh_attempts: int | None = None) -> SubmitResult:
        """Settle `claim` on the platform: (1101/5206/2001 →) 2204 → 2206 → compare → 2207 (inpatient
        2301 → 2303 → compare → 2304). Refuses (GatewayError) before anything is sent when the claim is
        bad or its visit is in flight or booked; afterwards every outcome is a `SubmitResult`."""
        if not isinstance(claim, Mapping):
            raise GatewayError("E-CLAIM", "a claim is a JSON object")
        claim = dict(claim)
        notes: list[str] = []
        if fetch_person:
            claim, notes = await self.fetch_person(claim)
        settlement = self.settle_locally(claim)  # every problem of the claim, located, before anything else
        region = str(claim.get("mdtrtarea_admvs") or "")
        rc = self.region(region)
        st = self.settings(region)
        try:
            ids = visit_ids(claim, require_mdtrt_id=st.submission.require_mdtrt_id)
        except ValueError as e:
            raise GatewayError("E-GW-VISIT", str(e)) from None
        if ids["derived_mdtrt_id"] == "1":
            notes.append(f"no mdtrt_id on the claim (2201/2401 registration): local visit id {ids['mdtrt_id']} used")
        inpatient = str(claim.get("med_type")) in st.submission.inpatient_med_types
        ours = {"setlinfo": settlement.setlinfo(), "packs": settlement.packs()}
        outbox = self.outbox(region)
        try:
            sid = await asyncio.to_thread(
                outbox.open_submission, region=region, insuplc=claim.get("insuplc_admdvs"), psn_no=ids["psn_no"],
                mdtrt_id=ids["mdtrt_id"], visit_key=ids["visit_key"], kind="inpatient" if inpatient else "outpatient",
                claim=claim, owner=self.owner, ours=ours,
                options={"accept_differences": accept_differences, "fresh_attempts": fresh_attempts})
        except ob.InFlight as e:
            raise GatewayError(e.code, e.message, **e.info) from None
        await asyncio.to_thread(self.journal(region).append, "gateway.submission",
                                {"submission": sid, "region": region, "state": ob.S_NEW, "visit": ids,
                                 "ours": ours, "notes": notes},
                                keys={"submission": sid, "psn_no": ids["psn_no"], "mdtrt_id": ids["mdtrt_id"],
                                      "region": region})
        ctx = _Ctx(rc, st, claim, ids, inpatient, settlement, accept_differences, fresh_attempts, notes)
        return await self._drive(sid, ctx)

    def _ctx_for(self, row: ob.Row) -> _Ctx:
        claim = row.json("claim") or {}
        rc = self.region(row.region)
        st = self.settings(row.region)
        opts = row.json("options") or {}
        ids = {"psn_no": row.psn_no, "mdtrt_id": row.mdtrt_id, "visit_key": row.visit_key,
               "chrg_bchno": claim.get("chrg_bchno") or row.mdtrt_id[-30:], "derived_mdtrt_id": "0"}
        settlement = None
        if row.open:
            try:
                settlement = self.settle_locally(claim)
            except GatewayError as e:
                log_event(log, "gateway.resettle_failed", logging.WARNING, submission=row.id, code=e.code)
        return _Ctx(rc, st, claim, ids, row.kind == "inpatient", settlement, bool(opts.get("accept_differences")),
                    opts.get("fresh_attempts"))

    async def _drive(self, sid: str, ctx: _Ctx) -> SubmitResult:
        self._driving.add(sid)
        try:
            return await self._drive_loop(sid, ctx)
        finally:
            self._driving.discard(sid)

    async def _drive_loop(self, sid: str, ctx: _Ctx) -> SubmitResult:
        outbox = self.outbox(ctx.rc.region)
        steps = 0
        while not ctx.stop:
            row = await asyncio.to_thread(outbox.submission, sid)
            steps += 1
            if steps > 50:  # a state machine that does not converge is a bug; stop, visible in status
                raise GatewayError("E-GW-LOOP", f"submission {sid} did not settle after 50 steps (state {row.state})")
            s = row.state
            try:
                if s == ob.S_NEW:
                    await self._upload(row, ctx)
                elif s == ob.S_UPLOADED:
                    await self._presettle(row, ctx)
                elif s == ob.S_PRESETTLED:
                    await self._settle(row, ctx)
                elif s == ob.S_SETTLING:
                    await self._settle_interrupted(row, ctx)
                elif s in (ob.S_UNKNOWN, ob.S_REVERSING):
                    await self._reverse_unknown(row, ctx)
                else:
                    break
            except ob.LeaseLost as e:
                ctx.notes.append(e.message)
                break
            except GatewayError as e:  # sign-in impossible, audit log unwritable …
                if s in (ob.S_NEW, ob.S_UPLOADED, ob.S_PRESETTLED):  # nothing can be booked yet: close it
                    await asyncio.to_thread(outbox.update_submission, sid, self.owner, state=ob.S_FAILED,
                                            error_code=e.code, error=e.message[:500])
                else:  # an outcome is still open: leave it to resume
                    ctx.notes.append(f"stopped in state {s}: {e.code}: {e.message}")
                break
        return await self._result(sid, ctx)

    async def _result(self, sid: str, ctx: _Ctx) -> SubmitResult:
        row = await asyncio.to_thread(self.outbox(ctx.rc.region).submission, sid)
        platform = row.json("platform") or {}
        return SubmitResult(
            submission=sid, state=row.state, region=row.region, psn_no=row.psn_no, mdtrt_id=row.mdtrt_id,
            attempt=row.attempt, setl_id=row.setl_id, settle_msgid=row.settle_msgid,
            ours=(row.json("ours") or {}).get("setlinfo"),
            platform=(platform.get("settle") or platform.get("pre") or {}).get("setlinfo"),
            comparison=row.json("compare"), error_code=row.error_code, error=row.error, notes=ctx.notes,
            messages=ctx.messages)

    def _note_message(self, ctx: _Ctx, msgid: str, answer: Answer) -> None:
        ctx.messages.append({"msgid": msgid, "infno": answer.infno, "outcome": answer.outcome.value,
                             "code": answer.code, **({"detail": answer.detail} if answer.detail else {})})

    async def _step(self, row: ob.Row, ctx: _Ctx, infno: str, input_: Mapping[str, Any], *, purpose: str,
                    submission_update: Mapping[str, Any] | None = None, omsgid: str | None = None,
                    oinfno: str | None = None) -> tuple[str, Answer]:
        """One exchange of the flow, with one re-sign-in when the platform refuses the sign_no."""
        sign_no = await self.sign_no(ctx.rc.region)
        msgid, env, answer = await self._exchange(
            ctx.rc, ctx.st, infno, input_, purpose=purpose, insuplc=str(row.insuplc or ""), sign_no=sign_no,
            submission=row.id, attempt=row.attempt, psn_no=row.psn_no, mdtrt_id=row.mdtrt_id, omsgid=omsgid,
            oinfno=oinfno, submission_update=submission_update, packs=(row.json("ours") or {}).get("packs"))
        self._note_message(ctx, msgid, answer)
        if answer.code == "E-GW-SIGN-REJECTED":
            await self.sign_no(ctx.rc.region, refused=sign_no)
        return msgid, answer

    def _fail(self, answer: Answer, step: str) -> dict[str, Any]:
        return {"state": ob.S_FAILED, "error_code": answer.code,
                "error": f"{step}: {answer.detail or answer.code}"[:500]}

    async def _upload(self, row: ob.Row, ctx: _Ctx) -> None:
        st = ctx.st
        infno = st.infno.fee_upload_inpatient if ctx.inpatient else st.infno.fee_upload_outpatient
        body = build_feedetail(ctx.claim, mdtrt_id=row.mdtrt_id, psn_no=row.psn_no, chrg_bchno=ctx.ids["chrg_bchno"])
        await self._repeatable_step(row, ctx, infno, body, purpose="upload", keep_as="lines",
                                    next_state=ob.S_UPLOADED, what="fee upload")

    async def _presettle(self, row: ob.Row, ctx: _Ctx) -> None:
        st = ctx.st
        infno = st.infno.presettle_inpatient if ctx.inpatient else st.infno.presettle_outpatient
        body = build_presettle(ctx.claim, ctx.ids, st.submission, inpatient=ctx.inpatient)
        await self._repeatable_step(row, ctx, infno, body, purpose="presettle", keep_as="pre",
                                    next_state=ob.S_PRESETTLED, what="pre-settlement")

    async def _repeatable_step(self, row: ob.Row, ctx: _Ctx, infno: str, body: Any, *, purpose: str, keep_as: str,
                               next_state: str, what: str) -> None:
        """A step the platform may see twice without harm (fee upload, pre-settlement): sent again once,
        with a fresh sign-in, when the platform refuses our sign_no; any other failure ends the
        submission with the platform's reason. The platform's answer is kept under `keep_as`."""
        for _ in range(2):
            msgid, answer = await self._step(row, ctx, infno, body, purpose=purpose)
            if answer.ok:
                platform = row.json("platform") or {}
                platform[keep_as] = answer.model.model_dump(mode="json")
                await self._finish(ctx.rc, msgid, answer, ob.DONE, owner=self.owner, submission=row.id,
                                   submission_update={"state": next_state, "platform": ob.masked_json(platform)})
                return
            retry = answer.code == "E-GW-SIGN-REJECTED"
            await self._finish(ctx.rc, msgid, answer, self._state_of(answer), owner=self.owner, submission=row.id,
                               submission_update=None if retry else self._fail(answer, f"{what} ({infno})"))
            if not retry:
                return
        await asyncio.to_thread(self.outbox(ctx.rc.region).update_submission, row.id, self.owner,
                                state=ob.S_FAILED, error_code="E-GW-SIGN-REJECTED",
                                error=f"{what} ({infno}): sign_no refused twice")

    def _fresh_budget(self, ctx: _Ctx) -> int:
        return ctx.st.submission.fresh_attempts if ctx.fresh_attempts is None else int(ctx.fresh_attempts)

    async def _settle(self, row: ob.Row, ctx: _Ctx) -> None:
        st = ctx.st
        outbox = self.outbox(ctx.rc.region)
        platform = row.json("platform") or {}
        pre, p1 = parse_output("2206", platform.get("pre"))
        lines, p2 = parse_output("2204", platform.get("lines")) if platform.get("lines") else (None, None)
        if pre is None or ctx.settlement is None:
            why = p1[1] if p1 else "the engine cannot settle the stored claim"
            await asyncio.to_thread(outbox.update_submission, row.id, self.owner, state=ob.S_FAILED,
                                    error_code="E-GW-STATE", error=f"cannot settle: {why}")
            return
        cmp = compare(ctx.settlement, pre, lines, st.compare)
        ctx.comparison = cmp
        self.metrics.comparisons.labels(cmp.result).inc()
        await asyncio.to_thread(self.journal(ctx.rc.region).append, "gateway.compare",
                                {"submission": row.id, "attempt": row.attempt, **cmp.to_dict()},
                                keys={"submission": row.id, "psn_no": row.psn_no, "mdtrt_id": row.mdtrt_id})
        if cmp.blocked and not ctx.accept_differences:
            n = sum(1 for d in cmp.differences if d.severity == "block")
            await asyncio.to_thread(outbox.update_submission, row.id, self.owner, state=ob.S_BLOCKED,
                                    compare=cmp.to_dict(), error_code="E-GW-COMPARE-BLOCKED",
                                    error=f"{n} difference(s) between the platform's pre-settlement and ours exceed the "
                                          "tolerance; 2207 not sent")
            return
        if cmp.blocked:
            ctx.notes.append("differences above the tolerance accepted by the operator (--accept-differences)")
        infno = st.infno.settle_inpatient if ctx.inpatient else st.infno.settle_outpatient
        body = build_settle(ctx.claim, ctx.ids, st.submission, pre.setlinfo, inpatient=ctx.inpatient)
        msgid, answer = await self._step(row, ctx, infno, body, purpose="settle",
                                         submission_update={"state": ob.S_SETTLING, "settle_msgid": lambda m: m,
                                                            "compare": cmp.to_dict()})
        await self._settle_answer(row, ctx, msgid, answer)

    async def _settle_answer(self, row: ob.Row, ctx: _Ctx, msgid: str, answer: Answer) -> None:
        if answer.ok:
            si = answer.model.setlinfo
            day = (si.setl_time or "")[:10] or self.outbox(ctx.rc.region).now_local().strftime("%Y-%m-%d")
            totals = settlement_totals(si, region=ctx.rc.region, inpatient=ctx.inpatient, reconcile=ctx.st.reconcile)
            platform = row.json("platform") or {}
            platform["settle"] = answer.model.model_dump(mode="json")
            await self._finish(ctx.rc, msgid, answer, ob.DONE, owner=self.owner, submission=row.id,
                               setl_id=si.setl_id, setl_date=day, totals=totals,
                               submission_update={"state": ob.S_DONE, "setl_id": si.setl_id, "error_code": None,
                                                  "error": None, "platform": ob.masked_json(platform)})
            await asyncio.to_thread(self.journal(ctx.rc.region).append, "gateway.settled",
                                    {"submission": row.id, "msgid": msgid, "setl_id": si.setl_id, "totals": totals},
                                    keys={"submission": row.id, "msgid": msgid, "setl_id": si.setl_id,
                                          "psn_no": row.psn_no, "mdtrt_id": row.mdtrt_id})
            return
        if answer.needs_reversal:
            await self._finish(ctx.rc, msgid, answer, ob.UNKNOWN, owner=self.owner, submission=row.id,
                               submission_update={"state": ob.S_UNKNOWN, "error_code": answer.code,
                                                  "error": f"settlement outcome unknown: {answer.detail}"[:500]})
            log_event(log, "gateway.settlement_unknown", logging.WARNING, msgid=msgid, submission=row.id,
                      code=answer.code)
            return
        # a definite refusal: nothing was booked
        fresh = row.attempt < 1 + self._fresh_budget(ctx)
        if answer.code == "E-GW-SIGN-REJECTED" and fresh:
            await self._finish(ctx.rc, msgid, answer, ob.FAILED, owner=self.owner, submission=row.id,
                               submission_update={"state": ob.S_UPLOADED, "attempt": row.attempt + 1,
                                                  "settle_msgid": None})
            ctx.notes.append(f"sign_no refused at settlement {msgid}: signed in again, fresh attempt")
            return
        await self._finish(ctx.rc, msgid, answer, ob.FAILED, owner=self.owner, submission=row.id,
                           submission_update=self._fail(answer, "settlement"))

    async def _settle_interrupted(self, row: ob.Row, ctx: _Ctx) -> None:
        """Resuming a submission that recorded its settlement request but not the answer: whether
        it was sent is unknown, so it is treated as an unknown outcome (→ 冲正)."""
        outbox = self.outbox(ctx.rc.region)
        req = await asyncio.to_thread(outbox.request, row.settle_msgid) if row.settle_msgid else None
        if req is not None and req.state == ob.PENDING:
            await asyncio.to_thread(outbox.set_request_state, req.msgid, ob.UNKNOWN, code="E-GW-INTERRUPTED",
                                    detail="the process stopped after recording the settlement")
        await asyncio.to_thread(outbox.update_submission, row.id, self.owner, state=ob.S_UNKNOWN,
                                error_code="E-GW-INTERRUPTED",
                                error="settlement interrupted before its answer was recorded")
        ctx.notes.append(f"settlement {row.settle_msgid} interrupted: outcome unknown, 冲正 follows")

    async def _reverse_unknown(self, row: ob.Row, ctx: _Ctx, *, fresh: bool = True) -> None:
        """冲正 (2601) the settlement whose outcome is unknown; re-sent until the platform answers
        definitely. Success → the settlement is gone: a fresh attempt (new msgid) when the budget
        allows, else REVERSED. A definite refusal → REVERSAL_FAILED for an operator."""
        st = ctx.st
        rc = ctx.rc
        outbox = self.outbox(rc.region)
        omsgid = row.settle_msgid
        orig = await asyncio.to_thread(outbox.request, omsgid) if omsgid else None
        if orig is None:
            await asyncio.to_thread(outbox.update_submission, row.id, self.owner, state=ob.S_REVERSAL_FAILED,
                                    error_code="E-GW-STATE", error="no settlement msgid recorded to reverse")
            return
        body = build_reversal(row.psn_no, omsgid, orig.infno)
        attempts = max(1, rc.retry.max_attempts)
        for n in range(1, attempts + 1):
            msgid, answer = await self._step(row, ctx, st.infno.reversal, body, purpose="reverse",
                                             submission_update={"state": ob.S_REVERSING}, omsgid=omsgid,
                                             oinfno=orig.infno)
            # _step wrote REVERSING with the request; the outcome now
            if answer.ok:
                again = fresh and row.attempt < 1 + self._fresh_budget(ctx)
                upd = ({"state": ob.S_UPLOADED, "attempt": row.attempt + 1, "settle_msgid": None,
                        "error_code": None, "error": None} if again else
                       {"state": ob.S_REVERSED, "error_code": row.error_code,
                        "error": f"settlement {omsgid} reversed by 冲正 {msgid}"})
                await self._finish(rc, msgid, answer, ob.DONE, owner=self.owner, submission=row.id,
                                   also=[(omsgid, ob.REVERSED)], submission_update=upd)
                self.metrics.reversals.labels("reversal", "done").inc()
                ctx.notes.append(f"settlement {omsgid} reversed (冲正 {msgid})"
                                 + ("; fresh attempt with a new msgid" if again else ""))
                await asyncio.to_thread(self.journal(rc.region).append, "gateway.reversed",
                                        {"submission": row.id, "omsgid": omsgid, "oinfno": orig.infno,
                                         "reversal_msgid": msgid, "fresh_attempt": again},
                                        keys={"submission": row.id, "msgid": msgid, "omsgid": omsgid,
                                              "psn_no": row.psn_no, "mdtrt_id": row.mdtrt_id})
                return
            if answer.outcome is Outcome.FAILURE and answer.code != "E-GW-SIGN-REJECTED" \
                    and not self._transient(answer):
                await self._finish(rc, msgid, answer, ob.FAILED, owner=self.owner, submission=row.id,
                                   submission_update={"state": ob.S_REVERSAL_FAILED, "error_code": answer.code,
                                                      "error": f"冲正 of {omsgid} refused: {answer.detail}"[:500]})
                self.metrics.reversals.labels("reversal", "failed").inc()
                log_event(log, "gateway.reversal_failed", logging.ERROR, msgid=msgid, omsgid=omsgid,
                          code=answer.code)
                return
            await self._finish(rc, msgid, answer, self._state_of(answer), owner=self.owner, submission=row.id)
            self.metrics.reversals.labels("reversal", "unknown").inc()
            if n < attempts:
                self.metrics.retries.labels(st.infno.reversal).inc()
                await asyncio.sleep(rc.retry.delay(n))
            row = await asyncio.to_thread(outbox.submission, row.id)
        ctx.stop = True
        ctx.notes.append(f"冲正 of {omsgid} still without a definite answer; 'gateway resume' sends it again")

    # ------------------------------------------------------------------ resume after a crash
    async def resume(self, *, force: bool = False) -> list[SubmitResult]:
        """Finish what dead processes left: their PENDING requests become UNKNOWN, their submissions
        are taken over and driven on (a settlement recorded but unanswered → 冲正)."""
        results = []
        for outbox in self.outboxes():
            lease = self.lease_seconds

            def dead(owner: str | None) -> bool:
                return force or not _owner_alive(owner)

            abandoned = await asyncio.to_thread(outbox.abandon_pending, owner_is_dead=dead)
            for r in abandoned:
                await asyncio.to_thread(self.journal(r.region).append, "gateway.recovered",
                                        {"msgid": r.msgid, "infno": r.infno, "purpose": r.purpose,
                                         "submission": r.submission, "state": ob.UNKNOWN},
                                        keys={"msgid": r.msgid, "submission": r.submission, "region": r.region})
            rows = await asyncio.to_thread(outbox.submissions, states=ob.ACTIVE_STATES)
            for row in rows:
                if row.id in self._driving:
                    continue
                st = self.settings(row.region)
                ls = st.submission.lease_seconds if lease is None else lease
                taken = await asyncio.to_thread(outbox.take_over, row.id, self.owner, lease_seconds=ls,
                                                alive=_owner_alive, force=force)
                if not taken:
                    continue
                ctx = self._ctx_for(row)
                ctx.notes.append(f"resumed from state {row.state} (previous owner {row.owner})")
                results.append(await self._drive(row.id, ctx))
        return results

    # ------------------------------------------------------------------ operator actions
    def find_request(self, msgid: str) -> tuple[ob.Outbox, ob.Row] | None:
        for o in self.outboxes():
            r = o.request(msgid)
            if r is not None:
                return o, r
        return None

    async def reverse(self, msgid: str) -> dict[str, Any]:
        """Undo a settlement: a booked one by its refund transaction (2208/2305, needs the setl_id);
        one whose outcome is unknown — or a refund whose outcome is unknown — by 冲正 (2601)."""
        found = self.find_request(msgid)
        if found is None:
            raise GatewayError("E-GW-MSGID", f"no request with msgid {msgid} in the outbox")
        outbox, req = found
        st = self.settings(req.region)
        sub = await asyncio.to_thread(outbox.submission, req.submission) if req.submission else None
        if req.purpose == "settle":
            if req.state == ob.DONE and sub is not None and sub.state == ob.S_DONE:
                pending = [r for r in await asyncio.to_thread(outbox.requests, omsgid=msgid, purpose="refund")
                           if r.state in (ob.PENDING, ob.UNKNOWN)]
                if pending:
                    raise GatewayError("E-GW-REFUND-UNKNOWN", f"a refund of {msgid} ({pending[0].msgid}) has an unknown "
                                       f"outcome: 冲正 it first with 'gateway reverse {pending[0].msgid}'")
                infno = st.infno.refund_inpatient if sub.kind == "inpatient" else st.infno.refund_outpatient

                def fin(a: Answer) -> dict:
                    if a.ok:
                        return {"also": [(msgid, ob.REFUNDED)], "submission": sub.id,
                                "submission_update": {"state": ob.S_REFUNDED, "error": f"refunded by {a.msgid}"}}
                    return {}

                answer = await self.call(req.region, infno, build_refund(req.psn_no, req.mdtrt_id, req.setl_id),
                                         purpose="refund", insuplc=str(sub.insuplc or ""), psn_no=req.psn_no,
                                         mdtrt_id=req.mdtrt_id, submission=sub.id, omsgid=msgid, oinfno=req.infno,
                                         finish=fin)
                self.metrics.reversals.labels("refund", "done" if answer.ok else answer.outcome.value).inc()
                return {"action": "refund", "infno": infno, "msgid": answer.msgid, "ok": answer.ok,
                        "answer": answer.summary()}
            if sub is not None and (req.state in (ob.UNKNOWN, ob.PENDING) or sub.state in
                                    (ob.S_SETTLING, ob.S_UNKNOWN, ob.S_REVERSING, ob.S_REVERSAL_FAILED)):
                taken = await asyncio.to_thread(outbox.take_over, sub.id, self.owner,
                                                lease_seconds=st.submission.lease_seconds if self.lease_seconds is None
                                                else self.lease_seconds, alive=_owner_alive,
                                                force=sub.state == ob.S_REVERSAL_FAILED)
                if not taken:
                    raise GatewayError("E-GW-IN-FLIGHT", f"submission {sub.id} is being worked on by {sub.owner}")
                if sub.settle_msgid != msgid:
                    raise GatewayError("E-GW-STATE", f"{msgid} is not the submission's current settlement "
                                       f"({sub.settle_msgid})")
                if sub.state in (ob.S_SETTLING, ob.S_REVERSAL_FAILED):
                    if req.state == ob.PENDING:
                        await asyncio.to_thread(outbox.set_request_state, msgid, ob.UNKNOWN, code="E-GW-INTERRUPTED")
                    await asyncio.to_thread(outbox.update_submission, sub.id, self.owner, state=ob.S_UNKNOWN)
                    sub = await asyncio.to_thread(outbox.submission, sub.id)
                ctx = self._ctx_for(sub)
                await self._reverse_unknown(sub, ctx, fresh=False)
                after = await asyncio.to_thread(outbox.submission, sub.id)
                return {"action": "reversal", "infno": st.infno.reversal, "ok": after.state == ob.S_REVERSED,
                        "state": after.state, "error": after.error, "notes": ctx.notes}
            raise GatewayError("E-GW-STATE", f"settlement {msgid} is {req.state}"
                               + (f" (submission {sub.state})" if sub else "") + ": nothing to reverse")
        if req.purpose == "refund" and req.state in (ob.UNKNOWN, ob.PENDING):
            if req.state == ob.PENDING and _owner_alive(req.owner):
                raise GatewayError("E-GW-IN-FLIGHT", f"refund {msgid} is still being sent by {req.owner}")

            def fin2(a: Answer) -> dict:
                return {"also": [(msgid, ob.REVERSED)]} if a.ok else {}

            answer = await self.call(req.region, st.infno.reversal, build_reversal(req.psn_no, msgid, req.infno),
                                     purpose="reverse", psn_no=req.psn_no, mdtrt_id=req.mdtrt_id,
                                     submission=req.submission, omsgid=msgid, oinfno=req.infno, finish=fin2)
            self.metrics.reversals.labels("reversal", "done" if answer.ok else answer.outcome.value).inc()
            return {"action": "reversal", "infno": st.infno.reversal, "msgid": answer.msgid, "ok": answer.ok,
                    "answer": answer.summary()}
        raise GatewayError("E-GW-STATE", f"msgid {msgid} is a {req.purpose} ({req.infno}, {req.state}); only a "
                           "settlement, or a refund with an unknown outcome, can be reversed")

    async def reconcile(self, day: str, *, regions: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """3201 对总账 for `day` (yyyy-MM-dd): the outbox's settlements in force, grouped by insutype,
        清算类别 and 经办机构, with the region's definition of fund_pay_sumamt."""
        try:
            dt.date.fromisoformat(day)
        except ValueError:
            raise GatewayError("E-GW-DATE", f"'{day}' is not a date yyyy-MM-dd") from None
        out = []
        for code in (list(regions) if regions else sorted(self.config.regions)):
            st = self.settings(code)
            rows = await asyncio.to_thread(self.outbox(code).settlements_on, day, region=code,
                                           infnos=st.infno.settlements)
            groups = daily_totals(rows, includes_acct=st.reconcile.fund_pay_sumamt_includes_acct_pay)
            for g in groups:
                body = build_reconcile(insutype=g.insutype, clr_type=g.clr_type, setl_optins=g.setl_optins,
                                       begndate=day, enddate=day, medfee_sumamt=fen_decimal(g.medfee_sumamt),
                                       fund_pay_sumamt=fen_decimal(g.fund_pay_sumamt), acct_pay=fen_decimal(g.acct_pay),
                                       count=g.count, refd_setl_flag=st.reconcile.refd_setl_flag)
                answer = await self.call(code, st.infno.reconcile, body, purpose="reconcile")
                stmt = answer.model.stmtinfo if answer.ok else None
                out.append({**g.to_dict(), "msgid": answer.msgid, "outcome": answer.outcome.value,
                            "answer": answer.summary(), "stmt_rslt": stmt.stmt_rslt if stmt else None,
                            "stmt_rslt_dscr": stmt.stmt_rslt_dscr if stmt else None,
                            "balanced": bool(stmt and str(stmt.stmt_rslt) == "0")})
        return out

    def status(self) -> dict[str, Any]:
        now = self._clock()
        out: dict[str, Any] = {"outboxes": [], "attention": []}
        for o in self.outboxes():
            d = o.depth()
            out["outboxes"].append({"path": str(o.path), **o.counts(), "unfinished": d["states"],
                                    "oldest_unfinished_seconds": round(now - d["oldest"], 1) if d["oldest"] else 0})
            for r in o.submissions(states=ob.ACTIVE_STATES | {ob.S_REVERSAL_FAILED}):
                out["attention"].append({"submission": r.id, "state": r.state, "region": r.region,
                                         "psn_no": r.psn_no, "mdtrt_id": r.mdtrt_id, "settle_msgid": r.settle_msgid,
                                         "owner": r.owner, "alive": _owner_alive(r.owner), "error": r.error,
                                         "age_seconds": round(now - r.created, 1)})
            for r in o.requests(state=ob.UNKNOWN):
                if r.submission is None or r.purpose in ("refund",):
                    out["attention"].append({"msgid": r.msgid, "infno": r.infno, "purpose": r.purpose,
                                             "state": r.state, "code": r.code, "detail": r.detail})
        return out


# --------------------------------------------------------------------------- sync wrapper

class SyncGateway:
    """The gateway for synchronous callers: an event loop on a background thread, one `Gateway` in
    it; each method blocks until its coroutine is done. Thread-safe."""

    def __init__(self, *args: Any, **kwargs: Any):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="gateway-loop", daemon=True)
        self._thread.start()

        async def make() -> Gateway:
            return Gateway(*args, **kwargs)

        self.gateway: Gateway = self._run(make())

    def _run(self, coro: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def submit(self, claim: Mapping[str, Any], **kw: Any) -> SubmitResult:
        return self._run(self.gateway.submit(claim, **kw))

    def reverse(self, msgid: str) -> dict[str, Any]:
        return self._run(self.gateway.reverse(msgid))

    def resume(self, **kw: Any) -> list[SubmitResult]:
        return self._run(self.gateway.resume(**kw))

    def reconcile(self, day: str, **kw: Any) -> list[dict[str, Any]]:
        return self._run(self.gateway.reconcile(day, **kw))

    def fetch_person(self, claim: Mapping[str, Any]) -> tuple[dict, list[str]]:
        return self._run(self.gateway.fetch_person(claim))

    def call(self, region: str, infno: str, input_: Mapping[str, Any], **kw: Any) -> Answer:
        return self._run(self.gateway.call(region, infno, input_, **kw))

    def status(self) -> dict[str, Any]:
        return self.gateway.status()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._run(self.gateway.aclose())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()

    def __enter__(self) -> "SyncGateway":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
