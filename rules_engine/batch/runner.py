"""Run a batch: partitions in, settlements out — streamed, atomic, in-process or on Dask.

Partitions are whole persons (a person's claims depend on each other through the accumulators):
- Parquet written partitioned by person (tools/gen_claims.py, or any writer that pairs row groups
  and sets the `rules-engine/batch` footer key) is read row group by row group, as is;
- anything else (CSV, plain Parquet, JSON claims) is first split by a hash of `psn_no` into
  partition files in a temporary folder (streaming; what stays in memory is one read batch plus
  an index mdtrt_id → partition, about 100 bytes per claim — or nothing when the fee lines carry
  `psn_no`).

Memory is bounded by the partition, not the file. Output goes to `OUT.partial-…` and is renamed
to OUT only when every partition is settled and `summary.json` is written: an interrupted or
failed run leaves no OUT (and the partial folder is removed when the process can still do so).
"""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .tables import (ROW, BatchInputError, ClaimsInput, InputProblem, build_block, iter_csv_batches, read_csv_table,
                     tables_from_claims)
from .vectorised import CLAIM_FIELDS_OUT, BlockResult, PackContext, settle_block

DASK_THRESHOLD_LINES = 5_000_000


@dataclass
class Options:
    want_lines: bool = False
    want_accumulators: bool = False
    verify: int = 4
    partition_lines: int = 1_000_000
    fmt: str = "parquet"             # parquet | csv
    workers: int | None = None       # None: automatic; 0: in this process
    scheduler: str | None = None
    repartition: bool = False
    force: bool = False


@dataclass
class PartSpec:
    """How to load one partition — picklable, so a Dask worker reads it itself."""

    index: int
    kind: str                         # rowgroup | files | tables
    claims_path: str | None = None
    lines_path: str | None = None
    group: int = 0
    claims_offset: int = 0
    lines_offset: int = 0
    claims_name: str = "claims"
    lines_name: str = "feedetail"
    lines: int = 0
    tables: tuple | None = None


def load_part(spec: PartSpec) -> tuple[pa.Table, pa.Table]:
    if spec.kind == "rowgroup":
        c = pq.ParquetFile(spec.claims_path).read_row_group(spec.group)
        ln = pq.ParquetFile(spec.lines_path).read_row_group(spec.group)
        c = c.append_column(ROW, pa.array(np.arange(spec.claims_offset, spec.claims_offset + c.num_rows)))
        ln = ln.append_column(ROW, pa.array(np.arange(spec.lines_offset, spec.lines_offset + ln.num_rows)))
        return c, ln
    if spec.kind == "files":
        return pq.read_table(spec.claims_path), pq.read_table(spec.lines_path)
    assert spec.tables is not None
    return spec.tables


# ------------------------------------------------------------------ partitions


def plan_partitions(inp: ClaimsInput, opts: Options, tmp: Path, progress: Callable[[str], None] | None = None
                    ) -> list[PartSpec]:
    """The partitions of an input: its own row groups when written partitioned by person, else
    hash-split into files under `tmp`."""
    if inp.json_claims is not None:
        c, ln = tables_from_claims(inp.json_claims)
        return _split_tables(c, ln, opts, inp.claims.name, inp.claims.name)
    if inp.aligned and not opts.repartition:
        fc, fl = pq.ParquetFile(inp.claims.path), pq.ParquetFile(inp.lines.path)
        specs = []
        co = lo = 0
        for k in range(fc.num_row_groups):
            nc, nl = fc.metadata.row_group(k).num_rows, fl.metadata.row_group(k).num_rows
            specs.append(PartSpec(k, "rowgroup", str(inp.claims.path), str(inp.lines.path), k, co, lo,
                                  inp.claims.name, inp.lines.name, nl))
            co += nc
            lo += nl
        return specs
    return _spill(inp, opts, tmp, progress)


def _split_tables(c: pa.Table, ln: pa.Table, opts: Options, cname: str, lname: str) -> list[PartSpec]:
    c = c.append_column(ROW, pa.array(np.arange(c.num_rows)))
    ln = ln.append_column(ROW, pa.array(np.arange(ln.num_rows)))
    n_parts = max(1, -(-ln.num_rows // max(1, opts.partition_lines)))
    if n_parts == 1:
        return [PartSpec(0, "tables", claims_name=cname, lines_name=lname, lines=ln.num_rows, tables=(c, ln))]
    cb = _bucket_claims(c, n_parts)
    lb = _bucket_lines(ln, c, cb, n_parts)
    specs = []
    for k in range(n_parts):
        ck = c.filter(pa.array(cb == k))
        lk = ln.filter(pa.array(lb == k))
        specs.append(PartSpec(k, "tables", claims_name=cname, lines_name=lname, lines=lk.num_rows, tables=(ck, lk)))
    return specs


def _hash_bucket(values: np.ndarray, n: int) -> np.ndarray:
    import pandas as pd
    return (pd.util.hash_array(values, categorize=True) % np.uint64(n)).astype(np.int64)


def _person_key(c: pa.Table) -> np.ndarray:
    psn = c.column("psn_no") if "psn_no" in c.column_names else pa.nulls(c.num_rows, pa.string())
    mid = c.column("mdtrt_id") if "mdtrt_id" in c.column_names else pa.nulls(c.num_rows, pa.string())
    psn = pc.cast(psn, pa.string()) if not pa.types.is_string(psn.type) else psn
    mid = pc.cast(mid, pa.string()) if not pa.types.is_string(mid.type) else mid
    key = pc.if_else(pc.is_valid(psn), pc.binary_join_element_wise("P", pc.utf8_trim_whitespace(psn), ""),
                     pc.binary_join_element_wise("C", pc.fill_null(mid, ""), ""))
    return key.to_numpy(zero_copy_only=False)


def _bucket_claims(c: pa.Table, n: int) -> np.ndarray:
    return _hash_bucket(_person_key(c), n)


def _bucket_lines(ln: pa.Table, c: pa.Table, cb: np.ndarray, n: int) -> np.ndarray:
    import pandas as pd
    ids = c.column("mdtrt_id").to_numpy(zero_copy_only=False) if "mdtrt_id" in c.column_names else np.zeros(0)
    idx = pd.Index(ids)
    lids = ln.column("mdtrt_id").to_numpy(zero_copy_only=False) if "mdtrt_id" in ln.column_names else \
        np.full(ln.num_rows, None)
    pos = idx.get_indexer(lids) if idx.is_unique else np.full(len(lids), -1)
    # orphans and duplicate ids stay together in partition 0, where build_block reports them
    return np.where(pos >= 0, cb[np.maximum(pos, 0)] if len(cb) else 0, 0)


def _batches(src, batch_rows: int) -> Iterator[pa.Table]:
    if src.fmt == "parquet":
        f = pq.ParquetFile(src.path)
        for b in f.iter_batches(batch_size=batch_rows):
            yield pa.Table.from_batches([b])
    else:
        for b in iter_csv_batches(src.path):
            yield pa.Table.from_batches([b])


def _spill(inp: ClaimsInput, opts: Options, tmp: Path, progress) -> list[PartSpec]:
    """Hash-split claims (by person) and fee lines (by their claim's person) into partition files."""
    if inp.lines_total is not None:
        total_lines = inp.lines_total
    else:
        total_lines = max(1, inp.lines.path.stat().st_size // 60)  # CSV: about 60 bytes a line
    n = max(1, -(-total_lines // max(1, opts.partition_lines)))
    tmp.mkdir(parents=True, exist_ok=True)
    if progress:
        progress(f"splitting the input by person into {n} partition(s) in {tmp}")
    cw: dict[int, pq.ParquetWriter] = {}
    lw: dict[int, pq.ParquetWriter] = {}
    id_parts: list[tuple[np.ndarray, np.ndarray]] = []
    row = 0
    schema_c = None
    for c in _batches(inp.claims, 1_000_000):
        c = _normalise_schema(c)
        c = c.append_column(ROW, pa.array(np.arange(row, row + c.num_rows)))
        row += c.num_rows
        b = _bucket_claims(c, n)
        if "mdtrt_id" in c.column_names:
            id_parts.append((pc.cast(c.column("mdtrt_id"), pa.string()).to_numpy(zero_copy_only=False), b))
        schema_c = schema_c or c.schema
        _write_buckets(c, b, n, cw, tmp, "claims", schema_c)
    for w in cw.values():
        w.close()
    import pandas as pd
    ids = np.concatenate([a for a, _ in id_parts]) if id_parts else np.zeros(0, dtype=object)
    bks = np.concatenate([b for _, b in id_parts]) if id_parts else np.zeros(0, dtype=np.int64)
    index = pd.Index(ids)
    unique = index.is_unique
    row = 0
    schema_l = None
    for ln in _batches(inp.lines, 2_000_000):
        ln = _normalise_schema(ln)
        ln = ln.append_column(ROW, pa.array(np.arange(row, row + ln.num_rows)))
        row += ln.num_rows
        if "mdtrt_id" in ln.column_names and unique:
            pos = index.get_indexer(pc.cast(ln.column("mdtrt_id"), pa.string()).to_numpy(zero_copy_only=False))
            b = np.where(pos >= 0, bks[np.maximum(pos, 0)] if len(bks) else 0, 0)
        else:
            b = np.zeros(ln.num_rows, dtype=np.int64)
        schema_l = schema_l or ln.schema
        _write_buckets(ln, b, n, lw, tmp, "feedetail", schema_l)
    for w in lw.values():
        w.close()
    del index, ids, bks
    specs = []
    for k in range(n):
        cp, lp = tmp / f"claims-{k:05d}.parquet", tmp / f"feedetail-{k:05d}.parquet"
        if not cp.exists() and not lp.exists():
            continue
        if not cp.exists():
            pq.write_table(pa.table({"mdtrt_id": pa.array([], pa.string()), ROW: pa.array([], pa.int64())}), cp)
        if not lp.exists():
            pq.write_table(pa.table({"mdtrt_id": pa.array([], pa.string()), ROW: pa.array([], pa.int64())}), lp)
        nl = pq.ParquetFile(lp).metadata.num_rows
        specs.append(PartSpec(len(specs), "files", str(cp), str(lp), claims_name=inp.claims.name,
                              lines_name=inp.lines.name, lines=nl))
    return specs


def _normalise_schema(t: pa.Table) -> pa.Table:
    """Dictionary and large-string columns as plain strings, so every batch appends to one schema."""
    cols = []
    for c in t.columns:
        if pa.types.is_dictionary(c.type):
            c = c.cast(c.type.value_type)
        if pa.types.is_large_string(c.type):
            c = c.cast(pa.string())
        cols.append(c)
    return pa.table(cols, names=t.column_names)


def _write_buckets(t: pa.Table, b: np.ndarray, n: int, writers: dict, tmp: Path, stem: str, schema: pa.Schema) -> None:
    order = np.argsort(b, kind="stable")
    bounds = np.searchsorted(b[order], np.arange(n + 1))
    ts = t.take(pa.array(order))
    for k in range(n):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        if hi <= lo:
            continue
        part = ts.slice(lo, hi - lo)
        w = writers.get(k)
        if w is None:
            w = writers[k] = pq.ParquetWriter(tmp / f"{stem}-{k:05d}.parquet", schema)
        try:
            w.write_table(part.cast(schema))
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as e:
            raise BatchInputError([InputProblem(stem, None, None, "E-BATCH-TYPE",
                                                f"a column changes type within the file: {e}")]) from None


# ------------------------------------------------------------------ one partition


def settle_part(spec: PartSpec, ctx: PackContext, opts: Options) -> BlockResult:
    c, ln = load_part(spec)
    block = build_block(c, ln, partition=spec.index, claims_name=spec.claims_name, lines_name=spec.lines_name)
    return settle_block(block, ctx, want_lines=opts.want_lines, want_accumulators=opts.want_accumulators,
                        verify=opts.verify)


def summary_of(res: BlockResult) -> dict:
    return {"claims": res.block.n, "lines": res.block.m, "fallback_claims": res.fallback_claims,
            "fallback_reasons": res.fallback_reasons, "verified_claims": res.verified,
            "totals": {k: int(res.claim[k].sum()) for k in CLAIM_FIELDS_OUT},
            "audit_rejected_lines": int(res.audit_lines.sum()) if res.audit_lines is not None else 0,
            "audit_warnings": int(res.audit_warnings.sum()) if res.audit_warnings is not None else 0,
            "packs": sorted({p.label for p in res.packs})}


def write_part(res: BlockResult, out: Path, k: int, fmt: str) -> None:
    """One partition's tables as part files (Parquet), or CSV parts merged at the end."""
    tables = {"setlinfo": res.setlinfo(), "setldetail": res.setldetail()}
    r = res.result()
    if r is not None:
        tables["result"] = r
    for name, t in tables.items():
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":
            pq.write_table(t, d / f"part-{k:05d}.parquet")
        else:
            import pyarrow.csv as pcsv
            pcsv.write_csv(_plain(t), d / f"part-{k:05d}.csv")


def _plain(t: pa.Table) -> pa.Table:
    cols = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in t.columns]
    return pa.table(cols, names=t.column_names)


def _worker_settle(spec: PartSpec, ctx: PackContext, opts: Options, out: str) -> dict:
    """What a Dask task does: read its partition, settle it, write its parts, return its summary."""
    t0 = time.process_time()
    res = settle_part(spec, ctx, opts)
    write_part(res, Path(out), spec.index, opts.fmt)
    s = summary_of(res)
    s["cpu_seconds"] = time.process_time() - t0
    s["index"] = spec.index
    return s


def _worker_error(e: BaseException) -> dict:
    if isinstance(e, BatchInputError):
        return {"error": "input", "problems": [p.to_dict() for p in e.problems], "more": e.more}
    return {"error": "other", "type": type(e).__name__, "message": str(e)}


def _safe_worker(spec: PartSpec, ctx: PackContext, opts: Options, out: str) -> dict:
    try:
        return _worker_settle(spec, ctx, opts, out)
    except BatchInputError as e:
        return _worker_error(e) | {"index": spec.index}
    except Exception as e:  # the driver re-raises with the partition named
        from .vectorised import BatchDivergence
        d = _worker_error(e) | {"index": spec.index}
        if isinstance(e, BatchDivergence):
            d["error"] = "diverged"
        return d


# ------------------------------------------------------------------ the whole run


@dataclass
class RunSummary:
    input: str
    output: str
    partitions: int = 0
    claims: int = 0
    lines: int = 0
    fallback_claims: int = 0
    fallback_reasons: dict[str, int] = field(default_factory=dict)
    verified_claims: int = 0
    audit_rejected_lines: int = 0     # fee lines an audit rule refused (全自费)
    audit_warnings: int = 0           # W-AUDIT warnings (warn hits, AUDIT-UNDATED notes)
    totals: dict[str, int] = field(default_factory=dict)
    packs: list[str] = field(default_factory=list)
    scheduler: str = "in-process"
    workers: int = 1
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    format: str = "parquet"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["totals_yuan"] = {k: f"{v // 100}.{v % 100:02d}" for k, v in self.totals.items()}
        return d


class Output:
    """A folder written beside its final place and renamed into it at the very end."""

    def __init__(self, final: Path, force: bool):
        self.final = Path(final)
        if self.final.exists() and not force:
            raise FileExistsError(f"{self.final} exists (use --force to replace it)")
        self.tmp = self.final.with_name(f"{self.final.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:6]}")
        self.tmp.mkdir(parents=True)
        self.done = False

    def commit(self) -> None:
        old = None
        if self.final.exists():
            old = self.final.with_name(f"{self.final.name}.old-{uuid.uuid4().hex[:6]}")
            os.replace(self.final, old)
        os.replace(self.tmp, self.final)
        self.done = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()

    def abort(self) -> None:
        if not self.done:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _merge_csv(out: Path) -> None:
    """CSV parts → one file per table, header once, in partition order."""
    for d in sorted(p for p in out.iterdir() if p.is_dir()):
        parts = sorted(d.glob("part-*.csv"))
        target = out / f"{d.name}.csv"
        with open(target, "wb") as w:
            for i, p in enumerate(parts):
                with open(p, "rb") as r:
                    head = r.readline()
                    if i == 0:
                        w.write(head)
                    shutil.copyfileobj(r, w)
        shutil.rmtree(d)


def run_batch(inp: ClaimsInput, ctx: PackContext, out: Path, opts: Options, *,
              progress: "Progress | None" = None, log: Callable[[str], None] = lambda s: None,
              client=None) -> RunSummary:
    """Settle every partition and write OUT atomically. Raises BatchInputError / BatchDivergence /
    KeyboardInterrupt with no OUT left behind."""
    t_wall, t_cpu = time.time(), time.process_time()
    output = Output(out, opts.force)
    spill = output.tmp / "_partitions"
    summary = RunSummary(input=inp.describe(), output=str(out), format=opts.fmt)
    try:
        specs = plan_partitions(inp, opts, spill, log)
        summary.partitions = len(specs)
        total = sum(s.lines for s in specs)
        if progress:
            progress.start(total, len(specs))
        own = client is None
        if own:
            client, cluster, desc = _dask_client(opts, total, len(specs), log)
        else:
            cluster, desc = None, "dask (given client)"
        summary.scheduler = desc
        parts: list[dict] = []
        if client is None:
            for spec in specs:
                t0 = time.process_time()
                res = settle_part(spec, ctx, opts)
                write_part(res, output.tmp, spec.index, opts.fmt)
                s = summary_of(res)
                s["cpu_seconds"] = time.process_time() - t0
                parts.append(s)
                if progress:
                    progress.advance(res.block.m, res.block.n)
        else:
            try:
                summary.workers = len(client.scheduler_info()["workers"])
                parts = _run_dask(client, specs, ctx, opts, output.tmp, progress)
            finally:
                if own:
                    client.close()
                    if cluster is not None:
                        cluster.close()
        shutil.rmtree(spill, ignore_errors=True)
        for s in parts:
            summary.claims += s["claims"]
            summary.lines += s["lines"]
            summary.fallback_claims += s["fallback_claims"]
            summary.verified_claims += s["verified_claims"]
            summary.audit_rejected_lines += s.get("audit_rejected_lines", 0)
            summary.audit_warnings += s.get("audit_warnings", 0)
            for k, v in s["fallback_reasons"].items():
                summary.fallback_reasons[k] = summary.fallback_reasons.get(k, 0) + v
            for k, v in s["totals"].items():
                summary.totals[k] = summary.totals.get(k, 0) + v
            summary.packs = sorted(set(summary.packs) | set(s["packs"]))
            summary.cpu_seconds += s.get("cpu_seconds", 0.0)
        if opts.fmt == "csv":
            _merge_csv(output.tmp)
        summary.wall_seconds = time.time() - t_wall
        if client is None:
            summary.cpu_seconds = time.process_time() - t_cpu
        (output.tmp / "summary.json").write_text(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2),
                                                 encoding="utf-8")
        output.commit()
        return summary
    except BaseException:
        output.abort()
        raise
    finally:
        if progress:
            progress.stop()


def _dask_client(opts: Options, total_lines: int, n_parts: int, log):
    """(client, cluster, description): a scheduler address, a LocalCluster for large inputs, or None."""
    if opts.workers == 0 and not opts.scheduler:
        return None, None, "in-process"
    if opts.scheduler:
        from distributed import Client
        try:
            client = Client(opts.scheduler, timeout="20s")
        except (OSError, TimeoutError) as e:
            raise BatchInputError([InputProblem("--scheduler", None, None, "E-BATCH-SCHEDULER",
                                                f"cannot reach the Dask scheduler at {opts.scheduler}: {e}")]) from None
        return client, None, f"dask {opts.scheduler}"  # (the command sets ctx.by_value for a remote cluster)
    workers = opts.workers
    if workers is None:
        if total_lines < DASK_THRESHOLD_LINES or n_parts < 2 or (os.cpu_count() or 1) < 2:
            return None, None, "in-process"
        workers = min(os.cpu_count() or 1, n_parts)
    from distributed import Client, LocalCluster
    import logging
    logging.getLogger("distributed").setLevel(logging.ERROR)
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR)
    log(f"Dask LocalCluster: {workers} worker process(es)")
    return Client(cluster), cluster, f"dask LocalCluster({workers})"


def _run_dask(client, specs: list[PartSpec], ctx: PackContext, opts: Options, out: Path, progress) -> list[dict]:
    from distributed import as_completed
    from .vectorised import BatchDivergence
    ctx_f = client.scatter(ctx, broadcast=True)
    futures = [client.submit(_safe_worker, s, ctx_f, opts, str(out), pure=False, key=f"settle-{uuid.uuid4().hex}")
               for s in specs]
    parts: list[dict] = []
    errors: list[dict] = []
    try:
        for fut in as_completed(futures):
            r = fut.result()
            if "error" in r:
                errors.append(r)
                break
            parts.append(r)
            if progress:
                progress.advance(r["lines"], r["claims"])
    finally:
        for f in futures:
            f.cancel()
    if errors:
        e = errors[0]
        if e["error"] == "input":
            raise BatchInputError([InputProblem(**p) for p in e["problems"]], e.get("more", 0))
        if e["error"] == "diverged":
            raise BatchDivergence(e["message"])
        raise RuntimeError(f"partition {e['index']}: {e['type']}: {e['message']}")
    parts.sort(key=lambda s: s["index"])
    return parts


# ------------------------------------------------------------------ progress


class Progress:
    """A rich progress bar on stderr (fee lines settled), or nothing when quiet."""

    def __init__(self, enabled: bool = True, label: str = "settling"):
        self.enabled = enabled
        self.label = label
        self._p = None
        self._task = None
        self.claims = 0

    def start(self, total_lines: int, partitions: int) -> None:
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as RP, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn
        self._p = RP(TextColumn(f"{self.label} [bold]{{task.fields[parts]}}[/bold] partition(s)"), BarColumn(),
                     MofNCompleteColumn(), TextColumn("fee lines"), TimeElapsedColumn(), TimeRemainingColumn(),
                     console=Console(stderr=True), transient=False)
        self._p.start()
        self._task = self._p.add_task("batch", total=total_lines or None, parts=partitions)

    def advance(self, lines: int, claims: int) -> None:
        self.claims += claims
        if self._p is not None:
            self._p.advance(self._task, lines)

    def stop(self) -> None:
        if self._p is not None:
            self._p.stop()
            self._p = None


def read_settlements(path: str | Path, table: str = "setlinfo"):
    """A batch output table as a pandas DataFrame (Parquet parts or CSV)."""
    import pandas as pd
    p = Path(path)
    if (p / f"{table}.csv").exists():
        return pd.read_csv(p / f"{table}.csv", dtype=str)
    return pq.read_table(p / table).to_pandas()


def read_all(inp: ClaimsInput) -> tuple[pa.Table, pa.Table]:
    """A whole (small) input as two tables — for tests and tools."""
    if inp.json_claims is not None:
        return tables_from_claims(inp.json_claims)
    rd = (lambda s: pq.read_table(s.path)) if inp.claims.fmt == "parquet" else (lambda s: read_csv_table(s.path))
    return rd(inp.claims), rd(inp.lines)


def describe_any(x: Any) -> str:
    return str(x)
