"""The journal: one append-only, hash-chained log in a SQLite file.

Used by the service's decision log (every settlement), and meant for the gateway's audit log
and the member service's consent records: one mechanism, so one `verify` and one retention
rule cover them all. An entry is

    seq · time · kind · keys · payload · prev_hash · hash

- `seq` counts from 1 and never repeats, even after a purge;
- `time` is UTC (`2024-06-06T02:30:00.123456Z`), taken while holding the write lock, so it
  never goes backwards along the chain on one clock;
- `kind` names what the entry records (`settlement`, `gateway.request`, `consent.given` …);
- `keys` are the fields one looks entries up by (request id, msgid, mdtrt_id …), indexed;
- `payload` is any JSON object; personal fields of keys and payload are masked before storage
  (`mask.py`);
- `hash` = sha256 of the canonical JSON (`canonical.py`) of the object
  `{"keys", "kind", "payload", "prev_hash", "seq", "time"}` — concretely the UTF-8 bytes of
  `{"keys":K,"kind":"…","payload":P,"prev_hash":"…","seq":N,"time":"…"}` where K and P are the
  stored texts (already canonical) — and `prev_hash` is the hash of entry seq-1 (64 zeros for
  seq 1, the checkpoint's hash after a purge). A verifier in another language needs sha256 and
  string concatenation, nothing else.

Several processes may append at once (uvicorn workers, a gateway, a CLI): each append is one
`BEGIN IMMEDIATE` transaction that reads the head, links to it and inserts, so the chain is a
total order whatever the interleaving. Within a process, concurrent appends are *group
committed*: one thread writes every entry waiting at that moment in one transaction (one
fsync), the others wait for it — the journal stays durable (`synchronous=FULL`) without one
fsync per request.

Retention purges a *prefix* of the chain (entries older than the retention, two years by
default) and records a checkpoint — the last purged seq and its hash — both in a checkpoint
table and as a `journal.purge` entry in the chain itself, so the remaining entries still
verify from the checkpoint, and a forged checkpoint (to hide deleted entries) does not match
any entry of the chain.

What a hash chain cannot show on its own: the *last* entries deleted, or the whole chain
recomputed after an edit, by someone who can write the file. Record the head (`head()`,
`rules-engine journal head`) somewhere else from time to time — the daily reconciliation, an
operator's ticket — and `verify(anchor=…)` proves nothing before it changed.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from ..sqlite_wal import WalUnavailable, committed, connect_wal
from .canonical import CanonicalError, canonical_json, sha256_hex
from .mask import DEFAULT_FIELDS, Masker

FORMAT = "rules-engine-journal/1"
GENESIS = "0" * 64
DEFAULT_RETENTION_DAYS = 730
_KIND = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
_KEY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
MAX_KEY_VALUE = 256

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    seq          INTEGER PRIMARY KEY,
    time         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    keys_json    TEXT NOT NULL,
    payload_json TEXT NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_time ON entries(time);
CREATE TABLE IF NOT EXISTS entry_keys (name TEXT NOT NULL, value TEXT NOT NULL, seq INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS entry_keys_value ON entry_keys(value, name);
CREATE INDEX IF NOT EXISTS entry_keys_seq ON entry_keys(seq);
CREATE TABLE IF NOT EXISTS checkpoints (
    id             INTEGER PRIMARY KEY,
    time           TEXT NOT NULL,
    purged_through INTEGER NOT NULL,
    last_hash      TEXT NOT NULL,
    purged         INTEGER NOT NULL,
    cutoff         TEXT NOT NULL,
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL
);
"""



def _insert_entry(c: sqlite3.Connection, seq: int, t: str, kind: str, keys_json: str, payload_json: str,
                  prev: str) -> str:
    """Append one entry linked to `prev` (inside the caller's write transaction); its hash."""
    h = entry_hash(seq, t, kind, keys_json, payload_json, prev)
    c.execute("INSERT INTO entries(seq, time, kind, keys_json, payload_json, prev_hash, hash) "
              "VALUES (?, ?, ?, ?, ?, ?, ?)", (seq, t, kind, keys_json, payload_json, prev, h))
    return h

class JournalError(Exception):
    """A journal that cannot be opened or written, or an entry that cannot be stored."""

    code = "E-JOURNAL"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


@dataclass(frozen=True)
class Entry:
    seq: int
    time: str
    kind: str
    keys: dict[str, str]
    payload: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "time": self.time, "kind": self.kind, "keys": self.keys,
                "payload": self.payload, "prev_hash": self.prev_hash, "hash": self.hash}


@dataclass(frozen=True)
class VerifyProblem:
    seq: int
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "code": self.code, "message": self.message}


@dataclass
class VerifyResult:
    ok: bool
    entries: int
    first_seq: int | None
    last_seq: int | None
    head_hash: str | None
    first_bad: int | None = None
    problems: list[VerifyProblem] = field(default_factory=list)
    checkpoint: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "first_seq": self.first_seq, "last_seq": self.last_seq,
                "head_hash": self.head_hash, "first_bad": self.first_bad,
                "problems": [p.to_dict() for p in self.problems], "checkpoint": self.checkpoint}


@dataclass(frozen=True)
class PurgeResult:
    purged: int
    purged_through: int | None
    cutoff: str
    checkpoint_hash: str | None


def entry_material(seq: int, time: str, kind: str, keys_json: str, payload_json: str, prev_hash: str) -> bytes:
    """The bytes an entry's hash is taken over: its canonical JSON (see the module doc)."""
    return ('{"keys":' + keys_json + ',"kind":' + canonical_json(kind) + ',"payload":' + payload_json
            + ',"prev_hash":' + canonical_json(prev_hash) + ',"seq":' + str(seq) + ',"time":'
            + canonical_json(time) + "}").encode("utf-8")


def entry_hash(seq: int, time: str, kind: str, keys_json: str, payload_json: str, prev_hash: str) -> str:
    return sha256_hex(entry_material(seq, time, kind, keys_json, payload_json, prev_hash))


def _checkpoint_hash(time: str, purged_through: int, last_hash: str, purged: int, cutoff: str, prev: str) -> str:
    return sha256_hex(canonical_json({"time": time, "purged_through": purged_through, "last_hash": last_hash,
                                      "purged": purged, "cutoff": cutoff, "prev_hash": prev}))


def _utc(t: dt.datetime) -> str:
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class _Pending:
    __slots__ = ("rows", "event", "promoted", "result", "error")

    def __init__(self, rows: list[tuple]):
        self.rows = rows
        self.event = threading.Event()
        self.promoted = False
        self.result: list[Entry] | None = None
        self.error: BaseException | None = None


class Journal:
    """An append-only, hash-chained journal in one SQLite file (WAL), safe for several processes.

    `mask_fields` and `mask_key` decide how personal fields are stored (`mask.py`). They are
    fixed when the journal is created and recorded in it: later writers must bring the same key
    (its fingerprint is checked), readers need none. `retention_days` is recorded too.
    """

    def __init__(self, path: str | os.PathLike, *, create: bool = True, mask_fields: Iterable[str] | None = None,
                 mask_key: bytes | None = None, retention_days: int | None = None, synchronous: str = "FULL",
                 busy_timeout_s: float = 30.0, clock: Callable[[], dt.datetime] = _now):
        self.path = Path(path)
        self._clock = clock
        self._busy_ms = int(busy_timeout_s * 1000)
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise JournalError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        self._sync = synchronous.upper()
        if not self.path.exists():
            if not create:
                raise JournalError(f"no journal at {self.path}", "E-JOURNAL-MISSING")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)  # masked, but still private
                os.close(fd)
            except FileExistsError:
                pass  # another process created it first
            except OSError as e:
                raise JournalError(f"cannot create the journal {self.path}: {e.strerror}") from None
        self._mu = threading.Lock()       # group-commit queue
        self._queue: list[_Pending] = []
        self._leading = False
        self._conn_mu = threading.Lock()  # the write connection: one transaction at a time
        self._read_mu = threading.Lock()
        self._closed = False
        self._wconn = self._connect()
        self._rconn: sqlite3.Connection | None = None
        self._init_schema(mask_fields, mask_key, retention_days)
        meta = self.meta()
        fields = mask_fields if mask_fields is not None else json.loads(meta.get("mask_fields", "[]"))
        self.masker = Masker(fields, mask_key)
        self._meta_key_id = meta.get("mask_key_id") or None
        self.retention_days = int(meta.get("retention_days", DEFAULT_RETENTION_DAYS))

    # ------------------------------------------------------------ connections
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = connect_wal(self.path, busy_timeout_s=self._busy_ms / 1000, synchronous=self._sync, tries=50,
                               pause_s=0.05)
            return conn
        except WalUnavailable as e:
            raise JournalError(str(e)) from None
        except sqlite3.DatabaseError as e:
            raise JournalError(f"{self.path} is not a usable SQLite journal: {e}", "E-JOURNAL-FORMAT") from None

    def _reader(self) -> sqlite3.Connection:
        if self._rconn is None:
            self._rconn = self._connect()
        return self._rconn

    def close(self) -> None:
        self._closed = True
        for c in (self._wconn, self._rconn):
            if c is not None:
                try:
                    c.close()
                except sqlite3.Error:
                    pass
        self._rconn = None

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _init_schema(self, mask_fields: Iterable[str] | None, mask_key: bytes | None,
                     retention_days: int | None) -> None:
        c = self._wconn
        try:
            c.execute("BEGIN IMMEDIATE")
            with committed(c):
                tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                if tables and "journal_meta" not in tables:
                    raise JournalError(f"{self.path} is a SQLite file but not a rules-engine journal",
                                       "E-JOURNAL-FORMAT")
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                meta = dict(c.execute("SELECT key, value FROM journal_meta").fetchall())
                if not meta:
                    m = Masker(mask_fields if mask_fields is not None else DEFAULT_FIELDS, mask_key)
                    rows = {"format": FORMAT, "created": _utc(self._clock()),
                            "retention_days": str(retention_days or DEFAULT_RETENTION_DAYS),
                            "mask_mode": m.mode, "mask_fields": json.dumps(list(m.fields)),
                            "mask_key_id": m.key_id or ""}
                    c.executemany("INSERT INTO journal_meta(key, value) VALUES (?, ?)", rows.items())
                elif meta.get("format") != FORMAT:
                    raise JournalError(f"{self.path}: journal format {meta.get('format')!r}, this program reads "
                                       f"{FORMAT}", "E-JOURNAL-FORMAT")
                else:
                    if retention_days is not None and str(retention_days) != meta.get("retention_days"):
                        c.execute("UPDATE journal_meta SET value=? WHERE key='retention_days'", (str(retention_days),))
                    if mask_fields is not None:
                        fields = json.dumps(list(Masker(mask_fields).fields))
                        if fields != meta.get("mask_fields"):
                            c.execute("UPDATE journal_meta SET value=? WHERE key='mask_fields'", (fields,))
        except sqlite3.DatabaseError as e:
            raise JournalError(f"{self.path} is not a usable SQLite journal: {e}", "E-JOURNAL-FORMAT") from None

    def meta(self) -> dict[str, str]:
        with self._read_mu:
            return dict(self._reader().execute("SELECT key, value FROM journal_meta").fetchall())

    # ------------------------------------------------------------ writing
    def _check_writable(self) -> None:
        if self._closed:
            raise JournalError("the journal is closed")
        if self._meta_key_id and self.masker.key_id != self._meta_key_id:
            raise JournalError(f"this journal pseudonymises personal fields with key {self._meta_key_id}; "
                               + ("give the same key to write to it" if self.masker.key_id is None else
                                  f"the key given is {self.masker.key_id}"), "E-JOURNAL-KEY")
        if not self._meta_key_id and self.masker.key_id:
            raise JournalError("this journal was created without a masking key (personal fields redacted); "
                               "it cannot switch to keyed pseudonyms", "E-JOURNAL-KEY")

    def _prepare(self, kind: str, payload: Mapping[str, Any], keys: Mapping[str, Any] | None
                 ) -> tuple[str, str, str, list[tuple[str, str]], dict, Any]:
        if not isinstance(kind, str) or not _KIND.match(kind):
            raise JournalError(f"entry kind {kind!r}: lower-case letters, digits, '.', '_' or '-', up to 64")
        if not isinstance(payload, Mapping):
            raise JournalError("an entry's payload must be a JSON object")
        pairs: list[tuple[str, str]] = []
        masked_keys: dict[str, str] = {}
        for name, value in (keys or {}).items():
            if value is None:
                continue
            if not isinstance(name, str) or not _KEY_NAME.match(name):
                raise JournalError(f"key name {name!r}: a letter then letters, digits, '_', '.', '-' (≤ 64)")
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise JournalError(f"key {name}: a text or a whole number, not {type(value).__name__}")
            v = str(value)
            if self.masker.matches(name):
                v = str(self.masker.pseudonym(v))
            if len(v) > MAX_KEY_VALUE:
                raise JournalError(f"key {name}: longer than {MAX_KEY_VALUE} characters")
            masked_keys[name] = v
            pairs.append((name, v))
        try:
            masked = self.masker.mask(dict(payload))
            payload_json = canonical_json(masked)
        except RecursionError:
            raise JournalError("the payload is nested too deeply") from None
        except CanonicalError as e:
            raise JournalError(f"the payload cannot be stored: {e}") from None
        return kind, canonical_json(masked_keys), payload_json, pairs, masked_keys, masked

    def append(self, kind: str, payload: Mapping[str, Any], *, keys: Mapping[str, Any] | None = None) -> Entry:
        """Append one entry; returns it with its seq and hash once it is durable."""
        return self.append_many([(kind, payload, keys)])[0]

    def append_many(self, items: Iterable[tuple[str, Mapping[str, Any], Mapping[str, Any] | None]]) -> list[Entry]:
        """Append entries as one transaction (consecutive seqs); all or none."""
        self._check_writable()
        rows = [self._prepare(k, p, ks) for k, p, ks in items]
        if not rows:
            return []
        return self._submit(rows)

    def _submit(self, rows: list[tuple]) -> list[Entry]:
        """Group commit: the first waiting thread writes everything queued in one transaction."""
        me = _Pending(rows)
        with self._mu:
            self._queue.append(me)
            lead = not self._leading
            if lead:
                self._leading = True
        if not lead:
            me.event.wait()
            if not me.promoted:
                return self._outcome(me)
        with self._mu:
            batch, self._queue = self._queue, []
        try:
            with self._conn_mu:
                results = self._write([p.rows for p in batch])
        except BaseException as e:  # every waiter learns of it; none is left hanging
            for p in batch:
                p.error = e if isinstance(e, JournalError) else JournalError(f"journal write failed: {e}")
        else:
            for p, r in zip(batch, results):
                p.result = r
        finally:
            with self._mu:
                if self._queue:  # hand over leadership to the next waiter
                    nxt = self._queue[0]
                    nxt.promoted = True
                    nxt.event.set()
                else:
                    self._leading = False
            for p in batch:
                if p is not me:
                    p.event.set()
        return self._outcome(me)

    @staticmethod
    def _outcome(p: _Pending) -> list[Entry]:
        if p.error is not None:
            raise p.error
        assert p.result is not None
        return p.result

    def _head_locked(self, c: sqlite3.Connection) -> tuple[int, str]:
        row = c.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        if row:
            return int(row[0]), str(row[1])
        cp = c.execute("SELECT purged_through, last_hash FROM checkpoints ORDER BY id DESC LIMIT 1").fetchone()
        if cp:
            return int(cp[0]), str(cp[1])
        return 0, GENESIS

    def _write(self, groups: list[list[tuple]]) -> list[list[Entry]]:
        c = self._wconn
        try:
            c.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise JournalError(f"the journal is busy or unwritable: {e}", "E-JOURNAL-BUSY") from None
        try:
            with committed(c):
                seq, prev = self._head_locked(c)
                out: list[list[Entry]] = []
                for rows in groups:
                    entries = []
                    for kind, keys_json, payload_json, pairs, keys_obj, payload_obj in rows:
                        seq += 1
                        t = _utc(self._clock())
                        h = _insert_entry(c, seq, t, kind, keys_json, payload_json, prev)
                        if pairs:
                            c.executemany("INSERT INTO entry_keys(name, value, seq) VALUES (?, ?, ?)",
                                          [(n, v, seq) for n, v in pairs])
                        # the entry as written (masked); its amounts are Decimals here, text once read back
                        entries.append(Entry(seq, t, kind, keys_obj, payload_obj, prev, h))
                        prev = h
                    out.append(entries)
                return out
        except sqlite3.Error as e:
            raise JournalError(f"journal write failed: {e}") from None

    # ------------------------------------------------------------ reading
    @staticmethod
    def _entry(row: tuple) -> Entry:
        seq, t, kind, keys_json, payload_json, prev, h = row
        try:
            keys = json.loads(keys_json)
            payload = json.loads(payload_json)
        except ValueError:  # a damaged row still shows; verify names it
            keys, payload = {"_unreadable": keys_json[:200]}, {"_unreadable": payload_json[:200]}
        return Entry(int(seq), t, kind, keys, payload, prev, h)

    _COLS = "seq, time, kind, keys_json, payload_json, prev_hash, hash"

    def get(self, seq: int) -> Entry | None:
        with self._read_mu:
            row = self._reader().execute(f"SELECT {self._COLS} FROM entries WHERE seq=?", (int(seq),)).fetchone()
        return self._entry(row) if row else None

    def last(self, n: int = 10) -> list[Entry]:
        with self._read_mu:
            rows = self._reader().execute(f"SELECT {self._COLS} FROM entries ORDER BY seq DESC LIMIT ?",
                                          (max(0, int(n)),)).fetchall()
        return [self._entry(r) for r in reversed(rows)]

    def entries(self, from_seq: int = 0, to_seq: int | None = None, *, chunk: int = 1000) -> Iterator[Entry]:
        nxt = from_seq
        while True:
            with self._read_mu:
                rows = self._reader().execute(
                    f"SELECT {self._COLS} FROM entries WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?",
                    (nxt, to_seq if to_seq is not None else 2**62, chunk)).fetchall()
            if not rows:
                return
            for r in rows:
                yield self._entry(r)
            nxt = int(rows[-1][0]) + 1

    def find(self, value: str | None = None, *, kind: str | None = None, limit: int = 100,
             **named: str) -> list[Entry]:
        """Entries whose keys hold `value` (under any name) or `name=value` pairs (all must hold).

        A personal key (certno …) is looked up by its pseudonym: give the plain value and, for a
        keyed journal, the key; it is masked the same way before the lookup.
        """
        wanted: list[tuple[str | None, list[str]]] = []
        if value is not None:
            cands = [str(value)]
            if self.masker.mode == "hmac":
                cands.append(str(self.masker.pseudonym(str(value))))
            wanted.append((None, cands))
        for name, v in named.items():
            vv = str(self.masker.pseudonym(str(v))) if self.masker.matches(name) else str(v)
            wanted.append((name, [vv]))
        if not wanted:
            raise JournalError("find: give a value or name=value")
        seqs: set[int] | None = None
        with self._read_mu:
            c = self._reader()
            for name, cands in wanted:
                q = "SELECT DISTINCT seq FROM entry_keys WHERE value IN (%s)" % ",".join("?" * len(cands))
                args: list[Any] = list(cands)
                if name is not None:
                    q += " AND name=?"
                    args.append(name)
                found = {int(r[0]) for r in c.execute(q, args)}
                seqs = found if seqs is None else seqs & found
            if not seqs:
                return []
            ordered = sorted(seqs)[-limit:] if limit else sorted(seqs)
            rows = c.execute(f"SELECT {self._COLS} FROM entries WHERE seq IN (%s) ORDER BY seq"
                             % ",".join("?" * len(ordered)), ordered).fetchall()
        out = []
        for r in rows:
            e = self._entry(r)
            if kind is not None and e.kind != kind:
                continue
            # the index is derived data: trust the hashed keys, not the index
            ok = all((any(v in cands for v in e.keys.values()) if name is None else e.keys.get(name) in cands)
                     for name, cands in wanted)
            if ok:
                out.append(e)
        return out

    def head(self) -> tuple[int, str] | None:
        """(seq, hash) of the newest entry — record it elsewhere to anchor `verify`."""
        with self._read_mu:
            seq, h = self._head_locked(self._reader())
        return None if seq == 0 else (seq, h)

    def count(self) -> int:
        with self._read_mu:
            return int(self._reader().execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    # ------------------------------------------------------------ verification
    def verify(self, *, anchor: tuple[int, str] | None = None, max_problems: int = 100) -> VerifyResult:
        """Walk the chain from the latest checkpoint (or seq 1) and name the first bad seq.

        Detects an entry edited (its content no longer gives its hash), rewritten with a fresh
        hash (the next entry no longer links to it), deleted (a gap in seq), reordered (seq and
        link disagree), a checkpoint not confirmed by the chain, and — with `anchor=(seq, hash)`
        recorded earlier — a chain truncated or recomputed since.
        """
        problems: list[VerifyProblem] = []

        def bad(seq: int, code: str, message: str) -> None:
            if len(problems) < max_problems:
                problems.append(VerifyProblem(seq, code, message))

        with self._read_mu:
            c = self._reader()
            c.execute("BEGIN")  # one snapshot: appends by others go on meanwhile
            try:
                cps = c.execute("SELECT id, time, purged_through, last_hash, purged, cutoff, prev_hash, hash "
                                "FROM checkpoints ORDER BY id").fetchall()
                prev_cp = GENESIS
                checkpoint = None
                for cid, t, through, last_hash, purged, cutoff, cprev, chash in cps:
                    if cprev != prev_cp or _checkpoint_hash(t, through, last_hash, purged, cutoff, cprev) != chash:
                        bad(int(through) + 1, "E-JOURNAL-CHECKPOINT", f"checkpoint {cid} was altered")
                    prev_cp = chash
                    checkpoint = {"id": cid, "time": t, "purged_through": int(through), "last_hash": last_hash,
                                  "purged": int(purged), "cutoff": cutoff}
                expect_seq = checkpoint["purged_through"] + 1 if checkpoint else 1
                prev = checkpoint["last_hash"] if checkpoint else GENESIS
                confirmed = checkpoint is None
                n = 0
                first = last = None
                last_hash_seen = None
                anchor_seen = anchor is None
                prev_row_hash_ok = True
                cur = c.execute(f"SELECT {self._COLS} FROM entries ORDER BY seq")
                while True:
                    rows = cur.fetchmany(2000)
                    if not rows:
                        break
                    for seq, t, kind, keys_json, payload_json, prev_hash, h in rows:
                        seq = int(seq)
                        n += 1
                        first = seq if first is None else first
                        last = seq
                        if checkpoint and seq <= checkpoint["purged_through"]:
                            bad(seq, "E-JOURNAL-PURGE", f"seq {seq} should have been purged (checkpoint through "
                                f"{checkpoint['purged_through']})")
                            continue
                        gap_here = False
                        if seq != expect_seq:
                            gap_here = True
                            if seq > expect_seq:
                                gap = f"{expect_seq}" + (f"–{seq - 1}" if seq - 1 > expect_seq else "")
                                bad(expect_seq, "E-JOURNAL-MISSING", f"seq {gap} missing: deleted entries")
                            expect_seq = seq
                        try:
                            recomputed = entry_hash(seq, t, kind, keys_json, payload_json, prev_hash)
                        except CanonicalError:
                            recomputed = ""
                        if recomputed != h:
                            bad(seq, "E-JOURNAL-HASH", f"seq {seq}: its content does not give its hash "
                                "(edited after it was written)")
                        elif prev_hash != prev and not gap_here:
                            if prev_row_hash_ok and seq - 1 >= (first or 0) and n > 1:
                                bad(seq - 1, "E-JOURNAL-LINK", f"seq {seq - 1}: seq {seq} was chained to a different "
                                    f"entry (seq {seq - 1} was rewritten, or entries were reordered)")
                            else:
                                bad(seq, "E-JOURNAL-LINK", f"seq {seq}: does not link to "
                                    + ("the checkpoint" if n == 1 and checkpoint else "the entry before it"))
                        prev_row_hash_ok = recomputed == h
                        if (not confirmed and kind == "journal.purge"
                                and f'"purged_through":{checkpoint["purged_through"]}' in payload_json
                                and f'"last_hash":"{checkpoint["last_hash"]}"' in payload_json):
                            confirmed = True
                        if anchor is not None and seq == anchor[0]:
                            anchor_seen = True
                            if h != anchor[1]:
                                bad(seq, "E-JOURNAL-ANCHOR", f"seq {seq} has hash {h[:16]}…, the anchor recorded "
                                    f"{anchor[1][:16]}… (rewritten since)")
                        prev = h
                        last_hash_seen = h
                        expect_seq = seq + 1
                if not confirmed:
                    bad(checkpoint["purged_through"] + 1, "E-JOURNAL-CHECKPOINT",
                        f"checkpoint through seq {checkpoint['purged_through']} is not confirmed by a journal.purge "
                        "entry (forged to hide deleted entries?)")
                if anchor is not None and not anchor_seen:
                    hi = last or (checkpoint["purged_through"] if checkpoint else 0)
                    if anchor[0] > hi:
                        bad(hi + 1, "E-JOURNAL-ANCHOR", f"the anchor names seq {anchor[0]} but the journal ends at "
                            f"seq {hi}: entries were removed from the end")
                    elif checkpoint is None or anchor[0] > checkpoint["purged_through"]:
                        bad(anchor[0], "E-JOURNAL-ANCHOR", f"seq {anchor[0]} of the anchor is missing")
            finally:
                c.execute("COMMIT")
        problems.sort(key=lambda p: p.seq)
        return VerifyResult(ok=not problems, entries=n, first_seq=first, last_seq=last, head_hash=last_hash_seen,
                            first_bad=problems[0].seq if problems else None, problems=problems,
                            checkpoint=checkpoint)

    # ------------------------------------------------------------ retention
    def purge(self, *, older_than_days: int | None = None, now: dt.datetime | None = None) -> PurgeResult:
        """Delete the prefix of the chain older than the retention; keep it verifiable.

        Only a prefix goes (entries are in time order along the chain), and the purge is
        recorded twice: a checkpoint row (last purged seq and hash) and a `journal.purge` entry
        in the chain that confirms it.
        """
        if self._closed:  # no key needed: the purge entry holds no personal field
            raise JournalError("the journal is closed")
        days = self.retention_days if older_than_days is None else int(older_than_days)
        if days < 0:
            raise JournalError("retention must be zero days or more")
        cutoff = _utc((now or self._clock()) - dt.timedelta(days=days))
        with self._conn_mu:  # not interleaved with this process's group commits
            c = self._wconn
            try:
                c.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                raise JournalError(f"the journal is busy or unwritable: {e}", "E-JOURNAL-BUSY") from None
            try:
                with committed(c):
                    young = c.execute("SELECT MIN(seq) FROM entries WHERE time >= ?", (cutoff,)).fetchone()[0]
                    if young is None:
                        through = c.execute("SELECT MAX(seq) FROM entries").fetchone()[0]
                    else:
                        through = int(young) - 1
                    lo = c.execute("SELECT MIN(seq) FROM entries").fetchone()[0]
                    if through is None or lo is None or through < lo:
                        return PurgeResult(0, None, cutoff, None)
                    through = int(through)
                    last_hash = c.execute("SELECT hash FROM entries WHERE seq=?", (through,)).fetchone()[0]
                    purged = c.execute("SELECT COUNT(*) FROM entries WHERE seq <= ?", (through,)).fetchone()[0]
                    c.execute("DELETE FROM entry_keys WHERE seq <= ?", (through,))
                    c.execute("DELETE FROM entries WHERE seq <= ?", (through,))
                    prev_cp = c.execute("SELECT hash FROM checkpoints ORDER BY id DESC LIMIT 1").fetchone()
                    t = _utc(self._clock())
                    cp_hash = _checkpoint_hash(t, through, last_hash, int(purged), cutoff, prev_cp[0] if prev_cp else GENESIS)
                    c.execute("INSERT INTO checkpoints(time, purged_through, last_hash, purged, cutoff, prev_hash, hash) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?)", (t, through, last_hash, int(purged), cutoff,
                                                               prev_cp[0] if prev_cp else GENESIS, cp_hash))
                    # the purge itself is an entry of the chain: it confirms the checkpoint
                    seq, prev = self._head_locked(c)
                    kind, keys_json, payload_json, *_ = self._prepare(
                        "journal.purge", {"purged_through": through, "last_hash": last_hash, "purged": int(purged),
                                          "cutoff": cutoff, "retention_days": days, "checkpoint_hash": cp_hash}, None)
                    seq += 1
                    _insert_entry(c, seq, t, kind, keys_json, payload_json, prev)
            except sqlite3.Error as e:
                raise JournalError(f"purge failed: {e}") from None
        return PurgeResult(int(purged), through, cutoff, cp_hash)
