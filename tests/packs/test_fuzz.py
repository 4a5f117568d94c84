"""Random damage to valid packs never makes validation raise: it yields located problems."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rules_engine.packs.registry import PackSet
from rules_engine.problems import Problem

ROOT = Path(__file__).resolve().parents[2] / "regions"
FILES = [f for f in ("110000/2021.1/policy.yaml", "110000/2021.1/pack.yaml", "000000/2024.1/restrictions.yaml",
                     "000000/2024.1/pack.yaml", "110000/2021.1/catalogue/services-sample.yaml")
         if (ROOT / f).is_file()]
TOKENS = ["", ":", "- ", "{", "}", "[", "]", "&a", "*a", "!!python/object:os.system", "\t", "'", '"', "1e999",
          "-1", "0.0000001", "2021-02-30", "null", "yes", "ratio: 2", "is: nowhere", "icd: ['X']",
          "value: [{to: 1, ratio: 0.5}, {to: 0, ratio: 0.5}]", "\n  - id: x\n", "当", "\x00"]


@st.composite
def damage(draw):
    name = draw(st.sampled_from(FILES))
    text = (ROOT / name).read_text(encoding="utf-8")
    ops = draw(st.lists(st.tuples(st.sampled_from(["insert", "delete", "replace_line", "dup_line"]),
                                  st.integers(0, len(text)), st.sampled_from(TOKENS)), min_size=1, max_size=4))
    for op, pos, tok in ops:
        pos = min(pos, len(text))
        if op == "insert":
            text = text[:pos] + tok + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + len(tok) + 1:]
        else:
            lines = text.splitlines(keepends=True)
            i = pos % max(len(lines), 1)
            if op == "replace_line" and lines:
                lines[i] = " " * (len(lines[i]) - len(lines[i].lstrip())) + tok + "\n"
            elif lines:
                lines.insert(i, lines[i])
            text = "".join(lines)
    return name, text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damage())
@example(("110000/2021.1/policy.yaml",  # found by this test in CI: an 'adds' mapping whose key ate the space
          (ROOT / "110000/2021.1/policy.yaml").read_text(encoding="utf-8").replace(
              "adds: {deductible_of: resident_outpatient}", "adds: {deductible_ resident_outpatient}")))
@example(("110000/2021.1/policy.yaml",
          (ROOT / "110000/2021.1/policy.yaml").read_text(encoding="utf-8").replace(
              "adds: {paid_by: [resident_outpatient]}", "adds: {paid_by: [resident_outpatient], count: 1}")))
def test_validation_never_raises(case):
    name, text = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "regions"
        for sub in ("000000/2024.1", "110000/2021.1"):
            shutil.copytree(ROOT / sub, root / sub)
        (root / name).write_text(text, encoding="utf-8", errors="surrogatepass")
        ps = PackSet.load(root)
        for p in ps.problems:
            assert isinstance(p, Problem) and p.code and p.file
            p.format()
        if ps.problems.has_errors():
            # a broken pack never compiles, and its siblings are still judged on their own
            assert all(name.split("/")[0] + "@" + name.split("/")[1] not in k for k in ps.compiled)
