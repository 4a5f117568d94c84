"""The claim path: a parsed claim with clinical-edition diagnoses and hospital item codes."""
from __future__ import annotations

from rules_engine.coding import load_chain
from rules_engine.coding.claim import code_claim
from rules_engine.model.claim import parse_claim

from .conftest import BASELINE, ROOT

CLAIM = {
    "insuplc_admdvs": "110000", "mdtrtarea_admvs": "110000", "insutype": "310", "med_type": "21", "age": 52,
    "gend": "2", "hosp_lv": "3", "begntime": "2021-03-02 09:30:00", "setl_time": "2021-03-12 16:05:00",
    "fixmedins_code": "H11010500001", "icd_edition": "clinical-2.0",
    "diseinfo": [{"diag_code": "I50.900x007"}, {"diag_code": "I50.900x022"}, {"diag_code": "Z99.999x999"}],
    "feedetail": [
        {"feedetl_sn": "1", "med_list_codg": "001109000010000", "cnt": 1, "pric": 50, "det_item_fee_sumamt": 50},
        {"feedetl_sn": "2", "medins_list_codg": "ZC0001", "cnt": 1, "pric": 20, "det_item_fee_sumamt": 20},
        {"feedetl_sn": "3", "medins_list_codg": "CW0101", "cnt": 1, "pric": 50, "det_item_fee_sumamt": 50},
        {"feedetl_sn": "4", "medins_list_codg": "TS0001", "cnt": 1, "pric": 900, "det_item_fee_sumamt": 900},
    ],
}


def test_a_claim_with_clinical_codes_and_hospital_codes_is_coded_with_every_warning():
    coding, problems = load_chain([BASELINE, ROOT / "regions" / "110000" / "2021.1"], ROOT)
    assert problems == []
    cc = code_claim(coding, parse_claim(CLAIM))
    # converted codes in the table's spelling; the unknown one as the claim parser left it (upper-cased)
    assert cc.diagnoses == ("I50.900x007", "I50.900", "Z99.999X999")
    assert [ln.national_code for ln in cc.lines] == ["001109000010000", "001102000030000", "001109000010000", None]
    assert cc.lines[1].mapping.kind == "institution"          # H11010500001's own ZC0001
    assert "not mapped" in cc.lines[3].reason
    kinds = [t.kind for t in cc.conversion.translations]
    assert kinds == ["equivalent", "source-is-narrower", "unknown"]
    assert len(cc.warnings) == 3                               # narrower, unknown, the unmapped line
    assert cc.warnings[-1].startswith("line 4:") and "全自费" in cc.warnings[-1]


def test_without_an_edition_codes_are_used_as_sent_and_without_coding_lines_are_unmapped():
    claim = parse_claim({**CLAIM, "icd_edition": None})
    cc = code_claim(None, claim)
    assert cc.conversion is None and cc.diagnoses == claim.diagnoses
    assert [ln.national_code for ln in cc.lines] == ["001109000010000", None, None, None]
    assert all("no local → national item map" in w for w in cc.warnings)
