"""Read YAML and CSV into plain values while remembering where every value came from.

Why not `yaml.safe_load`: it forgets positions (an analyst needs file:line:col for every
error), silently keeps the last of two duplicate keys, expands aliases without limit (the
"billion laughs" bomb) and recurses once per nesting level. This reader walks libyaml's *event*
stream iteratively with the same safe scalar resolution as `safe_load`, and so:

- records the (line, col) of every value and every mapping key, keyed by its path;
- reports duplicate keys, multi-document files and non-string keys;
- bounds work: file size, nesting depth and the *expanded* node count (aliases are shared,
  not copied, but count fully toward the budget), so hostile input is refused in bounded time
  and memory.
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from ..problems import Problem

try:  # libyaml's C parser: same events, ~10× faster
    _Loader = yaml.CSafeLoader  # type: ignore[attr-defined]
except AttributeError:  # pragma: no cover - pure-Python PyYAML build
    _Loader = yaml.SafeLoader

MAX_YAML_BYTES = 64 * 1024 * 1024
MAX_CSV_BYTES = 512 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 2_000_000

Path_ = tuple  # a path inside a document: ("layers", 0, "bands", 1, "ratio")


def path_str(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(document)"


@dataclass
class Document:
    """A parsed file: its value plus where each part of it sits in the text."""

    file: str
    data: Any
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    raw: bytes = b""

    def pos(self, path: Path_, key: bool = False) -> tuple[int, int]:
        """Closest known position for `path` (walks up to the parent when unknown)."""
        table = self.key_positions if key else self.positions
        p = tuple(path)
        while True:
            if p in table:
                return table[p]
            if key and p in self.positions:
                return self.positions[p]
            if not p:
                return (1, 1)
            p = p[:-1]

    def problem(self, code: str, message: str, path: Path_ = (), *, key: bool = False,
                severity: str = "error", hint: str | None = None) -> Problem:
        line, col = self.pos(path, key=key)
        src = self.lines[line - 1] if 0 < line <= len(self.lines) else None
        return Problem(code=code, message=message, file=self.file, line=line, col=col,
                       severity=severity, hint=hint, path=path_str(path) if path else None,
                       source_line=src)


class _Budget(Exception):
    pass


def _scalar_value(constructor: yaml.constructor.SafeConstructor, resolver: yaml.resolver.Resolver,
                  ev: yaml.ScalarEvent) -> Any:
    tag = ev.tag
    if tag is None or tag == "!":
        tag = resolver.resolve(yaml.ScalarNode, ev.value, ev.implicit)
    node = yaml.ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark, style=ev.style)
    if tag not in _SAFE_SCALAR_TAGS:
        raise yaml.constructor.ConstructorError(
            None, None, f"tag {tag!r} is not allowed (only plain YAML values)", ev.start_mark)
    try:
        value = constructor.construct_object(node, deep=True)
    except ValueError:
        # e.g. 2020-02-30 looks like a date but is none: keep the text, the checks name it
        return ev.value
    # Dates become ISO text: schemas speak JSON, and a date is a string there.
    if isinstance(value, _dt.datetime):
        value = value.isoformat(sep=" ")
    elif isinstance(value, _dt.date):
        value = value.isoformat()
    elif isinstance(value, bytes):
        raise yaml.constructor.ConstructorError(None, None, "binary values are not allowed",
                                                ev.start_mark)
    return value


_SAFE_SCALAR_TAGS = {
    "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null", "tag:yaml.org,2002:timestamp",
}


def parse_yaml(text: bytes | str, file: str, *, max_depth: int = MAX_DEPTH,
               max_nodes: int = MAX_NODES) -> tuple[Document | None, list[Problem]]:
    """Parse one YAML document. Returns (document or None, problems)."""
    raw = text.encode("utf-8") if isinstance(text, str) else text
    problems: list[Problem] = []
    try:
        s = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return None, [Problem("E-FILE-ENCODING", f"file is not UTF-8 text ({e.reason} at byte {e.start})",
                              file=file, hint="save the file as UTF-8")]
    lines = s.splitlines()
    doc = Document(file=file, data=None, lines=lines, raw=raw)
    constructor = yaml.constructor.SafeConstructor()
    resolver = yaml.resolver.Resolver()

    # stack entries: [container, path, pending_key, key_mark, seen_keys]
    stack: list[list] = []
    anchors: dict[str, tuple[Any, int]] = {}
    anchor_sizes: list[int] = []  # node count of the container being built, per stack level
    nodes = 0
    root: Any = None
    have_root = False
    documents = 0

    def mark(m) -> tuple[int, int]:
        return (m.line + 1, m.column + 1)

    def attach(value: Any, m, size: int) -> Path_ | None:
        """Put a finished value into its parent; returns its path."""
        nonlocal root, have_root
        if not stack:
            root, have_root = value, True
            doc.positions[()] = mark(m)
            return ()
        top = stack[-1]
        container, cpath = top[0], top[1]
        anchor_sizes[-1] += size
        if isinstance(container, list):
            p = cpath + (len(container),)
            container.append(value)
            doc.positions.setdefault(p, mark(m))
            return p
        # mapping: a key or a value?
        if top[2] is _NOKEY:
            if not isinstance(value, (str, int, float, bool)) or value is None:
                problems.append(Problem("E-YAML-KEY", "a mapping key must be a plain word or number",
                                        file=file, line=mark(m)[0], col=mark(m)[1]))
                value = str(value)
            key = value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
            top[2] = key
            top[3] = mark(m)
            return None
        key = top[2]
        p = cpath + (key,)
        if key in top[4]:
            line, col = top[3]
            problems.append(Problem(
                "E-YAML-DUPKEY", f"key '{key}' appears twice in this mapping (first at line {top[4][key]})",
                file=file, line=line, col=col, hint="remove one of them: YAML would silently keep the last",
                source_line=lines[line - 1] if 0 < line <= len(lines) else None))
        else:
            top[4][key] = top[3][0]
        container[key] = value
        doc.positions[p] = mark(m)
        doc.key_positions[p] = top[3]
        top[2] = _NOKEY
        return p

    try:
        if len(raw) > MAX_YAML_BYTES:
            raise _Budget(f"file is {len(raw):,} bytes; YAML files are limited to {MAX_YAML_BYTES:,} "
                          "(put large catalogues in CSV)")
        for ev in yaml.parse(io.StringIO(s), Loader=_Loader):
            if isinstance(ev, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    line, col = mark(ev.start_mark)
                    problems.append(Problem("E-YAML-MULTIDOC", "a pack file holds one YAML document; found a second",
                                            file=file, line=line, col=col,
                                            hint="remove the '---' separator or split the file"))
                    break
                continue
            if isinstance(ev, (yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentEndEvent)):
                continue
            if isinstance(ev, yaml.AliasEvent):
                if ev.anchor not in anchors:
                    raise yaml.composer.ComposerError(None, None, f"found undefined alias {ev.anchor!r}",
                                                      ev.start_mark)
                value, size = anchors[ev.anchor]
                nodes += size
                if nodes > max_nodes:
                    raise _Budget(f"aliases expand to more than {max_nodes:,} values (an 'alias bomb'?)")
                attach(value, ev.start_mark, size)
                continue
            if isinstance(ev, yaml.ScalarEvent):
                nodes += 1
                if nodes > max_nodes:
                    raise _Budget(f"more than {max_nodes:,} values in one file")
                if stack and isinstance(stack[-1][0], dict) and stack[-1][2] is _NOKEY:
                    # A mapping key is its text: YAML 1.1 would read `on:` as True and `01:` as 1.
                    value = ev.value
                else:
                    value = _scalar_value(constructor, resolver, ev)
                if ev.anchor:
                    anchors[ev.anchor] = (value, 1)
                attach(value, ev.start_mark, 1)
                continue
            if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                nodes += 1
                if len(stack) >= max_depth:
                    raise _Budget(f"nesting deeper than {max_depth} levels")
                container: Any = {} if isinstance(ev, yaml.MappingStartEvent) else []
                if ev.tag not in (None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"):
                    raise yaml.constructor.ConstructorError(
                        None, None, f"tag {ev.tag!r} is not allowed (only plain YAML values)", ev.start_mark)
                # the path is decided now (parent's key/index)
                if stack:
                    top = stack[-1]
                    if isinstance(top[0], list):
                        cpath = top[1] + (len(top[0]),)
                    elif top[2] is _NOKEY:
                        raise yaml.constructor.ConstructorError(
                            None, None, "a mapping key must be a plain word or number", ev.start_mark)
                    else:
                        cpath = top[1] + (top[2],)
                else:
                    cpath = ()
                stack.append([container, cpath, _NOKEY, None, {}, ev.anchor, ev.start_mark])
                anchor_sizes.append(1)
                continue
            if isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                entry = stack.pop()
                size = anchor_sizes.pop()
                container, cpath, anchor, smark = entry[0], entry[1], entry[5], entry[6]
                if anchor:
                    anchors[anchor] = (container, size)
                attach(container, smark, size)
                continue
    except _Budget as b:
        return None, problems + [Problem("E-YAML-LIMIT", str(b), file=file, line=1, col=1,
                                         hint="this looks like hostile or generated input; a pack file "
                                              "never needs this much")]
    except yaml.MarkedYAMLError as e:
        m = e.problem_mark or e.context_mark
        line, col = (m.line + 1, m.column + 1) if m else (1, 1)
        msg = e.problem or str(e)
        if e.context:
            msg = f"{msg} ({e.context})"
        return None, problems + [Problem("E-YAML-SYNTAX", msg, file=file, line=line, col=col,
                                         source_line=lines[line - 1] if 0 < line <= len(lines) else None,
                                         hint=_syntax_hint(msg))]
    except yaml.YAMLError as e:  # pragma: no cover - other reader errors
        return None, problems + [Problem("E-YAML-SYNTAX", str(e), file=file, line=1, col=1)]
    if not have_root:
        root = None
    doc.data = root
    return doc, problems


class _NoKey:
    __slots__ = ()

    def __repr__(self) -> str:  # pragma: no cover
        return "<no key>"


_NOKEY = _NoKey()


def _syntax_hint(msg: str) -> str | None:
    if "tab" in msg:
        return "indent with spaces, not tabs"
    if "mapping values are not allowed" in msg:
        return "a ':' inside a value needs the value in quotes"
    if "could not find expected ':'" in msg:
        return "each line of a mapping is 'key: value'"
    return None


def read_yaml(path: Path, display: str | None = None) -> tuple[Document | None, list[Problem]]:
    name = display or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            return None, [Problem("E-YAML-LIMIT", f"file is {size:,} bytes; YAML files are limited to "
                                  f"{MAX_YAML_BYTES:,}", file=name, line=1, col=1,
                                  hint="put large catalogues in CSV")]
        raw = path.read_bytes()
    except OSError as e:
        return None, [Problem("E-FILE-READ", f"cannot read file: {e.strerror}", file=name)]
    return parse_yaml(raw, name)


@dataclass
class Table:
    """A CSV file: header + rows as dicts of text, with 1-based file line numbers per row."""

    file: str
    header: list[str]
    rows: list[dict[str, str]]
    row_lines: list[int]
    raw: bytes = b""


def read_csv(path: Path, display: str | None = None) -> tuple[Table | None, list[Problem]]:
    name = display or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_CSV_BYTES:
            return None, [Problem("E-CSV-LIMIT", f"file is {size:,} bytes; CSV files are limited to "
                                  f"{MAX_CSV_BYTES:,}", file=name, line=1, col=1)]
        raw = path.read_bytes()
    except OSError as e:
        return None, [Problem("E-FILE-READ", f"cannot read file: {e.strerror}", file=name)]
    return parse_csv(raw, name)


def parse_csv(raw: bytes, name: str) -> tuple[Table | None, list[Problem]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return None, [Problem("E-FILE-ENCODING", f"file is not UTF-8 text ({e.reason} at byte {e.start})",
                              file=name, hint="save the CSV as UTF-8 (Excel: 'CSV UTF-8')")]
    problems: list[Problem] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return None, [Problem("E-CSV-EMPTY", "the CSV file is empty; it needs a header row", file=name)]
    except csv.Error as e:
        return None, [Problem("E-CSV-SYNTAX", str(e), file=name, line=1, col=1)]
    header = [h.strip() for h in header]
    seen: dict[str, int] = {}
    for i, h in enumerate(header):
        if h in seen:
            problems.append(Problem("E-CSV-HEADER", f"column '{h}' appears twice in the header",
                                    file=name, line=1, col=i + 1))
        seen[h] = i
    rows: list[dict[str, str]] = []
    row_lines: list[int] = []
    width = len(header)
    try:
        for rec in reader:
            line = reader.line_num
            if not rec or all(not c.strip() for c in rec):
                continue
            if len(rec) != width:
                problems.append(Problem("E-CSV-ROW", f"row has {len(rec)} cells, the header has {width}",
                                        file=name, line=line, col=1,
                                        hint="a cell with a comma must be quoted"))
                continue
            rows.append(dict(zip(header, rec)))
            row_lines.append(line)
    except csv.Error as e:
        problems.append(Problem("E-CSV-SYNTAX", str(e), file=name, line=reader.line_num, col=1))
    return Table(file=name, header=header, rows=rows, row_lines=row_lines, raw=raw), problems


def csv_cell_col(line: str, cell: int) -> int:
    """1-based character column where cell `cell` (0-based) starts in one CSV line — so that a
    problem in a spreadsheet row points at the cell, not at the start of the row."""
    i, n, quoted = 0, 0, False
    while i < len(line) and n < cell:
        ch = line[i]
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            n += 1
        i += 1
    return i + 1


def files_digest(folder: Path, files: "list[Path]") -> str:
    """sha256 over files (path relative to `folder` + bytes) without parsing them: what a
    compiled-pack cache key needs. '' for no files."""
    import hashlib
    if not files:
        return ""
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.relative_to(folder)).encode() + b"\0")
        try:
            h.update(p.read_bytes())
        except OSError:
            h.update(b"<unreadable>")
    return h.hexdigest()


def load_parts(pack_dirs: Iterable[Path | str], load_one: Callable[[Path | str], tuple[Any, list[Problem]]]
               ) -> tuple[list[Any], list[Problem]]:
    """One pack folder's part of something that merges along an `extends` chain (coding tables,
    audit rules), for each folder root first, with every folder's problems."""
    parts: list[Any] = []
    problems: list[Problem] = []
    for d in pack_dirs:
        part, ps = load_one(d)
        problems += ps
        parts.append(part)
    return parts, problems
