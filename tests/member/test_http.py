"""/v1/member/... in the settlement service: same keys and role, problem+json refusals, the
caller's key id as the party a consent is granted to."""
from __future__ import annotations

import json

from member_helpers import PURPOSE, days, today

from rules_engine.member.sandbox import BJ, CONSULTATION

PROBLEM = "application/problem+json"


def _consent(http, data=("insurance", "benefits", "payment")):
    r = http.post("/v1/member/consents", json={"psn_no": BJ, "data": list(data), "purpose": PURPOSE,
                                               "channel": "im", "until": days(30), "certno": "110101198001010011"})
    assert r.status_code == 201, r.text
    return r.json()


def test_no_consent_is_a_403_problem(http):
    r = http.get(f"/v1/member/persons/{BJ}/insurance", params={"purpose": PURPOSE})
    assert r.status_code == 403 and r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["code"] == "E-CONSENT-MISSING" and BJ in body["detail"] and body["status"] == 403


def test_consent_then_queries_then_withdrawal(http):
    c = _consent(http)
    assert c["granted_to"] == "his"                     # the API key's id
    r = http.get(f"/v1/member/persons/{BJ}/insurance", params={"purpose": PURPOSE})
    assert r.status_code == 200, r.text
    assert r.json()["output"]["insuinfo"][0]["insuplc_admdvs"] == "110000" and r.json()["summary"]
    b = http.get(f"/v1/member/persons/{BJ}/benefits", params={"purpose": PURPOSE})
    assert b.status_code == 200 and "estimate" in b.json()["estimate"]["label"]
    listed = http.get(f"/v1/member/persons/{BJ}/consents").json()["consents"]
    assert [x["consent_id"] for x in listed] == [c["consent_id"]]
    w = http.post(f"/v1/member/consents/{c['consent_id']}/withdraw", json={"reason": "done"})
    assert w.status_code == 200 and w.json()["withdrawn"] is True
    again = http.get(f"/v1/member/persons/{BJ}/insurance", params={"purpose": PURPOSE})
    assert again.status_code == 403 and again.json()["code"] == "E-CONSENT-WITHDRAWN"


def test_the_service_journal_holds_the_member_entries(http):
    _consent(http)
    http.get(f"/v1/member/persons/{BJ}/insurance", params={"purpose": PURPOSE})
    from rules_engine.journal import Journal
    with Journal(http.journal_path, create=False) as j:
        kinds = [e.kind for e in j.entries()]
        assert kinds == ["consent.given", "member.query"] and j.verify().ok


def test_keys_and_roles_are_the_services(http):
    r = http.get(f"/v1/member/persons/{BJ}/insurance", params={"purpose": PURPOSE},
                 headers={"Authorization": ""})
    assert r.status_code == 401 and r.json()["code"] == "E-AUTH-MISSING"
    r = http.get(f"/v1/member/persons/{BJ}/insurance", params={"purpose": PURPOSE},
                 headers={"Authorization": "Bearer rek_admin-" + "b" * 40})
    assert r.status_code == 403 and r.json()["code"] == "E-AUTH-ROLE"


def test_a_bad_filing_is_a_located_422(http):
    r = http.post("/v1/member/consents", json={"psn_no": BJ, "data": ["filings"], "purpose": PURPOSE,
                                               "channel": "im", "until": days(30)})
    assert r.status_code == 201
    r = http.post(f"/v1/member/persons/{BJ}/filings", json={"type": "referral", "admdvs": "130000",
                                                            "begndate": days(5), "enddate": days(1),
                                                            "purpose": PURPOSE})
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    assert [e["path"] for e in r.json()["errors"]] == ["enddate"]


def test_evoucher_pay_refund_and_a_forged_callback(http, sandbox):
    _consent(http)
    claim = dict(CONSULTATION, psn_no=BJ, age=45, mdtrt_id="H1", setl_time=f"{today().isoformat()} 09:00:00")
    p = http.post("/v1/member/evoucher/orders", json={"claim": claim, "ec_token": sandbox.sim.issue_ec_token(BJ),
                                                      "purpose": PURPOSE})
    assert p.status_code == 201, p.text
    order = p.json()["order"]
    assert http.get(f"/v1/member/evoucher/orders/{order}", params={"purpose": PURPOSE}).json()["state"] == "PAID"
    wire = json.loads(sandbox.sim.notification({"payOrdId": p.json()["output"]["payOrdId"], "ordStas": "7"}))
    wire["signData"] = "A" * len(wire["signData"])
    cb = http.post("/v1/member/evoucher/callback", content=json.dumps(wire), headers={"Authorization": ""})
    assert cb.status_code == 403 and cb.json()["code"] == "E-EVOUCHER-SIGNATURE"
    r = http.post(f"/v1/member/evoucher/orders/{order}/refund", json={"purpose": PURPOSE})
    assert r.status_code == 200 and r.json()["state"] == "REFUNDED"


def test_member_metrics_are_on_the_service_metrics(http):
    _consent(http)
    http.get(f"/v1/member/persons/{BJ}/insurance", params={"purpose": PURPOSE})
    text = http.get("/metrics").text
    assert 'rules_engine_member_queries_total{op="insurance",outcome="ok"} 1.0' in text
    assert "rules_engine_outbox_awaiting_reversal" in text and "rules_engine_member_consents_total" in text
