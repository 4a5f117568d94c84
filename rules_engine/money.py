"""Exact money: integers of fen, ratios in millionths, one rounding rule.

Why integers: Decimal arithmetic is exact too, but integer arithmetic is 10–20× faster in
CPython and the per-claim budget is ~100 µs. Every amount is an `int` of fen (0.01 yuan);
every ratio an `int` of millionths (ppm); a unit price an `int` of micro-yuan (the national
interface gives `pric` as N16,6); a count an `int` of 1/10,000 (`cnt` is N16,4).

The one rounding rule (documented in docs/money.md): a derived amount is computed exactly in
sub-fen units and rounded once, to the fen, at the place that produces it, with the pack's
rounding mode (default half-up, which the one real 乙类 line 4.52 × 5 % = 0.226 → 0.23 fits).
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Literal

RoundingMode = Literal["half_up", "half_even", "down"]
ROUNDING_MODES: tuple[str, ...] = ("half_up", "half_even", "down")

PPM = 1_000_000          # ratio scale
PRICE_SCALE = 1_000_000  # pric: N16,6 → micro-yuan
CNT_SCALE = 10_000       # cnt: N16,4
FEN_PER_YUAN = 100


class MoneyError(ValueError):
    """A value that cannot be an exact amount (too many decimals, not a number, …)."""


def scaled_int(value: object, places: int, what: str = "amount") -> int:
    """Exact `value × 10**places` as int; refuses anything that would lose a digit."""
    if isinstance(value, bool):
        raise MoneyError(f"{what} must be a number, not a boolean")
    if isinstance(value, int):
        return value * 10**places
    if isinstance(value, str):
        s = value.strip()
        # Fast path for the usual "1234.56" shape.
        neg = s.startswith("-")
        body = s[1:] if neg else s
        if body and body.replace(".", "", 1).isdigit() and body[0] != "." and body[-1] != ".":
            whole, _, frac = body.partition(".")
            if len(frac) > places:
                frac_extra = frac[places:]
                if frac_extra.strip("0"):
                    raise MoneyError(f"{what} {value!r} has more than {places} decimal places")
                frac = frac[:places]
            n = int(whole) * 10**places + (int(frac.ljust(places, "0")) if places else 0)
            return -n if neg else n
        try:
            d = Decimal(s)
        except InvalidOperation:
            raise MoneyError(f"{what} {value!r} is not a number") from None
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise MoneyError(f"{what} must be a finite number")
        d = Decimal(repr(value))
    elif isinstance(value, Decimal):
        d = value
    else:
        raise MoneyError(f"{what} must be a number, not {type(value).__name__}")
    if not d.is_finite():
        raise MoneyError(f"{what} must be a finite number")
    if d and not -40 < d.adjusted() < 40:  # 1E+999999999 would overflow, 1E-999999999 round to 0
        raise MoneyError(f"{what} {value!r} is out of range")
    try:
        q = d.scaleb(places)
        if q != q.to_integral_value():
            raise MoneyError(f"{what} {value!r} has more than {places} decimal places")
        return int(q)
    except ArithmeticError:
        raise MoneyError(f"{what} {value!r} is out of range") from None


def to_fen(value: object, what: str = "amount") -> int:
    return scaled_int(value, 2, what)


def to_ppm(value: object, what: str = "ratio") -> int:
    return scaled_int(value, 6, what)


def round_div(numerator: int, denominator: int, mode: RoundingMode = "half_up") -> int:
    """`numerator / denominator` rounded to an integer; symmetric for negatives (reversals)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    sign = -1 if numerator < 0 else 1
    n = abs(numerator)
    q, r = divmod(n, denominator)
    if mode == "half_up":
        if 2 * r >= denominator:
            q += 1
    elif mode == "half_even":
        if 2 * r > denominator or (2 * r == denominator and q % 2 == 1):
            q += 1
    elif mode != "down":
        raise ValueError(f"unknown rounding mode {mode!r}")
    return sign * q


def fen_str(fen: int) -> str:
    """'1234.56' — the national interface's N16,2 text form."""
    sign = "-" if fen < 0 else ""
    q, r = divmod(abs(fen), 100)
    return f"{sign}{q}.{r:02d}"


_CENT = Decimal("0.01")


def fen_decimal(fen: int) -> Decimal:
    return Decimal(fen) * _CENT  # exact: 2 decimal places, and 3× faster than scaleb


def ppm_str(ppm: int) -> str:
    """A ratio in its shortest exact decimal form: 850000 → '0.85'."""
    d = Decimal(ppm).scaleb(-6).normalize()
    s = format(d, "f")
    return s


def ppm_pct(ppm: int) -> str:
    d = (Decimal(ppm).scaleb(-4)).normalize()
    return format(d, "f") + "%"


def yuan_display(fen: int) -> str:
    """Thousands-separated yuan for people: 300000000 → '3,000,000.00'."""
    sign = "-" if fen < 0 else ""
    q, r = divmod(abs(fen), 100)
    return f"{sign}{q:,}.{r:02d}"


def plain(d: Decimal) -> Decimal:
    """A Decimal without trailing zeros and never in exponent form: 12000, 0.85, 2.5."""
    d = d.normalize()
    return d.quantize(Decimal(1)) if d.as_tuple().exponent > 0 else d
