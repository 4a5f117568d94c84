"""`rules-engine audit` / POST /v1/audit give the hits the settlement's own audit gives — also for a
claim whose diagnoses are in the clinical edition (converted first, as the settlement does)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from rules_engine import Engine
from rules_engine.audit.run import audit_claim

ROOT = Path(__file__).resolve().parents[2]
CLAIM = json.loads((ROOT / "examples" / "claims" / "national-catalogue-audit.json").read_text(encoding="utf-8"))
DRUG = CLAIM["feedetail"][0]["med_list_codg"]


def _engine(tmp_path) -> Engine:
    regions = tmp_path / "regions"
    shutil.copytree(ROOT / "regions", regions)
    # 脓毒性休克: clinical A41.900x003 is insurance R57.200 — not a prefix of it, so only a real
    # conversion lets the insurance-edition rule see it
    (regions / "000000" / "2024.1" / "audit" / "zz-test-dx.yaml").write_text(
        "rules:\n  - id: TEST-DX\n    kind: diagnosis_required\n"
        f"    items: [\"{DRUG}\"]\n    icd: [\"R57\"]\n    action: reject_line\n    message: 限休克患者（测试规则）\n",
        encoding="utf-8")
    return Engine.from_directory(regions, cache=False)


def _claim(diag: str) -> dict:
    c = dict(CLAIM, diseinfo=[{"diag_code": diag, "maindiag_flag": "1", "diag_type": "1"}])
    return c


def test_standalone_audit_converts_clinical_codes_as_the_settlement_does(tmp_path):
    eng = _engine(tmp_path)
    for diag, refused in (("A41.900x003", False), ("J10.100x001", True)):
        alone = {h["rule"] for h in audit_claim(eng.packs, _claim(diag))["hits"]}
        settled = {h["rule"] for h in eng.settle(_claim(diag)).to_dict()["audit"]}
        assert ("TEST-DX" in alone) is refused, (diag, alone)
        assert alone == settled


def test_a_line_sent_with_the_hospital_code_is_audited_under_its_national_code():
    """住院诊查费 twice on one day — once under the national code, once under a hospital code the
    region's item map sends to it: the 两库 once-a-day rule sees both, in the settlement and alone."""
    eng = Engine.from_directory(ROOT / "regions", cache=False)
    claim = {
        "insuplc_admdvs": "110000", "mdtrtarea_admvs": "110000", "insutype": "310", "med_type": "21", "age": 50,
        "gend": "1", "hosp_lv": "3", "begntime": "2025-03-02 09:00:00", "setl_time": "2025-03-04 10:00:00",
        "feedetail": [
            {"feedetl_sn": "1", "med_list_codg": "001102000050000", "cnt": 1, "pric": 20, "det_item_fee_sumamt": 20,
             "fee_ocur_time": "2025-03-02 10:00:00"},
            {"feedetl_sn": "2", "medins_list_codg": "ZC0001", "cnt": 1, "pric": 20, "det_item_fee_sumamt": 20,
             "fee_ocur_time": "2025-03-02 18:00:00"}]}
    s = eng.settle(claim)
    settled = {(h["rule"], tuple(h["lines"])) for h in s.to_dict()["audit"]}
    alone = {(h["rule"], tuple(h["lines"])) for h in audit_claim(eng.packs, claim)["hits"]}
    assert settled == alone
    assert any("2" in lines for _, lines in settled), settled  # the mapped line takes part
