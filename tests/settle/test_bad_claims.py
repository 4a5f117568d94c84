"""A claim with missing or absurd fields: a structured error naming the field path, never a partial settlement."""
from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from rules_engine.model.claim import ClaimError
from rules_engine.settle.core import PackNotFound

GOOD = {"insuplc_admdvs": "110000", "mdtrtarea_admvs": "110000", "insutype": "310", "med_type": "21", "age": 45,
        "hosp_lv": "3", "setl_time": "2021-06-01 10:00:00",
        "feedetail": [{"feedetl_sn": "1", "med_list_codg": "001102000050000", "cnt": 2, "pric": 10.5,
                       "det_item_fee_sumamt": 21.00}]}


def bad(mutate):
    c = copy.deepcopy(GOOD)
    mutate(c)
    return c


def errors_of(engine, claim):
    with pytest.raises(ClaimError) as e:
        engine.settle(claim)
    return {(x.path, x.code) for x in e.value.errors}


def test_good_claim_settles(engine):
    assert engine.settle(GOOD).medfee_sumamt == 2100


@pytest.mark.parametrize("mutate,path,code", [
    (lambda c: c.pop("insutype"), "insutype", "E-CLAIM-MISSING"),
    (lambda c: c.update(insutype=310), "insutype", "E-CLAIM-TYPE"),
    (lambda c: c.update(hosp_lv="4"), "hosp_lv", "E-CLAIM-VALUE"),
    (lambda c: c.update(age=-3), "age", "E-CLAIM-VALUE"),
    (lambda c: c.update(age=200), "age", "E-CLAIM-VALUE"),
    (lambda c: c.update(setl_time="2021-13-45"), "setl_time", "E-CLAIM-VALUE"),
    (lambda c: c.update(insuplc_admdvs="11000"), "insuplc_admdvs", "E-CLAIM-VALUE"),
    (lambda c: c.update(hosp_level="3"), "hosp_level", "E-CLAIM-UNKNOWN-FIELD"),
    (lambda c: c["feedetail"][0].update(cnt=-2, det_item_fee_sumamt=-21), "feedetail[0].cnt", "E-CLAIM-VALUE"),
    (lambda c: c["feedetail"][0].update(cnt="two"), "feedetail[0].cnt", "E-CLAIM-VALUE"),
    (lambda c: c["feedetail"][0].update(det_item_fee_sumamt=21.02), "feedetail[0].det_item_fee_sumamt",
     "E-CLAIM-AMOUNT"),
    (lambda c: c["feedetail"][0].update(det_item_fee_sumamt=21.005), "feedetail[0].det_item_fee_sumamt",
     "E-CLAIM-VALUE"),
    (lambda c: c["feedetail"].append(dict(c["feedetail"][0])), "feedetail[1].feedetl_sn", "E-CLAIM-DUPLICATE-SN"),
    (lambda c: c["feedetail"][0].pop("feedetl_sn"), "feedetail[0].feedetl_sn", "E-CLAIM-MISSING"),
    (lambda c: c["feedetail"][0].update(det_item_fee_sumant=1), "feedetail[0].det_item_fee_sumant",
     "E-CLAIM-UNKNOWN-FIELD"),
    (lambda c: c.update(feedetail=[]), "feedetail", "E-CLAIM-VALUE"),
    (lambda c: c.update(feedetail={"a": 1}), "feedetail", "E-CLAIM-TYPE"),
    (lambda c: c.update(accumulators={"admissions_year": 1.5}), "accumulators.admissions_year", "E-CLAIM-VALUE"),
])
def test_bad_field_is_named(engine, mutate, path, code):
    assert (path, code) in errors_of(engine, bad(mutate))


def test_every_problem_is_reported_at_once(engine):
    c = bad(lambda c: (c.pop("med_type"), c.update(age="x"), c["feedetail"][0].update(pric=-1)))
    errs = errors_of(engine, c)
    assert {p for p, _ in errs} >= {"med_type", "age", "feedetail[0].pric"}


def test_unknown_region_and_date_without_pack(engine):
    with pytest.raises(PackNotFound) as e:
        engine.settle(bad(lambda c: c.update(insuplc_admdvs="650000", mdtrtarea_admvs="650000")))
    assert e.value.code == "E-UNKNOWN-REGION"
    with pytest.raises(PackNotFound) as e:
        engine.settle(bad(lambda c: c.update(setl_time="2015-01-01")))
    assert e.value.code == "E-NO-PACK-ON-DATE" and e.value.errors[0].path == "insuplc_admdvs"


def test_district_falls_back_to_province(engine):
    s = engine.settle(bad(lambda c: c.update(insuplc_admdvs="110105", mdtrtarea_admvs="110108")))
    assert s.insured.key == s.treatment.key == "110000@2021.1"


def test_json_text_and_not_json(engine):
    assert engine.settle(json.dumps(GOOD)).medfee_sumamt == 2100
    with pytest.raises(ClaimError) as e:
        engine.settle("{not json")
    assert e.value.code == "E-CLAIM"


def test_cli_reports_bad_claim_as_json_with_exit_1(tmp_path, regions_dir):
    f = tmp_path / "c.json"
    f.write_text(json.dumps(bad(lambda c: c.update(age=-1))), encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "rules_engine.cli", "simulate", str(f), "--regions", str(regions_dir),
                        "--format", "json"], capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    out = json.loads(r.stdout)
    assert out[0]["error"]["errors"][0]["path"] == "age"
    assert "Traceback" not in r.stderr
