"""Reforms as overlays, and the impact of a change on a population."""
from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from rules_engine.batch.impact import combine, run_impact
from rules_engine.batch.overlay import OverlayError, apply_overlay, read_overlay, resolve_pack
from rules_engine.batch.runner import Options
from rules_engine.batch.tables import read_claims_input, tables_from_claims
from rules_engine.batch.vectorised import PackContext, PackSource
from rules_engine.cli import main
from rules_engine.packs.registry import PackSet

from .conftest import REGION, make_population
from .test_runs import _claim, _write_csv_pair

RAISE = f"""
reform: 三级住院提高5个百分点
base: {REGION}@2023.1
changes:
  - path: layers[id=inpatient_pool].bands.ratios.cases[0].value[0].ratio
    set: 0.90
  - path: layers[id=inpatient_pool].caps[0].amount
    set: 250000
"""


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


def test_overlay_changes_values_and_never_the_pack(small_regions, tmp_path):
    before = _tree_digest(small_regions)
    ov = tmp_path / "reform.yaml"
    ov.write_text(RAISE, encoding="utf-8")
    ps = PackSet.load(small_regions)
    base = resolve_pack(ps, f"{REGION}@2023.1")
    reform = apply_overlay(ps, base, read_overlay(ov))
    layer = reform.layer("inpatient_pool")
    assert layer.bands.ratios.cases[0].value[0].ratio == 900_000
    assert layer.caps[0].amount.otherwise == 25_000_000
    assert base.layer("inpatient_pool").bands.ratios.cases[0].value[0].ratio == 850_000
    assert reform.content_hash != base.content_hash and reform.label.startswith(f"{REGION}@2023.1+reform#")
    assert _tree_digest(small_regions) == before


@pytest.mark.parametrize("change, needle, line", [
    ("  - path: layers[id=inpatient_pol].caps[0].amount\n    set: 1", "did you mean 'inpatient_pool'", 3),
    ("  - path: layers[id=inpatient_pool].cap[0].amount\n    set: 1", "has no key 'cap' — did you mean 'caps'", 3),
    ("  - path: layers[id=inpatient_pool].caps[3].amount\n    set: 1", "there is no [3]", 3),
    ("  - path: layers[id=inpatient_pool].bands.ratios.cases[0].value[0].ratio\n    set: 1.5",
     "above the maximum 1", 3),
    ("  - path: layers[id=inpatient_pool].bands.ratios.cases[0].value[0].ratio\n    add: 0.9",
     "exists already (use 'set'", 3),
    ("  - path: layers[id=inpatient_pool].caps[0].amount\n    set: 1\n    sett: 2", "unknown key 'sett'", 5),
    ("  - file: catalogue/drug.yaml\n    path: entries[code=A0001].category\n    set: 乙", "did you mean", 3),
])
def test_overlay_errors_are_located_in_the_overlay(small_regions, tmp_path, change, needle, line):
    ov = tmp_path / "bad.yaml"
    ov.write_text(f"reform: bad\nchanges:\n{change}\n", encoding="utf-8")
    ps = PackSet.load(small_regions)
    with pytest.raises(OverlayError) as e:
        apply_overlay(ps, resolve_pack(ps, f"{REGION}@2023.1"), read_overlay(ov))
    p = e.value.problems[0]
    assert p.file == str(ov) and p.line == line, p.format()
    assert needle in p.format(), p.format()


def test_overlay_catalogue_change(small_regions, tmp_path):
    ov = tmp_path / "cat.yaml"
    ov.write_text("changes:\n  - file: catalogue/drugs.yaml\n    path: entries[code=C0001].category\n    set: 甲\n",
                  encoding="utf-8")
    ps = PackSet.load(small_regions)
    reform = apply_overlay(ps, resolve_pack(ps, f"{REGION}@2023.1"), read_overlay(ov))
    assert reform.lookup("C0001", "2023-05-01").category == "甲"


def _impact(small_regions, claims, reform_path, base=f"{REGION}@2023.1"):
    ps = PackSet.load(small_regions)
    base_pack = resolve_pack(ps, base)
    reform_pack = apply_overlay(ps, base_pack, read_overlay(reform_path))
    b = PackContext(PackSource(ps, {REGION: base_pack}))
    r = PackContext(PackSource(ps, {REGION: reform_pack}))
    c, ln = tables_from_claims(claims)
    from rules_engine.batch.tables import ClaimsInput, Source
    inp = ClaimsInput(Source(Path("claims.json"), "json"), Source(Path("claims.json"), "json"), json_claims=claims)
    parts = run_impact(inp, b, r, REGION, Options(workers=0, partition_lines=30))
    return combine(parts, region=REGION, base_pack=base_pack, reform_pack=reform_pack, reform_name="t", changes=[])


def test_impact_adds_up_and_matches_two_batches(small_regions, tmp_path):
    ov = tmp_path / "reform.yaml"
    ov.write_text(RAISE, encoding="utf-8")
    claims = [_claim(i, hosp_lv="3" if i % 2 else "2") for i in range(36)] + \
        [_claim(100, insuplc_admdvs="520000", mdtrtarea_admvs=REGION, psn_no="X")]
    rep = _impact(small_regions, claims, ov)
    assert rep["skipped_claims"] == 1 and rep["claims"] == 36
    tot = {r["field"]: r for r in rep["totals"]}
    fund = tot["fund_pay_sumamt"]
    assert fund["delta"] > 0 and fund["delta"] == fund["reform"] - fund["base"]
    # the parts add up: by med_type, by level, by band, by person type, by fund type, by person
    for g in ("med_type", "hosp_lv", "amount_band", "person_type"):
        assert sum(r["fund_delta"] for r in rep["by"][g]) == fund["delta"]
        assert sum(r["claims"] for r in rep["by"][g]) == 36
    assert sum(r["delta"] for r in rep["by_fund_pay_type"] if r["fund_pay_type"] != "310200") == fund["delta"]
    p = rep["people"]
    assert p["pay_more"] + p["pay_less"] + p["unchanged"] == p["persons"] == 4
    assert p["less_total"] == -(tot["psn_part_amt"]["base"] - tot["psn_part_amt"]["reform"])
    # only tier-3 inpatient claims change
    changed = {r["key"]: r["changed"] for r in rep["by"]["hosp_lv"]}
    assert changed.get("2", 0) == 0 and changed["3"] > 0
    assert {r["key"] for r in rep["by"]["med_type"] if r["changed"]} == {"21"}
    # and the delta is what two separate batch runs under the two packs give
    from rules_engine.batch.tables import build_block
    from rules_engine.batch.vectorised import settle_block
    ps = PackSet.load(small_regions)
    base_pack = resolve_pack(ps, f"{REGION}@2023.1")
    reform_pack = apply_overlay(ps, base_pack, read_overlay(ov))
    c, ln = tables_from_claims(claims[:-1])
    sums = []
    for pack in (base_pack, reform_pack):
        res = settle_block(build_block(c, ln), PackContext(PackSource(ps, {REGION: pack})), verify=0)
        sums.append(int(res.claim["fund_pay_sumamt"].sum()))
    assert Decimal(sums[1] - sums[0]).scaleb(-2) == fund["delta"]


def test_impact_cli_between_versions_and_overlay(tmp_path, gen, regions_dir):
    """From generated claims: impact of an overlay (html with charts) and between two shipped versions."""
    ps = PackSet.load(regions_dir)
    multi = sorted({p.info.region for p in ps.packs() if p.layers
                    and sum(1 for q in ps.packs() if q.info.region == p.info.region) >= 2})
    if not multi:
        pytest.skip("no shipped region has two versions")
    region = multi[0]
    versions = sorted((p for p in ps.packs() if p.info.region == region), key=lambda p: p.info.effective_from)
    data = tmp_path / "claims"
    make_population(gen, regions_dir, data, lines=8_000, partition_lines=4_000)
    out = tmp_path / "v.json"
    r = CliRunner().invoke(main, ["impact", "--claims", str(data), "--base", versions[-2].key, "--reform",
                                  versions[-1].key, "--format", "json", "--out", str(out), "--regions",
                                  str(regions_dir), "-q"])
    if r.exit_code == 1 and "no claim of the input is insured" in r.output:
        pytest.skip(f"the generator did not insure claims in {region}")
    assert r.exit_code == 0, r.output
    rep = json.loads(out.read_text())
    assert rep["claims"] > 0 and rep["base"]["pack"].startswith(versions[-2].key)
    # an overlay that doubles a cap of the newest version: the HTML report has its charts
    layer = next(x for x in versions[-1].layers if x.caps)
    ov = tmp_path / "ov.yaml"
    ov.write_text(f"reform: test\nchanges:\n  - path: layers[id={layer.id}].bands.ratios\n    set: [{{ratio: 1}}]\n",
                  encoding="utf-8")
    html = tmp_path / "r.html"
    r = CliRunner().invoke(main, ["impact", "--claims", str(data), "--base", versions[-1].key, "--reform", str(ov),
                                  "--format", "html", "--out", str(html), "--regions", str(regions_dir), "-q"])
    assert r.exit_code == 0, r.output
    text = html.read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") >= 3 and "Impact of test" in text


def test_impact_cli_bad_reform(small_regions, tmp_path):
    claims = [_claim(i) for i in range(4)]
    _write_csv_pair(tmp_path / "in", claims)
    ov = tmp_path / "ov.yaml"
    ov.write_text("changes:\n  - path: layers[id=nope].caps[0].amount\n    set: 1\n", encoding="utf-8")
    r = CliRunner().invoke(main, ["impact", "--claims", str(tmp_path / "in"), "--base", f"{REGION}@2023.1",
                                  "--reform", str(ov), "--regions", str(small_regions), "-q"])
    assert r.exit_code == 1 and f"{ov}:2:" in r.output and "inpatient_pool" in r.output
    r = CliRunner().invoke(main, ["impact", "--claims", str(tmp_path / "in"), "--base", f"{REGION}@2099.1",
                                  "--reform", str(ov), "--regions", str(small_regions), "-q"])
    assert r.exit_code == 1 and "2023.1" in r.output


def test_generator_is_seeded_and_draws_catalogue_codes(tmp_path, gen, regions_dir):
    import pyarrow.parquet as pq
    a = make_population(gen, regions_dir, tmp_path / "a", lines=3_000, seed=3)
    b = make_population(gen, regions_dir, tmp_path / "b", lines=3_000, seed=3)
    assert a == b
    ta, tb = pq.read_table(tmp_path / "a" / "feedetail.parquet"), pq.read_table(tmp_path / "b" / "feedetail.parquet")
    assert ta.equals(tb)
    inp = read_claims_input(tmp_path / "a")
    assert inp.aligned
    ps = PackSet.load(regions_dir)
    known = {c for p in ps.packs() for c in p.catalogue}
    drawn = ta.column("med_list_codg").to_pylist()
    listed = [c for c in drawn if c in known or any(c.startswith(k) for k in known if len(k) < len(c))]
    # the rest are the generator's own unlisted codes (丙 and unpriceable 乙 shares), never invented look-alikes
    assert len(listed) > 0.4 * len(drawn)
    assert all(c.startswith("X") and "U" in c for c in set(drawn) - set(listed))
    claims = pq.read_table(tmp_path / "a" / "claims.parquet").to_pandas()
    assert claims["med_type"].nunique() >= 2 and claims.groupby("psn_no").size().max() >= 2
