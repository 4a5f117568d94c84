"""The settlement flow against the simulator: normal, refused twice, refunded, 冲正, reconciled,
person fetched, sign-in renewed, a difference blocking 2207."""
from __future__ import annotations

import asyncio
import sys
import textwrap
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gw_support import load, new_code, person, run, write_config  # noqa: E402

from rules_engine.gateway.client import Gateway, GatewayError, SyncGateway  # noqa: E402
from rules_engine.gateway.simulator import PlatformSimulator  # noqa: E402

EXAMPLES = ["beijing-outpatient", "beijing-inpatient", "beijing-resident", "cross-region-hebei"]


@pytest.fixture(scope="module")
def sim(engine):
    s = PlatformSimulator(engine=engine, hang_seconds=1.0).start()
    yield s
    s.stop()


@pytest.fixture
def gwdir(tmp_path, sim):
    write_config(tmp_path, sim.url, read=0.5, total=0.8)
    sim.clear_faults()
    return tmp_path


def gateway(d: Path, engine, **kw) -> Gateway:
    cfg, adapter = load(d)
    return Gateway(cfg, engine=engine, adapter=adapter, **kw)


def test_the_example_claims_settle_once_and_agree_with_the_platform(gwdir, sim, engine):
    async def go():
        gw = gateway(gwdir, engine)
        out = []
        for i, name in enumerate(EXAMPLES):
            c = person(name, f"FLOW-A{i}")
            sim.register_claim(c)
            out.append(await gw.submit(c))
        await gw.aclose()
        return out

    results = run(go())
    for r in results:
        assert r.state == "DONE" and r.comparison["result"] == "match"
        assert [s.msgid for s in sim.booked(mdtrt_id=r.mdtrt_id)] == [r.settle_msgid]
        assert r.platform["medfee_sumamt"] == r.ours["medfee_sumamt"]
    infnos = [[m["infno"] for m in r.messages] for r in results]
    assert infnos[0] == ["2204", "2206", "2207"] and infnos[1] == ["2301", "2303", "2304"]


def test_a_second_submission_of_a_booked_visit_is_refused_before_sending(gwdir, sim, engine):
    c = person("beijing-outpatient", "FLOW-B")
    sim.register_claim(c)

    async def go():
        gw = gateway(gwdir, engine)
        await gw.submit(c)
        n = len(sim.received)
        with pytest.raises(GatewayError) as e:
            await gw.submit(c)
        await gw.aclose()
        return e.value, len(sim.received) - n

    err, sent = run(go())
    assert err.code == "E-GW-ALREADY-SETTLED" and sent == 0


def test_concurrent_submissions_of_one_visit_book_it_once(gwdir, sim, engine):
    """Two gateways (as two processes would) on one outbox, four threads each, one visit."""
    c = person("beijing-inpatient", "FLOW-C")
    sim.register_claim(c)
    cfg, adapter = load(gwdir)
    gws = [SyncGateway(cfg, engine=engine, adapter=adapter) for _ in range(2)]
    results, errors = [], []

    def go(g):
        try:
            results.append(g.submit(c))
        except GatewayError as e:
            errors.append(e.code)
        except Exception as e:  # pragma: no cover - shown in the assertion
            errors.append(repr(e))

    threads = [threading.Thread(target=go, args=(gws[i % 2],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g in gws:
        g.close()
    assert len(results) == 1 and results[0].state == "DONE", errors
    assert set(errors) <= {"E-GW-ALREADY-SETTLED", "E-GW-IN-FLIGHT"} and len(errors) == 7
    assert len(sim.booked(psn_no="FLOW-C")) == 1


def test_refund_then_submit_again(gwdir, sim, engine):
    c = person("beijing-outpatient", "FLOW-D")
    mdtrt = sim.register_claim(c)

    async def go():
        gw = gateway(gwdir, engine)
        r1 = await gw.submit(c)
        rev = await gw.reverse(r1.settle_msgid)
        assert sim.booked(mdtrt_id=mdtrt) == []
        r2 = await gw.submit(c)
        again = None
        try:
            await gw.reverse(r1.settle_msgid)
        except GatewayError as e:
            again = e.code
        await gw.aclose()
        return r1, rev, r2, again

    r1, rev, r2, again = run(go())
    assert rev["action"] == "refund" and rev["infno"] == "2208" and rev["ok"]
    assert r2.state == "DONE" and r2.setl_id != r1.setl_id and again == "E-GW-STATE"
    assert [s.setl_id for s in sim.booked(mdtrt_id=mdtrt)] == [r2.setl_id]


def test_an_unknown_settlement_is_reversed_then_settled_afresh(gwdir, sim, engine):
    c = person("beijing-outpatient", "FLOW-E")
    mdtrt = sim.register_claim(c)
    sim.inject("drop", "2207", psn_no="FLOW-E")  # booked, answer lost

    async def go():
        gw = gateway(gwdir, engine)
        r = await gw.submit(c)
        rows = gw.outbox("110000").requests(submission=r.submission)
        await gw.aclose()
        return r, rows

    r, rows = run(go())
    assert r.state == "DONE" and r.attempt == 2
    infnos = [(x.infno, x.state) for x in rows]
    assert ("2207", "REVERSED") in infnos and ("2601", "DONE") in infnos and infnos[-1] == ("2207", "DONE")
    rev = next(x for x in rows if x.infno == "2601")
    first = next(x for x in rows if x.infno == "2207")
    assert rev.omsgid == first.msgid and rev.oinfno == "2207"
    assert [s.msgid for s in sim.booked(mdtrt_id=mdtrt)] == [r.settle_msgid] != [first.msgid]


def test_a_reversal_without_a_definite_answer_stays_pending_then_an_operator_finishes_it(gwdir, sim, engine):
    c = person("beijing-outpatient", "FLOW-F")
    mdtrt = sim.register_claim(c)
    sim.inject("drop", "2207", psn_no="FLOW-F")
    sim.inject("drop", "2601", psn_no="FLOW-F", times=3)

    async def go():
        gw = gateway(gwdir, engine)
        r = await gw.submit(c)
        st = gw.status()
        assert gw.metrics.value("outbox_depth", state="UNKNOWN") >= 1
        assert gw.metrics.value("outbox_oldest_pending_seconds") > 0
        assert gw.metrics.value("reversals_total", kind="reversal", result="unknown") == 3
        with pytest.raises(GatewayError):
            await gw.submit(c)  # still locked: the outcome is not settled
        rev = await gw.reverse(r.settle_msgid)
        r2 = await gw.submit(c)
        await gw.aclose()
        return r, st, rev, r2

    r, st, rev, r2 = run(go())
    assert r.state == "REVERSING" and r.pending
    assert any(a.get("submission") == r.submission for a in st["attention"])
    assert rev["ok"] and rev["state"] == "REVERSED"
    assert r2.state == "DONE" and len(sim.booked(mdtrt_id=mdtrt)) == 1


def test_a_refused_reversal_needs_an_operator_and_keeps_the_visit_locked(gwdir, sim, engine):
    c = person("beijing-outpatient", "FLOW-G")
    mdtrt = sim.register_claim(c)
    sim.inject("drop", "2207", psn_no="FLOW-G")
    sim.inject("infcode_-2", "2601", psn_no="FLOW-G")

    async def go():
        gw = gateway(gwdir, engine)
        r = await gw.submit(c)
        locked = None
        try:
            await gw.submit(c)
        except GatewayError as e:
            locked = e.code
        rev = await gw.reverse(r.settle_msgid)
        await gw.aclose()
        return r, locked, rev

    r, locked, rev = run(go())
    assert r.state == "REVERSAL_FAILED" and r.error_code == "E-GW-BUSINESS" and locked == "E-GW-IN-FLIGHT"
    assert rev["ok"] and sim.booked(mdtrt_id=mdtrt) == []


def test_a_platform_that_disagrees_blocks_2207_and_explains_our_figure(gwdir, sim, engine):
    """The platform knows a different year-to-date deductible than the claim carries."""
    c = person("beijing-outpatient", "FLOW-H")
    platform_view = dict(c, accumulators={"outpatient_dedc_year": 0, "outpatient_fund_year": 0})
    mdtrt = sim.register_claim(platform_view)

    async def go():
        gw = gateway(gwdir, engine)
        r = await gw.submit(c)
        await gw.aclose()
        return r

    r = run(go())
    assert r.state == "BLOCKED" and r.error_code == "E-GW-COMPARE-BLOCKED" and sim.booked(mdtrt_id=mdtrt) == []
    diffs = {d["field"]: d for d in r.comparison["differences"]}
    assert "hifob_pay" in diffs and diffs["hifob_pay"]["severity"] == "block"
    assert diffs["hifob_pay"]["explanation"]["at"].startswith("regions/110000/2021.1/policy.yaml:")
    assert not [x for x in gateway(gwdir, engine).outbox("110000").requests(submission=r.submission)
                if x.infno == "2207"]

    async def accept():
        gw = gateway(gwdir, engine)
        r2 = await gw.submit(c, accept_differences=True)
        await gw.aclose()
        return r2

    r2 = run(accept())
    assert r2.state == "DONE" and any("accepted" in n for n in r2.notes)


def test_fetching_the_person_makes_the_figures_agree(gwdir, sim, engine):
    c = person("beijing-outpatient", "FLOW-I", certno="110101198001010011")
    sim.register_claim(dict(c, accumulators={"outpatient_dedc_year": 0, "outpatient_fund_year": 0}))
    bare = {k: v for k, v in c.items() if k not in ("age", "gend", "insutype", "accumulators")}
    (gwdir / "gateway-adapter.yaml").write_text(textwrap.dedent("""\
        version: 1
        defaults:
          person:
            accumulators: {outpatient_dedc_year: outpatient_dedc_year, outpatient_fund_year: outpatient_fund_year}
        """), encoding="utf-8")

    async def go():
        gw = gateway(gwdir, engine)
        r = await gw.submit(bare, fetch_person=True)
        await gw.aclose()
        return r

    r = run(go())
    assert r.state == "DONE" and r.comparison["result"] == "match", r.comparison
    assert [m["infno"] for m in r.messages] == ["2204", "2206", "2207"]


def test_a_refused_sign_no_is_renewed(gwdir, sim, engine):
    c1, c2 = person("beijing-outpatient", "FLOW-J1"), person("beijing-outpatient", "FLOW-J2")
    sim.register_claim(c1)
    sim.register_claim(c2)

    async def go():
        gw = gateway(gwdir, engine)
        await gw.submit(c1)
        sim.expire_signins()
        r = await gw.submit(c2)
        n = gw.metrics.value("signins_total", reason="rejected")
        await gw.aclose()
        return r, n

    r, n = run(go())
    assert r.state == "DONE" and n == 1


def test_reconcile_balances_and_says_when_it_does_not(tmp_path, engine):
    """A fresh platform: our day balances; then it books one settlement our outbox never heard of
    (医保单边, sent by another system) and 3201 says so."""
    c, other = person("beijing-resident", "FLOW-K1"), person("beijing-resident", "FLOW-K2")
    day = c["setl_time"][:10]
    code = new_code()
    with PlatformSimulator(engine=engine) as fresh:
        for d in ("a", "b"):
            (tmp_path / d).mkdir()
            write_config(tmp_path / d, fresh.url, code=code)
        fresh.register_claim(c)
        fresh.register_claim(other)

        async def go():
            gw = gateway(tmp_path / "a", engine)
            await gw.submit(c)
            balanced = await gw.reconcile(day)
            await asyncio.sleep(1.1)  # another system of the same hospital, a second later (own msgids)
            elsewhere = gateway(tmp_path / "b", engine)
            await elsewhere.submit(other)
            await elsewhere.aclose()
            await asyncio.sleep(1.1)  # and our next msgid a second after theirs
            unbalanced = await gw.reconcile(day)
            await gw.aclose()
            return balanced, unbalanced

        balanced, unbalanced = run(go())
    assert [r["balanced"] for r in balanced] == [True] and balanced[0]["fixmedins_setl_cnt"] == 1
    assert [r["balanced"] for r in unbalanced] == [False] and "笔数" in unbalanced[0]["stmt_rslt_dscr"]


def test_bad_dates_and_unknown_msgids_are_refused(gwdir, engine):
    async def go():
        gw = gateway(gwdir, engine)
        errs = []
        for coro in (gw.reconcile("2025-13-01"), gw.reverse("H11010500001209912312359590001")):
            try:
                await coro
            except GatewayError as e:
                errs.append(e.code)
        await gw.aclose()
        return errs

    assert run(go()) == ["E-GW-DATE", "E-GW-MSGID"]


def test_a_bad_claim_is_refused_before_anything_is_sent(gwdir, sim, engine):
    c = person("beijing-outpatient", "FLOW-L")
    c["feedetail"][0]["det_item_fee_sumamt"] = 1.0  # ≠ cnt × pric

    async def go():
        gw = gateway(gwdir, engine)
        n = len(sim.received)
        with pytest.raises(GatewayError) as e:
            await gw.submit(c)
        rows = gw.outbox("110000").requests()
        await gw.aclose()
        return e.value, len(sim.received) - n, rows

    err, sent, rows = run(go())
    assert err.code == "E-CLAIM" and err.errors[0]["path"] == "feedetail[0].det_item_fee_sumamt"
    assert sent == 0 and rows == []


def test_a_failed_sign_in_closes_the_submission_without_locking_the_visit(gwdir, sim, engine):
    c = person("beijing-outpatient", "FLOW-M")
    sim.register_claim(c)
    sim.inject("infcode_-2", "9001")

    async def go():
        gw = gateway(gwdir, engine)
        r1 = await gw.submit(c)
        r2 = await gw.submit(c)
        await gw.aclose()
        return r1, r2

    r1, r2 = run(go())
    assert r1.state == "FAILED" and r1.error_code == "E-GW-SIGNIN" and r1.messages == []
    assert r2.state == "DONE"
