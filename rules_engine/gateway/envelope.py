"""The message envelope: msgid from a durable counter, the request fields, and the three outcomes.

**msgid** = fixmedins_code (12) + yyyyMMddHHmmss (14) + a 4-digit sequence (reference
national-interface.md §3.1). Real integrations take the sequence from a random number, so two
requests in one second collide about once in ten thousand pairs (gateway.md §1); and the msgid is
the platform's only handle on a settlement whose answer was lost (冲正 2601 names it as `omsgid`).
Here the sequence comes from a counter row in SQLite, advanced inside a write transaction
(`BEGIN IMMEDIATE`), so processes and restarts share it: the pair (second, sequence) only ever
grows. If the clock steps back, the counter keeps the later second and goes on counting; after
9,999 messages in one second it borrows the next second. A msgid can therefore run a little ahead
of the wall clock, never repeat.

**Outcomes.** An answer is one of three, not two (gateway.md §1.1):
- `success` — infcode 0 (number or text) and an output that parses;
- `failure` — a definite answer: infcode ≠ 0 (with `err_msg`), an HTTP status that says the request
  was refused before the platform (401/403/4xx), or infcode 0 with an output that is missing a
  field or has a wrong type (`E-GW-ANSWER-FIELD`, naming the field);
- `unknown` — no answer, a timeout, a broken connection, HTTP 5xx, a body that is not JSON, an
  answer that fails its signature check, or an envelope without a readable infcode.

`Answer.needs_reversal` says when a settlement must go to 冲正: an unknown outcome, infcode −1
("系统级别错误 … 需要进行冲正", §1.1), or infcode 0 with an unreadable output (the platform may have
booked it; we cannot mark it done).
"""
from __future__ import annotations

import datetime as dt
import sqlite3
import time
from dataclasses import dataclass, field as dc_field
from decimal import Decimal
from enum import Enum
from typing import Any, Mapping, Sequence

from ..sqlite_wal import committed, connect_wal
from .security import SecurityError

MSGID_SEQ_MAX = 9999
REQUEST_FIELDS = ("infno", "msgid", "mdtrtarea_admvs", "insuplc_admdvs", "recer_sys_code", "dev_no",
                  "dev_safe_info", "cainfo", "signtype", "infver", "opter_type", "opter", "opter_name",
                  "inf_time", "fixmedins_code", "fixmedins_name", "sign_no", "input")


def tz(utc_offset_hours: int = 8) -> dt.timezone:
    return dt.timezone(dt.timedelta(hours=utc_offset_hours))


# --------------------------------------------------------------------------- msgid counter

COUNTER_SCHEMA = """
CREATE TABLE IF NOT EXISTS msgid_counter (
    fixmedins_code TEXT PRIMARY KEY,
    second         TEXT NOT NULL,
    seq            INTEGER NOT NULL
)
"""


def next_msgid(conn: sqlite3.Connection, fixmedins_code: str, now: dt.datetime) -> str:
    """The next msgid for `fixmedins_code`. Call inside a write transaction (BEGIN IMMEDIATE) on
    `conn`, so that the read-advance-write is one step for every process sharing the file."""
    if len(fixmedins_code) != 12:
        raise ValueError(f"fixmedins_code {fixmedins_code!r} must be 12 characters to form a msgid")
    second = now.strftime("%Y%m%d%H%M%S")
    row = conn.execute("SELECT second, seq FROM msgid_counter WHERE fixmedins_code=?", (fixmedins_code,)).fetchone()
    if row is None or second > row[0]:
        seq = 1
    else:
        second, seq = row[0], int(row[1]) + 1
        if seq > MSGID_SEQ_MAX:  # borrow the next second: later than anything issued so far
            second = (dt.datetime.strptime(second, "%Y%m%d%H%M%S") + dt.timedelta(seconds=1)).strftime("%Y%m%d%H%M%S")
            seq = 1
    conn.execute("INSERT INTO msgid_counter(fixmedins_code, second, seq) VALUES (?, ?, ?) "
                 "ON CONFLICT(fixmedins_code) DO UPDATE SET second=excluded.second, seq=excluded.seq",
                 (fixmedins_code, second, seq))
    return f"{fixmedins_code}{second}{seq:04d}"


class MsgidCounter:
    """A stand-alone counter on its own SQLite file (the outbox embeds the same table and allocates
    the msgid in the transaction that records the request)."""

    def __init__(self, path: str, *, utc_offset_hours: int = 8, busy_timeout_s: float = 30.0,
                 synchronous: str = "FULL"):
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        self.path = path
        self._tz = tz(utc_offset_hours)
        self._conn = connect_wal(path, busy_timeout_s=busy_timeout_s, synchronous=synchronous)
        self._conn.execute(COUNTER_SCHEMA)

    def next(self, fixmedins_code: str, now: dt.datetime | None = None) -> str:
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        with committed(c):
            return next_msgid(c, fixmedins_code, now or dt.datetime.now(self._tz))

    def close(self) -> None:
        self._conn.close()


# --------------------------------------------------------------------------- request envelope

def build_envelope(region: Any, infno: str, msgid: str, input_: Mapping[str, Any], *, insuplc_admdvs: str = "",
                   sign_no: str = "", inf_time: dt.datetime, recer_sys_code: str | None = None) -> dict[str, Any]:
    """The request envelope in the spec's field order (national-interface.md §3.1).

    `region` is a `RegionConfig` (its `envelope_fields()` give the institution, operator, infver and
    recer_sys_code); cainfo/signtype start empty — a message-security plug-in fills them when the
    region asks for it.
    """
    base = region.envelope_fields()
    env = {
        "infno": infno,
        "msgid": msgid,
        "mdtrtarea_admvs": base["mdtrtarea_admvs"],
        "insuplc_admdvs": insuplc_admdvs or "",
        "recer_sys_code": recer_sys_code or base["recer_sys_code"],
        "dev_no": "",
        "dev_safe_info": "",
        "cainfo": "",
        "signtype": "",
        "infver": base["infver"],
        "opter_type": base["opter_type"],
        "opter": base["opter"],
        "opter_name": base["opter_name"],
        "inf_time": inf_time.strftime("%Y-%m-%d %H:%M:%S"),
        "fixmedins_code": base["fixmedins_code"],
        "fixmedins_name": base["fixmedins_name"],
        "sign_no": sign_no or "",
        "input": dict(input_),
    }
    return env


# --------------------------------------------------------------------------- answers

class Outcome(str, Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"


@dataclass
class Answer:
    """What became of one request. `code` is stable: E-GW-OK, E-GW-BUSINESS (infcode ≠ 0),
    E-GW-SYSTEM (infcode −1), E-GW-SIGN-REJECTED, E-GW-ANSWER-FIELD, E-GW-HTTP, E-GW-TIMEOUT,
    E-GW-CONNECTION, E-GW-BODY, E-GW-SECURITY."""

    outcome: Outcome
    code: str
    detail: str = ""
    infcode: int | None = None
    raw_infcode: Any = None
    err_msg: str | None = None
    output: Any = None
    model: Any = None            # the parsed output (payloads.py), on success
    field: str | None = None     # the field an unreadable answer got wrong
    message: dict | None = None  # the whole answer as received (after decryption), for the audit log
    http_status: int | None = None
    elapsed: float = 0.0
    msgid: str | None = None
    infno: str | None = None
    extra: dict = dc_field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SUCCESS

    @property
    def needs_reversal(self) -> bool:
        """True when a settlement with this answer may have been booked although it is not done."""
        if self.outcome is Outcome.UNKNOWN:
            return True
        if self.infcode == -1:
            return True
        return self.code == "E-GW-ANSWER-FIELD" and self.infcode == 0

    def summary(self) -> str:
        parts = [self.outcome.value, self.code]
        if self.infcode is not None:
            parts.append(f"infcode {self.infcode}")
        if self.field:
            parts.append(f"field {self.field}")
        if self.detail:
            parts.append(self.detail)
        return " · ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome.value, "code": self.code, "detail": self.detail, "infcode": self.infcode,
                "err_msg": self.err_msg, "field": self.field, "http_status": self.http_status,
                "elapsed_ms": round(self.elapsed * 1000, 3), "msgid": self.msgid, "infno": self.infno}


def parse_infcode(v: Any) -> int | None:
    """infcode as a number or as text ("0", "-1"); None when it is neither."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, Decimal) and v == v.to_integral_value():
        return int(v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        s = v.strip()
        if s.lstrip("-").isdigit() and s.count("-") <= 1 and (not s.startswith("-") or len(s) > 1):
            return int(s)
    return None


def _text(v: Any) -> str | None:
    if v is None:
        return None
    return v if isinstance(v, str) else str(v)


def is_sign_rejection(err_msg: str | None, patterns: Sequence[str]) -> bool:
    if not err_msg:
        return False
    low = err_msg.lower()
    return any(p.lower() in low for p in patterns)


def transport_failure(exc: BaseException, *, elapsed: float = 0.0) -> Answer:
    """An exception from the HTTP client → unknown (the request may or may not have arrived),
    except when the connection was never made (nothing could have arrived)."""
    name = type(exc).__name__
    if name in ("ConnectError", "ConnectTimeout"):
        # refused / unreachable before a byte was sent: definite, and safe to retry or resubmit
        return Answer(Outcome.FAILURE, "E-GW-CONNECTION", f"cannot connect ({name}): {exc}"[:300], elapsed=elapsed)
    if "Timeout" in name:
        return Answer(Outcome.UNKNOWN, "E-GW-TIMEOUT", f"no answer in time ({name})", elapsed=elapsed)
    return Answer(Outcome.UNKNOWN, "E-GW-CONNECTION", f"the connection broke ({name}): {exc}"[:300], elapsed=elapsed)


def classify(status: int, body: bytes, *, security: Any, infno: str, parse_output: Any,
             sign_patterns: Sequence[str] = ("签到", "sign_no"), elapsed: float = 0.0) -> Answer:
    """Turn an HTTP status and body into an `Answer`. Never raises.

    `security` is the region's `RegionSecurity` (its `open` parses, decrypts and verifies);
    `parse_output(infno, output)` returns (model, None) or (None, (field, message)).
    """
    if status in (401, 403):
        return Answer(Outcome.FAILURE, "E-GW-HTTP", f"HTTP {status}: refused by the gateway in front of the platform "
                      "(credentials)", http_status=status, elapsed=elapsed)
    if status == 408 or status >= 500:
        return Answer(Outcome.UNKNOWN, "E-GW-HTTP", f"HTTP {status}: the request may or may not have been processed",
                      http_status=status, elapsed=elapsed)
    if status >= 400 or status < 200:
        return Answer(Outcome.FAILURE, "E-GW-HTTP", f"HTTP {status}: refused before processing",
                      http_status=status, elapsed=elapsed)
    try:
        msg = security.open(body)
    except SecurityError as e:
        code = "E-GW-BODY" if e.code == "E-SEC-FORMAT" else "E-GW-SECURITY"
        return Answer(Outcome.UNKNOWN, code, e.message[:300], http_status=status, elapsed=elapsed)
    except Exception as e:  # a plug-in bug must not crash the gateway: the answer is untrusted
        return Answer(Outcome.UNKNOWN, "E-GW-SECURITY", f"{type(e).__name__}: {e}"[:300], http_status=status,
                      elapsed=elapsed)
    raw = msg.get("infcode")
    code_v = parse_infcode(raw)
    a = Answer(Outcome.UNKNOWN, "E-GW-ANSWER-FIELD", http_status=status, elapsed=elapsed, message=msg,
               raw_infcode=raw, infcode=code_v, err_msg=_text(msg.get("err_msg")), output=msg.get("output"))
    if "infcode" not in msg:
        a.field, a.detail = "infcode", "the answer has no infcode"
        return a
    if code_v is None:
        a.field, a.detail = "infcode", f"infcode {raw!r} is neither a number nor numeric text"
        return a
    if code_v != 0:
        a.outcome = Outcome.FAILURE
        if is_sign_rejection(a.err_msg, sign_patterns):
            a.code, a.detail = "E-GW-SIGN-REJECTED", f"sign_no refused: {a.err_msg}"
        elif code_v == -1:
            a.code, a.detail = "E-GW-SYSTEM", f"system error (infcode -1): {a.err_msg or ''}".strip()
        else:
            a.code, a.detail = "E-GW-BUSINESS", a.err_msg or f"infcode {code_v} without err_msg"
        return a
    model, problem = parse_output(infno, msg.get("output"))
    if problem is not None:
        a.outcome = Outcome.FAILURE
        a.field, a.detail = problem
        return a
    a.outcome, a.code, a.model = Outcome.SUCCESS, "E-GW-OK", model
    return a


def monotonic() -> float:
    return time.perf_counter()
