"""The gateway's Python API: inputs of every kind, a patient's year, atomic reloads, threads."""
from __future__ import annotations

import json
import shutil
import threading
from decimal import Decimal
from pathlib import Path

import pytest

from rules_engine import Claim, ClaimError, Engine

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = json.loads((ROOT / "examples" / "claims" / "beijing-inpatient.json").read_text(encoding="utf-8"))


def test_dict_json_and_model_give_the_same_settlement(engine):
    a = engine.settle(EXAMPLE).to_dict()
    b = engine.settle(json.dumps(EXAMPLE)).to_dict()
    c = engine.settle(Claim.model_validate(EXAMPLE)).to_dict()
    assert a["setlinfo"] == b["setlinfo"] == c["setlinfo"]
    assert a["packs"]["insured"]["hash"] == engine.packs.select("110000", "2025-03-12").content_hash


def test_settle_many_returns_errors_in_place(engine):
    bad = dict(EXAMPLE, age=-1)
    out = engine.settle_many([EXAMPLE, bad, EXAMPLE], errors="return")
    assert isinstance(out[1], ClaimError) and out[0].medfee_sumamt == out[2].medfee_sumamt
    with pytest.raises(ClaimError):
        engine.settle_many([EXAMPLE, bad])


def test_a_patients_year_carries_accumulators_and_resets_at_new_year(engine):
    line = {"feedetl_sn": "1", "med_list_codg": "001102000050000", "cnt": 1, "pric": 10000,
            "det_item_fee_sumamt": 10000}
    base = {"psn_no": "P1", "insuplc_admdvs": "110000", "mdtrtarea_admvs": "110000", "insutype": "310",
            "med_type": "21", "age": 50, "hosp_lv": "3", "feedetail": [line]}
    claims = [dict(base, setl_time="2021-09-01"), dict(base, setl_time="2021-03-01"), dict(base, setl_time="2022-01-05")]
    march, september, january = None, None, None
    out = engine.settle_sequence(claims)
    september, march, january = out
    assert march.act_pay_dedc == 130000 and september.act_pay_dedc == 65000   # second admission of 2021
    assert september.accumulators_before["inpatient_inscp_year"] == 1000000
    assert january.act_pay_dedc == 130000 and january.accumulators_before.get("admissions_year", 0) == 0


def _copy_regions(tmp_path) -> Path:
    dst = tmp_path / "regions"
    shutil.copytree(ROOT / "regions", dst)
    return dst


def test_reload_swaps_in_a_new_version_and_keeps_the_old_set_when_broken(tmp_path):
    root = _copy_regions(tmp_path)
    engine = Engine.from_directory(root, cache=False)
    before = engine.settle(EXAMPLE).to_dict()
    policy = root / "110000" / "2025.1" / "policy.yaml"
    text = policy.read_text(encoding="utf-8")
    policy.write_text(text.replace("value: [{to: 30000, ratio: 0.85}", "value: [{to: 30000, ratio: 0.9}"),
                      encoding="utf-8")
    r = engine.reload()
    assert r.ok
    after = engine.settle(EXAMPLE).to_dict()
    assert after["setlinfo"]["hifp_pay"] > before["setlinfo"]["hifp_pay"]
    assert after["packs"]["insured"]["hash"] != before["packs"]["insured"]["hash"]
    policy.write_text(text.replace("ratio: 0.85", "ratio: 8.5"), encoding="utf-8")
    r = engine.reload()
    assert not r.ok and any(p.code == "E-RATIO-RANGE" for p in r.problems)
    assert engine.settle(EXAMPLE).to_dict()["setlinfo"] == after["setlinfo"]


def test_concurrent_settlements_during_reloads_see_one_pack_set(tmp_path):
    root = _copy_regions(tmp_path)
    engine = Engine.from_directory(root, cache=False)
    policy = root / "110000" / "2025.1" / "policy.yaml"
    original = policy.read_text(encoding="utf-8")
    valid_hashes = {engine.packs.select("110000", "2025-03-12").content_hash}
    errors: list[BaseException] = []
    seen: set[str] = set()
    stop = threading.Event()

    def worker():
        try:
            while not stop.is_set():
                s = engine.settle(EXAMPLE)
                seen.add(s.insured.content_hash)
                assert s.insured is s.treatment  # both from one snapshot
                assert s.check_identities() == []
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(6):
        ratio = f"0.{80 + i}"
        policy.write_text(original.replace("value: [{to: 30000, ratio: 0.85}", f"value: [{{to: 30000, ratio: {ratio}}}"),
                          encoding="utf-8")
        assert engine.reload().ok
        valid_hashes.add(engine.packs.select("110000", "2025-03-12").content_hash)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert seen <= valid_hashes


def test_amounts_are_exact_decimals(engine):
    s = engine.settle(EXAMPLE).to_dict()
    assert all(isinstance(v, Decimal) for k, v in s["setlinfo"].items() if k.endswith(("_amt", "_pay", "_dedc")))
