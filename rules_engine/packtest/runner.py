"""Tests beside the pack: claims and the settlement fields an analyst expects (OpenFisca-style).

A test file `regions/<region>/<version>/tests/*.yaml` lists cases; each is a claim (or a person's
claims in order) and only the fields the analyst cares about. A case PASSes, FAILs (a value
differs: expected, actual, and the explanation of the actual one) or is an ERROR (the test itself
is broken, or the claim is settled by another pack than the one under test) — kept apart as
`opa test` does. Runs from `rules-engine test` and, through the pytest plugin, from pytest.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterable

from ..api import Engine
from ..model.claim import SettlementError
from ..packs.registry import PackSet
from ..packs.source import Document, read_yaml
from ..problems import Problem
from ..validate.schema import validate_document

PASS, FAIL, ERROR = "PASS", "FAIL", "ERROR"


@dataclass
class Mismatch:
    field: str
    expected: Any
    actual: Any
    why: str | None = None

    def format(self) -> str:
        text = f"{self.field}: expected {self.expected}, actual {self.actual}"
        if self.why:
            text += f"\n        why the actual value: {self.why}"
        return text


@dataclass
class CaseResult:
    file: str
    line: int
    name: str
    status: str
    mismatches: list[Mismatch] = field(default_factory=list)
    message: str | None = None
    keywords: tuple[str, ...] = ()

    def format(self) -> str:
        head = f"{self.file}:{self.line}: {self.status} {self.name}"
        lines = [head]
        if self.message:
            lines.append(f"    {self.message}")
        lines += [f"    {m.format()}" for m in self.mismatches]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "name": self.name, "status": self.status,
                "message": self.message, "mismatches": [{"field": m.field, "expected": str(m.expected),
                                                         "actual": str(m.actual), "why": m.why}
                                                        for m in self.mismatches]}


def find_test_files(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_file() and p.suffix in (".yaml", ".yml"):
            out.append(p)
        elif p.is_dir():
            out += sorted(f for f in p.rglob("*.y*ml") if f.parent.name == "tests" and (f.parent.parent / "pack.yaml").is_file())
    return out


def regions_root(pack_dir: Path) -> Path:
    """The folder holding all region folders, so cross-region tests see the other packs."""
    return pack_dir.resolve().parent.parent


_engines: dict[Path, Engine | list[Problem]] = {}


def engine_for(root: Path) -> Engine | list[Problem]:
    root = root.resolve()
    if root not in _engines:
        ps = PackSet.load(root, base=root.parent)
        _engines[root] = [p for p in ps.problems if p.severity == "error"] or Engine(ps)
    return _engines[root]


def load_cases(path: Path) -> tuple[Document | None, list[Problem]]:
    doc, problems = read_yaml(path)
    if doc is None:
        return None, problems
    if not isinstance(doc.data, dict):
        return None, problems + [doc.problem("E-SCHEMA-TYPE", "a test file is a mapping with 'tests'", ())]
    problems += validate_document(doc, "packtest.schema.json")
    return doc, problems


def run_file(path: Path) -> list[CaseResult]:
    path = Path(path)
    pack_dir = path.parent.parent
    doc, problems = load_cases(path)
    errors = [p for p in problems if p.severity == "error"]
    if doc is None or errors:
        return [CaseResult(p.file, p.line, "(test file)", ERROR, message=f"{p.code}: {p.message}") for p in errors]
    eng = engine_for(regions_root(pack_dir))
    if not isinstance(eng, Engine):
        first = eng[0]
        return [CaseResult(str(path), 1, "(packs)", ERROR,
                           message=f"the packs do not load: {first.format(with_source=False)}")]
    meta_doc, _ = read_yaml(pack_dir / "pack.yaml")
    meta = meta_doc.data if meta_doc is not None and isinstance(meta_doc.data, dict) else {}
    pack_key = f"{meta.get('region')}@{meta.get('version')}"
    base = {"insuplc_admdvs": meta.get("region"), "mdtrtarea_admvs": meta.get("region"),
            "setl_time": str((meta.get("effective") or {}).get("from", ""))}
    base.update(doc.data.get("defaults") or {})
    return [run_case(eng, doc, i, case, base, pack_key) for i, case in enumerate(doc.data["tests"])]


def run_case(engine: Engine, doc: Document, i: int, case: dict, base: dict, pack_key: str) -> CaseResult:
    line = doc.pos(("tests", i))[0]
    res = CaseResult(doc.file, line, case["name"], PASS, keywords=tuple(case.get("keywords") or ()))
    claims = [case["claim"]] if "claim" in case else list(case["claims"])
    claims = [_merge(base, c) for c in claims]
    expects = case["expect"] if isinstance(case["expect"], list) else [case["expect"]]
    if len(expects) != len(claims):
        res.status, res.message = ERROR, f"{len(claims)} claim(s) but {len(expects)} expectation(s)"
        return res
    tol = _dec(case.get("tolerance", 0)) or Decimal(0)
    refused = next((e.get("error") for e in expects if e.get("error")), None)
    try:
        settlements = engine.settle_sequence(claims) if len(claims) > 1 else [engine.settle(claims[0])]
    except SettlementError as e:
        if refused and e.code == refused:
            return res
        if refused:
            res.status = FAIL
            res.mismatches.append(Mismatch("error", refused, e.code, e.message))
        else:
            res.status, res.message = ERROR, f"the claim was refused: {e.code}: {e.message}"
        return res
    if refused:
        res.status = FAIL
        res.mismatches.append(Mismatch("error", refused, "settled without an error"))
        return res
    for k, (s, exp) in enumerate(zip(settlements, expects)):
        chain = set(s.insured.chain) | set(s.treatment.chain)
        if pack_key not in chain:
            res.status = ERROR
            res.message = (f"claim {k + 1} is settled by {s.insured.key} / {s.treatment.key}, not by the pack under test "
                           f"{pack_key}: check its dates and regions")
            return res
        prefix = f"claims[{k}]." if len(settlements) > 1 else ""
        res.mismatches += _compare(s, exp, tol, prefix)
    if res.mismatches:
        res.status = FAIL
    return res


def _merge(base: dict, claim: dict) -> dict:
    out = copy.deepcopy(base)
    out.update(copy.deepcopy(claim))
    return out


def _dec(v: Any) -> Decimal | None:
    if isinstance(v, bool):
        return None
    try:
        return Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
    except (InvalidOperation, TypeError, ValueError):
        return None


def _same(expected: Any, actual: Any, tol: Decimal) -> bool:
    e, a = _dec(expected), _dec(actual)
    if e is not None and a is not None and not isinstance(expected, str):
        return abs(e - a) <= tol
    return str(expected) == str(actual)


def _compare(s, exp: dict, tol: Decimal, prefix: str) -> list[Mismatch]:
    out: list[Mismatch] = []
    d = s.to_dict()
    explanation = None

    def why(match) -> str | None:
        nonlocal explanation
        if explanation is None:
            explanation = s.explain()
        for item in explanation:
            if match(item):
                return item.get("formula") or item.get("rule")
        return None

    for name, want in (exp.get("setlinfo") or {}).items():
        have = d["setlinfo"].get(name, "(no such field)")
        if not _same(want, have, tol):
            out.append(Mismatch(f"{prefix}setlinfo.{name}", want, have,
                                why(lambda it, n=name: it.get("field") == n)))
    lines = {r["feedetl_sn"]: r for r in d["result"]}
    for sn, fields in (exp.get("result") or {}).items():
        row = lines.get(str(sn))
        if row is None:
            out.append(Mismatch(f"{prefix}result[{sn}]", "a fee line", "no line with that feedetl_sn"))
            continue
        for name, want in fields.items():
            have = row.get(name, "(no such field)")
            if name == "reasons" and isinstance(want, list):
                # the reasons named must be there (others may be too: list only what you care about)
                have = [r["code"] for r in row["reasons"]]
                if set(map(str, want)) - set(have):
                    out.append(Mismatch(f"{prefix}result[{sn}].reasons", want, have))
                continue
            if not _same(want, have, tol):
                out.append(Mismatch(f"{prefix}result[{sn}].{name}", want, have,
                                    why(lambda it, n=str(sn): it.get("field") == "result" and it.get("line") == n)))
    paid = {r["fund_pay_type"]: r["fund_payamt"] for r in d["setldetail"]}
    for fpt, want in (exp.get("setldetail") or {}).items():
        have = paid.get(str(fpt), Decimal("0.00"))
        if not _same(want, have, tol):
            out.append(Mismatch(f"{prefix}setldetail[{fpt}]", want, have))
    for name, want in (exp.get("accumulators") or {}).items():
        have = d["accumulators"].get(name, "(not an accumulator of the insured pack)")
        if not _same(want, have, tol):
            out.append(Mismatch(f"{prefix}accumulators.{name}", want, have))
    codes = {w["code"] for w in d["warnings"]}
    for code in exp.get("warnings") or []:
        if code not in codes:
            out.append(Mismatch(f"{prefix}warnings", code, sorted(codes) or "none"))
    for role, key in (exp.get("packs") or {}).items():
        pack = s.insured if role == "insured" else s.treatment
        if pack.key != key:
            out.append(Mismatch(f"{prefix}packs.{role}", key, pack.key))
    return out


def summarize(results: list[CaseResult]) -> dict[str, int]:
    return {k: sum(1 for r in results if r.status == k) for k in (PASS, FAIL, ERROR)}
