"""The national baseline is what the import makes of the reference data — byte for byte."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "reference" / "data"
PACK = ROOT / "regions" / "000000" / "2024.1"


@pytest.mark.skipif(not (DATA / "nhsa_drug_catalogue_2024.csv").is_file(),
                    reason=f"{DATA} is absent: the reference data is not part of the repository, so the baseline "
                           "cannot be rebuilt here")
def test_rebuild_into_a_temp_dir_is_identical_to_the_shipped_files(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "rebuild_baseline.py"), "--data", str(DATA),
                        "--pack", str(PACK), "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    built = tmp_path / "000000" / PACK.name
    for rel in ("catalogue/drugs.csv", "catalogue/drugs.unlinked.tsv", "catalogue/drugs.import-report.md",
                "restrictions.yaml", "pack.yaml"):
        assert (built / rel).read_bytes() == (PACK / rel).read_bytes(), f"{rel} differs: run tools/rebuild_baseline.py"
    cov = "docs/restriction-coverage.md"
    assert (tmp_path / cov).read_bytes() == (ROOT / cov).read_bytes(), f"{cov} differs"
