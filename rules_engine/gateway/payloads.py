"""National interface payloads, in the platform's own field names: what we send, and reading what
comes back.

Inputs (the `input` node of a request) are built here from a claim and, for 2207/2304, from the
pre-settlement answer — the platform expects 2207 to repeat the totals 2206 gave (reference
national-interface.md §2.1). Outputs are read into pydantic models; an output that is missing a
field or has a wrong type is reported with the field's path (`output.setlinfo.medfee_sumamt`),
never a crash.

Shapes follow the reference (§1.1 2204 feedetail, §1.2 2204 result, §2.1 setlinfo/setldetail,
gateway.md §3 2601/2208/2305/9001/3201) and, for what the reference does not list, real answers in
public integration code (1101 baseinfo/insuinfo, 2001 trtinfo, 5206 cuminfo — observed, not in the
reference; marked so in docs/gateway.md). Real answers carry amounts as JSON numbers (`0`, `4.52`,
`0.0`), nulls where a value does not apply (`setl_id` in 2206, `psn_part_amt` in reversals) and
regional extras (`psn_pay`, `cashPayamt`, `hifdm_pay` …): amounts accept numbers and numeric text,
nulls are allowed where the samples show them, extras are kept.

JSON Schemas of every input and output are generated from these models into schemas/national/
(`python -m rules_engine.gateway.payloads --write-schemas`); a test holds the files current and
validates the real samples against them.
"""
from __future__ import annotations

import hashlib
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Callable, Mapping

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema

from ..money import MoneyError, fen_decimal, plain, scaled_int

# --------------------------------------------------------------------------- field types

_NUMBER_SCHEMA = {"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^\s*-?[0-9]+(\.[0-9]+)?\s*$"}]}


def _number(places: int | None, what: str) -> Callable[[Any], Decimal]:
    def conv(v: Any) -> Decimal:
        if isinstance(v, bool) or not isinstance(v, (int, float, Decimal, str)):
            raise ValueError(f"expected a number, found {_kind(v)}")
        if isinstance(v, str) and not v.strip():
            raise ValueError("expected a number, found empty text")
        try:
            d = Decimal(repr(v)) if isinstance(v, float) else Decimal(v.strip() if isinstance(v, str) else v)
        except Exception:
            raise ValueError(f"expected a number, found the text {str(v)[:30]!r}") from None
        if not d.is_finite():
            raise ValueError("expected a finite number")
        if places is not None:
            try:
                scaled_int(d, places, what)
            except MoneyError:
                raise ValueError(f"{d} has more than {places} decimal places ({what})") from None
        return d
    return conv


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true/false"
    if isinstance(v, str):
        return f"the text {v[:30]!r}"
    if isinstance(v, (list, tuple)):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def _code(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"expected a code as text, found {_kind(v)}")
    return v


#: N16,2 amount: a JSON number or numeric text, at most 2 decimals
Money = Annotated[Decimal, BeforeValidator(_number(2, "an amount has 2 decimals")),
                  WithJsonSchema({**_NUMBER_SCHEMA, "description": "yuan, N16,2"})]
#: a ratio, a count (N16,4), a price (N16,6), an age: a number, any scale
Number = Annotated[Decimal, BeforeValidator(_number(None, "number")), WithJsonSchema(_NUMBER_SCHEMA)]
Code = Annotated[str, BeforeValidator(_code), WithJsonSchema({"type": "string"})]

_OUT = ConfigDict(extra="allow", populate_by_name=True)
_IN = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- outputs

class FeeResult(BaseModel):
    """One 2204/2301 `result[]` row: how the platform split a fee line (national-interface.md §1.2)."""

    model_config = _OUT
    feedetl_sn: Code = Field(description="费用明细流水号 (echo)")
    det_item_fee_sumamt: Money = Field(description="明细项目费用总额")
    cnt: Number | None = Field(default=None, description="数量")
    pric: Number | None = Field(default=None, description="单价")
    pric_uplmt_amt: Number | None = Field(default=None, description="定价上限金额; 999999 = no ceiling")
    selfpay_prop: Number | None = Field(default=None, description="自付比例")
    fulamt_ownpay_amt: Money = Field(description="全自费金额")
    overlmt_amt: Money = Field(description="超限价金额")
    preselfpay_amt: Money = Field(description="先行自付金额")
    inscp_scp_amt: Money = Field(description="符合政策范围金额")
    chrgitm_lv: Code | None = Field(default=None, description="收费项目等级 01 甲 / 02 乙 / 03 丙")
    med_chrgitm_type: Code | None = Field(default=None, description="医疗收费项目类别")
    bas_medn_flag: Code | None = None
    hi_nego_drug_flag: Code | None = None
    chld_medc_flag: Code | None = None
    list_sp_item_flag: Code | None = None
    lmt_used_flag: Code | None = Field(default=None, description="限制使用标志")
    drt_reim_flag: Code | None = None
    memo: str | None = None


class Output2204(BaseModel):
    """2204 门诊费用明细信息上传 / 2301 住院费用明细上传 output."""

    model_config = _OUT
    result: list[FeeResult] = Field(description="one row per uploaded fee line")


class SetlInfo(BaseModel):
    """`setlinfo` of 2206/2207/2303/2304/2208/2305/5203 (national-interface.md §2.1)."""

    model_config = _OUT
    mdtrt_id: Code | None = Field(default=None, description="就诊ID")
    setl_id: Code | None = Field(default=None, description="结算ID (null in a pre-settlement)")
    psn_no: Code | None = None
    psn_name: str | None = None
    psn_cert_type: Code | None = None
    certno: str | None = None
    gend: Code | None = None
    naty: Code | None = None
    brdy: str | None = None
    age: Number | None = None
    insutype: Code | None = Field(default=None, description="险种类型")
    psn_type: Code | None = None
    cvlserv_flag: Code | None = None
    setl_time: str | None = None
    mdtrt_cert_type: Code | None = None
    med_type: Code | None = None
    medfee_sumamt: Money = Field(description="医疗费总额")
    fulamt_ownpay_amt: Money = Field(description="全自费金额")
    overlmt_selfpay: Money = Field(description="超限价自费费用")
    preselfpay_amt: Money = Field(description="先行自付金额")
    inscp_scp_amt: Money = Field(description="符合政策范围金额")
    act_pay_dedc: Money | None = Field(default=None, description="实际支付起付线")
    hifp_pay: Money | None = Field(default=None, description="基本医疗保险统筹基金支出")
    pool_prop_selfpay: Number | None = None
    cvlserv_pay: Money | None = None
    hifes_pay: Money | None = None
    hifmi_pay: Money | None = None
    hifob_pay: Money | None = None
    maf_pay: Money | None = None
    oth_pay: Money | None = None
    fund_pay_sumamt: Money = Field(description="基金支付总额")
    psn_part_amt: Money | None = Field(default=None, description="个人负担总金额 (null in reversals)")
    acct_pay: Money = Field(description="个人账户支出")
    psn_cash_pay: Money = Field(description="个人现金支出")
    hosp_part_amt: Money | None = Field(default=None, description="医院负担金额")
    balc: Money | None = Field(default=None, description="余额")
    acct_mulaid_pay: Money | None = None
    medins_setl_id: Code | None = Field(default=None, description="医药机构结算ID = our msgid")
    clr_optins: Code | None = Field(default=None, description="清算经办机构")
    clr_way: Code | None = None
    clr_type: Code | None = Field(default=None, description="清算类别")


class SetlDetailRow(BaseModel):
    model_config = _OUT
    fund_pay_type: Code = Field(description="基金支付类型")
    fund_payamt: Money = Field(description="基金支付金额")
    inscp_scp_amt: Money | None = None
    crt_payb_lmt_amt: Money | None = None
    fund_pay_type_name: str | None = None
    setl_proc_info: str | None = None


class OutputSettle(BaseModel):
    """2206/2207/2303/2304/2208/2305/5203 output."""

    model_config = _OUT
    setlinfo: SetlInfo
    setldetail: list[SetlDetailRow] = Field(default_factory=list)


class SignInOutB(BaseModel):
    model_config = _OUT
    sign_no: Code = Field(min_length=1, description="签到编号")
    sign_time: str | None = Field(default=None, description="签到时间")


class Output9001(BaseModel):
    model_config = _OUT
    signinoutb: SignInOutB


class StmtInfo(BaseModel):
    model_config = _OUT
    setl_optins: Code | None = None
    stmt_rslt: Code = Field(description="对账结果: 0 平 / 1 不平 (likely; reference gateway.md §3.5)")
    stmt_rslt_dscr: str | None = None


class Output3201(BaseModel):
    model_config = _OUT
    stmtinfo: StmtInfo


class BaseInfo(BaseModel):
    model_config = _OUT
    psn_no: Code
    psn_cert_type: Code | None = None
    certno: str | None = None
    psn_name: str | None = None
    gend: Code | None = None
    naty: Code | None = None
    brdy: str | None = None
    age: Number | None = None


class InsuInfo(BaseModel):
    model_config = _OUT
    insutype: Code
    psn_type: Code | None = None
    balc: Money | None = None
    psn_insu_stas: Code | None = None
    psn_insu_date: str | None = None
    paus_insu_date: str | None = None
    cvlserv_flag: Code | None = None
    insuplc_admdvs: Code | None = None
    emp_name: str | None = None


class Output1101(BaseModel):
    """1101 人员信息获取 output (observed in public integration code, not in the reference)."""

    model_config = _OUT
    baseinfo: BaseInfo
    insuinfo: list[InsuInfo] = Field(default_factory=list)
    idetinfo: list[dict[str, Any]] = Field(default_factory=list)


class TrtInfo(BaseModel):
    model_config = _OUT
    psn_no: Code | None = None
    trt_chk_type: Code | None = None
    fund_pay_type: Code | None = None
    trt_enjymnt_flag: Code = Field(description="基金款项待遇享受标志: 1 享受")
    begndate: str | None = None
    enddate: str | None = None
    trt_chk_rslt: str | None = None


class Output2001(BaseModel):
    """2001 人员待遇享受检查 output (observed, not in the reference)."""

    model_config = _OUT
    trtinfo: list[TrtInfo] = Field(default_factory=list)


class CumInfo(BaseModel):
    model_config = _OUT
    insutype: Code | None = None
    year: Code | None = None
    cum_ym: Code | None = None
    cum_type_code: Code = Field(description="累计类别代码 (regional)")
    cum: Number = Field(description="累计值")


class Output5206(BaseModel):
    """5206 人员累计信息查询 output (observed, not in the reference)."""

    model_config = _OUT
    cuminfo: list[CumInfo] = Field(default_factory=list)


class OutputAny(BaseModel):
    """An output whose fields no source lists (2601): any object, or nothing."""

    model_config = ConfigDict(extra="allow")


# --------------------------------------------------------------------------- inputs

class FeeDetailIn(BaseModel):
    """One 2204/2301 `feedetail` line (national-interface.md §1.1)."""

    model_config = _IN
    feedetl_sn: str = Field(max_length=30)
    mdtrt_id: str = Field(max_length=30)
    psn_no: str = Field(max_length=30)
    chrg_bchno: str = Field(max_length=30)
    dise_codg: str | None = None
    rxno: str | None = None
    rx_circ_flag: str = "0"
    fee_ocur_time: str
    med_list_codg: str = Field(max_length=50)
    medins_list_codg: str = Field(max_length=150)
    det_item_fee_sumamt: Money
    cnt: Number
    pric: Number
    sin_dos_dscr: str | None = None
    used_frqu_dscr: str | None = None
    prd_days: Number | None = None
    medc_way_dscr: str | None = None
    bilg_dept_codg: str | None = None
    bilg_dept_name: str | None = None
    bilg_dr_codg: str | None = None
    bilg_dr_name: str | None = None
    acord_dept_codg: str | None = None
    acord_dept_name: str | None = None
    orders_dr_code: str | None = None
    orders_dr_name: str | None = None
    hosp_appr_flag: str | None = None
    tcmdrug_used_way: str | None = None
    etip_flag: str | None = None
    etip_hosp_code: str | None = None
    dscg_tkdrug_flag: str | None = None
    matn_fee_flag: str | None = None
    memo: str | None = None
    exp_content: str | None = None


class Input2204(BaseModel):
    model_config = _IN
    feedetail: list[FeeDetailIn] = Field(min_length=1)


class _Data2206(BaseModel):
    model_config = _IN
    psn_no: str
    mdtrt_cert_type: str
    mdtrt_cert_no: str
    med_type: str
    medfee_sumamt: Money
    psn_setlway: str
    mdtrt_id: str
    chrg_bchno: str
    acct_used_flag: str
    insutype: str


class Input2206(BaseModel):
    model_config = _IN
    data: _Data2206


class _Data2207(_Data2206):
    invono: str | None = None
    fulamt_ownpay_amt: Money
    overlmt_selfpay: Money
    preselfpay_amt: Money
    inscp_scp_amt: Money


class Input2207(BaseModel):
    model_config = _IN
    data: _Data2207


class _Data2303(BaseModel):
    model_config = _IN
    psn_no: str
    mdtrt_cert_type: str
    mdtrt_cert_no: str
    medfee_sumamt: Money
    psn_setlway: str
    mdtrt_id: str
    insutype: str
    acct_used_flag: str
    mid_setl_flag: str = "0"


class Input2303(BaseModel):
    model_config = _IN
    data: _Data2303


class _Data2304(_Data2303):
    invono: str | None = None
    fulamt_ownpay_amt: Money
    overlmt_selfpay: Money
    preselfpay_amt: Money
    inscp_scp_amt: Money


class Input2304(BaseModel):
    model_config = _IN
    data: _Data2304


class _Data2208(BaseModel):
    model_config = _IN
    setl_id: str
    mdtrt_id: str
    psn_no: str
    exp_content: str | None = None


class Input2208(BaseModel):
    """2208 门诊结算撤销 / 2305 住院结算撤销 (gateway.md §3.2)."""

    model_config = _IN
    data: _Data2208


class _Data2601(BaseModel):
    model_config = _IN
    psn_no: str
    omsgid: str = Field(max_length=30, description="原发送方报文ID")
    oinfno: str = Field(max_length=6, description="原交易编号")


class Input2601(BaseModel):
    model_config = _IN
    data: _Data2601


class _SignIn(BaseModel):
    model_config = _IN
    opter_no: str = Field(max_length=20)
    mac: str = Field(max_length=20)
    ip: str = Field(max_length=20)


class Input9001(BaseModel):
    model_config = _IN
    signIn: _SignIn


class _Data3201(BaseModel):
    model_config = _IN
    insutype: str
    clr_type: str
    setl_optins: str
    stmt_begndate: str
    stmt_enddate: str
    medfee_sumamt: Money
    fund_pay_sumamt: Money
    acct_pay: Money
    fixmedins_setl_cnt: int = Field(ge=0)
    refd_setl_flag: str = "0"


class Input3201(BaseModel):
    model_config = _IN
    data: _Data3201


class _Data5203(BaseModel):
    model_config = _IN
    psn_no: str
    setl_id: str
    mdtrt_id: str


class Input5203(BaseModel):
    model_config = _IN
    data: _Data5203


class _Data1101(BaseModel):
    model_config = _IN
    mdtrt_cert_type: str
    mdtrt_cert_no: str
    card_sn: str | None = None
    begntime: str | None = None
    psn_cert_type: str | None = None
    certno: str | None = None
    psn_name: str | None = None


class Input1101(BaseModel):
    model_config = _IN
    data: _Data1101


class _Data2001(BaseModel):
    model_config = _IN
    psn_no: str
    insutype: str
    fixmedins_code: str
    med_type: str
    begntime: str
    endtime: str | None = None
    dise_codg: str | None = None
    dise_name: str | None = None


class Input2001(BaseModel):
    model_config = _IN
    data: _Data2001


class _Data5206(BaseModel):
    model_config = _IN
    psn_no: str
    cum_ym: str | None = None


class Input5206(BaseModel):
    model_config = _IN
    data: _Data5206


# --------------------------------------------------------------------------- registry

#: default transaction number → (input model, output model, title)
TRANSACTIONS: dict[str, tuple[type[BaseModel], type[BaseModel], str]] = {
    "9001": (Input9001, Output9001, "签到"),
    "1101": (Input1101, Output1101, "人员信息获取"),
    "2001": (Input2001, Output2001, "人员待遇享受检查"),
    "5206": (Input5206, Output5206, "人员累计信息查询"),
    "2204": (Input2204, Output2204, "门诊费用明细信息上传"),
    "2301": (Input2204, Output2204, "住院费用明细上传"),
    "2206": (Input2206, OutputSettle, "门诊预结算"),
    "2207": (Input2207, OutputSettle, "门诊结算"),
    "2303": (Input2303, OutputSettle, "住院预结算"),
    "2304": (Input2304, OutputSettle, "住院结算"),
    "2208": (Input2208, OutputSettle, "门诊结算撤销"),
    "2305": (Input2208, OutputSettle, "住院结算撤销"),
    "2601": (Input2601, OutputAny, "冲正"),
    "5203": (Input5203, OutputSettle, "结算信息查询"),
    "3201": (Input3201, Output3201, "对总账"),
}

#: role (settings.Transactions field) → default infno, to map configured numbers onto models
ROLE_DEFAULT = {"signin": "9001", "person": "1101", "eligibility": "2001", "cumulative": "5206",
                "fee_upload_outpatient": "2204", "presettle_outpatient": "2206", "settle_outpatient": "2207",
                "refund_outpatient": "2208", "fee_upload_inpatient": "2301", "presettle_inpatient": "2303",
                "settle_inpatient": "2304", "refund_inpatient": "2305", "reversal": "2601",
                "settlement_query": "5203", "reconcile": "3201"}

#: settlement outputs that must name their settlement
_NEEDS_SETL_ID = frozenset({"2207", "2304", "2208", "2305", "5203"})


def _loc(loc: tuple) -> str:
    out = "output"
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}"
    return out


def parse_output(infno: str, output: Any, *, model_infno: str | None = None) -> tuple[Any, tuple[str, str] | None]:
    """Read `output` of transaction `infno` → (model, None) or (None, (field path, message)).

    `model_infno` maps a configured transaction number onto the default one whose shape it has.
    """
    key = model_infno or infno
    spec = TRANSACTIONS.get(key)
    if spec is None:
        return output, None
    model = spec[1]
    if model is OutputAny:
        if output is None or isinstance(output, (dict, str)):
            return output, None
        return None, ("output", f"expected an object, found {_kind(output)}")
    if output is None:
        return None, ("output", "the answer has no output")
    if not isinstance(output, dict):
        return None, ("output", f"expected an object, found {_kind(output)}")
    try:
        m = model.model_validate(output)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        where = _loc(tuple(err.get("loc", ())))
        msg = err.get("msg", "invalid")
        if err.get("type") == "missing":
            msg = "missing"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        more = len(e.errors()) - 1
        return None, (where, f"{where}: {msg}" + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""))
    if key in _NEEDS_SETL_ID and isinstance(m, OutputSettle) and not m.setlinfo.setl_id:
        return None, ("output.setlinfo.setl_id", "output.setlinfo.setl_id: missing (a settlement answer must name "
                                                 "its settlement)")
    return m, None


# --------------------------------------------------------------------------- builders

def _d2(v: Any) -> Decimal:
    """An amount from a claim (number or text) as an exact 2-decimal Decimal."""
    return fen_decimal(scaled_int(repr(v) if isinstance(v, float) else v, 2))


def _dn(v: Any, places: int) -> Decimal:
    n = scaled_int(repr(v) if isinstance(v, float) else v, places)
    return plain(Decimal(n).scaleb(-places)) if n else Decimal(0)


def medfee_sumamt(claim: Mapping[str, Any]) -> Decimal:
    return fen_decimal(sum(scaled_int(repr(x) if isinstance(x, float) else x, 2)
                           for x in (ln["det_item_fee_sumamt"] for ln in claim["feedetail"])))


_LINE_COPY = ("dise_codg", "rxno", "sin_dos_dscr", "used_frqu_dscr", "medc_way_dscr", "bilg_dept_codg",
              "bilg_dept_name", "bilg_dr_codg", "bilg_dr_name", "acord_dept_codg", "acord_dept_name",
              "orders_dr_code", "orders_dr_name", "hosp_appr_flag", "tcmdrug_used_way", "etip_flag",
              "etip_hosp_code", "dscg_tkdrug_flag", "matn_fee_flag", "memo", "exp_content")


def build_feedetail(claim: Mapping[str, Any], *, mdtrt_id: str, psn_no: str, chrg_bchno: str) -> dict[str, Any]:
    """2204 / 2301 input: one `feedetail` line per claim line, in the claim's order. The HIS sends no
    category, ratio or ceiling — the platform fills those in (§1.1)."""
    lines = []
    for ln in claim["feedetail"]:
        code = ln.get("med_list_codg") or ln.get("medins_list_codg")
        out: dict[str, Any] = {
            "feedetl_sn": ln["feedetl_sn"], "mdtrt_id": mdtrt_id, "psn_no": psn_no,
            "chrg_bchno": ln.get("chrg_bchno") or chrg_bchno, "rx_circ_flag": ln.get("rx_circ_flag") or "0",
            "fee_ocur_time": ln.get("fee_ocur_time") or _datetime(claim.get("setl_time")),
            "med_list_codg": code, "medins_list_codg": ln.get("medins_list_codg") or code,
            "det_item_fee_sumamt": _d2(ln["det_item_fee_sumamt"]), "cnt": _dn(ln["cnt"], 4),
            "pric": _dn(ln["pric"], 6),
        }
        if ln.get("prd_days") is not None:
            out["prd_days"] = _dn(ln["prd_days"], 4)
        for k in _LINE_COPY:
            if ln.get(k) is not None:
                out[k] = ln[k]
        lines.append(out)
    return {"feedetail": lines}


def _datetime(v: Any) -> str:
    s = str(v or "").strip()
    return s if len(s) >= 19 else (s[:10] + " 00:00:00" if s else "")


def _visit(claim: Mapping[str, Any], ids: Mapping[str, str], defaults: Any) -> dict[str, Any]:
    return {
        "psn_no": ids["psn_no"],
        "mdtrt_cert_type": claim.get("mdtrt_cert_type") or defaults.mdtrt_cert_type,
        "mdtrt_cert_no": claim.get("mdtrt_cert_no") or claim.get("certno") or ids["psn_no"],
        "med_type": claim["med_type"],
        "medfee_sumamt": medfee_sumamt(claim),
        "psn_setlway": claim.get("psn_setlway") or defaults.psn_setlway,
        "mdtrt_id": ids["mdtrt_id"],
        "chrg_bchno": ids["chrg_bchno"],
        "acct_used_flag": claim.get("acct_used_flag") or "0",
        "insutype": claim["insutype"],
    }


def build_presettle(claim: Mapping[str, Any], ids: Mapping[str, str], defaults: Any, *, inpatient: bool) -> dict:
    """2206 门诊预结算 / 2303 住院预结算 input."""
    v = _visit(claim, ids, defaults)
    if inpatient:
        v.pop("chrg_bchno")
        v.pop("med_type")
        v["mid_setl_flag"] = claim.get("mid_setl_flag") or "0"
    return {"data": v}


def build_settle(claim: Mapping[str, Any], ids: Mapping[str, str], defaults: Any, pre: SetlInfo, *,
                 inpatient: bool) -> dict:
    """2207 门诊结算 / 2304 住院结算 input: the visit plus the pre-settlement answer's totals (§2.1:
    real HIS copy the 2206 output into the 2207 input)."""
    data = build_presettle(claim, ids, defaults, inpatient=inpatient)["data"]
    data["medfee_sumamt"] = pre.medfee_sumamt
    data["invono"] = claim.get("invono") or ""
    data["fulamt_ownpay_amt"] = pre.fulamt_ownpay_amt
    data["overlmt_selfpay"] = pre.overlmt_selfpay
    data["preselfpay_amt"] = pre.preselfpay_amt
    data["inscp_scp_amt"] = pre.inscp_scp_amt
    return {"data": data}


def build_refund(psn_no: str, mdtrt_id: str, setl_id: str) -> dict:
    """2208 门诊结算撤销 / 2305 住院结算撤销: needs the setl_id of a settlement *answer*."""
    return {"data": {"setl_id": setl_id, "mdtrt_id": mdtrt_id, "psn_no": psn_no}}


def build_reversal(psn_no: str, omsgid: str, oinfno: str) -> dict:
    """2601 冲正: the msgid and infno of the original request (gateway.md §3.1)."""
    return {"data": {"psn_no": psn_no, "omsgid": omsgid, "oinfno": oinfno}}


def build_signin(opter_no: str, mac: str, ip: str) -> dict:
    """9001 签到: node `signIn`, not `data` (gateway.md §3.4)."""
    return {"signIn": {"opter_no": opter_no, "mac": mac, "ip": ip}}


def build_settlement_query(psn_no: str, setl_id: str, mdtrt_id: str) -> dict:
    return {"data": {"psn_no": psn_no, "setl_id": setl_id, "mdtrt_id": mdtrt_id}}


def build_reconcile(*, insutype: str, clr_type: str, setl_optins: str, begndate: str, enddate: str,
                    medfee_sumamt: Decimal, fund_pay_sumamt: Decimal, acct_pay: Decimal, count: int,
                    refd_setl_flag: str = "0") -> dict:
    """3201 对总账 (gateway.md §3.5)."""
    return {"data": {"insutype": insutype, "clr_type": clr_type, "setl_optins": setl_optins,
                     "stmt_begndate": begndate, "stmt_enddate": enddate, "medfee_sumamt": medfee_sumamt,
                     "fund_pay_sumamt": fund_pay_sumamt, "acct_pay": acct_pay, "fixmedins_setl_cnt": count,
                     "refd_setl_flag": refd_setl_flag}}


def build_person_query(*, mdtrt_cert_type: str, mdtrt_cert_no: str, psn_cert_type: str | None = None,
                       certno: str | None = None, psn_name: str | None = None, begntime: str | None = None) -> dict:
    d: dict[str, Any] = {"mdtrt_cert_type": mdtrt_cert_type, "mdtrt_cert_no": mdtrt_cert_no, "card_sn": "",
                         "begntime": begntime or "", "psn_cert_type": psn_cert_type or "", "certno": certno or "",
                         "psn_name": psn_name or ""}
    return {"data": d}


def build_eligibility(*, psn_no: str, insutype: str, fixmedins_code: str, med_type: str, begntime: str,
                      endtime: str | None = None, dise_codg: str | None = None) -> dict:
    d: dict[str, Any] = {"psn_no": psn_no, "insutype": insutype, "fixmedins_code": fixmedins_code,
                         "med_type": med_type, "begntime": begntime}
    if endtime:
        d["endtime"] = endtime
    if dise_codg:
        d["dise_codg"] = dise_codg
    return {"data": d}


def build_cumulative(*, psn_no: str, cum_ym: str | None = None) -> dict:
    d: dict[str, Any] = {"psn_no": psn_no}
    if cum_ym:
        d["cum_ym"] = cum_ym
    return {"data": d}


# --------------------------------------------------------------------------- visit identity

def visit_ids(claim: Mapping[str, Any], *, require_mdtrt_id: bool = False) -> dict[str, str]:
    """psn_no, mdtrt_id, chrg_bchno and the visit key one submission is locked on.

    The real platform issues mdtrt_id at registration (2201/2401, not part of this gateway); a claim
    without one gets a local id derived from the visit's content ("L" + 29 hex digits) — good for the
    simulator, refused with `require_mdtrt_id` for a real platform.
    """
    psn_no = claim.get("psn_no")
    if not isinstance(psn_no, str) or not psn_no.strip():
        raise ValueError("the claim has no psn_no (人员编号, from 1101): the platform cannot settle without it")
    mdtrt_id = claim.get("mdtrt_id")
    derived = False
    if not mdtrt_id:
        if require_mdtrt_id:
            raise ValueError("the claim has no mdtrt_id (就诊ID from 2201/2401 registration)")
        basis = json.dumps({"psn_no": psn_no, "insuplc": claim.get("insuplc_admdvs"),
                            "setl_time": claim.get("setl_time"), "begntime": claim.get("begntime"),
                            "lines": sorted(str(ln.get("feedetl_sn")) for ln in claim.get("feedetail", []))},
                           sort_keys=True, ensure_ascii=False)
        mdtrt_id = "L" + hashlib.sha256(basis.encode("utf-8")).hexdigest()[:29]
        derived = True
    chrg_bchno = claim.get("chrg_bchno") or mdtrt_id[-30:]
    return {"psn_no": psn_no, "mdtrt_id": str(mdtrt_id), "chrg_bchno": str(chrg_bchno),
            "visit_key": f"{psn_no}/{mdtrt_id}", "derived_mdtrt_id": "1" if derived else "0"}


# --------------------------------------------------------------------------- person → claim

def fill_claim(claim: Mapping[str, Any], person: Output1101 | None = None, *, cumulative: Output5206 | None = None,
               eligibility: Output2001 | None = None, accumulator_map: Mapping[str, str] | None = None,
               retired_psn_types: tuple[str, ...] = ()) -> tuple[dict[str, Any], list[str]]:
    """The claim the engine settles, with the person's side taken from the platform (1101 / 2001 /
    5206), so an estimate uses the figures the platform will use. Returns (claim, notes).

    - 1101: psn_no, gender, birth date, and from the insurance row matching the claim's `insutype`
      (else the first row in force, `psn_insu_stas` 1 and not paused): insutype, psn_type,
      insuplc_admdvs, cvlserv_flag, balc; `insutype_retr_flag` when psn_type is listed as retired;
    - 5206: each `cum_type_code` mapped to a pack accumulator (regional codes, setting
      person.accumulators) for the settlement year, summed per accumulator;
    - 2001: a fund the person does not enjoy (`trt_enjymnt_flag` ≠ 1) is a note, not a refusal —
      the engine's own eligibility conditions decide.
    """
    c = dict(claim)
    notes: list[str] = []
    if person is not None:
        b = person.baseinfo
        c["psn_no"] = b.psn_no
        for k in ("gend", "brdy", "psn_cert_type", "certno", "psn_name", "naty"):
            v = getattr(b, k)
            if v not in (None, ""):
                c[k] = v
        if c.get("brdy"):
            c.pop("age", None)
        elif b.age is not None:
            c["age"] = int(b.age)  # 1101 gives years with a fraction (35.1): the engine wants whole years
        rows = person.insuinfo
        want = claim.get("insutype")
        day = str(claim.get("setl_time") or "")[:10]
        pick = next((r for r in rows if r.insutype == want), None) if want else None
        if pick is None:
            pick = next((r for r in rows if (r.psn_insu_stas in (None, "1"))
                         and (not r.paus_insu_date or (day and r.paus_insu_date[:10] > day))), None)
        if pick is None:
            notes.append("1101 lists no insurance in force" + (f" for insutype {want}" if want else ""))
        else:
            c["insutype"] = pick.insutype
            if pick.psn_type:
                c["psn_type"] = pick.psn_type
                if pick.psn_type in retired_psn_types:
                    c["insutype_retr_flag"] = "1"
            if pick.insuplc_admdvs:
                c["insuplc_admdvs"] = pick.insuplc_admdvs
            if pick.cvlserv_flag in ("0", "1"):
                c["cvlserv_flag"] = pick.cvlserv_flag
            if pick.balc is not None:
                c["balc"] = pick.balc
            if pick.psn_insu_stas not in (None, "1"):
                notes.append(f"insurance {pick.insutype} has status {pick.psn_insu_stas} (1 = 参保缴费)")
    if cumulative is not None:
        amap = accumulator_map or {}
        year = str(c.get("setl_time") or "")[:4]
        acc: dict[str, Decimal] = {}
        unmapped: set[str] = set()
        for r in cumulative.cuminfo:
            if r.insutype and c.get("insutype") and r.insutype != c["insutype"]:
                continue
            ryear = (r.year or (r.cum_ym or "")[:4])
            if year and ryear and ryear != year:
                continue
            name = amap.get(r.cum_type_code)
            if name is None:
                unmapped.add(r.cum_type_code)
                continue
            acc[name] = acc.get(name, Decimal(0)) + r.cum
        if acc:
            merged = dict(c.get("accumulators") or {})
            merged.update({k: v for k, v in acc.items()})
            c["accumulators"] = merged
        if unmapped:
            notes.append("5206 codes without a pack accumulator (setting person.accumulators): "
                         + ", ".join(sorted(unmapped)))
    if eligibility is not None:
        for t in eligibility.trtinfo:
            if t.trt_enjymnt_flag != "1":
                notes.append(f"2001: fund {t.fund_pay_type or '?'} not enjoyed ({t.trt_chk_rslt or t.trt_enjymnt_flag})")
    return c, notes


# --------------------------------------------------------------------------- schemas

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "national"


def render_schemas() -> dict[str, str]:
    """schemas/national/<infno>.input.schema.json and .output.schema.json, plus the envelope."""
    out: dict[str, str] = {}
    for infno, (inp, outp, title) in TRANSACTIONS.items():
        for kind, model, mode in (("input", inp, "validation"), ("output", outp, "validation")):
            schema = model.model_json_schema(mode=mode)
            schema = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                      "title": f"{infno} {title} — {kind}", **schema}
            out[f"{infno}.{kind}.schema.json"] = json.dumps(schema, ensure_ascii=False, indent=2) + "\n"
    out["envelope.request.schema.json"] = json.dumps(_request_envelope_schema(), ensure_ascii=False, indent=2) + "\n"
    out["envelope.response.schema.json"] = json.dumps(_response_envelope_schema(), ensure_ascii=False,
                                                      indent=2) + "\n"
    return out


def _request_envelope_schema() -> dict:
    s = {"type": "string"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Request envelope (national-interface.md §3.1)",
        "type": "object",
        "required": ["infno", "msgid", "mdtrtarea_admvs", "recer_sys_code", "infver", "opter_type", "opter",
                     "opter_name", "inf_time", "fixmedins_code", "fixmedins_name", "input"],
        "properties": {
            "infno": {"type": "string", "pattern": "^[0-9]{4}[A-Z]?$", "description": "交易编号"},
            "msgid": {"type": "string", "pattern": "^[0-9A-Za-z]{12}[0-9]{14}[0-9]{4}$",
                      "description": "发送方报文ID: fixmedins_code(12) + yyyyMMddHHmmss + sequence(4)"},
            "mdtrtarea_admvs": {"type": "string", "pattern": "^[0-9]{6}$", "description": "就医地医保区划"},
            "insuplc_admdvs": {"type": "string", "pattern": "^([0-9]{6})?$", "description": "参保地医保区划"},
            "recer_sys_code": {"type": "string", "maxLength": 10, "description": "接收方系统代码"},
            "dev_no": s, "dev_safe_info": s, "cainfo": s, "signtype": s,
            "infver": {"type": "string", "maxLength": 6, "description": "接口版本号"},
            "opter_type": {"type": "string", "enum": ["1", "2", "3"], "description": "经办人类别"},
            "opter": {"type": "string", "maxLength": 30}, "opter_name": {"type": "string", "maxLength": 50},
            "inf_time": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"},
            "fixmedins_code": {"type": "string", "pattern": "^[0-9A-Za-z]{12}$"},
            "fixmedins_name": {"type": "string"},
            "sign_no": {"type": "string", "maxLength": 30, "description": "交易签到流水号 (9001)"},
            "input": {"type": ["object", "string"], "description": "交易输入 (a string when encrypted)"},
        },
    }


def _response_envelope_schema() -> dict:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Response envelope (national-interface.md §3.2; gateway.md §1.1)",
        "type": "object",
        "required": ["infcode"],
        "properties": {
            "infcode": {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": r"^\s*-?[0-9]+\s*$"}],
                        "description": "交易状态码: 0 success, as a number or as text"},
            "inf_refmsgid": {"type": ["string", "null"], "description": "接收方报文ID: 区划(6)+时间(14)+流水(10)"},
            "refmsg_time": {"type": ["string", "null"]}, "respond_time": {"type": ["string", "null"]},
            "err_msg": {"type": ["string", "null"]}, "warn_msg": {"type": ["string", "null"]},
            "enctype": {"type": ["string", "null"]}, "signtype": {"type": ["string", "null"]},
            "cainfo": {"type": ["string", "null"]},
            "output": {"type": ["object", "string", "null"]},
        },
    }


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        p = directory / name
        p.write_text(text, encoding="utf-8")
        written.append(p)
    return written


if __name__ == "__main__":  # python -m rules_engine.gateway.payloads --write-schemas
    if "--write-schemas" in sys.argv:
        for p in write_schemas():
            print(f"wrote {p}")
    else:
        print(__doc__)
