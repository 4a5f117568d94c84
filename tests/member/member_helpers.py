"""Helpers of the member tests (importable from tests here)."""
from __future__ import annotations

import datetime as dt

from rules_engine.member.settings import SCOPES

CLINIC = "clinic-a"
PURPOSE = "online-consultation"


def today() -> dt.date:
    return dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()


def days(n: int) -> str:
    return (today() + dt.timedelta(days=n)).isoformat()


def consent(svc, psn_no: str, data=SCOPES, *, caller: str = CLINIC, purpose: str = PURPOSE, **kw) -> dict:
    return svc.give_consent(psn_no, granted_to=caller, data=list(data), purpose=purpose, channel="im",
                            until=days(30), **kw)


def entries(journal, kind: str | None = None) -> list:
    """Every journal entry (of one kind), oldest first."""
    return [e for e in journal.entries() if kind is None or e.kind == kind]
