"""The gateway process really killed (SIGKILL) at each step of a settlement, then started again:

- before sending 2207 (the request is in the outbox, not on the wire);
- after sending, before the answer (the platform booked it and is slow to answer);
- after the answer, before it is recorded;
- in the middle of the 冲正 itself.

`rules-engine gateway submit` runs in a child process against the simulator (in this process, so its
ledger outlives the gateway); `rules-engine gateway resume` in a new child finishes the work.
Afterwards: exactly one booked settlement, DONE in the outbox with the same msgid — never two.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gw_support import ROOT, person, write_config  # noqa: E402

from rules_engine.gateway import outbox as ob  # noqa: E402
from rules_engine.gateway.simulator import PlatformSimulator  # noqa: E402

CLI = [sys.executable, "-m", "rules_engine.cli"]


@pytest.fixture(scope="module")
def sim(engine):
    s = PlatformSimulator(engine=engine, hang_seconds=30.0).start()
    yield s
    s.stop()


def gateway_cmd(d: Path, *args: str, crash: str | None = None, wait: bool = True, timeout: float = 60):
    env = dict(os.environ, RULES_ENGINE_REGIONS=str(ROOT / "regions"))
    env.pop("RULES_ENGINE_GATEWAY_CRASH", None)
    if crash:
        env["RULES_ENGINE_GATEWAY_CRASH"] = crash
    p = subprocess.Popen(CLI + ["gateway", *args, "--config", str(d / "gateway.yaml")], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not wait:
        return p
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


def setup(tmp_path: Path, sim, name: str, *, read: float = 5.0) -> tuple[Path, dict, str]:
    write_config(tmp_path, sim.url, read=read, total=read + 1)
    claim = person("beijing-outpatient", name)
    mdtrt = sim.register_claim(claim)
    (tmp_path / "claim.json").write_text(json.dumps(claim, ensure_ascii=False), encoding="utf-8")
    return tmp_path, claim, mdtrt


def final_check(d: Path, sim, claim: dict, mdtrt: str) -> ob.Row:
    o = ob.Outbox(d / "outbox.sqlite")
    try:
        subs = o.submissions(visit_key=f"{claim['psn_no']}/{mdtrt}")
        assert len(subs) == 1
        s = subs[0]
        booked = sim.booked(mdtrt_id=mdtrt)
        assert s.state == ob.S_DONE, (s.state, s.error)
        assert len(booked) == 1 and booked[0].msgid == s.settle_msgid and booked[0].setl_id == s.setl_id
        assert not o.requests(state=ob.PENDING) and not o.requests(state=ob.UNKNOWN)
        return s
    finally:
        o.close()


def test_killed_before_sending_the_settlement(tmp_path, sim):
    d, claim, mdtrt = setup(tmp_path, sim, "KILL-1")
    seen = len(sim.received)
    rc, out, err = gateway_cmd(d, "submit", str(d / "claim.json"), crash="before_send:2207")
    assert rc == -signal.SIGKILL, err
    sent = [r["infno"] for r in sim.received[seen:]]
    assert "2206" in sent and "2207" not in sent  # killed with the settlement recorded, not sent
    assert sim.booked(mdtrt_id=mdtrt) == []
    rc, out, err = gateway_cmd(d, "resume")
    assert rc == 0, out + err
    s = final_check(d, sim, claim, mdtrt)
    assert s.attempt == 2  # the unsent one was reversed (nothing to reverse), then a fresh attempt


def test_killed_after_sending_before_the_answer(tmp_path, sim):
    d, claim, mdtrt = setup(tmp_path, sim, "KILL-2", read=60.0)
    sim.inject("hang", "2207", psn_no="KILL-2", seconds=30)
    p = gateway_cmd(d, "submit", str(d / "claim.json"), wait=False)
    deadline = time.time() + 60
    while time.time() < deadline and not sim.booked(mdtrt_id=mdtrt):
        time.sleep(0.05)
    assert sim.booked(mdtrt_id=mdtrt), "the settlement never reached the platform"
    first = sim.booked(mdtrt_id=mdtrt)[0]
    p.send_signal(signal.SIGKILL)  # the platform booked it; the answer is still on its way
    p.communicate(timeout=30)
    assert p.returncode == -signal.SIGKILL
    rc, out, err = gateway_cmd(d, "resume")
    assert rc == 0, out + err
    s = final_check(d, sim, claim, mdtrt)
    assert sim.settlements[first.setl_id].state == "reversed" and s.setl_id != first.setl_id


def test_killed_after_the_answer_before_recording_it(tmp_path, sim):
    d, claim, mdtrt = setup(tmp_path, sim, "KILL-3")
    rc, out, err = gateway_cmd(d, "submit", str(d / "claim.json"), crash="after_answer:2207")
    assert rc == -signal.SIGKILL
    booked = sim.booked(mdtrt_id=mdtrt)
    assert len(booked) == 1  # booked, but the gateway never wrote it down
    o = ob.Outbox(d / "outbox.sqlite")
    assert o.request(booked[0].msgid).state == ob.PENDING
    o.close()
    rc, out, err = gateway_cmd(d, "resume")
    assert rc == 0, out + err
    s = final_check(d, sim, claim, mdtrt)
    assert sim.settlements[booked[0].setl_id].state == "reversed" and s.settle_msgid != booked[0].msgid


def test_killed_during_the_reversal(tmp_path, sim):
    d, claim, mdtrt = setup(tmp_path, sim, "KILL-4")
    sim.inject("drop", "2207", psn_no="KILL-4")  # booked, answer lost → 冲正 …
    rc, out, err = gateway_cmd(d, "submit", str(d / "claim.json"), crash="after_answer:2601")  # … killed there
    assert rc == -signal.SIGKILL
    assert sim.booked(mdtrt_id=mdtrt) == []  # the 冲正 went through; the gateway did not record it
    rc, out, err = gateway_cmd(d, "resume")
    assert rc == 0, out + err
    s = final_check(d, sim, claim, mdtrt)
    o = ob.Outbox(d / "outbox.sqlite")
    reversals = o.requests(submission=s.id, infno="2601")
    o.close()
    assert [r.state for r in reversals] == [ob.SUPERSEDED, ob.DONE]  # sent again: harmless


def test_status_shows_the_interrupted_work_before_resume(tmp_path, sim):
    d, claim, mdtrt = setup(tmp_path, sim, "KILL-5")
    gateway_cmd(d, "submit", str(d / "claim.json"), crash="before_send:2207")
    rc, out, err = gateway_cmd(d, "status", "--format", "json")
    assert rc == 4  # something needs attention
    s = json.loads(out)
    att = [a for a in s["attention"] if a.get("state") == "SETTLING"]
    assert att and att[0]["alive"] is False
    assert gateway_cmd(d, "resume")[0] == 0
    assert gateway_cmd(d, "status")[0] == 0
