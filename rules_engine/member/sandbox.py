"""A complete loopback set-up for the member service — for the demo, the benchmark and the tests:
fresh SM2 key pairs (never committed), gateway.yaml for the 定点 interface, a gateway.yaml-format
file for the 移动支付 channel (scheme B), member.yaml, and a simulator holding the platform's keys
and two example persons.

    sb = Sandbox.create(workdir, engine=engine)          # writes the files, starts the simulator
    svc = sb.service()                                    # a MemberService over it
    sb.close()

Persons (made up):
- `P-BJ-0001`: Beijing (110000) employee, in service, 45 years old; this year the whole
  1,800.00 outpatient deductible used and 20,000.00 paid by the inpatient fund;
- `P-EX-0012`: insured in the example region 990012 (which cuts a referral 10 %, other temporary
  stays and unfiled ones 20 % before its 80 %), 50 years old — treated in Beijing.
"""
from __future__ import annotations

import base64
import os
import secrets
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BJ, EX = "P-BJ-0001", "P-EX-0012"
APP_ID = "MEMBERDEMO0123456789ABCDEF012345"
INPATIENT_10K = {"insuplc_admdvs": "990012", "mdtrtarea_admvs": "110000", "insutype": "310", "med_type": "21",
                 "hosp_lv": "3", "feedetail": [{"feedetl_sn": "1", "med_list_codg": "001102000050000", "cnt": 1,
                                                "pric": 10000, "det_item_fee_sumamt": 10000}]}
CONSULTATION = {"insuplc_admdvs": "110000", "mdtrtarea_admvs": "110000", "insutype": "310", "med_type": "11", "hosp_lv": "3",
                "acct_used_flag": "1",
                "feedetail": [{"feedetl_sn": "C1", "med_list_codg": "001102000030000", "cnt": 1, "pric": 60,
                               "det_item_fee_sumamt": 60}]}


def _pair() -> tuple[bytes, bytes]:
    import gmssl_pyx
    public, private = gmssl_pyx.sm2_key_generate()
    return private, public


def _write(p: Path, text: str, secret: bool = False) -> Path:
    p.write_text(text, encoding="utf-8")
    if secret:
        os.chmod(p, 0o600)
    return p


@dataclass
class Sandbox:
    root: Path
    sim: Any
    fixmedins_code: str
    member_yaml: Path
    gateway_yaml: Path
    evoucher_yaml: Path
    platform_security: Any

    @classmethod
    def create(cls, root: Path, *, engine: Any, fixmedins_code: str | None = None, notify_url: str | None = None,
               journal_sync: str = "FULL", timeouts: str = "{connect: 2, read: 2, write: 2, total: 3}",
               persons: bool = True) -> "Sandbox":
        from ..gateway.security import SchemeB, Secret
        from .simulator import MemberPlatformSimulator
        root = Path(root)
        keys = root / "keys"
        keys.mkdir(parents=True, exist_ok=True)
        code = fixmedins_code or "H" + "".join(secrets.choice("0123456789") for _ in range(11))
        c_priv, c_pub = _pair()
        p_priv, p_pub = _pair()
        app_secret = secrets.token_hex(16).upper()
        _write(keys / "channel.key", base64.b64encode(c_priv).decode() + "\n", True)
        _write(keys / "channel.pub", base64.b64encode(b"\x04" + c_pub).decode() + "\n")
        _write(keys / "platform.pub", base64.b64encode(b"\x04" + p_pub).decode() + "\n")
        _write(keys / "app.secret", app_secret + "\n", True)
        platform = SchemeB(app_id=APP_ID, app_secret=Secret(app_secret, "sandbox"), private_key=Secret(p_priv, "sandbox"),
                           public_key=p_pub, peer_public_key=c_pub)
        sim = MemberPlatformSimulator(engine=engine, payment_security=platform, notify_url=notify_url,
                                      institutions={code: "3"}).start()
        gw = _write(root / "gateway.yaml", textwrap.dedent(f"""\
            # the 定点 interface: the simulator on loopback
            version: 1
            defaults:
              operator: {{opter_type: "1", opter: "0001", opter_name: 演示经办人}}
              outbox: {{path: outbox.sqlite}}
              timeouts: {timeouts}
              retry: {{max_attempts: 2, initial_backoff: 0.05, max_backoff: 0.1}}
            regions:
              "110000": {{endpoint: "{sim.url}", fixmedins_code: {code}, fixmedins_name: 示例互联网医院（虚构）,
                         recer_sys_code: YBXT}}
            """))
        ev = _write(root / "evoucher-gateway.yaml", textwrap.dedent(f"""\
            # the 移动支付 channel (scheme B): the simulator's payment platform on loopback
            version: 1
            defaults:
              operator: {{opter_type: "1", opter: "0001", opter_name: 演示经办人}}
              outbox: {{path: outbox.sqlite}}
              timeouts: {timeouts}
            regions:
              "110000":
                endpoint: "{sim.payment_url}"
                fixmedins_code: {code}
                fixmedins_name: 示例互联网医院（虚构）
                recer_sys_code: YBXT
                message_security:
                  plugin: scheme_b
                  app_id: {APP_ID}
                  app_secret: {{file: keys/app.secret}}
                  private_key: {{file: keys/channel.key}}
                  public_key: {{file: keys/channel.pub}}
                  platform_public_key: {{file: keys/platform.pub}}
            """))
        mem = _write(root / "member.yaml", textwrap.dedent(f"""\
            version: 1
            gateway: gateway.yaml
            region: "110000"
            journal: {{path: member-journal.sqlite, sync: {journal_sync}}}
            consent: {{max_days: 365}}
            evoucher: {{gateway: evoucher-gateway.yaml, region: "110000"}}
            """))
        sb = cls(root, sim, code, mem, gw, ev, platform)
        if persons:
            sb.add_persons()
        return sb

    def add_persons(self) -> None:
        self.sim.add_person(BJ, certno="110101198001010011", psn_name="张示例", gend="1", age=45,
                            insurance=[{"insutype": "310", "psn_type": "11", "insuplc_admdvs": "110000",
                                        "balc": "1500.00", "psn_insu_date": "2005-07-01"}],
                            accumulators={"310": {"outpatient_dedc_year": "1800.00",
                                                  "inpatient_fund_year": "20000.00"}},
                            chronic=[{"code": "M03900", "name": "高血压", "begndate": "2023-01-01",
                                      "enddate": None}])
        self.sim.add_person(EX, certno="990012197401010022", psn_name="李示例", gend="2", age=50,
                            insurance=[{"insutype": "310", "psn_type": "11", "insuplc_admdvs": "990012",
                                        "balc": "800.00", "psn_insu_date": "2010-01-01"}])

    def service(self, **kw: Any) -> Any:
        from .service import MemberService
        from .settings import require_member_settings
        return MemberService.from_settings(require_member_settings(self.member_yaml), **kw)

    def close(self) -> None:
        self.sim.stop()
