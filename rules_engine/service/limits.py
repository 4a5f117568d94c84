"""Reading request bodies within bounds, and checking a JSON value's shape before the engine sees it.

The engine reports every bad *field* of a claim; what it should never meet is a value built to
hurt: nesting a thousand levels deep, a number like 1e999999999 (exact decimal arithmetic
would overflow), a string of millions of characters, a lone UTF-16 surrogate that no UTF-8
response can carry. `check_shape` walks the parsed value once, iteratively, and turns each of
these into a located 4xx problem.
"""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import anyio
from starlette.requests import ClientDisconnect, Request

from .problems import ProblemException

MAX_EXPONENT = 30  # |adjusted exponent| of any number: amounts are N16,2, prices N16,6


async def read_body(request: Request, limit: int, timeout_s: float) -> bytes:
    """The whole body, or 413 past `limit` bytes, or 408 if it takes longer than `timeout_s`."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise ProblemException("E-REQUEST", "Content-Length is not a number") from None
        if n > limit:
            raise ProblemException("E-LIMIT-BODY", f"the body is {n:,} bytes; at most {limit:,} are accepted here")
    chunks: list[bytes] = []
    size = 0
    try:
        with anyio.fail_after(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ProblemException("E-LIMIT-BODY", f"the body exceeds {limit:,} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise ProblemException("E-LIMIT-TIMEOUT", f"the body did not arrive within {timeout_s:g} s") from None
    except ClientDisconnect:
        raise ProblemException("E-REQUEST", "the client went away before sending the whole body") from None
    return b"".join(chunks)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads(data: bytes | str) -> Any:
    """JSON with exact decimals; 400 E-CLAIM-JSON for bad syntax, 400 E-LIMIT-DEPTH for deep nesting."""
    try:
        return json.loads(data, parse_float=Decimal, parse_constant=_no_constant)
    except RecursionError:
        raise ProblemException("E-LIMIT-DEPTH", "the JSON is nested too deeply") from None
    except UnicodeDecodeError as e:
        raise ProblemException("E-CLAIM-JSON", f"the body is not UTF-8 text ({e.reason} at byte {e.start})") from None
    except ValueError as e:  # JSONDecodeError, int too long, NaN/Infinity
        raise ProblemException("E-CLAIM-JSON", f"the body is not valid JSON: {e}") from None


def check_shape(value: Any, *, max_depth: int, max_string: int, prefix: str = "") -> None:
    """Raise a located problem for the first hostile part of a parsed JSON value."""
    stack: list[tuple[Any, int, str]] = [(value, 0, prefix)]
    while stack:
        v, depth, path = stack.pop()
        t = type(v)
        if t is dict:
            if depth >= max_depth:
                raise ProblemException("E-LIMIT-DEPTH", f"nested deeper than {max_depth} levels at {path or '(top)'}",
                                       errors=[{"path": path, "code": "E-LIMIT-DEPTH", "message": "too deep"}])
            for k, x in v.items():
                if len(k) > 200:
                    _bad(path, f"a field name of {len(k):,} characters")
                if not k.isascii():
                    try:
                        k.encode("utf-8")
                    except UnicodeEncodeError:
                        _bad(path, "a field name holds a lone UTF-16 surrogate (not valid Unicode)")
                p = f"{path}.{k}" if path else k
                if type(x) in (dict, list):
                    stack.append((x, depth + 1, p))
                elif x is not None:
                    _leaf(x, p, max_string)
        elif t is list:
            if depth >= max_depth:
                raise ProblemException("E-LIMIT-DEPTH", f"nested deeper than {max_depth} levels at {path or '(top)'}",
                                       errors=[{"path": path, "code": "E-LIMIT-DEPTH", "message": "too deep"}])
            for i, x in enumerate(v):
                p = f"{path}[{i}]"
                if type(x) in (dict, list):
                    stack.append((x, depth + 1, p))
                elif x is not None:
                    _leaf(x, p, max_string)
        elif v is not None:
            _leaf(v, path, max_string)


def _leaf(x: Any, path: str, max_string: int) -> None:
    t = type(x)
    if t is str:
        if len(x) > max_string:
            _bad(path, f"a text of {len(x):,} characters; at most {max_string:,}")
        if not x.isascii():
            try:
                x.encode("utf-8")
            except UnicodeEncodeError:
                _bad(path, "the text holds a lone UTF-16 surrogate (not valid Unicode)")
    elif t is Decimal:
        if not x.is_finite() or abs(x.adjusted()) > MAX_EXPONENT:
            _bad(path, f"the number {x} is out of range")
    elif t is int:
        if abs(x) >= 10 ** MAX_EXPONENT:
            _bad(path, "the number is out of range")


def _bad(path: str, message: str) -> None:
    raise ProblemException("E-CLAIM", f"{path or '(claim)'}: {message}",
                           errors=[{"path": path, "code": "E-CLAIM-VALUE", "message": message}])


def check_lines(claim: Any, max_lines: int, prefix: str = "") -> None:
    if isinstance(claim, dict):
        fd = claim.get("feedetail")
        if isinstance(fd, list) and len(fd) > max_lines:
            p = f"{prefix}feedetail"
            raise ProblemException("E-LIMIT-LINES", f"{len(fd):,} fee lines; at most {max_lines:,} per claim here",
                                   errors=[{"path": p, "code": "E-LIMIT-LINES", "message": f"at most {max_lines:,}"}])
