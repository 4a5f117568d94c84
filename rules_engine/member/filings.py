"""异地就医备案 (cross-region filings): reading them from platform messages, checking a new one, and
choosing the one a claim is settled under.

The same rules run on both sides — in the member service before anything is sent, and in the
platform simulator when it books — so our settlement and the platform's agree:

- a filing covers a region and the places inside it: a filing for 110000 (a province) covers
  110105; one for 440300 (a city) covers 440305 — the engine's own rule (model/claim.py);
- it is in force from `begndate` to `enddate` inclusive (no end: open), unless revoked;
- two filings of the same type may not overlap (the platform refuses a second one);
- a claim takes the filing in force on its settlement date for its treatment place; when several
  are, a long-term one (home benefits) before a temporary one, then the most recent;
- no filing: the claim is settled as unfiled; emergency counts as filed — the insured pack's
  `emergency` condition decides that, not this module (reference regions.md §4.1).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .settings import LONG_TERM, TYPE_NAMES, FilingFields, MemberSettings


@dataclass(frozen=True)
class FilingRecord:
    """A filing as the platform holds it."""

    id: str
    psn_no: str
    type: str                  # the engine's filing type (resettled_retiree …)
    admdvs: str                # target region
    begndate: str
    enddate: str | None
    revoked: bool = False
    insutype: str | None = None

    def covers(self, day: str, region: str) -> bool:
        return (not self.revoked and self.begndate <= day and (self.enddate is None or day <= self.enddate)
                and region_covers(self.admdvs, region))

    def overlaps(self, begndate: str, enddate: str | None) -> bool:
        if self.revoked:
            return False
        a_end = self.enddate or "9999-12-31"
        b_end = enddate or "9999-12-31"
        return self.begndate <= b_end and begndate <= a_end

    def claim_filing(self, source: str) -> dict[str, Any]:
        """The claim's `filing` object (model/claim.py Filing) with where it came from."""
        out: dict[str, Any] = {"type": self.type, "begndate": self.begndate, "admdvs": self.admdvs,
                               "source": source[:200], "id": self.id[:60], "revoked": False}
        if self.enddate:
            out["enddate"] = self.enddate
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "psn_no": self.psn_no, "type": self.type, "type_name": TYPE_NAMES.get(self.type),
                "admdvs": self.admdvs, "begndate": self.begndate, "enddate": self.enddate, "revoked": self.revoked,
                "insutype": self.insutype}


def region_covers(filed: str, region: str) -> bool:
    """A filing for `filed` covers treatment in `region` (the same code, or a place inside it)."""
    if filed == region:
        return True
    if filed.endswith("0000"):
        return region[:2] == filed[:2]
    if filed.endswith("00"):
        return region[:4] == filed[:4]
    return False


def iso_date(v: Any) -> str | None:
    """yyyy-MM-dd from a date or date-time text, None when it is not one."""
    if not isinstance(v, str) or len(v) < 10:
        return None
    try:
        return dt.date.fromisoformat(v[:10]).isoformat()
    except ValueError:
        return None


def read_filings(output: Any, settings: MemberSettings, psn_no: str) -> list[FilingRecord]:
    """The filings in a filing-query answer (node and field names from settings.filing_fields)."""
    f: FilingFields = settings.filing_fields
    rows = output.get(f.node) if isinstance(output, Mapping) else None
    if isinstance(rows, Mapping):
        rows = [rows]
    out = []
    for r in rows or []:
        if not isinstance(r, Mapping):
            continue
        t = settings.type_of_code(str(r.get(f.type) or ""))
        b = iso_date(r.get(f.begndate))
        if t is None or b is None or not r.get(f.id):
            continue
        out.append(FilingRecord(id=str(r.get(f.id)), psn_no=str(r.get("psn_no") or psn_no), type=t,
                                admdvs=str(r.get(f.region) or ""), begndate=b, enddate=iso_date(r.get(f.enddate)),
                                revoked=str(r.get(f.valid, "1")) != "1", insutype=r.get("insutype")))
    return out


def pick(filings: Iterable[FilingRecord], day: str, region: str) -> FilingRecord | None:
    """The filing a claim on `day` treated in `region` is settled under (see the module doc)."""
    cands = [f for f in filings if f.covers(day, region)]
    if not cands:
        return None
    cands.sort(key=lambda f: (f.type in LONG_TERM, f.begndate, f.id))
    return cands[-1]
