"""Cell cleaning: what a published spreadsheet writes → the value the pack schema expects.

Every function takes one cell (text, or an xlsx number/date) and returns the cleaned value
plus the *conversions* it made, so that the report can say "row 12, 自付比例: '15%' → 0.15".
A value that cannot be read unambiguously raises `CellError` with the reason; the importer
rejects that row with its number and column. Nothing is guessed: '15' as a ratio (15 % or
0.15?), '01/02/2025' (1 February or 2 January?) and a code printed in scientific notation are
refused, not repaired.
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Any

EXCEL_EPOCH = dt.date(1899, 12, 30)


class CellError(ValueError):
    """A cell that cannot be converted without guessing."""

    def __init__(self, reason: str, hint: str | None = None):
        super().__init__(reason)
        self.reason, self.hint = reason, hint


# conversions are short kinds + a readable detail: the report groups them by kind
Conv = tuple[str, str]

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\ufeff\u2060"), None)
_FULLWIDTH_ALNUM = {c: c - 0xFEE0 for c in range(0xFF10, 0xFF1A)}          # ０-９
_FULLWIDTH_ALNUM.update({c: c - 0xFEE0 for c in range(0xFF21, 0xFF3B)})    # Ａ-Ｚ
_FULLWIDTH_ALNUM.update({c: c - 0xFEE0 for c in range(0xFF41, 0xFF5B)})    # ａ-ｚ


def is_empty(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip(" \t\r\n\u3000\xa0"))


def clean_text(v: Any) -> tuple[str, list[Conv]]:
    """Trim, remove zero-width characters, full-width letters/digits/spaces → ASCII.

    Chinese punctuation (，；：（）) is kept: it is part of the published wording of names and
    restriction texts. Line breaks inside a cell (a PDF export's wrapped lines) are joined.
    """
    conv: list[Conv] = []
    if v is None:
        return "", conv
    if isinstance(v, bool):
        return ("1" if v else "0"), conv
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, (dt.datetime, dt.date)):
        return (v.date() if isinstance(v, dt.datetime) else v).isoformat(), conv
    s = str(v)
    t = s.translate(_ZERO_WIDTH)
    if "\n" in t or "\r" in t:
        # a PDF export wraps long cells: rejoin, with a space only between two ASCII words
        t = re.sub(r"(?<=[A-Za-z0-9])\s*[\r\n]+\s*(?=[A-Za-z0-9])", " ", t)
        t = re.sub(r"\s*[\r\n]+\s*", "", t)
        conv.append(("joined-lines", "line breaks inside the cell removed"))
    t2 = t.translate(_FULLWIDTH_ALNUM).replace("\u3000", " ").replace("\xa0", " ")
    if t2 != t:
        conv.append(("full-width", "full-width letters, digits or spaces → half-width"))
    t3 = t2.strip()
    if t3 != t2:
        conv.append(("trimmed", "leading/trailing spaces removed"))
    return t3, conv


def clean_code(v: Any, width: int | None = None) -> tuple[str, list[Conv]]:
    """A national code. Codes stored as numbers lose leading zeros: with a declared `width` an
    all-digit code is left-padded; without one, a numeric cell is kept but reported."""
    conv: list[Conv] = []
    numeric_cell = isinstance(v, (int, float)) and not isinstance(v, bool)
    if isinstance(v, float):
        if not v.is_integer():
            raise CellError(f"the code is the number {v!r}, not a code", "format the column as text and re-export")
        if abs(v) >= 1e15:
            raise CellError(f"the code is the number {v!r}: digits beyond 15 were lost when it was stored as a number",
                            "format the column as text in Excel and re-export the file")
        v = int(v)
    s, c = clean_text(v)
    conv += c
    s = unicodedata.normalize("NFKC", s)
    if re.fullmatch(r"[0-9](\.[0-9]+)?[eE]\+?[0-9]+", s):
        raise CellError(f"the code '{s}' is in scientific notation: its digits were lost",
                        "format the column as text in Excel and re-export the file")
    if re.fullmatch(r"[0-9]+\.0+", s):
        s = s.split(".")[0]
        conv.append(("code-number", "a trailing '.0' (code stored as a number) removed"))
    if " " in s:
        raise CellError(f"the code '{s}' contains spaces")
    if width is not None and s.isdigit() and len(s) < width:
        padded = s.zfill(width)
        conv.append(("leading-zeros", f"'{s}' → '{padded}' (padded to {width} digits)"))
        s = padded
    elif numeric_cell and width is None:
        conv.append(("code-number", f"code '{s}' was stored as a number: leading zeros may be missing "
                     "(declare 'width' in the mapping)"))
    if width is not None and s.isdigit() and len(s) > width:
        raise CellError(f"the code '{s}' has {len(s)} digits, more than the declared width {width}")
    return s, conv


def clean_ratio(v: Any) -> tuple[Decimal, list[Conv]]:
    """'15%' → 0.15, '0,15' → 0.15, 0.15 → 0.15; '15' is refused (15 % or 0.15?)."""
    conv: list[Conv] = []
    if isinstance(v, bool):
        raise CellError(f"{v!r} is not a ratio")
    if isinstance(v, (int, float)):
        d = Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
        if d > 1:
            raise CellError(f"ratio {v} is above 1", "write 0.15 or 15% for fifteen per cent")
        return d.normalize() if d else Decimal(0), conv
    s, c = clean_text(v)
    conv += c
    s = unicodedata.normalize("NFKC", s).replace(" ", "")
    pct = s.endswith("%")
    if pct:
        s = s[:-1]
    if re.fullmatch(r"[0-9]+,[0-9]+", s):
        conv.append(("decimal-comma", f"'{s}' → '{s.replace(',', '.')}'"))
        s = s.replace(",", ".")
    try:
        d = Decimal(s)
        if not d.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise CellError(f"'{v}' is not a ratio", "write 0.15 or 15%") from None
    if pct:
        orig = d
        d = d / 100
        conv.append(("percent", f"'{orig}%' → {d.normalize()}"))
    elif d > 1:
        raise CellError(f"ratio '{v}' is above 1 and has no % sign: 15 % or 0.15 cannot be told apart",
                        "write 0.15 or 15%")
    if d < 0 or d > 1:
        raise CellError(f"ratio '{v}' is outside 0 … 1")
    d = d.normalize()
    if d == d.to_integral():
        d = d.quantize(Decimal(1))
    return d, conv


def clean_money(v: Any) -> tuple[Decimal, list[Conv]]:
    """'12.50', '12.5元', '¥1,234.50' → Decimal; refuses a decimal comma ('12,50' is 12.50 or 1250?)."""
    conv: list[Conv] = []
    if isinstance(v, bool):
        raise CellError(f"{v!r} is not an amount")
    if isinstance(v, (int, float)):
        d = Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
    else:
        s, c = clean_text(v)
        conv += c
        s = unicodedata.normalize("NFKC", s).replace(" ", "")
        t = re.sub(r"^[¥￥]|元$", "", s)
        if t != s:
            conv.append(("currency", f"'{s}' → '{t}'"))
        if re.fullmatch(r"[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?", t):
            conv.append(("thousands", f"'{t}' → '{t.replace(',', '')}'"))
            t = t.replace(",", "")
        if "," in t:
            raise CellError(f"'{v}' has a comma that is not a thousands separator", "write 12.50, not 12,50")
        try:
            d = Decimal(t)
            if not d.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            raise CellError(f"'{v}' is not an amount in yuan") from None
    if d < 0:
        raise CellError(f"amount {v} is negative")
    if d.as_tuple().exponent < -6:  # type: ignore[operator]
        raise CellError(f"amount {v} has more than 6 decimal places")
    return d, conv


_DATE_FORMATS = (
    (re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"), "YYYY-MM-DD"),
    (re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"), "YYYY/M/D"),
    (re.compile(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})$"), "YYYY.M.D"),
    (re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日$"), "YYYY年M月D日"),
    (re.compile(r"^(\d{4})(\d{2})(\d{2})$"), "YYYYMMDD"),
)


def clean_date(v: Any) -> tuple[str, list[Conv]]:
    """A date in any of the forms authorities use → 'YYYY-MM-DD'; a day-first or month-first
    form ('01/02/2025') is refused as ambiguous."""
    conv: list[Conv] = []
    if isinstance(v, dt.datetime):
        if v.time() != dt.time(0):
            conv.append(("date-time", f"time {v.time()} dropped"))
        return v.date().isoformat(), conv
    if isinstance(v, dt.date):
        return v.isoformat(), conv
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        n = float(v)
        if n.is_integer() and 20000101 <= n <= 21001231:
            v = str(int(n))
        elif n.is_integer() and 1 <= n <= 80000:
            d = EXCEL_EPOCH + dt.timedelta(days=int(n))
            conv.append(("excel-serial", f"Excel day number {int(n)} → {d.isoformat()}"))
            return d.isoformat(), conv
        else:
            raise CellError(f"{v!r} is not a date")
    s, c = clean_text(v)
    conv += c
    s = unicodedata.normalize("NFKC", s).replace(" ", "")
    s = re.sub(r"(\d)T?0{1,2}:00(:00(\.0+)?)?$", r"\1", s)  # '2025-01-01 00:00:00' → '2025-01-01'
    for rx, label in _DATE_FORMATS:
        m = rx.match(s)
        if m:
            y, mo, d = (int(x) for x in m.groups())
            try:
                out = dt.date(y, mo, d).isoformat()
            except ValueError:
                raise CellError(f"'{v}' is not a calendar date") from None
            if label != "YYYY-MM-DD" or out != s:
                conv.append(("date-format", f"'{s}' ({label}) → {out}"))
            return out, conv
    if re.fullmatch(r"\d{1,2}[/.-]\d{1,2}[/.-]\d{4}", s):
        raise CellError(f"'{v}' puts the year last: day-month or month-day cannot be told apart",
                        "write dates as YYYY-MM-DD")
    raise CellError(f"'{v}' is not a date", "write dates as YYYY-MM-DD (also read: YYYY/M/D, YYYYMMDD, YYYY年M月D日)")


def clean_date_range(v: Any) -> tuple[tuple[str, str], list[Conv]]:
    """'2025年1月1日至2026年12月31日' (or '…-…', '…~…') → ('2025-01-01', '2026-12-31')."""
    s, conv = clean_text(v)
    parts = re.split(r"\s*(?:至|到|~|～|—|–)\s*", s)
    if len(parts) != 2:
        m = re.fullmatch(r"(\d{4}-\d{1,2}-\d{1,2})-(\d{4}-\d{1,2}-\d{1,2})", s)
        parts = list(m.groups()) if m else parts
    if len(parts) != 2 or not all(parts):
        raise CellError(f"'{s}' is not a date range", "write 'YYYY-MM-DD至YYYY-MM-DD'")
    a, c1 = clean_date(parts[0])
    b, c2 = clean_date(parts[1])
    if a > b:
        raise CellError(f"the range '{s}' ends before it starts")
    return (a, b), conv + c1 + c2


CATEGORY_WORDS = {"甲": "甲", "甲类": "甲", "甲类药品": "甲", "乙": "乙", "乙类": "乙", "乙类药品": "乙",
                  "丙": "丙", "丙类": "丙", "丙类药品": "丙", "自费": "丙"}


def clean_category(v: Any, values: dict[str, str]) -> tuple[str, list[Conv]]:
    s, conv = clean_text(v)
    if s in values:
        return values[s], conv
    if s in CATEGORY_WORDS:
        return CATEGORY_WORDS[s], conv
    raise CellError(f"'{s}' is not a class 甲/乙/丙",
                    "translate the source's words with 'values' in the mapping, e.g. values: {A: 甲, B: 乙}")


def clean_catalogue_no(v: Any) -> tuple[str, list[Conv]]:
    """'★(803)', '★803', 803.0 → '803'."""
    s, conv = clean_text(v)
    t = re.sub(r"^★\s*[（(]?\s*([^()（）]+?)\s*[)）]?$", r"\1", s)
    if t != s:
        conv.append(("repeat-mark", f"'{s}' → '{t}' (★ marks a repeat of the number in another form)"))
    return t, conv
