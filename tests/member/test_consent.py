"""Consent on record: no consent, another purpose or data, a withdrawn or invalid consent — each a
403/422 refusal that sends nothing to the platform and is itself journalled."""
from __future__ import annotations

import pytest
from member_helpers import CLINIC, PURPOSE, consent, days, entries

from rules_engine.member import MemberError
from rules_engine.member.sandbox import BJ


def _platform_calls(sb) -> int:
    return len(sb.sim.received)


def test_a_query_without_consent_is_refused_and_sends_nothing(svc, sandbox):
    before = _platform_calls(sandbox)
    with pytest.raises(MemberError) as e:
        svc.insurance(BJ, purpose=PURPOSE, caller=CLINIC)
    assert e.value.code == "E-CONSENT-MISSING" and e.value.status == 403
    assert BJ in e.value.message and "consent" in e.value.message
    assert _platform_calls(sandbox) == before
    refused = entries(svc.journal, "member.refused")
    assert refused and refused[-1].payload["code"] == "E-CONSENT-MISSING"


def test_withdrawn_consent_stops_the_very_next_query(svc, sandbox):
    c = consent(svc, BJ, ["insurance"])
    assert svc.insurance(BJ, purpose=PURPOSE, caller=CLINIC)["output"]["insuinfo"]
    svc.withdraw_consent(c["consent_id"], by="person", reason="changed my mind")
    before = _platform_calls(sandbox)
    with pytest.raises(MemberError) as e:
        svc.insurance(BJ, purpose=PURPOSE, caller=CLINIC)
    assert e.value.code == "E-CONSENT-WITHDRAWN" and e.value.status == 403
    assert _platform_calls(sandbox) == before


def test_withdrawal_seen_by_a_second_service_on_the_same_journal(sandbox, engine):
    """Another worker/process sharing the journal file sees the withdrawal at once (no cache)."""
    a, b = sandbox.service(engine=engine), sandbox.service(engine=engine)
    try:
        c = consent(a, BJ, ["insurance"])
        b.insurance(BJ, purpose=PURPOSE, caller=CLINIC)
        a.withdraw_consent(c["consent_id"], by="person")
        with pytest.raises(MemberError) as e:
            b.insurance(BJ, purpose=PURPOSE, caller=CLINIC)
        assert e.value.code == "E-CONSENT-WITHDRAWN"
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("ask", [
    dict(caller="clinic-b", purpose=PURPOSE),            # another client
    dict(caller=CLINIC, purpose="marketing"),            # another purpose
])
def test_consent_is_for_one_client_and_one_purpose(svc, ask):
    consent(svc, BJ, ["insurance"])
    with pytest.raises(MemberError) as e:
        svc.insurance(BJ, **ask)
    assert e.value.status == 403


def test_consent_covers_only_the_data_named(svc):
    consent(svc, BJ, ["insurance"])
    with pytest.raises(MemberError) as e:
        svc.benefits(BJ, purpose=PURPOSE, caller=CLINIC)
    assert e.value.code == "E-CONSENT-SCOPE" and e.value.status == 403


@pytest.mark.parametrize("bad, path", [
    (dict(data=["everything"]), "data[0]"),
    (dict(channel="telepathy"), "channel"),
    (dict(until="2001-01-01"), "until"),
    (dict(until=days(2000)), "until"),
    (dict(psn_no="not a person!"), "psn_no"),
])
def test_a_bad_consent_is_refused_located_and_not_recorded(svc, bad, path):
    args = dict(psn_no=BJ, granted_to=CLINIC, data=["insurance"], purpose=PURPOSE, channel="im", until=days(30))
    args.update(bad)
    n = svc.journal.count()
    with pytest.raises(MemberError) as e:
        svc.give_consent(args.pop("psn_no"), **args)
    assert e.value.code == "E-CONSENT-INVALID" and e.value.status == 422
    assert path in [x["path"] for x in e.value.errors]
    assert svc.journal.count() == n


def test_withdrawing_twice_or_an_unknown_consent_is_refused(svc):
    c = consent(svc, BJ, ["insurance"])
    svc.withdraw_consent(c["consent_id"], by="person")
    with pytest.raises(MemberError) as e:
        svc.withdraw_consent(c["consent_id"], by="person")
    assert e.value.code == "E-CONSENT-STATE"
    with pytest.raises(MemberError) as e:
        svc.withdraw_consent("C" + "0" * 24, by="person")
    assert e.value.code == "E-CONSENT-UNKNOWN"
