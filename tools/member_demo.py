"""The member-services demo (`make member-demo`): a simulated platform on loopback, and what an
internet clinic's chat window asks through our gateway — a consent recorded, a person's insurance
and remaining benefits, a temporary cross-province filing that changes the money (the same claim
settled unfiled and filed), a consultation paid by 医保电子凭证 and refunded, a withdrawn consent
that stops the next query, and the hash-chained journal verified (and an edit in it detected).

Runs from a fresh clone: fresh SM2 keys and every file live in a temporary folder (--keep DIR to
look at them). Exits non-zero when any step does not end as it should.

    .venv/bin/python tools/member_demo.py [--keep DIR]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLINIC, PURPOSE = "clinic-demo", "online-consultation"
failures: list[str] = []


def step(title: str) -> None:
    print(f"\n── {title}")


def show(label: str, value: object) -> None:
    print(f"   {label:<14} {value}")


def check(ok: bool, what: str) -> None:
    print(f"   {'✓' if ok else '✗'} {what}")
    if not ok:
        failures.append(what)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep", type=Path, default=None, help="write the sandbox here and keep it")
    args = ap.parse_args()
    t0 = time.perf_counter()
    from rules_engine import Engine
    from rules_engine.member import MemberError
    from rules_engine.member.sandbox import BJ, CONSULTATION, EX, INPATIENT_10K, Sandbox

    root = args.keep or Path(tempfile.mkdtemp(prefix="member-demo-"))
    engine = Engine.from_directory(ROOT / "regions")
    sb = Sandbox.create(root, engine=engine)
    svc = sb.service(engine=engine)
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    d = lambda n: (today + dt.timedelta(days=n)).isoformat()  # noqa: E731
    try:
        step(f"platform simulator on {sb.sim.url} (移动支付 {sb.sim.payment_url}); settings in {root}")

        step(f"1. a query before any consent is refused")
        try:
            svc.insurance(BJ, purpose=PURPOSE, caller=CLINIC)
            check(False, "refused without consent")
        except MemberError as e:
            show("refused", f"{e.status} {e.code}: {e.message[:90]}…")
            check(e.status == 403, "403 without a consent on record")

        step(f"2. {BJ} consents, through the IM channel, for 30 days")
        c = svc.give_consent(BJ, granted_to=CLINIC, data=["insurance", "benefits", "payment"], purpose=PURPOSE,
                             channel="im", until=d(30), certno="110101198001010011", psn_name="张示例")
        show("consent", c["consent_id"])
        print(f"   {c['summary']}")

        step("3. 参保信息 (1101)")
        r = svc.insurance(BJ, purpose=PURPOSE, caller=CLINIC)
        row = r["output"]["insuinfo"][0]
        show("insuinfo", {k: str(row[k]) for k in ("insutype", "psn_type", "insuplc_admdvs", "balc")})
        print(f"   {r['summary']}")

        step("4. year-to-date (5206) and what remains — our estimate")
        b = svc.benefits(BJ, purpose=PURPOSE, caller=CLINIC)
        for x in b["output"]["cuminfo"]:
            show(x["cum_type_code"], x["cum"])
        for e in b["estimate"]["by_med_type"]:
            caps = ", ".join(f"cap {c_['amount']} remaining {c_['remaining']}" for lay in e["layers"] for c_ in lay["caps"])
            show(f"med_type {e['med_type']}", f"next 1,000.00 in scope → fund pays {e['fund_pay_sumamt']}"
                 + (f"; {caps}" if caps else ""))
        print(f"   {b['summary']}")
        check("estimate" in b["estimate"]["label"], "labelled an estimate")

        step(f"5. {EX} (insured in 990012) is treated in Beijing: unfiled, then with a temporary filing")
        svc.give_consent(EX, granted_to=CLINIC, data=["filings"], purpose=PURPOSE, channel="app", until=d(30))
        claim = dict(INPATIENT_10K, psn_no=EX, age=50, setl_time=f"{d(1)} 10:00:00")
        unfiled = svc.settle(claim, purpose=PURPOSE, caller=CLINIC)
        # 异地转诊 is a temporary filing; 990012 cuts it by a 10 % prior self-pay, an unfiled stay by 20 %
        f = svc.file(EX, type="referral", admdvs="110000", begndate=today.isoformat(), enddate=d(14),
                     purpose=PURPOSE, caller=CLINIC)
        print(f"   {f['summary']}")
        filed = svc.settle(claim, purpose=PURPOSE, caller=CLINIC)
        svc.revoke(EX, f["filing"]["id"], purpose=PURPOSE, caller=CLINIC, reason="demo")
        again = svc.settle(claim, purpose=PURPOSE, caller=CLINIC)
        amt = lambda r_: Decimal(str(r_["output"]["setlinfo"]["hifp_pay"]))  # noqa: E731
        print(f"   {'':<24}{'hifp_pay':>10}  {'psn_cash_pay':>12}")
        for label, r_ in (("unfiled", unfiled), ("filed (异地转诊)", filed), ("after 2502 revocation", again)):
            info = r_["output"]["setlinfo"]
            print(f"   {label:<24}{info['hifp_pay']:>10}  {info['psn_cash_pay']:>12}")
        show("difference", f"{amt(filed) - amt(unfiled)} yuan more from the fund with the filing")
        cut = next(x for x in filed["output"]["explanation"] if x.get("field") == "filing")
        show("explained", f"{cut['formula']} ({cut['at']}); filing {cut['filing']['id']}, "
             f"{cut['filing']['begndate']} … {cut['filing'].get('enddate')}, from {cut['filing']['source']}")
        check(amt(filed) > amt(unfiled) and amt(again) == amt(unfiled), "the filing changes the money; its revocation "
              "undoes that")
        try:
            svc.settle(dict(claim, filing={"id": f["filing"]["id"]}), purpose=PURPOSE, caller=CLINIC)
            check(False, "a claim naming the revoked filing is refused")
        except MemberError as e:
            check(e.code == "E-FILING-REVOKED", f"a claim naming the revoked filing is refused ({e.code})")

        step("6. a consultation paid by 医保电子凭证, then refunded")
        visit = dict(CONSULTATION, psn_no=BJ, age=45, mdtrt_id="DEMO-1", setl_time=f"{today.isoformat()} 09:30:00")
        p = svc.pay(visit, ec_token=sb.sim.issue_ec_token(BJ), purpose=PURPOSE, caller=CLINIC)
        print(f"   {p['summary']}")
        check(p["state"] == "PAID", "paid")
        try:
            svc.pay(visit, ec_token=sb.sim.issue_ec_token(BJ), purpose=PURPOSE, caller=CLINIC)
            check(False, "a second payment of the visit is refused")
        except MemberError as e:
            check(e.code == "E-EVOUCHER-ALREADY-PAID", f"a second payment is refused ({e.code})")
        s = svc.order_status(p["order"], purpose=PURPOSE, caller=CLINIC)
        show("status", s["state"])
        rf = svc.refund(p["order"], purpose=PURPOSE, caller=CLINIC)
        print(f"   {rf['summary']}")
        check(rf["state"] == "REFUNDED", "refunded")

        step("7. the person withdraws the consent: the next query is refused at once")
        svc.withdraw_consent(c["consent_id"], by="person", reason="demo")
        try:
            svc.insurance(BJ, purpose=PURPOSE, caller=CLINIC)
            check(False, "refused after withdrawal")
        except MemberError as e:
            check(e.code == "E-CONSENT-WITHDRAWN", f"refused: {e.code}")

        step("8. the journal: every consent and query, chained; personal fields masked")
        kinds: dict[str, int] = {}
        for e in svc.journal.entries():
            kinds[e.kind] = kinds.get(e.kind, 0) + 1
        show("entries", ", ".join(f"{k} ×{n}" for k, n in kinds.items()))
        jpath = Path(svc.journal.path)
        check(b"110101198001010011" not in jpath.read_bytes(), "the ID number is not in the file")
        svc.close()
        cli = [sys.executable, "-m", "rules_engine.cli", "journal", "verify"]
        v = subprocess.run([*cli, str(jpath)], capture_output=True, text=True)
        print(f"   $ rules-engine journal verify {jpath.name}\n   {(v.stdout or v.stderr).strip()}")
        check(v.returncode == 0, "the chain verifies")
        tampered = jpath.with_name("tampered.sqlite")
        shutil.copy(jpath, tampered)
        con = sqlite3.connect(tampered)
        seq, payload = con.execute("SELECT seq, payload_json FROM entries WHERE kind='consent.withdrawn'").fetchone()
        con.execute("UPDATE entries SET payload_json=? WHERE seq=?", (payload.replace("demo", "edit"), seq))
        con.commit()
        con.close()
        v = subprocess.run([*cli, str(tampered)], capture_output=True, text=True)
        print(f"   (an edited copy) $ rules-engine journal verify {tampered.name}\n   "
              + "\n   ".join((v.stdout + v.stderr).strip().splitlines()[:2]))
        check(v.returncode != 0 and f"seq {seq}" in v.stderr, f"the edited entry (seq {seq}) is named")
    except MemberError as e:
        failures.append(f"{e.code}: {e.message}")
        print(f"   ✗ unexpected refusal {e.code}: {e.message}")
    finally:
        svc.close()
        sb.close()
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\n{'FAILED: ' + '; '.join(failures) if failures else 'member demo: all steps as expected'} "
          f"({time.perf_counter() - t0:.1f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
