"""Fixtures for catalogue import: a small target pack, spreadsheet writers, a CLI runner."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "reference" / "data"

PACK_YAML = """\
# a test pack
region: "990009"
name: 测试地区
version: "2025.1"
effective:
  from: 2025-01-01
select_by: settlement
confidence: sample
provenance:
  - {id: TEST, title: test data, confidence: sample}
catalogue_defaults:
  selfpay_prop:
    甲: 0
    乙: 0.1
"""

# a regional drug list as a bureau would publish it: Chinese headers, one restriction column
MAPPING_YAML = """\
name: test-regional-drugs
title: 测试用地区药品目录
kinds: [drug]
fields:
  code: {column: [医保编码, 药品编码], required: true, width: 12}
  name: {column: 药品名称, required: true}
  category: {column: 甲乙类别, required: true}
  selfpay_prop: {column: 自付比例}
  pric_uplmt_amt: {column: 限价}
  valid_from: {column: 开始日期}
  valid_to: {column: 结束日期}
defaults:
  valid_from: 2025-01-01
restrictions:
  text: {column: 限定支付范围}
  id: {template: "T-{医保编码}"}
"""

HEADER = ["医保编码", "药品名称", "甲乙类别", "自付比例", "限价", "开始日期", "结束日期", "限定支付范围"]


@pytest.fixture
def pack(tmp_path) -> Path:
    d = tmp_path / "regions" / "990009" / "2025.1"
    d.mkdir(parents=True)
    (d / "pack.yaml").write_text(PACK_YAML, encoding="utf-8")
    return d


@pytest.fixture
def mapping(tmp_path) -> Path:
    p = tmp_path / "mapping.yaml"
    p.write_text(MAPPING_YAML, encoding="utf-8")
    return p


def write_csv(path: Path, rows: list[list[Any]], header: list[str] | None = HEADER, encoding: str = "utf-8") -> Path:
    import csv
    import io
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(header)
    for r in rows:
        w.writerow(r)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


def write_xlsx(path: Path, rows: list[list[Any]], merges: list[str] = (), sheet: str = "Sheet1") -> Path:
    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = sheet
    for r in rows:
        ws.append(r)
    for m in merges:
        ws.merge_cells(m)
    wb.save(path)
    return path


class Cli:
    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: Any) -> Any:
        from rules_engine.cli import main
        return self.runner.invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def cli() -> Cli:
    return Cli()


def do_import(cli: Cli, file: Path, pack: Path, mapping: Path | str, *extra: Any) -> Any:
    return cli("catalogue", "import", file, "--kind", "drug", "--region", "990009", "--into", pack,
               "--mapping", mapping, *extra)


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def dedent(s: str) -> str:
    return textwrap.dedent(s).lstrip("\n")


class Helpers:
    """The functions above, as one fixture (test modules cannot import conftest under importlib mode)."""

    HEADER = HEADER
    DATA = DATA
    ROOT = ROOT
    write_csv = staticmethod(write_csv)
    write_xlsx = staticmethod(write_xlsx)
    do_import = staticmethod(do_import)
    read = staticmethod(read)
    dedent = staticmethod(dedent)


@pytest.fixture
def h() -> Helpers:
    return Helpers()
