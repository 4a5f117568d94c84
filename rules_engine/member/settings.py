"""The member service's settings (member.yaml): where the platform is, which transaction numbers and
field names to use, how consents and estimates behave.

Every value has a default. Where the reference marks a transaction or a field as recalled or
unconfirmed — or does not list it at all — the default is the best value found and the setting
exists so a region can correct it without code (docs/member.md §"What is configurable"):

| setting | default | source of the default |
|---|---|---|
| transactions.chronic_query | 5301 | reference national-interface.md §3.3 [A] (number); output fields unconfirmed |
| transactions.filing / filing_revoke | 2501 / 2502 | public integration code (转院备案 / 撤销, node `refmedin`); not in the reference |
| transactions.filing_query | 5304 | reference §3.3, recalled "(r)" 转院信息查询 |
| filing_fields.* | refmedin, refl_type, mdtrtarea_admdvs, begndate, enddate, trt_dcla_detl_sn, vali_flag | public code (Input_2501 field table) |
| filing_type_codes | our own type names | no national code list for 异地备案类型 was found |
| chronic_fields.* | feedetail, opsp_dise_code, opsp_dise_name, begndate, enddate | recalled |
| evoucher.transactions.* | 6201 uldFeeInfo, 6202 pay_order, 6203 refund_Order, 6301 query_order_info, 6401 revoke_order | public integration code (6401's path recalled); not in the reference |
| evoucher.status_codes | paid 6, refunded 7, revoked 12, uploaded 1 | recalled; unconfirmed |

Read like every other YAML of the project: every problem located (file:line:col), all at once, no
settings object while there is an error.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from ..model.claim import FILING_TYPES
from ..packs.source import Path_, parse_yaml
from ..problems import Problem, did_you_mean

#: filing types a person may file (the engine's list without "unfiled")
FILEABLE = tuple(t for t in FILING_TYPES if t != "unfiled")
LONG_TERM = ("resettled_retiree", "long_term_resident", "resident_worker")
TEMPORARY = ("referral", "emergency", "other_temporary")
TYPE_NAMES = {"resettled_retiree": "异地安置退休", "long_term_resident": "异地长期居住", "resident_worker": "常驻异地工作",
              "referral": "异地转诊", "emergency": "异地急诊抢救", "other_temporary": "其他临时外出"}
#: data a consent can cover (what a query discloses or an action does)
SCOPES = ("insurance", "eligibility", "chronic", "benefits", "filings", "payment")
SCOPE_NAMES = {"insurance": "参保信息与账户余额 (1101)", "eligibility": "待遇资格 (2001)", "chronic": "慢特病备案 (5301)",
               "benefits": "年度累计与剩余待遇 (5206 + 估算)", "filings": "异地就医备案 (查询、备案、撤销)",
               "payment": "医保电子凭证支付"}
CHANNELS = ("app", "im", "web", "phone", "counter", "paper")
_INFNO = re.compile(r"^[0-9]{4}[A-Z]?$")


@dataclass(frozen=True)
class Transactions:
    """定点 interface transactions the member service sends through the gateway."""

    chronic_query: str = "5301"
    filing: str = "2501"
    filing_revoke: str = "2502"
    filing_query: str = "5304"


@dataclass(frozen=True)
class FilingFields:
    """Where a filing's parts sit in 2501 / 5304 messages (public code's 2501 field table)."""

    node: str = "refmedin"           # 2501 input node; 5304 output list
    type: str = "refl_type"
    region: str = "mdtrtarea_admdvs"
    begndate: str = "begndate"
    enddate: str = "enddate"
    id: str = "trt_dcla_detl_sn"     # 待遇申报明细流水号: 2501's output, 2502's input
    valid: str = "vali_flag"         # 1 in force, 0 revoked
    revoke_node: str = "data"


@dataclass(frozen=True)
class ChronicFields:
    node: str = "feedetail"
    code: str = "opsp_dise_code"
    name: str = "opsp_dise_name"
    begndate: str = "begndate"
    enddate: str = "enddate"


@dataclass(frozen=True)
class EstimateSettings:
    med_types: tuple[str, ...] = ("11", "21")
    hosp_lv: str = "3"
    amount_fen: int = 100_000          # the "next 1,000 yuan"


@dataclass(frozen=True)
class ConsentSettings:
    max_days: int = 365                # a consent runs at most this long (and never past the journal's retention)
    purposes: tuple[str, ...] = ()     # an allow-list; empty = any purpose text


@dataclass(frozen=True)
class EVoucherRoute:
    infno: str
    path: str


@dataclass(frozen=True)
class EVoucherSettings:
    gateway: Path | None = None        # a gateway.yaml-format file for the 移动支付 channel (scheme_b)
    region: str | None = None
    fee_upload: EVoucherRoute = EVoucherRoute("6201", "/org/local/api/hos/uldFeeInfo")
    pay: EVoucherRoute = EVoucherRoute("6202", "/org/local/api/hos/pay_order")
    refund: EVoucherRoute = EVoucherRoute("6203", "/org/local/api/hos/refund_Order")
    query: EVoucherRoute = EVoucherRoute("6301", "/org/local/api/hos/query_order_info")
    revoke: EVoucherRoute = EVoucherRoute("6401", "/org/local/api/hos/revoke_order")
    callback_infno: str = "6302"
    status_codes: Mapping[str, str] = field(default_factory=lambda: {
        "uploaded": "1", "paid": "6", "refunded": "7", "revoked": "12"})

    def routes(self) -> dict[str, EVoucherRoute]:
        return {"fee_upload": self.fee_upload, "pay": self.pay, "refund": self.refund, "query": self.query,
                "revoke": self.revoke}


@dataclass(frozen=True)
class JournalSettings:
    path: Path | None = None
    key_file: Path | None = None
    retention_days: int | None = None
    sync: str = "FULL"


@dataclass(frozen=True)
class MemberSettings:
    file: str | None = None
    gateway: Path | None = None        # gateway.yaml of the 定点 interface
    adapter: Path | None = None        # gateway-adapter.yaml (default: beside gateway.yaml)
    region: str | None = None          # the region messages go through when a request names none
    regions_dir: Path | None = None    # packs for estimates and settlements
    journal: JournalSettings = field(default_factory=JournalSettings)
    consent: ConsentSettings = field(default_factory=ConsentSettings)
    transactions: Transactions = field(default_factory=Transactions)
    filing_fields: FilingFields = field(default_factory=FilingFields)
    filing_type_codes: Mapping[str, str] = field(default_factory=lambda: {t: t for t in FILEABLE})
    chronic_fields: ChronicFields = field(default_factory=ChronicFields)
    cert_type: str = "02"              # 1101 mdtrt_cert_type when a certno is given (02 身份证 …)
    psn_cert_type: str = "99"          # 1101 mdtrt_cert_type when only psn_no is known (the simulator's lookup)
    estimate: EstimateSettings = field(default_factory=EstimateSettings)
    evoucher: EVoucherSettings = field(default_factory=EVoucherSettings)

    def type_of_code(self, code: str) -> str | None:
        for t, c in self.filing_type_codes.items():
            if c == code:
                return t
        return None


ENV_FILE = "RULES_ENGINE_MEMBER_CONFIG"


class MemberConfigError(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(p.format() for p in problems if p.severity == "error"))


def require_member_settings(path: str | os.PathLike) -> MemberSettings:
    s, problems = load_member_settings(path)
    if s is None:
        raise MemberConfigError(problems)
    return s


def load_member_settings(path: str | os.PathLike) -> tuple[MemberSettings | None, list[Problem]]:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        return None, [Problem("E-FILE-READ", f"cannot read the member settings: {e.strerror}", file=str(path))]
    return parse_member_settings(raw, str(path), base=p.resolve().parent)


def parse_member_settings(text: bytes | str, file: str, *, base: Path | None = None
                          ) -> tuple[MemberSettings | None, list[Problem]]:
    """member.yaml → settings. Relative paths are relative to the file's folder."""
    base = base or Path.cwd()
    doc, problems = parse_yaml(text, file)
    if doc is None:
        return None, problems
    data = doc.data if doc.data is not None else {}
    errs: list[Problem] = list(problems)

    def err(code: str, msg: str, path: Path_, *, key: bool = False, hint: str | None = None) -> None:
        errs.append(doc.problem(code, msg, path, key=key, hint=hint))

    if not isinstance(data, dict):
        err("E-MEMBER-FORM", "member settings are a mapping (gateway, region, journal, consent …)", ())
        return None, errs
    known = {"version", "gateway", "adapter", "region", "regions", "journal", "consent", "transactions",
             "filing_fields", "filing_type_codes", "chronic_fields", "cert_type", "psn_cert_type", "estimate",
             "evoucher"}
    _unknown(data, known, (), err)
    if data.get("version", 1) != 1:
        err("E-MEMBER-VERSION", "version is 1", ("version",))
    s = MemberSettings(file=file)

    def path_of(v: Any, where: Path_) -> Path | None:
        if v is None:
            return None
        if not isinstance(v, str) or not v.strip():
            err("E-MEMBER-TYPE", "a path is text", where)
            return None
        q = Path(v).expanduser()
        return q if q.is_absolute() else (base / q)

    def text(v: Any, where: Path_, pattern: re.Pattern | None = None, what: str = "text") -> str | None:
        if not isinstance(v, str) or (pattern is not None and not pattern.match(v)):
            err("E-MEMBER-TYPE", f"expected {what}, found {v!r}"[:160], where,
                hint="quote codes: \"2501\"" if isinstance(v, int) else None)
            return None
        return v

    region_re = re.compile(r"^[0-9]{6}$")
    kw: dict[str, Any] = {}
    kw["gateway"] = path_of(data.get("gateway"), ("gateway",))
    kw["adapter"] = path_of(data.get("adapter"), ("adapter",))
    kw["regions_dir"] = path_of(data.get("regions"), ("regions",))
    if "region" in data:
        kw["region"] = text(data["region"], ("region",), region_re, "a 6-digit region code in quotes")
    for k in ("cert_type", "psn_cert_type"):
        if k in data:
            kw[k] = text(data[k], (k,), None) or getattr(s, k)
    j = data.get("journal")
    if j is not None:
        if not isinstance(j, dict):
            err("E-MEMBER-TYPE", "journal is a mapping {path, key_file, retention_days, sync}", ("journal",))
        else:
            _unknown(j, {"path", "key_file", "retention_days", "sync"}, ("journal",), err)
            rd = j.get("retention_days")
            if rd is not None and (not isinstance(rd, int) or isinstance(rd, bool) or rd < 1):
                err("E-MEMBER-TYPE", "retention_days is a whole number of days ≥ 1", ("journal", "retention_days"))
                rd = None
            sync = str(j.get("sync", "FULL")).upper()
            if sync not in ("FULL", "NORMAL"):
                err("E-MEMBER-VALUE", "sync is FULL or NORMAL", ("journal", "sync"))
            kw["journal"] = JournalSettings(path=path_of(j.get("path"), ("journal", "path")),
                                            key_file=path_of(j.get("key_file"), ("journal", "key_file")),
                                            retention_days=rd, sync=sync)
    c = data.get("consent")
    if c is not None:
        if not isinstance(c, dict):
            err("E-MEMBER-TYPE", "consent is a mapping {max_days, purposes}", ("consent",))
        else:
            _unknown(c, {"max_days", "purposes"}, ("consent",), err)
            md = c.get("max_days", 365)
            if not isinstance(md, int) or isinstance(md, bool) or md < 1:
                err("E-MEMBER-TYPE", "max_days is a whole number of days ≥ 1", ("consent", "max_days"))
                md = 365
            pur = c.get("purposes", [])
            if not isinstance(pur, list) or not all(isinstance(x, str) and x for x in pur):
                err("E-MEMBER-TYPE", "purposes is a list of texts", ("consent", "purposes"))
                pur = []
            kw["consent"] = ConsentSettings(max_days=md, purposes=tuple(pur))
    kw["transactions"] = _block(data, "transactions", Transactions, err, infno=True)
    kw["filing_fields"] = _block(data, "filing_fields", FilingFields, err)
    kw["chronic_fields"] = _block(data, "chronic_fields", ChronicFields, err)
    ftc = data.get("filing_type_codes")
    if ftc is not None:
        if not isinstance(ftc, dict):
            err("E-MEMBER-TYPE", "filing_type_codes maps a filing type to the region's code", ("filing_type_codes",))
        else:
            merged = dict(s.filing_type_codes)
            for t, code in ftc.items():
                if t not in FILEABLE:
                    err("E-MEMBER-VALUE", f"'{t}' is not a filing type; known: {', '.join(FILEABLE)}",
                        ("filing_type_codes", t), key=True)
                elif not isinstance(code, str) or not code:
                    err("E-MEMBER-TYPE", "a filing type's code is text", ("filing_type_codes", t))
                else:
                    merged[t] = code
            if len(set(merged.values())) != len(merged):
                err("E-MEMBER-VALUE", "two filing types share one code", ("filing_type_codes",))
            kw["filing_type_codes"] = merged
    e = data.get("estimate")
    if e is not None:
        if not isinstance(e, dict):
            err("E-MEMBER-TYPE", "estimate is a mapping {med_types, hosp_lv, amount}", ("estimate",))
        else:
            _unknown(e, {"med_types", "hosp_lv", "amount"}, ("estimate",), err)
            mts = e.get("med_types", list(EstimateSettings.med_types))
            if not isinstance(mts, list) or not mts or not all(isinstance(x, str) for x in mts):
                err("E-MEMBER-TYPE", "med_types is a list of codes in quotes", ("estimate", "med_types"))
                mts = list(EstimateSettings.med_types)
            amount = e.get("amount", 1000)
            if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
                err("E-MEMBER-TYPE", "amount is a whole number of yuan > 0", ("estimate", "amount"))
                amount = 1000
            kw["estimate"] = EstimateSettings(med_types=tuple(mts), hosp_lv=str(e.get("hosp_lv", "3")),
                                              amount_fen=amount * 100)
    v = data.get("evoucher")
    if v is not None:
        kw["evoucher"] = _evoucher(v, err, path_of, text, region_re)
    if any(p.severity == "error" for p in errs):
        return None, errs
    return replace(s, **{k: x for k, x in kw.items() if x is not None}), errs


def _unknown(d: dict, known: set[str], at: Path_, err: Any) -> None:
    for k in d:
        if k not in known:
            hint = did_you_mean(str(k), known)
            err("E-MEMBER-UNKNOWN-KEY", f"unknown setting '{k}'" + (f"; {hint}" if hint else ""), at + (k,), key=True)


def _block(data: dict, name: str, cls: type, err: Any, *, infno: bool = False) -> Any:
    raw = data.get(name)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        err("E-MEMBER-TYPE", f"{name} is a mapping", (name,))
        return None
    names = {f.name for f in fields(cls)}
    _unknown(raw, names, (name,), err)
    kw = {}
    for k, v in raw.items():
        if k not in names:
            continue
        if not isinstance(v, str) or not v or (infno and not _INFNO.match(v)):
            err("E-MEMBER-TYPE", f"{name}.{k} is " + ("a transaction number in quotes (\"2501\")" if infno
                                                       else "a field name"), (name, k))
            continue
        kw[k] = v
    out = cls(**kw)
    if infno:
        vals = [getattr(out, f.name) for f in fields(out)]
        if len(set(vals)) != len(vals):
            err("E-MEMBER-VALUE", "two roles share one transaction number", (name,))
    return out


def _evoucher(v: Any, err: Any, path_of: Any, text: Any, region_re: re.Pattern) -> EVoucherSettings | None:
    at: Path_ = ("evoucher",)
    if not isinstance(v, dict):
        err("E-MEMBER-TYPE", "evoucher is a mapping {gateway, region, transactions, status_codes}", at)
        return None
    _unknown(v, {"gateway", "region", "transactions", "status_codes", "callback_infno"}, at, err)
    s = EVoucherSettings()
    kw: dict[str, Any] = {"gateway": path_of(v.get("gateway"), at + ("gateway",))}
    if "region" in v:
        kw["region"] = text(v["region"], at + ("region",), region_re, "a 6-digit region code in quotes")
    if "callback_infno" in v:
        kw["callback_infno"] = text(v["callback_infno"], at + ("callback_infno",), _INFNO, "a transaction number")
    tr = v.get("transactions")
    if tr is not None:
        if not isinstance(tr, dict):
            err("E-MEMBER-TYPE", "transactions maps a role to {infno, path}", at + ("transactions",))
        else:
            routes = s.routes()
            for role, r in tr.items():
                where = at + ("transactions", role)
                if role not in routes:
                    err("E-MEMBER-UNKNOWN-KEY", f"unknown role '{role}'; known: {', '.join(routes)}", where, key=True)
                    continue
                if not isinstance(r, dict) or not set(r) <= {"infno", "path"}:
                    err("E-MEMBER-TYPE", "a route is {infno: \"6201\", path: /…}", where)
                    continue
                infno = r.get("infno", routes[role].infno)
                path = r.get("path", routes[role].path)
                if not isinstance(infno, str) or not _INFNO.match(infno):
                    err("E-MEMBER-TYPE", "infno is a transaction number in quotes", where + ("infno",))
                    continue
                if not isinstance(path, str) or not path.startswith("/"):
                    err("E-MEMBER-TYPE", "path starts with /", where + ("path",))
                    continue
                kw[role] = EVoucherRoute(infno, path)
    sc = v.get("status_codes")
    if sc is not None:
        if not isinstance(sc, dict) or not all(isinstance(x, str) for x in sc.values()) or \
                not set(sc) <= {"uploaded", "paid", "refunded", "revoked"}:
            err("E-MEMBER-TYPE", "status_codes maps uploaded/paid/refunded/revoked to codes in quotes",
                at + ("status_codes",))
        else:
            kw["status_codes"] = {**s.status_codes, **sc}
    out = replace(s, **{k: x for k, x in kw.items() if x is not None})
    nums = [r.infno for r in out.routes().values()] + [out.callback_infno]
    if len(set(nums)) != len(nums):
        err("E-MEMBER-VALUE", "two e-voucher roles share one transaction number", at + ("transactions",))
    return out
