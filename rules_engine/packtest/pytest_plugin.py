"""pytest collects pack tests: `pytest regions` runs every regions/<region>/<version>/tests/*.yaml case.

Registered as a pytest11 entry point, so CI picks the analysts' tests up with the rest.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from .runner import ERROR, FAIL, CaseResult, run_file


def pytest_collect_file(file_path: Path, parent):
    if (file_path.suffix in (".yaml", ".yml") and file_path.parent.name == "tests"
            and (file_path.parent.parent / "pack.yaml").is_file()):
        return PackTestFile.from_parent(parent, path=file_path)
    return None


class PackTestFile(pytest.File):
    def collect(self):
        results = run_file(self.path)
        seen: dict[str, int] = {}
        for r in results:
            name = r.name
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                name = f"{name} #{seen[name]}"
            yield PackTestItem.from_parent(self, name=name, result=r)


class PackTestFailure(Exception):
    pass


class PackTestItem(pytest.Item):
    def __init__(self, *, result: CaseResult, **kw):
        super().__init__(**kw)
        self.result = result
        self.extra_keyword_matches.update(result.keywords)  # `pytest -k inpatient` selects by keyword

    def runtest(self) -> None:
        if self.result.status in (FAIL, ERROR):
            raise PackTestFailure(self.result.format())

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, PackTestFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, self.result.line - 1, f"pack test: {self.result.name}"
