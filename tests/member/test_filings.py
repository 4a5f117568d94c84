"""异地就医备案: bad filings refused with nothing recorded; a filing changes the money (one example
pack per shape of cut: ratio minus points, prior self-pay, factor); a revoked filing does not."""
from __future__ import annotations

from decimal import Decimal

import pytest
from member_helpers import CLINIC, PURPOSE, consent, days, entries, today

from rules_engine.member import MemberError
from rules_engine.member.sandbox import EX, INPATIENT_10K


def _person(sb, svc, region: str) -> str:
    psn = f"P-{region}"
    sb.sim.add_person(psn, gend="1", age=50, insurance=[{"insutype": "310", "psn_type": "11",
                                                          "insuplc_admdvs": region, "balc": "0.00"}])
    consent(svc, psn, ["insurance", "filings"])
    return psn


def _claim(psn: str, region: str) -> dict:
    return dict(INPATIENT_10K, psn_no=psn, insuplc_admdvs=region, age=50, setl_time=f"{days(1)} 10:00:00")


def _hifp(r: dict) -> Decimal:
    return Decimal(str(r["output"]["setlinfo"]["hifp_pay"]))


@pytest.mark.parametrize("region, cut, unfiled, filed", [
    ("990011", "ratio_minus", "5850.00", "6300.00"),     # 80 % − 15 points vs − 10 points, of 9,000
    ("990012", "prior_selfpay", "5600.00", "6400.00"),   # 20 % vs 10 % self-paid first, then 80 %
    ("990013", "ratio_times", "5760.00", "6480.00"),     # 80 % × 0.8 vs × 0.9
])
def test_file_settle_revoke_settle_again(sandbox, svc, region, cut, unfiled, filed):
    psn = _person(sandbox, svc, region)
    claim = _claim(psn, region)
    before = svc.settle(claim, purpose=PURPOSE, caller=CLINIC)
    assert before["filing"] is None and "未备案" in before["summary"]
    f = svc.file(psn, type="referral", admdvs="110000", begndate=today().isoformat(), enddate=days(10),
                 purpose=PURPOSE, caller=CLINIC)
    fid = f["filing"]["id"]
    during = svc.settle(claim, purpose=PURPOSE, caller=CLINIC)
    svc.revoke(psn, fid, purpose=PURPOSE, caller=CLINIC, reason="trip cancelled")
    after = svc.settle(claim, purpose=PURPOSE, caller=CLINIC)
    assert (_hifp(before), _hifp(during), _hifp(after)) == (Decimal(unfiled), Decimal(filed), Decimal(unfiled))
    assert _hifp(during) - _hifp(before) == Decimal(filed) - Decimal(unfiled) > 0
    # the explanation names the filing: type, dates and where it came from
    ex = next(x for x in during["output"]["explanation"] if x.get("field") == "filing")
    assert ex["filing_type"] == "referral" and cut in ex["formula"].replace(" ", "_")
    assert ex["filing"]["id"] == fid and ex["filing"]["begndate"] == today().isoformat()
    assert "filing query" in ex["filing"]["source"]
    assert after["filing"] is None


def test_the_platform_settles_under_the_filing_it_holds(sandbox, svc):
    """Our settlement and the simulator's agree: both pick the filing from the platform's record."""
    psn = _person(sandbox, svc, "990012")
    svc.file(psn, type="other_temporary", admdvs="110000", begndate=today().isoformat(), enddate=days(5),
             purpose=PURPOSE, caller=CLINIC)
    rec = sandbox.sim.filing_for(psn, days(1), "110105")      # a district inside the filed province
    assert rec is not None and rec.type == "other_temporary"


def test_a_revoked_filing_named_in_a_claim_is_refused(sandbox, svc):
    psn = _person(sandbox, svc, "990012")
    f = svc.file(psn, type="referral", admdvs="110000", begndate=today().isoformat(), enddate=days(10),
                 purpose=PURPOSE, caller=CLINIC)
    svc.revoke(psn, f["filing"]["id"], purpose=PURPOSE, caller=CLINIC)
    with pytest.raises(MemberError) as e:
        svc.settle(dict(_claim(psn, "990012"), filing={"id": f["filing"]["id"]}), purpose=PURPOSE, caller=CLINIC)
    assert e.value.code == "E-FILING-REVOKED" and e.value.errors[0]["path"] == "filing.id"
    with pytest.raises(MemberError) as e:
        svc.revoke(psn, f["filing"]["id"], purpose=PURPOSE, caller=CLINIC)
    assert e.value.code == "E-FILING-STATE"


def test_a_claim_cannot_bring_its_own_filing_type(sandbox, svc):
    psn = _person(sandbox, svc, "990012")
    with pytest.raises(MemberError) as e:
        svc.settle(dict(_claim(psn, "990012"), filing_type="resettled_retiree"), purpose=PURPOSE, caller=CLINIC)
    assert e.value.code == "E-FILING-INVALID"


@pytest.mark.parametrize("bad, code, path", [
    (dict(begndate=days(5), enddate=days(1)), "E-FILING-INVALID", "enddate"),
    (dict(admdvs="990099"), "E-MEMBER-REGION", "admdvs"),
    (dict(admdvs="11000"), "E-MEMBER-REGION", "admdvs"),
    (dict(type="holiday"), "E-FILING-INVALID", "type"),
    (dict(enddate=None), "E-FILING-INVALID", "enddate"),              # temporary filings end
    (dict(admdvs="990012"), "E-FILING-INVALID", "admdvs"),           # the insured place itself
])
def test_a_bad_filing_is_refused_located_with_nothing_recorded(sandbox, svc, bad, code, path):
    psn = _person(sandbox, svc, "990012")
    args = dict(type="referral", admdvs="110000", begndate=days(1), enddate=days(10))
    args.update(bad)
    with pytest.raises(MemberError) as e:
        svc.file(psn, purpose=PURPOSE, caller=CLINIC, **args)
    assert e.value.code == code and path in [x["path"] for x in e.value.errors]
    assert sandbox.sim.filings == {}
    assert not any(x.payload.get("op") == "file" for x in entries(svc.journal, "member.query"))
    assert [x.payload["code"] for x in entries(svc.journal, "member.refused")] == [code]


def test_an_overlapping_filing_of_the_same_type_is_refused(sandbox, svc):
    psn = _person(sandbox, svc, "990012")
    first = svc.file(psn, type="referral", admdvs="110000", begndate=days(1), enddate=days(10), purpose=PURPOSE,
                     caller=CLINIC)
    with pytest.raises(MemberError) as e:
        svc.file(psn, type="referral", admdvs="130000", begndate=days(5), enddate=days(20), purpose=PURPOSE,
                 caller=CLINIC)
    assert e.value.code == "E-FILING-OVERLAP" and first["filing"]["id"] in e.value.message
    assert len(sandbox.sim.filings) == 1
    # another type may overlap, and the same type may follow once the first ends
    svc.file(psn, type="other_temporary", admdvs="110000", begndate=days(5), enddate=days(8), purpose=PURPOSE,
             caller=CLINIC)
    svc.file(psn, type="referral", admdvs="110000", begndate=days(11), enddate=days(12), purpose=PURPOSE,
             caller=CLINIC)
    listed = svc.filings(psn, purpose=PURPOSE, caller=CLINIC)
    assert len(listed["output"]["filings"]) == 3 and "异地转诊" in listed["summary"]


def test_the_example_person_files_as_the_demo_does(svc):
    consent(svc, EX, ["filings"])
    f = svc.file(EX, type="other_temporary", admdvs="110000", begndate=today().isoformat(), enddate=days(3),
                 purpose=PURPOSE, caller=CLINIC)
    assert f["infno"] == "2501" and f["filing"]["type_name"] == "其他临时外出" and "备案号" in f["summary"]
