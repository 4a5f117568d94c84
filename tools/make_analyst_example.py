"""Write the analyst walkthrough's sample spreadsheet (README "An analyst's week").

Why a tool and not only the .xlsx: the workbook is committed so that a fresh clone needs nothing
else, and this script says exactly what is in it and lets anyone rebuild it (same cells; the
zip container carries the time it was written).

The item codes and names are real national service-item codes (两库 service-item rules, batches 1
and 8, shared/reference/data/nhsa_liangku_service_item_rules.csv). The classes, price ceilings and
self-pay ratios are INVENTED for the made-up example region 990011 — no region's policy. The sheet
has what real releases have and the importer must cope with: a merged title row, a merged group
heading over two columns, section heading rows, codes stored as numbers (leading zeros lost),
full-width digits, trailing spaces, a percent written three ways and dates in three formats.

    python tools/make_analyst_example.py            # rewrites examples/analyst/*.xlsx
"""
from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import openpyxl
from openpyxl.styles import Alignment, Font

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "examples" / "analyst" / "990011-2026-services-SAMPLE.xlsx"
FIXED_TIME = dt.datetime(2026, 1, 1)

HEADER = ["项目编码", "项目名称", "计价单位", "甲乙类别", "最高支付限价", "先行自付比例", "开始日期", "备注"]
# (code as published — an int where the spreadsheet lost the leading zeros —, name, unit, class,
#  ceiling, ratio, start date, note)
SECTIONS: list[tuple[str, list[tuple]]] = [
    ("一、综合医疗服务类", [
        (1102000040000, "门急诊留观诊查费", "日", "甲类", None, None, "2026/1/1", ""),
        (1109000020000, "层流洁净病房床位费 ", "日", "乙类", 200, "10%", "2026年1月1日", "示例限价"),
        (1109000030000, "监护病房床位费", "日", "乙类", 150, "１０％", FIXED_TIME, "示例限价"),
        (1107000010000, "病房取暖费", "日", "丙类", None, None, "2026-01-01", "不予支付（示例）"),
    ]),
    ("二、医技诊疗类", [
        ("002101030290000", "输精管造影", "次", "乙类", None, "0.1", "2026-01-01", ""),
        ("004500000100000", "小儿捏脊治疗", "次", "乙类", 30, "20%", "2026-01-01", "示例限价"),
    ]),
]


def build(path: Path = OUT) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "医疗服务项目"
    ws.append(["示例地区（990011，虚构）2026年基本医疗保险医疗服务项目目录调整 —— 示例数据，非任何地区政策"])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(HEADER))
    ws.append(["", "", "", "", "支付标准", "", "", ""])
    ws.merge_cells("E2:F2")
    ws.append(HEADER)
    for c in ws[1] + ws[3]:
        c.font = Font(bold=True)
    ws["A1"].alignment = Alignment(horizontal="center")
    for title, rows in SECTIONS:
        ws.append([title])
        for row in rows:
            ws.append(list(row))
    for col, width in zip("ABCDEFGH", (18, 24, 8, 10, 14, 14, 14, 18)):
        ws.column_dimensions[col].width = width
    wb.properties.creator = "rules-engine tools/make_analyst_example.py"
    wb.properties.created = FIXED_TIME
    wb.properties.modified = FIXED_TIME
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    print(f"wrote {build(ap.parse_args().out)}")
