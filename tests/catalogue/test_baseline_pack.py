"""The shipped national baseline: real catalogue drugs resolve, restrictions are enforced or flagged.

Runs on the shipped regions (no reference data needed). The eight codes of the former hand-written
sample keep their class and restriction; 130000 (Hebei, 乙类 5 %) is the treatment place.
"""
from __future__ import annotations

import pytest

SAMPLE = [  # code, class, restriction ids
    ("ZD01CAB0277010179304", "甲", ()),
    ("ZD02AAG0222010105629", "甲", ()),
    ("ZA01BAX0377010100093", "乙", ()),
    ("ZA04BAX0048010105337", "乙", ("NHSA2024-Z121",)),
    ("XJ07BGR032B001010103056", "乙", ("NHSA2024-X803",)),
    ("XC05CAQ094B002010100267", "乙", ("NHSA2024-X395", "NHSA2024-X395.text")),
    ("XJ05AXM176X006010181735", "乙", ("NHSA2024-N144", "NHSA2024-N144.check", "NHSA2024-N144.text")),
    ("XL02BGY096A001010100107", "乙", ()),
]


@pytest.mark.parametrize("code,cls,rids", SAMPLE)
def test_former_sample_codes_resolve_unchanged(regions_dir, code, cls, rids):
    from rules_engine.packs.registry import PackSet
    pack = PackSet.load(regions_dir).select("000000", "2025-06-01")
    e = pack.lookup(code, "2025-06-01")
    assert e is not None and e.category == cls and e.restrictions == rids
    assert pack.lookup(code, "2024-12-31") is None  # the 2024 edition applies from 2025-01-01


def test_negotiated_drug_keeps_its_agreement_dates(regions_dir):
    from rules_engine.packs.registry import PackSet
    pack = PackSet.load(regions_dir).select("000000", "2026-06-01")
    e = pack.lookup("XJ05AXM176X006010181735", "2026-06-01")
    assert e is not None and (e.valid_from, e.valid_to) == ("2025-01-01", "2026-12-31")


def settle_line(engine, code, **claim):
    c = {"insuplc_admdvs": "130000", "mdtrtarea_admvs": "130000", "insutype": "310", "med_type": "21", "age": 45,
         "hosp_lv": "3", "setl_time": "2025-06-01 10:00:00",
         "feedetail": [{"feedetl_sn": "1", "med_list_codg": code, "cnt": 1, "pric": 100, "det_item_fee_sumamt": 100}]}
    c.update(claim)
    return engine.settle(c).lines[0]


def test_work_injury_vaccine(engine):
    refused = settle_line(engine, "XJ07BGR032B001010103056")
    assert refused.fulamt == 10000 and refused.reasons[0].text == "限工伤保险。"
    paid = settle_line(engine, "XJ07BGR032B001010103056", insutype="410")
    assert paid.fulamt == 0 and paid.pre == 500 and not paid.review


def test_institution_level(engine):
    assert settle_line(engine, "ZA04BAX0048010105337", hosp_lv="1").fulamt == 10000
    assert settle_line(engine, "ZA04BAX0048010105337", hosp_lv="2").fulamt == 0


def test_text_restriction_is_flagged_never_silently_paid(engine):
    ln = settle_line(engine, "XC05CAQ094B002010100267", diseinfo=[{"diag_code": "I63.900"}])
    assert ln.fulamt == 0 and ln.review
    assert any(r.code == "RESTRICTION_REVIEW" and "course limit" in r.message for r in ln.reasons)


def test_age_band_and_diagnosis_check(engine):
    adult = settle_line(engine, "XJ05AXM176X006010181735", age=30)
    assert adult.fulamt == 10000                                   # outside 5–12: refused
    child = settle_line(engine, "XJ05AXM176X006010181735", age=8, diseinfo=[{"diag_code": "J10.100"}])
    assert child.fulamt == 0 and child.review                      # paid; '单纯性' left for review
    no_flu = settle_line(engine, "XJ05AXM176X006010181735", age=8, diseinfo=[{"diag_code": "J18.900"}])
    assert no_flu.fulamt == 0 and any("N144.check" in r.message for r in no_flu.reasons)


def test_other_manufacturer_resolves_through_the_prefix_entry(engine):
    ln = settle_line(engine, "ZA01BAX0377010199999")               # not in the 两库 table
    assert ln.entry is not None and ln.entry.match == "prefix" and ln.chrgitm_lv == "02"
