"""医保电子凭证 payment: pay → status → refund; never paid twice across a lost answer or a timeout
(the unknown outcome is resolved with the status query before anything else); a notification
with a bad signature is refused and changes nothing."""
from __future__ import annotations

import pytest
from member_helpers import CLINIC, PURPOSE, consent, entries, today

from rules_engine.member import MemberError
from rules_engine.member.sandbox import BJ, CONSULTATION


def _visit(n: str = "V1") -> dict:
    return dict(CONSULTATION, psn_no=BJ, age=45, mdtrt_id=n, setl_time=f"{today().isoformat()} 11:00:00")


def _paid_on_platform(sb) -> int:
    return sum(1 for o in sb.sim.orders.values() if o["state"] == "paid")


def _sent(sb, role: str) -> int:
    return sum(1 for m in sb.sim.pay_received if m["role"] == role)


@pytest.fixture
def bj(svc):
    consent(svc, BJ, ["payment", "insurance"])
    return svc


def test_pay_status_refund(bj, sandbox):
    acc_before = {k: v for k, v in sandbox.sim.persons[BJ]["acc"]["310"].items() if v}
    p = bj.pay(_visit(), ec_token=sandbox.sim.issue_ec_token(BJ), purpose=PURPOSE, caller=CLINIC)
    assert p["state"] == "PAID" and "已支付" in p["summary"]
    amounts = p["output"]["amounts"]
    assert amounts["feeSumamt"] == "60.00" and set(amounts) == {"feeSumamt", "fundPay", "psnAcctPay", "ownPayAmt"}
    # our figure, kept beside the order, is computed with the person's 5206 year-to-date figures
    # (the deductible already paid): it is the platform's figure, not a fresh-year one
    assert p["output"]["ours"] == amounts
    assert bj.order_status(p["order"], purpose=PURPOSE, caller=CLINIC)["state"] == "PAID"
    assert _paid_on_platform(sandbox) == 1
    r = bj.refund(p["order"], purpose=PURPOSE, caller=CLINIC)
    assert r["state"] == "REFUNDED" and "已退款" in r["summary"]
    assert _paid_on_platform(sandbox) == 0
    after = {k: v for k, v in sandbox.sim.persons[BJ]["acc"]["310"].items() if v}
    assert after == acc_before                                        # the refund undid the payment's effect
    ops = [e.payload["op"] for e in entries(bj.journal, "member.query")]
    assert ops == ["pay", "status", "refund"]


def test_a_visit_is_never_paid_twice(bj, sandbox):
    p = bj.pay(_visit(), ec_token=sandbox.sim.issue_ec_token(BJ), purpose=PURPOSE, caller=CLINIC)
    with pytest.raises(MemberError) as e:
        bj.pay(_visit(), ec_token=sandbox.sim.issue_ec_token(BJ), purpose=PURPOSE, caller=CLINIC)
    assert e.value.code == "E-EVOUCHER-ALREADY-PAID" and p["order"] in e.value.message
    assert _paid_on_platform(sandbox) == 1 and _sent(sandbox, "pay") == 1


def test_a_lost_payment_answer_is_resolved_not_resent(bj, sandbox):
    """The platform books the payment and the connection drops: the status query says paid."""
    sandbox.sim.inject_payment("pay", "drop")
    p = bj.pay(_visit(), ec_token=sandbox.sim.issue_ec_token(BJ), purpose=PURPOSE, caller=CLINIC)
    assert p["state"] == "PAID"
    assert _sent(sandbox, "pay") == 1 and _sent(sandbox, "query") == 1
    assert _paid_on_platform(sandbox) == 1
    with pytest.raises(MemberError):
        bj.pay(_visit(), ec_token=sandbox.sim.issue_ec_token(BJ), purpose=PURPOSE, caller=CLINIC)
    assert _sent(sandbox, "pay") == 1


def test_a_timed_out_payment_is_resolved_before_any_retry(fast_sandbox, engine):
    """The answer arrives after our read timeout (a simulated timeout): UNKNOWN → 6301 → PAID."""
    sb = fast_sandbox
    svc = sb.service(engine=engine)
    try:
        consent(svc, BJ, ["payment"])
        sb.sim.inject_payment("pay", "delay", seconds=1.0)
        p = svc.pay(_visit(), ec_token=sb.sim.issue_ec_token(BJ), purpose=PURPOSE, caller=CLINIC)
        assert p["state"] == "PAID" and _sent(sb, "pay") == 1 and _sent(sb, "query") >= 1
        assert _paid_on_platform(sb) == 1
    finally:
        svc.close()


def test_a_payment_the_platform_did_not_process_is_revoked_then_paid_once(bj, sandbox):
    """HTTP 500 on the payment: unknown; the status query says unpaid, so the order is revoked (it
    can never be paid late) and the visit may be paid afresh — once."""
    sandbox.sim.inject_payment("pay", "http_500")
    first = bj.pay(_visit(), ec_token=sandbox.sim.issue_ec_token(BJ), purpose=PURPOSE, caller=CLINIC)
    assert first["state"] == "FAILED"
    assert [o["state"] for o in sandbox.sim.orders.values()] == ["revoked"]
    second = bj.pay(_visit(), ec_token=sandbox.sim.issue_ec_token(BJ), purpose=PURPOSE, caller=CLINIC)
    assert second["state"] == "PAID" and second["order"] != first["order"]
    assert _paid_on_platform(sandbox) == 1


def test_an_unresolvable_outcome_blocks_retries(bj, sandbox):
    """No definite answer to the payment nor to the status query: the order stays UNKNOWN and a
    second payment of the visit is refused rather than risked."""
    sandbox.sim.inject_payment("pay", "drop")
    sandbox.sim.inject_payment("query", "http_500", times=5)
    p = bj.pay(_visit(), ec_token=sandbox.sim.issue_ec_token(BJ), purpose=PURPOSE, caller=CLINIC)
    assert p["state"] == "UNKNOWN"
    with pytest.raises(MemberError) as e:
        bj.pay(_visit(), ec_token=sandbox.sim.issue_ec_token(BJ), purpose=PURPOSE, caller=CLINIC)
    assert e.value.code == "E-EVOUCHER-PENDING"
    assert _sent(sandbox, "pay") == 1
    sandbox.sim.pay_faults.clear()
    assert bj.order_status(p["order"], purpose=PURPOSE, caller=CLINIC)["state"] == "PAID"


def test_a_callback_with_a_bad_signature_is_refused_and_changes_nothing(bj, sandbox):
    p = bj.pay(_visit(), ec_token=sandbox.sim.issue_ec_token(BJ), purpose=PURPOSE, caller=CLINIC)
    order = sandbox.sim.orders[p["output"]["payOrdId"]]
    import json
    good = sandbox.sim.notification({"payOrdId": order["payOrdId"], "ordStas": "7"})
    wire = json.loads(good)
    wire["signData"] = wire["signData"][:-8] + ("A" * 8 if not wire["signData"].endswith("A" * 8) else "B" * 8)
    journal = bj.evoucher.journal
    n = journal.count()
    with pytest.raises(MemberError) as e:
        bj.evoucher_callback(json.dumps(wire).encode())
    assert e.value.code == "E-EVOUCHER-SIGNATURE" and e.value.status == 403
    assert bj.evoucher.order(p["order"]).state == "PAID"
    assert journal.count() == n
    # the same notification, intact, is accepted (a paid order stays paid)
    assert bj.evoucher_callback(good)["state"] == "PAID"
    assert journal.count() == n + 1


def test_payment_needs_consent_and_a_token(svc, sandbox):
    with pytest.raises(MemberError) as e:
        svc.pay(_visit(), ec_token=sandbox.sim.issue_ec_token(BJ), purpose=PURPOSE, caller=CLINIC)
    assert e.value.code == "E-CONSENT-MISSING"
    consent(svc, BJ, ["payment"])
    with pytest.raises(MemberError) as e:
        svc.pay(_visit(), ec_token="", purpose=PURPOSE, caller=CLINIC)
    assert e.value.errors[0]["path"] == "ec_token"
    assert sandbox.sim.pay_received == []
