#!/usr/bin/env python3
"""Rebuild the national baseline's catalogue and restrictions from shared/reference/data.

    .venv/bin/python tools/rebuild_baseline.py [--data DIR] [--pack regions/000000/2024.1] [--out DIR] [--check]

It runs the project's own catalogue import (the same code as `rules-engine catalogue import`)
with the shipped mappings — nothing here knows the catalogue's layout:

    rules-engine catalogue import nhsa_drug_catalogue_2024.csv --kind drug --region 000000 \
        --into regions/000000/2024.1 --mapping nhsa-drug-catalogue-2024-csv \
        --codes nhsa_liangku_drug_rule_codes.csv --codes-mapping nhsa-liangku-drug-codes \
        --file catalogue/drugs.csv --report catalogue/drugs.import-report.md

and writes docs/restriction-coverage.md from the same run. The generated files are rebuilt from
scratch (restrictions.yaml included) in a staging copy of the pack, so the result does not
depend on what the pack held before; --out DIR leaves them there instead of updating the pack
(the reproducibility test compares the two byte for byte); --check reports whether the shipped
files are up to date and exits 1 when they are not.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = ROOT.parent / "shared" / "reference" / "data"
DEFAULT_PACK = ROOT / "regions" / "000000" / "2024.1"
CATALOGUE = "nhsa_drug_catalogue_2024.csv"
CODES = "nhsa_liangku_drug_rule_codes.csv"
ICD = "icd10_yibao2.0_codes_from_map.csv"
TARGET = "catalogue/drugs.csv"
GENERATED = (TARGET, "catalogue/drugs.unlinked.tsv", "catalogue/drugs.import-report.md", "restrictions.yaml")
COVERAGE = "docs/restriction-coverage.md"


def rebuild(data: Path, pack: Path, out: Path) -> dict[str, bytes]:
    """Rebuild into `out` (a pack folder that will be created); returns {relative path: bytes}."""
    from rules_engine.catalogue.coverage import render
    from rules_engine.catalogue.importer import ImportRequest, run_import
    from rules_engine.catalogue.mapping import load_mapping, resolve_mapping_path

    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(pack, out)
    for rel in GENERATED:
        p = out / rel
        if p.exists():
            p.unlink()
    m, ps = load_mapping(resolve_mapping_path("nhsa-drug-catalogue-2024-csv"))
    cm, ps2 = load_mapping(resolve_mapping_path("nhsa-liangku-drug-codes"))
    if m is None or cm is None:
        raise SystemExit("the shipped mappings have errors:\n" + "\n".join(p.format() for p in ps + ps2))
    res = run_import(ImportRequest(file=data / CATALOGUE, kind="drug", region="000000", into=out, mapping=m,
                                   target=TARGET, codes=data / CODES, codes_mapping=cm))
    if not res.ok:
        raise SystemExit("the import failed:\n" + "\n".join(p.format() for p in res.problems))
    (out / "catalogue" / "drugs.import-report.md").write_text(res.report.to_markdown(), encoding="utf-8")
    unlinked = {u.row for u in res.report.unlinked}
    linked = {r.row for r, _, _ in res.parsed if r.row not in unlinked}
    coverage = render(res.parsed, linked, CATALOGUE, data / ICD)
    files = {rel: (out / rel).read_bytes() for rel in GENERATED}
    files[COVERAGE] = coverage.encode("utf-8")
    files["pack.yaml"] = (out / "pack.yaml").read_bytes()
    return files


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared/reference/data")
    ap.add_argument("--pack", type=Path, default=DEFAULT_PACK, help="the baseline pack folder")
    ap.add_argument("--out", type=Path, default=None, help="write the rebuilt pack here instead of updating it")
    ap.add_argument("--check", action="store_true", help="only compare with the shipped files")
    a = ap.parse_args()
    if not (a.data / CATALOGUE).is_file():
        print(f"error: {a.data / CATALOGUE} not found (give --data)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        stage = (a.out if a.out is not None else Path(tmp)) / "000000" / a.pack.name
        files = rebuild(a.data, a.pack, stage)
        if a.out is not None:
            (a.out / COVERAGE).parent.mkdir(parents=True, exist_ok=True)
            (a.out / COVERAGE).write_bytes(files[COVERAGE])
            print(f"rebuilt into {stage} (coverage: {a.out / COVERAGE})")
            return 0
        stale = [rel for rel, b in files.items()
                 if not (ROOT / COVERAGE if rel == COVERAGE else a.pack / rel).is_file()
                 or (ROOT / COVERAGE if rel == COVERAGE else a.pack / rel).read_bytes() != b]
        if a.check:
            for rel in stale:
                print(f"out of date: {rel}")
            print("up to date" if not stale else f"{len(stale)} file(s) differ: run tools/rebuild_baseline.py")
            return 1 if stale else 0
        from rules_engine.catalogue.writer import write_all
        write_all({(ROOT / COVERAGE if rel == COVERAGE else a.pack / rel): files[rel].decode("utf-8")
                   for rel in stale})
        print("updated: " + (", ".join(stale) if stale else "nothing (already up to date)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
