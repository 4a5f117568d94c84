"""Small, exact edits of an analyst's YAML that keep every comment and every other byte.

Rewriting a file through a YAML dumper would drop the analyst's comments and reorder keys; these
edits replace one scalar, located by our position-keeping reader, and nothing else.
"""
from __future__ import annotations

from .source import parse_yaml


class EditError(Exception):
    pass


def _locate(text: str, path: tuple) -> tuple[int, int] | None:
    doc, problems = parse_yaml(text.encode("utf-8"), "<edit>")
    if doc is None:
        raise EditError("; ".join(p.message for p in problems) or "unreadable YAML")
    return doc.positions.get(path)


def set_scalar(text: str, path: tuple, new_text: str) -> str:
    """Replace the plain or quoted scalar at `path` with `new_text` (already YAML-formatted)."""
    pos = _locate(text, path)
    if pos is None:
        raise EditError(f"no value at {'.'.join(map(str, path))}")
    lines = text.split("\n")
    line, col = pos[0] - 1, pos[1] - 1
    s = lines[line]
    end = _scalar_end(s, col)
    lines[line] = s[:col] + new_text + s[end:]
    return "\n".join(lines)


def _scalar_end(s: str, col: int) -> int:
    if col < len(s) and s[col] in "'\"":
        q = s[col]
        i = col + 1
        while i < len(s):
            if s[i] == q and (q == '"' and s[i - 1] != "\\" or q == "'"):
                if q == "'" and i + 1 < len(s) and s[i + 1] == "'":
                    i += 2
                    continue
                return i + 1
            i += 1
        return len(s)
    i = col
    while i < len(s) and s[i] not in ",}]#" and not (s[i] == " " and i + 1 < len(s) and s[i + 1] == "#"):
        i += 1
    return len(s[:i].rstrip()) if i < len(s) else len(s.rstrip())


def set_effective_to(text: str, date: str | None, name: str) -> str:
    """Set (or, with None, remove) `effective.to`, in block or flow style."""
    doc, problems = parse_yaml(text.encode("utf-8"), name)
    if doc is None or not isinstance(doc.data, dict) or not isinstance(doc.data.get("effective"), dict):
        raise EditError(f"{name}: no 'effective' mapping")
    eff = doc.data["effective"]
    lines = text.split("\n")
    if "to" in eff:
        kline = doc.key_positions[("effective", "to")][0] - 1
        if date is None:
            if lines[kline].strip().startswith("to:"):
                del lines[kline]
                return "\n".join(lines)
            raise EditError(f"{name}: write 'effective' in block style to remove its end date")
        return set_scalar(text, ("effective", "to"), date)
    if date is None:
        return text
    fline, fcol = doc.key_positions[("effective", "from")]
    s = lines[fline - 1]
    if s.strip().startswith("from:"):
        lines.insert(fline, " " * (fcol - 1) + f"to: {date}")
        return "\n".join(lines)
    # flow style {from: …}: add before the closing brace on that line
    close = s.rfind("}")
    if close < 0:
        raise EditError(f"{name}: cannot place effective.to")
    lines[fline - 1] = s[:close].rstrip() + f", to: {date}" + s[close:]
    return "\n".join(lines)
