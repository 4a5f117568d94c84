"""医保电子凭证 (e-voucher) payment: the 移动支付 flow through scheme B, with the gateway's outbox.

    fee upload (6201) ─► order UPLOADED (payOrdId, the platform's split)   no money moves
    payment (6202)    ─► PAYING recorded, then sent ─► PAID | FAILED | UNKNOWN
    UNKNOWN           ─► status query (6301): paid → PAID; unpaid → revoke (6401) so it can never be
                          paid late, then FAILED; no definite answer → stays UNKNOWN (no retry)
    refund (6203)     ─► REFUNDING recorded, then sent ─► REFUNDED | PAID (refused) | REFUND_UNKNOWN
    REFUND_UNKNOWN    ─► status query: refunded → REFUNDED; still paid → the refund may be sent again
                          with the same refund serial (the platform refuses a second refund of an order)
    callback (6302)   ─► a signed notification; a bad signature is refused and changes nothing

The guarantees are the gateway's, in the gateway's own outbox file (`EVoucherOutbox` adds an
`evoucher_orders` table to it, so `rules_engine_gateway_outbox_*` metrics count these requests too):

- **record before send** — every message has a requests row (PENDING, msgid from the durable
  counter) and an audit-journal entry before a byte goes out; its answer and the order's next state
  are written in one transaction;
- **never paid twice** — one open order per visit (a partial unique index, across threads and
  processes): a second payment of a paid visit is refused until it is refunded; a payment message
  is never re-sent;
- **an unknown outcome is resolved before a retry** — a payment whose answer was lost (timeout,
  broken connection, HTTP 5xx, a signature that does not verify) is UNKNOWN until the status query
  says what happened; nothing else is sent for that order meanwhile.

Transaction numbers and paths are settings (member.yaml `evoucher.transactions`): the reference
lists none of them; the defaults are what public integration code uses (docs/member.md).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..gateway import outbox as ob
from ..gateway.outbox import Outbox, Row, masked_json
from ..gateway.security import SecurityError, compact_json
from ..journal import Journal, JournalError
from ..money import fen_decimal, scaled_int
from .errors import MemberError, field_error, invalid
from .settings import EVoucherSettings

log = logging.getLogger("rules_engine.member.evoucher")

NEW, UPLOADED, PAYING, PAID, UNKNOWN = "NEW", "UPLOADED", "PAYING", "PAID", "UNKNOWN"
REFUNDING, REFUND_UNKNOWN, REFUNDED, FAILED, REVOKED = "REFUNDING", "REFUND_UNKNOWN", "REFUNDED", "FAILED", "REVOKED"
OPEN = frozenset({NEW, UPLOADED, PAYING, PAID, UNKNOWN, REFUNDING, REFUND_UNKNOWN})
TOKENS = ("ecToken", "payToken", "payAuthNo")

_SCHEMA = ["""
CREATE TABLE IF NOT EXISTS evoucher_orders (
    id            TEXT PRIMARY KEY,
    order_key     TEXT NOT NULL,
    region        TEXT NOT NULL,
    psn_no        TEXT NOT NULL,
    state         TEXT NOT NULL,
    open          INTEGER NOT NULL,
    med_org_ord   TEXT,
    pay_ord_id    TEXT,
    pay_token     TEXT,
    amounts       TEXT,
    ours          TEXT,
    upload_msgid  TEXT,
    pay_msgid     TEXT,
    refund_msgid  TEXT,
    refund_sn     TEXT,
    error_code    TEXT,
    error         TEXT,
    claim         TEXT NOT NULL,
    created       REAL NOT NULL,
    updated       REAL NOT NULL
)""", "CREATE UNIQUE INDEX IF NOT EXISTS evoucher_open ON evoucher_orders(order_key) WHERE open=1",
    "CREATE INDEX IF NOT EXISTS evoucher_pay_ord ON evoucher_orders(pay_ord_id)"]


class EVoucherOutbox(Outbox):
    """The gateway's outbox with an orders table: same file, same msgid counter, same transactions."""

    def __init__(self, path: Any, **kw: Any):
        super().__init__(path, **kw)
        self._tx(lambda c: [c.execute(s) for s in _SCHEMA])

    def open_order(self, *, order_key: str, region: str, psn_no: str, claim: Mapping[str, Any],
                   ours: Mapping[str, Any]) -> str:
        oid = "E" + uuid.uuid4().hex[:24]
        now = self._clock()

        def tx(c: sqlite3.Connection) -> str:
            c.execute("INSERT INTO evoucher_orders(id, order_key, region, psn_no, state, open, ours, claim, created, "
                      "updated) VALUES (?,?,?,?,?,1,?,?,?,?)",
                      (oid, order_key, region, psn_no, NEW, json.dumps(ours, default=str), masked_json(claim), now, now))
            return oid

        try:
            return self._tx(tx)
        except sqlite3.IntegrityError:
            held = self.orders(order_key=order_key, open_only=True)
            h = held[0] if held else None
            if h is not None and h.state in (PAID, REFUNDING, REFUND_UNKNOWN):
                raise MemberError("E-EVOUCHER-ALREADY-PAID", f"visit {order_key} is already paid by e-voucher (order "
                                  f"{h.id}, {h.state}); refund it first", order=h.id) from None
            hid, hstate = (h.id, h.state) if h is not None else ("?", "?")
            raise MemberError("E-EVOUCHER-PENDING", f"visit {order_key} has an e-voucher order in progress ({hid}, "
                              f"{hstate}): resolve it first ('member pay status')",
                              order=h.id if h else None) from None

    def order(self, oid: str) -> Row | None:
        rows = self._read("SELECT * FROM evoucher_orders WHERE id=?", (oid,))
        return rows[0] if rows else None

    def order_by_pay_id(self, pay_ord_id: str) -> Row | None:
        rows = self._read("SELECT * FROM evoucher_orders WHERE pay_ord_id=?", (pay_ord_id,))
        return rows[0] if rows else None

    def orders(self, *, order_key: str | None = None, states: Any = None, open_only: bool = False) -> list[Row]:
        where, args = [], []
        if order_key is not None:
            where.append("order_key=?")
            args.append(order_key)
        if states:
            st = list(states)
            where.append("state IN (%s)" % ",".join("?" * len(st)))
            args += st
        if open_only:
            where.append("open=1")
        return self._read("SELECT * FROM evoucher_orders" + (" WHERE " + " AND ".join(where) if where else "")
                          + " ORDER BY created", args)

    @staticmethod
    def _update_order(c: sqlite3.Connection, oid: str, fields: dict[str, Any], now: float) -> None:
        if "state" in fields:
            fields["open"] = 1 if fields["state"] in OPEN else 0
        for k in ("amounts",):
            if k in fields and not isinstance(fields[k], (str, type(None))):
                fields[k] = json.dumps(fields[k], default=str)
        fields["updated"] = now
        c.execute(f"UPDATE evoucher_orders SET {', '.join(f'{k}=?' for k in fields)} WHERE id=?",
                  (*fields.values(), oid))

    def update_order(self, oid: str, *, expect: Any = None, **fields: Any) -> bool:
        """Change an order; with `expect` (a state or states) only if it is in one of them. True if changed."""
        now = self._clock()

        def tx(c: sqlite3.Connection) -> bool:
            if expect is not None:
                row = c.execute("SELECT state FROM evoucher_orders WHERE id=?", (oid,)).fetchone()
                allowed = {expect} if isinstance(expect, str) else set(expect)
                if row is None or row[0] not in allowed:
                    return False
            self._update_order(c, oid, dict(fields), now)
            return True

        return self._tx(tx)

    def record_for_order(self, oid: str, *, region: str, fixmedins_code: str, infno: str, purpose: str, owner: str,
                         psn_no: str, build: Callable[[str, dt.datetime], Mapping[str, Any]],
                         order_update: Callable[[str], dict[str, Any]] | None = None,
                         expect: Any = None) -> tuple[str, dict[str, Any]]:
        """Allocate a msgid, record the request (PENDING) and, in the same transaction, move the order
        (e.g. to PAYING with this msgid) — only if it is still in `expect`."""
        now = self._clock()
        local = dt.datetime.fromtimestamp(now, self._tz)

        def tx(c: sqlite3.Connection) -> tuple[str, dict[str, Any]]:
            if expect is not None:
                row = c.execute("SELECT state FROM evoucher_orders WHERE id=?", (oid,)).fetchone()
                allowed = {expect} if isinstance(expect, str) else set(expect)
                if row is None or row[0] not in allowed:
                    raise MemberError("E-EVOUCHER-STATE", f"order {oid} is {row[0] if row else 'missing'}; "
                                      f"expected {', '.join(sorted(allowed))}")
            from ..gateway.envelope import next_msgid
            msgid = next_msgid(c, fixmedins_code, local)
            message = dict(build(msgid, local))
            stored = _redact(message)
            import hashlib
            c.execute("INSERT INTO requests(msgid, infno, region, purpose, submission, attempt, psn_no, mdtrt_id, "
                      "omsgid, oinfno, state, owner, created, request, request_hash) "
                      "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                      (msgid, infno, region, purpose, None, 1, psn_no, oid, None, None, ob.PENDING, owner, now,
                       masked_json(stored), hashlib.sha256(compact_json(message).encode("utf-8")).hexdigest()))
            if order_update is not None:
                self._update_order(c, oid, order_update(msgid), now)
            return msgid, message

        return self._tx(tx)

    def finish_for_order(self, msgid: str, oid: str, *, state: str, answer: "PayAnswer",
                         order_update: dict[str, Any] | None = None) -> None:
        """The answer of a request and the order's next state, in one transaction."""
        now = self._clock()

        def tx(c: sqlite3.Connection) -> None:
            c.execute("UPDATE requests SET state=?, answered=?, response=?, http_status=?, infcode=?, err_msg=?, "
                      "code=?, detail=? WHERE msgid=?",
                      (state, now, masked_json(_redact(answer.message)) if answer.message is not None else None,
                       answer.http_status, None if answer.code_value is None else str(answer.code_value)[:20],
                       (answer.err_msg or None) and answer.err_msg[:500], answer.code, answer.detail[:500], msgid))
            if order_update:
                self._update_order(c, oid, dict(order_update), now)

        self._tx(tx)


def _redact(message: Any) -> Any:
    """Credentials (e-voucher and payment tokens) never reach the outbox or the journal."""
    if isinstance(message, dict):
        return {k: ("***" if k in TOKENS and v not in (None, "") else _redact(v)) for k, v in message.items()}
    if isinstance(message, list):
        return [_redact(v) for v in message]
    return message


@dataclass
class PayAnswer:
    """What became of one payment-platform request: success / failure (definite) / unknown."""

    outcome: str
    code: str
    detail: str = ""
    code_value: Any = None
    err_msg: str | None = None
    data: Any = None
    message: dict | None = None
    http_status: int | None = None
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == "success"

    @property
    def unknown(self) -> bool:
        return self.outcome == "unknown"


def classify(status: int, body: bytes, security: Any) -> PayAnswer:
    """HTTP status + body → PayAnswer. Never raises. An answer that does not verify is *unknown*:
    the platform may have booked the payment."""
    if status in (401, 403):
        return PayAnswer("failure", "E-EVOUCHER-HTTP", f"HTTP {status}: refused before the platform", http_status=status)
    if status == 408 or status >= 500:
        return PayAnswer("unknown", "E-EVOUCHER-HTTP", f"HTTP {status}: may or may not have been processed",
                         http_status=status)
    if status >= 400 or status < 200:
        return PayAnswer("failure", "E-EVOUCHER-HTTP", f"HTTP {status}", http_status=status)
    try:
        msg = security.open(body)
    except SecurityError as e:
        return PayAnswer("unknown", "E-EVOUCHER-SECURITY", e.message[:300], http_status=status)
    except Exception as e:
        return PayAnswer("unknown", "E-EVOUCHER-SECURITY", f"{type(e).__name__}: {e}"[:300], http_status=status)
    code = msg.get("code")
    a = PayAnswer("unknown", "E-EVOUCHER-ANSWER", http_status=status, message=msg, code_value=code,
                  err_msg=str(msg.get("message")) if msg.get("message") is not None else None, data=msg.get("data"))
    if isinstance(code, bool) or not isinstance(code, (int, str)) or not str(code).strip().lstrip("-").isdigit():
        a.detail = f"the answer has no readable code ({code!r})"
        return a
    if int(str(code).strip()) != 0:
        a.outcome, a.code, a.detail = "failure", "E-EVOUCHER-REFUSED", a.err_msg or f"code {code}"
        return a
    if not isinstance(a.data, dict):
        a.detail = "a success without data"
        return a
    a.outcome, a.code = "success", "E-EVOUCHER-OK"
    return a


class EVoucherClient:
    """The institution's side of the 移动支付 channel. Synchronous; thread-safe (one outbox, one
    HTTP client)."""

    def __init__(self, channel: Any, settings: EVoucherSettings, *, journal: Journal | None, owner: str | None = None,
                 metrics: Any = None, utc_offset_hours: int = 8, transport: Any = None, durability: str = "FULL"):
        import httpx
        self.rc = channel                  # a gateway RegionConfig: endpoint, security (scheme_b), outbox, …
        self.settings = settings
        self.outbox = EVoucherOutbox(channel.outbox.path, synchronous=durability, utc_offset_hours=utc_offset_hours)
        self.journal = journal
        self.owner = owner or ob.new_owner()
        self.metrics = metrics
        self._http = httpx.Client(transport=transport, timeout=channel.timeouts.as_httpx())

    def close(self) -> None:
        self._http.close()
        self.outbox.close()

    # ------------------------------------------------------------ one exchange
    def _journal(self, kind: str, payload: dict, keys: dict) -> None:
        if self.journal is None:
            return
        self.journal.append(kind, _redact(payload), keys=keys)

    def _exchange(self, oid: str, role: str, data: Callable[[str], dict[str, Any]], *, psn_no: str, expect: Any,
                  order_update: Callable[[str], dict[str, Any]] | None = None,
                  revert: str | None = None) -> tuple[str, PayAnswer]:
        """Record (request row + order move, one transaction), journal, send. On a journal failure
        nothing is sent and the order goes back to `revert` (its state before)."""
        route = self.settings.routes()[role]

        def build(msgid: str, local: dt.datetime) -> dict[str, Any]:
            return {"data": data(msgid)}

        msgid, message = self.outbox.record_for_order(
            oid, region=self.rc.region, fixmedins_code=self.rc.fixmedins_code, infno=route.infno,
            purpose=f"evoucher.{role}", owner=self.owner, psn_no=psn_no, build=build, order_update=order_update,
            expect=expect)
        try:
            self._journal("evoucher.request", {"infno": route.infno, "role": role, "msgid": msgid, "order": oid,
                                               "request": message},
                          {"msgid": msgid, "order": oid, "psn_no": psn_no, "infno": route.infno})
        except JournalError as e:  # the audit log must hold every exchange: nothing sent
            self.outbox.finish_for_order(msgid, oid, state=ob.FAILED, answer=PayAnswer(
                "failure", "E-JOURNAL", f"not sent: {e.message}"),
                order_update={"state": revert} if revert else None)
            raise MemberError("E-JOURNAL", f"the audit log cannot be written; nothing was sent: {e.message}") from None
        answer = self._send(route.path, message)
        if self.metrics is not None:
            self.metrics.evoucher.labels(role, answer.outcome).inc()
        return msgid, answer

    def _send(self, path: str, message: Mapping[str, Any]) -> PayAnswer:
        import httpx
        t0 = time.perf_counter()
        try:
            prepared = self.rc.security.prepare(message)
        except SecurityError as e:
            return PayAnswer("failure", "E-EVOUCHER-SECURITY", f"the request could not be sealed: {e.message}")
        url = self.rc.endpoint.rstrip("/") + path
        try:
            r = self._http.post(url, content=prepared.body, headers=dict(prepared.headers))
        except httpx.ConnectError as e:
            return PayAnswer("failure", "E-EVOUCHER-CONNECTION", f"cannot connect: {e}"[:300])
        except httpx.TimeoutException as e:
            return PayAnswer("unknown", "E-EVOUCHER-TIMEOUT", f"no answer in time ({type(e).__name__})")
        except (httpx.HTTPError, OSError) as e:
            return PayAnswer("unknown", "E-EVOUCHER-CONNECTION", f"the connection broke ({type(e).__name__})")
        a = classify(r.status_code, r.content, self.rc.security)
        a.elapsed = time.perf_counter() - t0
        return a

    def _finish(self, msgid: str, oid: str, answer: PayAnswer, order_update: dict[str, Any] | None,
                psn_no: str) -> None:
        state = ob.DONE if answer.ok else (ob.UNKNOWN if answer.unknown else ob.FAILED)
        self.outbox.finish_for_order(msgid, oid, state=state, answer=answer, order_update=order_update)
        try:
            self._journal("evoucher.response", {"msgid": msgid, "order": oid, "outcome": answer.outcome,
                                                "code": answer.code, "detail": answer.detail,
                                                "http_status": answer.http_status, "response": answer.message},
                          {"msgid": msgid, "order": oid, "psn_no": psn_no})
        except JournalError as e:  # the outbox has the answer; the gap is logged loudly
            log.error("evoucher: the audit log could not record the answer of %s: %s", msgid, e.message)

    # ------------------------------------------------------------ the flow
    def pay(self, *, claim: Mapping[str, Any], order_key: str, ec_token: str, ours: Mapping[str, Any],
            insutype: str) -> Row:
        """Upload the fees and pay them with the person's e-voucher token. Returns the order row."""
        psn_no = str(claim["psn_no"])
        oid = self.outbox.open_order(order_key=order_key, region=self.rc.region, psn_no=psn_no, claim=claim, ours=ours)
        lines = [{"feedetlSn": str(ln["feedetl_sn"]), "medListCodg": ln.get("med_list_codg"),
                  "cnt": ln["cnt"], "pric": ln["pric"], "detItemFeeSumamt": ln["det_item_fee_sumamt"]}
                 for ln in claim["feedetail"]]
        total = fen_decimal(sum(scaled_int(str(ln["det_item_fee_sumamt"]), 2) for ln in claim["feedetail"]))

        def upload(msgid: str) -> dict[str, Any]:
            return {"orgCodg": self.rc.fixmedins_code, "medOrgOrd": msgid, "psnNo": psn_no, "insutype": insutype,
                    "ecToken": ec_token, "medType": claim.get("med_type", "11"), "medfeeSumamt": total,
                    "mdtrtareaAdmvs": claim.get("mdtrtarea_admvs"), "setlTime": claim.get("setl_time"),
                    "acctUsedFlag": claim.get("acct_used_flag", "1"), "feedetailList": lines}

        msgid, a = self._exchange(oid, "fee_upload", upload, psn_no=psn_no, expect=NEW,
                                  order_update=lambda m: {"upload_msgid": m, "med_org_ord": m}, revert=FAILED)
        if not a.ok:
            self._finish(msgid, oid, a, {"state": FAILED, "error_code": a.code, "error": f"fee upload: {a.detail}"},
                         psn_no)
            raise MemberError("E-EVOUCHER-REFUSED" if not a.unknown else "E-MEMBER-UNKNOWN",
                              f"fee upload ({self.settings.fee_upload.infno}) {a.outcome}: {a.detail}; nothing was "
                              "paid", order=oid)
        d = a.data
        missing = [k for k in ("payOrdId", "payToken", "feeSumamt", "fundPay", "psnAcctPay", "ownPayAmt")
                   if d.get(k) is None]
        if missing:
            a.outcome, a.code, a.detail = "failure", "E-EVOUCHER-ANSWER", f"data.{missing[0]}: missing"
            self._finish(msgid, oid, a, {"state": FAILED, "error_code": a.code, "error": a.detail}, psn_no)
            raise MemberError("E-EVOUCHER-REFUSED", f"fee upload answered without {missing[0]}; nothing was paid",
                              order=oid)
        amounts = {k: str(d[k]) for k in ("feeSumamt", "fundPay", "psnAcctPay", "ownPayAmt")}
        self._finish(msgid, oid, a, {"state": UPLOADED, "pay_ord_id": str(d["payOrdId"]),
                                     "pay_token": str(d["payToken"]), "amounts": amounts}, psn_no)
        return self._pay(oid, ec_token)

    def _pay(self, oid: str, ec_token: str) -> Row:
        o = self.outbox.order(oid)
        assert o is not None

        def pay(msgid: str) -> dict[str, Any]:
            return {"payOrdId": o.pay_ord_id, "payToken": o.pay_token, "orgCodg": self.rc.fixmedins_code,
                    "orgBizSer": msgid, "ecToken": ec_token}

        msgid, a = self._exchange(oid, "pay", pay, psn_no=o.psn_no, expect=UPLOADED,
                                  order_update=lambda m: {"state": PAYING, "pay_msgid": m}, revert=UPLOADED)
        if a.ok:
            amounts = {k: str(a.data[k]) for k in ("feeSumamt", "fundPay", "psnAcctPay", "ownPayAmt")
                       if a.data.get(k) is not None}
            self._finish(msgid, oid, a, {"state": PAID, "amounts": amounts or o.json("amounts"), "error_code": None,
                                         "error": None}, o.psn_no)
        elif a.unknown:
            self._finish(msgid, oid, a, {"state": UNKNOWN, "error_code": a.code, "error": f"payment: {a.detail}"},
                         o.psn_no)
            return self.resolve(oid)
        else:
            self._finish(msgid, oid, a, {"state": FAILED, "error_code": a.code, "error": f"payment refused: {a.detail}"},
                         o.psn_no)
        out = self.outbox.order(oid)
        assert out is not None
        return out

    def query(self, oid: str) -> PayAnswer:
        """The status query (6301) for an order; records it like every message."""
        o = self.order(oid)
        if not o.pay_ord_id:
            return PayAnswer("failure", "E-EVOUCHER-STATE", "the order has no payOrdId (the fee upload did not "
                             "succeed): there is nothing to ask about")
        msgid, a = self._exchange(oid, "query", lambda m: {"payOrdId": o.pay_ord_id, "payToken": o.pay_token,
                                                           "orgCodg": self.rc.fixmedins_code}, psn_no=o.psn_no,
                                  expect=None)
        self._finish(msgid, oid, a, None, o.psn_no)
        return a

    def resolve(self, oid: str) -> Row:
        """Settle an UNKNOWN payment or refund from the platform's own word before anything else."""
        o = self.order(oid)
        codes = self.settings.status_codes
        if o.state == UNKNOWN:
            a = self.query(oid)
            if a.ok and str(a.data.get("ordStas")) == codes["paid"]:
                self.outbox.update_order(oid, expect=UNKNOWN, state=PAID, error_code=None, error=None)
            elif a.ok and str(a.data.get("ordStas")) in (codes["uploaded"], codes["revoked"]):
                # not paid (yet): revoke the order so that a late payment can never book it
                if str(a.data.get("ordStas")) == codes["revoked"]:
                    self.outbox.update_order(oid, expect=UNKNOWN, state=FAILED, error="not paid; order revoked")
                else:
                    self._revoke(oid, expect=UNKNOWN, then=FAILED)
            # else: no definite word — stays UNKNOWN; nothing is re-sent
        elif o.state == REFUND_UNKNOWN:
            a = self.query(oid)
            if a.ok and str(a.data.get("ordStas")) == codes["refunded"]:
                self.outbox.update_order(oid, expect=REFUND_UNKNOWN, state=REFUNDED, error_code=None, error=None)
            elif a.ok and str(a.data.get("ordStas")) == codes["paid"]:
                self.outbox.update_order(oid, expect=REFUND_UNKNOWN, state=PAID,
                                         error="the refund did not happen (status query): refund again")
        return self.order(oid)

    def _revoke(self, oid: str, *, expect: Any, then: str) -> None:
        o = self.order(oid)
        msgid, a = self._exchange(oid, "revoke", lambda m: {"payOrdId": o.pay_ord_id, "payToken": o.pay_token,
                                                            "orgCodg": self.rc.fixmedins_code}, psn_no=o.psn_no,
                                  expect=expect)
        if a.ok and str(a.data.get("ordStas")) == self.settings.status_codes["revoked"]:
            self._finish(msgid, oid, a, {"state": then, "error": "not paid; order revoked"}, o.psn_no)
        else:
            self._finish(msgid, oid, a, None, o.psn_no)   # still unknown (or paid after all: query again later)

    def refund(self, oid: str) -> Row:
        """Refund a paid order (6203), or revoke an unpaid one (6401)."""
        o = self.order(oid)
        if o.state in (UNKNOWN, REFUND_UNKNOWN):
            o = self.resolve(oid)
            if o.state in (UNKNOWN, REFUND_UNKNOWN):
                raise MemberError("E-EVOUCHER-PENDING", f"order {oid}: the last outcome is still unknown (the status "
                                  "query had no definite answer); try again later", order=oid)
        if o.state == UPLOADED:
            self._revoke(oid, expect=UPLOADED, then=REVOKED)
            return self.order(oid)
        if o.state != PAID:
            raise MemberError("E-EVOUCHER-STATE", f"order {oid} is {o.state}: only a paid order can be refunded",
                              order=oid)
        amounts = o.json("amounts") or {}
        sn = o.refund_sn

        def refund(msgid: str) -> dict[str, Any]:
            return {"payOrdId": o.pay_ord_id, "appRefdSn": sn or msgid, "appRefdTime": dt.datetime.now().strftime(
                "%Y-%m-%d %H:%M:%S"), "totlRefdAmt": amounts.get("feeSumamt"), "psnAcctRefdAmt": amounts.get(
                "psnAcctPay"), "fundRefdAmt": amounts.get("fundPay"), "cashRefdAmt": amounts.get("ownPayAmt"),
                "refdType": "ALL", "orgCodg": self.rc.fixmedins_code}

        msgid, a = self._exchange(oid, "refund", refund, psn_no=o.psn_no, expect=PAID,
                                  order_update=lambda m: {"state": REFUNDING, "refund_msgid": m,
                                                          "refund_sn": sn or m}, revert=PAID)
        if a.ok:
            self._finish(msgid, oid, a, {"state": REFUNDED, "error_code": None, "error": None}, o.psn_no)
        elif a.unknown:
            self._finish(msgid, oid, a, {"state": REFUND_UNKNOWN, "error_code": a.code, "error": f"refund: {a.detail}"},
                         o.psn_no)
            return self.resolve(oid)
        else:
            self._finish(msgid, oid, a, {"state": PAID, "error_code": a.code, "error": f"refund refused: {a.detail}"},
                         o.psn_no)
        return self.order(oid)

    def order(self, oid: str) -> Row:
        o = self.outbox.order(oid) if isinstance(oid, str) else None
        if o is None:
            raise MemberError("E-EVOUCHER-UNKNOWN-ORDER", f"no e-voucher order {str(oid)[:40]}",
                              errors=[field_error("order", "E-EVOUCHER-UNKNOWN-ORDER", "no such order")])
        return o

    def status(self, oid: str, *, refresh: bool = True) -> Row:
        o = self.order(oid)
        if o.state in (UNKNOWN, REFUND_UNKNOWN):
            return self.resolve(oid)
        if refresh and o.pay_ord_id and o.state in (PAYING,):
            return self.resolve(oid)
        return o

    # ------------------------------------------------------------ the platform's notification
    def callback(self, body: bytes) -> Row:
        """A payment-result notification: verified with the platform's key before anything is read.
        A bad signature (or an unreadable message) is refused and changes nothing."""
        try:
            msg = self.rc.security.open(body)
        except SecurityError as e:
            if self.metrics is not None:
                self.metrics.callbacks.labels("bad_signature" if e.code in ("E-SEC-SIGNATURE", "E-SEC-UNSIGNED",
                                                                            "E-SEC-DECRYPT") else "malformed").inc()
            raise MemberError("E-EVOUCHER-SIGNATURE", f"the notification is refused: {e.message}",
                              errors=[field_error("signData", e.code, e.message)]) from None
        data = msg.get("data") if isinstance(msg.get("data"), dict) else {}
        pid = data.get("payOrdId")
        stas = str(data.get("ordStas") or "")
        errs = []
        if not isinstance(pid, str) or not pid:
            errs.append(field_error("data.payOrdId", "E-EVOUCHER-INVALID", "missing"))
        if not stas:
            errs.append(field_error("data.ordStas", "E-EVOUCHER-INVALID", "missing"))
        if errs:
            if self.metrics is not None:
                self.metrics.callbacks.labels("invalid").inc()
            raise invalid("E-EVOUCHER-INVALID", errs, "the notification")
        o = self.outbox.order_by_pay_id(pid)
        if o is None:
            if self.metrics is not None:
                self.metrics.callbacks.labels("unknown_order").inc()
            raise MemberError("E-EVOUCHER-UNKNOWN-ORDER", f"the notification names order {pid}, which this outbox "
                              "does not know", errors=[field_error("data.payOrdId", "E-EVOUCHER-UNKNOWN-ORDER",
                                                                   "unknown order")])
        codes = self.settings.status_codes
        if stas == codes["paid"]:
            self.outbox.update_order(o.id, expect=(PAYING, UNKNOWN), state=PAID, error_code=None, error=None)
        elif stas == codes["refunded"]:
            self.outbox.update_order(o.id, expect=(REFUNDING, REFUND_UNKNOWN), state=REFUNDED, error_code=None,
                                     error=None)
        try:
            self._journal("evoucher.callback", {"infno": self.settings.callback_infno, "order": o.id,
                                                "payOrdId": pid, "ordStas": stas, "notification": msg},
                          {"order": o.id, "psn_no": o.psn_no, "infno": self.settings.callback_infno})
        except JournalError as e:
            log.error("evoucher: the audit log could not record a notification for %s: %s", o.id, e.message)
        if self.metrics is not None:
            self.metrics.callbacks.labels("accepted").inc()
        return self.order(o.id)


def order_view(o: Row) -> dict[str, Any]:
    """An order for an answer: no token, no claim."""
    return {"order": o.id, "state": o.state, "psn_no": o.psn_no, "region": o.region, "med_org_ord": o.med_org_ord,
            "payOrdId": o.pay_ord_id, "amounts": o.json("amounts"), "ours": o.json("ours"),
            "error_code": o.error_code, "error": o.error, "upload_msgid": o.upload_msgid, "pay_msgid": o.pay_msgid,
            "refund_msgid": o.refund_msgid}
