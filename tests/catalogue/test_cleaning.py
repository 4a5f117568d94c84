"""Cell cleaning: converted where the meaning is unambiguous (and said so), refused where not."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules_engine.catalogue import cleaning
from rules_engine.catalogue.cleaning import CellError


@pytest.mark.parametrize("cell,want,kind", [
    ("15%", Decimal("0.15"), "percent"),
    ("15 %", Decimal("0.15"), "percent"),
    ("１５％", Decimal("0.15"), "percent"),
    ("0,15", Decimal("0.15"), "decimal-comma"),
    ("0.15", Decimal("0.15"), None),
    (0.15, Decimal("0.15"), None),
    ("100%", Decimal("1"), "percent"),
    (0, Decimal("0"), None),
])
def test_ratio_forms_are_read(cell, want, kind):
    v, conv = cleaning.clean_ratio(cell)
    assert v == want
    assert (kind in [k for k, _ in conv]) if kind else not [k for k, _ in conv if k in ("percent", "decimal-comma")]


@pytest.mark.parametrize("cell", ["15", "1,5", "abc", "150%", "-0.1", "0,15,2"])
def test_ambiguous_or_wrong_ratio_is_refused(cell):
    with pytest.raises(CellError):
        cleaning.clean_ratio(cell)


@pytest.mark.parametrize("cell,want", [
    ("2025-01-01", "2025-01-01"), ("2025/1/1", "2025-01-01"), ("2025年1月1日", "2025-01-01"),
    ("20250101", "2025-01-01"), ("2025.01.01", "2025-01-01"), (dt.datetime(2025, 1, 1), "2025-01-01"),
    ("2025-01-01 00:00:00", "2025-01-01"), (45658, "2025-01-01"), ("２０２５年１月１日", "2025-01-01"),
])
def test_dates_in_the_forms_authorities_use(cell, want):
    assert cleaning.clean_date(cell)[0] == want


@pytest.mark.parametrize("cell", ["01/02/2025", "2025-02-30", "next year", "2025-13-01"])
def test_ambiguous_or_impossible_date_is_refused(cell):
    with pytest.raises(CellError):
        cleaning.clean_date(cell)


def test_date_range_of_a_negotiated_drug():
    (a, b), _ = cleaning.clean_date_range("2025年1月1日至2026年12月31日")
    assert (a, b) == ("2025-01-01", "2026-12-31")
    with pytest.raises(CellError):
        cleaning.clean_date_range("2026年1月1日至2025年12月31日")


def test_code_that_lost_its_leading_zeros_is_padded_to_the_declared_width():
    v, conv = cleaning.clean_code(1102000050000, width=15)
    assert v == "001102000050000" and ("leading-zeros" in [k for k, _ in conv])
    v, conv = cleaning.clean_code(1102000050000.0, width=15)
    assert v == "001102000050000"


def test_numeric_code_without_width_is_kept_and_reported():
    v, conv = cleaning.clean_code(1102000050000)
    assert v == "1102000050000" and "code-number" in [k for k, _ in conv]


@pytest.mark.parametrize("cell", ["1.102E+14", 1.5, "XA01 ABD", 1.1e16])
def test_code_whose_digits_are_lost_is_refused(cell):
    with pytest.raises(CellError):
        cleaning.clean_code(cell)


def test_full_width_and_trailing_spaces_are_normalised_and_reported():
    v, conv = cleaning.clean_text("  ＸＡ０１　阿莫西林 \u00a0")
    assert v == "XA01 阿莫西林"
    assert {"full-width", "trimmed"} <= {k for k, _ in conv}
    # Chinese punctuation is part of the published wording and stays
    assert cleaning.clean_text("限：1.反流性食管炎；2.十二指肠溃疡。")[0] == "限：1.反流性食管炎；2.十二指肠溃疡。"


@pytest.mark.parametrize("cell,want", [("12.50元", Decimal("12.50")), ("¥1,234.50", Decimal("1234.50")),
                                       (3, Decimal(3))])
def test_money(cell, want):
    assert cleaning.clean_money(cell)[0] == want


def test_money_with_decimal_comma_is_refused():
    with pytest.raises(CellError):
        cleaning.clean_money("12,50")


def test_catalogue_number_with_repeat_star():
    assert cleaning.clean_catalogue_no("★(803)")[0] == "803"
    assert cleaning.clean_catalogue_no(803.0)[0] == "803"


@given(st.decimals(min_value=0, max_value=1, places=4))
def test_percent_and_fraction_agree(d):
    """'x%' and x/100 written as a fraction are the same ratio."""
    frac, _ = cleaning.clean_ratio(str(d))
    pct, _ = cleaning.clean_ratio(f"{d * 100}%")
    assert frac == pct


@given(st.integers(min_value=1, max_value=10**14))
def test_padded_code_keeps_its_digits(n):
    v, _ = cleaning.clean_code(n, width=15)
    assert len(v) == 15 and int(v) == n
