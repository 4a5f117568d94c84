"""The directory watcher, and replaying the decision log against the recorded pack versions."""
from __future__ import annotations

import shutil
import time
from dataclasses import replace

import httpx
import pytest
from service_helpers import Server, auth, claim, make_keys, make_regions

from rules_engine.journal import Journal
from rules_engine.service.decisions import replay


def wait_for(pred, timeout=20.0, every=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(every)
    raise AssertionError("condition not reached in time")


class _Out:
    def __init__(self, r):
        self.returncode, self.stdout, self.stderr = r.exit_code, r.stdout, r.stderr


def run_replay(journal, seq, regions) -> _Out:
    """`rules-engine replay` in-process (click's runner): the command's code path without a Python start-up."""
    from click.testing import CliRunner

    from rules_engine.cli import main
    return _Out(CliRunner().invoke(main, ["replay", str(journal), "--at", str(seq), "--regions", str(regions)],
                                   catch_exceptions=False))


@pytest.fixture
def watched(tmp_path):
    keys_file, keys = make_keys(tmp_path)
    srv = Server(tmp_path, make_regions(tmp_path), keys_file=keys_file, journal=tmp_path / "decisions.journal",
                 args=["--watch-interval", "0.2"]).start()
    srv.keys = keys  # type: ignore[attr-defined]
    yield srv
    srv.stop()


def settle(srv) -> httpx.Response:
    r = httpx.post(srv.url + "/v1/settle", json=claim(), headers=auth(srv.keys["settle"]), timeout=30)
    assert r.status_code == 200, r.text
    return r


def test_watcher_reloads_new_versions_and_keeps_serving_through_a_broken_one(watched, tmp_path):
    policy = watched.regions / "110000" / "2021.1" / "policy.yaml"
    original = policy.read_text(encoding="utf-8")
    first = settle(watched)
    old_hash = first.json()["packs"]["insured"]["hash"]
    old_set = httpx.get(watched.url + "/readyz").json()["pack_set"]

    policy.write_text(original.replace("value: 1300", "value: 1500", 1), encoding="utf-8")
    wait_for(lambda: httpx.get(watched.url + "/readyz").json()["pack_set"] != old_set)
    second = settle(watched)
    new_hash = second.json()["packs"]["insured"]["hash"]
    assert new_hash != old_hash
    assert second.json()["setlinfo"]["act_pay_dedc"] == 1500
    # replay: the first decision was made with a version no longer on disk
    seq = int(first.headers["x-decision-seq"])
    out = run_replay(watched.journal, seq, watched.regions)
    assert out.returncode == 1 and out.stderr.startswith("refused") and "hash" in out.stderr

    policy.write_text(original.replace("ratio: 0.85", "ratio: 1.85", 1), encoding="utf-8")
    ready = wait_for(lambda: (lambda d: d if d["status"] == "stale" else None)(
        httpx.get(watched.url + "/readyz").json()))
    assert ready["last_reload"]["trigger"] == "watch" and ready["last_reload"]["errors"] >= 1
    assert any(p["location"].endswith(".yaml:" + p["location"].split(":")[-2] + ":" + p["location"].split(":")[-1])
               for p in ready["last_reload"]["problems"])
    assert settle(watched).json()["packs"]["insured"]["hash"] == new_hash, "the broken version is never served"
    assert "rules_engine_pack_reload_failing 1.0" in httpx.get(watched.url + "/metrics").text
    wait_for(lambda: "refused" in watched.log() and "E-RATIO" in watched.log())

    out = run_replay(watched.journal, seq, watched.regions)
    assert out.returncode == 1 and "has errors" in out.stderr, "the version on disk does not even compile"
    restored = tmp_path / "restored"
    shutil.copytree(watched.regions, restored)
    (restored / "110000" / "2021.1" / "policy.yaml").write_text(original, encoding="utf-8")
    out = run_replay(watched.journal, seq, restored)
    assert out.returncode == 0 and out.stdout.startswith("match"), out.stderr
    out = run_replay(watched.journal, int(second.headers["x-decision-seq"]), restored)
    assert out.returncode == 1 and "1500" not in out.stdout and "refused" in out.stderr


def test_replay_says_when_a_recorded_settlement_differs(watched):
    r = settle(watched)
    seq = int(r.headers["x-decision-seq"])
    with Journal(watched.journal, create=False) as j:
        entry = j.get(seq)
        assert replay(entry, watched.regions).status == "match"
        forged = replace(entry, payload=dict(entry.payload, totals=dict(entry.payload["totals"], hifp_pay="1.00")))
        out = replay(forged, watched.regions)
        assert out.status == "differ" and out.differences == [
            {"field": "hifp_pay", "recorded": "1.00", "now": entry.payload["totals"]["hifp_pay"]}]
        other = j.append("gateway.request", {"msgid": "x"})
        assert replay(other, watched.regions).status == "refused"
    missing = run_replay(watched.journal, 10_000, watched.regions)
    assert missing.returncode == 1 and "no entry" in missing.stderr
    assert run_replay(watched.journal.with_name("nope.journal"), 1, watched.regions).returncode == 2


def test_keys_file_is_reread_when_it_changes(watched):
    from rules_engine.service.auth import hash_key
    new = "rek_new-" + "z" * 40
    assert httpx.get(watched.url + "/v1/packs", headers=auth(new)).status_code == 401
    with open(watched.keys_file, "a", encoding="utf-8") as f:
        f.write(f"newcomer settle {hash_key(new)}\n")
    wait_for(lambda: httpx.get(watched.url + "/v1/packs", headers=auth(new)).status_code == 200)
    watched.keys_file.write_text("this line is not a key\n", encoding="utf-8")
    wait_for(lambda: "API keys file invalid" in watched.log())
    assert httpx.get(watched.url + "/v1/packs", headers=auth(new)).status_code == 200, "a bad file keeps the old keys"
