"""The settlement, shaped like the platform's 2206/2207 output (setlinfo, setldetail) plus a
2204-style per-line result, the accumulators after the claim, warnings and the packs used.

`Settlement` keeps integers of fen internally and computes nothing on the way out but sums;
`to_dict()` gives national field names with exact `Decimal` amounts. The pydantic models at the
end document the output contract (schemas/settlement.schema.json, the service's OpenAPI).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from ..money import PPM, fen_decimal, plain

if TYPE_CHECKING:  # pragma: no cover
    from ..packs.model import CompiledPack
    from ..settle.layers import LayerResult
    from ..settle.lines import LineResult
    from .claim import ClaimIn

FUND_FIELDS = ("hifp_pay", "cvlserv_pay", "hifes_pay", "hifmi_pay", "hifob_pay", "maf_pay", "oth_pay")


def _d(fen: int) -> Decimal:
    return fen_decimal(fen)


def _ratio(ppm: int) -> Decimal:
    return plain(Decimal(ppm) / PPM) if ppm else Decimal(0)


def _scaled(n: int, scale: int) -> Decimal:
    return plain(Decimal(n) / scale)


class _Decimals:
    """Exact Decimals: what the Python API returns."""
    amount = staticmethod(_d)
    ratio = staticmethod(_ratio)
    scaled = staticmethod(_scaled)


class _Floats:
    """JSON-ready numbers: the float nearest each exact value, whose shortest repr IS that value's
    decimal text (every amount here has at most 16 significant digits). Skipping Decimal makes
    an HTTP answer several times cheaper to build."""
    @staticmethod
    def amount(fen: int) -> float:
        return fen / 100

    @staticmethod
    def ratio(ppm: int) -> float:
        return ppm / PPM

    @staticmethod
    def scaled(n: int, scale: int) -> float | int:
        return n // scale if n % scale == 0 else n / scale


NUMBERS = {"decimal": _Decimals, "float": _Floats}


@dataclass(slots=True)
class Warning_:
    code: str
    message: str
    path: str | None = None

    def to_dict(self) -> dict:
        d = {"code": self.code, "message": self.message}
        if self.path:
            d["path"] = self.path
        return d


@dataclass
class Settlement:
    claim: "ClaimIn"
    insured: "CompiledPack"
    treatment: "CompiledPack"
    facts: dict
    lines: list["LineResult"]
    layers: list["LayerResult"]
    medfee_sumamt: int
    fulamt_ownpay_amt: int
    overlmt_selfpay: int
    preselfpay_amt: int
    inscp_scp_amt: int
    act_pay_dedc: int
    funds: dict[str, int]
    fund_pay_sumamt: int
    psn_part_amt: int
    acct_pay: int
    psn_cash_pay: int
    hosp_part_amt: int
    balc: int | None
    acct_fund_pay_type: str | None
    pool_prop: int
    accumulators_before: dict[str, int]
    accumulators_after: dict[str, int]
    count_accumulators: frozenset
    warnings: list[Warning_] = field(default_factory=list)
    conversions: list[dict] = field(default_factory=list)  # code conversions applied (ICD, local items)
    audit_hits: list = field(default_factory=list)         # rules_engine.audit Hit, in claim order

    # ------------------------------------------------------------ the national shape
    @property
    def hifp_pay(self) -> int:
        return self.funds["hifp_pay"]

    def setlinfo(self, numbers: str = "decimal") -> dict[str, Any]:
        """The 2207-shaped totals (a fresh dict each call; computed once per number mode)."""
        key = "_setlinfo_" + numbers
        cached = self.__dict__.get(key)
        if cached is None:
            cached = self.__dict__[key] = self._setlinfo(NUMBERS[numbers])
        return dict(cached)

    def _setlinfo(self, N) -> dict[str, Any]:
        _d, _ratio = N.amount, N.ratio
        c = self.claim
        info: dict[str, Any] = {
            "insuplc_admdvs": c.insuplc_admdvs, "mdtrtarea_admvs": c.mdtrtarea_admvs, "insutype": c.insutype,
            "psn_type": c.psn_type, "med_type": c.med_type, "setl_time": c.raw.get("setl_time"),
            "medfee_sumamt": _d(self.medfee_sumamt), "fulamt_ownpay_amt": _d(self.fulamt_ownpay_amt),
            "overlmt_selfpay": _d(self.overlmt_selfpay), "preselfpay_amt": _d(self.preselfpay_amt),
            "inscp_scp_amt": _d(self.inscp_scp_amt), "act_pay_dedc": _d(self.act_pay_dedc),
            "hifp_pay": _d(self.funds["hifp_pay"]), "pool_prop_selfpay": _ratio(self.pool_prop),
        }
        for f in FUND_FIELDS[1:]:
            info[f] = _d(self.funds[f])
        info.update({
            "fund_pay_sumamt": _d(self.fund_pay_sumamt), "psn_part_amt": _d(self.psn_part_amt),
            "acct_pay": _d(self.acct_pay), "psn_cash_pay": _d(self.psn_cash_pay),
            "hosp_part_amt": _d(self.hosp_part_amt), "balc": _d(self.balc) if self.balc is not None else None,
            "acct_mulaid_pay": _d(0),
        })
        for k in ("psn_no", "mdtrt_id", "psn_name"):
            if c.raw.get(k) is not None:
                info[k] = c.raw[k]
        return info

    def setldetail(self, numbers: str = "decimal") -> list[dict[str, Any]]:
        _d = NUMBERS[numbers].amount
        rows = []
        for r in self.layers:
            if r.pay == 0:
                continue
            remaining = min((u.remaining for u in r.caps), default=None)
            rows.append({
                "fund_pay_type": r.layer.fund_pay_type,
                "fund_pay_type_name": self.insured.code_name("fund_pay_type", r.layer.fund_pay_type) or r.layer.name,
                "inscp_scp_amt": _d(r.base),
                "crt_payb_lmt_amt": _d(remaining) if remaining is not None else None,
                "fund_payamt": _d(r.pay),
                "setl_proc_info": layer_formula(r),
            })
        if self.acct_pay:
            fpt = self.acct_fund_pay_type or "310200"
            rows.append({"fund_pay_type": fpt,
                         "fund_pay_type_name": self.insured.code_name("fund_pay_type", fpt) or "个人账户",
                         "inscp_scp_amt": _d(self.inscp_scp_amt), "crt_payb_lmt_amt": None,
                         "fund_payamt": _d(self.acct_pay), "setl_proc_info": "personal account"})
        return rows

    def result(self, numbers: str = "decimal") -> list[dict[str, Any]]:
        N = NUMBERS[numbers]
        _d, _ratio, sc = N.amount, N.ratio, N.scaled
        out = []
        for lr in self.lines:
            ln = lr.line
            out.append({
                "feedetl_sn": ln.feedetl_sn,
                "med_list_codg": lr.code,
                "det_item_fee_sumamt": _d(ln.amount),
                "cnt": sc(ln.cnt, 10_000),
                "pric": sc(ln.pric, 1_000_000),
                "pric_uplmt_amt": sc(lr.ceiling, 1_000_000) if lr.ceiling is not None else sc(999999, 1),
                "selfpay_prop": _ratio(lr.selfpay_ppm),
                "fulamt_ownpay_amt": _d(lr.fulamt),
                "overlmt_amt": _d(lr.overlmt),
                "preselfpay_amt": _d(lr.pre),
                "inscp_scp_amt": _d(lr.inscp),
                "chrgitm_lv": lr.chrgitm_lv,
                "med_chrgitm_type": lr.entry.med_chrgitm_type if lr.entry else None,
                "lmt_used_flag": "1" if lr.restricted else "0",
                "memo": "; ".join(r.message for r in lr.reasons) or None,
                "reasons": [{"code": r.code, "message": r.message, **({"text": r.text} if r.text else {}),
                             **({"at": f"{r.src.file}:{r.src.line}"} if r.src else {})} for r in lr.reasons],
                "review_flag": "1" if lr.review else "0",
            })
        return out

    def accumulators(self, numbers: str = "decimal") -> dict[str, Any]:
        _d = NUMBERS[numbers].amount
        return {k: (v if k in self.count_accumulators else _d(v)) for k, v in self.accumulators_after.items()}

    def packs(self) -> dict[str, Any]:
        def one(p: "CompiledPack") -> dict:
            return {"region": p.info.region, "version": p.info.version, "hash": p.content_hash, "chain": list(p.chain)}
        return {"insured": one(self.insured), "treatment": one(self.treatment)}

    def to_dict(self, explain: bool = False, numbers: str = "decimal") -> dict[str, Any]:
        """National field names. numbers="decimal" (default): exact Decimals; numbers="float":
        JSON-ready numbers whose text is the exact value (for writing JSON fast)."""
        d = {
            "setlinfo": self.setlinfo(numbers),
            "setldetail": self.setldetail(numbers),
            "result": self.result(numbers),
            "accumulators": self.accumulators(numbers),
            "warnings": [w.to_dict() for w in self.warnings],
            "packs": self.packs(),
        }
        if self.conversions:
            d["conversions"] = self.conversions
        if self.audit_hits:
            d["audit"] = [h.to_dict(self.claim.history) for h in self.audit_hits]
        if explain:
            from ..settle.explain import explain as _explain
            d["explanation"] = _explain(self)
        return d

    def explain(self) -> list[dict]:
        from ..settle.explain import explain as _explain
        return _explain(self)

    def check_identities(self) -> list[str]:
        """The platform's own arithmetic (reference national-interface.md §2.2); [] when all hold."""
        bad = []
        parts = self.fulamt_ownpay_amt + self.overlmt_selfpay + self.preselfpay_amt + self.inscp_scp_amt
        if self.medfee_sumamt != parts:
            bad.append("medfee_sumamt ≠ fulamt_ownpay_amt + overlmt_selfpay + preselfpay_amt + inscp_scp_amt")
        if self.fund_pay_sumamt != sum(self.funds.values()):
            bad.append("fund_pay_sumamt ≠ Σ fund fields")
        if self.medfee_sumamt != self.fund_pay_sumamt + self.psn_part_amt + self.hosp_part_amt:
            bad.append("medfee_sumamt ≠ fund_pay_sumamt + psn_part_amt + hosp_part_amt")
        if self.psn_part_amt != self.acct_pay + self.psn_cash_pay:
            bad.append("psn_part_amt ≠ acct_pay + psn_cash_pay")
        return bad


def layer_formula(r: "LayerResult") -> str:
    from ..settle.explain import layer_formula as _f
    return _f(r)


# ------------------------------------------------------------------ output contract (documentation / OpenAPI)

# Amounts are exact Decimals in Python and JSON numbers on the wire (rules_engine/jsonio.py).
Money = Annotated[Decimal, WithJsonSchema({"type": "number", "description": "yuan, at most 2 decimals"})]
Ratio = Annotated[Decimal, WithJsonSchema({"type": "number", "minimum": 0, "maximum": 1})]
Number = Annotated[Decimal, WithJsonSchema({"type": "number"})]


class SetlInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    insuplc_admdvs: str
    mdtrtarea_admvs: str
    insutype: str
    psn_type: str | None = None
    med_type: str
    setl_time: str | None = None
    medfee_sumamt: Money = Field(description="医疗费总额")
    fulamt_ownpay_amt: Money = Field(description="全自费金额")
    overlmt_selfpay: Money = Field(description="超限价自费费用")
    preselfpay_amt: Money = Field(description="先行自付金额")
    inscp_scp_amt: Money = Field(description="符合政策范围金额")
    act_pay_dedc: Money = Field(description="实际支付起付线")
    hifp_pay: Money = Field(description="基本医疗保险统筹基金支出")
    pool_prop_selfpay: Ratio = Field(description="基本医疗保险统筹基金支付比例 (the basic layer's ratio at the claim's last band)")
    cvlserv_pay: Money = Field(description="公务员医疗补助资金支出")
    hifes_pay: Money = Field(description="企业补充医疗保险基金支出")
    hifmi_pay: Money = Field(description="居民大病保险资金支出")
    hifob_pay: Money = Field(description="职工大额医疗费用补助基金支出")
    maf_pay: Money = Field(description="医疗救助基金支出")
    oth_pay: Money = Field(description="其他支出")
    fund_pay_sumamt: Money = Field(description="基金支付总额")
    psn_part_amt: Money = Field(description="个人负担总金额")
    acct_pay: Money = Field(description="个人账户支出")
    psn_cash_pay: Money = Field(description="个人现金支出")
    hosp_part_amt: Money = Field(description="医院负担金额")
    balc: Money | None = Field(default=None, description="余额 after this claim")
    acct_mulaid_pay: Money = Field(description="个人账户共济支付金额")


class SetlDetail(BaseModel):
    fund_pay_type: str
    fund_pay_type_name: str
    inscp_scp_amt: Money
    crt_payb_lmt_amt: Money | None = None
    fund_payamt: Money
    setl_proc_info: str


class LineReason(BaseModel):
    code: str
    message: str
    text: str | None = None
    at: str | None = None


class LineOut(BaseModel):
    feedetl_sn: str
    med_list_codg: str | None
    det_item_fee_sumamt: Money
    cnt: Number
    pric: Number
    pric_uplmt_amt: Number = Field(description="定价上限金额; 999999 = no ceiling, as the platform writes it")
    selfpay_prop: Ratio
    fulamt_ownpay_amt: Money
    overlmt_amt: Money
    preselfpay_amt: Money
    inscp_scp_amt: Money
    chrgitm_lv: str
    med_chrgitm_type: str | None = None
    lmt_used_flag: str
    memo: str | None = None
    reasons: list[LineReason]
    review_flag: str


class PackRef(BaseModel):
    region: str
    version: str
    hash: str
    chain: list[str]


class SettlementOut(BaseModel):
    """What `Settlement.to_dict()` returns and the service answers."""

    setlinfo: SetlInfo
    setldetail: list[SetlDetail]
    result: list[LineOut]
    accumulators: dict[str, Number | int]
    warnings: list[dict[str, str]]
    packs: dict[str, PackRef]
    conversions: list[dict[str, Any]] | None = None
    audit: list[dict[str, Any]] | None = Field(default=None, description="audit hits: rule, kind, action, message, "
                                               "lines, the source's batch and row")
    explanation: list[dict[str, Any]] | None = None
