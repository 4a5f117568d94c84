"""The claim's `history` (the person's recent lines): read strictly, every bad field with its path."""
from __future__ import annotations

import pytest

from rules_engine.audit import parse_history
from rules_engine.model.claim import ClaimError


def test_a_good_history():
    h = parse_history([{"med_list_codg": "002503020030000", "fee_ocur_time": "2025-02-25 09:00:00", "cnt": 1.5,
                        "prd_days": 7, "mdtrt_id": "M-1", "feedetl_sn": "9"},
                       {"med_list_codg": "001102000050000", "fee_ocur_time": "2025-02-26", "cnt": "2"}])
    assert (h[0].date, h[0].time, h[0].cnt, h[0].prd_days, h[0].mdtrt_id) == ("2025-02-25", "09:00:00", 15000, 7.0,
                                                                              "M-1")
    assert (h[1].time, h[1].cnt, h[1].mdtrt_id) == (None, 20000, None)
    assert parse_history(None) == [] and parse_history([]) == []


def test_every_bad_field_is_named():
    with pytest.raises(ClaimError) as e:
        parse_history([{"med_list_codg": 2503020030000, "fee_ocur_time": "2025-02-30", "cnt": -1},
                       "x", {"med_list_codg": "A", "fee_ocur_time": "2025-02-01", "cnt": 1.00001, "mdtrtid": "M"}])
    got = {(x.path, x.code) for x in e.value.errors}
    assert got == {("history[0].med_list_codg", "E-CLAIM-TYPE"), ("history[0].fee_ocur_time", "E-CLAIM-VALUE"),
                   ("history[0].cnt", "E-CLAIM-VALUE"), ("history[1]", "E-CLAIM-TYPE"),
                   ("history[2].cnt", "E-CLAIM-VALUE"), ("history[2].mdtrtid", "E-CLAIM-UNKNOWN-FIELD")}
    assert "did you mean 'mdtrt_id'" in next(x.message for x in e.value.errors if x.path == "history[2].mdtrtid")


def test_not_a_list():
    with pytest.raises(ClaimError) as e:
        parse_history({"med_list_codg": "A"})
    assert e.value.errors[0].path == "history"
