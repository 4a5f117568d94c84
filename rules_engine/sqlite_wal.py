"""SQLite files that several threads and processes write: the gateway's outbox and msgid counter,
the hash-chained journal.

Why one module: each needs the same guarantees — WAL mode (readers never block the writer), a
busy timeout, a chosen `synchronous` level, and write transactions that are committed whole or
rolled back — and each had grown its own copy, one of them without checking that WAL was granted.
"""
from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path
from typing import Iterator


class WalUnavailable(Exception):
    """The file stays locked while switching to WAL, or the file system refuses WAL."""


def connect_wal(path: str | Path, *, busy_timeout_s: float, synchronous: str = "FULL", tries: int = 100,
                pause_s: float = 0.02) -> sqlite3.Connection:
    """An autocommit connection (transactions are begun explicitly) in WAL mode. Switching to WAL
    needs a moment alone with the file: another process doing the same is waited for, `tries`
    times. Raises WalUnavailable, or sqlite3.DatabaseError for a file that is not a database."""
    c = sqlite3.connect(str(path), isolation_level=None, timeout=busy_timeout_s, check_same_thread=False)
    try:
        c.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        for _ in range(tries):
            try:
                mode = c.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as e:  # another process is switching it right now
                if "locked" not in str(e):
                    raise
                time.sleep(pause_s)
        else:
            raise WalUnavailable(f"{path} stays locked")
        if str(mode).lower() != "wal":
            raise WalUnavailable(f"{path}: cannot use WAL mode (journal_mode={mode})")
        c.execute(f"PRAGMA synchronous={synchronous.upper()}")
    except BaseException:
        c.close()
        raise
    return c


@contextlib.contextmanager
def committed(c: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """After `BEGIN IMMEDIATE`: the body's statements are committed together, or rolled back when
    the body (or the commit) raises. A rollback that fails — the transaction already gone — does
    not hide the body's own error."""
    try:
        yield c
        c.execute("COMMIT")
    except BaseException:
        try:
            c.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        raise
