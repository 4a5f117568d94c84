"""The outbox: every request recorded with its msgid before it is sent, in SQLite (WAL).

Why: the one thing a gateway must never do is lose track of a settlement it may have booked, or
book one twice. Real hospital systems lose the msgid of a request whose answer never came, and then
cannot 冲正 it (reference gateway.md §3.1: OPENHIS rebuilds it from a text log). Here a request
exists in the outbox — msgid, infno, the request, its hash, state PENDING — before a byte goes out,
in the same transaction that allocates the msgid from the durable counter (envelope.py). A process
killed at any point leaves a row that says what it was doing; the next process resumes from it.

Two tables carry the state:

- `requests` — one row per message: PENDING → DONE | FAILED | UNKNOWN; a settlement row later
  REVERSED (冲正) or REFUNDED (2208/2305). A PENDING row whose process died is *unknown*: it may have
  been sent.
- `submissions` — one row per claim being settled (the unit a patient and an operator see). Its
  state says how far the flow got; the partial unique index `submissions_open` on
  (region, visit_key) WHERE open=1 makes a second submission of one visit impossible while the
  first is in flight *or booked* (a booked settlement must be refunded first). That index is the
  lock against concurrent double submission, across threads and processes.

Ownership: a submission is driven by one process at a time (`owner` = host:pid:token, `heartbeat`
refreshed at every step). Another process may take it over when the owner's pid is gone (same
host) or its heartbeat is older than the lease.

Personal data: requests and answers are stored masked (`***` for certno, names, phones, addresses);
the claim itself is kept whole while its submission is open (resuming needs the 就诊凭证 number)
and reduced to its masked form when the submission closes. The file is created mode 600.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ..journal.mask import DEFAULT_FIELDS, Masker
from ..sqlite_wal import WalUnavailable, committed, connect_wal
from .envelope import COUNTER_SCHEMA, next_msgid, tz

#: request states; SUPERSEDED = an unknown outcome that no longer matters (an upload, a 冲正 or an
#: idempotent query sent again and answered; never a settlement — that one is REVERSED by 冲正)
PENDING, DONE, FAILED, UNKNOWN, REVERSED, REFUNDED = "PENDING", "DONE", "FAILED", "UNKNOWN", "REVERSED", "REFUNDED"
SUPERSEDED = "SUPERSEDED"

#: submission states; `open` ones hold the visit's lock
S_NEW, S_UPLOADED, S_PRESETTLED, S_SETTLING = "NEW", "UPLOADED", "PRESETTLED", "SETTLING"
S_UNKNOWN, S_REVERSING, S_REVERSAL_FAILED, S_DONE = "UNKNOWN", "REVERSING", "REVERSAL_FAILED", "DONE"
S_FAILED, S_BLOCKED, S_REVERSED, S_REFUNDED = "FAILED", "BLOCKED", "REVERSED", "REFUNDED"
OPEN_STATES = frozenset({S_NEW, S_UPLOADED, S_PRESETTLED, S_SETTLING, S_UNKNOWN, S_REVERSING,
                         S_REVERSAL_FAILED, S_DONE})
#: states a process works on by itself (resume); DONE and REVERSAL_FAILED wait for an operator
ACTIVE_STATES = frozenset({S_NEW, S_UPLOADED, S_PRESETTLED, S_SETTLING, S_UNKNOWN, S_REVERSING})

_SCHEMA = [COUNTER_SCHEMA, """
CREATE TABLE IF NOT EXISTS outbox_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)
""", """
CREATE TABLE IF NOT EXISTS signin (
    region TEXT NOT NULL, opter TEXT NOT NULL, sign_no TEXT NOT NULL, sign_time TEXT, signed_at REAL NOT NULL,
    day TEXT NOT NULL, PRIMARY KEY (region, opter)
)
""", """
CREATE TABLE IF NOT EXISTS requests (
    msgid        TEXT PRIMARY KEY,
    infno        TEXT NOT NULL,
    region       TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    submission   TEXT,
    attempt      INTEGER NOT NULL DEFAULT 1,
    psn_no       TEXT,
    mdtrt_id     TEXT,
    omsgid       TEXT,
    oinfno       TEXT,
    state        TEXT NOT NULL,
    owner        TEXT NOT NULL,
    created      REAL NOT NULL,
    answered     REAL,
    request      TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response     TEXT,
    http_status  INTEGER,
    infcode      TEXT,
    err_msg      TEXT,
    code         TEXT,
    detail       TEXT,
    field        TEXT,
    setl_id      TEXT,
    setl_date    TEXT,
    totals       TEXT
)
""", "CREATE INDEX IF NOT EXISTS requests_state ON requests(state)",
    "CREATE INDEX IF NOT EXISTS requests_submission ON requests(submission)",
    "CREATE INDEX IF NOT EXISTS requests_omsgid ON requests(omsgid)",
    "CREATE INDEX IF NOT EXISTS requests_setl_date ON requests(setl_date)", """
CREATE TABLE IF NOT EXISTS submissions (
    id           TEXT PRIMARY KEY,
    region       TEXT NOT NULL,
    insuplc      TEXT,
    psn_no       TEXT NOT NULL,
    mdtrt_id     TEXT NOT NULL,
    visit_key    TEXT NOT NULL,
    kind         TEXT NOT NULL,
    state        TEXT NOT NULL,
    open         INTEGER NOT NULL,
    attempt      INTEGER NOT NULL DEFAULT 1,
    claim        TEXT NOT NULL,
    claim_hash   TEXT NOT NULL,
    ours         TEXT,
    platform     TEXT,
    compare      TEXT,
    settle_msgid TEXT,
    setl_id      TEXT,
    error_code   TEXT,
    error        TEXT,
    options      TEXT,
    owner        TEXT,
    heartbeat    REAL,
    created      REAL NOT NULL,
    updated      REAL NOT NULL
)
""", "CREATE UNIQUE INDEX IF NOT EXISTS submissions_open ON submissions(region, visit_key) WHERE open=1",
    "CREATE INDEX IF NOT EXISTS submissions_state ON submissions(state)"]


class OutboxError(Exception):
    code = "E-GW-OUTBOX"

    def __init__(self, message: str, code: str | None = None, **info: Any):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.info = info


class InFlight(OutboxError):
    """The visit already has an open submission (in flight, or booked and not refunded)."""

    code = "E-GW-IN-FLIGHT"


class LeaseLost(OutboxError):
    """Another process took this submission over (ours was presumed dead)."""

    code = "E-GW-LEASE-LOST"


_MASK = Masker(DEFAULT_FIELDS)


def _json(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"), default=_default)


def _default(o: Any) -> Any:
    if isinstance(o, Decimal):
        return str(o)
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError(f"not JSON: {type(o).__name__}")


def masked_json(v: Any) -> str:
    """JSON with personal fields replaced by '***' (what the outbox keeps of messages)."""
    return _json(_MASK.mask(v))


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_alive(owner: str | None) -> bool:
    """False when `owner` names a process on this host that no longer exists."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_s = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_s.isdigit():
        return True  # another machine: only the lease can tell
    pid = int(pid_s)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (killed, not yet reaped by its parent) is dead too
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().split(b") ", 1)[1][:1] != b"Z"
    except (OSError, IndexError):
        return True


@dataclass(frozen=True)
class Row:
    """A row as a read-only mapping with attribute access."""

    data: Mapping[str, Any]

    def __getattr__(self, k: str) -> Any:
        try:
            return self.data[k]
        except KeyError:
            raise AttributeError(k) from None

    def get(self, k: str, default: Any = None) -> Any:
        return self.data.get(k, default)

    def json(self, k: str) -> Any:
        v = self.data.get(k)
        return json.loads(v) if v else None


class Outbox:
    """The outbox file. Thread-safe (one connection behind a lock); several processes may share it
    (SQLite's write lock orders them)."""

    def __init__(self, path: str | os.PathLike, *, synchronous: str = "FULL", utc_offset_hours: int = 8,
                 busy_timeout_s: float = 30.0, clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self._clock = clock
        self._tz = tz(utc_offset_hours)
        self._mu = threading.RLock()
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise OutboxError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                try:
                    os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                except FileExistsError:
                    pass
            c = connect_wal(self.path, busy_timeout_s=busy_timeout_s, synchronous=synchronous)
            c.row_factory = sqlite3.Row
            c.execute("BEGIN IMMEDIATE")
            with committed(c):
                for stmt in _SCHEMA:
                    c.execute(stmt)
                c.execute("INSERT OR IGNORE INTO outbox_meta(key, value) VALUES ('format', 'rules-engine-outbox/1')")
        except WalUnavailable as e:
            raise OutboxError(str(e)) from None
        except sqlite3.DatabaseError as e:
            raise OutboxError(f"{self.path} is not a usable outbox: {e}", "E-GW-OUTBOX-FORMAT") from None
        self._c = c

    def close(self) -> None:
        with self._mu:
            try:
                self._c.close()
            except sqlite3.Error:
                pass

    # ------------------------------------------------------------------ transactions
    def _tx(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        with self._mu:
            c = self._c
            for attempt in range(50):
                try:
                    c.execute("BEGIN IMMEDIATE")
                    break
                except sqlite3.OperationalError as e:  # busy beyond busy_timeout: rare, keep trying
                    if "locked" not in str(e) or attempt == 49:
                        raise OutboxError(f"the outbox is busy or unwritable: {e}", "E-GW-OUTBOX-BUSY") from None
                    time.sleep(0.05)
            with committed(c):
                return fn(c)

    def _read(self, sql: str, args: Iterable[Any] = ()) -> list[Row]:
        with self._mu:
            return [Row(dict(r)) for r in self._c.execute(sql, tuple(args)).fetchall()]

    def now_local(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), self._tz)

    # ------------------------------------------------------------------ requests
    def record(self, *, region: str, fixmedins_code: str, infno: str, purpose: str, owner: str,
               build: Callable[[str, dt.datetime], Mapping[str, Any]], submission: str | None = None,
               attempt: int = 1, psn_no: str | None = None, mdtrt_id: str | None = None,
               omsgid: str | None = None, oinfno: str | None = None,
               submission_update: Mapping[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Allocate a msgid and record the request built with it, PENDING — one transaction, durable
        before the caller sends anything. `submission_update` changes the submission in the same
        transaction (e.g. state SETTLING with the settlement's msgid), so no crash can separate them.
        Returns (msgid, the envelope)."""
        now = self._clock()
        local = dt.datetime.fromtimestamp(now, self._tz)

        def tx(c: sqlite3.Connection) -> tuple[str, dict[str, Any]]:
            msgid = next_msgid(c, fixmedins_code, local)
            env = dict(build(msgid, local))
            canonical = _json(env)
            c.execute("INSERT INTO requests(msgid, infno, region, purpose, submission, attempt, psn_no, mdtrt_id, "
                      "omsgid, oinfno, state, owner, created, request, request_hash) "
                      "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                      (msgid, infno, region, purpose, submission, attempt, psn_no, mdtrt_id, omsgid, oinfno, PENDING,
                       owner, now, masked_json(env), hashlib.sha256(canonical.encode("utf-8")).hexdigest()))
            if submission is not None and submission_update:
                upd = {k: (v(msgid) if callable(v) else v) for k, v in submission_update.items()}
                self._update_submission(c, submission, owner, upd, now)
            return msgid, env

        return self._tx(tx)

    def finish(self, msgid: str, *, state: str, owner: str | None = None, answer: Any = None,
               setl_id: str | None = None, setl_date: str | None = None, totals: Mapping[str, Any] | None = None,
               submission: str | None = None, submission_update: Mapping[str, Any] | None = None,
               also: Iterable[tuple[str, str]] = ()) -> None:
        """Record the outcome of a request (and, in the same transaction, the submission's new state
        and other requests' states, e.g. the reversed settlement)."""
        now = self._clock()

        def tx(c: sqlite3.Connection) -> None:
            fields: dict[str, Any] = {"state": state, "answered": now}
            if answer is not None:
                fields.update({
                    "response": masked_json(answer.message) if answer.message is not None else None,
                    "http_status": answer.http_status,
                    "infcode": None if answer.raw_infcode is None else str(answer.raw_infcode)[:20],
                    "err_msg": (answer.err_msg or None) and answer.err_msg[:500],
                    "code": answer.code, "detail": (answer.detail or "")[:500], "field": answer.field})
            if setl_id is not None:
                fields["setl_id"] = setl_id
            if setl_date is not None:
                fields["setl_date"] = setl_date
            if totals is not None:
                fields["totals"] = _json(totals)
            sets = ", ".join(f"{k}=?" for k in fields)
            c.execute(f"UPDATE requests SET {sets} WHERE msgid=?", (*fields.values(), msgid))
            for other, st in also:
                c.execute("UPDATE requests SET state=? WHERE msgid=?", (st, other))
            if state == DONE:
                # earlier unknown attempts of the same step are answered by this one (never a settlement:
                # an unknown settlement is only ever closed by its 冲正)
                row = c.execute("SELECT submission, purpose, omsgid, infno FROM requests WHERE msgid=?",
                                (msgid,)).fetchone()
                if row is not None and row[1] != "settle":
                    if row[0] is not None:
                        c.execute("UPDATE requests SET state=? WHERE submission=? AND purpose=? AND state=? AND "
                                  "msgid<>? AND COALESCE(omsgid, '')=COALESCE(?, '')",
                                  (SUPERSEDED, row[0], row[1], UNKNOWN, msgid, row[2]))
                    else:
                        c.execute("UPDATE requests SET state=? WHERE submission IS NULL AND infno=? AND state=? "
                                  "AND msgid<>?", (SUPERSEDED, row[3], UNKNOWN, msgid))
            if submission is not None and submission_update:
                try:
                    self._update_submission(c, submission, owner, dict(submission_update), now)
                except LeaseLost as e:  # the answer is still recorded: only the submission is not ours
                    lost.append(e)

        lost: list[LeaseLost] = []
        self._tx(tx)
        if lost:
            raise lost[0]

    def set_request_state(self, msgid: str, state: str, *, code: str | None = None, detail: str | None = None) -> None:
        def tx(c: sqlite3.Connection) -> None:
            c.execute("UPDATE requests SET state=?, code=COALESCE(?, code), detail=COALESCE(?, detail) WHERE msgid=?",
                      (state, code, detail, msgid))
        self._tx(tx)

    def request(self, msgid: str) -> Row | None:
        rows = self._read("SELECT * FROM requests WHERE msgid=?", (msgid,))
        return rows[0] if rows else None

    def requests(self, *, submission: str | None = None, state: str | None = None, infno: str | None = None,
                 purpose: str | None = None, omsgid: str | None = None, limit: int = 0) -> list[Row]:
        where, args = [], []
        for col, v in (("submission", submission), ("state", state), ("infno", infno), ("purpose", purpose),
                       ("omsgid", omsgid)):
            if v is not None:
                where.append(f"{col}=?")
                args.append(v)
        sql = "SELECT * FROM requests" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY created, msgid"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return self._read(sql, args)

    def abandon_pending(self, *, owner_is_dead: Callable[[str], bool]) -> list[Row]:
        """PENDING requests whose process is gone become UNKNOWN (they may have been sent)."""
        rows = [r for r in self._read("SELECT * FROM requests WHERE state=?", (PENDING,)) if owner_is_dead(r.owner)]
        if rows:
            def tx(c: sqlite3.Connection) -> None:
                for r in rows:
                    c.execute("UPDATE requests SET state=?, code='E-GW-INTERRUPTED', detail=? WHERE msgid=? AND "
                              "state=?", (UNKNOWN, "the sending process stopped before recording an answer",
                                          r.msgid, PENDING))
            self._tx(tx)
        return rows

    # ------------------------------------------------------------------ submissions
    def open_submission(self, *, region: str, insuplc: str | None, psn_no: str, mdtrt_id: str, visit_key: str,
                        kind: str, claim: Mapping[str, Any], owner: str, ours: Mapping[str, Any] | None = None,
                        options: Mapping[str, Any] | None = None) -> str:
        """A new submission for a visit, or `InFlight` naming the one that holds the visit."""
        now = self._clock()
        sid = uuid.uuid4().hex
        text = _json(claim)

        def tx(c: sqlite3.Connection) -> str:
            c.execute("INSERT INTO submissions(id, region, insuplc, psn_no, mdtrt_id, visit_key, kind, state, open, "
                      "attempt, claim, claim_hash, ours, options, owner, heartbeat, created, updated) "
                      "VALUES (?,?,?,?,?,?,?,?,1,1,?,?,?,?,?,?,?,?)",
                      (sid, region, insuplc, psn_no, mdtrt_id, visit_key, kind, S_NEW, text,
                       hashlib.sha256(text.encode("utf-8")).hexdigest(), _json(ours) if ours else None,
                       _json(options or {}), owner, now, now, now))
            return sid

        try:
            return self._tx(tx)
        except sqlite3.IntegrityError:
            held = self._read("SELECT * FROM submissions WHERE region=? AND visit_key=? AND open=1",
                              (region, visit_key))
            h = held[0] if held else None
            if h is not None and h.state == S_DONE:
                raise InFlight(f"visit {visit_key} is already settled (setl_id {h.setl_id}, msgid {h.settle_msgid}); "
                               "refund it first ('gateway reverse MSGID')", "E-GW-ALREADY-SETTLED",
                               submission=h.id, state=h.state) from None
            raise InFlight(f"visit {visit_key} is being submitted already (submission {h.id if h else '?'}, state "
                           f"{h.state if h else '?'})", submission=h.id if h else None,
                           state=h.state if h else None) from None

    def _update_submission(self, c: sqlite3.Connection, sid: str, owner: str | None, fields: dict[str, Any],
                           now: float) -> None:
        if "state" in fields:
            fields["open"] = 1 if fields["state"] in OPEN_STATES else 0
            if not fields["open"]:  # closed: keep no personal data
                row = c.execute("SELECT claim FROM submissions WHERE id=?", (sid,)).fetchone()
                if row is not None:
                    fields["claim"] = masked_json(json.loads(row[0]))
        for k in ("ours", "platform", "compare", "options"):
            if k in fields and not isinstance(fields[k], (str, type(None))):
                fields[k] = _json(fields[k])
        fields["updated"] = now
        fields["heartbeat"] = now
        sets = ", ".join(f"{k}=?" for k in fields)
        if owner is None:
            cur = c.execute(f"UPDATE submissions SET {sets} WHERE id=?", (*fields.values(), sid))
        else:
            cur = c.execute(f"UPDATE submissions SET {sets} WHERE id=? AND owner=?", (*fields.values(), sid, owner))
        if cur.rowcount == 0:
            raise LeaseLost(f"submission {sid} is no longer ours (taken over by another process)")

    def update_submission(self, sid: str, owner: str | None, **fields: Any) -> None:
        now = self._clock()
        self._tx(lambda c: self._update_submission(c, sid, owner, dict(fields), now))

    def take_over(self, sid: str, owner: str, *, lease_seconds: float,
                  alive: Callable[[str | None], bool] = owner_alive, force: bool = False) -> bool:
        """Become the owner of a submission whose owner is dead or silent for `lease_seconds`."""
        now = self._clock()

        def tx(c: sqlite3.Connection) -> bool:
            row = c.execute("SELECT owner, heartbeat FROM submissions WHERE id=?", (sid,)).fetchone()
            if row is None:
                return False
            cur_owner, hb = row[0], row[1] or 0.0
            if cur_owner == owner:
                return True
            if not force and alive(cur_owner) and now - hb < lease_seconds:
                return False
            c.execute("UPDATE submissions SET owner=?, heartbeat=? WHERE id=?", (owner, now, sid))
            return True

        return self._tx(tx)

    def release(self, sid: str, owner: str) -> None:
        self._tx(lambda c: c.execute("UPDATE submissions SET owner=NULL WHERE id=? AND owner=?", (sid, owner)))

    def submission(self, sid: str) -> Row | None:
        rows = self._read("SELECT * FROM submissions WHERE id=?", (sid,))
        return rows[0] if rows else None

    def submissions(self, *, states: Iterable[str] | None = None, open_: bool | None = None,
                    visit_key: str | None = None, limit: int = 0) -> list[Row]:
        where, args = [], []
        if states is not None:
            st = list(states)
            where.append("state IN (%s)" % ",".join("?" * len(st)))
            args += st
        if open_ is not None:
            where.append("open=?")
            args.append(1 if open_ else 0)
        if visit_key is not None:
            where.append("visit_key=?")
            args.append(visit_key)
        sql = "SELECT * FROM submissions" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY created"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return self._read(sql, args)

    def submission_of_msgid(self, msgid: str) -> Row | None:
        r = self.request(msgid)
        if r is None or r.submission is None:
            return None
        return self.submission(r.submission)

    # ------------------------------------------------------------------ sign-in cache
    def signin(self, region: str, opter: str) -> Row | None:
        rows = self._read("SELECT * FROM signin WHERE region=? AND opter=?", (region, opter))
        return rows[0] if rows else None

    def store_signin(self, region: str, opter: str, sign_no: str, sign_time: str | None) -> None:
        now = self._clock()
        day = self.now_local().strftime("%Y-%m-%d")
        self._tx(lambda c: c.execute(
            "INSERT INTO signin(region, opter, sign_no, sign_time, signed_at, day) VALUES (?,?,?,?,?,?) "
            "ON CONFLICT(region, opter) DO UPDATE SET sign_no=excluded.sign_no, sign_time=excluded.sign_time, "
            "signed_at=excluded.signed_at, day=excluded.day", (region, opter, sign_no, sign_time, now, day)))

    def drop_signin(self, region: str, opter: str, sign_no: str | None = None) -> None:
        if sign_no is None:
            self._tx(lambda c: c.execute("DELETE FROM signin WHERE region=? AND opter=?", (region, opter)))
        else:  # only the refused one: another process may already hold a fresh sign_no
            self._tx(lambda c: c.execute("DELETE FROM signin WHERE region=? AND opter=? AND sign_no=?",
                                         (region, opter, sign_no)))

    # ------------------------------------------------------------------ reporting
    def depth(self) -> dict[str, Any]:
        with self._mu:
            states = {r[0]: r[1] for r in self._c.execute(
                "SELECT state, COUNT(*) FROM requests WHERE state IN (?, ?) GROUP BY state", (PENDING, UNKNOWN))}
            oldest = self._c.execute("SELECT MIN(created) FROM requests WHERE state IN (?, ?)",
                                     (PENDING, UNKNOWN)).fetchone()[0]
            states["open_submissions"] = self._c.execute(
                "SELECT COUNT(*) FROM submissions WHERE state IN (%s)" % ",".join("?" * len(ACTIVE_STATES | {
                    S_REVERSAL_FAILED})), tuple(ACTIVE_STATES | {S_REVERSAL_FAILED})).fetchone()[0]
        return {"states": states, "oldest": oldest}

    def counts(self) -> dict[str, dict[str, int]]:
        with self._mu:
            req = {f"{r[0]}:{r[1]}": r[2] for r in self._c.execute(
                "SELECT infno, state, COUNT(*) FROM requests GROUP BY infno, state")}
            sub = {r[0]: r[1] for r in self._c.execute("SELECT state, COUNT(*) FROM submissions GROUP BY state")}
        return {"requests": req, "submissions": sub}

    def settlements_on(self, day: str, *, region: str | None = None, infnos: Iterable[str] = ()) -> list[Row]:
        """Settlement requests in force (DONE) booked on `day` (yyyy-MM-dd, the answer's setl_time)."""
        inf = list(infnos)
        sql = "SELECT * FROM requests WHERE state=? AND setl_date=? AND purpose='settle'"
        args: list[Any] = [DONE, day]
        if region is not None:
            sql += " AND region=?"
            args.append(region)
        if inf:
            sql += " AND infno IN (%s)" % ",".join("?" * len(inf))
            args += inf
        return self._read(sql + " ORDER BY created", args)
