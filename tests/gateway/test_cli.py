"""The command line: a bad configuration is a located error at start (nothing sent); exit codes say
done / problem / pending; the simulator starts and stops; the adapter settings are checked too."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gw_support import ROOT, person, write_config  # noqa: E402

from rules_engine.gateway.config import require_gateway_config  # noqa: E402
from rules_engine.gateway.settings import load_adapter_config, parse_adapter_config  # noqa: E402
from rules_engine.gateway.simulator import PlatformSimulator  # noqa: E402

CLI = [sys.executable, "-m", "rules_engine.cli"]
LOC = re.compile(r"gateway(-adapter)?\.yaml:\d+:\d+: error ")


@pytest.fixture(scope="module")
def sim(engine):
    s = PlatformSimulator(engine=engine).start()
    yield s
    s.stop()


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, RULES_ENGINE_REGIONS=str(ROOT / "regions")))


def test_check_config_accepts_a_good_configuration(tmp_path, sim):
    write_config(tmp_path, sim.url)
    p = cli("gateway", "check-config", "--config", str(tmp_path / "gateway.yaml"))
    assert p.returncode == 0 and "configuration OK (2 region(s))" in p.stdout


BAD = """\
version: 1
defaults:
  operator: {opter: "0001", opter_name: 测试}
regions:
  "990000":
    endpoint: "http://127.0.0.1:1/x"
    fixmedins_code: H11010500001
    fixmedins_name: 医院
    recer_sys_code: YBXT
  "110000":
    endpoint: "ftp://example.invalid/x"
    fixmedins_code: H11010500001
    fixmedins_name: 医院
    recer_sys_code: YBXT
    message_security:
      plugin: sm2_sm4
      client_id: {env: GW_TEST_NOT_SET_ANYWHERE}
      private_key: {file: /nonexistent/key}
"""


def test_a_bad_configuration_is_refused_at_start_with_every_error_located(tmp_path, sim):
    (tmp_path / "gateway.yaml").write_text(BAD, encoding="utf-8")
    claim = person("beijing-outpatient", "CLI-BAD")
    (tmp_path / "claim.json").write_text(json.dumps(claim), encoding="utf-8")
    for args in (["gateway", "check-config"], ["gateway", "submit", str(tmp_path / "claim.json")]):
        n = len(sim.received)
        p = cli(*args, "--config", str(tmp_path / "gateway.yaml"))
        assert p.returncode == 1, p.stderr
        err = p.stderr
        for code in ("E-GW-REGION-UNKNOWN", "E-GW-ENDPOINT", "E-GW-ENV-UNSET", "E-GW-KEY-FILE"):
            assert code in err, (code, err)
        assert len(LOC.findall(err)) >= 4 and "Traceback" not in err
        assert "nothing was sent" in err and len(sim.received) == n


def test_a_missing_configuration_is_a_usage_error(tmp_path):
    p = cli("gateway", "status", "--config", str(tmp_path / "none.yaml"))
    assert p.returncode == 2 and "no gateway configuration" in p.stderr


def test_adapter_settings_errors_are_located(tmp_path):
    cfg, problems = parse_adapter_config(textwrap.dedent("""\
        version: 1
        defaults:
          compare: {tolerance: 0.001, on_diference: warn}
          infno: {settle_outpatient: "2206"}
        regions:
          "11000": {}
        """), "gateway-adapter.yaml")
    assert cfg is None
    text = "\n".join(p.format() for p in problems)
    assert "gateway-adapter.yaml:3:" in text and "on_diference" in text and "on_difference" in text  # did you mean


def test_adapter_settings_semantic_errors(tmp_path, sim):
    cfg, problems = parse_adapter_config(textwrap.dedent("""\
        version: 1
        defaults:
          compare: {tolerance: 0.001}
          infno: {settle_outpatient: "2206"}
        regions:
          "11000": {}
        """), "gateway-adapter.yaml")
    codes = {p.code for p in problems}
    assert cfg is None and {"E-GWA-AMOUNT", "E-GWA-INFNO", "E-GW-REGION"} <= codes
    assert all(p.line for p in problems if p.code in ("E-GWA-AMOUNT", "E-GWA-INFNO"))


def test_two_regions_with_one_institution_code_must_share_the_msgid_counter(tmp_path, sim):
    write_config(tmp_path, sim.url, code="H11010500001")
    text = (tmp_path / "gateway.yaml").read_text(encoding="utf-8")
    text = text.replace('recer_sys_code: YBXT}\n', 'recer_sys_code: YBXT, outbox: {path: other.sqlite}}\n', 1)
    (tmp_path / "gateway.yaml").write_text(text, encoding="utf-8")
    gw = require_gateway_config(tmp_path / "gateway.yaml")
    ad, problems = load_adapter_config(None, gateway_config=gw)
    assert ad is None and [p.code for p in problems] == ["E-GW-MSGID-SHARED"]


def test_exit_codes_done_blocked_pending(tmp_path, sim):
    write_config(tmp_path, sim.url, read=0.5, total=0.8)
    cfg = ["--config", str(tmp_path / "gateway.yaml")]
    ok, blocked, pending = (person("beijing-outpatient", f"CLI-{x}") for x in ("OK", "BLOCK", "PEND"))
    sim.register_claim(ok)
    sim.register_claim(dict(blocked, accumulators={"outpatient_dedc_year": 0, "outpatient_fund_year": 0}))
    sim.register_claim(pending)
    sim.inject("drop", "2207", psn_no="CLI-PEND")
    sim.inject("drop", "2601", psn_no="CLI-PEND", times=3)
    for name, c in (("ok", ok), ("blocked", blocked), ("pending", pending)):
        (tmp_path / f"{name}.json").write_text(json.dumps(c), encoding="utf-8")
    p = cli("gateway", "submit", str(tmp_path / "ok.json"), *cfg)
    assert p.returncode == 0 and "DONE" in p.stdout and "agree to the fen" in p.stdout
    p = cli("gateway", "submit", str(tmp_path / "blocked.json"), *cfg)
    assert p.returncode == 1 and "BLOCKED" in p.stdout and "policy.yaml:" in p.stdout
    p = cli("gateway", "submit", str(tmp_path / "pending.json"), *cfg, "--format", "json")
    assert p.returncode == 4 and json.loads(p.stdout)["state"] == "REVERSING"
    p = cli("gateway", "resume", *cfg)  # the platform answers the 冲正 now; a fresh attempt books it
    assert p.returncode == 0 and "DONE" in p.stdout
    assert len(sim.booked(psn_no="CLI-PEND")) == 1


def test_a_bad_claim_file_is_located(tmp_path, sim):
    write_config(tmp_path, sim.url)
    c = person("beijing-outpatient", "CLI-CLAIM")
    c["feedetail"][0]["cnt"] = "two"
    (tmp_path / "c.json").write_text(json.dumps(c), encoding="utf-8")
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    p = cli("gateway", "submit", str(tmp_path / "c.json"), "--config", str(tmp_path / "gateway.yaml"))
    assert p.returncode == 1 and "feedetail[0].cnt" in p.stderr and "Traceback" not in p.stderr
    p = cli("gateway", "submit", str(tmp_path / "broken.json"), "--config", str(tmp_path / "gateway.yaml"))
    assert p.returncode == 1 and "E-CLAIM-JSON" in p.stderr


def test_the_platform_simulator_command_serves_and_stops(tmp_path):
    claim = tmp_path / "c.json"
    claim.write_text(json.dumps(person("beijing-outpatient", "CLI-SIM")), encoding="utf-8")
    p = subprocess.Popen(CLI + ["platform-sim", "--port", "0", "--register", str(claim)], cwd=ROOT,
                         stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, RULES_ENGINE_REGIONS=str(ROOT / "regions")))
    try:
        line = p.stderr.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, line
        port = int(m.group(1))
        led = httpx.get(f"http://127.0.0.1:{port}/sim/ledger", timeout=5).json()
        assert led["persons"] == 1 and led["visits"] == 1
        r = httpx.post(f"http://127.0.0.1:{port}/fsi/api/rsfComIfsService/callService",
                       content=json.dumps({"infno": "9001", "msgid": "H11010500001202501010000000001",
                                           "input": {"signIn": {"opter_no": "1", "mac": "", "ip": ""}}}), timeout=5)
        assert r.json()["infcode"] == 0 and r.json()["output"]["signinoutb"]["sign_no"]
    finally:
        p.terminate()
        p.wait(timeout=10)
    assert p.returncode == 0 and "stopped" in p.stderr.read()


def test_unknown_fault_kinds_are_a_usage_error():
    p = cli("platform-sim", "--fault-rate", "0.1", "--fault-kinds", "drop,explode")
    assert p.returncode == 2 and "explode" in p.stderr
