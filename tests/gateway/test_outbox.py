"""The outbox: a request exists (PENDING, msgid allocated) before anything is sent; one visit has
one open submission; a dead owner's work can be taken over, a live one's cannot; personal data is
not kept once a submission closes."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading

import pytest

from rules_engine.gateway import outbox as ob
from rules_engine.gateway.envelope import Answer, Outcome


def make(tmp_path, **kw) -> ob.Outbox:
    return ob.Outbox(tmp_path / "outbox.sqlite", synchronous="NORMAL", **kw)


def record(o: ob.Outbox, **kw):
    args = dict(region="110000", fixmedins_code="H11010500001", infno="2207", purpose="settle", owner="me",
                build=lambda m, t: {"msgid": m, "input": {"data": {"certno": "110101199001011234", "psn_no": "P"}}})
    args.update(kw)
    return o.record(**args)


def test_a_request_is_pending_with_its_msgid_before_sending(tmp_path):
    o = make(tmp_path)
    msgid, env = record(o)
    r = o.request(msgid)
    assert r.state == ob.PENDING and env["msgid"] == msgid and len(r.request_hash) == 64
    # the stored request names no one
    assert "110101199001011234" not in r.request and json.loads(r.request)["input"]["data"]["certno"] == "***"
    assert stat.S_IMODE(os.stat(o.path).st_mode) == 0o600


def test_a_failing_build_records_nothing_and_burns_no_msgid(tmp_path):
    o = make(tmp_path)
    with pytest.raises(RuntimeError):
        record(o, build=lambda m, t: (_ for _ in ()).throw(RuntimeError("boom")))
    assert o.requests() == []
    m, _ = record(o)
    assert m.endswith("0001")


def claim_for(visit: str) -> dict:
    return {"psn_no": "P", "certno": "110101199001011234", "psn_name": "张三", "feedetail": []}


def open_sub(o: ob.Outbox, visit: str = "P/M1", owner: str = "me") -> str:
    return o.open_submission(region="110000", insuplc="110000", psn_no="P", mdtrt_id=visit.split("/")[1],
                             visit_key=visit, kind="outpatient", claim=claim_for(visit), owner=owner)


def test_one_visit_has_one_open_submission_even_under_concurrency(tmp_path):
    o = make(tmp_path)
    results, errors = [], []

    def go():
        try:
            results.append(open_sub(o))
        except ob.InFlight as e:
            errors.append(e)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 1 and len(errors) == 7 and all(e.code == "E-GW-IN-FLIGHT" for e in errors)


def test_a_booked_visit_is_refused_until_refunded(tmp_path):
    o = make(tmp_path)
    sid = open_sub(o)
    o.update_submission(sid, "me", state=ob.S_DONE, setl_id="S1", settle_msgid="M")
    with pytest.raises(ob.InFlight) as e:
        open_sub(o)
    assert e.value.code == "E-GW-ALREADY-SETTLED"
    o.update_submission(sid, None, state=ob.S_REFUNDED)
    assert open_sub(o) != sid


def test_closing_a_submission_masks_its_claim(tmp_path):
    o = make(tmp_path)
    sid = open_sub(o)
    assert "张三" in o.submission(sid).claim  # kept while open: resuming needs it
    o.update_submission(sid, "me", state=ob.S_FAILED, error_code="E")
    row = o.submission(sid)
    assert row.open == 0 and "张三" not in row.claim and "110101199001011234" not in row.claim


def test_the_record_and_the_submission_change_are_one_transaction(tmp_path):
    o = make(tmp_path)
    sid = open_sub(o)
    m, _ = record(o, submission=sid, submission_update={"state": ob.S_SETTLING, "settle_msgid": lambda x: x})
    row = o.submission(sid)
    assert row.state == ob.S_SETTLING and row.settle_msgid == m
    with pytest.raises(ob.LeaseLost):  # another owner cannot move it
        record(o, submission=sid, owner="other", submission_update={"state": ob.S_DONE})
    assert o.submission(sid).state == ob.S_SETTLING
    assert len(o.requests(submission=sid)) == 1  # the refused record left nothing behind


def test_take_over_only_from_the_dead_or_silent(tmp_path):
    now = [1000.0]
    o = make(tmp_path, clock=lambda: now[0])
    sid = open_sub(o, owner="alive")
    assert not o.take_over(sid, "me", lease_seconds=60, alive=lambda w: True)
    now[0] += 61
    assert o.take_over(sid, "me", lease_seconds=60, alive=lambda w: True)
    sid2 = open_sub(o, visit="P/M2", owner="dead")
    assert o.take_over(sid2, "me", lease_seconds=1e9, alive=lambda w: w != "dead")


def test_owner_alive_sees_a_killed_process():
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    import socket
    owner = f"{socket.gethostname()}:{p.pid}:abcd"
    assert ob.owner_alive(owner)
    p.kill()
    p.wait()
    assert not ob.owner_alive(owner)
    assert ob.owner_alive("another-host:1:x")  # only the lease can tell


def test_abandoned_pending_requests_become_unknown(tmp_path):
    o = make(tmp_path)
    m1, _ = record(o, owner="dead")
    m2, _ = record(o, owner="alive")
    gone = o.abandon_pending(owner_is_dead=lambda w: w == "dead")
    assert [r.msgid for r in gone] == [m1]
    assert o.request(m1).state == ob.UNKNOWN and o.request(m1).code == "E-GW-INTERRUPTED"
    assert o.request(m2).state == ob.PENDING


def test_finish_records_the_answer_and_other_rows_at_once(tmp_path):
    o = make(tmp_path)
    sid = open_sub(o)
    settle, _ = record(o, submission=sid)
    rev, _ = record(o, infno="2601", purpose="reverse", submission=sid, omsgid=settle)
    a = Answer(Outcome.SUCCESS, "E-GW-OK", infcode=0, raw_infcode=0, message={"infcode": 0, "output": {}})
    o.finish(rev, state=ob.DONE, answer=a, also=[(settle, ob.REVERSED)], submission=sid,
             submission_update={"state": ob.S_REVERSED})
    assert o.request(settle).state == ob.REVERSED and o.request(rev).state == ob.DONE
    assert o.submission(sid).state == ob.S_REVERSED


def test_depth_and_oldest_for_monitoring(tmp_path):
    now = [100.0]
    o = make(tmp_path, clock=lambda: now[0])
    record(o)
    now[0] = 160.0
    record(o)
    d = o.depth()
    assert d["states"][ob.PENDING] == 2 and d["oldest"] == 100.0


def test_a_file_that_is_not_an_outbox_is_refused(tmp_path):
    p = tmp_path / "x.sqlite"
    p.write_bytes(b"not sqlite at all, just text" * 100)
    with pytest.raises(ob.OutboxError) as e:
        ob.Outbox(p)
    assert e.value.code == "E-GW-OUTBOX-FORMAT"
