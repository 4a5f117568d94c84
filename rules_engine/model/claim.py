"""A claim, in the national interface's own field names (2204 feedetail, 2203/2401 diseinfo).

Two readers of one contract:
- `Claim` (pydantic) is the typed model of the Python API and the source of
  `schemas/claim.schema.json` and the service's OpenAPI document;
- `parse_claim` is the hot path: a hand-written reader that turns a dict into integers (fen,
  micro-yuan, 1/10,000 counts) in a few microseconds and reports *every* bad field with its
  path. A differential property test holds the two to the same verdicts and values.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..money import CNT_SCALE, MoneyError, scaled_int

MAX_LINES = 20_000
MAX_AMOUNT_FEN = 10**14  # N16,2
MAX_PRICE_E6 = 10**16    # N16,6

# ------------------------------------------------------------------ field vocabulary

FEEDETAIL_FIELDS = frozenset({
    "feedetl_sn", "mdtrt_id", "psn_no", "chrg_bchno", "dise_codg", "rxno", "rx_circ_flag", "fee_ocur_time",
    "med_list_codg", "medins_list_codg", "medins_list_name", "med_list_name", "det_item_fee_sumamt", "cnt", "pric",
    "sin_dos_dscr", "used_frqu_dscr", "prd_days", "medc_way_dscr", "bilg_dept_codg", "bilg_dept_name",
    "bilg_dr_codg", "bilg_dr_name", "acord_dept_codg", "acord_dept_name", "orders_dr_code", "orders_dr_name",
    "hosp_appr_flag", "tcmdrug_used_way", "etip_flag", "etip_hosp_code", "dscg_tkdrug_flag", "matn_fee_flag",
    "exp_content", "memo",
})
DISEINFO_FIELDS = frozenset({
    "diag_type", "diag_srt_no", "diag_code", "diag_name", "diag_dept", "dise_dor_no", "dise_dor_name",
    "diag_time", "vali_flag", "maindiag_flag", "psn_no", "mdtrt_id",
})
CLAIM_FIELDS = frozenset({
    "insuplc_admdvs", "mdtrtarea_admvs", "psn_no", "psn_name", "psn_cert_type", "certno", "gend", "brdy", "age",
    "naty", "insutype", "psn_type", "insutype_retr_flag", "cvlserv_flag", "mdtrt_id", "med_type", "setl_time",
    "begntime", "endtime", "fixmedins_code", "fixmedins_name", "hosp_lv", "community_flag", "dise_codg",
    "dise_name", "filing_type", "filing", "acct_used_flag", "balc", "diseinfo", "feedetail", "accumulators",
    "icd_edition", "ipt_otp_no", "chrg_bchno", "memo", "history",
})
FILING_TYPES = ("resettled_retiree", "long_term_resident", "resident_worker", "referral", "emergency",
                "other_temporary", "unfiled")
FILING_FIELDS = frozenset({"type", "begndate", "enddate", "admdvs", "source", "id", "revoked"})


# ------------------------------------------------------------------ pydantic contract

Code = str
Amount = Decimal


class FeeLine(BaseModel):
    """One 2204 feedetail line."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    feedetl_sn: str = Field(min_length=1, max_length=30, description="费用明细流水号, unique within the visit")
    med_list_codg: str | None = Field(default=None, min_length=1, max_length=50, description="医疗目录编码 (national code)")
    medins_list_codg: str | None = Field(default=None, min_length=1, max_length=150, description="医药机构目录编码 (hospital code)")
    cnt: Decimal = Field(ge=0, lt=10**12, decimal_places=4, description="数量, N16,4")
    pric: Decimal = Field(ge=0, lt=10**10, decimal_places=6, description="单价, yuan, N16,6")
    det_item_fee_sumamt: Decimal = Field(ge=0, lt=10**12, decimal_places=2,
                                         description="明细项目费用总额, yuan, N16,2; equals cnt × pric within 0.01")
    hosp_appr_flag: str | None = Field(default=None, min_length=1, max_length=3, description="医院审批标志")
    prd_days: Decimal | None = Field(default=None, ge=0, lt=10**4, decimal_places=4, description="周期天数")
    fee_ocur_time: str | None = None
    mdtrt_id: str | None = None
    psn_no: str | None = None
    chrg_bchno: str | None = None
    dise_codg: str | None = None
    rxno: str | None = None
    rx_circ_flag: str | None = None
    medins_list_name: str | None = None
    med_list_name: str | None = None
    sin_dos_dscr: str | None = None
    used_frqu_dscr: str | None = None
    medc_way_dscr: str | None = None
    bilg_dept_codg: str | None = None
    bilg_dept_name: str | None = None
    bilg_dr_codg: str | None = None
    bilg_dr_name: str | None = None
    acord_dept_codg: str | None = None
    acord_dept_name: str | None = None
    orders_dr_code: str | None = None
    orders_dr_name: str | None = None
    tcmdrug_used_way: str | None = None
    etip_flag: str | None = None
    etip_hosp_code: str | None = None
    dscg_tkdrug_flag: str | None = None
    matn_fee_flag: str | None = None
    exp_content: str | None = None
    memo: str | None = None

    @field_validator("fee_ocur_time")
    @classmethod
    def _time(cls, v: str | None) -> str | None:
        if v is not None and not _time_text_ok(v):
            raise ValueError(f"'{v}' is not a time yyyy-MM-dd[ HH:mm:ss]")
        return v

    @model_validator(mode="after")
    def _amount_matches(self) -> "FeeLine":
        if abs(self.cnt * self.pric - self.det_item_fee_sumamt) > Decimal("0.01"):
            raise ValueError(f"det_item_fee_sumamt {self.det_item_fee_sumamt} ≠ cnt × pric = {self.cnt * self.pric}")
        if self.med_list_codg is None and self.medins_list_codg is None:
            raise ValueError("a fee line needs med_list_codg (or medins_list_codg with a code map)")
        return self


class HistoryItem(BaseModel):
    """One of the person's earlier fee lines, for audit rules that look back (1 per 15 days …)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    med_list_codg: str = Field(min_length=1, max_length=50, description="医疗目录编码")
    fee_ocur_time: str = Field(description="费用发生时间 yyyy-MM-dd[ HH:mm:ss]")
    cnt: Decimal = Field(ge=0, lt=10**12, decimal_places=4, description="数量")
    prd_days: Decimal | None = Field(default=None, ge=0, lt=10**12, decimal_places=4, description="周期天数")
    mdtrt_id: str | None = Field(default=None, min_length=1, max_length=60, description="就诊ID")
    feedetl_sn: str | None = Field(default=None, min_length=1, max_length=60, description="费用明细流水号")

    @field_validator("fee_ocur_time")
    @classmethod
    def _time(cls, v: str) -> str:
        if not _time_text_ok(v):
            raise ValueError(f"'{v}' is not a time yyyy-MM-dd[ HH:mm:ss]")
        return v


class DiseInfo(BaseModel):
    """One diagnosis (2203 / 2401 diseinfo)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    diag_code: str = Field(min_length=1, max_length=30, description="诊断代码 (ICD-10)")
    diag_name: str | None = None
    diag_type: str | None = None
    diag_srt_no: str | int | None = None
    maindiag_flag: str | None = None
    diag_dept: str | None = None
    dise_dor_no: str | None = None
    dise_dor_name: str | None = None
    diag_time: str | None = None
    vali_flag: str | None = None
    psn_no: str | None = None
    mdtrt_id: str | None = None


class Filing(BaseModel):
    """The person's cross-region filing (异地就医备案) the claim is settled under. The settlement's
    explanation names it; a filing that does not cover the date, or was revoked, is refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    type: Literal[FILING_TYPES] = Field(description="filing type")  # type: ignore[valid-type]
    begndate: str = Field(description="first day, yyyy-MM-dd")
    enddate: str | None = Field(default=None, description="last day (inclusive), yyyy-MM-dd")
    admdvs: str | None = Field(default=None, pattern=r"^[0-9]{6}$", description="the region filed for")
    source: str | None = Field(default=None, max_length=200, description="where the filing came from (2501 msgid, member service id …)")
    id: str | None = Field(default=None, max_length=60)
    revoked: bool | None = Field(default=False, description="revoked (2502): a claim may not use it")

    @field_validator("begndate", "enddate")
    @classmethod
    def _d(cls, v: str | None) -> str | None:
        if v is not None:
            errs: list[FieldError] = []
            _date_part(v, "", errs)
            if errs:
                raise ValueError(errs[0].message)
        return v


class Claim(BaseModel):
    """A visit to settle: what a gateway holds for 2204/2206, plus the person's year-to-date figures."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    insuplc_admdvs: str = Field(pattern=r"^[0-9]{6}$", description="参保地医保区划")
    mdtrtarea_admvs: str = Field(pattern=r"^[0-9]{6}$", description="就医地医保区划")
    insutype: str = Field(pattern=r"^[0-9]{3}$", description="险种类型: 310 职工, 390 居民 …")
    med_type: str = Field(min_length=1, max_length=6, description="医疗类别: 11, 14, 21 …")
    setl_time: str = Field(description="结算时间, yyyy-MM-dd[ HH:mm:ss]")
    hosp_lv: Literal["1", "2", "3", "9"] = Field(description="医院等级 of the institution")
    feedetail: list[FeeLine] = Field(min_length=1, max_length=MAX_LINES)
    age: int | None = Field(default=None, ge=0, le=150, strict=True, description="年龄 (or give brdy)")
    brdy: str | None = Field(default=None, description="出生日期 yyyy-MM-dd")
    gend: Literal["0", "1", "2", "9"] | None = Field(default=None, description="性别")
    psn_type: str | None = Field(default=None, min_length=1, max_length=10, description="人员类别")
    insutype_retr_flag: Literal["0", "1"] | None = Field(default="0", description="险种离退休标志")
    cvlserv_flag: Literal["0", "1"] | None = Field(default="0", description="公务员标志")
    community_flag: Literal["0", "1"] | None = Field(default="0", description="社区卫生服务机构")
    begntime: str | None = Field(default=None, description="开始（入院）时间")
    endtime: str | None = None
    filing_type: Literal[FILING_TYPES] | None = Field(default=None, description="异地就医备案类型")  # type: ignore[valid-type]
    filing: "Filing | None" = Field(default=None, description="the 异地就医备案 in force, with its dates and origin")
    acct_used_flag: Literal["0", "1"] | None = Field(default="0", description="个人账户使用标志")
    balc: Decimal | None = Field(default=None, ge=0, lt=10**12, decimal_places=2,
                                 description="个人账户余额 before this claim")
    dise_codg: str | None = Field(default=None, min_length=1, max_length=30)
    dise_name: str | None = None
    diseinfo: list[DiseInfo] = Field(default_factory=list)
    history: list[HistoryItem] | None = Field(default=None, max_length=50_000,
                                              description="the person's recent fee lines, for audit rules that look back")
    accumulators: dict[str, Annotated[Decimal, Field(ge=0, lt=10**12, decimal_places=2)]] = Field(
        default_factory=dict, description="year-to-date values before this claim (yuan, or counts)")
    icd_edition: str | None = Field(default=None, min_length=1, max_length=40,
                                    description="edition of diseinfo codes, e.g. clinical-2.0")
    psn_no: str | None = None
    psn_name: str | None = None
    psn_cert_type: str | None = None
    certno: str | None = None
    naty: str | None = None
    mdtrt_id: str | None = None
    fixmedins_code: str | None = None
    fixmedins_name: str | None = None
    ipt_otp_no: str | None = None
    chrg_bchno: str | None = None
    memo: str | None = None

    @field_validator("setl_time", "begntime", "endtime", "brdy")
    @classmethod
    def _date(cls, v: str | None) -> str | None:
        if v is not None:
            errs: list[FieldError] = []
            _date_part(v, "", errs)
            if errs:
                raise ValueError(errs[0].message)
        return v

    @model_validator(mode="after")
    def _whole(self) -> "Claim":
        if self.age is None and self.brdy is None:
            raise ValueError("give 'age' or 'brdy' (birth date)")
        if self.filing is not None:
            errs: list[FieldError] = []
            _check_filing(self.filing.model_dump(), self.setl_time[:10], self.mdtrtarea_admvs, self.filing_type, errs)
            if errs:
                raise ValueError(errs[0].message)
        if self.age is None and self.brdy is not None and self.brdy[:10] > self.setl_time[:10]:
            raise ValueError("birth date is after the settlement date")
        seen = set()
        for ln in self.feedetail:
            if ln.feedetl_sn in seen:
                raise ValueError(f"feedetl_sn '{ln.feedetl_sn}' repeats (must be unique within the visit)")
            seen.add(ln.feedetl_sn)
        return self


# ------------------------------------------------------------------ hot-path reader

@dataclass(frozen=True, slots=True)
class FieldError:
    path: str
    code: str
    message: str

    def to_dict(self) -> dict:
        return {"path": self.path, "code": self.code, "message": self.message}


class SettlementError(Exception):
    """Base of every error a settlement can refuse with; `code` is stable across CLI, API and HTTP."""

    code = "E-SETTLEMENT"

    def __init__(self, message: str, errors: list[FieldError] | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or []
        if code:
            self.code = code

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "errors": [e.to_dict() for e in self.errors]}


class ClaimError(SettlementError):
    code = "E-CLAIM"


@dataclass(slots=True)
class LineIn:
    index: int
    feedetl_sn: str
    med_list_codg: str | None
    medins_list_codg: str | None
    cnt: int        # 1/10,000
    pric: int       # micro-yuan
    amount: int     # fen
    hosp_appr_flag: str | None
    prd_days: float | None
    raw: dict


@dataclass(slots=True)
class ClaimIn:
    insuplc_admdvs: str
    mdtrtarea_admvs: str
    insutype: str
    med_type: str
    hosp_lv: str
    setl_date: str
    adm_date: str | None
    age: int
    gend: str | None
    psn_type: str | None
    insutype_retr_flag: str
    cvlserv_flag: str
    community_flag: str
    filing_type: str | None
    filing: dict | None
    acct_used_flag: str
    balc: int | None
    dise_codg: str | None
    diagnoses: tuple[str, ...]
    lines: list[LineIn]
    accumulators: dict[str, Any]
    icd_edition: str | None
    raw: dict = field(repr=False)
    history: list | None = None  # rules_engine.audit HistoryLine list


_FLAG01 = ("0", "1")


def _date_part(v: Any, path: str, errs: list[FieldError]) -> str | None:
    if not isinstance(v, str):
        errs.append(FieldError(path, "E-CLAIM-TYPE", f"expected a date text yyyy-MM-dd[ HH:mm:ss], found {type(v).__name__}"))
        return None
    s = v.strip()
    d = s[:10]
    rest = s[10:]
    try:
        parsed = dt.date.fromisoformat(d)
        if rest and not (rest[0] in " T" and _time_ok(rest[1:])):
            raise ValueError
    except ValueError:
        errs.append(FieldError(path, "E-CLAIM-VALUE", f"'{v}' is not a date yyyy-MM-dd[ HH:mm:ss]"))
        return None
    if not 1900 <= parsed.year <= 2200:
        errs.append(FieldError(path, "E-CLAIM-VALUE", f"'{v}' is not a plausible date"))
        return None
    return d


_parse_time = None


def _time_text_ok(v: Any) -> bool:
    """A fee_ocur_time the audit can place: yyyy-MM-dd[ HH:mm[:ss]]."""
    global _parse_time
    if _parse_time is None:  # rules_engine.audit imports this module: bind on first use
        from ..audit.lines import parse_time as _pt
        _parse_time = _pt
    return _parse_time(v)[0] is not None


def _time_ok(t: str) -> bool:
    try:
        dt.time.fromisoformat(t)
        return True
    except ValueError:
        return False


def _code(data: dict, key: str, errs: list[FieldError], *, required: bool, pattern_len: tuple[int, int] | None = None,
          digits: bool = False, choices: tuple[str, ...] | None = None, path: str | None = None) -> str | None:
    v = data.get(key)
    p = path or key
    if v is None:
        if required:
            errs.append(FieldError(p, "E-CLAIM-MISSING", f"'{key}' is required"))
        return None
    if not isinstance(v, str):
        hint = f" — write it as text \"{v}\"" if isinstance(v, int) and not isinstance(v, bool) else ""
        errs.append(FieldError(p, "E-CLAIM-TYPE", f"'{key}' must be a code in text form, found {type(v).__name__}{hint}"))
        return None
    v = v.strip()
    if choices is not None and v not in choices:
        errs.append(FieldError(p, "E-CLAIM-VALUE", f"'{key}' is '{v}'; expected one of {', '.join(choices)}"))
        return None
    if pattern_len is not None and not (pattern_len[0] <= len(v) <= pattern_len[1]):
        errs.append(FieldError(p, "E-CLAIM-VALUE", f"'{key}' '{v}' must be {pattern_len[0]}"
                               + (f"–{pattern_len[1]}" if pattern_len[1] != pattern_len[0] else "") + " characters"))
        return None
    if digits and not v.isdigit():
        errs.append(FieldError(p, "E-CLAIM-VALUE", f"'{key}' '{v}' must be digits"))
        return None
    return v


def _num(v: Any, places: int, path: str, errs: list[FieldError], *, what: str, nonneg: bool = True,
         limit: int | None = None) -> int | None:
    if v is None:
        errs.append(FieldError(path, "E-CLAIM-MISSING", f"'{what}' is required"))
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, str, Decimal)):
        errs.append(FieldError(path, "E-CLAIM-TYPE", f"'{what}' must be a number, found {type(v).__name__}"))
        return None
    try:
        n = scaled_int(v, places, what)
    except MoneyError as e:
        errs.append(FieldError(path, "E-CLAIM-VALUE", str(e)))
        return None
    if nonneg and n < 0:
        errs.append(FieldError(path, "E-CLAIM-VALUE", f"'{what}' must not be negative ({v})"))
        return None
    if limit is not None and abs(n) >= limit:
        errs.append(FieldError(path, "E-CLAIM-VALUE", f"'{what}' {v} is beyond the interface's range"))
        return None
    return n


def _unknown(data: dict, allowed: frozenset, prefix: str, errs: list[FieldError]) -> None:
    for k in data:
        if k not in allowed:
            import difflib
            m = difflib.get_close_matches(str(k), allowed, n=1, cutoff=0.7)
            errs.append(FieldError(f"{prefix}{k}", "E-CLAIM-UNKNOWN-FIELD", f"unknown field '{k}'"
                                   + (f" — did you mean '{m[0]}'?" if m else "")))


def _check_filing(f: dict, setl_date: str, mdtrtarea: str, filing_type: str | None, errs: list[FieldError]) -> None:
    """A filing must be of a known type, dated, in force on the settlement date, not revoked, and
    for the region the person is treated in (a filing is made for a province or a city)."""
    t = f.get("type")
    if t not in FILING_TYPES:
        errs.append(FieldError("filing.type", "E-CLAIM-VALUE", f"'filing.type' is {t!r}; expected one of "
                               + ", ".join(FILING_TYPES)))
        return
    if filing_type is not None and filing_type != t:
        errs.append(FieldError("filing_type", "E-CLAIM-FILING", f"filing_type '{filing_type}' disagrees with "
                               f"filing.type '{t}'"))
    b = _date_part(f.get("begndate"), "filing.begndate", errs) if f.get("begndate") is not None else None
    if f.get("begndate") is None:
        errs.append(FieldError("filing.begndate", "E-CLAIM-MISSING", "a filing needs its first day 'begndate'"))
    e = _date_part(f["enddate"], "filing.enddate", errs) if f.get("enddate") is not None else None
    if b and e and e < b:
        errs.append(FieldError("filing.enddate", "E-CLAIM-FILING", f"the filing ends ({e}) before it starts ({b})"))
    elif b and (setl_date < b or (e and setl_date > e)):
        errs.append(FieldError("filing", "E-CLAIM-FILING", f"the filing ({b} … {e or 'open'}) is not in force on "
                               f"{setl_date}"))
    if f.get("revoked") not in (None, False):
        errs.append(FieldError("filing.revoked", "E-CLAIM-FILING", "the filing was revoked (2502); a claim cannot "
                               "be settled under it"))
    ad = f.get("admdvs")
    if ad is not None and (not isinstance(ad, str) or not ad.isdigit() or len(ad) != 6):
        errs.append(FieldError("filing.admdvs", "E-CLAIM-VALUE", "'filing.admdvs' must be a 6-digit region code"))
    elif ad is not None and not (mdtrtarea == ad or (ad.endswith("0000") and mdtrtarea[:2] == ad[:2])
                                 or (ad.endswith("00") and mdtrtarea[:4] == ad[:4])):
        errs.append(FieldError("filing.admdvs", "E-CLAIM-FILING", f"the filing is for region {ad}, but the person is "
                               f"treated in {mdtrtarea}"))
    for k in ("source", "id"):
        if f.get(k) is not None and not isinstance(f[k], str):
            errs.append(FieldError(f"filing.{k}", "E-CLAIM-TYPE", f"'filing.{k}' must be text"))


# ------------------------------------------------------------------ fast path for well-formed claims

def _fast_scaled(v: Any, scale: int, limit: int) -> int | None:
    """`v × scale` as an exact non-negative int, or None (then the full reader says why)."""
    t = type(v)
    if t is int:
        n = v * scale
    elif t is float:
        if not -1e20 < v < 1e20:  # also NaN; the full reader names the problem
            return None
        n = round(v * scale)
        if n / scale != v:  # more decimals than the field allows, or not a short decimal at all
            return None
    elif t is str:
        whole, dot, frac = v.partition(".")
        if not whole.isdigit() or (dot and (not frac.isdigit() or 10 ** len(frac) > scale)):
            return None
        n = int(whole) * scale + (int(frac) * (scale // 10 ** len(frac)) if dot else 0)
    elif t is Decimal:
        if not v.is_finite() or (v and not -40 < v.adjusted() < 40):
            return None
        num, den = v.as_integer_ratio()
        num *= scale
        if num % den:
            return None
        n = num // den
    else:
        return None
    return n if 0 <= n < limit else None


def _fast_date(v: Any) -> str | None:
    if type(v) is not str or len(v) < 10:
        return None
    d, rest = v[:10], v[10:]
    try:
        if not 1900 <= dt.date.fromisoformat(d).year <= 2200:
            return None
    except ValueError:
        return None
    if rest and not (rest[0] in " T" and _time_ok(rest[1:])):
        return None
    return d


_CODE_FIELDS = (("insuplc_admdvs", 6, 6), ("mdtrtarea_admvs", 6, 6), ("insutype", 3, 3), ("med_type", 1, 6))


def _fast_claim(data: dict, tolerance_fen: int) -> ClaimIn | None:
    """The common case in a few microseconds: every field well-formed. Anything unusual → None, and
    the full reader (which names every problem) takes over. Same values as the full reader."""
    if not data.keys() <= CLAIM_FIELDS or data.get("filing") is not None:
        return None
    get = data.get
    for k, lo, hi in _CODE_FIELDS:
        v = get(k)
        if type(v) is not str or not lo <= len(v) <= hi or v != v.strip():
            return None
    if not (get("insuplc_admdvs").isdigit() and get("mdtrtarea_admvs").isdigit() and get("insutype").isdigit()):
        return None
    hosp_lv = get("hosp_lv")
    if hosp_lv not in ("1", "2", "3", "9"):
        return None
    for k, choices in (("gend", ("0", "1", "2", "9")), ("insutype_retr_flag", _FLAG01), ("cvlserv_flag", _FLAG01),
                       ("community_flag", _FLAG01), ("acct_used_flag", _FLAG01), ("filing_type", FILING_TYPES)):
        v = get(k)
        if v is not None and v not in choices:
            return None
    for k, hi in (("psn_type", 10), ("dise_codg", 30), ("icd_edition", 40)):
        v = get(k)
        if v is not None and (type(v) is not str or not 0 < len(v) <= hi or v != v.strip()):
            return None
    setl_date = _fast_date(get("setl_time"))
    if setl_date is None:
        return None
    adm_date = None
    if get("begntime") is not None:
        adm_date = _fast_date(get("begntime"))
        if adm_date is None:
            return None
    if get("endtime") is not None and _fast_date(get("endtime")) is None:
        return None
    age = get("age")
    if age is None and get("brdy") is not None:
        b = _fast_date(get("brdy"))
        if b is None or b > setl_date:
            return None
        bd, sd = dt.date.fromisoformat(b), dt.date.fromisoformat(setl_date)
        age = sd.year - bd.year - ((sd.month, sd.day) < (bd.month, bd.day))
    if type(age) is not int or not 0 <= age <= 150:
        return None
    balc = get("balc")
    if balc is not None:
        balc = _fast_scaled(balc, 100, MAX_AMOUNT_FEN)
        if balc is None:
            return None
    diagnoses: list[str] = []
    dis = get("diseinfo")
    if dis is not None:
        if type(dis) is not list:
            return None
        for d in dis:
            if type(d) is not dict or not d.keys() <= DISEINFO_FIELDS:
                return None
            c = d.get("diag_code")
            if type(c) is not str or not 0 < len(c) <= 30 or c != c.strip():
                return None
            diagnoses.append(c.upper())
    fd = get("feedetail")
    if type(fd) is not list or not 0 < len(fd) <= MAX_LINES:
        return None
    lines: list[LineIn] = []
    seen: set[str] = set()
    tol = tolerance_fen * 10**8
    fields_ok = FEEDETAIL_FIELDS.issuperset
    fs = _fast_scaled
    for i, ln in enumerate(fd):
        if type(ln) is not dict or not fields_ok(ln):
            return None
        lget = ln.get
        sn = lget("feedetl_sn")
        if type(sn) is not str or not 0 < len(sn) <= 30 or sn in seen or sn[0] <= " " or sn[-1] <= " ":
            return None
        seen.add(sn)
        code, local, appr = lget("med_list_codg"), lget("medins_list_codg"), lget("hosp_appr_flag")
        t = lget("fee_ocur_time")
        if t is not None and not _time_text_ok(t):
            return None
        if code is not None:
            if type(code) is not str or not 0 < len(code) <= 50 or code[0] <= " " or code[-1] <= " ":
                return None
        elif local is None:
            return None
        if local is not None and (type(local) is not str or not 0 < len(local) <= 150 or local != local.strip()):
            return None
        if appr is not None and (type(appr) is not str or not 0 < len(appr) <= 3 or appr != appr.strip()):
            return None
        cnt, pric, amt = lget("cnt"), lget("pric"), lget("det_item_fee_sumamt")
        # the usual types inline (int, and Decimal as a JSON reader with parse_float=Decimal gives);
        # anything else through _fast_scaled. The limits and decimals are the same either way.
        tc = type(cnt)
        if tc is int and cnt >= 0:
            cnt *= 10_000
        elif tc is Decimal and cnt.is_finite() and -40 < cnt.adjusted() < 40:
            num, den = cnt.as_integer_ratio()
            num *= 10_000
            if num % den or num < 0:
                return None
            cnt = num // den
        else:
            cnt = fs(cnt, 10_000, MAX_PRICE_E6)
            if cnt is None:
                return None
        if type(pric) is Decimal and pric.is_finite() and -40 < pric.adjusted() < 40:
            num, den = pric.as_integer_ratio()
            num *= 1_000_000
            if num % den or num < 0:
                return None
            pric = num // den
        else:
            pric = fs(pric, 1_000_000, MAX_PRICE_E6)
            if pric is None:
                return None
        if type(amt) is Decimal and amt.is_finite() and -40 < amt.adjusted() < 40:
            num, den = amt.as_integer_ratio()
            num *= 100
            if num % den or num < 0:
                return None
            amt = num // den
        else:
            amt = fs(amt, 100, MAX_AMOUNT_FEN)
            if amt is None:
                return None
        if (abs(cnt * pric - amt * 100_000_000) > tol or cnt >= MAX_PRICE_E6 or pric >= MAX_PRICE_E6
                or amt >= MAX_AMOUNT_FEN):
            return None
        days = lget("prd_days")
        if days is not None:
            dd = fs(days, 10_000, 10**8)
            if dd is None:
                return None
            days = dd / CNT_SCALE
        lines.append(LineIn(i, sn, code, local, cnt, pric, amt, appr, days, ln))
    history = None
    if get("history") is not None:
        from ..audit.lines import parse_history
        try:
            history = parse_history(get("history"))
        except ClaimError:
            return None
    accs = get("accumulators")
    accumulators: dict[str, Any] = {}
    if accs is not None:
        if type(accs) is not dict:
            return None
        for k, v in accs.items():
            n = _fast_scaled(v, 100, MAX_AMOUNT_FEN)
            if n is None:
                return None
            accumulators[str(k)] = n
    return ClaimIn(insuplc_admdvs=get("insuplc_admdvs"), mdtrtarea_admvs=get("mdtrtarea_admvs"),
                   insutype=get("insutype"), med_type=get("med_type"), hosp_lv=hosp_lv, setl_date=setl_date,
                   adm_date=adm_date, age=age, gend=get("gend"), psn_type=get("psn_type"),
                   insutype_retr_flag=get("insutype_retr_flag") or "0", cvlserv_flag=get("cvlserv_flag") or "0",
                   community_flag=get("community_flag") or "0", filing_type=get("filing_type"), filing=None,
                   acct_used_flag=get("acct_used_flag") or "0", balc=balc, dise_codg=get("dise_codg"),
                   diagnoses=tuple(diagnoses), lines=lines, accumulators=accumulators,
                   icd_edition=get("icd_edition"), raw=data, history=history)


def parse_claim(data: Any, tolerance_fen: int = 1) -> ClaimIn:
    """Read a claim dict; raise ClaimError listing every bad field (never a partial claim)."""
    if type(data) is dict:
        fast = _fast_claim(data, tolerance_fen)
        if fast is not None:
            return fast
    return parse_claim_full(data, tolerance_fen)


def parse_claim_full(data: Any, tolerance_fen: int = 1) -> ClaimIn:
    """The reader that checks each field on its own and reports every problem with its path."""
    if not isinstance(data, dict):
        raise ClaimError("a claim must be a JSON object", [FieldError("", "E-CLAIM-TYPE", "expected an object")])
    errs: list[FieldError] = []
    _unknown(data, CLAIM_FIELDS, "", errs)
    insuplc = _code(data, "insuplc_admdvs", errs, required=True, pattern_len=(6, 6), digits=True)
    mdtrtarea = _code(data, "mdtrtarea_admvs", errs, required=True, pattern_len=(6, 6), digits=True)
    insutype = _code(data, "insutype", errs, required=True, pattern_len=(3, 3), digits=True)
    med_type = _code(data, "med_type", errs, required=True, pattern_len=(1, 6))
    hosp_lv = _code(data, "hosp_lv", errs, required=True, choices=("1", "2", "3", "9"))
    gend = _code(data, "gend", errs, required=False, choices=("0", "1", "2", "9"))
    psn_type = _code(data, "psn_type", errs, required=False, pattern_len=(1, 10))
    retr = _code(data, "insutype_retr_flag", errs, required=False, choices=_FLAG01) or "0"
    cvl = _code(data, "cvlserv_flag", errs, required=False, choices=_FLAG01) or "0"
    comm = _code(data, "community_flag", errs, required=False, choices=_FLAG01) or "0"
    acct_flag = _code(data, "acct_used_flag", errs, required=False, choices=_FLAG01) or "0"
    filing = _code(data, "filing_type", errs, required=False, choices=FILING_TYPES)
    filing_obj = data.get("filing")
    dise_codg = _code(data, "dise_codg", errs, required=False, pattern_len=(1, 30))
    icd_edition = _code(data, "icd_edition", errs, required=False, pattern_len=(1, 40))
    setl_date = None
    if data.get("setl_time") is None:
        errs.append(FieldError("setl_time", "E-CLAIM-MISSING", "'setl_time' is required"))
    else:
        setl_date = _date_part(data["setl_time"], "setl_time", errs)
    adm_date = _date_part(data["begntime"], "begntime", errs) if data.get("begntime") is not None else None
    if data.get("endtime") is not None:
        _date_part(data["endtime"], "endtime", errs)
    age = None
    if data.get("age") is not None:
        a = data["age"]
        if isinstance(a, bool) or not isinstance(a, int):
            errs.append(FieldError("age", "E-CLAIM-TYPE", f"'age' must be a whole number, found {type(a).__name__}"))
        elif not 0 <= a <= 150:
            errs.append(FieldError("age", "E-CLAIM-VALUE", f"'age' {a} is not a plausible age"))
        else:
            age = a
    elif data.get("brdy") is not None:
        b = _date_part(data["brdy"], "brdy", errs)
        if b and setl_date:
            bd, sd = dt.date.fromisoformat(b), dt.date.fromisoformat(setl_date)
            if bd > sd:
                errs.append(FieldError("brdy", "E-CLAIM-VALUE", f"birth date {b} is after the settlement date"))
            else:
                age = sd.year - bd.year - ((sd.month, sd.day) < (bd.month, bd.day))
                if age > 150:
                    errs.append(FieldError("brdy", "E-CLAIM-VALUE", f"birth date {b} gives an implausible age"))
                    age = None
    else:
        errs.append(FieldError("age", "E-CLAIM-MISSING", "give 'age' or 'brdy' (birth date)"))
    balc = None
    if data.get("balc") is not None:
        balc = _num(data["balc"], 2, "balc", errs, what="balc", limit=MAX_AMOUNT_FEN)
    if filing_obj is not None:
        if not isinstance(filing_obj, dict):
            errs.append(FieldError("filing", "E-CLAIM-TYPE", "'filing' must be an object"))
            filing_obj = None
        else:
            n_before = len(errs)
            _unknown(filing_obj, FILING_FIELDS, "filing.", errs)
            if len(errs) == n_before and setl_date and mdtrtarea:
                _check_filing(filing_obj, setl_date, mdtrtarea, filing, errs)
            if len(errs) == n_before:
                filing = filing or filing_obj["type"]
            else:
                filing_obj = None

    # diagnoses
    diagnoses: list[str] = []
    dis = data.get("diseinfo")
    if dis is not None:
        if not isinstance(dis, list):
            errs.append(FieldError("diseinfo", "E-CLAIM-TYPE", "'diseinfo' must be a list"))
        else:
            for i, d in enumerate(dis):
                p = f"diseinfo[{i}]"
                if not isinstance(d, dict):
                    errs.append(FieldError(p, "E-CLAIM-TYPE", "a diagnosis must be an object"))
                    continue
                _unknown(d, DISEINFO_FIELDS, p + ".", errs)
                c = _code(d, "diag_code", errs, required=True, pattern_len=(1, 30), path=p + ".diag_code")
                if c:
                    diagnoses.append(c.upper())

    # fee lines
    lines: list[LineIn] = []
    fd = data.get("feedetail")
    if fd is None:
        errs.append(FieldError("feedetail", "E-CLAIM-MISSING", "'feedetail' (the fee lines) is required"))
    elif not isinstance(fd, list):
        errs.append(FieldError("feedetail", "E-CLAIM-TYPE", "'feedetail' must be a list of fee lines"))
    elif not fd:
        errs.append(FieldError("feedetail", "E-CLAIM-VALUE", "'feedetail' has no fee lines"))
    elif len(fd) > MAX_LINES:
        errs.append(FieldError("feedetail", "E-CLAIM-VALUE", f"{len(fd):,} fee lines; at most {MAX_LINES:,} per claim"))
    else:
        seen: dict[str, int] = {}
        for i, ln in enumerate(fd):
            p = f"feedetail[{i}]"
            if not isinstance(ln, dict):
                errs.append(FieldError(p, "E-CLAIM-TYPE", "a fee line must be an object"))
                continue
            for k in ln:
                if k not in FEEDETAIL_FIELDS:
                    _unknown({k: None}, FEEDETAIL_FIELDS, p + ".", errs)
            sn = ln.get("feedetl_sn")
            if not isinstance(sn, str) or not sn.strip() or len(sn.strip()) > 30:
                errs.append(FieldError(p + ".feedetl_sn", "E-CLAIM-MISSING" if sn is None else "E-CLAIM-TYPE",
                                       "'feedetl_sn' (费用明细流水号) is required and must be text"))
                sn = None
            else:
                sn = sn.strip()
                if sn in seen:
                    errs.append(FieldError(p + ".feedetl_sn", "E-CLAIM-DUPLICATE-SN",
                                           f"feedetl_sn '{sn}' repeats line {seen[sn]} (must be unique within the visit)"))
                seen[sn] = i
            code = _code(ln, "med_list_codg", errs, required=False, pattern_len=(1, 50), path=p + ".med_list_codg")
            local = _code(ln, "medins_list_codg", errs, required=False, pattern_len=(1, 150),
                          path=p + ".medins_list_codg")
            if ln.get("med_list_codg") is None and ln.get("medins_list_codg") is None:
                errs.append(FieldError(p + ".med_list_codg", "E-CLAIM-MISSING",
                                       "a fee line needs 'med_list_codg' (or 'medins_list_codg' with a code map)"))
            cnt = _num(ln.get("cnt"), 4, p + ".cnt", errs, what="cnt", limit=MAX_PRICE_E6)
            pric = _num(ln.get("pric"), 6, p + ".pric", errs, what="pric", limit=MAX_PRICE_E6)
            amt = _num(ln.get("det_item_fee_sumamt"), 2, p + ".det_item_fee_sumamt", errs, what="det_item_fee_sumamt",
                       limit=MAX_AMOUNT_FEN)
            appr = _code(ln, "hosp_appr_flag", errs, required=False, pattern_len=(1, 3), path=p + ".hosp_appr_flag")
            if ln.get("fee_ocur_time") is not None and not _time_text_ok(ln["fee_ocur_time"]):
                errs.append(FieldError(p + ".fee_ocur_time", "E-CLAIM-VALUE",
                                       f"'{ln['fee_ocur_time']}' is not a time yyyy-MM-dd[ HH:mm:ss]"))
            days = None
            if ln.get("prd_days") is not None:
                dd = _num(ln["prd_days"], 4, p + ".prd_days", errs, what="prd_days", limit=10**8)
                days = dd / CNT_SCALE if dd is not None else None
            if cnt is not None and pric is not None and amt is not None:
                # cnt × pric in 1e-10 yuan; compare with the amount in fen (1e-2 yuan)
                exact = cnt * pric
                gap = abs(exact - amt * 10**8)
                if gap > tolerance_fen * 10**8:
                    errs.append(FieldError(p + ".det_item_fee_sumamt", "E-CLAIM-AMOUNT",
                                           f"det_item_fee_sumamt {ln.get('det_item_fee_sumamt')} ≠ cnt × pric = "
                                           f"{Decimal(exact).scaleb(-10).normalize():f} (allowed gap "
                                           f"{tolerance_fen / 100:.2f})"))
            if sn is not None and cnt is not None and pric is not None and amt is not None:
                lines.append(LineIn(i, sn, code, local, cnt, pric, amt, appr, days, ln))

    history = None
    if data.get("history") is not None:
        from ..audit.lines import parse_history
        try:
            history = parse_history(data["history"])
        except ClaimError as e:
            errs.extend(e.errors)
    accs = data.get("accumulators")
    accumulators: dict[str, Any] = {}
    if accs is not None:
        if not isinstance(accs, dict):
            errs.append(FieldError("accumulators", "E-CLAIM-TYPE", "'accumulators' must be an object of name: value"))
        else:
            for k, v in accs.items():
                n = _num(v, 2, f"accumulators.{k}", errs, what=f"accumulators.{k}", limit=MAX_AMOUNT_FEN)
                if n is not None:
                    accumulators[str(k)] = n
    if errs:
        raise ClaimError(f"the claim has {len(errs)} problem{'s' if len(errs) != 1 else ''}: "
                         + "; ".join(f"{e.path}: {e.message}" for e in errs[:3])
                         + (" …" if len(errs) > 3 else ""), errs)
    return ClaimIn(insuplc_admdvs=insuplc, mdtrtarea_admvs=mdtrtarea, insutype=insutype, med_type=med_type,
                   hosp_lv=hosp_lv, setl_date=setl_date, adm_date=adm_date, age=age, gend=gend, psn_type=psn_type,
                   insutype_retr_flag=retr, cvlserv_flag=cvl, community_flag=comm, filing_type=filing,
                   filing=filing_obj,
                   acct_used_flag=acct_flag, balc=balc, dise_codg=dise_codg, diagnoses=tuple(diagnoses), lines=lines,
                   accumulators=accumulators, icd_edition=icd_edition, raw=data, history=history)
