"""Every fault of the simulator at every step, with the gateway crashing before sending or after the
answer and before recording it, then a new gateway resuming from the outbox:

    exactly one booked settlement on the simulator (DONE in the outbox, same msgid), or none and a
    recorded failure or reversal — never two, never none unnoticed.

The crash here is in-process (`SimulatedCrash` unwinds without writing, the old gateway's owner id
dies with it); test_kill.py does the same with real processes and SIGKILL. After recovery the
operator's resubmission of a failed claim books it exactly once.
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gw_support import load, person, run, write_config  # noqa: E402

from rules_engine.gateway import outbox as ob  # noqa: E402
from rules_engine.gateway.client import Gateway, SimulatedCrash  # noqa: E402
from rules_engine.gateway.simulator import PlatformSimulator  # noqa: E402

ALL_FAULTS = [None, "delay", "hang", "drop", "http_500", "http_503_booked", "infcode_-1", "infcode_-2", "malformed",
              "reject_sign", "missing_field", "wrong_type"]
QUICK_FAULTS = [None, "drop", "http_500", "infcode_-1", "infcode_-2", "malformed", "reject_sign", "missing_field",
                "wrong_type"]
POINTS = [None, "before_send", "after_answer"]
CLOSED_WITHOUT_BOOKING = {ob.S_FAILED, ob.S_BLOCKED, ob.S_REVERSED}
CASES = ([("2207", f, p) for f in ALL_FAULTS for p in POINTS]
         + [("2204", f, p) for f in QUICK_FAULTS for p in POINTS]
         + [("2206", f, p) for f in QUICK_FAULTS for p in POINTS]
         + [("2601", f, p) for f in ("drop", "infcode_-1", "malformed") for p in POINTS])
_seq = itertools.count()


@pytest.fixture(scope="module")
def sim(engine):
    s = PlatformSimulator(engine=engine, hang_seconds=1.0).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def cfg(tmp_path_factory, sim):
    d = tmp_path_factory.mktemp("faults")
    write_config(d, sim.url, read=0.5, total=0.6)
    return load(d)


def inject(sim, step: str, fault: str | None, psn_no: str) -> None:
    if fault is None:
        return
    kind, kw = fault, {}
    if fault == "delay":
        kw["seconds"] = 1.0          # beyond the 0.6 s the gateway waits: an unknown outcome
    elif fault == "http_503_booked":
        kind, kw["book"] = "http_503", True
    elif fault == "missing_field" and step == "2206":
        kw["field"] = "setlinfo.fund_pay_sumamt"
    sim.inject(kind, step, psn_no=psn_no, **kw)


def check(sim, outbox, visit_key: str, mdtrt_id: str) -> tuple[ob.Row, list]:
    """The invariant. Returns the last submission of the visit and the booked settlements."""
    subs = outbox.submissions(visit_key=visit_key)
    last = subs[-1]
    booked = sim.booked(mdtrt_id=mdtrt_id)
    assert len(booked) <= 1, f"doubled: {[b.setl_id for b in booked]}"
    if last.state == ob.S_DONE:
        assert len(booked) == 1 and booked[0].msgid == last.settle_msgid and booked[0].setl_id == last.setl_id
    else:
        assert booked == [], f"booked on the platform but {last.state} in the outbox"
        assert last.state in CLOSED_WITHOUT_BOOKING, f"left in {last.state}"
        assert last.error_code, "a failure without a recorded reason"
    # every settlement request the outbox sent is accounted for
    for r in outbox.requests(submission=last.id, purpose="settle"):
        assert r.state in (ob.DONE, ob.FAILED, ob.REVERSED), (r.msgid, r.state)
    return last, booked


@pytest.mark.parametrize("step,fault,point", CASES, ids=[f"{s}-{f}-{p}" for s, f, p in CASES])
def test_fault_crash_resume(sim, cfg, engine, step, fault, point):
    config, adapter = cfg
    claim = person("beijing-outpatient", f"FAULT-{next(_seq):04d}")
    mdtrt = sim.register_claim(claim)
    visit = f"{claim['psn_no']}/{mdtrt}"
    if step == "2601":  # a 冲正 needs an unknown settlement first
        sim.inject("drop", "2207", psn_no=claim["psn_no"])
    inject(sim, step, fault, claim["psn_no"])

    def hook(p: str, infno: str) -> None:
        if p == point and infno == step:
            raise SimulatedCrash(p)

    async def go():
        gw = Gateway(config, engine=engine, adapter=adapter, crash=hook)
        try:
            await gw.submit(claim)
            await gw.aclose()
        except SimulatedCrash:
            gw.abandon()  # the process is gone: nothing more is written
        gw2 = Gateway(config, engine=engine, adapter=adapter)
        await gw2.resume()
        outbox = gw2.outbox("110000")
        last, booked = check(sim, outbox, visit, mdtrt)
        if last.state != ob.S_DONE:  # the operator resubmits: booked exactly once
            sim.clear_faults()
            r = await gw2.submit(claim)
            assert r.state == ob.S_DONE, (r.state, r.error)
            check(sim, outbox, visit, mdtrt)
        await gw2.aclose()

    try:
        run(go())
    finally:
        sim.clear_faults()


def test_a_bad_answer_is_a_failure_naming_the_field_never_done(sim, cfg, engine):
    """infcode 0 but setlinfo.setl_id missing: not done; the field is named; the settlement the
    platform may have booked is reversed."""
    config, adapter = cfg
    claim = person("beijing-outpatient", "FAULT-BAD")
    mdtrt = sim.register_claim(claim)
    sim.inject("missing_field", "2207", psn_no="FAULT-BAD")

    async def go():
        gw = Gateway(config, engine=engine, adapter=adapter)
        r = await gw.submit(claim, fresh_attempts=0)
        rows = gw.outbox("110000").requests(submission=r.submission)
        await gw.aclose()
        return r, rows

    r, rows = run(go())
    settle = next(x for x in rows if x.infno == "2207")
    assert r.state == ob.S_REVERSED and r.error_code == "E-GW-ANSWER-FIELD"
    assert settle.field == "output.setlinfo.setl_id" and settle.state == ob.REVERSED
    assert any(m["infno"] == "2207" and "setl_id" in m.get("detail", "") for m in r.messages)
    assert sim.booked(mdtrt_id=mdtrt) == []


def test_wrong_types_in_an_upload_answer_fail_the_submission_naming_the_line(sim, cfg, engine):
    config, adapter = cfg
    claim = person("beijing-inpatient", "FAULT-TYPE")
    sim.register_claim(claim)
    sim.inject("wrong_type", "2301", psn_no="FAULT-TYPE", field="result.2.fulamt_ownpay_amt")

    async def go():
        gw = Gateway(config, engine=engine, adapter=adapter)
        r = await gw.submit(claim)
        await gw.aclose()
        return r

    r = run(go())
    assert r.state == ob.S_FAILED and r.error_code == "E-GW-ANSWER-FIELD"
    assert "output.result[2].fulamt_ownpay_amt" in r.error and "abc" in r.error


FAST = ["drop", "http_500", "http_503_booked", "infcode_-1", "infcode_-2", "malformed", "reject_sign",
        "missing_field", "wrong_type"]


def test_any_sequence_of_faults_and_crashes_books_at_most_once(sim, cfg, engine):
    """Property: whatever faults hit whichever messages (several per claim, the 冲正 included) and
    wherever the process dies, after resume and at most two operator resubmissions the visit is
    booked exactly once, and at no moment twice."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    config, adapter = cfg
    steps = st.sampled_from(["2204", "2206", "2207", "2601"])

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(steps, st.sampled_from(FAST)), max_size=4),
           st.one_of(st.none(), st.tuples(st.sampled_from(["before_send", "after_answer"]), steps)),
           st.integers(min_value=0, max_value=2))
    def prop(faults, crash, fresh):
        claim = person("beijing-outpatient", f"PROP-{next(_seq):05d}")
        mdtrt = sim.register_claim(claim)
        for step, fault in faults:
            inject(sim, step, fault, claim["psn_no"])

        def hook(p, infno):
            if crash is not None and (p, infno) == crash:
                raise SimulatedCrash(p)

        async def go():
            gw = Gateway(config, engine=engine, adapter=adapter, crash=hook)
            try:
                await gw.submit(claim, fresh_attempts=fresh)
                await gw.aclose()
            except SimulatedCrash:
                gw.abandon()
            gw2 = Gateway(config, engine=engine, adapter=adapter)
            for _ in range(3):
                await gw2.resume()
                assert len(sim.booked(mdtrt_id=mdtrt)) <= 1
                last = gw2.outbox("110000").submissions(visit_key=f"{claim['psn_no']}/{mdtrt}")[-1]
                if last.state == ob.S_DONE:
                    break
                if last.state in (ob.S_REVERSING, ob.S_REVERSAL_FAILED):
                    await gw2.reverse(last.settle_msgid)
                    continue
                assert last.state in CLOSED_WITHOUT_BOOKING and last.error_code
                await gw2.submit(claim)
            check(sim, gw2.outbox("110000"), f"{claim['psn_no']}/{mdtrt}", mdtrt)
            sim.clear_faults()
            last = gw2.outbox("110000").submissions(visit_key=f"{claim['psn_no']}/{mdtrt}")[-1]
            if last.state != ob.S_DONE:
                await gw2.submit(claim)
            assert len(sim.booked(mdtrt_id=mdtrt)) == 1
            await gw2.aclose()

        try:
            run(go())
        finally:
            sim.clear_faults()

    prop()
