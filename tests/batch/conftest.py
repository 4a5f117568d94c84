"""Fixtures for the batch tests: a small regions folder of our own, and generated populations."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from .packgen import write_packs

ROOT = Path(__file__).resolve().parents[2]

REGION = "510000"

PACKS = {
    f"{REGION}/2023.1": {
        "pack.yaml": {
            "region": REGION, "name": "测试地区", "version": "2023.1",
            "effective": {"from": "2023-01-01", "to": "2023-12-31"},
            "provenance": [{"id": "T", "title": "test fixture", "confidence": "sample"}],
            "catalogue_defaults": {"selfpay_prop": {"甲": 0, "乙": 0.1}},
            "catalogues": [{"file": "catalogue/drugs.yaml", "kind": "drug"}]},
        "policy.yaml": {
            "conditions": {"inpatient": {"med_type": ["21", "24"]}, "outpatient": {"med_type": ["11", "13"]},
                           "employee": {"insutype": "310"}, "retired": {"insutype_retr_flag": "1"}},
            "admission_counter": "admissions",
            "accumulators": [
                {"id": "admissions", "adds": "count", "when": {"is": "inpatient"}},
                {"id": "inpatient_position", "adds": "inscp_scp_amt", "when": {"is": "inpatient"}},
                {"id": "outpatient_dedc", "adds": {"deductible_of": "outpatient"}},
                {"id": "pool_paid", "adds": {"paid_by": ["inpatient_pool"]}}],
            "layers": [
                {"id": "inpatient_pool", "name": "住院统筹", "fund_pay_type": "310100", "setl_field": "hifp_pay",
                 "when": {"is": "inpatient"}, "base": "inscp",
                 "deductible": {"period": "claim", "amount": {"cases": [{"when": {"admission_seq": 1}, "value": 1300}],
                                                              "else": 650}},
                 "bands": {"basis": "gross", "position": "inpatient_position",
                           "ratios": {"cases": [{"when": {"hosp_lv": "3"},
                                                 "value": [{"to": 30000, "ratio": 0.85}, {"ratio": 0.9}]}],
                                      "else": [{"to": 30000, "ratio": 0.88}, {"ratio": 0.92}]}},
                 "adjust": [{"when": {"is": "retired"}, "self_share_times": 0.6}],
                 "caps": [{"amount": 200000, "period": "year", "accumulator": "pool_paid"}]},
                {"id": "outpatient", "name": "门诊统筹", "fund_pay_type": "310100", "setl_field": "hifp_pay",
                 "when": {"is": "outpatient"}, "base": "inscp",
                 "deductible": {"period": "year", "accumulator": "outpatient_dedc", "amount": 500},
                 "bands": {"ratios": [{"ratio": 0.5}]}}],
            "personal_account": {"fund_pay_type": "310200", "when": {"is": "employee"}}},
        "catalogue/drugs.yaml": {"kind": "drug", "entries": [
            {"code": "A0001", "name": "甲药", "category": "甲", "med_chrgitm_type": "09"},
            {"code": "B0001", "name": "乙药", "category": "乙", "med_chrgitm_type": "09", "pric_uplmt_amt": 80},
            {"code": "B0002", "name": "乙药二", "category": "乙", "med_chrgitm_type": "11"},
            {"code": "S0001", "name": "床位费", "category": "甲", "med_chrgitm_type": "01"},
            {"code": "C0001", "name": "丙药", "category": "丙", "med_chrgitm_type": "09"}]},
    },
}
PACKS[f"{REGION}/2024.1"] = {
    "pack.yaml": dict(PACKS[f"{REGION}/2023.1"]["pack.yaml"], version="2024.1", effective={"from": "2024-01-01"}),
    "policy.yaml": PACKS[f"{REGION}/2023.1"]["policy.yaml"],
    "catalogue/drugs.yaml": PACKS[f"{REGION}/2023.1"]["catalogue/drugs.yaml"],
}


@pytest.fixture
def small_regions(tmp_path) -> Path:
    root = tmp_path / "regions"
    write_packs(root, PACKS)
    return root


def gen_module():
    spec = importlib.util.spec_from_file_location("gen_claims", ROOT / "tools" / "gen_claims.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gen_claims"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def gen():
    return gen_module()


def make_population(gen, regions: Path, out: Path, *, lines: int = 20_000, partition_lines: int = 4_000,
                    fmt: str = "parquet", seed: int = 7, json_path: Path | None = None) -> dict:
    parts = gen.generate(regions, lines=lines, seed=seed, partition_lines=partition_lines, log=lambda s: None)
    return gen.write(parts, out, fmt, json_path, partition_lines, log=lambda s: None)
