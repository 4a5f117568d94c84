"""JSON out, fast: the engine's exact `Decimal` amounts as JSON numbers.

The numbers are those `rules_engine.jsonio` writes (an integral Decimal without a fraction as an
int, any other as the shortest float that reads back to it — exact for N16,2 amounts), so the
service answers byte-for-byte what the CLI's JSON holds, minus the indentation. Converting once
with `to_plain` and letting the C encoder write plain floats is ~2× faster than a `default=`
hook per Decimal, and lets the decision log hash the same plain value without converting again.
"""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

_CONVERT = (dict, list, tuple, Decimal)


def _num(o: Decimal) -> int | float:
    s = str(o)
    if "E" in s:
        return int(o) if o == o.to_integral_value() and o.as_tuple().exponent >= 0 else float(o)
    return float(s) if "." in s else int(s)


def to_plain(o: Any) -> Any:
    """A copy of `o` with every Decimal as an int or float (tuples as lists)."""
    t = type(o)
    if t is dict:
        return {k: (to_plain(v) if type(v) in _CONVERT else v) for k, v in o.items()}
    if t is list or t is tuple:
        return [to_plain(v) if type(v) in _CONVERT else v for v in o]
    if t is Decimal:
        return _num(o)
    return o


def _default(o: Any) -> Any:
    if isinstance(o, Decimal):
        return _num(o)
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def dumps_plain(plain: Any, *, sort_keys: bool = False) -> bytes:
    """UTF-8 JSON of a value already made plain (or holding a few Decimals: the hook takes those)."""
    try:
        return json.dumps(plain, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys,
                          default=_default).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate cannot be UTF-8: escape everything instead
        return json.dumps(plain, ensure_ascii=True, separators=(",", ":"), sort_keys=sort_keys,
                          default=_default).encode("ascii")


def dumps(obj: Any) -> bytes:
    """UTF-8 JSON with exact amounts as numbers (any value: Decimals anywhere)."""
    return dumps_plain(obj)
