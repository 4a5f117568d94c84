"""A national-platform simulator for tests, the demo and benchmarks.

    rules-engine platform-sim --port 8901 --regions regions [--fault-rate 0.1 --seed 7]

A real HTTP server on loopback (stdlib `ThreadingHTTPServer`, HTTP/1.1 keep-alive) that answers
9001, 1101, 2001, 5206, 2204/2301, 2206/2303, 2207/2304, 2208/2305, 2601, 5203 and 3201 the way the
platform does — by running the engine on *its own* pack directory — and keeps its own ledger:

- a msgid seen before is refused (infcode −2 "报文ID重复"), whatever its transaction;
- a settlement reversed by 2601 is gone (from 5203, from 3201, from the person's accumulators);
- 2208/2305 refund a booked settlement and answer with negated amounts;
- 2207/2304 are refused when their totals differ from what 2206/2303 computed;
- a request with an unknown or expired sign_no is refused with "签到编号无效，请重新签到".

It knows a person (1101/5206) and a visit (what 2201/2401 registration would have told it:
diagnoses, dates, hospital level, filing) from `register_claim` (or POST /sim/register), because
those transactions are outside this gateway.

**Faults, on request** (`inject` or POST /sim/faults; or at random with `fault_rate`):

| kind | what the gateway sees | booked? |
|---|---|---|
| delay | the answer after `seconds` | yes, before the delay |
| hang | no answer for a long time (the test kills the gateway meanwhile) | yes |
| drop | the connection closes without an answer | yes |
| http_500 / http_502 / http_503 | a 5xx status | only with `book: true` |
| infcode_-1 | infcode −1 (system error → 冲正) | `book` (default yes) |
| infcode_-2 | infcode −2 (business error) | no |
| malformed | a body that is not JSON | yes |
| reject_sign | infcode −2 "签到编号无效" | no |
| missing_field | infcode 0, a required field removed (`field`, default setlinfo.setl_id / result[0].inscp_scp_amt) | yes |
| wrong_type | infcode 0, a field's value replaced by text (`field`, default setlinfo.medfee_sumamt) | yes |

Control endpoints (JSON): GET /sim/health, GET /sim/ledger, GET /sim/received, POST /sim/faults,
DELETE /sim/faults, POST /sim/register, GET /sim/metrics-ish counters in /sim/ledger.

Simplifications, stated: a repeated 2204 upload of the same feedetl_sn replaces the line (a real
platform may ask for 2205 first); a 2601 of a msgid the platform never booked answers success
("nothing to reverse"), as the reference does not say what the platform answers then; message
security is plain JSON (the security plug-ins are tested on their own).
"""
from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..money import fen_decimal, scaled_int
from .security import compact_json, parse_json_body, SecurityError

FAULT_KINDS = ("delay", "hang", "drop", "http_500", "http_502", "http_503", "infcode_-1", "infcode_-2", "malformed",
               "reject_sign", "missing_field", "wrong_type")
#: faults that happen after the request was processed (and a settlement booked)
_AFTER = {"delay", "hang", "drop", "malformed", "missing_field", "wrong_type"}
SETTLE = {"2207", "2304"}
PRESETTLE = {"2206", "2303"}
UPLOAD = {"2204", "2301"}
REFUND = {"2208", "2305"}


class SimError(Exception):
    def __init__(self, infcode: int, message: str):
        super().__init__(message)
        self.infcode = infcode
        self.message = message


@dataclass
class Fault:
    kind: str
    infno: str = "*"
    times: int | None = 1          # None: every matching request
    seconds: float = 0.0           # delay / hang
    book: bool | None = None       # process before failing (default per kind)
    field: str | None = None       # missing_field / wrong_type
    psn_no: str | None = None      # only this person's requests

    def matches(self, infno: str, psn_no: str | None) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.infno not in ("*", infno):
            return False
        return self.psn_no is None or self.psn_no == psn_no

    def processes(self) -> bool:
        if self.book is not None:
            return self.book
        return self.kind in _AFTER or self.kind == "infcode_-1"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Fault":
        kind = str(d.get("kind", ""))
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        return cls(kind=kind, infno=str(d.get("infno", "*")), times=d.get("times", 1),
                   seconds=float(d.get("seconds", 0.0) or 0.0), book=d.get("book"), field=d.get("field"),
                   psn_no=d.get("psn_no"))


@dataclass
class Settled:
    setl_id: str
    msgid: str
    infno: str
    psn_no: str
    mdtrt_id: str
    region: str
    insutype: str
    setlinfo: dict
    setldetail: list
    setl_date: str
    state: str = "booked"           # booked | reversed (2601) | refunded (2208/2305)
    acc_delta: dict = field(default_factory=dict)
    acct_pay: Decimal = Decimal(0)
    refund_setl_id: str | None = None
    refund_msgid: str | None = None
    counts: frozenset = frozenset()
    fixmedins_code: str = ""


class PlatformSimulator:
    """The simulated platform: ledger, handlers and faults. `start()` serves it over HTTP."""

    def __init__(self, regions: str | Path | None = None, *, engine: Any = None, host: str = "127.0.0.1",
                 port: int = 0, fault_rate: float = 0.0, fault_kinds: Iterable[str] = FAULT_KINDS,
                 fault_infnos: Iterable[str] | None = None, seed: int | None = None, hang_seconds: float = 30.0,
                 require_sign_no: bool = True, fund_includes_acct: Mapping[str, bool] | None = None,
                 utc_offset_hours: int = 8, security: Any = None):
        if engine is None:
            from ..api import Engine
            engine = Engine.from_directory(regions or "regions")
        self.engine = engine
        self.host, self.port = host, port
        self._mu = threading.RLock()
        self._tz = dt.timezone(dt.timedelta(hours=utc_offset_hours))
        self.faults: list[Fault] = []
        self.fault_rate = float(fault_rate)
        self.fault_kinds = tuple(fault_kinds)
        self.fault_infnos = set(fault_infnos) if fault_infnos else None
        self._rng = random.Random(seed)
        self.hang_seconds = hang_seconds
        self.require_sign_no = require_sign_no
        self.fund_includes_acct = dict(fund_includes_acct or {})
        #: a message-security plug-in built with the *platform's* key as its own and the channel's as the
        #: peer (gateway-security.md §1): requests are opened with field "input", answers sealed "output"
        self.security = security
        # ledger
        self.msgids: dict[str, str] = {}            # msgid → infno
        self.received: list[dict] = []              # (msgid, infno, time, fault)
        self.signins: dict[str, dict] = {}
        self.persons: dict[str, dict] = {}
        self.visits: dict[str, dict] = {}
        self.uploads: dict[str, dict[str, dict]] = {}
        self.presettled: dict[str, dict] = {}
        self.settlements: dict[str, Settled] = {}
        self.by_msgid: dict[str, str] = {}          # settlement/refund msgid → setl_id
        self.injected: list[dict] = []              # faults applied
        self._seq = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------------ registry
    def register_claim(self, claim: Mapping[str, Any], *, mdtrt_id: str | None = None) -> str:
        """Make the person and the visit of `claim` known (as 1101 data and a 2201/2401 registration
        would). Returns the visit's mdtrt_id (the claim's, or the local id the gateway derives)."""
        from .payloads import visit_ids
        ids = visit_ids(claim) if mdtrt_id is None else {"psn_no": claim["psn_no"], "mdtrt_id": mdtrt_id}
        psn_no = ids["psn_no"]
        with self._mu:
            p = self.persons.setdefault(psn_no, {"psn_no": psn_no, "insu": {}, "acc": {}})
            for k in ("psn_name", "certno", "psn_cert_type", "gend", "brdy", "age", "naty"):
                if claim.get(k) is not None:
                    p[k] = claim[k]
            ins = claim.get("insutype")
            p["insu"][ins] = {"insutype": ins, "psn_type": claim.get("psn_type"),
                              "insuplc_admdvs": claim.get("insuplc_admdvs"),
                              "cvlserv_flag": claim.get("cvlserv_flag") or "0",
                              "insutype_retr_flag": claim.get("insutype_retr_flag") or "0",
                              "balc": _dec(claim.get("balc")) if claim.get("balc") is not None else None}
            acc = p["acc"].setdefault(ins, {})
            for k, v in (claim.get("accumulators") or {}).items():
                acc[k] = _dec(v)
            self.visits[ids["mdtrt_id"]] = {
                "psn_no": psn_no, "med_type": claim.get("med_type"), "hosp_lv": claim.get("hosp_lv"),
                "setl_time": claim.get("setl_time"), "begntime": claim.get("begntime"),
                "endtime": claim.get("endtime"), "diseinfo": claim.get("diseinfo"), "dise_codg": claim.get("dise_codg"),
                "filing_type": claim.get("filing_type"), "filing": claim.get("filing"),
                "community_flag": claim.get("community_flag"), "icd_edition": claim.get("icd_edition"),
                "insutype": ins, "insuplc_admdvs": claim.get("insuplc_admdvs"),
                "mdtrtarea_admvs": claim.get("mdtrtarea_admvs")}
        return ids["mdtrt_id"]

    # ------------------------------------------------------------------ faults
    def inject(self, kind: str, infno: str = "*", *, times: int | None = 1, **kw: Any) -> Fault:
        f = Fault.from_dict({"kind": kind, "infno": infno, "times": times, **kw})
        with self._mu:
            self.faults.append(f)
        return f

    def clear_faults(self) -> None:
        with self._mu:
            self.faults.clear()

    def _pick_fault(self, infno: str, psn_no: str | None) -> Fault | None:
        with self._mu:
            for f in self.faults:
                if f.matches(infno, psn_no):
                    if f.times is not None:
                        f.times -= 1
                    return f
            if self.fault_rate and infno != "9001" and (self.fault_infnos is None or infno in self.fault_infnos):
                if self._rng.random() < self.fault_rate:
                    kind = self._rng.choice(self.fault_kinds)
                    return Fault(kind=kind, infno=infno, times=None, seconds=0.2 if kind == "delay" else 0.0)
        return None

    # ------------------------------------------------------------------ envelope
    def _now(self) -> dt.datetime:
        return dt.datetime.now(self._tz)

    def _answer(self, output: Any, *, infcode: int = 0, err_msg: str | None = None, region: str = "000000") -> dict:
        now = self._now()
        stamp = now.strftime("%Y%m%d%H%M%S%f")[:17]
        return {"infcode": infcode, "inf_refmsgid": f"{region[:6]:0<6}{now.strftime('%Y%m%d%H%M%S')}{next(self._seq):010d}",
                "refmsg_time": stamp, "respond_time": stamp, "enctype": "", "signtype": "", "cainfo": None,
                "warn_msg": None, "err_msg": err_msg, "output": output}

    def handle(self, body: bytes) -> tuple[int, bytes | None, Fault | None]:
        """One request → (HTTP status, body or None to drop the connection, the fault applied)."""
        try:
            env = parse_json_body(body)
            if self.security is not None:
                env = self.security.open(env, field="input")
        except SecurityError as e:
            with self._mu:
                self.received.append({"msgid": None, "infno": None, "time": time.time(), "fault": None,
                                      "refused": e.code})
            return 200, self._bytes(self._answer(None, infcode=-1, err_msg=f"报文校验失败: {e.message}")), None
        infno = str(env.get("infno") or "")
        msgid = str(env.get("msgid") or "")
        region = str(env.get("mdtrtarea_admvs") or "000000")
        inp = env.get("input") if isinstance(env.get("input"), dict) else {}
        data = inp.get("data") if isinstance(inp.get("data"), dict) else {}
        psn_no = data.get("psn_no") or ((inp.get("feedetail") or [{}])[0].get("psn_no") if isinstance(
            inp.get("feedetail"), list) and inp.get("feedetail") else None)
        fault = self._pick_fault(infno, psn_no)
        with self._mu:
            self.received.append({"msgid": msgid, "infno": infno, "time": time.time(),
                                  "fault": fault.kind if fault else None})
            if fault is not None:
                self.injected.append({"msgid": msgid, "infno": infno, "fault": fault.kind})
        if fault is not None and not fault.processes():
            if fault.kind.startswith("http_"):
                return int(fault.kind[5:]), b"<html><body>Bad Gateway</body></html>", fault
            if fault.kind == "reject_sign":
                with self._mu:
                    self.msgids.setdefault(msgid, infno)
                return 200, self._bytes(self._answer(None, infcode=-2, err_msg="签到编号无效，请重新签到(sign_no)",
                                                region=region)), fault
            if fault.kind == "infcode_-2":
                with self._mu:
                    self.msgids.setdefault(msgid, infno)
                return 200, self._bytes(self._answer(None, infcode=-2, err_msg="模拟业务错误(注入)",
                                                     region=region)), fault
            if fault.kind == "infcode_-1":
                return 200, self._bytes(self._answer(None, infcode=-1, err_msg="模拟系统错误(注入)",
                                                     region=region)), fault
        answer = self._process(env, infno, msgid, region, inp, data)
        if fault is None:
            return 200, self._bytes(answer), None
        kind = fault.kind
        if kind == "drop":
            return 200, None, fault
        if kind in ("delay", "hang"):
            self._stop.wait(fault.seconds or (self.hang_seconds if kind == "hang" else 0.0))
            return 200, self._bytes(answer), fault
        if kind.startswith("http_"):
            return int(kind[5:]), b"<html><body>Internal Server Error</body></html>", fault
        if kind == "infcode_-1":
            return 200, self._bytes(self._answer(None, infcode=-1, err_msg="模拟系统错误(注入，已处理)",
                                                 region=region)), fault
        if kind == "malformed":
            whole = self._bytes(answer)
            return 200, whole[: max(10, len(whole) // 2)], fault
        if kind in ("missing_field", "wrong_type") and answer.get("infcode") == 0 and isinstance(answer.get("output"),
                                                                                                  dict):
            out = copy.deepcopy(answer["output"])
            path = fault.field or _default_field(infno, kind)
            _mutate(out, path, kind)
            answer = dict(answer, output=out)
        return 200, self._bytes(answer), fault

    def _bytes(self, answer: dict) -> bytes:
        """An answer on the wire: sealed by the platform's message security when it has one — every
        answer, a refusal without output too (a verifying gateway believes no unsigned answer)."""
        if self.security is not None:
            answer = self.security.seal(_plain(answer), field="output")
        return _bytes(answer)

    # ------------------------------------------------------------------ transactions
    def _process(self, env: dict, infno: str, msgid: str, region: str, inp: dict, data: dict) -> dict:
        with self._mu:
            if not msgid:
                return self._answer(None, infcode=-1, err_msg="msgid 不能为空", region=region)
            if msgid in self.msgids:
                return self._answer(None, infcode=-2, err_msg=f"报文ID重复: {msgid}", region=region)
            self.msgids[msgid] = infno
            if infno != "9001" and self.require_sign_no:
                s = self.signins.get(str(env.get("sign_no") or ""))
                if s is None:
                    return self._answer(None, infcode=-2, err_msg="签到编号无效，请重新签到(sign_no)", region=region)
            try:
                handler = getattr(self, f"_t{infno}", None)
                if handler is None:
                    raise SimError(-2, f"交易 {infno} 未开通 (simulator)")
                output = handler(env, inp, data, msgid, region)
                return self._answer(output, region=region)
            except SimError as e:
                return self._answer(None, infcode=e.infcode, err_msg=e.message, region=region)
            except Exception as e:  # a simulator bug answers as the platform would: a system error
                return self._answer(None, infcode=-1, err_msg=f"simulator: {type(e).__name__}: {e}"[:200],
                                    region=region)

    def _t9001(self, env, inp, data, msgid, region) -> dict:
        s = inp.get("signIn") or {}
        sign_no = f"{region}{self._now().strftime('%Y%m%d%H%M%S')}{next(self._seq):010d}"
        self.signins[sign_no] = {"opter": s.get("opter_no"), "time": time.time()}
        return {"signinoutb": {"sign_no": sign_no, "sign_time": self._now().strftime("%Y-%m-%d %H:%M:%S")}}

    def expire_signins(self) -> None:
        """Forget every sign_no (as a platform restart or a new day would)."""
        with self._mu:
            self.signins.clear()

    def _person(self, psn_no: str) -> dict:
        p = self.persons.get(psn_no)
        if p is None:
            raise SimError(-2, f"人员信息不存在: {psn_no}")
        return p

    @staticmethod
    def _person_fields(claim: dict, p: dict, i: dict) -> None:
        """What the ledger knows of the person (sex, birth date or age) and of their insurance row
        (person type, account balance), put on the claim the simulator settles."""
        for k in ("gend", "brdy", "age"):
            if p.get(k) is not None:
                claim[k] = p[k]
        if claim.get("brdy"):
            claim.pop("age", None)
        if i.get("psn_type"):
            claim["psn_type"] = i["psn_type"]
        if i.get("balc") is not None:
            claim["balc"] = i["balc"]

    def _t1101(self, env, inp, data, msgid, region) -> dict:
        key = str(data.get("mdtrt_cert_no") or data.get("certno") or "")
        p = next((x for x in self.persons.values() if key and key in (x.get("certno"), x["psn_no"])), None)
        if p is None:
            raise SimError(-2, "未查询到人员参保信息")
        base = {k: p.get(k) for k in ("psn_no", "psn_cert_type", "certno", "psn_name", "gend", "naty", "brdy")}
        base["psn_cert_type"] = base["psn_cert_type"] or "01"
        if p.get("age") is not None:
            base["age"] = Decimal(p["age"])
        insu = [{"insutype": i["insutype"], "psn_type": i.get("psn_type"),
                 "balc": i.get("balc") if i.get("balc") is not None else Decimal("0.00"),
                 "psn_insu_stas": i.get("psn_insu_stas", "1"), "psn_insu_date": i.get("psn_insu_date", "2000-01-01"),
                 "paus_insu_date": i.get("paus_insu_date"), "cvlserv_flag": i.get("cvlserv_flag") or "0",
                 "insuplc_admdvs": i.get("insuplc_admdvs"), "emp_name": i.get("emp_name", "模拟单位")}
                for i in p["insu"].values()]
        return {"baseinfo": base, "insuinfo": insu, "idetinfo": []}

    def _t2001(self, env, inp, data, msgid, region) -> dict:
        p = self._person(str(data.get("psn_no")))
        return {"trtinfo": [{"psn_no": p["psn_no"], "trt_chk_type": "10", "fund_pay_type": "310100",
                             "trt_enjymnt_flag": "1", "begndate": "2000-01-01", "enddate": None,
                             "trt_chk_rslt": "享受"}]}

    def _t5206(self, env, inp, data, msgid, region) -> dict:
        p = self._person(str(data.get("psn_no")))
        year = str(data.get("cum_ym") or self._now().strftime("%Y"))[:4]
        rows = []
        for ins, acc in p["acc"].items():
            for k, v in acc.items():
                rows.append({"insutype": ins, "year": year, "cum_ym": f"{year}12", "cum_type_code": k, "cum": v})
        return {"cuminfo": rows}

    def _upload(self, inp, region) -> dict:
        lines = inp.get("feedetail")
        if not isinstance(lines, list) or not lines:
            raise SimError(-2, "feedetail 不能为空")
        mdtrt_id = str(lines[0].get("mdtrt_id") or "")
        if mdtrt_id not in self.visits:
            raise SimError(-2, f"就诊信息不存在: {mdtrt_id}")
        if any(s.mdtrt_id == mdtrt_id and s.state == "booked" for s in self.settlements.values()):
            raise SimError(-2, f"该就诊已结算，不能上传费用: {mdtrt_id}")
        up = self.uploads.setdefault(mdtrt_id, {})
        for ln in lines:
            up[str(ln["feedetl_sn"])] = ln
        s = self._settle_visit(mdtrt_id, region, env_insuplc=None)
        wanted = {str(ln["feedetl_sn"]) for ln in lines}
        result = []
        for r in s.result():
            if r["feedetl_sn"] not in wanted:
                continue
            result.append({"feedetl_sn": r["feedetl_sn"], "det_item_fee_sumamt": r["det_item_fee_sumamt"],
                           "cnt": r["cnt"], "pric": r["pric"], "pric_uplmt_amt": r["pric_uplmt_amt"],
                           "selfpay_prop": r["selfpay_prop"], "fulamt_ownpay_amt": r["fulamt_ownpay_amt"],
                           "overlmt_amt": r["overlmt_amt"], "preselfpay_amt": r["preselfpay_amt"],
                           "inscp_scp_amt": r["inscp_scp_amt"], "chrgitm_lv": r["chrgitm_lv"],
                           "med_chrgitm_type": r["med_chrgitm_type"], "bas_medn_flag": "0", "hi_nego_drug_flag": "0",
                           "lmt_used_flag": r["lmt_used_flag"], "drt_reim_flag": "0", "memo": None})
        return {"result": result}

    def _t2204(self, env, inp, data, msgid, region) -> dict:
        return self._upload(inp, region)

    _t2301 = _t2204

    def _claim_for(self, mdtrt_id: str, region: str, data: Mapping[str, Any] | None = None) -> dict:
        v = self.visits.get(mdtrt_id)
        if v is None:
            raise SimError(-2, f"就诊信息不存在: {mdtrt_id}")
        lines = list(self.uploads.get(mdtrt_id, {}).values())
        if not lines:
            raise SimError(-2, f"未上传费用明细: {mdtrt_id}")
        p = self._person(v["psn_no"])
        ins = str((data or {}).get("insutype") or v["insutype"])
        i = p["insu"].get(ins)
        if i is None:
            raise SimError(-2, f"人员无该险种参保信息: {ins}")
        claim: dict[str, Any] = {
            "psn_no": p["psn_no"], "insuplc_admdvs": i.get("insuplc_admdvs") or v["insuplc_admdvs"],
            "mdtrtarea_admvs": v.get("mdtrtarea_admvs") or region, "insutype": ins,
            "insutype_retr_flag": i.get("insutype_retr_flag") or "0", "cvlserv_flag": i.get("cvlserv_flag") or "0",
            "med_type": str((data or {}).get("med_type") or v["med_type"]), "hosp_lv": v["hosp_lv"],
            "setl_time": v["setl_time"], "mdtrt_id": mdtrt_id,
            "acct_used_flag": str((data or {}).get("acct_used_flag") or "0"),
            "feedetail": [self._claim_line(ln) for ln in lines],
        }
        self._person_fields(claim, p, i)
        for k in ("begntime", "endtime", "diseinfo", "dise_codg", "filing_type", "filing", "community_flag",
                  "icd_edition"):
            if v.get(k) is not None:
                claim[k] = v[k]
        acc = p["acc"].get(ins) or {}
        if acc:
            claim["accumulators"] = dict(acc)
        return claim

    @staticmethod
    def _claim_line(ln: Mapping[str, Any]) -> dict:
        out = {"feedetl_sn": ln["feedetl_sn"], "cnt": ln["cnt"], "pric": ln["pric"],
               "det_item_fee_sumamt": ln["det_item_fee_sumamt"]}
        if ln.get("med_list_codg"):
            out["med_list_codg"] = ln["med_list_codg"]
        if ln.get("medins_list_codg") and ln.get("medins_list_codg") != ln.get("med_list_codg"):
            out["medins_list_codg"] = ln["medins_list_codg"]
        for k in ("hosp_appr_flag", "prd_days"):
            if ln.get(k) is not None:
                out[k] = ln[k]
        return out

    def _settle_visit(self, mdtrt_id: str, region: str, env_insuplc: str | None, data: Mapping | None = None):
        from ..model.claim import SettlementError
        claim = self._claim_for(mdtrt_id, region, data)
        try:
            return self.engine.settle(claim)
        except SettlementError as e:
            raise SimError(-2, f"结算失败: {e.message}"[:200]) from None

    def _setl_output(self, s: Any, *, msgid: str, setl_id: str | None, setl_time: str | None) -> dict:
        info = s.setlinfo()
        c = s.claim.raw
        p = self.persons.get(str(c.get("psn_no")), {})
        info.update({"mdtrt_id": c.get("mdtrt_id"), "setl_id": setl_id, "psn_no": c.get("psn_no"),
                     "psn_name": p.get("psn_name"), "certno": p.get("certno"), "psn_cert_type": "01",
                     "gend": p.get("gend"), "brdy": p.get("brdy"), "setl_time": setl_time,
                     "cvlserv_flag": c.get("cvlserv_flag") or "0", "mdtrt_cert_type": "02",
                     "medins_setl_id": msgid, "clr_optins": c.get("insuplc_admdvs"), "clr_way": "1",
                     "clr_type": "21" if str(c.get("med_type", "")).startswith("2") else "11"})
        for k in ("insuplc_admdvs", "mdtrtarea_admvs"):
            info.pop(k, None)
        return {"setlinfo": info, "setldetail": s.setldetail()}

    def _presettle(self, data, msgid, region) -> dict:
        mdtrt_id = str(data.get("mdtrt_id") or "")
        s = self._settle_visit(mdtrt_id, region, None, data)
        self.presettled[mdtrt_id] = {"medfee_sumamt": s.setlinfo()["medfee_sumamt"], "msgid": msgid}
        return self._setl_output(s, msgid=msgid, setl_id=None, setl_time=None)

    def _t2206(self, env, inp, data, msgid, region) -> dict:
        return self._presettle(data, msgid, region)

    _t2303 = _t2206

    def _t2207(self, env, inp, data, msgid, region) -> dict:
        mdtrt_id = str(data.get("mdtrt_id") or "")
        if any(x.mdtrt_id == mdtrt_id and x.state == "booked" for x in self.settlements.values()):
            raise SimError(-2, f"该就诊已结算: {mdtrt_id}")
        if mdtrt_id not in self.presettled:
            raise SimError(-2, f"未预结算: {mdtrt_id}")
        s = self._settle_visit(mdtrt_id, region, None, data)
        info = s.setlinfo()
        for k in ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt"):
            try:
                sent = scaled_int(data.get(k), 2)
            except Exception:
                raise SimError(-2, f"{k} 格式错误") from None
            if sent != scaled_int(info[k], 2):
                raise SimError(-2, f"结算金额与预结算不一致: {k} {data.get(k)} ≠ {info[k]}")
        setl_id = f"S{next(self._seq):011d}"
        setl_time = str(s.claim.raw.get("setl_time") or self._now().strftime("%Y-%m-%d %H:%M:%S"))
        out = self._setl_output(s, msgid=msgid, setl_id=setl_id, setl_time=setl_time)
        before = {k: v for k, v in s.accumulators_before.items()}
        delta = {k: s.accumulators_after.get(k, 0) - before.get(k, 0) for k in s.accumulators_after}
        c = s.claim.raw
        rec = Settled(setl_id=setl_id, msgid=msgid, infno=str(env.get("infno")), psn_no=str(c["psn_no"]),
                      mdtrt_id=mdtrt_id, region=region, insutype=str(c["insutype"]), setlinfo=out["setlinfo"],
                      setldetail=out["setldetail"], setl_date=setl_time[:10], acc_delta=delta,
                      acct_pay=info["acct_pay"], counts=frozenset(s.count_accumulators),
                      fixmedins_code=str(env.get("fixmedins_code") or ""))
        self.settlements[setl_id] = rec
        self.by_msgid[msgid] = setl_id
        self._apply(rec, +1)
        return out

    _t2304 = _t2207

    def _apply(self, rec: Settled, sign: int) -> None:
        """Move the person's accumulators and account by a settlement (+1) or its undoing (−1)."""
        p = self.persons.get(rec.psn_no)
        if p is None:
            return
        acc = p["acc"].setdefault(rec.insutype, {})
        for k, d in rec.acc_delta.items():
            if not d:
                continue
            step = Decimal(d) if k in rec.counts else fen_decimal(d)
            acc[k] = _dec(acc.get(k, 0)) + sign * step
        i = p["insu"].get(rec.insutype)
        if i is not None and i.get("balc") is not None and rec.acct_pay:
            i["balc"] = _dec(i["balc"]) - sign * _dec(rec.acct_pay)

    def _t2208(self, env, inp, data, msgid, region) -> dict:
        rec = self.settlements.get(str(data.get("setl_id") or ""))
        if rec is None or rec.state != "booked":
            raise SimError(-2, f"结算记录不存在或已撤销: {data.get('setl_id')}")
        if str(data.get("mdtrt_id")) != rec.mdtrt_id or str(data.get("psn_no")) != rec.psn_no:
            raise SimError(-2, "结算记录与就诊/人员不符")
        rec.state = "refunded"
        rec.refund_setl_id = f"S{next(self._seq):011d}"
        rec.refund_msgid = msgid
        self.by_msgid[msgid] = rec.setl_id
        self._apply(rec, -1)
        neg = _negate(rec.setlinfo)
        neg.update({"setl_id": rec.refund_setl_id, "medins_setl_id": msgid,
                    "setl_time": self._now().strftime("%Y-%m-%d %H:%M:%S"), "psn_part_amt": None,
                    "hosp_part_amt": None})
        return {"setlinfo": neg, "setldetail": [_negate(r) for r in rec.setldetail]}

    _t2305 = _t2208

    def _t2601(self, env, inp, data, msgid, region) -> dict:
        omsgid = str(data.get("omsgid") or "")
        setl_id = self.by_msgid.get(omsgid)
        if setl_id is None:
            return {"rslt": "原交易不存在，无需冲正", "omsgid": omsgid}
        rec = self.settlements[setl_id]
        if rec.msgid == omsgid and rec.state == "booked":
            rec.state = "reversed"
            self._apply(rec, -1)
            return {"rslt": "冲正成功", "omsgid": omsgid}
        if rec.refund_msgid == omsgid and rec.state == "refunded":
            rec.state = "booked"
            rec.refund_msgid = None
            self._apply(rec, +1)
            return {"rslt": "冲正成功(撤销已冲回)", "omsgid": omsgid}
        return {"rslt": "原交易已冲正", "omsgid": omsgid}

    def _t5203(self, env, inp, data, msgid, region) -> dict:
        rec = self.settlements.get(str(data.get("setl_id") or ""))
        if rec is None or rec.state == "reversed":
            raise SimError(-2, f"结算信息不存在: {data.get('setl_id')}")
        return {"setlinfo": rec.setlinfo, "setldetail": rec.setldetail}

    def totals(self, *, region: str, begndate: str, enddate: str, insutype: str | None = None,
               clr_type: str | None = None, setl_optins: str | None = None,
               fixmedins_code: str | None = None) -> dict[str, Any]:
        """The ledger's totals of one institution's settlements in force (booked, not reversed or
        refunded)."""
        med = fund = acct = 0
        n = 0
        inc = self.fund_includes_acct.get(region, False)
        with self._mu:
            for r in self.settlements.values():
                si = r.setlinfo
                if r.state != "booked" or r.region != region or not (begndate <= r.setl_date <= enddate):
                    continue
                if insutype and r.insutype != insutype:
                    continue
                if fixmedins_code and r.fixmedins_code != fixmedins_code:
                    continue
                if clr_type and str(si.get("clr_type")) != clr_type:
                    continue
                if setl_optins and str(si.get("clr_optins")) != setl_optins:
                    continue
                a = scaled_int(si["acct_pay"], 2)
                med += scaled_int(si["medfee_sumamt"], 2)
                fund += scaled_int(si["fund_pay_sumamt"], 2) + (a if inc else 0)
                acct += a
                n += 1
        return {"medfee_sumamt": med, "fund_pay_sumamt": fund, "acct_pay": acct, "count": n}

    def _t3201(self, env, inp, data, msgid, region) -> dict:
        t = self.totals(region=region, begndate=str(data.get("stmt_begndate"))[:10],
                        enddate=str(data.get("stmt_enddate"))[:10], insutype=data.get("insutype"),
                        clr_type=data.get("clr_type"), setl_optins=data.get("setl_optins"),
                        fixmedins_code=str(env.get("fixmedins_code") or ""))
        diffs = []
        for k, mine in (("medfee_sumamt", t["medfee_sumamt"]), ("fund_pay_sumamt", t["fund_pay_sumamt"]),
                        ("acct_pay", t["acct_pay"])):
            try:
                theirs = scaled_int(data.get(k), 2)
            except Exception:
                raise SimError(-2, f"{k} 格式错误") from None
            if theirs != mine:
                diffs.append(f"{k} 中心 {fen_decimal(mine)} 机构 {fen_decimal(theirs)}")
        if int(data.get("fixmedins_setl_cnt") or 0) != t["count"]:
            diffs.append(f"笔数 中心 {t['count']} 机构 {data.get('fixmedins_setl_cnt')}")
        return {"stmtinfo": {"setl_optins": data.get("setl_optins"), "stmt_rslt": "1" if diffs else "0",
                             "stmt_rslt_dscr": "；".join(diffs) if diffs else "对账平"}}

    # ------------------------------------------------------------------ inspection
    def booked(self, *, mdtrt_id: str | None = None, psn_no: str | None = None) -> list[Settled]:
        with self._mu:
            return [r for r in self.settlements.values() if r.state == "booked"
                    and (mdtrt_id is None or r.mdtrt_id == mdtrt_id) and (psn_no is None or r.psn_no == psn_no)]

    def ledger(self) -> dict[str, Any]:
        with self._mu:
            states: dict[str, int] = {}
            for r in self.settlements.values():
                states[r.state] = states.get(r.state, 0) + 1
            return {"requests": len(self.received), "msgids": len(self.msgids), "persons": len(self.persons),
                    "visits": len(self.visits), "settlements": states,
                    "faults_injected": len(self.injected),
                    "booked": [{"setl_id": r.setl_id, "msgid": r.msgid, "mdtrt_id": r.mdtrt_id, "psn_no": r.psn_no,
                                "setl_date": r.setl_date, "medfee_sumamt": str(r.setlinfo["medfee_sumamt"])}
                               for r in self.settlements.values() if r.state == "booked"]}

    # ------------------------------------------------------------------ HTTP
    def start(self) -> "PlatformSimulator":
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms Nagle stall
            server_version = "rules-engine-platform-sim"

            def log_message(self, fmt: str, *args: Any) -> None:  # quiet
                pass

            def _reply(self, status: int, body: bytes, ctype: str = "application/json;charset=UTF-8") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _read(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n > 0 else b""

            def do_GET(self) -> None:
                if self.path.startswith("/sim/health"):
                    self._reply(200, _bytes({"ok": True}))
                elif self.path.startswith("/sim/ledger"):
                    self._reply(200, _bytes(sim.ledger()))
                elif self.path.startswith("/sim/received"):
                    with sim._mu:
                        self._reply(200, _bytes(list(sim.received)))
                else:
                    self._reply(404, _bytes({"error": "not found"}))

            def do_DELETE(self) -> None:
                self._read()
                if self.path.startswith("/sim/faults"):
                    sim.clear_faults()
                    self._reply(200, _bytes({"ok": True}))
                else:
                    self._reply(404, _bytes({"error": "not found"}))

            def do_POST(self) -> None:
                body = self._read()
                if self.path.startswith("/sim/"):
                    try:
                        data = json.loads(body or b"null", parse_float=Decimal)
                        if self.path.startswith("/sim/faults"):
                            for f in (data if isinstance(data, list) else [data]):
                                sim.inject(**f)
                            self._reply(200, _bytes({"ok": True, "faults": len(sim.faults)}))
                        elif self.path.startswith("/sim/register"):
                            ids = [sim.register_claim(c) for c in (data if isinstance(data, list) else [data])]
                            self._reply(200, _bytes({"ok": True, "mdtrt_ids": ids}))
                        elif self.path.startswith("/sim/expire-signins"):
                            sim.expire_signins()
                            self._reply(200, _bytes({"ok": True}))
                        else:
                            self._reply(404, _bytes({"error": "not found"}))
                    except (ValueError, TypeError, KeyError) as e:
                        self._reply(400, _bytes({"error": str(e)}))
                    return
                status, out, fault = sim.handle(body)
                if out is None:  # drop: close without a byte of answer
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                if fault is not None and fault.kind in ("malformed",):
                    self.close_connection = True
                try:
                    self._reply(status, out, "text/html" if status >= 400 and out.startswith(b"<") else
                                "application/json;charset=UTF-8")
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 256

        self._server = Server((self.host, self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="platform-sim", daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/fsi/api/rsfComIfsService/callService"

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "PlatformSimulator":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# --------------------------------------------------------------------------- helpers

def _bytes(v: Any) -> bytes:
    return compact_json(_plain(v)).encode("utf-8")


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items() if not str(k).startswith("_")}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _dec(v: Any) -> Decimal:
    if isinstance(v, Decimal):
        return v
    if isinstance(v, float):
        return Decimal(repr(v))
    return Decimal(str(v))


def _negate(d: Mapping[str, Any]) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, Decimal) and k not in ("pool_prop_selfpay", "age", "balc"):
            out[k] = -v
        else:
            out[k] = v
    return out


def _default_field(infno: str, kind: str) -> str:
    if infno in UPLOAD:
        return "result.0.inscp_scp_amt"
    if infno == "9001":
        return "signinoutb.sign_no"
    if infno == "3201":
        return "stmtinfo.stmt_rslt"
    return "setlinfo.setl_id" if kind == "missing_field" else "setlinfo.medfee_sumamt"


def _mutate(out: Any, path: str, kind: str) -> None:
    parts = path.split(".")
    node = out
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node.get(p)
        if node is None:
            return
    last = parts[-1]
    if isinstance(node, list):
        idx = int(last)
        if kind == "missing_field":
            node.pop(idx)
        else:
            node[idx] = "abc"
    elif isinstance(node, dict):
        if kind == "missing_field":
            node.pop(last, None)
        else:
            node[last] = "abc"


def serve(regions: str, *, host: str = "127.0.0.1", port: int = 8901, **kw: Any) -> PlatformSimulator:
    return PlatformSimulator(regions, host=host, port=port, **kw).start()
