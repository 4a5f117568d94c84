"""A reform as a small YAML overlay on a base pack: a few values changed, nothing copied, no code.

    # reform.yaml
    reform: 三级医院住院统筹支付比例提高5个百分点
    base: 110000@2025.1                      # optional; --base must agree
    changes:
      - path: layers[id=employee_inpatient_pool].bands.ratios.cases[0].value[0].ratio
        set: 0.90
      - path: layers[id=employee_inpatient_pool].caps[0].amount
        set: 550000
      - file: catalogue/drugs-sample.yaml    # default policy.yaml; also pack.yaml, restrictions.yaml …
        pack: 000000@2024.1                  # default: the base pack itself; or one it extends
        path: entries[code=XL02BGY096A001010100107].category
        set: 甲

A path walks the raw YAML of one file: `key`, `key[3]` (list position) and `key[field=value]`
(the list item whose `field` is `value`: ids of layers, accumulators, restrictions, codes of
catalogue entries), chained with dots. Operations: `set` (the path must exist), `add` (a new
mapping key, or an item appended to a list) and `remove: true`.

The overlay is applied to the base pack's documents as loaded by `packs.load.load_pack`, then the
chain is compiled with `packs.compile.read_part` / `compile_chain` — the same validation and
compilation as any pack, so a reform that breaks a rule (a ratio above 1, bands out of order) is
refused with a message; a path that addresses nothing is reported at the overlay's own line, with
what is there instead.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..packs.compile import compile_chain, content_hash, read_part
from ..packs.load import CODES_FILE, PACK_FILE, POLICY_FILE, RESTRICTIONS_FILE, RawPack, load_pack
from ..packs.model import CompiledPack
from ..packs.registry import PackSet
from ..packs.source import Document, parse_yaml, path_str
from ..problems import Problem, did_you_mean

SCHEMAS = {PACK_FILE: "pack.schema.json", POLICY_FILE: "policy.schema.json",
           RESTRICTIONS_FILE: "restrictions.schema.json", CODES_FILE: "codes.schema.json"}
TOP_KEYS = ("reform", "description", "base", "changes")
CHANGE_KEYS = ("path", "file", "pack", "set", "add", "remove", "note")


class OverlayError(Exception):
    """The overlay (or the pack it makes) has problems; every one is listed, located."""

    code = "E-OVERLAY"

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        errs = [p for p in problems if p.severity == "error"]
        super().__init__(errs[0].format(with_source=False) if errs else "overlay invalid")


@dataclass
class Seg:
    key: str | None              # mapping key (None: the segment is only a selector on the previous value)
    index: int | None = None
    match: tuple[str, str] | None = None


@dataclass
class Change:
    i: int
    path: str
    segs: list[Seg]
    file: str
    pack: str | None
    op: str
    value: Any
    src: tuple[int, int]         # line, col of the change in the overlay
    resolved: tuple = ()
    orig_pos: tuple[str, int] | None = None


@dataclass
class Reform:
    name: str
    base_key: str | None
    changes: list[Change]
    file: str
    doc: Document
    warnings: list[Problem] = field(default_factory=list)


_SEG = re.compile(r"([A-Za-z_\u4e00-\u9fff][\w\u4e00-\u9fff-]*)?((?:\[[^\]]*\])*)$")


def parse_path(text: str) -> list[Seg] | str:
    """'a.b[0].c[id=x]' → segments; a string is an error message."""
    if not isinstance(text, str) or not text.strip():
        return "a path is text such as layers[id=employee_inpatient_pool].caps[0].amount"
    parts: list[str] = []
    buf, depth = "", 0
    for ch in text.strip():
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                return f"unbalanced ']' in '{text}'"
        if ch == "." and depth == 0:
            parts.append(buf)
            buf = ""
        else:
            buf += ch
    if depth:
        return f"unbalanced '[' in '{text}'"
    parts.append(buf)
    segs: list[Seg] = []
    for p in parts:
        m = _SEG.match(p)
        if not p or m is None:
            return f"'{p}' is not a path step (write key, key[3] or key[field=value])"
        key, sels = m.group(1), m.group(2)
        first = True
        for sel in re.findall(r"\[([^\]]*)\]", sels) or [None]:
            seg = Seg(key if first else None)
            first = False
            if sel is not None:
                sel = sel.strip()
                if re.fullmatch(r"-?\d+", sel):
                    seg.index = int(sel)
                elif "=" in sel:
                    f, _, v = sel.partition("=")
                    seg.match = (f.strip(), v.strip().strip("'\""))
                else:
                    return f"'[{sel}]' is neither a position [3] nor a selector [field=value]"
            if seg.key is None and seg.index is None and seg.match is None:
                return f"'{p}' is not a path step"
            segs.append(seg)
    return segs


def read_overlay(path: str | Path) -> Reform:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise OverlayError([Problem("E-FILE-READ", f"cannot read the overlay: {e.strerror}", file=str(p))]) from None
    doc, problems = parse_yaml(raw, str(p))
    if doc is None or problems:
        raise OverlayError(problems)
    d = doc.data
    if not isinstance(d, dict):
        raise OverlayError([doc.problem("E-OVERLAY-SHAPE", "an overlay is a mapping with 'changes'", ())])
    for k in d:
        if k not in TOP_KEYS:
            h = did_you_mean(k, TOP_KEYS)
            problems.append(doc.problem("E-OVERLAY-KEY", f"unknown key '{k}'", (k,), key=True,
                                        hint=(h + " " if h else "") + "keys: " + ", ".join(TOP_KEYS)))
    ch = d.get("changes")
    if not isinstance(ch, list) or not ch:
        problems.append(doc.problem("E-OVERLAY-SHAPE", "'changes' must be a non-empty list of {path, set|add|remove}",
                                    ("changes",) if "changes" in d else ()))
        raise OverlayError(problems)
    changes = []
    for i, c in enumerate(ch):
        cp = ("changes", i)
        if not isinstance(c, dict):
            problems.append(doc.problem("E-OVERLAY-SHAPE", "a change is a mapping {path: …, set: …}", cp))
            continue
        for k in c:
            if k not in CHANGE_KEYS:
                h = did_you_mean(k, CHANGE_KEYS)
                problems.append(doc.problem("E-OVERLAY-KEY", f"unknown key '{k}' in a change", cp + (k,), key=True,
                                            hint=(h + " " if h else "") + "keys: " + ", ".join(CHANGE_KEYS)))
        ops = [k for k in ("set", "add", "remove") if k in c]
        if len(ops) != 1:
            problems.append(doc.problem("E-OVERLAY-OP", "a change has exactly one of 'set', 'add', 'remove'", cp))
            continue
        op = ops[0]
        if op == "remove" and c["remove"] is not True:
            problems.append(doc.problem("E-OVERLAY-OP", "write 'remove: true'", cp + ("remove",)))
            continue
        segs = parse_path(c.get("path"))
        if isinstance(segs, str):
            problems.append(doc.problem("E-OVERLAY-PATH", segs, cp + ("path",)))
            continue
        file = c.get("file", POLICY_FILE)
        if not isinstance(file, str) or not file:
            problems.append(doc.problem("E-OVERLAY-FILE", "'file' names a file of the pack, e.g. policy.yaml",
                                        cp + ("file",)))
            continue
        packkey = c.get("pack")
        if packkey is not None and (not isinstance(packkey, str) or "@" not in packkey):
            problems.append(doc.problem("E-OVERLAY-PACK", "'pack' is REGION@VERSION of the base pack or one it extends",
                                        cp + ("pack",)))
            continue
        changes.append(Change(i, c["path"], segs, file, packkey, op, c.get(op), doc.pos(cp + ("path",))))
    if problems:
        raise OverlayError(problems)
    base = d.get("base")
    return Reform(name=str(d.get("reform") or p.stem), base_key=str(base) if base else None, changes=changes,
                  file=str(p), doc=doc)


# ------------------------------------------------------------------ applying


def _walk(data: Any, segs: list[Seg], want_parent: bool) -> tuple[Any, tuple, str | None]:
    """Follow segs; returns (value or (container, last step) when want_parent, numeric path, error)."""
    cur = data
    path: tuple = ()
    last = len(segs) - 1
    for n, s in enumerate(segs):
        final = n == last
        if s.key is not None:
            if not isinstance(cur, dict):
                return None, path, f"'{path_str(path) or '(file)'}' is not a mapping, so it has no key '{s.key}'"
            if s.key not in cur:
                if final and want_parent and s.index is None and s.match is None:
                    return (cur, s.key), path + (s.key,), None
                h = did_you_mean(s.key, list(cur))
                return None, path, (f"'{path_str(path) or '(file)'}' has no key '{s.key}'"
                                    + (f" — {h}" if h else f"; keys there: {', '.join(map(str, list(cur)[:12]))}"))
            if final and want_parent and s.index is None and s.match is None:
                return (cur, s.key), path + (s.key,), None
            cur = cur[s.key]
            path += (s.key,)
        if s.index is not None or s.match is not None:
            if not isinstance(cur, list):
                return None, path, f"'{path_str(path)}' is not a list, so [{s.index if s.index is not None else '='.join(s.match)}] selects nothing"
            if s.index is not None:
                i = s.index if s.index >= 0 else len(cur) + s.index
                if not 0 <= i < len(cur):
                    return None, path, f"'{path_str(path)}' has {len(cur)} item(s); there is no [{s.index}]"
            else:
                f, v = s.match
                hits = [k for k, item in enumerate(cur) if isinstance(item, dict) and str(item.get(f)) == v]
                if not hits:
                    have = [str(item.get(f)) for item in cur if isinstance(item, dict) and f in item]
                    h = did_you_mean(v, have)
                    return None, path, (f"'{path_str(path)}' has no item with {f} = '{v}'"
                                        + (f" — {h}" if h else (f"; {f}s there: {', '.join(have[:12])}" if have
                                                                else f"; its items have no '{f}'")))
                if len(hits) > 1:
                    return None, path, f"'{path_str(path)}' has {len(hits)} items with {f} = '{v}'; use a position"
                i = hits[0]
            if final and want_parent:
                return (cur, i), path + (i,), None
            cur = cur[i]
            path += (i,)
    return cur, path, None


def _plain(v: Any) -> Any:
    """YAML floats as exact decimals (as the pack reader takes them)."""
    if isinstance(v, float):
        return Decimal(repr(v))
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def apply_overlay(ps: PackSet, base: CompiledPack, reform: Reform) -> CompiledPack:
    """The base pack with the overlay's changes, compiled. Raises OverlayError listing every problem."""
    problems: list[Problem] = []
    doc = reform.doc
    if reform.base_key and reform.base_key != base.key:
        problems.append(doc.problem("E-OVERLAY-BASE", f"the overlay is for {reform.base_key}, not {base.key}",
                                    ("base",), hint="use --base " + reform.base_key + " or change 'base'"))
        raise OverlayError(problems)
    # fresh, complete raw documents of the chain (never the files themselves: nothing is written)
    raws: dict[str, RawPack] = {}
    for key in base.chain:
        r = ps.raws.get(key)
        if r is None:
            problems.append(Problem("E-OVERLAY-PACK", f"pack {key} of the chain was not found", file=reform.file))
            continue
        raws[key] = load_pack(Path(r.dir))
    if problems:
        raise OverlayError(problems)
    touched: dict[tuple[str, str], list[Change]] = {}
    for c in reform.changes:
        key = c.pack or base.key
        cp = ("changes", c.i)
        if key not in raws:
            problems.append(doc.problem("E-OVERLAY-PACK", f"{key} is not {base.key} nor a pack it extends",
                                        cp + ("pack",), hint="the chain: " + " → ".join(base.chain)))
            continue
        raw = raws[key]
        target = _target(raw, c.file)
        if target is None:
            files = [PACK_FILE] + [n for n, a in ((POLICY_FILE, raw.policy), (RESTRICTIONS_FILE, raw.restrictions),
                                                  (CODES_FILE, raw.codes)) if a is not None] + \
                [cf.file for cf in raw.catalogues]
            h = did_you_mean(c.file, files)
            problems.append(doc.problem("E-OVERLAY-FILE", f"{key} has no file '{c.file}'",
                                        cp + ("file",) if c.file != POLICY_FILE else cp + ("path",),
                                        hint=(h + " " if h else "") + "files: " + ", ".join(files)))
            continue
        touched.setdefault((key, c.file), []).append(c)
    if problems:
        raise OverlayError(problems)

    for (key, file), changes in touched.items():
        raw = raws[key]
        tgt = _target(raw, file)
        if isinstance(tgt, Document):
            data = copy.deepcopy(tgt.data)
            for c in changes:
                err = _apply(data, c, catalogue=False)
                if err:
                    problems.append(doc.problem("E-OVERLAY-PATH", f"{err} (in {file} of {key})",
                                                ("changes", c.i, "path")))
                    continue
                line, _ = tgt.pos(c.resolved)
                c.orig_pos = (tgt.file, line)
            new = Document(file=tgt.file, data=data, positions=tgt.positions, key_positions=tgt.key_positions,
                           lines=tgt.lines, raw=tgt.raw)
            _replace_doc(raw, file, new)
        else:  # a catalogue file: its typed entries
            cf = tgt
            root = {"entries": [dict(e) if isinstance(e, dict) else e for e in cf.entries]}
            for c in changes:
                err = _apply(root, c, catalogue=True)
                if err:
                    problems.append(doc.problem("E-OVERLAY-PATH", f"{err} (in {file} of {key})",
                                                ("changes", c.i, "path")))
                    continue
                if len(c.resolved) >= 2 and c.resolved[0] == "entries" and isinstance(c.resolved[1], int) and \
                        c.resolved[1] < len(cf.locate):
                    c.orig_pos = (cf.locate[c.resolved[1]][0], cf.locate[c.resolved[1]][1])
            locate = list(cf.locate) + [(reform.file, changes[-1].src[0], 1)] * max(0, len(root["entries"]) - len(cf.locate))
            cf.entries = root["entries"]
            cf.locate = locate[:len(cf.entries)]
    if problems:
        raise OverlayError(problems)

    # the changed documents pass the same schema checks as any pack file
    from ..validate.schema import validate_document, validate_rows
    checked: list[Problem] = []
    for (key, file) in touched:
        raw = raws[key]
        tgt = _target(raw, file)
        if isinstance(tgt, Document):
            name = SCHEMAS.get(file)
            if name:
                checked += validate_document(tgt, name)
        else:
            checked += validate_rows([e for e in tgt.entries if isinstance(e, dict)], "catalogue-entry.schema.json",
                                     lambda i, path, key_: (file, 0, 0, None))
    comp: list[Problem] = []
    pack = None
    if not any(p.severity == "error" for p in checked):
        parts = [read_part(raws[k], comp) for k in base.chain]
        pack = compile_chain(parts, comp)
    found = [_relocate(p, reform) for p in checked + comp]
    if pack is None or any(p.severity == "error" for p in found):
        raise OverlayError([p for p in found if p.severity == "error"] or
                           [Problem("E-OVERLAY", "the reformed pack did not compile", file=reform.file)])
    reform.warnings = [p for p in found if p.severity == "warning"]
    # a label of its own: region@version+overlay, with the hash of its content
    info = pack.info.model_copy(update={"version": f"{pack.info.version}+{Path(reform.file).stem}",
                                        "description": f"{base.key} with the overlay {reform.file}: {reform.name}"})
    pack = pack.model_copy(update={"info": info})
    fields_ = {k: getattr(pack, k) for k in type(pack).model_fields}
    return pack.model_copy(update={"content_hash": content_hash(fields_)})


def _target(raw: RawPack, file: str):
    if file == PACK_FILE:
        return raw.meta
    if file == POLICY_FILE:
        return raw.policy
    if file == RESTRICTIONS_FILE:
        return raw.restrictions
    if file == CODES_FILE:
        return raw.codes
    for cf in raw.catalogues:
        if cf.file == file:
            return cf
    return None


def _replace_doc(raw: RawPack, file: str, new: Document) -> None:
    if file == PACK_FILE:
        raw.meta = new
    elif file == POLICY_FILE:
        raw.policy = new
    elif file == RESTRICTIONS_FILE:
        raw.restrictions = new
    elif file == CODES_FILE:
        raw.codes = new


def _apply(data: Any, c: Change, catalogue: bool) -> str | None:
    value = _plain(c.value) if catalogue else c.value
    if c.op == "set":
        got, path, err = _walk(data, c.segs, want_parent=True)
        if err:
            return err
        container, step = got
        if isinstance(container, dict) and step not in container:
            return (f"'{path_str(path)}' does not exist (use 'add' to create a key)"
                    + (f" — {did_you_mean(step, list(container))}" if did_you_mean(step, list(container)) else ""))
        container[step] = value
        c.resolved = path
        return None
    if c.op == "remove":
        got, path, err = _walk(data, c.segs, want_parent=True)
        if err:
            return err
        container, step = got
        if isinstance(container, dict) and step not in container:
            return f"'{path_str(path)}' does not exist"
        del container[step]
        c.resolved = path
        return None
    # add: a new key of a mapping, or an item appended to a list
    got, path, err = _walk(data, c.segs, want_parent=True)
    if err:
        return err
    container, step = got
    if isinstance(container, dict) and step in container:
        target = container[step]
        if isinstance(target, list):
            target.append(value)
            c.resolved = path + (len(target) - 1,)
            return None
        return f"'{path_str(path)}' exists already (use 'set' to change it)"
    if isinstance(container, list):
        return f"'{path_str(path)}' is a list item; 'add' appends to a list: give the list's path"
    container[step] = value
    c.resolved = path
    return None


def _relocate(p: Problem, reform: Reform) -> Problem:
    """A problem at a changed value points at the overlay line that changed it."""
    for c in reform.changes:
        if not c.resolved:
            continue
        ps = path_str(c.resolved)
        hit = (p.path is not None and (p.path == ps or p.path.startswith(ps + ".") or p.path.startswith(ps + "["))) \
            or (c.orig_pos is not None and (p.file, p.line) == c.orig_pos)
        if hit:
            line, col = c.src
            return Problem(p.code, p.message + f" (value set by the overlay, change {c.i + 1}: {c.path})",
                           file=reform.file, line=line, col=col, severity=p.severity, hint=p.hint, path=p.path,
                           source_line=reform.doc.lines[line - 1] if 0 < line <= len(reform.doc.lines) else None)
    return p


def resolve_pack(ps: PackSet, spec: str, what: str = "--base") -> CompiledPack:
    """REGION@VERSION → its compiled pack (when it extends a region with several versions, the chain
    in force on the version's first day)."""
    if "@" not in spec:
        raise OverlayError([Problem("E-PACK-SPEC", f"{what} '{spec}' is not REGION@VERSION (e.g. 110000@2025.1)",
                                    file=what)])
    region, _, version = spec.partition("@")
    found = ps.version_of(region, version)
    if not found:
        known = sorted({p.key for p in ps.packs() if p.info.region == region})
        raise OverlayError([Problem("E-PACK-SPEC", f"{what}: no compiled pack {spec}", file=what,
                                    hint=("versions of " + region + ": " + ", ".join(known)) if known else
                                    f"no pack of region {region}; run 'rules-engine packs'")])
    if len(found) == 1:
        return found[0]
    raw = ps.raws[spec]
    return ps.select(region, str(raw.meta.data["effective"]["from"]))
