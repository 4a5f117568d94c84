"""The audit log: every exchange in the one hash-chained journal, with the pack version and hash,
personal fields masked; an edited or deleted entry is found by `gateway log verify`; monitoring
counts what happened and logs it as JSON without personal fields."""
from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gw_support import ROOT, load, person, run, write_config  # noqa: E402

from rules_engine.gateway.client import Gateway  # noqa: E402
from rules_engine.gateway.metrics import JsonFormatter, json_logging  # noqa: E402
from rules_engine.gateway.simulator import PlatformSimulator  # noqa: E402
from rules_engine.journal import Journal  # noqa: E402

CLI = [sys.executable, "-m", "rules_engine.cli"]
CERTNO = "110101198507071234"
NAME = "审计测试"


@pytest.fixture(scope="module")
def sim(engine):
    s = PlatformSimulator(engine=engine).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def settled(tmp_path_factory, sim, engine):
    """One settlement and one refund through a gateway; returns (dir, result, refund, metrics text)."""
    d = tmp_path_factory.mktemp("audit")
    write_config(d, sim.url)
    claim = person("beijing-outpatient", "AUDIT-1", certno=CERTNO, psn_name=NAME)
    sim.register_claim(claim)
    cfg, adapter = load(d)
    stream = io.StringIO()
    handler = json_logging(logging.DEBUG, stream)

    async def go():
        gw = Gateway(cfg, engine=engine, adapter=adapter)
        r = await gw.submit(claim)
        rev = await gw.reverse(r.settle_msgid)
        text = gw.metrics.render()
        await gw.aclose()
        return r, rev, text

    try:
        r, rev, text = run(go())
    finally:
        logging.getLogger("rules_engine.gateway").removeHandler(handler)
    return d, r, rev, text, stream.getvalue()


def journal(d: Path) -> Journal:
    return Journal(d / "gateway-journal.sqlite", create=False)


def test_every_exchange_is_in_the_journal_with_pack_and_outcome(settled):
    d, r, rev, _, _ = settled
    with journal(d) as j:
        for m in r.messages:
            kinds = [e.kind for e in j.find(msgid=m["msgid"])]
            assert "gateway.request" in kinds and "gateway.response" in kinds, m
        req = j.find(msgid=r.settle_msgid, kind="gateway.request")[0]
        resp = j.find(msgid=r.settle_msgid, kind="gateway.response")[0]
        assert req.payload["infno"] == "2207" and req.payload["region"] == "110000"
        packs = req.payload["packs"]
        assert packs["insured"]["version"] == "2021.1" and len(packs["insured"]["hash"]) == 64
        assert resp.payload["outcome"] == "success" and resp.payload["response"]["output"]["setlinfo"]["setl_id"]
        assert req.time < resp.time
        kinds = {e.kind for e in j.entries()}
        assert {"gateway.submission", "gateway.compare", "gateway.settled"} <= kinds
        refund = j.find(omsgid=r.settle_msgid)
        assert any(e.payload.get("infno") == "2208" for e in refund)
        assert j.verify().ok


def test_personal_fields_are_masked_at_rest(settled):
    d, *_ = settled
    raw = (d / "gateway-journal.sqlite").read_bytes()
    for f in ("gateway-journal.sqlite", "gateway-journal.sqlite-wal"):
        p = d / f
        if p.exists():
            assert CERTNO.encode() not in p.read_bytes() and NAME.encode() not in p.read_bytes()
    assert raw
    o = sqlite3.connect(d / "outbox.sqlite")
    rows = " ".join(str(x) for row in o.execute("SELECT request, response FROM requests") for x in row)
    assert CERTNO not in rows and NAME not in rows


def test_json_logs_carry_no_personal_field(settled):
    *_, logs = settled
    lines = [json.loads(x) for x in logs.splitlines() if x.strip()]
    assert lines and all({"time", "level", "event"} <= set(x) for x in lines)
    assert any(x["event"] == "gateway.answer" and x.get("infno") == "2207" for x in lines)
    assert CERTNO not in logs and NAME not in logs


def test_the_json_formatter_strips_personal_fields():
    rec = logging.LogRecord("rules_engine.gateway", logging.INFO, __file__, 1, "e", (), None)
    rec.fields = {"msgid": "M", "certno": CERTNO, "nested": {"psn_name": NAME, "ok": 1}}
    out = json.loads(JsonFormatter().format(rec))
    assert out["msgid"] == "M" and "certno" not in out and out["nested"] == {"ok": 1}


def test_metrics_count_requests_outcomes_latency_and_the_outbox(settled):
    *_, text, _ = settled
    assert 'rules_engine_gateway_requests_total{infno="2207",outcome="success"} 1.0' in text
    assert 'rules_engine_gateway_requests_total{infno="2208",outcome="success"} 1.0' in text
    assert 'rules_engine_gateway_request_seconds_count{infno="2204"} 1.0' in text
    assert 'rules_engine_gateway_reversals_total{kind="refund",result="done"} 1.0' in text
    assert 'rules_engine_gateway_comparisons_total{result="match"} 1.0' in text
    assert 'rules_engine_gateway_outbox_depth{state="PENDING"} 0.0' in text
    assert "rules_engine_gateway_outbox_oldest_pending_seconds 0.0" in text


def run_cli(d: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + ["gateway", *args, "--config", str(d / "gateway.yaml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, RULES_ENGINE_REGIONS=str(ROOT / "regions")))


def test_log_show_and_verify_on_the_command_line(settled):
    d, r, *_ = settled
    p = run_cli(d, "log", "show", "--msgid", r.settle_msgid)
    assert p.returncode == 0 and "gateway.request" in p.stdout and "gateway.response" in p.stdout
    p = run_cli(d, "log", "verify")
    assert p.returncode == 0 and "verify" in p.stdout


def test_a_tampered_audit_log_is_detected(settled, tmp_path):
    d, r, *_ = settled
    import shutil
    for f in ("gateway.yaml",):
        shutil.copy(d / f, tmp_path / f)
    with journal(d) as j:
        j.verify()
    src = sqlite3.connect(d / "gateway-journal.sqlite")
    dst = sqlite3.connect(tmp_path / "gateway-journal.sqlite")
    src.backup(dst)
    src.close()
    with journal(tmp_path) as j:
        e = j.find(msgid=r.settle_msgid, kind="gateway.response")[0]
    # someone "corrects" the platform's answer after the fact
    payload = json.dumps(e.payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    dst.execute("UPDATE entries SET payload_json=? WHERE seq=?", (payload.replace('"success"', '"failure"', 1), e.seq))
    dst.commit()
    dst.close()
    p = run_cli(tmp_path, "log", "verify")
    assert p.returncode == 1 and f"broken at seq {e.seq}" in p.stderr and "E-JOURNAL-HASH" in p.stderr
    # and a deleted entry
    dst = sqlite3.connect(tmp_path / "gateway-journal.sqlite")
    dst.execute("UPDATE entries SET payload_json=(SELECT payload_json FROM entries WHERE seq=?) WHERE seq=?",
                (e.seq, e.seq))
    dst.execute("DELETE FROM entries WHERE seq=?", (e.seq - 1,))
    dst.commit()
    dst.close()
    p = run_cli(tmp_path, "log", "verify")
    assert p.returncode == 1 and "E-JOURNAL-MISSING" in p.stderr
