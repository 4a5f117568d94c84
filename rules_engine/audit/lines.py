"""What both audit backends read: the claim's lines and the history lines, placed in time.

A line's *day* is the date of its `fee_ocur_time`; a claim line without one takes the claim's date
when the visit is one day (no `begntime`, or `begntime` on the settlement date) — an outpatient
visit — and is otherwise *undated*: rules that need the day cannot place it, and the audit says so
in an `AUDIT-UNDATED` note instead of passing it silently. A line's *time* (for rules within N
hours) needs the clock time too. Counts and 周期天数 are integers in 1/10,000, as in the claim.

The history a claim brings (`history`, see docs/audit.md) is read by `parse_history`, which
reports every bad field with its path, like the claim reader.
"""
from __future__ import annotations

from decimal import Decimal

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..model.claim import ClaimError, ClaimIn, FieldError, LineIn
from ..money import MoneyError, scaled_int
from .model import HistoryLine

MAX_HISTORY = 50_000
CLAIM = 1      # `src` of a claim line
HISTORY = 0    # `src` of a history line (ordered first: it was billed before this claim)
HISTORY_FIELDS = frozenset({"med_list_codg", "fee_ocur_time", "cnt", "prd_days", "mdtrt_id", "feedetl_sn"})


@dataclass(slots=True)
class ALine:
    """One line as the audit sees it."""

    src: int                 # CLAIM or HISTORY
    index: int               # position in feedetail / in history
    sn: str | None           # feedetl_sn (claim lines; history lines when given)
    code: str
    day: int | None          # proleptic ordinal of the date, None when undated
    t: int | None            # seconds: day × 86400 + clock time, None without a clock time
    cnt: int                 # 1/10,000
    prd: int | None          # prd_days in 1/10,000
    in_adm: bool             # claim lines: True; history: same mdtrt_id as the claim
    lf: dict | None = None   # line facts for conditions (claim lines; built on demand)
    line: LineIn | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (self.src, self.index)


_DAYS: dict[str, int | None] = {}


def _ordinal(d: str) -> int | None:
    """The proleptic ordinal of a yyyy-mm-dd text (cached: a claim's lines share few dates)."""
    day = _DAYS.get(d, -1)
    if day != -1:
        return day
    try:
        day = dt.date.fromisoformat(d).toordinal() if len(d) == 10 else None
    except ValueError:
        day = None
    if len(_DAYS) > 200_000:
        _DAYS.clear()
    _DAYS[d] = day
    return day


_TIMES: dict[str, tuple[int | None, int | None]] = {}


def parse_time(v: Any) -> tuple[int | None, int | None]:
    """(day ordinal, seconds) of 'yyyy-MM-dd[ HH:mm[:ss]]'; (None, None) when it is not one.

    Cached by text: the lines of a claim (and of the claims of one hour) share their times."""
    if v.__class__ is not str:
        return None, None
    hit = _TIMES.get(v)
    if hit is not None:
        return hit
    out = _parse_time(v)
    if len(_TIMES) > 100_000:
        _TIMES.clear()
    _TIMES[v] = out
    return out


def _parse_time(v: str) -> tuple[int | None, int | None]:
    if len(v) == 19 and v[10] == " " and v[13] == ":" and v[16] == ":":  # the interface's own form, fast
        day = _ordinal(v[:10])
        hh, mm, ss = v[11:13], v[14:16], v[17:19]
        if day is not None and hh.isdigit() and mm.isdigit() and ss.isdigit():
            h, m, sec = int(hh), int(mm), int(ss)
            if h < 24 and m < 60 and sec < 60:
                return day, day * 86400 + h * 3600 + m * 60 + sec
    s = v.strip()
    day = _ordinal(s[:10]) if len(s) >= 10 else None
    if day is None:
        return None, None
    rest = s[10:]
    if not rest:
        return day, None
    if rest[0] not in " T":
        return None, None
    try:
        tm = dt.time.fromisoformat(rest[1:].strip())
    except ValueError:
        return None, None
    return day, day * 86400 + tm.hour * 3600 + tm.minute * 60 + tm.second


def day_text(day: int) -> str:
    return dt.date.fromordinal(day).isoformat()


def check_line_times(claim: ClaimIn | dict) -> list[FieldError]:
    """A `fee_ocur_time` that is present but not a date — the claim reader does not check it, and
    the audit would otherwise treat the line as undated. Takes the claim or its raw dict."""
    raw = claim if isinstance(claim, dict) else claim.raw
    lines = raw.get("feedetail") if isinstance(raw, dict) else None
    errs = []
    for i, ln in enumerate(lines if isinstance(lines, list) else []):
        v = ln.get("fee_ocur_time") if isinstance(ln, dict) else None
        if v is not None and parse_time(v) == (None, None):
            errs.append(FieldError(f"feedetail[{i}].fee_ocur_time", "E-CLAIM-VALUE",
                                   f"'{v}' is not a time yyyy-MM-dd[ HH:mm:ss]"))
    return errs


def parse_history(data: Any, path: str = "history") -> list[HistoryLine]:
    """Read the claim's `history` list; raise ClaimError naming every bad field (path history[i].x)."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise ClaimError(f"'{path}' must be a list of earlier fee lines",
                         [FieldError(path, "E-CLAIM-TYPE", "expected a list")])
    if len(data) > MAX_HISTORY:
        raise ClaimError(f"'{path}' has {len(data):,} lines; at most {MAX_HISTORY:,}",
                         [FieldError(path, "E-CLAIM-VALUE", f"at most {MAX_HISTORY:,} history lines")])
    errs: list[FieldError] = []
    out: list[HistoryLine] = []
    for i, h in enumerate(data):
        p = f"{path}[{i}]"
        if not isinstance(h, dict):
            errs.append(FieldError(p, "E-CLAIM-TYPE", "a history line must be an object"))
            continue
        bad = False
        for k in h:
            if k not in HISTORY_FIELDS:
                import difflib
                m = difflib.get_close_matches(str(k), HISTORY_FIELDS, n=1, cutoff=0.7)
                errs.append(FieldError(f"{p}.{k}", "E-CLAIM-UNKNOWN-FIELD", f"unknown field '{k}'"
                                       + (f" — did you mean '{m[0]}'?" if m else "")))
                bad = True
        code = h.get("med_list_codg")
        if not isinstance(code, str) or not code.strip():
            errs.append(FieldError(f"{p}.med_list_codg", "E-CLAIM-MISSING" if code is None else "E-CLAIM-TYPE",
                                   "'med_list_codg' is required, as text"))
            bad = True
        when = h.get("fee_ocur_time")
        day, secs = parse_time(when)
        if day is None:
            errs.append(FieldError(f"{p}.fee_ocur_time", "E-CLAIM-MISSING" if when is None else "E-CLAIM-VALUE",
                                   "'fee_ocur_time' is required: yyyy-MM-dd[ HH:mm:ss]"))
            bad = True
        cnt = _scaled(h.get("cnt"), f"{p}.cnt", "cnt", errs, required=True)
        prd = _scaled(h.get("prd_days"), f"{p}.prd_days", "prd_days", errs, required=False)
        texts = {}
        for k in ("mdtrt_id", "feedetl_sn"):
            v = h.get(k)
            if v is not None and (not isinstance(v, str) or not v.strip() or len(v) > 60):
                errs.append(FieldError(f"{p}.{k}", "E-CLAIM-TYPE", f"'{k}' must be text (at most 60 characters)"))
                bad = True
            texts[k] = v.strip() if isinstance(v, str) else None
        if bad or cnt is None or (h.get("prd_days") is not None and prd is None):
            continue
        s = when.strip()
        out.append(HistoryLine(code.strip(), s[:10], s[11:].strip() or None if len(s) > 10 else None, cnt,
                               prd / 10_000 if prd is not None else None, texts["mdtrt_id"], texts["feedetl_sn"]))
    if errs:
        raise ClaimError(f"the history has {len(errs)} problem{'s' if len(errs) != 1 else ''}: "
                         + "; ".join(f"{e.path}: {e.message}" for e in errs[:3]) + (" …" if len(errs) > 3 else ""),
                         errs)
    return out


def _scaled(v: Any, path: str, what: str, errs: list[FieldError], *, required: bool) -> int | None:
    if v is None:
        if required:
            errs.append(FieldError(path, "E-CLAIM-MISSING", f"'{what}' is required"))
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, str, Decimal)):
        errs.append(FieldError(path, "E-CLAIM-TYPE", f"'{what}' must be a number"))
        return None
    try:
        n = scaled_int(v, 4, what)
    except MoneyError as e:
        errs.append(FieldError(path, "E-CLAIM-VALUE", str(e)))
        return None
    if n < 0:
        errs.append(FieldError(path, "E-CLAIM-VALUE", f"'{what}' must not be negative ({v})"))
        return None
    if n >= 10**16:  # the claim's own limit for counts (N16,4)
        errs.append(FieldError(path, "E-CLAIM-VALUE", f"'{what}' {v} is beyond the interface's range"))
        return None
    return n


def default_line_facts(ln: LineIn) -> dict:
    """The line facts the settlement gives a condition, without a catalogue entry."""
    return {
        "med_list_codg": ln.med_list_codg, "medins_list_codg": ln.medins_list_codg, "cnt": ln.cnt / 10_000,
        "pric": ln.pric / 1_000_000, "det_item_fee_sumamt": ln.amount / 100, "hosp_appr_flag": ln.hosp_appr_flag,
        "prd_days": ln.prd_days, "med_chrgitm_type": None, "list_kind": None,
    }


LineFacts = Mapping[str, dict] | Callable[[LineIn], dict] | None


def day_fallback(claim: ClaimIn) -> int | None:
    """The day of a claim line without fee_ocur_time: the claim's date for a one-day visit, else None."""
    one_day = claim.adm_date is None or claim.adm_date == claim.setl_date
    return dt.date.fromisoformat(claim.setl_date).toordinal() if one_day and claim.setl_date else None


def claim_line(ln: LineIn, fallback: int | None) -> ALine:
    day, t = parse_time(ln.raw.get("fee_ocur_time"))
    if day is None:
        day = fallback
    prd = round(ln.prd_days * 10_000) if ln.prd_days is not None else None
    return ALine(CLAIM, ln.index, ln.feedetl_sn, ln.med_list_codg, day, t, ln.cnt, prd, True, None, ln)  # type: ignore[arg-type]


def facts_of(al: ALine, line_facts: LineFacts) -> dict:
    """The line facts of a claim line (built once, when a condition first needs them)."""
    if al.lf is None:
        ln = al.line
        if line_facts is None:
            al.lf = default_line_facts(ln)  # type: ignore[arg-type]
        elif callable(line_facts):
            al.lf = line_facts(ln)  # type: ignore[arg-type]
        else:
            al.lf = line_facts.get(ln.feedetl_sn) or default_line_facts(ln)  # type: ignore[union-attr,arg-type]
    return al.lf


def claim_lines(claim: ClaimIn, line_facts: LineFacts = None) -> list[ALine]:
    """The claim's coded lines, placed in time, with their line facts (lines without
    med_list_codg are not audited)."""
    fallback = day_fallback(claim)
    out = []
    for ln in claim.lines:
        if ln.med_list_codg:
            al = claim_line(ln, fallback)
            facts_of(al, line_facts)
            out.append(al)
    return out


def claim_mdtrt(claim: ClaimIn) -> str | None:
    return claim.raw.get("mdtrt_id") if isinstance(claim.raw, dict) else None


def history_line(i: int, h: HistoryLine, adm: str | None) -> ALine:
    day, t = parse_time(h.date + (f" {h.time}" if h.time else ""))
    prd = round(h.prd_days * 10_000) if h.prd_days is not None else None
    return ALine(HISTORY, i, h.feedetl_sn, h.med_list_codg, day, t, h.cnt, prd, adm is not None and h.mdtrt_id == adm)


def history_lines(claim: ClaimIn, history: list[HistoryLine]) -> list[ALine]:
    adm = claim_mdtrt(claim)
    return [history_line(i, h, adm) for i, h in enumerate(history)]


def claim_facts(claim: ClaimIn) -> dict:
    """The claim facts as the settlement builds them (rules_engine/settle/core.py), for running the
    audit alone: without the insured pack there is no admission counter (`admission_seq` is None)
    and a cross-region claim without a filing is 'unfiled'."""
    cross = claim.insuplc_admdvs != claim.mdtrtarea_admvs
    return {
        "insutype": claim.insutype, "psn_type": claim.psn_type, "insutype_retr_flag": claim.insutype_retr_flag,
        "cvlserv_flag": claim.cvlserv_flag, "med_type": claim.med_type, "age": claim.age, "gend": claim.gend,
        "hosp_lv": claim.hosp_lv, "community_flag": claim.community_flag, "admission_seq": None,
        "cross_region": cross, "cross_province": claim.insuplc_admdvs[:2] != claim.mdtrtarea_admvs[:2],
        "filing_type": claim.filing_type or ("unfiled" if cross else None),
        "diagnoses": claim.diagnoses, "dise_codg": claim.dise_codg,
        "insuplc_admdvs": claim.insuplc_admdvs, "mdtrtarea_admvs": claim.mdtrtarea_admvs,
    }
