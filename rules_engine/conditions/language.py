"""The condition language of the packs: data, never code.

A condition is YAML:

    {all: [...]} | {any: [...]} | {not: cond} | {is: named}
    {fact: test, fact2: test2}          # several facts in one mapping: all must hold
    test := value | [values] | {eq|ne|lt|lte|gt|gte|between|in|not_in|prefix|icd|exists: ...}

Every fact has a declared type and scope (claim or fee line). Parsing checks the fact name,
the operator and the operand type *at load time*, with file:line:col — so that an analyst's
typo never reaches an evaluator (durable-rules only says "error code: 202"; zen skips the row).
The AST is backend-neutral: `compiled.py` turns it into Python closures for the hot path and
`durable.py` into a durable-rules ruleset used as the reference.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from ..packs.source import Document, Path_
from ..problems import Problem, did_you_mean

FactType = Literal["code", "number", "bool", "codes"]
Scope = Literal["claim", "line"]


@dataclass(frozen=True, slots=True)
class Fact:
    name: str
    type: FactType
    scope: Scope
    doc: str
    values: tuple[str, ...] = ()  # the closed set of codes, when there is one


FILING_TYPES = ("resettled_retiree", "long_term_resident", "resident_worker", "referral",
                "emergency", "other_temporary", "unfiled")

FACTS: dict[str, Fact] = {f.name: f for f in [
    Fact("insutype", "code", "claim", "险种类型 insurance type: 310 职工, 390 城乡居民 …"),
    Fact("psn_type", "code", "claim", "人员类别 person type code, as the platform's 1101 gives it"),
    Fact("insutype_retr_flag", "code", "claim", "险种离退休标志: '0' in service, '1' retired", ("0", "1")),
    Fact("cvlserv_flag", "code", "claim", "公务员标志: '0' / '1'", ("0", "1")),
    Fact("med_type", "code", "claim", "医疗类别: 11 普通门诊, 14 门诊慢特病, 21 普通住院 …"),
    Fact("age", "number", "claim", "age in whole years on the settlement date"),
    Fact("gend", "code", "claim", "性别: '1' 男, '2' 女, '9' 未说明", ("0", "1", "2", "9")),
    Fact("hosp_lv", "code", "claim", "医院等级 of the institution: '1' 一级, '2' 二级, '3' 三级, '9' 未定级",
         ("1", "2", "3", "9")),
    Fact("community_flag", "code", "claim", "社区卫生服务机构: '1' yes, '0' no", ("0", "1")),
    Fact("admission_seq", "number", "claim", "which admission of the year this is (1 = first)"),
    Fact("cross_region", "bool", "claim", "treatment place differs from the insured place"),
    Fact("cross_province", "bool", "claim", "treatment place is in another province"),
    Fact("filing_type", "code", "claim", "异地就医备案 type, or 'unfiled'", FILING_TYPES),
    Fact("diagnoses", "codes", "claim", "the claim's diagnosis codes (insurance edition), for 'icd'"),
    Fact("dise_codg", "code", "claim", "病种编码: 门诊慢特病 or 按病种 code"),
    Fact("insuplc_admdvs", "code", "claim", "参保地医保区划"),
    Fact("mdtrtarea_admvs", "code", "claim", "就医地医保区划"),
    Fact("med_list_codg", "code", "line", "医疗目录编码 of the fee line"),
    Fact("medins_list_codg", "code", "line", "医药机构目录编码 of the fee line"),
    Fact("cnt", "number", "line", "数量 of the fee line"),
    Fact("pric", "number", "line", "单价 of the fee line, yuan"),
    Fact("det_item_fee_sumamt", "number", "line", "明细项目费用总额 of the fee line, yuan"),
    Fact("hosp_appr_flag", "code", "line", "医院审批标志: '1' approved, '0' not, '2' …"),
    Fact("prd_days", "number", "line", "周期天数 (days the drug covers)"),
    Fact("med_chrgitm_type", "code", "line", "医疗收费项目类别 from the catalogue"),
    Fact("list_kind", "code", "line", "catalogue kind: drug, service, consumable", ("drug", "service", "consumable")),
]}

OPS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "code": ("eq", "ne", "in", "not_in", "prefix", "exists"),
    "number": ("eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "not_in", "exists"),
    "bool": ("eq", "exists"),
    "codes": ("icd", "exists"),
}
ALL_OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "not_in", "prefix", "icd", "exists")
COMBINATORS = ("all", "any", "not", "is")

_ICD_PATTERN = re.compile(r"^[A-Z][0-9]{2}(\.[0-9A-Za-z+*]{0,12})?$")


# ---------------------------------------------------------------- AST

@dataclass(frozen=True, slots=True)
class Src:
    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class Cmp:
    fact: str
    op: str
    value: Any
    src: Src


@dataclass(frozen=True, slots=True)
class All:
    items: tuple
    src: Src


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple
    src: Src


@dataclass(frozen=True, slots=True)
class Not:
    item: Any
    src: Src


@dataclass(frozen=True, slots=True)
class Ref:
    name: str
    src: Src


Node = Cmp | All | AnyOf | Not | Ref


def src_of(doc: Document, path: Path_) -> Src:
    line, col = doc.pos(path)
    return Src(doc.file, line, col)


# ---------------------------------------------------------------- parse

def parse_condition(doc: Document, path: Path_, value: Any | None = None) -> tuple[Node | None, list[Problem]]:
    """Parse the condition at `path` of `doc` into an AST, with every problem located."""
    problems: list[Problem] = []
    if value is None:
        value = _get(doc.data, path)
    node = _parse(doc, path, value, problems)
    return (None if problems else node), problems


def _get(data: Any, path: Path_) -> Any:
    for p in path:
        data = data[p]
    return data


def _parse(doc: Document, path: Path_, value: Any, problems: list[Problem]) -> Node | None:
    src = src_of(doc, path)
    if not isinstance(value, dict) or not value:
        problems.append(doc.problem("E-COND-SHAPE", "a condition is a mapping such as {med_type: '21'} or "
                                    "{all: [...]}", path))
        return None
    parts: list[Node] = []
    for key, arg in value.items():
        kpath = path + (key,)
        if key == "all" or key == "any":
            if not isinstance(arg, list) or not arg:
                problems.append(doc.problem("E-COND-SHAPE", f"'{key}' takes a list of conditions", kpath))
                continue
            items = [_parse(doc, kpath + (i,), a, problems) for i, a in enumerate(arg)]
            items = [i for i in items if i is not None]
            parts.append((All if key == "all" else AnyOf)(tuple(items), src_of(doc, kpath)))
        elif key == "not":
            item = _parse(doc, kpath, arg, problems)
            if item is not None:
                parts.append(Not(item, src_of(doc, kpath)))
        elif key == "is":
            if not isinstance(arg, str) or not re.match(r"^[A-Za-z][A-Za-z0-9_]*$", arg):
                problems.append(doc.problem("E-COND-SHAPE", "'is' takes the name of a condition defined under "
                                            "'conditions' in policy.yaml", kpath))
                continue
            parts.append(Ref(arg, src_of(doc, kpath)))
        elif key in FACTS:
            parts.extend(_parse_test(doc, kpath, FACTS[key], arg, problems))
        else:
            hint = did_you_mean(key, list(FACTS) + list(COMBINATORS))
            problems.append(doc.problem(
                "E-COND-FACT", f"unknown fact '{key}'", kpath, key=True,
                hint=(hint + " " if hint else "") + "known facts: " + ", ".join(FACTS)))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else All(tuple(parts), src)


def _parse_test(doc: Document, path: Path_, fact: Fact, arg: Any, problems: list[Problem]) -> list[Node]:
    src = src_of(doc, path)
    if isinstance(arg, list):
        ops = [("in", arg, path)]
    elif isinstance(arg, dict):
        if not arg:
            problems.append(doc.problem("E-COND-SHAPE", f"the test of '{fact.name}' is empty", path))
            return []
        ops = [(k, v, path + (k,)) for k, v in arg.items()]
    else:
        ops = [("eq", arg, path)]
    out: list[Node] = []
    allowed = OPS_BY_TYPE[fact.type]
    for op, operand, opath in ops:
        if op not in ALL_OPS:
            hint = did_you_mean(op, allowed)
            problems.append(doc.problem("E-COND-OP", f"unknown operator '{op}' for fact '{fact.name}'", opath, key=True,
                                        hint=(hint + " " if hint else "") + f"operators for {fact.type} facts: "
                                        + ", ".join(allowed)))
            continue
        if op not in allowed:
            problems.append(doc.problem("E-COND-OP", f"operator '{op}' does not apply to '{fact.name}' "
                                        f"(a {fact.type} fact)", opath, key=True,
                                        hint="operators for " + fact.type + " facts: " + ", ".join(allowed)))
            continue
        checked = _check_operand(doc, opath, fact, op, operand, problems)
        if checked is not _BAD:
            out.append(Cmp(fact.name, op, checked, src_of(doc, opath) if opath != path else src))
    return out


class _Bad:
    pass


_BAD = _Bad()


def _check_operand(doc: Document, path: Path_, fact: Fact, op: str, v: Any, problems: list[Problem]) -> Any:
    def bad(msg: str, hint: str | None = None) -> _Bad:
        problems.append(doc.problem("E-COND-TYPE", msg, path, hint=hint))
        return _BAD

    def scalar(x: Any, where: Path_) -> Any:
        if fact.type == "code":
            if not isinstance(x, str):
                problems.append(doc.problem(
                    "E-COND-TYPE", f"'{fact.name}' is a code (text) but is compared with {_kind(x)} {x!r}", where,
                    hint=f"write it in quotes: '{x}' — an unquoted 01 would lose its leading zero"))
                return _BAD
            if fact.values and x not in fact.values:
                h = did_you_mean(x, fact.values)
                problems.append(doc.problem(
                    "E-COND-VALUE", f"'{x}' is not a value of '{fact.name}'", where,
                    hint=(h + " " if h else "") + "values: " + ", ".join(fact.values)))
                return _BAD
            return x
        if fact.type == "number":
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                hint = "write a plain number without quotes, e.g. 18"
                if isinstance(x, str):
                    try:
                        float(x)
                        hint = f"YAML reads {x} as text; write it as a plain decimal (e.g. 0.00001) or with a point (1.0e-05)"
                    except ValueError:
                        pass
                problems.append(doc.problem(
                    "E-COND-TYPE", f"'{fact.name}' is a number but is compared with {_kind(x)} {x!r}", where,
                    hint=hint))
                return _BAD
            if isinstance(x, float) and not math.isfinite(x):
                problems.append(doc.problem("E-COND-VALUE", f"'{fact.name}' cannot be compared with {x}", where,
                                            hint="use a finite number"))
                return _BAD
            return x
        if fact.type == "bool":
            if not isinstance(x, bool):
                problems.append(doc.problem("E-COND-TYPE", f"'{fact.name}' is true/false, not {_kind(x)} {x!r}", where))
                return _BAD
            return x
        return _BAD

    if op == "exists":
        if not isinstance(v, bool):
            return bad("'exists' takes true or false")
        return v
    if op in ("in", "not_in"):
        if not isinstance(v, list) or not v:
            return bad(f"'{op}' takes a list of values")
        vals = [scalar(x, path + (i,)) for i, x in enumerate(v)]
        return _BAD if any(x is _BAD for x in vals) else frozenset(vals)
    if op == "between":
        if (not isinstance(v, list) or len(v) != 2
                or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in v)):
            return bad("'between' takes two numbers [low, high]")
        if any(isinstance(x, float) and not math.isfinite(x) for x in v):
            problems.append(doc.problem("E-COND-VALUE", "'between' takes finite numbers", path))
            return _BAD
        if v[0] > v[1]:
            problems.append(doc.problem("E-COND-VALUE", f"'between' range is reversed: {v[0]} > {v[1]}", path,
                                        hint=f"write [{v[1]}, {v[0]}]"))
            return _BAD
        return (v[0], v[1])
    if op == "prefix":
        if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
            return bad("'prefix' takes a list of code prefixes in quotes")
        return tuple(v)
    if op == "icd":
        if not isinstance(v, list) or not v:
            return bad("'icd' takes a list of ICD-10 codes, prefixes ('J18') or ranges ('C00-C97')")
        pats = []
        for i, x in enumerate(v):
            p = parse_icd_pattern(x)
            if p is None:
                problems.append(doc.problem(
                    "E-COND-ICD", f"'{x}' is not an ICD-10 code, prefix or range", path + (i,),
                    hint="write 'J18', 'J18.900' or a range of equal length 'C00-C97'"))
                return _BAD
            pats.append(p)
        return tuple(pats)
    if op in ("lt", "lte", "gt", "gte"):
        return scalar(v, path)
    # eq, ne
    if isinstance(v, (list, dict)):
        return bad(f"'{op}' takes one value")
    return scalar(v, path)


def _kind(x: Any) -> str:
    if isinstance(x, bool):
        return "true/false"
    if isinstance(x, (int, float)):
        return "the number"
    if isinstance(x, str):
        return "the text"
    return type(x).__name__


def parse_icd_pattern(x: Any) -> tuple[str, str] | None:
    """'J18' → ('J18', 'J18'); 'C00-C97' → ('C00', 'C97'): match when lo ≤ code[:len] ≤ hi."""
    if not isinstance(x, str):
        return None
    s = x.strip().upper()
    if "-" in s:
        lo, _, hi = s.partition("-")
        lo, hi = lo.strip(), hi.strip()
        if len(lo) != len(hi) or not _ICD_PATTERN.match(lo) or not _ICD_PATTERN.match(hi) or lo > hi:
            return None
        return (lo, hi)
    if not _ICD_PATTERN.match(s):
        return None
    return (s, s)


def icd_matches(code: str, pats: tuple[tuple[str, str], ...]) -> bool:
    c = code.upper()
    for lo, hi in pats:
        head = c[: len(lo)]
        if lo <= head <= hi and len(head) == len(lo):
            return True
    return False


# ---------------------------------------------------------------- utilities over ASTs

def facts_used(node: Node, named: dict[str, Node] | None = None, _seen: frozenset = frozenset()) -> set[str]:
    if isinstance(node, Cmp):
        return {node.fact}
    if isinstance(node, (All, AnyOf)):
        out: set[str] = set()
        for i in node.items:
            out |= facts_used(i, named, _seen)
        return out
    if isinstance(node, Not):
        return facts_used(node.item, named, _seen)
    if isinstance(node, Ref) and named and node.name in named and node.name not in _seen:
        return facts_used(named[node.name], named, _seen | {node.name})
    return set()


def refs_used(node: Node) -> list[Ref]:
    if isinstance(node, Ref):
        return [node]
    if isinstance(node, (All, AnyOf)):
        return [r for i in node.items for r in refs_used(i)]
    if isinstance(node, Not):
        return refs_used(node.item)
    return []


def resolve_refs(node: Node, named: dict[str, Node]) -> Node:
    """Inline named conditions (cycles are rejected by the validator before this runs)."""
    if isinstance(node, Ref):
        return resolve_refs(named[node.name], named)
    if isinstance(node, All):
        return All(tuple(resolve_refs(i, named) for i in node.items), node.src)
    if isinstance(node, AnyOf):
        return AnyOf(tuple(resolve_refs(i, named) for i in node.items), node.src)
    if isinstance(node, Not):
        return Not(resolve_refs(node.item, named), node.src)
    return node


def describe(node: Node) -> str:
    """A one-line, human reading of a condition, for explanations."""
    if isinstance(node, Cmp):
        v = node.value
        if isinstance(v, frozenset):
            v = "[" + ", ".join(sorted(map(str, v))) + "]"
        elif node.op == "icd":
            v = "[" + ", ".join(lo if lo == hi else f"{lo}-{hi}" for lo, hi in v) + "]"
        sym = {"eq": "=", "ne": "≠", "lt": "<", "lte": "≤", "gt": ">", "gte": "≥", "in": "in",
               "not_in": "not in", "between": "between", "prefix": "starts with", "icd": "has diagnosis in",
               "exists": "exists:"}[node.op]
        return f"{node.fact} {sym} {v}"
    if isinstance(node, All):
        return " and ".join(_paren(i) for i in node.items)
    if isinstance(node, AnyOf):
        return " or ".join(_paren(i) for i in node.items)
    if isinstance(node, Not):
        return f"not {_paren(node.item)}"
    if isinstance(node, Ref):
        return node.name
    return "?"


def _paren(n: Node) -> str:
    s = describe(n)
    return f"({s})" if isinstance(n, (All, AnyOf)) else s


def to_data(node: Node) -> Any:
    """Canonical plain data of a condition (for hashing and `show`)."""
    if isinstance(node, Cmp):
        v = node.value
        if isinstance(v, frozenset):
            v = sorted(v, key=str)
        elif node.op == "icd":
            v = [lo if lo == hi else f"{lo}-{hi}" for lo, hi in v]
        elif isinstance(v, tuple):
            v = list(v)
        return {node.fact: {node.op: v}}
    if isinstance(node, All):
        return {"all": [to_data(i) for i in node.items]}
    if isinstance(node, AnyOf):
        return {"any": [to_data(i) for i in node.items]}
    if isinstance(node, Not):
        return {"not": to_data(node.item)}
    if isinstance(node, Ref):
        return {"is": node.name}
    return None
