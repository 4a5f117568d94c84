"""Problems are values, not exceptions.

Every stage (load, validate, compile) appends `Problem`s to a list and keeps going, so an
analyst sees every mistake of a pack in one run — the way Beancount's loader reports errors.
Only at the boundary (CLI, API) do problems become an exit code or a typed exception.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One located finding: `file:line:col: error CODE: message`."""

    code: str
    message: str
    file: str = "<input>"
    line: int = 0
    col: int = 0
    severity: Severity = "error"
    hint: str | None = None
    path: str | None = None  # logical path inside the document, e.g. layers[0].bands[1].ratio
    source_line: str | None = None  # the offending source line, for the caret display

    def format(self, with_source: bool = True) -> str:
        loc = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        text = f"{loc}: {self.severity} {self.code}: {self.message}"
        if self.path:
            text += f"  (at {self.path})"
        if with_source and self.source_line is not None and self.line:
            src, col = self.source_line.rstrip(), max(self.col - 1, 0)
            if len(src) > 120:  # a window around the column, not a 100 kB line
                start = max(0, col - 60)
                src, col = ("…" if start else "") + src[start:start + 120] + "…", col - start + (1 if start else 0)
            text += f"\n    {src}\n    {' ' * col}^"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text

    def to_dict(self) -> dict:
        d = {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
        }
        if self.path:
            d["path"] = self.path
        if self.hint:
            d["hint"] = self.hint
        return d


@dataclass
class Problems:
    """An ordered collection of problems with helpers for the common questions."""

    items: list[Problem] = field(default_factory=list)

    def add(self, problem: Problem) -> None:
        self.items.append(problem)

    def extend(self, problems: Iterable[Problem]) -> None:
        self.items.extend(problems)

    def extend_unique(self, problems: Iterable[Problem]) -> None:
        """Add problems not already reported at the same place with the same code (the schema and the
        compiler may both see one mistake; the analyst should read it once)."""
        seen = {(p.file, p.line, p.col, p.code) for p in self.items}
        for p in problems:
            key = (p.file, p.line, p.col, p.code)
            if key not in seen:
                seen.add(key)
                self.items.append(p)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.items if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.items if p.severity == "warning"]

    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self.items)

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def sorted(self) -> list[Problem]:
        return sorted(self.items, key=lambda p: (p.file, p.line, p.col, p.code))

    def to_json(self) -> str:
        return json.dumps([p.to_dict() for p in self.sorted()], ensure_ascii=False, indent=2)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A 'did you mean' hint, as OpenFisca and OPA give for typo'd keys."""
    import difflib

    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean '{match[0]}'?" if match else None
