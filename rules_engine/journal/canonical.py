"""Canonical JSON: one text per value, so that a hash over it means something.

Rules (the same for every writer of the journal — service, gateway, member service):
- object keys sorted by Unicode code point, no whitespace (`,` and `:` only);
- UTF-8, non-ASCII written as itself; a string holding a lone surrogate (which UTF-8 cannot
  carry) makes the whole value fall back to `\\uXXXX` escapes — still one text per value;
- `Decimal` written as its exact decimal *text* (a JSON string: "3502.00"), never through a
  float: the journal keeps amounts exactly as the engine saw them, with their scale;
- no NaN or Infinity; tuples are lists; anything else (sets, bytes, objects) is refused;
  object keys are text (a number as a key is written as text, as JSON itself does).

Why strings for decimals: a JSON number has no scale and most readers turn it into a binary
float; "0.10" as text survives every JSON library in C#, Java and Python unchanged. The
engine reads amounts given as text exactly (`rules_engine.money.scaled_int`), so a replay
from the journal settles the same claim.
"""
from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any


class CanonicalError(ValueError):
    """A value that has no canonical JSON form (NaN, a set, a cycle, nesting too deep)."""


def _default(o: Any) -> Any:
    if isinstance(o, Decimal):
        if not o.is_finite():
            raise CanonicalError(f"{o} is not a finite number")
        return str(o)
    raise CanonicalError(f"cannot write {type(o).__name__} as JSON")


def canonical_json(value: Any) -> str:
    """The canonical text of `value` (see the module doc)."""
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                          default=_default)
    except CanonicalError:
        raise
    except RecursionError:
        raise CanonicalError("nested too deeply for the journal") from None
    except (TypeError, ValueError) as e:  # non-str keys, cycles, NaN floats
        raise CanonicalError(str(e)) from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: escape everything, still deterministic
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False,
                          default=_default)
    return text


def sha256_hex(data: str | bytes) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()
