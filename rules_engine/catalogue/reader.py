"""Read the spreadsheet an authority publishes into a header and numbered rows.

Authorities publish .xlsx with merged heading rows, CSV exported from Excel in UTF-8 or
GB18030, and the platform's download files as headerless tab-separated text. Whatever the
format, the result is the same: one header text per column (merged heading rows joined with
'/') and every later row with its 1-based row number in the file, so that every report line
can say "row 1234". Cells keep their Python type (an xlsx number stays a number: cleaning
needs to know a code lost its leading zeros). Nothing here raises for bad input: an unreadable
file is a located Problem.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..problems import Problem
from .mapping import Mapping, find_column, missing_columns

MAX_BYTES = 512 * 1024 * 1024
HEADER_SCAN_ROWS = 20


@dataclass
class Sheet:
    """A file as read: header texts per column, data rows with their row numbers."""

    file: str
    headers: list[str]
    rows: list[tuple[int, list[Any]]]          # (1-based row number in the file, cells)
    header_row: int                             # last header row (0 for headerless files)
    encoding: str | None = None
    sheet_name: str | None = None
    notes: list[str] = field(default_factory=list)

    def col_letter(self, i: int) -> str:
        """Excel-style column name of a 0-based index (A, B, … AA)."""
        s, n = "", i + 1
        while n:
            n, r = divmod(n - 1, 26)
            s = chr(65 + r) + s
        return s


def detect_format(path: Path, mapping: Mapping) -> str:
    if mapping.format != "auto":
        return mapping.format
    suf = path.suffix.lower()
    if suf in (".xlsx", ".xlsm"):
        return "xlsx"
    if suf in (".tsv", ".txt"):
        return "tsv"
    return "csv"


def read_sheet(path: Path, mapping: Mapping, display: str | None = None) -> tuple[Sheet | None, list[Problem]]:
    """Read `path` as the mapping says, find the header, and return the rows below it."""
    name = display or str(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        return None, [Problem("E-FILE-READ", f"cannot read file: {e.strerror}", file=name)]
    if not path.is_file():
        return None, [Problem("E-FILE-READ", "not a file", file=name)]
    if size > MAX_BYTES:
        return None, [Problem("E-FILE-LIMIT", f"file is {size:,} bytes; the import reads at most {MAX_BYTES:,}",
                              file=name)]
    fmt = detect_format(path, mapping)
    if fmt == "xlsx":
        grid, problems, sheet_name = _read_xlsx(path, name, mapping)
        encoding = None
    else:
        grid, problems, encoding = _read_text(path, name, mapping, "\t" if fmt == "tsv" else ",")
        sheet_name = None
    if grid is None:
        return None, problems
    return _locate_header(grid, name, mapping, encoding, sheet_name, problems)


# ------------------------------------------------------------------ formats

def _read_xlsx(path: Path, name: str, mapping: Mapping) -> tuple[list[tuple[int, list[Any]]] | None, list[Problem],
                                                                str | None]:
    try:
        import openpyxl  # requirement: openpyxl>=3.1
    except ImportError:  # pragma: no cover - dependency missing
        return None, [Problem("E-XLSX-UNSUPPORTED", "reading .xlsx needs the openpyxl package", file=name,
                              hint="pip install 'openpyxl>=3.1', or save the sheet as CSV UTF-8")], None
    import warnings
    import zipfile
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl warns about styles it does not know
            wb = openpyxl.load_workbook(path, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError) as e:
        why = "it is not an .xlsx workbook (a zip of XML parts)" if isinstance(e, zipfile.BadZipFile) else str(e)
        return None, [Problem("E-XLSX-READ", f"cannot read the workbook: {why}", file=name,
                              hint="open it in Excel and save as .xlsx, or export the sheet as CSV UTF-8 "
                                   "(old .xls files must be re-saved as .xlsx)")], None
    except Exception as e:  # openpyxl raises assorted errors on damaged files
        return None, [Problem("E-XLSX-READ", f"cannot read the workbook: {type(e).__name__}: {e}", file=name,
                              hint="open it in Excel and save it again as .xlsx")], None
    sheet = mapping.sheet
    if sheet is None:
        ws = wb.worksheets[0]
    elif isinstance(sheet, int):
        if not 1 <= sheet <= len(wb.worksheets):
            return None, [Problem("E-XLSX-SHEET", f"the workbook has {len(wb.worksheets)} sheet(s), not {sheet}",
                                  file=name, hint="sheets: " + ", ".join(wb.sheetnames))], None
        ws = wb.worksheets[sheet - 1]
    else:
        if sheet not in wb.sheetnames:
            from ..problems import did_you_mean
            h = did_you_mean(sheet, wb.sheetnames)
            return None, [Problem("E-XLSX-SHEET", f"no sheet named '{sheet}'", file=name,
                                  hint=(h + " " if h else "") + "sheets: " + ", ".join(wb.sheetnames))], None
        ws = wb[sheet]
    grid: list[list[Any]] = [list(r) for r in ws.iter_rows(values_only=True)]
    # merged cells: every cell of a merged range carries the range's value (headers and fill-down)
    for rng in ws.merged_cells.ranges:
        v = grid[rng.min_row - 1][rng.min_col - 1] if rng.min_row - 1 < len(grid) else None
        for r in range(rng.min_row, rng.max_row + 1):
            if r - 1 >= len(grid):
                break
            row = grid[r - 1]
            for c in range(rng.min_col, rng.max_col + 1):
                if c - 1 < len(row):
                    row[c - 1] = v
    return [(i + 1, r) for i, r in enumerate(grid)], [], ws.title


def _read_text(path: Path, name: str, mapping: Mapping, delim: str) -> tuple[list[tuple[int, list[Any]]] | None,
                                                                           list[Problem], str | None]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        return None, [Problem("E-FILE-READ", f"cannot read file: {e.strerror}", file=name)], None
    if raw[:4] == b"PK\x03\x04":
        return None, [Problem("E-FILE-FORMAT", "this is a zip file (probably .xlsx) read as text", file=name,
                              hint="give the file an .xlsx name, or set source.format: xlsx in the mapping")], None
    if b"\x00" in raw[:4096]:
        return None, [Problem("E-FILE-FORMAT", "this is a binary file, not CSV text", file=name,
                              hint="old .xls workbooks must be saved as .xlsx or CSV UTF-8")], None
    text, enc, problems = _decode(raw, name, mapping.encoding)
    if text is None:
        return None, problems, None
    grid: list[tuple[int, list[Any]]] = []
    if delim == "\t":
        # the platform's download files: one record per line, no quoting
        for i, line in enumerate(text.splitlines()):
            grid.append((i + 1, line.split("\t")))
        return grid, problems, enc
    reader = csv.reader(io.StringIO(text, newline=""))
    prev = 0
    try:
        for rec in reader:
            # a quoted cell may span lines: a record starts on the line after the previous one ended
            grid.append((prev + 1, rec))
            prev = reader.line_num
    except csv.Error as e:
        return None, [Problem("E-CSV-SYNTAX", f"{e}", file=name, line=reader.line_num, col=1,
                              hint="a cell holding a comma or a line break must be in double quotes")], None
    return grid, problems, enc


def _decode(raw: bytes, name: str, encoding: str) -> tuple[str | None, str | None, list[Problem]]:
    tries = ["utf-8-sig", "gb18030"] if encoding == "auto" else ["utf-8-sig" if encoding == "utf-8" else encoding]
    for enc in tries:
        try:
            text = raw.decode(enc)
        except UnicodeDecodeError as e:
            err = e
            continue
        notes = []
        if enc == "gb18030":
            notes.append(Problem("I-ENCODING", "the file is not UTF-8; read as GB18030 (Excel's 'CSV' on Chinese "
                                 "Windows)", file=name, severity="warning"))
        return text, ("utf-8" if enc == "utf-8-sig" else enc), notes
    return None, None, [Problem("E-FILE-ENCODING", f"the file is neither UTF-8 nor GB18030 text ({err.reason} at byte "
                                f"{err.start})", file=name, hint="save it as 'CSV UTF-8' from Excel")]


# ------------------------------------------------------------------ header

def _cell_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat()
    return str(v).strip()


def _headers_upto(grid: list[tuple[int, list[Any]]], top: int, last: int, width: int) -> list[str]:
    """Join rows top..last (grid indexes, inclusive) into one header text per column: 'a/b'."""
    out = []
    for c in range(width):
        parts: list[str] = []
        for r in range(top, last + 1):
            row = grid[r][1]
            t = _cell_text(row[c]) if c < len(row) else ""
            t = " ".join(t.split())
            if t and (not parts or parts[-1] != t):
                parts.append(t)
        out.append("/".join(parts))
    return out


def _locate_header(grid: list[tuple[int, list[Any]]], name: str, mapping: Mapping, encoding: str | None,
                   sheet_name: str | None, problems: list[Problem]) -> tuple[Sheet | None, list[Problem]]:
    width = max((len(r) for _, r in grid), default=0)
    if width == 0 or all(not any(_cell_text(c) for c in r) for _, r in grid):
        return None, problems + [Problem("E-FILE-EMPTY", "the file has no rows", file=name)]
    if not mapping.header:
        headers = [str(i + 1) for i in range(width)]
        missing = missing_columns(mapping, headers)
        if missing:
            f, alts, _ = missing[0]
            return None, problems + [Problem("E-COLUMN-MISSING", f"field '{f}' reads column {alts[0]} but the widest "
                                             f"row has {width} columns", file=name, line=1)]
        return Sheet(name, headers, list(grid), 0, encoding, sheet_name), problems
    top = next(i for i, (_, r) in enumerate(grid) if any(_cell_text(c) for c in r))
    if mapping.header_row is not None:
        last = mapping.header_row - 1
        if last >= len(grid) or last < top:
            return None, problems + [Problem("E-HEADER", f"source.header_row {mapping.header_row} is outside the file "
                                             f"({len(grid)} rows) or above its first non-empty row", file=name,
                                             line=mapping.header_row)]
        headers = _headers_upto(grid, top, last, width)
        missing = missing_columns(mapping, headers)
    else:
        # the header ends at the first row under which the most mapped columns are found (merged
        # heading rows above it join in); later rows cannot find fewer, so stop at the first best
        best: tuple[tuple[int, int], int, list[str], list] | None = None
        for cand in range(top, min(len(grid), top + HEADER_SCAN_ROWS)):
            h = _headers_upto(grid, top, cand, width)
            miss = missing_columns(mapping, h)
            score = (-len(miss), _found_columns(mapping, h))
            if best is None or score > best[0]:
                best = (score, cand, h, miss)
        assert best is not None
        _, last, headers, missing = best
    if missing:
        probs = []
        hdr_line = grid[last][0]
        for f, alts, hint in missing:
            want = " or ".join(f"'{a}'" for a in alts)
            found = ", ".join(f"'{h}'" for h in headers if h) or "(none)"
            probs.append(Problem("E-COLUMN-MISSING", f"required column {want} (for '{f}') is not in the header",
                                 file=name, line=hdr_line, col=1,
                                 hint=(hint + " " if hint else "") + f"the header (row {hdr_line}) has: {found}"))
        return None, problems + probs
    return Sheet(name, headers, grid[last + 1:], grid[last][0], encoding, sheet_name), problems


def _found_columns(mapping: Mapping, headers: list[str]) -> int:
    """How many of the mapping's column references (optional ones included) the header holds."""
    refs = {r for spec in mapping.all_specs() for r in spec.refs()}
    return sum(1 for r in refs if find_column(headers, r, mapping.header) is not None)


def column_index(sheet: Sheet, mapping: Mapping, ref: str | int) -> int | None:
    return find_column(sheet.headers, ref, mapping.header)
