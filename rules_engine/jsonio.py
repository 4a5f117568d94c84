"""JSON in and out with exact amounts.

Amounts are exact `Decimal`s inside; JSON has only one number type, so they are written as
numbers through the shortest float that reads back to the same decimal (exact for every
amount below 10^13 yuan with 2 decimals — the interface's N16,2 in practice).
"""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


def _default(o: Any) -> Any:
    if isinstance(o, Decimal):
        return int(o) if o == o.to_integral_value() and o.as_tuple().exponent >= 0 else float(o)
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def dumps(obj: Any, *, indent: int | None = 2) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=indent, default=_default)


def loads(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal)
