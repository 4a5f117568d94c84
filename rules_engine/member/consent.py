"""Consent on record, kept in the one hash-chained journal (no second store).

A consent says **who** (the person, by 人员编号 psn_no; ID number and name may be added and are
masked like every personal field), **to whom** (`granted_to`: the client — the API key id over HTTP),
**which data** (`data`: scopes, settings.SCOPES), **what for** (`purpose`), **when** (`given_at`),
**through which channel** (`channel`), **until when** (`until`), and whether it was **withdrawn**.

Why the journal is the store: a consent and the queries it allowed must be provable together later,
in one tamper-evident order; a separate table would be a second truth to reconcile. A consent is an
entry `consent.given` (keys `consent_of` = psn_no, `consent_id`); a withdrawal is an entry
`consent.withdrawn` with the same keys. The current state is read from the journal on every check —
no cache — so a withdrawal stops the next query at once, in every worker and process sharing the
file. Each entry read is re-hashed: an entry edited in the file is not believed (and
`rules-engine journal verify` names it).

Retention: the journal purges entries after its retention (two years by default), so a consent may
run at most `consent.max_days` (365 by default) and never beyond the retention — an expired consent
is the only kind that can be purged, and a purged one simply no longer allows anything.
"""
from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from ..journal import Journal, JournalError, canonical_json, entry_hash
from .errors import MemberError, field_error, invalid
from .settings import CHANNELS, SCOPES, ConsentSettings

GIVEN, WITHDRAWN = "consent.given", "consent.withdrawn"
_PSN = re.compile(r"^[0-9A-Za-z_-]{1,30}$")
_ID = re.compile(r"^C[0-9a-f]{24}$")


def tz(hours: int = 8) -> dt.timezone:
    return dt.timezone(dt.timedelta(hours=hours))


@dataclass(frozen=True)
class Consent:
    consent_id: str
    psn_no: str
    granted_to: str
    data: tuple[str, ...]
    purpose: str
    given_at: str
    channel: str
    until: str
    withdrawn: bool = False
    withdrawn_at: str | None = None
    seq: int = 0
    withdrawn_seq: int | None = None

    def in_force(self, at: dt.datetime) -> bool:
        return not self.withdrawn and parse_time(self.given_at) <= at <= parse_time(self.until)

    def to_dict(self) -> dict[str, Any]:
        return {"consent_id": self.consent_id, "psn_no": self.psn_no, "granted_to": self.granted_to,
                "data": list(self.data), "purpose": self.purpose, "given_at": self.given_at, "channel": self.channel,
                "until": self.until, "withdrawn": self.withdrawn, "withdrawn_at": self.withdrawn_at,
                "journal_seq": self.seq, "withdrawn_seq": self.withdrawn_seq}


def parse_time(v: str, *, end_of_day: bool = False, zone: dt.tzinfo | None = None) -> dt.datetime:
    """ISO date or date-time → aware datetime (a date alone: its start, or its end with `end_of_day`;
    no offset: `zone`, Beijing time by default)."""
    s = str(v).strip()
    zone = zone or tz()
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", s):
        d = dt.date.fromisoformat(s)
        t = dt.time(23, 59, 59, 999999) if end_of_day else dt.time(0, 0)
        return dt.datetime.combine(d, t, zone)
    x = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    return x if x.tzinfo else x.replace(tzinfo=zone)


def _iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="seconds")


class ConsentRegistry:
    """Record, withdraw, list and check consents in `journal`."""

    def __init__(self, journal: Journal, settings: ConsentSettings | None = None, *, utc_offset_hours: int = 8,
                 clock: Callable[[], dt.datetime] | None = None):
        self.journal = journal
        self.settings = settings or ConsentSettings()
        self.zone = tz(utc_offset_hours)
        self._clock = clock or (lambda: dt.datetime.now(self.zone))

    def now(self) -> dt.datetime:
        return self._clock()

    # ------------------------------------------------------------ write
    def give(self, psn_no: Any, *, granted_to: str, data: Any, purpose: Any, channel: Any, until: Any,
             given_at: Any = None, certno: Any = None, psn_name: Any = None) -> Consent:
        """Record a consent. Every bad field is reported at once (E-CONSENT-INVALID); nothing is
        written unless all are good."""
        errs: list[dict] = []
        now = self.now()
        if not isinstance(psn_no, str) or not _PSN.match(psn_no):
            errs.append(field_error("psn_no", "E-CONSENT-INVALID", "psn_no (人员编号) is 1–30 letters or digits"))
        scopes: list[str] = []
        if not isinstance(data, (list, tuple)) or not data:
            errs.append(field_error("data", "E-CONSENT-INVALID", "data lists what may be disclosed: "
                                    + ", ".join(SCOPES)))
        else:
            for i, d in enumerate(data):
                if d not in SCOPES:
                    errs.append(field_error(f"data[{i}]", "E-CONSENT-INVALID",
                                            f"'{d}' is not a kind of data; known: {', '.join(SCOPES)}"))
                elif d not in scopes:
                    scopes.append(d)
        if not isinstance(purpose, str) or not purpose.strip() or len(purpose) > 100:
            errs.append(field_error("purpose", "E-CONSENT-INVALID", "purpose says what the data is for (1–100 "
                                    "characters), e.g. online-consultation"))
        elif self.settings.purposes and purpose not in self.settings.purposes:
            errs.append(field_error("purpose", "E-CONSENT-INVALID", f"purpose '{purpose}' is not one of "
                                    + ", ".join(self.settings.purposes)))
        if channel not in CHANNELS:
            errs.append(field_error("channel", "E-CONSENT-INVALID", f"channel is one of {', '.join(CHANNELS)}"))
        given = now
        if given_at is not None:
            try:
                given = parse_time(given_at, zone=self.zone)
            except (ValueError, TypeError):
                errs.append(field_error("given_at", "E-CONSENT-INVALID", "given_at is a date or date-time (ISO 8601)"))
            else:
                if given > now + dt.timedelta(minutes=5):
                    errs.append(field_error("given_at", "E-CONSENT-INVALID", "given_at lies in the future"))
        end: dt.datetime | None = None
        try:
            end = parse_time(until, end_of_day=True, zone=self.zone)
        except (ValueError, TypeError):
            errs.append(field_error("until", "E-CONSENT-INVALID", "until is a date or date-time (ISO 8601)"))
        if end is not None:
            limit_days = min(self.settings.max_days, self.journal.retention_days)
            if end <= now:
                errs.append(field_error("until", "E-CONSENT-INVALID", f"until ({until}) has passed: the consent "
                                        "would allow nothing"))
            elif end < given:
                errs.append(field_error("until", "E-CONSENT-INVALID", "until lies before given_at"))
            elif end > given + dt.timedelta(days=limit_days, hours=24):
                errs.append(field_error("until", "E-CONSENT-INVALID", f"a consent runs at most {limit_days} days "
                                        f"(consent.max_days, and never past the journal's retention); until "
                                        f"{until} is later"))
        for name, v in (("certno", certno), ("psn_name", psn_name)):
            if v is not None and (not isinstance(v, str) or len(v) > 50):
                errs.append(field_error(name, "E-CONSENT-INVALID", f"{name} is text (≤ 50 characters)"))
        if errs:
            raise invalid("E-CONSENT-INVALID", errs, "the consent")
        assert end is not None
        cid = "C" + uuid.uuid4().hex[:24]
        payload: dict[str, Any] = {"consent_id": cid, "psn_no": psn_no, "granted_to": granted_to, "data": scopes,
                                   "purpose": purpose, "given_at": _iso(given), "channel": channel,
                                   "until": _iso(end), "withdrawn": False}
        if certno is not None:
            payload["certno"] = certno        # masked by the journal
        if psn_name is not None:
            payload["psn_name"] = psn_name    # masked by the journal
        e = self._append(GIVEN, payload, {"consent_of": psn_no, "consent_id": cid})
        return Consent(cid, psn_no, granted_to, tuple(scopes), purpose, payload["given_at"], channel,
                       payload["until"], seq=e.seq)

    def withdraw(self, consent_id: str, *, by: str, reason: str | None = None) -> Consent:
        if not isinstance(consent_id, str) or not _ID.match(consent_id):
            raise MemberError("E-CONSENT-UNKNOWN", f"'{str(consent_id)[:40]}' is not a consent id (C + 24 hex "
                              "digits)", errors=[field_error("consent_id", "E-CONSENT-UNKNOWN", "not a consent id")])
        found = self._read(consent_id=consent_id)
        c = found.get(consent_id)
        if c is None:
            raise MemberError("E-CONSENT-UNKNOWN", f"no consent {consent_id} on record",
                              errors=[field_error("consent_id", "E-CONSENT-UNKNOWN", "no such consent")])
        if c.withdrawn:
            raise MemberError("E-CONSENT-STATE", f"consent {consent_id} was withdrawn already ({c.withdrawn_at})")
        at = _iso(self.now())
        e = self._append(WITHDRAWN, {"consent_id": consent_id, "psn_no": c.psn_no, "withdrawn_at": at, "by": by,
                                     "reason": (reason or "")[:200]}, {"consent_of": c.psn_no, "consent_id": consent_id})
        return Consent(**{**c.__dict__, "withdrawn": True, "withdrawn_at": at, "withdrawn_seq": e.seq})

    def _append(self, kind: str, payload: dict, keys: dict) -> Any:
        try:
            return self.journal.append(kind, payload, keys=keys)
        except JournalError as e:
            raise MemberError("E-JOURNAL", f"the consent could not be recorded: {e.message}") from None

    # ------------------------------------------------------------ read
    def _read(self, **key: str) -> dict[str, Consent]:
        try:
            entries = self.journal.find(limit=0, **key)
        except JournalError as e:
            raise MemberError("E-JOURNAL", f"the journal cannot be read: {e.message}") from None
        out: dict[str, Consent] = {}
        for e in entries:
            if e.kind not in (GIVEN, WITHDRAWN) or not _intact(e):
                continue
            p = e.payload
            cid = p.get("consent_id")
            if e.kind == GIVEN and isinstance(cid, str):
                out[cid] = Consent(cid, str(p.get("psn_no")), str(p.get("granted_to")), tuple(p.get("data") or ()),
                                   str(p.get("purpose")), str(p.get("given_at")), str(p.get("channel")),
                                   str(p.get("until")), seq=e.seq)
            elif e.kind == WITHDRAWN and cid in out and not out[cid].withdrawn:
                out[cid] = Consent(**{**out[cid].__dict__, "withdrawn": True,
                                      "withdrawn_at": str(p.get("withdrawn_at")), "withdrawn_seq": e.seq})
        return out

    def of(self, psn_no: str) -> list[Consent]:
        """Every consent on record for a person (withdrawn ones too), oldest first."""
        return sorted(self._read(consent_of=psn_no).values(), key=lambda c: c.seq)

    def check(self, psn_no: str, *, caller: str, purpose: str, scope: str, at: dt.datetime | None = None) -> Consent:
        """The consent that allows `caller` to get `scope` data about `psn_no` for `purpose` now —
        or MemberError 403 saying why not (none, withdrawn, expired, another purpose or data)."""
        at = at or self.now()
        mine = [c for c in self.of(psn_no) if c.granted_to == caller]
        fits = [c for c in mine if c.purpose == purpose and scope in c.data]
        ok = [c for c in fits if c.in_force(at)]
        if ok:
            return ok[-1]
        what = f"'{scope}' data about {psn_no} for purpose '{purpose}' to {caller}"
        if fits and all(c.withdrawn for c in fits):
            last = fits[-1]
            raise MemberError("E-CONSENT-WITHDRAWN", f"the consent {last.consent_id} for {what} was withdrawn on "
                              f"{last.withdrawn_at}; ask the person for a new consent", consent_id=last.consent_id)
        if fits:
            last = fits[-1]
            raise MemberError("E-CONSENT-EXPIRED", f"the consent {last.consent_id} for {what} runs {last.given_at} … "
                              f"{last.until}; it is not in force now", consent_id=last.consent_id)
        if mine:
            have = "; ".join(f"{c.consent_id}: {c.purpose} [{', '.join(c.data)}]" for c in mine[-3:])
            raise MemberError("E-CONSENT-SCOPE", f"no consent covers {what}; on record: {have}")
        raise MemberError("E-CONSENT-MISSING", f"no consent on record for {what}: record the person's consent "
                          "first (POST /v1/member/consents, or 'rules-engine member consent give')")


def _intact(e: Any) -> bool:
    """The entry as read still gives its stored hash (an entry edited in the file is not believed)."""
    try:
        return entry_hash(e.seq, e.time, e.kind, canonical_json(e.keys), canonical_json(e.payload),
                          e.prev_hash) == e.hash
    except Exception:
        return False
