"""Whole runs: streaming partitions, atomic output, the CLI, Dask against one process, bad input."""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from rules_engine.batch import runner as runner_mod
from rules_engine.batch.runner import Options, read_settlements, run_batch
from rules_engine.batch.tables import BatchInputError, read_claims_input
from rules_engine.batch.vectorised import PackContext
from rules_engine.cli import main

from .conftest import REGION, make_population


def _claim(i: int, **kw) -> dict:
    c = {"mdtrt_id": f"M{i}", "psn_no": f"P{i % 4}", "insuplc_admdvs": REGION, "mdtrtarea_admvs": REGION,
         "insutype": "310", "med_type": "21" if i % 3 == 0 else "11", "setl_time": f"2023-{1 + i % 12:02d}-15 09:00:00",
         "hosp_lv": "3", "age": 50 + i % 30, "acct_used_flag": "1",
         "feedetail": [{"feedetl_sn": "1", "med_list_codg": "A0001", "cnt": 2, "pric": "1500.00",
                        "det_item_fee_sumamt": "3000.00"},
                       {"feedetl_sn": "2", "med_list_codg": "B0001", "cnt": 1, "pric": "100.00",
                        "det_item_fee_sumamt": "100.00"}]}
    if i < 4:
        c["balc"] = "2000.00"
    c.update(kw)
    return c


def _write_csv_pair(folder: Path, claims: list[dict]) -> None:
    import pyarrow.csv as pcsv
    from rules_engine.batch.tables import tables_from_claims
    c, ln = tables_from_claims(claims)
    folder.mkdir(parents=True, exist_ok=True)
    pcsv.write_csv(c, folder / "claims.csv")
    pcsv.write_csv(ln, folder / "feedetail.csv")


def test_batch_cli_csv_equals_per_claim(small_regions, tmp_path):
    from rules_engine.batch.vectorised import PackSource, settle_person
    from rules_engine.packs.registry import PackSet
    claims = [_claim(i) for i in range(24)]
    _write_csv_pair(tmp_path / "in", claims)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["batch", str(tmp_path / "in"), "--out", str(out), "--regions", str(small_regions),
                                  "--format", "csv", "--line-results", "-q"])
    assert r.exit_code == 0, r.output
    info = read_settlements(out)
    assert len(info) == 24
    summary = json.loads((out / "summary.json").read_text())
    assert summary["claims"] == 24 and summary["lines"] == 48
    ps = PackSet.load(small_regions)
    by = {}
    for c in claims:
        by.setdefault(c["psn_no"], []).append(c)
    want = {}
    for cs in by.values():
        for c, s in zip(cs, settle_person(PackSource(ps), cs)):
            want[c["mdtrt_id"]] = s
    for row in info.itertuples():
        s = want[row.mdtrt_id]
        assert Decimal(row.hifp_pay) == Decimal(s.funds["hifp_pay"]).scaleb(-2)
        assert Decimal(row.acct_pay) == Decimal(s.acct_pay).scaleb(-2)
        assert Decimal(row.psn_cash_pay) == Decimal(s.psn_cash_pay).scaleb(-2)
    # the account balance carried on through each person's claims
    assert (info["acct_pay"].map(Decimal) > 0).sum() >= 4
    assert (out / "result.csv").exists() and (out / "setldetail.csv").exists()


def test_streams_partition_by_partition(small_regions, tmp_path, monkeypatch):
    """A 4-partition input is read one partition at a time (never as one table)."""
    claims = [_claim(i) for i in range(40)]
    _write_csv_pair(tmp_path / "in", claims)
    seen = []
    real = runner_mod.load_part

    def spy(spec):
        c, ln = real(spec)
        seen.append(ln.num_rows)
        return c, ln
    monkeypatch.setattr(runner_mod, "load_part", spy)
    ctx = PackContext.from_directory(small_regions)
    s = run_batch(read_claims_input(tmp_path / "in"), ctx, tmp_path / "out",
                  Options(partition_lines=20, workers=0, repartition=True))
    assert s.partitions >= 2 and len(seen) == s.partitions
    assert max(seen) < 80 and sum(seen) == 80
    # people are never split: every person's claims are in one partition
    info = read_settlements(tmp_path / "out")
    assert len(info) == 40


def test_interrupted_batch_leaves_nothing(small_regions, tmp_path, monkeypatch):
    claims = [_claim(i) for i in range(40)]
    _write_csv_pair(tmp_path / "in", claims)
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("previous run")
    calls = {"n": 0}
    real = runner_mod.settle_part

    def boom(spec, ctx, opts):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(spec, ctx, opts)
    monkeypatch.setattr(runner_mod, "settle_part", boom)
    r = CliRunner().invoke(main, ["batch", str(tmp_path / "in"), "--out", str(out), "--regions", str(small_regions),
                                  "--partition-lines", "20", "--repartition", "--force", "-q"])
    assert calls["n"] == 2
    assert r.exit_code != 0
    # the previous output is untouched and no half-written output lies beside it
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("out")] == ["out"]


def test_failed_batch_without_previous_output_leaves_no_folder(small_regions, tmp_path):
    claims = [_claim(i) for i in range(10)] + [_claim(10, insuplc_admdvs="999999")]
    _write_csv_pair(tmp_path / "in", claims)
    r = CliRunner().invoke(main, ["batch", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                                  "--regions", str(small_regions), "-q"])
    assert r.exit_code == 1
    assert "insuplc_admdvs" in r.output and "row 11" in r.output and "E-UNKNOWN-REGION" in r.output
    assert not any(p.name.startswith("out") for p in tmp_path.iterdir())


@pytest.mark.parametrize("mutate, column, needle", [
    (lambda c, ln: (c.drop_columns(["insutype"]), ln), "insutype", "required column 'insutype' is missing"),
    (lambda c, ln: (c.set_column(c.column_names.index("insutype"), "insutype",
                                 pa.array([310] * c.num_rows)), ln), "insutype", "leading zeros"),
    (lambda c, ln: (c, ln.set_column(ln.column_names.index("cnt"), "cnt",
                                     pa.array(["2"] * 5 + ["two"] + ["2"] * (ln.num_rows - 6)))), "cnt", "row 6"),
    (lambda c, ln: (c.set_column(c.column_names.index("setl_time"), "setl_time",
                                 pa.array(["2023-02-30 10:00:00"] + c.column("setl_time").to_pylist()[1:])), ln),
     "setl_time", "row 1"),
    (lambda c, ln: (c.set_column(c.column_names.index("setl_time"), "setl_time",
                                 pa.array(c.column("setl_time").to_pylist()[:3] + ["1999-06-01 10:00:00"]
                                          + c.column("setl_time").to_pylist()[4:])), ln),
     "insuplc_admdvs", "row 4"),
    (lambda c, ln: (c, ln.set_column(ln.column_names.index("det_item_fee_sumamt"), "det_item_fee_sumamt",
                                     pa.array(["3000.50"] + ln.column("det_item_fee_sumamt").to_pylist()[1:]))),
     "det_item_fee_sumamt", "E-BATCH-AMOUNT"),
    (lambda c, ln: (c.append_column("insutpye", pa.array(["310"] * c.num_rows)), ln), "insutpye", "did you mean"),
])
def test_bad_input_is_located_before_output(small_regions, tmp_path, mutate, column, needle):
    from rules_engine.batch.tables import tables_from_claims
    c, ln = tables_from_claims([_claim(i) for i in range(8)])
    c, ln = mutate(c, ln)
    d = tmp_path / "in"
    d.mkdir()
    pq.write_table(c, d / "claims.parquet")
    pq.write_table(ln, d / "feedetail.parquet")
    r = CliRunner().invoke(main, ["batch", str(d), "--out", str(tmp_path / "out"), "--regions", str(small_regions),
                                  "-q"])
    assert r.exit_code == 1, r.output
    assert column in r.output and needle in r.output, r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "out").exists()


def test_error_names_partition_and_row(small_regions, tmp_path, gen):
    """In a partitioned Parquet input, the message names the partition and the file's own row."""
    from rules_engine.batch.tables import parquet_meta, tables_from_claims
    claims = [_claim(i) for i in range(12)]
    claims[9]["hosp_lv"] = "4"
    c, ln = tables_from_claims(claims)
    # three partitions of whole persons (P0..P3 → groups by person)
    import pyarrow.compute as pc
    d = tmp_path / "in"
    d.mkdir()
    meta = parquet_meta("t1")
    groups = [["P0"], ["P1", "P2"], ["P3"]]
    cw = pq.ParquetWriter(d / "claims.parquet", c.schema.with_metadata(meta))
    lw = pq.ParquetWriter(d / "feedetail.parquet", ln.schema.with_metadata(meta))
    rows_before = []
    n = 0
    for g in groups:
        cg = c.filter(pc.is_in(c.column("psn_no"), pa.array(g)))
        ids = cg.column("mdtrt_id")
        lg = ln.filter(pc.is_in(ln.column("mdtrt_id"), ids))
        rows_before.append(n)
        n += cg.num_rows
        cw.write_table(cg.cast(cw.schema))
        lw.write_table(lg.cast(lw.schema))
    cw.close()
    lw.close()
    inp = read_claims_input(d)
    assert inp.aligned and inp.partitions == 3
    with pytest.raises(BatchInputError) as e:
        run_batch(inp, PackContext.from_directory(small_regions), tmp_path / "out", Options(workers=0))
    p = e.value.problems[0]
    assert p.column == "hosp_lv" and p.partition == 1  # M9 belongs to P1, the second group
    # the row is the row of the claims file: group 0 holds P0's 3 claims, then P1's M1, M5, M9 …
    assert p.row == rows_before[1] + [r["mdtrt_id"] for r in c.filter(
        pc.is_in(c.column("psn_no"), pa.array(["P1", "P2"]))).to_pylist()].index("M9") + 1
    assert not (tmp_path / "out").exists()


def test_dask_local_cluster_equals_single_process(tmp_path, gen, regions_dir):
    """Two worker processes on a LocalCluster give exactly the single-process result."""
    pytest.importorskip("distributed")
    data = tmp_path / "claims"
    info = make_population(gen, regions_dir, data, lines=30_000, partition_lines=6_000)
    assert info["partitions"] >= 3
    ctx = PackContext.from_directory(regions_dir)
    inp = read_claims_input(data)
    one = run_batch(inp, ctx, tmp_path / "one", Options(workers=0, want_accumulators=True))
    two = run_batch(inp, ctx, tmp_path / "two", Options(workers=2, want_accumulators=True))
    assert two.scheduler.startswith("dask") and two.workers == 2
    assert one.totals == two.totals and one.claims == two.claims == info["claims"]
    for table in ("setlinfo", "setldetail"):
        a = pq.read_table(tmp_path / "one" / table).sort_by([("mdtrt_id", "ascending")])
        b = pq.read_table(tmp_path / "two" / table).sort_by([("mdtrt_id", "ascending")])
        if table == "setldetail":
            a = a.sort_by([("mdtrt_id", "ascending"), ("fund_pay_type", "ascending")])
            b = b.sort_by([("mdtrt_id", "ascending"), ("fund_pay_type", "ascending")])
        assert a.equals(b), table


def test_json_claims_input(small_regions, tmp_path):
    claims = [_claim(i) for i in range(6)]
    p = tmp_path / "claims.json"
    p.write_text(json.dumps(claims), encoding="utf-8")
    r = CliRunner().invoke(main, ["batch", str(p), "--out", str(tmp_path / "out"), "--regions", str(small_regions),
                                  "-q"])
    assert r.exit_code == 0, r.output
    info = pq.read_table(tmp_path / "out" / "setlinfo").to_pandas()
    assert list(np.sort(info["mdtrt_id"])) == sorted(c["mdtrt_id"] for c in claims)
