"""Short Chinese summaries a chat bot can show beside the national-field answers.

Never a name or an ID number: the person is "您" (the chat window knows who they are); amounts
are yuan with two decimals; codes are shown with their names where the reference gives them.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterable, Mapping

from .settings import TYPE_NAMES

INSUTYPE = {"310": "职工基本医疗保险", "320": "公务员医疗补助", "330": "大额医疗费用补助", "340": "离休人员医疗保障",
            "390": "城乡居民基本医疗保险", "391": "城镇居民基本医疗保险", "392": "城乡居民大病医疗保险", "510": "生育保险"}
MED_TYPE = {"11": "普通门诊", "12": "门诊挂号", "13": "急诊", "14": "门诊慢特病", "19": "意外伤害门诊", "21": "普通住院",
            "23": "转外诊治住院", "24": "急诊转住院", "28": "日间手术", "41": "药店购药", "51": "生育门诊", "52": "生育住院"}


def yuan(v: Any) -> str:
    if v is None:
        return "—"
    d = v if isinstance(v, Decimal) else Decimal(str(v))
    return f"{d:,.2f} 元"


def insurance(output: Mapping[str, Any]) -> str:
    rows = output.get("insuinfo") or []
    if not rows:
        return "平台未返回您的参保记录。"
    parts = []
    for r in rows:
        stas = "参保缴费中" if str(r.get("psn_insu_stas") or "1") == "1" else f"参保状态 {r.get('psn_insu_stas')}"
        bal = f"，个人账户余额 {yuan(r.get('balc'))}" if r.get("balc") is not None else ""
        parts.append(f"{INSUTYPE.get(str(r.get('insutype')), '险种 ' + str(r.get('insutype')))}"
                     f"（参保地 {r.get('insuplc_admdvs') or '?'}，人员类别 {r.get('psn_type') or '?'}，{stas}{bal}）")
    return "您参加了：" + "；".join(parts) + "。"


def eligibility(output: Mapping[str, Any], *, med_type: str, day: str) -> str:
    rows = output.get("trtinfo") or []
    what = f"{day} {MED_TYPE.get(med_type, '医疗类别 ' + med_type)}（{med_type}）"
    if not rows:
        return f"{what}：平台未返回待遇检查结果。"
    ok = [r for r in rows if str(r.get("trt_enjymnt_flag")) == "1"]
    if ok:
        return f"{what}：可以享受医保待遇（{'；'.join(str(r.get('trt_chk_rslt') or r.get('fund_pay_type')) for r in ok)}）。"
    return f"{what}：暂不能享受医保待遇 —— {'；'.join(str(r.get('trt_chk_rslt') or '未说明原因') for r in rows)}。"


def chronic(rows: Iterable[Mapping[str, Any]], fields: Any) -> str:
    rows = list(rows)
    if not rows:
        return "您没有门诊慢特病备案。"
    return "您的门诊慢特病备案：" + "；".join(
        f"{r.get(fields.name) or r.get(fields.code)}（{r.get(fields.begndate) or '?'} 至 {r.get(fields.enddate) or '长期'}）"
        for r in rows) + "。"


def filings(records: Iterable[Any]) -> str:
    recs = list(records)
    live = [f for f in recs if not f.revoked]
    if not recs:
        return "您没有异地就医备案。"
    text = "；".join(f"{TYPE_NAMES.get(f.type, f.type)}，就医地 {f.admdvs}，{f.begndate} 至 {f.enddate or '长期'}"
                    for f in live) or "无有效备案"
    gone = len(recs) - len(live)
    return f"您的异地就医备案：{text}" + (f"（另有 {gone} 条已撤销）" if gone else "") + "。"


def filed(rec: Any) -> str:
    return (f"已为您办理{TYPE_NAMES.get(rec.type, rec.type)}备案：就医地 {rec.admdvs}，{rec.begndate} 至 "
            f"{rec.enddate or '长期'}，备案号 {rec.id}。")


def benefits(estimates: list[Mapping[str, Any]], amount: str) -> str:
    parts = []
    for e in estimates:
        if e.get("error"):
            parts.append(f"{MED_TYPE.get(e['med_type'], e['med_type'])}：无法估算（{e['error']}）")
            continue
        caps = [c for lay in e["layers"] for c in lay["caps"]]
        cap_text = ("，距封顶线还有 " + "、".join(yuan(c["remaining"]) for c in caps)) if caps else ""
        ded = [lay for lay in e["layers"] if lay.get("deductible_remaining") not in (None, "0.00")]
        ded_text = (f"，起付线尚余 {yuan(ded[0]['deductible_remaining'])}") if ded else ""
        parts.append(f"{MED_TYPE.get(e['med_type'], e['med_type'])}：再花 {amount} 元政策范围内费用，"
                     f"医保约可报销 {yuan(e['fund_pay_sumamt'])}{ded_text}{cap_text}")
    return "（估算，由本系统规则包按您的年度累计计算，以医保结算为准）" + "；".join(parts) + "。"


def settlement(info: Mapping[str, Any], filing: Mapping[str, Any] | None, cross: bool) -> str:
    f = (f"按{TYPE_NAMES.get(filing['type'], filing['type'])}备案（{filing['begndate']} 至 {filing.get('enddate') or '长期'}）"
         if filing else ("未备案（按未备案规则）" if cross else "本地就医"))
    return (f"{f}结算：总费用 {yuan(info.get('medfee_sumamt'))}，医保基金支付 {yuan(info.get('fund_pay_sumamt'))}，"
            f"个人账户 {yuan(info.get('acct_pay'))}，现金 {yuan(info.get('psn_cash_pay'))}。")


def order(o: Mapping[str, Any]) -> str:
    a = o.get("amounts") or {}
    states = {"PAID": "已支付", "REFUNDED": "已退款", "REVOKED": "已撤销", "FAILED": "未支付", "UPLOADED": "待支付",
              "UNKNOWN": "支付结果待确认", "REFUND_UNKNOWN": "退款结果待确认", "PAYING": "支付中", "REFUNDING": "退款中"}
    return (f"医保电子凭证订单 {o.get('order')}：{states.get(str(o.get('state')), o.get('state'))}；费用 {yuan(a.get('feeSumamt'))}，"
            f"医保基金 {yuan(a.get('fundPay'))}，个人账户 {yuan(a.get('psnAcctPay'))}，自付现金 {yuan(a.get('ownPayAmt'))}。")
