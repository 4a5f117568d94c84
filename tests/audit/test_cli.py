"""`rules-engine audit CLAIM.json …`: hits as a table or JSON; bad input located, exit 1, no traceback."""
from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from rules_engine.cli import main

from .conftest import REGIONS, claim

MALE_XRAY = claim([("002101030300000", "2025-03-02 10:00:00"), ("001103000010000", "2025-03-03 01:00:00"),
                   ("001102000030000", "2025-03-03 02:00:00"), ("002503020030000", "2025-03-04 08:00:00")],
                  gend="1", psn_no="CLI-1",
                  history=[{"med_list_codg": "002503020030000", "fee_ocur_time": "2025-02-25 09:00:00", "cnt": 1,
                            "mdtrt_id": "OUT-1", "feedetl_sn": "H-77"}])


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_audit_prints_each_hit_with_its_rule_lines_and_source_row(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps(MALE_XRAY, ensure_ascii=False), encoding="utf-8")
    r = invoke("audit", str(f), "--regions", str(REGIONS))
    assert r.exit_code == 0, r.output
    for text in ("LKS-0003", "子宫造影", "LKR-0001", "LKS-0879", "第七批", "lines refused", "history #0"):
        assert text in r.output


def test_audit_json_lists_hits_with_history_lines(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps([MALE_XRAY, claim([("001102000050000", "2025-03-02 08:00:00")])]), encoding="utf-8")
    r = invoke("audit", str(f), "--regions", str(REGIONS), "--format", "json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert [o["verdict"] for o in out] == ["lines refused", "clean"]
    hits = {h["rule"]: h for h in out[0]["hits"]}
    assert hits["LKR-0001"]["lines"] == ["3"] and hits["LKR-0001"]["related"] == ["2"]
    assert hits["LKS-0879"]["history"] == [{"index": 0, "med_list_codg": "002503020030000",
                                            "fee_ocur_time": "2025-02-25 09:00:00", "mdtrt_id": "OUT-1",
                                            "feedetl_sn": "H-77"}]
    assert hits["LKS-0003"]["ref"] == {"file": "nhsa_liangku_service_item_rules.csv", "batch": "第一批",
                                       "rule_type": "限定性别对象", "row": 3}
    assert out[0]["chain"] == ["000000@2024.1", "110000@2025.1"]


def test_a_bad_claim_and_a_bad_history_are_reported_together(tmp_path):
    bad = claim([("002101030300000", "2025-13-02")], insutype=310,
                history=[{"med_list_codg": "002503020030000", "cnt": "two", "fee_ocur_tme": "2025-02-01"}])
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(bad), encoding="utf-8")
    r = invoke("audit", str(f), "--regions", str(REGIONS))
    assert r.exit_code == 1
    for path in ("insutype", "feedetail[0].fee_ocur_time", "history[0].cnt", "history[0].fee_ocur_time",
                 "history[0].fee_ocur_tme"):
        assert f"    {path}:" in r.output
    assert "did you mean 'fee_ocur_time'" in r.output
    assert "Traceback" not in r.output


def test_broken_json_and_missing_files(tmp_path):
    f = tmp_path / "broken.json"
    f.write_text('{"a": ', encoding="utf-8")
    r = invoke("audit", str(f), "--regions", str(REGIONS))
    assert r.exit_code == 1 and "E-CLAIM-JSON" in r.output
    r = invoke("audit", str(tmp_path / "none.json"), "--regions", str(REGIONS))
    assert r.exit_code == 2 and "no such file" in r.output


def test_a_claim_on_a_date_no_pack_covers(tmp_path):
    f = tmp_path / "old.json"
    f.write_text(json.dumps(claim([("001102000050000", "1990-03-02 08:00:00")], setl_time="1990-03-05",
                                  begntime="1990-03-01")), encoding="utf-8")
    r = invoke("audit", str(f), "--regions", str(REGIONS))
    assert r.exit_code == 1 and "E-NO-PACK-ON-DATE" in r.output


def test_a_broken_audit_folder_is_located_and_nothing_is_audited(tmp_path):
    regions = tmp_path / "regions"
    shutil.copytree(REGIONS / "000000", regions / "000000")
    shutil.copytree(REGIONS / "110000", regions / "110000")
    extra = regions / "110000" / "2025.1" / "audit"
    extra.mkdir()
    (extra / "local.yaml").write_text("rules:\n  - {id: BJ-1, kind: item_condition, items: [\"001102000050000\"],"
                                      " when: {gend: 2}, action: warn}\n", encoding="utf-8")
    f = tmp_path / "c.json"
    f.write_text(json.dumps(MALE_XRAY), encoding="utf-8")
    r = invoke("audit", str(f), "--regions", str(regions))
    assert r.exit_code == 1
    assert "110000/2025.1/audit/local.yaml:2:" in r.output and "E-COND-TYPE" in r.output
    assert "Traceback" not in r.output and "LKS-0003" not in r.output
