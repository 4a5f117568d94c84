"""The platform simulator, extended for member services: persons with insurance records and
accounts, chronic-disease (慢特病) filings, cross-region filings (2501 / 2502 / the filing query), and
a 移动支付 payment platform on a second loopback port speaking scheme B.

    sim = MemberPlatformSimulator(engine=engine, payment_security=platform_scheme_b).start()
    sim.add_person("P1", insurance=[{"insutype": "310", "insuplc_admdvs": "990012", "balc": "800.00"}])
    token = sim.issue_ec_token("P1")          # what the person's 医保电子凭证 app would hand over
    sim.url, sim.payment_url

Built on `rules_engine.gateway.simulator.PlatformSimulator` by subclassing (its transactions are
methods `_t<infno>`; the numbers of the new ones come from the member settings, so a region that
renumbers them is simulated as configured). The ledger decides everything the platform decides:

- **1101** answers from the person record (insurance rows with their status, dates and balance);
- **2001** says whether a fund applies on a date for a med_type: insured in that insutype, in force
  on the date, not paused; 门诊慢特病 (med_type 14) only with a chronic filing in force;
- **5301** lists the person's chronic-disease filings;
- **2501** records a filing — refused (infcode −2) for an unknown person, type or region, an end
  before its start, or an overlap with a filing of the same type in force; **2502** revokes one;
  the filing query lists them (revoked ones with vali_flag 0);
- settlements (2206/2207 …, and e-voucher payments) use the filing *the platform* holds for the
  visit's date and place — not what the claim says — exactly as the member service picks it
  (filings.pick), so a revoked filing stops changing the money the moment it is revoked;
- **移动支付** (scheme B, `payment_url`): fee upload creates an order priced by the engine with the
  person's accumulators and account; the payment order books it (accumulators and account move, a
  second payment of the order is refused); refund undoes it (idempotent per refund serial); the
  status query reports it; revocation cancels an unpaid order; after a payment the simulator can
  post the signed result notification to `notify_url`.

Faults for the payment platform (`inject_payment(role, kind)`): `drop` (processed, connection closed
without an answer), `http_500` (not processed), `delay` (processed, answer after `seconds`),
`bad_signature` (processed, the answer's signature broken).
"""
from __future__ import annotations

import itertools
import json
import secrets
import socket
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Mapping

from ..gateway.security import SecurityError, compact_json, parse_json_body
from ..gateway.simulator import PlatformSimulator, Settled, SimError, _dec
from ..money import fen_decimal
from .filings import FilingRecord, iso_date, pick
from .settings import FILEABLE, MemberSettings

PAY_FAULTS = ("drop", "http_500", "delay", "bad_signature")
_MED_FUND = {"310": ("310100", "城镇职工基本医疗保险统筹基金"), "390": ("390100", "城乡居民基本医疗保险基金")}


class MemberPlatformSimulator(PlatformSimulator):
    def __init__(self, regions: Any = None, *, settings: MemberSettings | None = None, payment_security: Any = None,
                 payment_port: int = 0, notify_url: str | None = None, institutions: Mapping[str, str] | None = None,
                 **kw: Any):
        super().__init__(regions, **kw)
        self.msettings = settings or MemberSettings()
        self.payment_security = payment_security
        self.payment_port = payment_port
        self.notify_url = notify_url
        self.institutions = dict(institutions or {})   # fixmedins_code → hosp_lv
        self.filings: dict[str, FilingRecord] = {}
        self.filing_msgids: dict[str, str] = {}
        self.chronic: dict[str, list[dict]] = {}
        self.ec_tokens: dict[str, str] = {}
        self.orders: dict[str, dict] = {}
        self.notifications: list[dict] = []
        self.pay_faults: list[dict] = []
        self.pay_received: list[dict] = []
        self._fseq = itertools.count(1)
        self._pay_server: ThreadingHTTPServer | None = None
        tr = self.msettings.transactions
        for infno, fn in ((tr.chronic_query, self._chronic_query), (tr.filing, self._file),
                          (tr.filing_revoke, self._revoke), (tr.filing_query, self._filing_query)):
            setattr(self, f"_t{infno}", fn)

    # ------------------------------------------------------------------ ledger
    def add_person(self, psn_no: str, *, certno: str | None = None, psn_name: str | None = None, gend: str = "1",
                   brdy: str | None = None, age: int | None = None, insurance: list[Mapping[str, Any]] = (),
                   accumulators: Mapping[str, Mapping[str, Any]] | None = None,
                   chronic: list[Mapping[str, Any]] = ()) -> None:
        """A person record as the platform holds it (independent of any consent: the platform knows
        its insured; the member service decides whom it may ask about)."""
        with self._mu:
            p = self.persons.setdefault(psn_no, {"psn_no": psn_no, "insu": {}, "acc": {}})
            p.update({k: v for k, v in (("certno", certno), ("psn_name", psn_name), ("gend", gend),
                                        ("brdy", brdy), ("age", age)) if v is not None})
            for row in insurance:
                ins = str(row["insutype"])
                p["insu"][ins] = {"insutype": ins, "psn_type": row.get("psn_type", "11"),
                                  "insuplc_admdvs": row["insuplc_admdvs"],
                                  "cvlserv_flag": row.get("cvlserv_flag", "0"),
                                  "insutype_retr_flag": row.get("insutype_retr_flag", "0"),
                                  "balc": _dec(row["balc"]) if row.get("balc") is not None else None,
                                  "psn_insu_stas": row.get("psn_insu_stas", "1"),
                                  "psn_insu_date": row.get("psn_insu_date", "2000-01-01"),
                                  "paus_insu_date": row.get("paus_insu_date"),
                                  "emp_name": row.get("emp_name", "模拟单位")}
            for ins, acc in (accumulators or {}).items():
                p["acc"].setdefault(str(ins), {}).update({k: _dec(v) for k, v in acc.items()})
            if chronic:
                self.chronic[psn_no] = [dict(c) for c in chronic]

    def issue_ec_token(self, psn_no: str) -> str:
        """An e-voucher token (ecToken) for the person, as their 医保电子凭证 app would produce."""
        tok = "ect" + secrets.token_hex(16)
        with self._mu:
            self.ec_tokens[tok] = psn_no
        return tok

    # ------------------------------------------------------------------ 1101 / 2001 / 5301
    # 1101 is the gateway simulator's own: it reads the status, dates and employer of each insurance
    # row this ledger may hold.

    def _t2001(self, env, inp, data, msgid, region) -> dict:
        p = self._person(str(data.get("psn_no")))
        ins = str(data.get("insutype") or "")
        day = iso_date(data.get("begntime")) or self._now().strftime("%Y-%m-%d")
        med_type = str(data.get("med_type") or "")
        fund, fund_name = _MED_FUND.get(ins, (f"{ins}100", "基本医疗保险统筹基金"))
        row = {"psn_no": p["psn_no"], "trt_chk_type": "10", "fund_pay_type": fund, "begndate": None, "enddate": None}
        i = p["insu"].get(ins)
        if i is None:
            return {"trtinfo": [dict(row, trt_enjymnt_flag="0", trt_chk_rslt=f"未参加险种 {ins}")]}
        begin, paused = i.get("psn_insu_date") or "2000-01-01", i.get("paus_insu_date")
        row["begndate"], row["enddate"] = begin, paused
        if i.get("psn_insu_stas", "1") != "1":
            return {"trtinfo": [dict(row, trt_enjymnt_flag="0", trt_chk_rslt=f"参保状态 {i.get('psn_insu_stas')}（非参保缴费）")]}
        if day < begin or (paused and day >= paused[:10]):
            return {"trtinfo": [dict(row, trt_enjymnt_flag="0",
                                     trt_chk_rslt=f"{day} 不在参保期间 {begin} … {paused or '至今'}")]}
        if med_type == "14":
            dise = data.get("dise_codg")
            ok = [c for c in self.chronic.get(p["psn_no"], []) if str(c.get("begndate", "")) <= day
                  and (not c.get("enddate") or day <= str(c["enddate"])) and (not dise or c.get("code") == dise)]
            if not ok:
                return {"trtinfo": [dict(row, trt_enjymnt_flag="0", trt_chk_rslt="无有效的门诊慢特病备案")]}
        return {"trtinfo": [dict(row, trt_enjymnt_flag="1", trt_chk_rslt=f"{fund_name}：享受")]}

    def _chronic_query(self, env, inp, data, msgid, region) -> dict:
        p = self._person(str(data.get("psn_no")))
        f = self.msettings.chronic_fields
        rows = [{f.code: c.get("code"), f.name: c.get("name"), f.begndate: c.get("begndate"),
                 f.enddate: c.get("enddate"), "psn_no": p["psn_no"]} for c in self.chronic.get(p["psn_no"], [])]
        return {f.node: rows}

    # ------------------------------------------------------------------ filings
    def _file(self, env, inp, data, msgid, region) -> dict:
        f = self.msettings.filing_fields
        node = inp.get(f.node)
        if not isinstance(node, dict):
            raise SimError(-2, f"{f.node} 不能为空")
        p = self._person(str(node.get("psn_no")))
        t = self.msettings.type_of_code(str(node.get(f.type) or ""))
        if t is None or t not in FILEABLE:
            raise SimError(-2, f"备案类型无效: {node.get(f.type)}")
        target = str(node.get(f.region) or "")
        if not (len(target) == 6 and target.isdigit()):
            raise SimError(-2, f"就医地行政区划无效: {target}")
        b, e = iso_date(node.get(f.begndate)), iso_date(node.get(f.enddate)) if node.get(f.enddate) else None
        if b is None:
            raise SimError(-2, "开始日期无效")
        if e is not None and e < b:
            raise SimError(-2, f"结束日期 {e} 早于开始日期 {b}")
        for old in self.filings.values():
            if old.psn_no == p["psn_no"] and old.type == t and old.overlaps(b, e):
                raise SimError(-2, f"备案时间与已有备案 {old.id} 重叠")
        fid = f"F{region}{next(self._fseq):08d}"
        self.filings[fid] = FilingRecord(id=fid, psn_no=p["psn_no"], type=t, admdvs=target, begndate=b, enddate=e,
                                         insutype=node.get("insutype"))
        self.filing_msgids[fid] = msgid
        return {"result": {f.id: fid}}

    def _revoke(self, env, inp, data, msgid, region) -> dict:
        f = self.msettings.filing_fields
        node = inp.get(f.revoke_node) if isinstance(inp.get(f.revoke_node), dict) else data
        fid = str(node.get(f.id) or "")
        rec = self.filings.get(fid)
        if rec is None or rec.psn_no != str(node.get("psn_no")):
            raise SimError(-2, f"备案记录不存在: {fid}")
        if rec.revoked:
            raise SimError(-2, f"备案已撤销: {fid}")
        self.filings[fid] = FilingRecord(**{**rec.__dict__, "revoked": True})
        return {"result": {f.id: fid, f.valid: "0"}}

    def _filing_query(self, env, inp, data, msgid, region) -> dict:
        p = self._person(str(data.get("psn_no")))
        f = self.msettings.filing_fields
        rows = [{f.id: r.id, "psn_no": r.psn_no, "insutype": r.insutype,
                 f.type: self.msettings.filing_type_codes.get(r.type, r.type), f.region: r.admdvs,
                 f.begndate: r.begndate, f.enddate: r.enddate, f.valid: "0" if r.revoked else "1"}
                for r in self.filings.values() if r.psn_no == p["psn_no"]]
        return {f.node: rows}

    def filing_for(self, psn_no: str, day: str, region: str) -> FilingRecord | None:
        return pick([f for f in self.filings.values() if f.psn_no == psn_no], day, region)

    def _with_ledger_filing(self, claim: dict) -> dict:
        """The platform settles under the filing *it* holds, whatever the claim says."""
        claim.pop("filing", None)
        claim.pop("filing_type", None)
        day = str(claim.get("setl_time") or "")[:10]
        region = str(claim.get("mdtrtarea_admvs") or "")
        rec = self.filing_for(str(claim.get("psn_no")), day, region)
        if rec is not None:
            claim["filing"] = rec.claim_filing(f"platform ledger (filed by msgid {self.filing_msgids.get(rec.id, '?')})")
        return claim

    def _claim_for(self, mdtrt_id: str, region: str, data: Mapping[str, Any] | None = None) -> dict:
        return self._with_ledger_filing(super()._claim_for(mdtrt_id, region, data))

    # ------------------------------------------------------------------ the payment platform (scheme B)
    def inject_payment(self, role: str, kind: str, *, times: int = 1, seconds: float = 0.5) -> None:
        if kind not in PAY_FAULTS:
            raise ValueError(f"unknown payment fault {kind!r}; known: {', '.join(PAY_FAULTS)}")
        with self._mu:
            self.pay_faults.append({"role": role, "kind": kind, "times": times, "seconds": seconds})

    def _pay_fault(self, role: str) -> dict | None:
        with self._mu:
            for f in self.pay_faults:
                if f["times"] > 0 and f["role"] in ("*", role):
                    f["times"] -= 1
                    return f
        return None

    def _pay_answer(self, data: dict | None, *, code: int = 0, message: str = "成功") -> dict:
        return {"code": code, "message": message, "data": data or {}}

    def _seal(self, answer: dict, *, break_signature: bool = False) -> bytes:
        if self.payment_security is None:
            return compact_json(answer).encode("utf-8")
        wire = self.payment_security.seal(answer)
        if break_signature:
            sig = wire.get("signData", "")
            wire["signData"] = sig[:-8] + ("A" * 8 if not sig.endswith("A" * 8) else "B" * 8)
        return compact_json(wire).encode("utf-8")

    def handle_payment(self, path: str, body: bytes) -> tuple[int, bytes | None]:
        routes = {r.path: role for role, r in self.msettings.evoucher.routes().items()}
        role = routes.get(path.split("?")[0])
        if role is None:
            return 404, compact_json({"code": 404, "message": f"no such API {path}"}).encode()
        try:
            msg = parse_json_body(body)
            if self.payment_security is not None:
                msg = self.payment_security.open(msg)
        except SecurityError as e:
            with self._mu:
                self.pay_received.append({"role": role, "refused": e.code, "time": time.time()})
            return 200, self._seal(self._pay_answer(None, code=-1, message=f"验签失败: {e.message}"))
        data = msg.get("data") if isinstance(msg.get("data"), dict) else {}
        fault = self._pay_fault(role)
        with self._mu:
            self.pay_received.append({"role": role, "time": time.time(), "fault": fault["kind"] if fault else None,
                                      "payOrdId": data.get("payOrdId")})
        if fault is not None and fault["kind"] == "http_500":
            return 500, b"<html>Internal Server Error</html>"
        with self._mu:
            try:
                out = getattr(self, f"_pay_{role}")(data)
                answer = self._pay_answer(out)
            except SimError as e:
                answer = self._pay_answer(None, code=e.infcode if e.infcode else -2, message=e.message)
            except Exception as e:  # a simulator bug answers as a system error
                answer = self._pay_answer(None, code=-1, message=f"simulator: {type(e).__name__}: {e}"[:200])
        if fault is None:
            return 200, self._seal(answer)
        if fault["kind"] == "drop":
            return 200, None
        if fault["kind"] == "delay":
            self._stop.wait(fault["seconds"])
            return 200, self._seal(answer)
        return 200, self._seal(answer, break_signature=True)

    def _order(self, data: Mapping[str, Any]) -> dict:
        o = self.orders.get(str(data.get("payOrdId") or ""))
        if o is None:
            raise SimError(-2, f"订单不存在: {data.get('payOrdId')}")
        return o

    def _status(self, key: str) -> str:
        return self.msettings.evoucher.status_codes[key]

    def _pay_fee_upload(self, d: Mapping[str, Any]) -> dict:
        from ..model.claim import SettlementError
        psn_no = self.ec_tokens.get(str(d.get("ecToken") or ""))
        if psn_no is None or psn_no != d.get("psnNo"):
            raise SimError(-2, "电子凭证令牌无效或与人员不符")
        if any(o["medOrgOrd"] == d.get("medOrgOrd") and o["state"] != "revoked" for o in self.orders.values()):
            raise SimError(-2, f"机构订单号重复: {d.get('medOrgOrd')}")
        p = self._person(psn_no)
        ins = str(d.get("insutype") or next(iter(p["insu"]), ""))
        i = p["insu"].get(ins)
        if i is None:
            raise SimError(-2, f"人员无该险种参保信息: {ins}")
        lines = d.get("feedetailList")
        if not isinstance(lines, list) or not lines:
            raise SimError(-2, "feedetailList 不能为空")
        setl_time = str(d.get("setlTime") or self._now().strftime("%Y-%m-%d %H:%M:%S"))
        claim: dict[str, Any] = {
            "psn_no": psn_no, "insuplc_admdvs": i["insuplc_admdvs"], "mdtrtarea_admvs": str(d.get("mdtrtareaAdmvs")),
            "insutype": ins, "insutype_retr_flag": i.get("insutype_retr_flag") or "0",
            "cvlserv_flag": i.get("cvlserv_flag") or "0", "med_type": str(d.get("medType") or "11"),
            "hosp_lv": self.institutions.get(str(d.get("orgCodg")), "3"), "setl_time": setl_time,
            "acct_used_flag": str(d.get("acctUsedFlag") or "0"),
            "feedetail": [{"feedetl_sn": str(x.get("feedetlSn")), "med_list_codg": x.get("medListCodg"),
                           "cnt": x.get("cnt"), "pric": x.get("pric"), "det_item_fee_sumamt": x.get("detItemFeeSumamt")}
                          for x in lines]}
        self._person_fields(claim, p, i)
        acc = p["acc"].get(ins) or {}
        if acc:
            claim["accumulators"] = dict(acc)
        self._with_ledger_filing(claim)
        try:
            s = self.engine.settle(claim)
        except SettlementError as e:
            raise SimError(-2, f"结算失败: {e.message}"[:200]) from None
        info = s.setlinfo()
        oid = f"ORD{next(self._seq):013d}"
        order = {"payOrdId": oid, "payToken": "pt" + secrets.token_hex(12), "medOrgOrd": d.get("medOrgOrd"),
                 "psn_no": psn_no, "insutype": ins, "region": claim["mdtrtarea_admvs"], "state": "uploaded",
                 "feeSumamt": info["medfee_sumamt"], "fundPay": info["fund_pay_sumamt"],
                 "psnAcctPay": info["acct_pay"], "ownPayAmt": info["psn_cash_pay"], "setlinfo": info,
                 "setldetail": s.setldetail(), "setl_date": setl_time[:10],
                 "acc_delta": {k: s.accumulators_after.get(k, 0) - s.accumulators_before.get(k, 0)
                               for k in s.accumulators_after},
                 "counts": frozenset(s.count_accumulators), "setlId": None, "refunds": {},
                 "filing": claim.get("filing")}
        self.orders[oid] = order
        return self._order_view(order)

    def _order_view(self, o: Mapping[str, Any]) -> dict:
        return {"payOrdId": o["payOrdId"], "payToken": o["payToken"], "ordStas": self._status(o["state"]),
                "feeSumamt": o["feeSumamt"], "fundPay": o["fundPay"], "psnAcctPay": o["psnAcctPay"],
                "ownPayAmt": o["ownPayAmt"], "setlId": o["setlId"], "medOrgOrd": o["medOrgOrd"]}

    def _settled(self, o: Mapping[str, Any]) -> Settled:
        return Settled(setl_id=o["setlId"] or o["payOrdId"], msgid=o["payOrdId"], infno="6202", psn_no=o["psn_no"],
                       mdtrt_id=str(o["medOrgOrd"]), region=o["region"], insutype=o["insutype"],
                       setlinfo=o["setlinfo"], setldetail=o["setldetail"], setl_date=o["setl_date"],
                       acc_delta=o["acc_delta"], acct_pay=o["psnAcctPay"], counts=o["counts"])

    def _pay_pay(self, d: Mapping[str, Any]) -> dict:
        o = self._order(d)
        if d.get("payToken") != o["payToken"]:
            raise SimError(-2, "支付令牌无效")
        if o["state"] == "paid":
            raise SimError(-2, f"订单已支付: {o['payOrdId']}")
        if o["state"] != "uploaded":
            raise SimError(-2, f"订单状态不允许支付: {o['state']}")
        o["state"] = "paid"
        o["setlId"] = f"S{next(self._seq):011d}"
        self._apply(self._settled(o), +1)
        out = self._order_view(o)
        if self.notify_url:
            threading.Thread(target=self._notify, args=(dict(out),), daemon=True).start()
        return out

    def _pay_refund(self, d: Mapping[str, Any]) -> dict:
        o = self._order(d)
        sn = str(d.get("appRefdSn") or "")
        if not sn:
            raise SimError(-2, "appRefdSn 不能为空")
        if sn in o["refunds"]:
            return dict(self._order_view(o), appRefdSn=sn, refdStas="1")   # the same refund again: no second effect
        if o["state"] != "paid":
            raise SimError(-2, f"订单未支付或已退款: {o['state']}")
        o["state"] = "refunded"
        o["refunds"][sn] = time.time()
        self._apply(self._settled(o), -1)
        return dict(self._order_view(o), appRefdSn=sn, refdStas="1")

    def _pay_query(self, d: Mapping[str, Any]) -> dict:
        return self._order_view(self._order(d))

    def _pay_revoke(self, d: Mapping[str, Any]) -> dict:
        o = self._order(d)
        if o["state"] == "revoked":
            return self._order_view(o)
        if o["state"] != "uploaded":
            raise SimError(-2, f"订单已支付，请退费: {o['state']}")
        o["state"] = "revoked"
        return self._order_view(o)

    def notification(self, payload: Mapping[str, Any]) -> bytes:
        """A signed payment-result notification (what the platform posts to the institution)."""
        return self._seal({"code": 0, "message": "支付结果通知", "data": dict(payload)})

    def _notify(self, payload: dict) -> None:
        import httpx
        body = self.notification(payload)
        try:
            r = httpx.post(str(self.notify_url), content=body, headers={"Content-Type": "application/json"},
                           timeout=5)
            status = r.status_code
        except Exception as e:  # the institution may be down: the order stays queryable (6301)
            status = f"{type(e).__name__}"
        with self._mu:
            self.notifications.append({"payOrdId": payload.get("payOrdId"), "status": status})

    # ------------------------------------------------------------------ HTTP
    def start(self) -> "MemberPlatformSimulator":
        super().start()
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True
            server_version = "rules-engine-payment-sim"

            def log_message(self, fmt: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n > 0 else b""
                if self.path.startswith("/sim/faults"):
                    try:
                        f = json.loads(body or b"{}")
                        sim.inject_payment(str(f.get("role", "*")), str(f.get("kind")), times=int(f.get("times", 1)))
                        out, status = b'{"ok":true}', 200
                    except (ValueError, TypeError) as e:
                        out, status = json.dumps({"error": str(e)}).encode(), 400
                else:
                    status, out = sim.handle_payment(self.path, body)
                if out is None:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json;charset=UTF-8" if status < 500 else "text/html")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def do_GET(self) -> None:
                out = json.dumps({"orders": len(sim.orders), "received": len(sim.pay_received)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._pay_server = Server((self.host, self.payment_port), Handler)
        self.payment_port = self._pay_server.server_address[1]
        threading.Thread(target=self._pay_server.serve_forever, kwargs={"poll_interval": 0.05},
                         name="payment-sim", daemon=True).start()
        return self

    @property
    def payment_url(self) -> str:
        return f"http://{self.host}:{self.payment_port}"

    def stop(self) -> None:
        super().stop()
        if self._pay_server is not None:
            self._pay_server.shutdown()
            self._pay_server.server_close()
            self._pay_server = None

    def ledger(self) -> dict[str, Any]:
        out = super().ledger()
        with self._mu:
            out["filings"] = [f.to_dict() for f in self.filings.values()]
            out["orders"] = {k: {"state": o["state"], "feeSumamt": str(o["feeSumamt"]), "fundPay": str(o["fundPay"]),
                                 "psnAcctPay": str(o["psnAcctPay"])} for k, o in self.orders.items()}
        return out


def balance(sim: MemberPlatformSimulator, psn_no: str, insutype: str) -> Decimal | None:
    """The person's account balance in the simulator's ledger (tests and the demo)."""
    with sim._mu:
        i = sim.persons.get(psn_no, {}).get("insu", {}).get(insutype)
        return None if i is None or i.get("balc") is None else fen_decimal(int(_dec(i["balc"]) * 100))


__all__ = ["MemberPlatformSimulator", "balance", "PAY_FAULTS"]
