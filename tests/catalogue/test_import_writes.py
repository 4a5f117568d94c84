"""What an import writes: the diff against the pack's file, hand-written YAML kept, all or nothing."""
from __future__ import annotations

import json
import os

import pytest

ROWS = [["000000000001", "阿莫西林胶囊", "甲", "", "", "", "", ""],
        ["000000000002", "头孢克洛胶囊", "乙", "0.1", "3.50", "", "", "限儿童。"],
        ["000000000003", "布洛芬片", "乙", "", "", "", "", "限工伤保险。"]]


def test_reimport_reports_added_changed_removed(tmp_path, pack, mapping, cli, h):
    h.do_import(cli, h.write_csv(tmp_path / "v1.csv", ROWS), pack, mapping)
    v2 = [ROWS[0], ["000000000002", "头孢克洛胶囊", "甲", "", "3.50", "", "", "限儿童。"],
          ["000000000004", "对乙酰氨基酚片", "甲", "", "", "", "", ""]]
    r = h.do_import(cli, h.write_csv(tmp_path / "v2.csv", v2), pack, mapping, "--report", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert [a["code"] for a in rep["added"]] == ["000000000004"]
    assert [c["code"] for c in rep["removed"]] == ["000000000003"]
    changed = rep["changed"][0]
    assert changed["code"] == "000000000002" and changed["fields"]["category"] == ["乙", "甲"]
    assert changed["fields"]["selfpay_prop"] == ["0.1", ""] and rep["unchanged"] == 1
    # the removed row's restriction left with it; the kept one stays
    text = h.read(pack / "restrictions.yaml")
    assert "T-000000000003" not in text and "T-000000000002" in text


def test_output_is_deterministic(tmp_path, pack, mapping, cli, h):
    f = h.write_csv(tmp_path / "d.csv", ROWS)
    h.do_import(cli, f, pack, mapping)
    first = {p: p.read_bytes() for p in pack.rglob("*") if p.is_file()}
    h.do_import(cli, f, pack, mapping)  # the same file again: the same bytes
    assert {p: p.read_bytes() for p in pack.rglob("*") if p.is_file()} == first
    # rows in another order: the same catalogue file (sorted by code)
    h.do_import(cli, h.write_csv(tmp_path / "d.csv", list(reversed(ROWS))), pack, mapping)
    assert (pack / "catalogue" / "drugs.csv").read_bytes() == first[pack / "catalogue" / "drugs.csv"]


def test_hand_written_restrictions_and_comments_survive(tmp_path, pack, mapping, cli, h):
    (pack / "restrictions.yaml").write_text(h.dedent("""
        # my notes — keep me
        restrictions:
          # the hospital's own rule
          - id: LOCAL-1
            text: 限本院
            when: {hosp_lv: "3"}
    """), encoding="utf-8")
    assert h.do_import(cli, h.write_csv(tmp_path / "d.csv", ROWS), pack, mapping).exit_code == 0
    h.do_import(cli, h.write_csv(tmp_path / "d.csv", ROWS), pack, mapping)  # twice: the block is replaced
    text = h.read(pack / "restrictions.yaml")
    assert "# my notes — keep me" in text and "# the hospital's own rule" in text and "LOCAL-1" in text
    assert text.count("- id: \"T-000000000002\"") == 1
    from rules_engine.packs.registry import PackSet
    ps = PackSet.load(pack.parents[1])
    assert not ps.problems.errors, [p.format() for p in ps.problems.errors]
    r = ps.select("990009", "2025-06-01").restrictions
    assert {"LOCAL-1", "T-000000000002", "T-000000000002.check", "T-000000000003"} <= set(r)


def test_a_hand_written_id_the_import_would_reuse_is_refused(tmp_path, pack, mapping, cli, h):
    (pack / "restrictions.yaml").write_text("restrictions:\n  - id: T-000000000003\n    text: mine\n",
                                            encoding="utf-8")
    before = h.read(pack / "restrictions.yaml")
    r = h.do_import(cli, h.write_csv(tmp_path / "d.csv", ROWS), pack, mapping)
    assert r.exit_code == 1 and "already defines T-000000000003" in r.output
    assert h.read(pack / "restrictions.yaml") == before and not (pack / "catalogue" / "drugs.csv").exists()


def test_pack_yaml_gets_the_file_listed_and_keeps_its_comments(tmp_path, pack, mapping, cli, h):
    text = h.read(pack / "pack.yaml") + "catalogues:\n  # services first\n  - file: catalogue/s.csv\n    kind: service\n"
    (pack / "catalogue").mkdir()
    (pack / "catalogue" / "s.csv").write_text("code,name,category\nS1,诊查费,甲\n", encoding="utf-8")
    (pack / "pack.yaml").write_text(text, encoding="utf-8")
    assert h.do_import(cli, h.write_csv(tmp_path / "d.csv", ROWS), pack, mapping).exit_code == 0
    new = h.read(pack / "pack.yaml")
    assert new.startswith(text) and new[len(text):] == "  - file: catalogue/drugs.csv\n    kind: drug\n"
    r = cli("validate", pack.parents[1])
    assert r.exit_code == 0, r.output


def test_a_failed_write_leaves_the_pack_as_it_was(tmp_path, pack, mapping, cli, h, monkeypatch):
    h.do_import(cli, h.write_csv(tmp_path / "v1.csv", ROWS), pack, mapping)
    before = {p: p.read_bytes() for p in pack.rglob("*") if p.is_file()}
    calls = {"n": 0}
    real = os.replace

    def flaky(a, b):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device", str(b))
        return real(a, b)

    monkeypatch.setattr(os, "replace", flaky)
    r = h.do_import(cli, h.write_csv(tmp_path / "v2.csv", ROWS[:1]), pack, mapping)
    assert r.exit_code == 1 and "No space left on device" in r.output
    assert {p: p.read_bytes() for p in pack.rglob("*") if p.is_file()} == before


def test_dry_run_writes_nothing(tmp_path, pack, mapping, cli, h):
    before = {p: p.read_bytes() for p in pack.rglob("*") if p.is_file()}
    r = h.do_import(cli, h.write_csv(tmp_path / "d.csv", ROWS), pack, mapping, "--dry-run")
    assert r.exit_code == 0 and "would write: catalogue/drugs.csv" in r.output
    assert {p: p.read_bytes() for p in pack.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("suffix", [".md", ".json"])
def test_report_formats(tmp_path, pack, mapping, cli, h, suffix):
    rows = ROWS + [["000000000009", "X", "丁", "", "", "", "", ""]]
    h.do_import(cli, h.write_csv(tmp_path / "d.csv", rows), pack, mapping, "--report", tmp_path / f"r{suffix}")
    text = (tmp_path / f"r{suffix}").read_text(encoding="utf-8")
    if suffix == ".md":
        assert "## Rejected rows" in text and "| 5 | 甲乙类别 (C) | 丁 |" in text
    else:
        assert json.loads(text)["rejected"][0]["row"] == 5
