"""The envelope: msgid from a durable counter that never repeats (restarts, a clock going back,
10,000 a second, two processes), the request fields, and the three outcomes of an answer."""
from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gw_support import ROOT, sample  # noqa: E402

from rules_engine.gateway.envelope import (  # noqa: E402
    MsgidCounter, Outcome, build_envelope, classify, parse_infcode, transport_failure,
)
from rules_engine.gateway.payloads import parse_output  # noqa: E402
from rules_engine.gateway.security import RegionSecurity  # noqa: E402

MSGID = re.compile(r"^H11010500001(\d{14})(\d{4})$")
T0 = dt.datetime(2025, 3, 12, 16, 5, 0)


def test_msgid_has_the_spec_shape(tmp_path):
    c = MsgidCounter(str(tmp_path / "c.sqlite"))
    m = c.next("H11010500001", T0)
    assert MSGID.match(m) and m == "H110105000012025031216050000" + "01" and len(m) == 30


def test_the_counter_survives_a_restart(tmp_path):
    p = str(tmp_path / "c.sqlite")
    a = MsgidCounter(p)
    first = [a.next("H11010500001", T0) for _ in range(5)]
    a.close()
    b = MsgidCounter(p)  # a new process, the same second
    later = [b.next("H11010500001", T0) for _ in range(5)]
    assert len(set(first + later)) == 10 and later[0][-4:] == "0006"


def test_a_clock_going_back_never_repeats(tmp_path):
    c = MsgidCounter(str(tmp_path / "c.sqlite"))
    a = c.next("H11010500001", T0)
    b = c.next("H11010500001", T0 - dt.timedelta(hours=1))
    assert b > a and b[12:26] == a[12:26]


def test_ten_thousand_in_one_second_borrow_the_next(tmp_path):
    c = MsgidCounter(str(tmp_path / "c.sqlite"), synchronous="NORMAL")
    ids = [c.next("H11010500001", T0) for _ in range(10_000)]
    assert len(set(ids)) == 10_000 and ids == sorted(ids)
    assert ids[-2] == "H11010500001" + "20250312160500" + "9999"
    assert ids[-1] == "H11010500001" + "20250312160501" + "0001"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=-5, max_value=5), min_size=1, max_size=60))
def test_msgids_only_grow_whatever_the_clock_does(tmp_path_factory, steps):
    c = MsgidCounter(str(tmp_path_factory.mktemp("c") / "c.sqlite"))
    t, out = T0, []
    for s in steps:
        t = t + dt.timedelta(seconds=s)
        out.append(c.next("H11010500001", t))
    assert out == sorted(out) and len(set(out)) == len(out)


def test_two_processes_sharing_an_outbox_never_collide(tmp_path):
    """The msgid collision test across processes: two processes allocate 1,500 msgids each, at the
    same time, through the outbox (the path the gateway uses)."""
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from rules_engine.gateway.outbox import Outbox
        o = Outbox(sys.argv[1], synchronous="NORMAL")
        go = float(sys.argv[3])
        while time.time() < go:
            time.sleep(0.001)
        out = []
        for i in range(1500):
            m, _ = o.record(region="110000", fixmedins_code="H11010500001", infno="9001", purpose="signin",
                            owner="t", build=lambda msgid, local: {{"msgid": msgid}})
            out.append(m)
        open(sys.argv[2], "w").write("\\n".join(out))
    """)
    db = tmp_path / "outbox.sqlite"
    import time
    go = time.time() + 2.0
    procs = [subprocess.Popen([sys.executable, "-c", script, str(db), str(tmp_path / f"out{i}.txt"), str(go)])
             for i in range(2)]
    for p in procs:
        assert p.wait(timeout=120) == 0
    ids = [line for i in range(2) for line in (tmp_path / f"out{i}.txt").read_text().split("\n")]
    assert len(ids) == 3000 and len(set(ids)) == 3000
    assert all(MSGID.match(m) for m in ids)
    # both processes wrote within the same seconds: the sequence interleaves, it does not restart
    a = set((tmp_path / "out0.txt").read_text().split("\n"))
    b = set((tmp_path / "out1.txt").read_text().split("\n"))
    assert {m[12:26] for m in a} & {m[12:26] for m in b}


def test_the_envelope_has_every_field_in_the_spec_order():
    from rules_engine.gateway.config import parse_gateway_config
    cfg, problems = parse_gateway_config(textwrap.dedent("""
        regions:
          "110000": {endpoint: "http://127.0.0.1:1/x", fixmedins_code: H11010500001, fixmedins_name: 医院,
                     recer_sys_code: YBXT, operator: {opter: "7", opter_name: 王}}
        """), "g.yaml")
    env = build_envelope(cfg.region("110000"), "2207", "H11010500001202503121605000001", {"data": {}},
                         insuplc_admdvs="110000", sign_no="S1", inf_time=T0)
    schema = json.loads((ROOT / "schemas" / "national" / "envelope.request.schema.json").read_text())
    import jsonschema
    jsonschema.Draft202012Validator(schema).validate(env)
    assert list(env)[:3] == ["infno", "msgid", "mdtrtarea_admvs"] and list(env)[-1] == "input"
    assert env["inf_time"] == "2025-03-12 16:05:00" and env["recer_sys_code"] == "YBXT" and env["sign_no"] == "S1"


# --------------------------------------------------------------------------- outcomes

SEC = RegionSecurity()


def cls(status: int, body: bytes | str, infno: str = "2207"):
    if isinstance(body, str):
        body = body.encode()
    return classify(status, body, security=SEC, infno=infno, parse_output=parse_output)


@pytest.mark.parametrize("raw,expected", [(0, 0), ("0", 0), (" -1 ", -1), ("-2", -2), (1, 1), ("1", 1),
                                          ("abc", None), (True, None), (None, None), ("-", None), (0.0, 0)])
def test_infcode_as_number_or_text(raw, expected):
    assert parse_infcode(raw) == expected


def test_success_with_infcode_as_number_and_as_text():
    a = cls(200, sample("2207"))
    assert a.outcome is Outcome.SUCCESS and a.model.setlinfo.setl_id == "TESTSETL001"
    b = cls(200, sample("1101"), "1101")  # this sample sends "0"
    assert b.outcome is Outcome.SUCCESS and b.infcode == 0 and b.raw_infcode == "0"


@pytest.mark.parametrize("status,body,outcome,code,reversal", [
    (200, '{"infcode": -2, "err_msg": "余额不足"}', "failure", "E-GW-BUSINESS", False),
    (200, '{"infcode": "-1", "err_msg": "系统错误"}', "failure", "E-GW-SYSTEM", True),
    (200, '{"infcode": 1, "err_msg": null}', "failure", "E-GW-BUSINESS", False),
    (200, '{"infcode": -2, "err_msg": "签到编号无效"}', "failure", "E-GW-SIGN-REJECTED", False),
    (200, '{"err_msg": "no code"}', "unknown", "E-GW-ANSWER-FIELD", True),
    (200, '{"infcode": "ok"}', "unknown", "E-GW-ANSWER-FIELD", True),
    (200, '{"infcode": 0, "output": {"setlinfo": {}}}', "failure", "E-GW-ANSWER-FIELD", True),
    (200, '{"infcode": 0, "outp', "unknown", "E-GW-BODY", True),
    (200, '[1, 2]', "unknown", "E-GW-BODY", True),
    (200, '', "unknown", "E-GW-BODY", True),
    (500, 'oops', "unknown", "E-GW-HTTP", True),
    (502, '', "unknown", "E-GW-HTTP", True),
    (408, '', "unknown", "E-GW-HTTP", True),
    (401, '', "failure", "E-GW-HTTP", False),
    (404, '', "failure", "E-GW-HTTP", False),
])
def test_three_outcomes(status, body, outcome, code, reversal):
    a = cls(status, body)
    assert (a.outcome.value, a.code, a.needs_reversal) == (outcome, code, reversal)


def test_a_settlement_answer_without_a_setl_id_is_a_definite_failure_that_must_be_reversed():
    d = json.loads(sample("2207"))
    del d["output"]["setlinfo"]["setl_id"]
    a = cls(200, json.dumps(d))
    assert a.outcome is Outcome.FAILURE and a.field == "output.setlinfo.setl_id" and a.needs_reversal


def test_transport_failures():
    import httpx
    assert transport_failure(httpx.ReadTimeout("t")).outcome is Outcome.UNKNOWN
    assert transport_failure(httpx.RemoteProtocolError("closed")).outcome is Outcome.UNKNOWN
    refused = transport_failure(httpx.ConnectError("refused"))
    assert refused.outcome is Outcome.FAILURE and not refused.needs_reversal


def test_an_untrusted_answer_is_unknown(channel_keys, platform_keys):
    """A SecurityError from `open` (altered or unsigned answer) is an unknown outcome for 2207."""
    from rules_engine.gateway.security import SchemeB, Secret
    sec = RegionSecurity(message=SchemeB(app_id="0123456789ABCDEF0123456789ABCDEF", app_secret=Secret("S" * 32),
                                         private_key=channel_keys.secret(), public_key=channel_keys.public,
                                         peer_public_key=platform_keys.public))
    a = classify(200, b'{"infcode": 0, "appId": "x"}', security=sec, infno="2207", parse_output=parse_output)
    assert a.outcome is Outcome.UNKNOWN and a.code == "E-GW-SECURITY" and a.needs_reversal


def test_classify_never_raises_on_garbage():
    for body in (b"\xff\xfe", b"null", b'{"infcode": 0, "output": null}', b'{"infcode": 0, "output": []}',
                 b"{" * 5000, b'{"infcode": 1e999}'):
        a = cls(200, body)
        assert a.outcome in (Outcome.UNKNOWN, Outcome.FAILURE)
