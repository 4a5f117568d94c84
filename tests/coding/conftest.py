"""Fixtures for coding tests: small packs with a coding folder, and the shipped baseline's coding."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "regions" / "000000" / "2024.1"
ICD10_TABLE = BASELINE / "coding" / "icd10_clinical-2.0_to_insurance-2.0.csv"
ICD9_TABLE = BASELINE / "coding" / "icd9cm3_clinical-3.0_to_insurance-2.0.csv"
REFERENCE_DATA = ROOT.parent / "shared" / "reference" / "data"

PACK = """\
region: "{region}"
name: 测试地区（虚构）
version: "{version}"
effective:
  from: 2020-01-01
select_by: settlement
{extends}confidence: sample
provenance:
  - id: T{region}
    title: test fixture
    confidence: sample
"""

SYSTEMS = """\
systems:
  icd10:clinical-2.0:
    name: 国临版2.0（测试）
  icd10:insurance-2.0:
    name: 医保版2.0（测试）
"""

MAP_HEADER = "source_code,source_name,target_code,target_name,relationship,note\n"


def write_pack(root: Path, region: str, version: str, coding: dict[str, str], extends: str | None = None) -> Path:
    """A pack folder with pack.yaml and the given files under coding/ (texts are dedented)."""
    d = root / region / version
    (d / "coding").mkdir(parents=True, exist_ok=True)
    (d / "pack.yaml").write_text(PACK.format(region=region, version=version,
                                             extends=f'extends: "{extends}"\n' if extends else ""), encoding="utf-8")
    for name, text in coding.items():
        p = d / "coding" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return d


def manifest(maps: str = "", items: str = "", systems: str = SYSTEMS, extra: str = "") -> str:
    return systems + (("maps:\n" + textwrap.dedent(maps)) if maps else "") + \
        (("items:\n" + textwrap.dedent(items)) if items else "") + extra


ONE_MAP = """\
  - file: map.csv
    source_system: icd10:clinical-2.0
    target_system: icd10:insurance-2.0
"""


@pytest.fixture
def regions(tmp_path) -> Path:
    r = tmp_path / "regions"
    r.mkdir()
    return r


@pytest.fixture(scope="session")
def baseline():
    """The shipped national coding, loaded once."""
    from rules_engine.coding import load_chain
    coding, problems = load_chain([BASELINE], ROOT)
    assert [p for p in problems if p.severity == "error"] == []
    return coding
