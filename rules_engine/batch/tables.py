"""Claims and fee lines as tables: the batch format, its checks, and exact conversion.

Two tables with the national interface's field names (docs/batch.md §Formats):

- **claims** — one row per visit: the fields of a claim JSON (`insuplc_admdvs`, `med_type`,
  `setl_time`, `hosp_lv`, `age` …), `mdtrt_id` as its key, `psn_no` to chain a person's claims,
  diagnoses as `diag_code` ("J18.900;I10.x00" or a list column) and optional year-to-date
  `accumulators` as JSON text;
- **feedetail** — one row per fee line: the 2204 fields (`feedetl_sn`, `med_list_codg`, `cnt`,
  `pric`, `det_item_fee_sumamt` …) and the `mdtrt_id` of the claim it belongs to.

Either table may be CSV or Parquet. Every code is text (a CSV cell is read as text, never as a
number, so `01` keeps its zero); amounts are exact decimals (Parquet decimal128, integers, text,
or floats that are exactly a decimal of the allowed places). Why a separate module: reading and
checking the tables is the same whether a partition is settled here, on a Dask worker or in the
per-claim fallback — and an error must name the table, the column and the row, never a traceback.

A partition is converted into a `Block`: numpy arrays in settlement order (person, setl_time,
row), codes as small integers into per-column value lists (`Cat`), amounts as int64 in the
engine's units (fen, micro-yuan, 1/10,000). Strings are looked at once per distinct value.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..model.claim import CLAIM_FIELDS, FEEDETAIL_FIELDS, FILING_TYPES, MAX_AMOUNT_FEN, MAX_LINES, MAX_PRICE_E6
from ..problems import did_you_mean

FORMAT_VERSION = "1"
META_KEY = b"rules-engine/batch"   # Parquet key-value metadata: {"format": "1", "partitioned_by": "psn_no", ...}
ROW = "_row"                       # 0-based row of a record in its source file, carried through partitioning

# ------------------------------------------------------------------ the column contract


@dataclass(frozen=True)
class ColSpec:
    """One column of the batch format: what the per-claim reader (`parse_claim`) accepts for the field."""

    name: str
    kind: str                 # code | choice | datetime | date | int | number | text | codes | json | sn
    required: bool = False
    lo: int = 1               # code length bounds (after stripping)
    hi: int = 10**6
    digits: bool = False
    choices: tuple[str, ...] = ()
    places: int = 0           # number: decimal places of the scaled integer
    limit: int | None = None  # number: |scaled| must stay below
    doc: str = ""


_F01 = ("0", "1")
CLAIM_SPECS: dict[str, ColSpec] = {s.name: s for s in [
    ColSpec("mdtrt_id", "code", True, 1, 200, doc="就诊ID: the claim's key; fee lines refer to it"),
    ColSpec("psn_no", "code", False, 1, 200, doc="人员编号: claims of one person are settled in setl_time order"),
    ColSpec("insuplc_admdvs", "code", True, 6, 6, digits=True, doc="参保地医保区划"),
    ColSpec("mdtrtarea_admvs", "code", True, 6, 6, digits=True, doc="就医地医保区划"),
    ColSpec("insutype", "code", True, 3, 3, digits=True, doc="险种类型"),
    ColSpec("med_type", "code", True, 1, 6, doc="医疗类别"),
    ColSpec("setl_time", "datetime", True, doc="结算时间 yyyy-MM-dd[ HH:mm:ss]"),
    ColSpec("begntime", "datetime", doc="开始（入院）时间"),
    ColSpec("endtime", "datetime", doc="结束时间"),
    ColSpec("hosp_lv", "choice", True, choices=("1", "2", "3", "9"), doc="医院等级"),
    ColSpec("age", "int", doc="年龄 (or brdy)"),
    ColSpec("brdy", "date", doc="出生日期"),
    ColSpec("gend", "choice", choices=("0", "1", "2", "9"), doc="性别"),
    ColSpec("psn_type", "code", False, 1, 10, doc="人员类别"),
    ColSpec("insutype_retr_flag", "choice", choices=_F01, doc="险种离退休标志"),
    ColSpec("cvlserv_flag", "choice", choices=_F01, doc="公务员标志"),
    ColSpec("community_flag", "choice", choices=_F01, doc="社区卫生服务机构"),
    ColSpec("acct_used_flag", "choice", choices=_F01, doc="个人账户使用标志"),
    ColSpec("filing_type", "choice", choices=FILING_TYPES, doc="异地就医备案类型"),
    ColSpec("balc", "number", places=2, limit=MAX_AMOUNT_FEN, doc="个人账户余额 before the claim (carried on if empty)"),
    ColSpec("dise_codg", "code", False, 1, 30, doc="病种编码"),
    ColSpec("icd_edition", "code", False, 1, 40, doc="edition of the diagnosis codes"),
    ColSpec("diag_code", "codes", doc="诊断代码 of diseinfo: 'J18.900;I10.x00' (or a list column)"),
    ColSpec("accumulators", "json", doc="year-to-date values before the claim, JSON text {\"id\": value}"),
] + [ColSpec(n, "text") for n in sorted(CLAIM_FIELDS - {
    "insuplc_admdvs", "mdtrtarea_admvs", "psn_no", "insutype", "med_type", "setl_time", "begntime", "endtime",
    "hosp_lv", "age", "brdy", "gend", "psn_type", "insutype_retr_flag", "cvlserv_flag", "community_flag",
    "acct_used_flag", "filing_type", "balc", "dise_codg", "icd_edition", "accumulators", "mdtrt_id", "diseinfo",
    "feedetail"})]}

LINE_SPECS: dict[str, ColSpec] = {s.name: s for s in [
    ColSpec("mdtrt_id", "code", True, 1, 200, doc="the claim this line belongs to"),
    ColSpec("feedetl_sn", "sn", True, doc="费用明细流水号, unique within the claim"),
    ColSpec("med_list_codg", "code", False, 1, 50, doc="医疗目录编码 (national code)"),
    ColSpec("medins_list_codg", "code", False, 1, 150, doc="医药机构目录编码 (hospital code)"),
    ColSpec("cnt", "number", True, places=4, limit=MAX_PRICE_E6, doc="数量 N16,4"),
    ColSpec("pric", "number", True, places=6, limit=MAX_PRICE_E6, doc="单价 N16,6"),
    ColSpec("det_item_fee_sumamt", "number", True, places=2, limit=MAX_AMOUNT_FEN, doc="明细项目费用总额 N16,2"),
    ColSpec("hosp_appr_flag", "code", False, 1, 3, doc="医院审批标志"),
    ColSpec("prd_days", "number", places=4, limit=10**8, doc="周期天数"),
] + [ColSpec(n, "text") for n in sorted(FEEDETAIL_FIELDS - {
    "mdtrt_id", "feedetl_sn", "med_list_codg", "medins_list_codg", "cnt", "pric", "det_item_fee_sumamt",
    "hosp_appr_flag", "prd_days"})]}


# ------------------------------------------------------------------ errors


@dataclass(frozen=True)
class InputProblem:
    table: str             # file name or "claims" / "feedetail"
    column: str | None
    row: int | None        # 1-based data row of the source file (header not counted)
    code: str
    message: str
    partition: int | None = None
    mdtrt_id: str | None = None

    def format(self) -> str:
        where = self.table
        if self.row is not None:
            where += f" row {self.row:,}"
        extra = []
        if self.partition is not None:
            extra.append(f"partition {self.partition}")
        if self.mdtrt_id:
            extra.append(f"mdtrt_id {self.mdtrt_id}")
        if extra:
            where += f" ({', '.join(extra)})"
        col = f" column '{self.column}':" if self.column else ""
        return f"{where}:{col} {self.code}: {self.message}"

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class BatchInputError(Exception):
    """Bad batch input; `problems` are located (table, column, row). Raised before any output is kept."""

    code = "E-BATCH-INPUT"

    def __init__(self, problems: list[InputProblem], more: int = 0):
        self.problems = problems
        self.more = more
        head = problems[0].format() if problems else "bad input"
        super().__init__(head + (f" (and {len(problems) - 1 + more} more)" if len(problems) + more > 1 else ""))

    def format(self, limit: int = 20) -> str:
        lines = [p.format() for p in self.problems[:limit]]
        rest = len(self.problems) - limit + self.more
        if rest > 0:
            lines.append(f"… and {rest:,} more")
        return "\n".join(lines)


class _Collector:
    """Collects located problems; stops collecting detail after a limit (a bad column can have millions)."""

    def __init__(self, limit: int = 50):
        self.items: list[InputProblem] = []
        self.more = 0
        self.limit = limit

    def add(self, p: InputProblem) -> None:
        if len(self.items) < self.limit:
            self.items.append(p)
        else:
            self.more += 1

    def raise_if_any(self) -> None:
        if self.items:
            raise BatchInputError(self.items, self.more)


# ------------------------------------------------------------------ codes as small integers


class Cat:
    """A code column: `codes[i]` indexes the distinct (stripped) values; -1 = missing.

    The distinct values live as a pyarrow string array (`dictionary`); `cats`, the same as a numpy
    object array, is made only when asked for (small columns: conditions, messages)."""

    __slots__ = ("codes", "_cats", "_dict")

    def __init__(self, codes: np.ndarray, cats: np.ndarray | None = None, dictionary: pa.Array | None = None):
        self.codes = codes
        self._cats = cats
        self._dict = dictionary

    @property
    def cats(self) -> np.ndarray:
        if self._cats is None:
            self._cats = self._dict.to_numpy(zero_copy_only=False).astype(object) if self._dict is not None \
                else np.array([], dtype=object)
        return self._cats

    @property
    def dictionary(self) -> pa.Array:
        if self._dict is None:
            self._dict = pa.array(list(self._cats) if self._cats is not None else [], pa.string())
        return self._dict

    def __len__(self) -> int:
        return len(self.codes)

    def n_cats(self) -> int:
        return len(self._dict) if self._dict is not None else len(self.cats)

    def take(self, idx: np.ndarray) -> "Cat":
        return Cat(self.codes[idx], self._cats, self._dict)

    def values(self) -> np.ndarray:
        """Object array of str / None (only for small subsets)."""
        out = np.empty(len(self.codes), dtype=object)
        ok = self.codes >= 0
        out[ok] = self.cats[self.codes[ok]]
        return out

    def arrow(self) -> pa.Array:
        """The column as a pyarrow dictionary array (nulls where missing) — for output, without Python strings."""
        idx = pa.array(self.codes.astype(np.int32), pa.int32(), mask=self.codes < 0)
        return pa.DictionaryArray.from_arrays(idx, self.dictionary)

    def value(self, i: int) -> str | None:
        c = self.codes[i]
        return None if c < 0 else self.cats[c]

    def missing(self) -> np.ndarray:
        return self.codes < 0

    def code_of(self, v: str) -> int:
        hit = np.flatnonzero(self.cats == v)
        return int(hit[0]) if len(hit) else -2  # -2 never equals a code nor 'missing'

    def remap_to(self, other: "Cat") -> np.ndarray:
        """Codes of this column in `other`'s value space (-1 where missing or absent there)."""
        if self.n_cats() == 0:
            return np.full(len(self.codes), -1, dtype=np.int64)
        m = pc.index_in(self.dictionary, value_set=other.dictionary).fill_null(-1).to_numpy(zero_copy_only=False)
        m = np.append(m.astype(np.int64), -1)
        return m[self.codes]

    def table(self, fn) -> np.ndarray:
        """A boolean per distinct value (fn(str) -> bool), indexable by `codes` (missing → False)."""
        cats = self.cats
        t = np.zeros(len(cats) + 1, dtype=bool)
        for i, v in enumerate(cats):
            t[i] = bool(fn(v))
        return t  # t[-1] (index -1) is the False slot for missing


def _chunks(arr) -> list[pa.Array]:
    return list(arr.chunks) if isinstance(arr, pa.ChunkedArray) else [arr]


def _as_strings(arr) -> pa.ChunkedArray:
    """A string-ish column as chunked utf8 (dictionary and large types included)."""
    chunks = []
    for c in _chunks(arr):
        t = c.type
        if pa.types.is_dictionary(t):
            c = c.cast(pa.string()) if not pa.types.is_string(t.value_type) else c.dictionary_decode()
        if pa.types.is_large_string(c.type):
            c = c.cast(pa.string())
        chunks.append(c)
    return pa.chunked_array(chunks, type=pa.string()) if chunks else pa.chunked_array([], type=pa.string())


def to_cat(arr, *, strip: bool = True, upper: bool = False) -> Cat:
    """Dictionary-encode a string column; values stripped (as `parse_claim` strips) and de-duplicated.
    All in pyarrow kernels: a million distinct values cost milliseconds, not seconds."""
    chunks = _chunks(arr)
    if chunks and all(pa.types.is_dictionary(c.type) and pa.types.is_string(c.type.value_type) for c in chunks):
        enc = pa.chunked_array(chunks).unify_dictionaries() if len(chunks) > 1 else pa.chunked_array(chunks)
    else:
        enc = pc.dictionary_encode(_as_strings(arr))
    if len(enc.chunks) == 0:
        return Cat(np.zeros(0, dtype=np.int32), dictionary=pa.array([], pa.string()))
    d = enc.chunks[0].dictionary
    if pa.types.is_large_string(d.type):
        d = d.cast(pa.string())
    if len(enc.chunks) > 1:
        codes = np.concatenate([c.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
                                for c in enc.chunks])
    else:
        codes = enc.chunks[0].indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
    if (strip or upper) and len(d):
        t = pc.utf8_trim_whitespace(d) if strip else d
        if upper:
            t = pc.utf8_upper(t)
        if not pc.all(pc.equal(t, d)).as_py():
            enc2 = pc.dictionary_encode(t)
            remap = np.append(enc2.indices.to_numpy(zero_copy_only=False).astype(np.int32), np.int32(-1))
            codes = remap[codes]
            d = enc2.dictionary
    return Cat(codes, dictionary=d)


def _ranks(cat: Cat) -> np.ndarray:
    """Sort rank of each distinct value (text order = code point order, as Python compares str)."""
    n = cat.n_cats()
    r = np.empty(n, dtype=np.int64)
    if n:
        r[pc.array_sort_indices(cat.dictionary).to_numpy(zero_copy_only=False)] = np.arange(n)
    return r


# ------------------------------------------------------------------ exact numbers

_NUM_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def _dec_ints(arr: pa.Array) -> np.ndarray:
    """Unscaled int64 values of a decimal128 array (raises OverflowError beyond int64)."""
    buf = arr.buffers()[1]
    pairs = np.frombuffer(buf, dtype=np.int64).reshape(-1, 2)[arr.offset:arr.offset + len(arr)]
    lo, hi = pairs[:, 0], pairs[:, 1]
    if not np.array_equal(hi, lo >> 63):
        raise OverflowError
    return lo.copy()


def decimal_array(values: np.ndarray, scale: int, valid: np.ndarray | None = None, precision: int = 18) -> pa.Array:
    """int64 scaled values → decimal128(precision, scale), exactly and without Python objects."""
    v = np.ascontiguousarray(values, dtype=np.int64)
    pairs = np.empty((len(v), 2), dtype=np.int64)
    pairs[:, 0] = v
    pairs[:, 1] = v >> 63
    validity = None
    if valid is not None and not valid.all():
        validity = pa.array(valid, type=pa.bool_()).buffers()[1]
    return pa.Array.from_buffers(pa.decimal128(precision, scale), len(v), [validity, pa.py_buffer(pairs.tobytes())])


@dataclass
class Num:
    values: np.ndarray   # int64 scaled; 0 where missing
    present: np.ndarray  # bool


def to_scaled(arr, spec: ColSpec, where: "_Where", errs: _Collector) -> Num:
    """A numeric column → exact int64 × 10**places; every bad cell located (first ones in detail)."""
    places = spec.places
    scale = 10**places
    n = len(arr)
    vals = np.zeros(n, dtype=np.int64)
    present = np.zeros(n, dtype=bool)
    if arr.null_count == n:
        return Num(vals, present)
    pos = 0
    for c in _chunks(arr):
        m = len(c)
        sl = slice(pos, pos + m)
        pos += m
        t = c.type
        if pa.types.is_dictionary(t):
            c = c.dictionary_decode()
            t = c.type
        if pa.types.is_null(t):
            continue
        ok = ~c.is_null().to_numpy(zero_copy_only=False)
        if pa.types.is_decimal(t):
            if pa.types.is_decimal256(t) or t.precision > 18:
                try:
                    c = c.cast(pa.decimal128(38, t.scale))
                    c2 = pc.cast(c, pa.decimal128(18, t.scale))
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    _bad_rows(where, spec, sl, ok, "E-BATCH-VALUE", "a value beyond the interface's range", errs,
                              probe=lambda i: _big_decimal(c, i, spec))
                    continue
                c = c2
            raw = _dec_ints(c)
            s = t.scale
            if s <= places:
                v = raw * 10**(places - s)
            else:
                d = 10**(s - places)
                frac = raw % d
                badf = ok & (frac != 0)
                if badf.any():
                    _bad_rows(where, spec, sl, badf, "E-BATCH-VALUE", f"has more than {places} decimal places", errs)
                v = raw // d
        elif pa.types.is_integer(t):
            raw = c.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
            big = np.abs(raw) >= (spec.limit or 10**18) // scale + 1
            if big.any():
                _bad_rows(where, spec, sl, ok & big, "E-BATCH-VALUE", "is beyond the interface's range", errs)
                raw = np.where(big, 0, raw)
            v = raw * scale
        elif pa.types.is_floating(t):
            x = c.fill_null(0).to_numpy(zero_copy_only=False).astype(np.float64)
            nan = np.isnan(x)
            ok &= ~nan  # NaN is how pandas writes an empty number
            fin = np.isfinite(x)
            bad = ok & ~fin
            x = np.where(fin, x, 0.0)
            big = np.abs(x) >= min(float(spec.limit or 10**18), 2.0**53) / scale
            r = np.rint(x * scale)
            inexact = ok & fin & ~big & (r / scale != x)
            if bad.any():
                _bad_rows(where, spec, sl, bad, "E-BATCH-VALUE", "must be a finite number", errs)
            if (ok & big).any():
                _bad_rows(where, spec, sl, ok & big, "E-BATCH-VALUE",
                          "is too large for an exact float; store it as a decimal", errs)
            if inexact.any():
                _bad_rows(where, spec, sl, inexact, "E-BATCH-VALUE",
                          f"has more than {places} decimal places (or is not an exact decimal)", errs,
                          probe=lambda i: repr(float(x[i])))
            v = np.where(ok & fin & ~big, r, 0).astype(np.int64)
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            s = pc.utf8_trim_whitespace(c.cast(pa.string()))
            # pandas-made CSV may hold "" for missing; an empty cell is missing
            empty = (pc.utf8_length(s).fill_null(0).to_numpy(zero_copy_only=False) == 0)
            ok &= ~empty
            good = pc.match_substring_regex(s, r"^[+-]?(\d+(\.\d*)?|\.\d+)$").fill_null(False)
            good = good.to_numpy(zero_copy_only=False)
            bad = ok & ~good
            if bad.any():
                _bad_rows(where, spec, sl, bad, "E-BATCH-TYPE", "is not a number", errs,
                          probe=lambda i: repr(s[i].as_py()))
            s2 = pc.if_else(pa.array(ok & good), s, pa.scalar(None, pa.string()))
            try:
                d = pc.cast(s2, pa.decimal128(38, places))
                v = _dec38_to_int(d, ok & good, spec, where, sl, errs)
            except pa.ArrowInvalid:
                # too many decimals in at least one cell: find them
                v = np.zeros(m, dtype=np.int64)
                for i in np.flatnonzero(ok & good):
                    txt = s2[int(i)].as_py()
                    try:
                        dd = Decimal(txt).scaleb(places)
                        if dd != dd.to_integral_value():
                            raise ValueError
                        v[i] = int(dd) if abs(int(dd)) < 2**62 else 0
                    except (ValueError, ArithmeticError):
                        _bad_rows(where, spec, slice(sl.start + int(i), sl.start + int(i) + 1), np.array([True]),
                                  "E-BATCH-VALUE", f"{txt!r} has more than {places} decimal places", errs)
            ok &= good
        elif pa.types.is_boolean(t):
            _bad_rows(where, spec, sl, ok, "E-BATCH-TYPE", "must be a number, found true/false", errs)
            continue
        else:
            _type_error(where, spec, t, errs)
            continue
        neg = ok & (v < 0)
        if neg.any():
            _bad_rows(where, spec, sl, neg, "E-BATCH-VALUE", "must not be negative", errs)
        if spec.limit is not None:
            over = ok & (np.abs(v) >= spec.limit)
            if over.any():
                _bad_rows(where, spec, sl, over, "E-BATCH-VALUE", "is beyond the interface's range", errs)
        vals[sl] = np.where(ok, v, 0)
        present[sl] = ok
    return Num(vals, present)


def _dec38_to_int(d: pa.Array, ok: np.ndarray, spec: ColSpec, where: "_Where", sl: slice, errs: _Collector) -> np.ndarray:
    try:
        d18 = pc.cast(d, pa.decimal128(18, d.type.scale))
        if isinstance(d18, pa.ChunkedArray):
            d18 = d18.combine_chunks()
        return _dec_ints(d18)
    except (pa.ArrowInvalid, OverflowError):
        out = np.zeros(len(d), dtype=np.int64)
        for i in np.flatnonzero(ok):
            q = d[int(i)].as_py().scaleb(d.type.scale)
            if abs(q) >= (spec.limit or 2**62):
                _bad_rows(where, spec, slice(sl.start + int(i), sl.start + int(i) + 1), np.array([True]),
                          "E-BATCH-VALUE", "is beyond the interface's range", errs)
            else:
                out[i] = int(q)
        return out


def _big_decimal(c, i, spec) -> str:
    return str(c[i].as_py())


# ------------------------------------------------------------------ locating


@dataclass
class _Where:
    table: str
    rows: np.ndarray                 # source row (0-based) of each record of the partition
    partition: int | None
    ids: Cat | None = None           # mdtrt_id per record, for messages

    def problem(self, i: int, column: str | None, code: str, message: str) -> InputProblem:
        return InputProblem(self.table, column, int(self.rows[i]) + 1, code, message, self.partition,
                            self.ids.value(i) if self.ids is not None and i < len(self.ids.codes) else None)


def _bad_rows(where: _Where, spec: ColSpec, sl: slice, mask: np.ndarray, code: str, message: str,
              errs: _Collector, probe=None, limit: int = 3) -> None:
    idx = np.flatnonzero(mask)
    for k in idx[:limit]:
        i = sl.start + int(k)
        shown = f" ({probe(int(k))})" if probe is not None else ""
        errs.add(where.problem(i, spec.name, code, f"'{spec.name}'{shown} {message}"))
    if len(idx) > limit:
        errs.more += len(idx) - limit


def _type_error(where: _Where, spec: ColSpec, t: pa.DataType, errs: _Collector, expected: str | None = None) -> None:
    exp = expected or {"number": f"a decimal number (≤ {spec.places} places)", "int": "a whole number",
                       "code": "text (a code)", "choice": "text (a code)", "datetime": "a date text",
                       "date": "a date text", "sn": "text", "codes": "text or a list of text",
                       "json": "JSON text", "text": "text"}[spec.kind]
    hint = ""
    if spec.kind in ("code", "choice") and pa.types.is_integer(t):
        hint = " — codes are text: a number loses leading zeros (write the column as strings)"
    errs.add(InputProblem(where.table, spec.name, None, "E-BATCH-TYPE",
                          f"column '{spec.name}' has type {t}; expected {exp}{hint}", where.partition))


def _code_column(arr, spec: ColSpec, where: _Where, errs: _Collector, *, upper: bool = False) -> Cat | None:
    t = arr.type
    vt = t.value_type if pa.types.is_dictionary(t) else t
    if spec.kind == "sn" and pa.types.is_integer(vt):
        arr = pc.cast(arr, pa.string())
    elif pa.types.is_null(vt):
        return Cat(np.full(len(arr), -1, dtype=np.int32), np.array([], dtype=object))
    elif not (pa.types.is_string(vt) or pa.types.is_large_string(vt)):
        _type_error(where, spec, t, errs)
        return None
    cat = to_cat(arr, upper=upper)
    _check_cats(cat, spec, where, errs)
    return cat


def _check_cats(cat: Cat, spec: ColSpec, where: _Where, errs: _Collector) -> None:
    n = cat.n_cats()
    if not n:
        return
    d = cat.dictionary
    if spec.kind == "choice":
        bad = ~pc.is_in(d, value_set=pa.array(list(spec.choices), pa.string())).to_numpy(zero_copy_only=False)
    elif spec.kind == "sn":
        bad = pc.utf8_length(d).to_numpy(zero_copy_only=False) == 0
    elif spec.kind == "code":
        ln = pc.utf8_length(d).to_numpy(zero_copy_only=False)
        bad = (ln < spec.lo) | (ln > spec.hi)
        if spec.digits:
            bad |= ~pc.utf8_is_digit(d).to_numpy(zero_copy_only=False)
    else:
        return
    if not bad.any():
        return
    msgs: dict[int, str] = {}
    for i in np.flatnonzero(bad):
        v = cat.dictionary[int(i)].as_py()
        if spec.kind == "choice":
            msgs[int(i)] = f"'{spec.name}' is '{v}'; expected one of {', '.join(spec.choices)}"
        elif spec.kind == "sn":
            msgs[int(i)] = "'feedetl_sn' (费用明细流水号) is required and must be text"
        elif not spec.lo <= len(v) <= spec.hi:
            msgs[int(i)] = (f"'{spec.name}' '{v}' must be {spec.lo}" + (f"–{spec.hi}" if spec.hi != spec.lo else "")
                            + " characters")
        else:
            msgs[int(i)] = f"'{spec.name}' '{v}' must be digits"
    badx = np.append(bad, False)
    rows = np.flatnonzero(badx[cat.codes])
    for i in rows[:3]:
        errs.add(where.problem(int(i), spec.name, "E-BATCH-VALUE", msgs[int(cat.codes[i])]))
    errs.more += max(0, len(rows) - 3)


_DT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T].+)?$")


def _datetime_column(arr, spec: ColSpec, where: _Where, errs: _Collector) -> tuple[Cat, np.ndarray] | None:
    """Dates as text: (raw values as a Cat — not stripped, the per-claim path sorts on the raw text —,
    the date part as int YYYYMMDD per record, 0 when missing). The usual shapes
    'yyyy-MM-dd[ HH:mm:ss]' are checked by pyarrow kernels; any other text once per distinct value
    in Python, with `parse_claim`'s own rules."""
    t = arr.type
    if pa.types.is_timestamp(t):
        arr = pc.strftime(arr, format="%Y-%m-%d %H:%M:%S")
    elif pa.types.is_date(t):
        arr = pc.strftime(arr, format="%Y-%m-%d")
    else:
        vt = t.value_type if pa.types.is_dictionary(t) else t
        if pa.types.is_null(vt):
            return (Cat(np.full(len(arr), -1, dtype=np.int32), dictionary=pa.array([], pa.string())),
                    np.zeros(len(arr), np.int64))
        if not (pa.types.is_string(vt) or pa.types.is_large_string(vt)):
            _type_error(where, spec, t, errs)
            return None
    cat = to_cat(arr, strip=False)
    n = cat.n_cats()
    ints = np.zeros(n + 1, dtype=np.int64)
    if not n:
        return cat, ints[cat.codes]
    raw = cat.dictionary
    ok, val = _fast_dates(raw)
    ints[:n] = np.where(ok, val, 0)
    bad: dict[int, str] = {}
    for i in np.flatnonzero(~ok):  # unusual shapes and errors: parse_claim's rules, once per distinct value
        rawv = raw[int(i)].as_py()
        sv = rawv.strip()
        d = sv[:10]
        rest = sv[10:]
        try:
            if not _DT_RE.match(sv):
                raise ValueError
            parsed = dt.date.fromisoformat(d)
            if rest and not (rest[0] in " T" and _time_ok(rest[1:])):
                raise ValueError
        except ValueError:
            bad[int(i)] = f"'{rawv}' is not a date yyyy-MM-dd" + ("[ HH:mm:ss]" if spec.kind == "datetime" else "")
            continue
        if not 1900 <= parsed.year <= 2200:
            bad[int(i)] = f"'{rawv}' is not a plausible date"
            continue
        ints[i] = parsed.year * 10000 + parsed.month * 100 + parsed.day
    if bad:
        mask = np.zeros(n + 1, dtype=bool)
        mask[list(bad)] = True
        rows = np.flatnonzero(mask[cat.codes])
        for i in rows[:3]:
            errs.add(where.problem(int(i), spec.name, "E-BATCH-VALUE", f"'{spec.name}' {bad[int(cat.codes[i])]}"))
        errs.more += max(0, len(rows) - 3)
    return cat, ints[cat.codes]


_DIM = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _fast_dates(d: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """'yyyy-MM-dd' and 'yyyy-MM-dd HH:mm:ss' checked on the bytes themselves: (ok, YYYYMMDD).

    A value of another shape (a 'T', fractions of a second, spaces around it …) is not ok here and
    goes through `parse_claim`'s rules one by one; so does anything out of range (years 1900–2200,
    the claim reader's)."""
    if len(d) == 0 or d.null_count:
        return np.zeros(len(d), dtype=bool), np.zeros(len(d), dtype=np.int64)
    ok, ymd, _ = _fast_times(d, years=(1900, 2200))
    return ok, ymd


def _time_keys(d: pa.Array) -> np.ndarray | None:
    """Integers that sort as the texts do, when every value is 'yyyy-MM-dd[ HH:mm:ss]' (else None)."""
    n = len(d)
    if n == 0 or d.null_count:
        return None
    offs = np.frombuffer(d.buffers()[1], dtype=np.int32)[d.offset:d.offset + n + 1].astype(np.int64)
    lens = np.diff(offs)
    if not np.all((lens == 10) | (lens == 19)):
        return None
    data = np.frombuffer(d.buffers()[2], dtype=np.uint8)
    key = np.zeros(n, dtype=np.int64)
    for L, pos in ((10, [0, 1, 2, 3, 5, 6, 8, 9]), (19, [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18])):
        idx = np.flatnonzero(lens == L)
        if not len(idx):
            continue
        mat = data[offs[idx][:, None] + np.arange(L)]
        if not (np.all((mat[:, pos] >= 48) & (mat[:, pos] <= 57)) and np.all(mat[:, 4] == 45) and np.all(mat[:, 7] == 45)
                and (L == 10 or (np.all(mat[:, 10] == 32) and np.all(mat[:, 13] == 58) and np.all(mat[:, 16] == 58)))):
            return None
        v = np.zeros(len(idx), dtype=np.int64)
        for p in pos:
            v = v * 10 + (mat[:, p].astype(np.int64) - 48)
        key[idx] = v * 10**7 if L == 10 else (v // 10**6) * 10**7 + 1 + v % 10**6
    return key


def _time_ok(t: str) -> bool:
    try:
        dt.time.fromisoformat(t)
        return True
    except ValueError:
        return False


def _int_column(arr, spec: ColSpec, where: _Where, errs: _Collector) -> Num | None:
    n = len(arr)
    vals = np.zeros(n, dtype=np.int64)
    present = np.zeros(n, dtype=bool)
    pos = 0
    for c in _chunks(arr):
        m = len(c)
        sl = slice(pos, pos + m)
        pos += m
        if pa.types.is_dictionary(c.type):
            c = c.dictionary_decode()
        ct = c.type
        if pa.types.is_null(ct):
            continue
        ok = ~c.is_null().to_numpy(zero_copy_only=False)
        if pa.types.is_integer(ct):
            v = c.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        elif pa.types.is_floating(ct):
            x = c.fill_null(0).to_numpy(zero_copy_only=False).astype(np.float64)
            ok &= ~np.isnan(x)
            frac = ok & (~np.isfinite(x) | (np.where(np.isfinite(x), x, 0) != np.rint(np.where(np.isfinite(x), x, 0))))
            if frac.any():
                _bad_rows(where, spec, sl, frac, "E-BATCH-TYPE", "must be a whole number", errs)
            v = np.where(ok & ~frac, np.where(np.isfinite(x), x, 0), 0).astype(np.int64)
            ok &= ~frac
        elif pa.types.is_string(ct) or pa.types.is_large_string(ct):
            s = pc.utf8_trim_whitespace(c)
            good = pc.match_substring_regex(s, r"^\d{1,9}$").fill_null(False).to_numpy(zero_copy_only=False)
            empty = pc.utf8_length(s).fill_null(0).to_numpy(zero_copy_only=False) == 0
            ok &= ~empty
            bad = ok & ~good
            if bad.any():
                _bad_rows(where, spec, sl, bad, "E-BATCH-TYPE", "must be a whole number", errs,
                          probe=lambda i: repr(s[i].as_py()))
            ok &= good
            v = np.zeros(m, dtype=np.int64)
            if ok.any():
                v[ok] = pc.cast(pc.filter(s, pa.array(ok)), pa.int64()).to_numpy(zero_copy_only=False)
        else:
            _type_error(where, spec, ct, errs)
            return None
        vals[sl] = v
        present[sl] = ok
    return Num(vals, present)


# ------------------------------------------------------------------ a partition as arrays


@dataclass
class Block:
    """One partition, checked and converted, claims in settlement order (person, setl_time, row).

    Lines are sorted by claim; `line_start[i]:line_start[i+1]` are claim i's lines.
    """

    n: int
    partition: int | None
    claims_name: str
    lines_name: str
    row: np.ndarray                    # source row of each claim
    person: np.ndarray                 # 0..P-1, contiguous runs
    person_start: np.ndarray           # first claim of each person (P+1 offsets)
    mdtrt_id: Cat
    psn_no: Cat
    setl_time: Cat                     # raw text, as given
    setl_date: np.ndarray              # int YYYYMMDD
    adm_date: np.ndarray               # int YYYYMMDD, 0 when missing
    begntime: Cat
    year: np.ndarray                   # int, from setl_time[:4] (as settle_sequence does)
    codes: dict[str, Cat]              # the code columns: insuplc_admdvs, med_type …
    age: np.ndarray
    balc: Num
    diag_owner: np.ndarray             # claim of each diagnosis
    diag: Cat                          # upper-cased codes
    accumulators: dict[int, dict]      # claim → stated year-to-date values (raw JSON values)
    text: dict[str, Any]               # pass-through columns (pyarrow arrays in claim order)
    # lines
    m: int
    line_row: np.ndarray
    line_claim: np.ndarray
    line_start: np.ndarray
    feedetl_sn: Cat
    med_list_codg: Cat
    medins_list_codg: Cat
    hosp_appr_flag: Cat
    cnt: np.ndarray
    pric: np.ndarray
    amount: np.ndarray
    prd_days: np.ndarray               # float, NaN when missing (the per-claim fact is days / 1.0)
    prd_present: np.ndarray
    line_text: dict[str, Any]
    problems: list[InputProblem] = field(default_factory=list)
    # fee_ocur_time as the audit places it (audit/lines.py parse_time): the day's proleptic ordinal
    # and seconds (day × 86400 + clock time), -1 where the line has none / no clock time
    fee_day: np.ndarray | None = None
    fee_t: np.ndarray | None = None

    def claim_where(self) -> _Where:
        return _Where(self.claims_name, self.row, self.partition, self.mdtrt_id)


def _rows_of(tbl: pa.Table, offset: int) -> np.ndarray:
    if ROW in tbl.column_names:
        return tbl.column(ROW).to_numpy(zero_copy_only=False).astype(np.int64)
    return np.arange(offset, offset + tbl.num_rows, dtype=np.int64)


def _unknown_columns(tbl: pa.Table, specs: dict[str, ColSpec], name: str, part: int | None, errs: _Collector,
                     other: Iterable[str] = ()) -> None:
    for c in tbl.column_names:
        if c == ROW or c in specs:
            continue
        hint = did_you_mean(c, list(specs))
        if c in other:
            hint = f"'{c}' belongs to the other table"
        elif c in ("diseinfo", "feedetail"):
            hint = ("diagnoses go in 'diag_code' ('J18.900;I10.x00')" if c == "diseinfo"
                    else "fee lines go in the feedetail table")
        errs.add(InputProblem(name, c, None, "E-BATCH-COLUMN", f"unknown column '{c}'" + (f" — {hint}" if hint else ""),
                              part))


def _missing_columns(tbl: pa.Table, specs: dict[str, ColSpec], name: str, part: int | None, errs: _Collector) -> None:
    for s in specs.values():
        if s.required and s.name not in tbl.column_names:
            errs.add(InputProblem(name, s.name, None, "E-BATCH-COLUMN",
                                  f"required column '{s.name}' is missing ({s.doc})", part))


def build_block(claims: pa.Table, lines: pa.Table, *, partition: int | None = None, claims_name: str = "claims",
                lines_name: str = "feedetail", claims_offset: int = 0, lines_offset: int = 0) -> Block:
    """Check and convert one partition. Raises BatchInputError listing every problem found, located."""
    errs = _Collector()
    _unknown_columns(claims, CLAIM_SPECS, claims_name, partition, errs, other=LINE_SPECS)
    _unknown_columns(lines, LINE_SPECS, lines_name, partition, errs, other=CLAIM_SPECS)
    _missing_columns(claims, CLAIM_SPECS, claims_name, partition, errs)
    _missing_columns(lines, LINE_SPECS, lines_name, partition, errs)
    if "med_list_codg" not in lines.column_names and "medins_list_codg" not in lines.column_names:
        errs.add(InputProblem(lines_name, "med_list_codg", None, "E-BATCH-COLUMN",
                              "a fee line needs 'med_list_codg' (or 'medins_list_codg')", partition))
    if "age" not in claims.column_names and "brdy" not in claims.column_names:
        errs.add(InputProblem(claims_name, "age", None, "E-BATCH-COLUMN", "give column 'age' or 'brdy' (birth date)",
                              partition))
    errs.raise_if_any()

    n = claims.num_rows
    rows = _rows_of(claims, claims_offset)
    w = _Where(claims_name, rows, partition)
    ids = _code_column(claims.column("mdtrt_id"), CLAIM_SPECS["mdtrt_id"], w, errs)
    if ids is not None:
        w.ids = ids
        miss = np.flatnonzero(ids.codes < 0)
        for i in miss[:3]:
            errs.add(w.problem(int(i), "mdtrt_id", "E-BATCH-MISSING", "'mdtrt_id' is required (fee lines refer to it)"))
        errs.more += max(0, len(miss) - 3)
        counts = np.bincount(ids.codes[ids.codes >= 0], minlength=ids.n_cats())
        for c in np.flatnonzero(counts > 1)[:3]:
            at = np.flatnonzero(ids.codes == c)
            errs.add(w.problem(int(at[1]), "mdtrt_id", "E-BATCH-DUPLICATE",
                               f"mdtrt_id '{ids.dictionary[int(c)].as_py()}' repeats row {int(rows[at[0]]) + 1:,}"))

    def col(name: str):
        return claims.column(name) if name in claims.column_names else pa.nulls(n, pa.string())

    codes: dict[str, Cat] = {}
    for name in ("insuplc_admdvs", "mdtrtarea_admvs", "insutype", "med_type", "hosp_lv", "gend", "psn_type",
                 "insutype_retr_flag", "cvlserv_flag", "community_flag", "acct_used_flag", "filing_type",
                 "dise_codg", "icd_edition", "psn_no"):
        spec = CLAIM_SPECS[name]
        cat = _code_column(col(name), spec, w, errs)
        if cat is None:
            continue
        codes[name] = cat
        if spec.required:
            miss = np.flatnonzero(cat.codes < 0)
            for i in miss[:3]:
                errs.add(w.problem(int(i), name, "E-BATCH-MISSING", f"'{name}' is required"))
            errs.more += max(0, len(miss) - 3)
    st = _datetime_column(col("setl_time"), CLAIM_SPECS["setl_time"], w, errs)
    if st is not None:
        miss = np.flatnonzero(st[0].codes < 0)
        for i in miss[:3]:
            errs.add(w.problem(int(i), "setl_time", "E-BATCH-MISSING", "'setl_time' is required"))
    bt = _datetime_column(col("begntime"), CLAIM_SPECS["begntime"], w, errs)
    _datetime_column(col("endtime"), CLAIM_SPECS["endtime"], w, errs)
    by = _datetime_column(col("brdy"), CLAIM_SPECS["brdy"], w, errs)
    agen = _int_column(col("age"), CLAIM_SPECS["age"], w, errs)
    balc = to_scaled(col("balc"), CLAIM_SPECS["balc"], w, errs)
    diag_owner, diag = _diagnoses(col("diag_code"), w, errs)
    accs = _accumulators(col("accumulators"), w, errs)
    errs.raise_if_any()

    setl_cat, setl_date = st
    # age: given, else from the birth date on the settlement date (as parse_claim does)
    age = agen.values.copy()
    if (agen.present & ((age < 0) | (age > 150))).any():
        for i in np.flatnonzero(agen.present & ((age < 0) | (age > 150)))[:3]:
            errs.add(w.problem(int(i), "age", "E-BATCH-VALUE", f"'age' {age[i]} is not a plausible age"))
    need = ~agen.present
    if need.any():
        bcat, bint = by
        has_b = need & (bint > 0)
        nob = np.flatnonzero(need & ~(bint > 0))
        for i in nob[:3]:
            errs.add(w.problem(int(i), "age", "E-BATCH-MISSING", "give 'age' or 'brdy' (birth date)"))
        errs.more += max(0, len(nob) - 3)
        if has_b.any():
            b, s = bint[has_b], setl_date[has_b]
            a = s // 10000 - b // 10000 - ((s % 10000) < (b % 10000)).astype(np.int64)
            after = b > s
            a_full = np.zeros(n, dtype=np.int64)
            a_full[has_b] = a
            for i in np.flatnonzero(has_b)[np.flatnonzero(after)][:3]:
                errs.add(w.problem(int(i), "brdy", "E-BATCH-VALUE", "birth date is after the settlement date"))
            for i in np.flatnonzero(has_b)[np.flatnonzero(~after & (a > 150))][:3]:
                errs.add(w.problem(int(i), "brdy", "E-BATCH-VALUE", "birth date gives an implausible age"))
            age = np.where(has_b, a_full, age)
    errs.raise_if_any()

    # ------------------------------------------------------------ settlement order
    psn = codes["psn_no"]
    # rank persons by their psn_no text; a claim without psn_no is a person of its own
    np_ = psn.n_cats()
    rank_of_cat = _ranks(psn)
    pkey = np.where(psn.codes >= 0, rank_of_cat[np.maximum(psn.codes, 0)] if np_ else 0, np_ + np.arange(n))
    tkey = _time_keys(setl_cat.dictionary)
    strank = (tkey if tkey is not None else _ranks(setl_cat))[setl_cat.codes]
    if n < 2**21 and np_ + n < 2**21 and (rows.max(initial=0) - rows.min(initial=0) < 2**21):
        if tkey is not None:
            strank = np.argsort(np.argsort(tkey, kind="stable"), kind="stable")[setl_cat.codes]
        key = (pkey.astype(np.int64) << 42) | (strank.astype(np.int64) << 21) | (rows - rows.min(initial=0))
        order = np.arange(n) if bool(np.all(key[1:] > key[:-1])) else np.argsort(key, kind="stable")
    else:
        order = np.lexsort((rows, strank, pkey))
    pk = pkey[order]
    newp = np.ones(n, dtype=bool)
    newp[1:] = pk[1:] != pk[:-1]
    person = np.cumsum(newp) - 1
    person_start = np.append(np.flatnonzero(newp), n)
    y4 = pc.utf8_slice_codeunits(setl_cat.dictionary, 0, 4)
    y4ok = pc.match_substring_regex(y4, r"^\d{4}$")
    year = pc.cast(pc.if_else(y4ok, y4, pa.scalar("-1")), pa.int64()).to_numpy(zero_copy_only=False)[setl_cat.codes] \
        if setl_cat.n_cats() else np.zeros(n, dtype=np.int64)

    def ordc(c: Cat) -> Cat:
        return c.take(order)

    inv = np.empty(n, dtype=np.int64)
    inv[order] = np.arange(n)
    diag_owner = inv[diag_owner] if len(diag_owner) else diag_owner
    if len(diag_owner):
        dord = np.argsort(diag_owner, kind="stable")
        diag_owner, diag = diag_owner[dord], diag.take(dord)
    accs = {int(inv[k]): v for k, v in accs.items()}
    adm_date = bt[1][order] if bt is not None else np.zeros(n, dtype=np.int64)
    text = {c: claims.column(c).take(pa.array(order)) for c in claims.column_names
            if c in CLAIM_SPECS and CLAIM_SPECS[c].kind == "text"}

    # ------------------------------------------------------------ lines
    m = lines.num_rows
    lrows = _rows_of(lines, lines_offset)
    lw = _Where(lines_name, lrows, partition)
    file_claim = _runs_join(lines.column("mdtrt_id"), claims.column("mdtrt_id"), n) if n else None
    if file_claim is not None:  # lines grouped by claim in the claims' order: no hashing of a million ids
        lids = Cat(ids.codes[file_claim], ids._cats, ids._dict)
    else:
        lids = _code_column(lines.column("mdtrt_id"), LINE_SPECS["mdtrt_id"], lw, errs)
    errs.raise_if_any()
    lw.ids = lids

    def lcol(name: str):
        return lines.column(name) if name in lines.column_names else pa.nulls(m, pa.string())

    sn = _code_column(lcol("feedetl_sn"), LINE_SPECS["feedetl_sn"], lw, errs)
    code = _code_column(lcol("med_list_codg"), LINE_SPECS["med_list_codg"], lw, errs)
    local = _code_column(lcol("medins_list_codg"), LINE_SPECS["medins_list_codg"], lw, errs)
    appr = _code_column(lcol("hosp_appr_flag"), LINE_SPECS["hosp_appr_flag"], lw, errs)
    cnt = to_scaled(lcol("cnt"), LINE_SPECS["cnt"], lw, errs)
    pric = to_scaled(lcol("pric"), LINE_SPECS["pric"], lw, errs)
    amt = to_scaled(lcol("det_item_fee_sumamt"), LINE_SPECS["det_item_fee_sumamt"], lw, errs)
    days = to_scaled(lcol("prd_days"), LINE_SPECS["prd_days"], lw, errs)
    errs.raise_if_any()
    for name, num in (("cnt", cnt), ("pric", pric), ("det_item_fee_sumamt", amt)):
        miss = np.flatnonzero(~num.present)
        for i in miss[:3]:
            errs.add(lw.problem(int(i), name, "E-BATCH-MISSING", f"'{name}' is required"))
        errs.more += max(0, len(miss) - 3)
    miss = np.flatnonzero(sn.codes < 0)
    for i in miss[:3]:
        errs.add(lw.problem(int(i), "feedetl_sn", "E-BATCH-MISSING", "'feedetl_sn' (费用明细流水号) is required"))
    errs.more += max(0, len(miss) - 3)
    nocode = np.flatnonzero((code.codes < 0) & (local.codes < 0))
    for i in nocode[:3]:
        errs.add(lw.problem(int(i), "med_list_codg", "E-BATCH-MISSING",
                            "a fee line needs 'med_list_codg' (or 'medins_list_codg' with a code map)"))
    errs.more += max(0, len(nocode) - 3)
    # amount = cnt × pric within one fen (as parse_claim checks)
    _check_amounts(cnt.values, pric.values, amt.values, cnt.present & pric.present & amt.present, lw, errs)
    errs.raise_if_any()

    # lines → claims (by mdtrt_id), in claim order
    claim_of_idcat = np.full(ids.n_cats() + 1, -1, dtype=np.int64)
    ok_ids = ids.codes >= 0
    claim_of_idcat[ids.codes[ok_ids]] = inv[np.flatnonzero(ok_ids)]
    if file_claim is not None:
        line_claim = inv[file_claim]
    else:
        lc = lids.remap_to(ids)                       # a hash join on the distinct ids, in pyarrow
        line_claim = claim_of_idcat[lc]
    orphan = np.flatnonzero(line_claim < 0)
    for i in orphan[:3]:
        v = lids.value(int(i))
        errs.add(lw.problem(int(i), "mdtrt_id", "E-BATCH-ORPHAN",
                            f"mdtrt_id '{v}' has no claim" + (" in this partition (a person's claims and lines "
                                                               "must share a partition; use --repartition)"
                                                               if partition is not None else "")
                            if v is not None else "'mdtrt_id' is required"))
    errs.more += max(0, len(orphan) - 3)
    errs.raise_if_any()
    if m and bool(np.all(line_claim[1:] >= line_claim[:-1])) and bool(np.all(lrows[1:] > lrows[:-1])):
        lorder = np.arange(m)  # already in claim order
    else:
        lorder = np.lexsort((lrows, line_claim))
    line_claim = line_claim[lorder]
    counts = np.bincount(line_claim, minlength=n)
    line_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    empty = np.flatnonzero(counts == 0)
    cw = _Where(claims_name, rows[order], partition, ordc(ids))
    for i in empty[:3]:
        errs.add(cw.problem(int(i), None, "E-BATCH-NO-LINES", "the claim has no fee lines in the feedetail table"))
    errs.more += max(0, len(empty) - 3)
    for i in np.flatnonzero(counts > MAX_LINES)[:3]:
        errs.add(cw.problem(int(i), None, "E-BATCH-VALUE", f"{counts[i]:,} fee lines; at most {MAX_LINES:,} per claim"))
    # feedetl_sn unique within a claim
    sn_s = sn.codes[lorder]
    nsn = sn.n_cats() + 1
    same_claim = line_claim[1:] == line_claim[:-1]
    if m < 2 or bool(np.all(~same_claim | (sn_s[1:] > sn_s[:-1]))):
        dup = np.zeros(0, dtype=np.int64)   # within every claim the codes increase: no repeats
    elif n * nsn <= 4_000_000:  # a count per (claim, sn): no sort
        key = line_claim * nsn + sn_s
        cnts = np.bincount(key, minlength=n * nsn)
        dup_keys = np.flatnonzero(cnts > 1)
        if len(dup_keys):
            key_order = np.argsort(key, kind="stable")
            k1, k2 = line_claim[key_order], sn_s[key_order]
            dup = np.flatnonzero((k1[1:] == k1[:-1]) & (k2[1:] == k2[:-1]))
        else:
            dup = np.zeros(0, dtype=np.int64)
    else:
        key_order = np.lexsort((sn_s, line_claim))
        k1, k2 = line_claim[key_order], sn_s[key_order]
        dup = np.flatnonzero((k1[1:] == k1[:-1]) & (k2[1:] == k2[:-1]))
    lw2 = _Where(lines_name, lrows[lorder], partition, lids.take(lorder))
    for j in dup[:3]:
        i = int(key_order[j + 1])
        errs.add(lw2.problem(i, "feedetl_sn", "E-BATCH-DUPLICATE-SN",
                             f"feedetl_sn '{sn.dictionary[int(sn_s[i])].as_py()}' repeats row {int(lrows[lorder][key_order[j]]) + 1:,} of "
                             "the same claim (must be unique within the visit)"))
    errs.raise_if_any()
    ident = m == 0 or (lorder[0] == 0 and lorder[-1] == m - 1 and bool(np.all(np.diff(lorder) == 1)))
    if ident:
        lorder = slice(None)
    line_text = {c: lines.column(c) if ident else lines.column(c).take(pa.array(lorder)) for c in lines.column_names
                 if c in LINE_SPECS and LINE_SPECS[c].kind == "text"}
    prd = np.full(m, np.nan) if not days.present.any() else np.where(days.present, days.values / 10_000, np.nan)
    fee_day, fee_t = fee_times(line_text.get("fee_ocur_time"), m, lw2, errs)
    errs.raise_if_any()
    return Block(
        n=n, partition=partition, claims_name=claims_name, lines_name=lines_name, row=rows[order], person=person,
        person_start=person_start, mdtrt_id=ordc(ids), psn_no=ordc(psn), setl_time=ordc(setl_cat),
        setl_date=setl_date[order], adm_date=adm_date,
        begntime=ordc(bt[0]) if bt is not None else Cat(np.full(n, -1, np.int32), dictionary=pa.array([], pa.string())),
        year=year[order], codes={k: ordc(v) for k, v in codes.items() if k != "psn_no"}, age=age[order],
        balc=Num(balc.values[order], balc.present[order]), diag_owner=diag_owner, diag=diag, accumulators=accs,
        text=text, m=m, line_row=lrows[lorder], line_claim=line_claim, line_start=line_start,
        feedetl_sn=sn.take(lorder), med_list_codg=code.take(lorder), medins_list_codg=local.take(lorder),
        hosp_appr_flag=appr.take(lorder), cnt=cnt.values[lorder], pric=pric.values[lorder],
        amount=amt.values[lorder], prd_days=prd[lorder],
        prd_present=days.present[lorder], line_text=line_text, fee_day=fee_day, fee_t=fee_t)


_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def ordinals(yyyymmdd: np.ndarray) -> np.ndarray:
    """int YYYYMMDD (valid dates) → proleptic ordinals, as `date.toordinal()` gives them."""
    v = np.asarray(yyyymmdd, dtype=np.int64)
    months = (v // 10000 - 1970) * 12 + (v // 100 % 100 - 1)
    days = months.astype("datetime64[M]").astype("datetime64[D]") + (v % 100 - 1)
    return days.astype(np.int64) + _EPOCH_ORDINAL


def fee_times(arr, m: int, where: "_Where", errs: _Collector) -> tuple[np.ndarray, np.ndarray]:
    """`fee_ocur_time` placed in time exactly as the audit does (`audit.lines.parse_time` on the
    text the per-claim path receives): (day ordinal, seconds), -1 where absent. A value that is not a
    time is an input error here, as `parse_claim` refuses it — never a line silently left undated.

    The interface's own shapes (`yyyy-MM-dd`, `yyyy-MM-dd HH:mm:ss`, ASCII digits) are read from the
    bytes of the distinct values; any other text goes through `parse_time` itself, once per value."""
    day = np.full(m, -1, dtype=np.int64)
    secs = np.full(m, -1, dtype=np.int64)
    if arr is None or m == 0 or arr.null_count == len(arr):
        return day, secs
    from ..audit.lines import parse_time
    t = arr.type
    vt = t.value_type if pa.types.is_dictionary(t) else t
    if pa.types.is_string(vt) or pa.types.is_large_string(vt):
        cat = to_cat(arr, strip=False)
        d = cat.dictionary
        k = len(d)
        dd = np.full(k + 1, -1, dtype=np.int64)
        ts = np.full(k + 1, -1, dtype=np.int64)
        fast = np.zeros(k, dtype=bool)
        if k and not d.null_count:
            fast, ymd, clock = _fast_times(d)
            if fast.any():
                dd[:k][fast] = ordinals(ymd[fast])
                ts[:k] = np.where(fast & (clock >= 0), dd[:k] * 86400 + clock, -1)
        texts = None
        for i in np.flatnonzero(~fast):
            if texts is None:
                texts = d.to_pylist()
            a, b = parse_time(texts[i])
            dd[i] = -2 if a is None else a      # -2: present but not a time
            ts[i] = -1 if b is None else b
        codes = cat.codes
    else:  # a timestamp / date column: the per-claim path receives str() of the value (claim_dicts)
        enc = pc.dictionary_encode(arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr)
        vals = enc.dictionary.to_pylist()
        k = len(vals)
        dd = np.full(k + 1, -1, dtype=np.int64)
        ts = np.full(k + 1, -1, dtype=np.int64)
        for i, v in enumerate(vals):
            a, b = parse_time(v if isinstance(v, str) else str(v))
            dd[i] = -2 if a is None else a
            ts[i] = -1 if b is None else b
        codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    day = dd[codes]
    secs = ts[codes]
    bad = np.flatnonzero(day == -2)
    if len(bad):
        for j in bad[:3]:
            v = arr[int(j)].as_py()
            errs.add(where.problem(int(j), "fee_ocur_time", "E-BATCH-VALUE",
                                   f"'fee_ocur_time' '{v}' is not a time yyyy-MM-dd[ HH:mm:ss]"))
        errs.more += max(0, len(bad) - 3)
        day[bad] = -1
    return day, secs


def _fast_times(d: pa.Array, years: tuple[int, int] = (1, 9999)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ok, YYYYMMDD, seconds of the day or -1) of 'yyyy-MM-dd' / 'yyyy-MM-dd HH:mm:ss' in ASCII
    digits — exactly the values `parse_time` reads the same way; anything else is not ok here."""
    n = len(d)
    ok = np.zeros(n, dtype=bool)
    ymd = np.zeros(n, dtype=np.int64)
    clock = np.full(n, -1, dtype=np.int64)
    offs = np.frombuffer(d.buffers()[1], dtype=np.int32)[d.offset:d.offset + n + 1].astype(np.int64)
    data = np.frombuffer(d.buffers()[2], dtype=np.uint8) if d.buffers()[2] is not None else np.zeros(0, np.uint8)
    lens = np.diff(offs)
    for L in (10, 19):
        idx = np.flatnonzero(lens == L)
        if not len(idx):
            continue
        mat = data[offs[idx][:, None] + np.arange(L)].astype(np.int64) - 48
        dig = [0, 1, 2, 3, 5, 6, 8, 9] + ([11, 12, 14, 15, 17, 18] if L == 19 else [])
        good = ((mat[:, dig] >= 0) & (mat[:, dig] <= 9)).all(axis=1)
        good &= (mat[:, 4] == ord("-") - 48) & (mat[:, 7] == ord("-") - 48)
        y = mat[:, 0] * 1000 + mat[:, 1] * 100 + mat[:, 2] * 10 + mat[:, 3]
        mo = mat[:, 5] * 10 + mat[:, 6]
        dy = mat[:, 8] * 10 + mat[:, 9]
        leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
        dim = _DIM[np.clip(mo, 0, 12)] + ((mo == 2) & leap)
        good &= (mo >= 1) & (mo <= 12) & (dy >= 1) & (dy <= dim) & (y >= years[0]) & (y <= years[1])
        if L == 19:
            hh, mi, ss = mat[:, 11] * 10 + mat[:, 12], mat[:, 14] * 10 + mat[:, 15], mat[:, 17] * 10 + mat[:, 18]
            good &= (mat[:, 10] == ord(" ") - 48) & (mat[:, 13] == ord(":") - 48) & (mat[:, 16] == ord(":") - 48)
            good &= (hh < 24) & (mi < 60) & (ss < 60)
            clock[idx] = np.where(good, hh * 3600 + mi * 60 + ss, -1)
        ok[idx] = good
        ymd[idx] = np.where(good, y * 10000 + mo * 100 + dy, 0)
    return ok, ymd, clock


def _runs_join(line_ids, claim_ids, n: int) -> np.ndarray | None:
    """When the fee lines come grouped by claim, in the claims table's own order (as written by the
    generator and most exports), the claim of each line is its run number: found by comparing
    neighbours, without hashing. None when the shape is different (then a hash join is used)."""
    try:
        li = _as_strings(line_ids).combine_chunks()
        ci = _as_strings(claim_ids).combine_chunks()
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    m = len(li)
    if m == 0 or li.null_count or ci.null_count or len(ci) != n:
        return None
    change = pc.not_equal(li.slice(1), li.slice(0, m - 1)).to_numpy(zero_copy_only=False) if m > 1 else \
        np.zeros(0, dtype=bool)
    starts = np.concatenate([[0], np.flatnonzero(change) + 1])
    if len(starts) != n:
        return None
    if not pc.all(pc.equal(li.take(pa.array(starts)), ci)).as_py():
        return None
    return np.repeat(np.arange(n, dtype=np.int64), np.diff(np.append(starts, m)))


def _check_amounts(cnt: np.ndarray, pric: np.ndarray, amt: np.ndarray, ok: np.ndarray, where: _Where,
                   errs: _Collector) -> None:
    """|cnt × pric − amount| ≤ 1 fen, in exact integers (1e-10 yuan); Python ints where int64 could overflow."""
    safe = ok & (np.abs(cnt) < 2**31) & (np.abs(pric) < 2**31) & (np.abs(amt) < 2**35)
    gap = np.abs(cnt * pric - amt * 10**8)
    bad = safe & (gap > 10**8)
    big = np.flatnonzero(ok & ~safe)
    for i in big:
        if abs(int(cnt[i]) * int(pric[i]) - int(amt[i]) * 10**8) > 10**8:
            bad[i] = True
    idx = np.flatnonzero(bad)
    for i in idx[:3]:
        exact = Decimal(int(cnt[i]) * int(pric[i])).scaleb(-10).normalize()
        errs.add(where.problem(int(i), "det_item_fee_sumamt", "E-BATCH-AMOUNT",
                               f"det_item_fee_sumamt {Decimal(int(amt[i])).scaleb(-2)} ≠ cnt × pric = {exact:f} "
                               "(allowed gap 0.01)"))
    errs.more += max(0, len(idx) - 3)


def _diagnoses(arr, where: _Where, errs: _Collector) -> tuple[np.ndarray, Cat]:
    """diag_code: 'A;B' text or a list column → (owner record, upper-cased codes)."""
    t = arr.type
    n = len(arr)
    spec = CLAIM_SPECS["diag_code"]
    if pa.types.is_null(t):
        return np.zeros(0, dtype=np.int64), Cat(np.zeros(0, dtype=np.int32), np.array([], dtype=object))
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        lst = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        lst = pc.split_pattern(_as_strings(arr).combine_chunks(), ";")
    else:
        _type_error(where, spec, t, errs)
        return np.zeros(0, dtype=np.int64), Cat(np.zeros(0, dtype=np.int32), np.array([], dtype=object))
    lens = pc.list_value_length(lst).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    owner = np.repeat(np.arange(n, dtype=np.int64), lens)
    flat = pc.list_flatten(lst)
    cat = to_cat(flat, upper=True)
    # empty pieces ("A;;B", a trailing ';') are not diagnoses
    keep = np.ones(len(cat.codes), dtype=bool)
    if len(cat.cats):
        empty_cat = np.flatnonzero(cat.cats == "")
        if len(empty_cat):
            keep &= cat.codes != empty_cat[0]
    keep &= cat.codes >= 0
    owner, cat = owner[keep], cat.take(np.flatnonzero(keep))
    for i, v in enumerate(cat.cats):
        if len(v) > 30 and (cat.codes == i).any():
            at = int(owner[np.flatnonzero(cat.codes == i)[0]])
            errs.add(where.problem(at, "diag_code", "E-BATCH-VALUE", f"'diag_code' '{v}' must be 1–30 characters"))
    return owner, cat


def _accumulators(arr, where: _Where, errs: _Collector) -> dict[int, dict]:
    """The optional JSON column of stated year-to-date values; only non-empty cells are parsed."""
    t = arr.type
    out: dict[int, dict] = {}
    if pa.types.is_null(t):
        return out
    if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t)):
        _type_error(where, CLAIM_SPECS["accumulators"], t, errs)
        return out
    s = _as_strings(arr).combine_chunks()
    valid = ~s.is_null().to_numpy(zero_copy_only=False)
    for i in np.flatnonzero(valid):
        txt = s[int(i)].as_py().strip()
        if not txt:
            continue
        try:
            v = json.loads(txt, parse_float=Decimal)
        except ValueError as e:
            errs.add(where.problem(int(i), "accumulators", "E-BATCH-VALUE", f"not valid JSON: {e}"))
            continue
        if not isinstance(v, dict):
            errs.add(where.problem(int(i), "accumulators", "E-BATCH-VALUE", "must be a JSON object {\"id\": value}"))
            continue
        out[int(i)] = v
    return out


# ------------------------------------------------------------------ back to claim dicts (per-claim path)


def _dec(v: int, places: int) -> Decimal:
    return Decimal(int(v)).scaleb(-places)


def claim_dicts(b: Block, idx: Iterable[int]) -> list[dict]:
    """The claims `idx` (block order) as the per-claim path's JSON dicts — built from the converted,
    checked values, so both paths read identical inputs."""
    out = []
    for i in idx:
        i = int(i)
        d: dict[str, Any] = {}
        for name, cat in b.codes.items():
            v = cat.value(i)
            if v is not None:
                d[name] = v
        d["mdtrt_id"] = b.mdtrt_id.value(i)
        p = b.psn_no.value(i)
        if p is not None:
            d["psn_no"] = p
        d["setl_time"] = b.setl_time.value(i)
        bt = b.begntime.value(i)
        if bt is not None:
            d["begntime"] = bt
        d["age"] = int(b.age[i])
        if b.balc.present[i]:
            d["balc"] = _dec(b.balc.values[i], 2)
        lo, hi = np.searchsorted(b.diag_owner, [i, i + 1])
        if hi > lo:
            d["diseinfo"] = [{"diag_code": b.diag.cats[c]} for c in b.diag.codes[lo:hi]]
        if i in b.accumulators:
            d["accumulators"] = b.accumulators[i]
        for name, arr in b.text.items():  # pass-through text (fixmedins_code is read by code mapping)
            v = arr[i].as_py()
            if v is not None:
                d[name] = v if isinstance(v, str) else str(v)
        lines = []
        for j in range(int(b.line_start[i]), int(b.line_start[i + 1])):
            ln: dict[str, Any] = {"feedetl_sn": b.feedetl_sn.value(j)}
            c = b.med_list_codg.value(j)
            if c is not None:
                ln["med_list_codg"] = c
            c = b.medins_list_codg.value(j)
            if c is not None:
                ln["medins_list_codg"] = c
            ln["cnt"] = _dec(b.cnt[j], 4)
            ln["pric"] = _dec(b.pric[j], 6)
            ln["det_item_fee_sumamt"] = _dec(b.amount[j], 2)
            c = b.hosp_appr_flag.value(j)
            if c is not None:
                ln["hosp_appr_flag"] = c
            if b.prd_present[j]:
                ln["prd_days"] = Decimal(repr(float(b.prd_days[j])))
            for name, arr in b.line_text.items():
                v = arr[j].as_py()
                if v is not None:
                    ln[name] = v if isinstance(v, str) else str(v)
            lines.append(ln)
        d["feedetail"] = lines
        out.append(d)
    return out


# ------------------------------------------------------------------ claim dicts → tables


def tables_from_claims(claims: list[dict]) -> tuple[pa.Table, pa.Table]:
    """Claim JSON dicts (the per-claim format) → (claims, feedetail) tables of text cells, exactly.

    A claim without `mdtrt_id` gets `#<index>`; numbers become text so nothing is rounded.
    """
    crow: dict[str, list] = {}
    lrow: dict[str, list] = {}
    ccols: list[str] = []
    lcols: list[str] = []

    def put(store, cols, name, value, k):
        if name not in store:
            store[name] = [None] * k
            cols.append(name)
        store[name].append(value)

    for i, c in enumerate(claims):
        k = i
        mid = c.get("mdtrt_id") or f"#{i}"
        for name, v in c.items():
            if name in ("feedetail", "diseinfo", "accumulators", "mdtrt_id"):
                continue
            put(crow, ccols, name, _cell(v), k)
        put(crow, ccols, "mdtrt_id", str(mid), k)
        if c.get("diseinfo"):
            put(crow, ccols, "diag_code", ";".join(str(d.get("diag_code", "")) for d in c["diseinfo"]), k)
        if c.get("accumulators"):
            put(crow, ccols, "accumulators", json.dumps({a: _cell(v) for a, v in c["accumulators"].items()}), k)
        for col in ccols:
            if len(crow[col]) == k:
                crow[col].append(None)
        for ln in c.get("feedetail") or []:
            kk = len(lrow.get("mdtrt_id", []))
            for name, v in ln.items():
                if name == "mdtrt_id":
                    continue
                put(lrow, lcols, name, _cell(v), kk)
            put(lrow, lcols, "mdtrt_id", str(mid), kk)
            for col in lcols:
                if len(lrow[col]) == kk:
                    lrow[col].append(None)
    ct = pa.table({c: pa.array(crow[c], type=pa.string()) for c in ccols})
    lt = pa.table({c: pa.array(lrow[c], type=pa.string()) for c in lcols}) if lcols else pa.table(
        {"mdtrt_id": pa.array([], pa.string())})
    return ct, lt


def _cell(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, Decimal):
        return format(v, "f")
    return str(v)


# ------------------------------------------------------------------ files


@dataclass
class Source:
    """One table on disk: CSV or Parquet."""

    path: Path
    fmt: str  # csv | parquet

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class ClaimsInput:
    claims: Source
    lines: Source
    aligned: bool = False            # Parquet written partitioned by person, row groups paired
    partitions: int = 0              # row groups when aligned
    lines_total: int | None = None
    claims_total: int | None = None
    json_claims: list[dict] | None = None  # the input was claim JSON

    def describe(self) -> str:
        return f"{self.claims.path} + {self.lines.path}"


def _find(dirpath: Path, stem: str) -> Source | None:
    for ext, fmt in ((".parquet", "parquet"), (".csv", "csv")):
        p = dirpath / f"{stem}{ext}"
        if p.exists():
            return Source(p, fmt)
    return None


def read_claims_input(path: str | Path, lines: str | Path | None = None) -> ClaimsInput:
    """Where the claims are: a folder holding claims.{parquet,csv} + feedetail.{parquet,csv}, a claims
    file with its feedetail file beside it (X.claims.parquet ↔ X.feedetail.parquet) or given as
    `lines`, or a JSON file of claims (an object or a list)."""
    p = Path(path)
    if not p.exists():
        raise BatchInputError([InputProblem(str(p), None, None, "E-BATCH-FILE", "no such file or directory")])
    if p.is_file() and p.suffix.lower() in (".json", ".jsonl"):
        from .. import jsonio
        try:
            if p.suffix.lower() == ".jsonl":
                data = [jsonio.loads(x) for x in p.read_bytes().splitlines() if x.strip()]
            else:
                data = jsonio.loads(p.read_bytes())
        except ValueError as e:
            raise BatchInputError([InputProblem(p.name, None, None, "E-BATCH-JSON", f"not valid JSON: {e}")]) from None
        data = data if isinstance(data, list) else [data]
        bad = [i for i, c in enumerate(data) if not isinstance(c, dict)]
        if bad:
            raise BatchInputError([InputProblem(p.name, None, bad[0] + 1, "E-BATCH-JSON", "a claim must be a JSON object")])
        return ClaimsInput(Source(p, "json"), Source(p, "json"), json_claims=data, claims_total=len(data))
    if p.is_dir():
        c, ln = _find(p, "claims"), _find(p, "feedetail")
        if c is None or ln is None:
            missing = "claims.parquet|csv" if c is None else "feedetail.parquet|csv"
            raise BatchInputError([InputProblem(str(p), None, None, "E-BATCH-FILE",
                                                f"the folder has no {missing} (see docs/batch.md §Formats)")])
    else:
        fmt = "parquet" if p.suffix.lower() == ".parquet" else "csv" if p.suffix.lower() == ".csv" else None
        if fmt is None:
            raise BatchInputError([InputProblem(p.name, None, None, "E-BATCH-FILE",
                                                "expected a folder, a .parquet, .csv or .json file")])
        c = Source(p, fmt)
        if lines is not None:
            lp = Path(lines)
            ln = Source(lp, "parquet" if lp.suffix.lower() == ".parquet" else "csv")
        else:
            stem = p.name[: -len(p.suffix)]
            guess = stem[: -len("claims")] + "feedetail" if stem.endswith("claims") else stem + ".feedetail"
            ln = Source(p.with_name(guess + p.suffix), fmt)
        if not ln.path.exists():
            raise BatchInputError([InputProblem(str(ln.path), None, None, "E-BATCH-FILE",
                                                "the fee-line table was not found (give it with --lines)")])
    inp = ClaimsInput(c, ln)
    if c.fmt == "parquet" and ln.fmt == "parquet":
        import pyarrow.parquet as pq
        try:
            mc, ml = pq.ParquetFile(c.path).metadata, pq.ParquetFile(ln.path).metadata
        except (pa.ArrowInvalid, OSError) as e:
            raise BatchInputError([InputProblem(str(c.path), None, None, "E-BATCH-FILE", f"not a Parquet file: {e}")]) \
                from None
        inp.claims_total, inp.lines_total = mc.num_rows, ml.num_rows
        a, b = (mc.metadata or {}).get(META_KEY), (ml.metadata or {}).get(META_KEY)
        if a and b and mc.num_row_groups == ml.num_row_groups:
            try:
                ja, jb = json.loads(a), json.loads(b)
                inp.aligned = ja.get("partitioned_by") == "psn_no" and jb.get("partitioned_by") == "psn_no" and \
                    ja.get("id") == jb.get("id")
            except ValueError:
                inp.aligned = False
            inp.partitions = mc.num_row_groups if inp.aligned else 0
    return inp


def parquet_meta(dataset_id: str) -> dict[bytes, bytes]:
    """Footer metadata of a claims / feedetail pair written partitioned by person: row group k of
    one file holds exactly the lines of row group k of the other, and no person spans two groups."""
    return {META_KEY: json.dumps({"format": FORMAT_VERSION, "partitioned_by": "psn_no", "id": dataset_id}).encode()}


def read_csv_table(path: Path, columns: list[str] | None = None) -> pa.Table:
    """A whole CSV as text columns (codes keep leading zeros; empty cells are missing)."""
    import pyarrow.csv as pcsv
    try:
        head = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=1 << 16))
        names = head.schema.names
        head.close()
        tbl = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=True, null_values=[""],
            include_columns=columns))
    except pa.ArrowInvalid as e:
        raise BatchInputError([InputProblem(path.name, None, None, "E-BATCH-CSV", f"cannot read the CSV: {e}")]) \
            from None
    return tbl


def iter_csv_batches(path: Path, block_size: int = 1 << 24) -> Iterator[pa.RecordBatch]:
    import pyarrow.csv as pcsv
    try:
        head = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=1 << 16))
        names = head.schema.names
        head.close()
        reader = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=block_size),
                               convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                                   strings_can_be_null=True, null_values=[""]))
        for b in reader:
            yield b
    except pa.ArrowInvalid as e:
        raise BatchInputError([InputProblem(path.name, None, None, "E-BATCH-CSV", f"cannot read the CSV: {e}")]) \
            from None


def subset_block(b: Block, idx: np.ndarray) -> Block:
    """The claims `idx` (block order, increasing) with their lines and diagnoses, as a Block of its own."""
    idx = np.asarray(idx, dtype=np.int64)
    n = len(idx)
    newp = np.ones(n, dtype=bool)
    if n:
        newp[1:] = b.person[idx][1:] != b.person[idx][:-1]
    person = np.cumsum(newp) - 1
    counts = (b.line_start[idx + 1] - b.line_start[idx]) if n else np.zeros(0, dtype=np.int64)
    before = np.concatenate([[0], np.cumsum(counts)[:-1]]) if n else np.zeros(0, dtype=np.int64)
    lidx = (np.repeat(b.line_start[idx] - before, counts) + np.arange(int(counts.sum()))) if n else \
        np.zeros(0, dtype=np.int64)
    new_of_old = np.full(b.n, -1, dtype=np.int64)
    new_of_old[idx] = np.arange(n)
    keep_d = new_of_old[b.diag_owner] >= 0 if len(b.diag_owner) else np.zeros(0, dtype=bool)
    return Block(
        n=n, partition=b.partition, claims_name=b.claims_name, lines_name=b.lines_name, row=b.row[idx],
        person=person, person_start=np.append(np.flatnonzero(newp), n), mdtrt_id=b.mdtrt_id.take(idx),
        psn_no=b.psn_no.take(idx), setl_time=b.setl_time.take(idx), setl_date=b.setl_date[idx],
        adm_date=b.adm_date[idx], begntime=b.begntime.take(idx), year=b.year[idx],
        codes={k: v.take(idx) for k, v in b.codes.items()}, age=b.age[idx],
        balc=Num(b.balc.values[idx], b.balc.present[idx]),
        diag_owner=new_of_old[b.diag_owner[keep_d]] if len(b.diag_owner) else b.diag_owner,
        diag=b.diag.take(np.flatnonzero(keep_d)) if len(b.diag_owner) else b.diag,
        accumulators={int(new_of_old[k]): v for k, v in b.accumulators.items() if new_of_old[k] >= 0},
        text={k: v.take(pa.array(idx)) for k, v in b.text.items()}, m=len(lidx), line_row=b.line_row[lidx],
        line_claim=np.repeat(np.arange(n), counts), line_start=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        feedetl_sn=b.feedetl_sn.take(lidx), med_list_codg=b.med_list_codg.take(lidx),
        medins_list_codg=b.medins_list_codg.take(lidx), hosp_appr_flag=b.hosp_appr_flag.take(lidx),
        cnt=b.cnt[lidx], pric=b.pric[lidx], amount=b.amount[lidx], prd_days=b.prd_days[lidx],
        prd_present=b.prd_present[lidx], line_text={k: v.take(pa.array(lidx)) for k, v in b.line_text.items()},
        fee_day=b.fee_day[lidx] if b.fee_day is not None else None,
        fee_t=b.fee_t[lidx] if b.fee_t is not None else None)
