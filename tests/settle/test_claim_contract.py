"""The hot-path claim reader and the pydantic `Claim` model are one contract: same verdicts, same values."""
from __future__ import annotations

import copy
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rules_engine.model.claim import Claim, ClaimError, parse_claim

VALID = {"insuplc_admdvs": "110000", "mdtrtarea_admvs": "130000", "insutype": "310", "med_type": "21",
         "age": 45, "gend": "1", "hosp_lv": "3", "setl_time": "2021-06-01 10:00:00", "begntime": "2021-05-28",
         "insutype_retr_flag": "1", "acct_used_flag": "1", "balc": "1200.50", "filing_type": "referral",
         "filing": {"type": "referral", "begndate": "2021-05-01", "enddate": "2021-12-31", "admdvs": "130000",
                    "source": "2501 H13000000001202105011000000001"},
         "diseinfo": [{"diag_code": "J18.900", "maindiag_flag": "1"}],
         "accumulators": {"admissions_year": 1, "inpatient_inscp_year": "12000.50"},
         "history": [{"med_list_codg": "002503020030000", "fee_ocur_time": "2021-05-20 09:00:00", "cnt": 1,
                      "mdtrt_id": "M-1"}],
         "feedetail": [{"feedetl_sn": "1", "med_list_codg": "A1", "cnt": "2", "pric": "10.125",
                        "det_item_fee_sumamt": "20.25", "hosp_appr_flag": "1", "prd_days": 7},
                       {"feedetl_sn": "2", "medins_list_codg": "L-9", "cnt": 1.5, "pric": 3,
                        "det_item_fee_sumamt": 4.5}]}

PATHS = [("insuplc_admdvs",), ("insutype",), ("med_type",), ("age",), ("gend",), ("hosp_lv",), ("setl_time",),
         ("begntime",), ("insutype_retr_flag",), ("balc",), ("filing_type",), ("diseinfo", 0, "diag_code"),
         ("accumulators", "inpatient_inscp_year"), ("feedetail", 0, "feedetl_sn"), ("feedetail", 0, "cnt"),
         ("feedetail", 0, "pric"), ("feedetail", 0, "det_item_fee_sumamt"), ("feedetail", 1, "cnt"),
         ("feedetail", 0, "med_list_codg"), ("feedetail", 0, "hosp_appr_flag"), ("feedetail", 1, "feedetl_sn"),
         ("filing", "type"), ("filing", "begndate"), ("filing", "enddate"), ("filing", "admdvs"), ("filing", "revoked"),
         ("filing",), ("history", 0, "cnt"), ("history", 0, "fee_ocur_time"), ("history", 0, "med_list_codg"),
         ("history",), ("feedetail", 0, "fee_ocur_time")]
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 300), st.sampled_from([0, 1, 20.25, 10.1251, -1.5, 1e20, 2.0]),
    st.sampled_from(["", " ", "1", "310", "abc", "2021-02-30", "2021-06-01", "2021-06-01 25:00:00", "20.25",
                     "20.255", "-3", "110000", "9", "x" * 40, "referral", "weird", "J18.900", "0.00001"]),
    st.just([]), st.just({}))


@st.composite
def claims(draw):
    c = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(PATHS))
        target = c
        try:
            for p in path[:-1]:
                target = target[p]
            if not isinstance(target, (dict, list)):
                continue
            if draw(st.integers(0, 5)) == 0 and isinstance(target, dict):
                target.pop(path[-1], None)
            else:
                target[path[-1]] = draw(VALUES)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced the container
    return c


def verdicts(c):
    try:
        ours = parse_claim(c)
    except ClaimError:
        ours = None
    try:
        theirs = Claim.model_validate(c)
    except ValidationError:
        theirs = None
    return ours, theirs


@settings(max_examples=400, deadline=None)
@given(claims())
def test_fast_reader_and_model_agree(c):
    ours, theirs = verdicts(c)
    assert (ours is None) == (theirs is None), (ours, theirs)
    if ours is not None:
        for ln, m in zip(ours.lines, theirs.feedetail):
            assert ln.amount == int(m.det_item_fee_sumamt * 100)
            assert ln.cnt == int(m.cnt * 10_000) and ln.pric == int(m.pric * 1_000_000)
        assert ours.age == theirs.age and ours.hosp_lv == theirs.hosp_lv
        assert ours.balc == (int(theirs.balc * 100) if theirs.balc is not None else None)


def test_valid_example_reads_the_same():
    ours, theirs = verdicts(VALID)
    assert ours is not None and theirs is not None
    assert ours.lines[0].pric == 10_125_000 and theirs.feedetail[0].pric == Decimal("10.125")


@settings(max_examples=400, deadline=None)
@given(claims())
def test_fast_path_equals_full_reader(c):
    """The fast path for well-formed claims must give exactly what the full reader gives."""
    from rules_engine.model.claim import _fast_claim, parse_claim_full
    fast = _fast_claim(c, 1)
    if fast is None:
        return
    full = parse_claim_full(c)
    for name in ("insuplc_admdvs", "mdtrtarea_admvs", "insutype", "med_type", "hosp_lv", "setl_date", "adm_date",
                 "age", "gend", "psn_type", "insutype_retr_flag", "cvlserv_flag", "community_flag", "filing_type",
                 "acct_used_flag", "balc", "dise_codg", "diagnoses", "accumulators", "icd_edition"):
        assert getattr(fast, name) == getattr(full, name), name
    assert [(l.feedetl_sn, l.med_list_codg, l.medins_list_codg, l.cnt, l.pric, l.amount, l.hosp_appr_flag, l.prd_days)
            for l in fast.lines] == [(l.feedetl_sn, l.med_list_codg, l.medins_list_codg, l.cnt, l.pric, l.amount,
                                      l.hosp_appr_flag, l.prd_days) for l in full.lines]


def test_fast_path_takes_the_example_claims():
    import json
    from pathlib import Path
    from rules_engine.model.claim import _fast_claim
    for f in (Path(__file__).resolve().parents[2] / "examples" / "claims").glob("*.json"):
        c = json.loads(f.read_text(encoding="utf-8"))
        assert _fast_claim(c, 1) is not None, f.name
