"""The settlement flow with message security on: the gateway signs (SM3withSM2) and encrypts
(SM4) each request's `input` with the region's sm2_sm4 plug-in behind x-tif transport headers; the
simulator, holding the platform's key, verifies and decrypts, and signs and encrypts its answers,
which the gateway verifies. A tampered answer is an untrusted — unknown — outcome: 冲正."""
from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gw_support import load, new_code, person, run  # noqa: E402

from rules_engine.gateway import outbox as ob  # noqa: E402
from rules_engine.gateway.client import Gateway  # noqa: E402
from rules_engine.gateway.security import Secret, Sm2Sm4  # noqa: E402
from rules_engine.gateway.simulator import PlatformSimulator  # noqa: E402

CLIENT_ID = "ClientId16Bytes!"


@pytest.fixture
def secure(tmp_path, engine, channel_keys, platform_keys, monkeypatch):
    platform_side = Sm2Sm4(client_id=Secret(CLIENT_ID), private_key=platform_keys.secret(),
                           public_key=platform_keys.public, peer_public_key=channel_keys.public,
                           verify_response=True)
    sim = PlatformSimulator(engine=engine, security=platform_side).start()
    keys = tmp_path / "keys"
    keys.mkdir()
    for name, text in (("channel.key", channel_keys.private_b64), ("channel.pub", channel_keys.public_b64),
                       ("platform.pub", platform_keys.public_b64)):
        (keys / name).write_text(text + "\n")
        os.chmod(keys / name, 0o600)
    monkeypatch.setenv("GW_T_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("GW_T_TIF", "tif-token")
    (tmp_path / "gateway.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        defaults:
          operator: {{opter: "0001", opter_name: 测试}}
          outbox: {{path: outbox.sqlite}}
          timeouts: {{connect: 2, read: 1, write: 1, total: 1.5}}
          retry: {{initial_backoff: 0.01, max_backoff: 0.02}}
        regions:
          "110000":
            endpoint: "{sim.url}"
            fixmedins_code: {new_code()}
            fixmedins_name: 测试医院
            recer_sys_code: YBXT
            transport: {{plugin: x_tif, paasid: test_paasid, token: {{env: GW_T_TIF}}}}
            message_security:
              plugin: sm2_sm4
              client_id: {{env: GW_T_CLIENT_ID}}
              private_key: {{file: keys/channel.key}}
              public_key: {{file: keys/channel.pub}}
              platform_public_key: {{file: keys/platform.pub}}
              verify_response: true
        """), encoding="utf-8")
    yield tmp_path, sim
    sim.stop()


def test_a_signed_and_encrypted_settlement_goes_through(secure, engine):
    d, sim = secure
    c = person("beijing-inpatient", "SEC-1", certno="110101199003070011")
    mdtrt = sim.register_claim(c)
    cfg, adapter = load(d)

    async def go():
        gw = Gateway(cfg, engine=engine, adapter=adapter)
        r = await gw.submit(c)
        req = gw.outbox("110000").request(r.settle_msgid)
        await gw.aclose()
        return r, req

    r, req = run(go())
    assert r.state == ob.S_DONE and r.comparison["result"] == "match"
    assert [s.msgid for s in sim.booked(mdtrt_id=mdtrt)] == [r.settle_msgid]
    assert not [x for x in sim.received if x.get("refused")]


def test_an_answer_altered_on_the_way_is_not_trusted(secure, engine):
    d, sim = secure
    c = person("beijing-outpatient", "SEC-2")
    mdtrt = sim.register_claim(c)
    # the platform's signature no longer covers what arrives: the gateway must not believe it
    original = sim._bytes
    calls = {"n": 0}

    def tamper(answer):
        body = original(answer)
        if answer.get("output") and "setlinfo" in str(answer["output"]) and calls["n"] == 0 and \
                answer["output"].get("setlinfo", {}).get("setl_id"):
            calls["n"] += 1
            import json
            msg = json.loads(body)
            msg["cainfo"] = msg["cainfo"][:-8] + ("A" * 8 if not msg["cainfo"].endswith("A" * 8) else "B" * 8)
            return json.dumps(msg).encode()
        return body

    sim._bytes = tamper
    cfg, adapter = load(d)

    async def go():
        gw = Gateway(cfg, engine=engine, adapter=adapter)
        r = await gw.submit(c)
        rows = gw.outbox("110000").requests(submission=r.submission)
        await gw.aclose()
        return r, rows

    r, rows = run(go())
    first = next(x for x in rows if x.infno == "2207")
    assert first.code == "E-GW-SECURITY" and first.state == ob.REVERSED  # untrusted → 冲正, never DONE
    assert r.state == ob.S_DONE and r.attempt == 2 and len(sim.booked(mdtrt_id=mdtrt)) == 1


def test_a_request_the_platform_cannot_verify_is_refused_definitely(secure, engine, tmp_path_factory):
    """A gateway holding another private key: the platform refuses with infcode −1 and books nothing."""
    d, sim = secure
    import gmssl_pyx
    pub, priv = gmssl_pyx.sm2_key_generate()
    import base64
    (d / "keys" / "channel.key").write_text(base64.b64encode(priv).decode() + "\n")
    (d / "keys" / "channel.pub").write_text(base64.b64encode(b"\x04" + pub).decode() + "\n")
    c = person("beijing-outpatient", "SEC-3")
    mdtrt = sim.register_claim(c)
    cfg, adapter = load(d)

    async def go():
        gw = Gateway(cfg, engine=engine, adapter=adapter)
        r = await gw.submit(c)
        await gw.aclose()
        return r

    r = run(go())
    assert r.state == ob.S_FAILED and r.error_code == "E-GW-SIGNIN"
    assert sim.booked(mdtrt_id=mdtrt) == [] and [x for x in sim.received if x.get("refused") == "E-SEC-SIGNATURE"]
