"""Write what an import produced: deterministic text, spliced safely, replaced atomically.

- the catalogue CSV: fixed column order, rows sorted by (code, match, valid_from), one number
  format — the same input always gives the same bytes (the baseline's reproducibility test
  relies on it);
- restrictions.yaml: the generated entries live between two marker comments; a re-import
  replaces that block and leaves every hand-written entry (and its comments) as it was;
- pack.yaml: the catalogue file is added to `catalogues:` if it is not listed yet.

Every spliced file is parsed again and compared with what was meant before anything is written,
and every file is written to a temporary sibling and renamed, so a failure leaves the pack as it
was (never half a CSV).
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..packs.source import parse_yaml

CSV_COLUMNS = ("code", "match", "name", "category", "selfpay_prop", "pric_uplmt_amt", "restrictions", "valid_from",
               "valid_to", "med_chrgitm_type", "dosage_form", "catalogue_no", "note", "source")
RESTRICTIONS_HEADER = (
    "# yaml-language-server: $schema=../../../schemas/restrictions.schema.json\n"
    "# 限定支付范围: payment restrictions of this pack's catalogue entries (docs/catalogue-import.md).\n"
)


class SpliceError(Exception):
    """A generated block could not be placed in a hand-edited file without risk."""


def fmt_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, Decimal):
        s = format(v.normalize(), "f")
        return s
    if isinstance(v, (list, tuple)):
        return ";".join(str(x) for x in v)
    return str(v)


def entry_sort_key(e: dict) -> tuple:
    return (e.get("code", ""), e.get("match", "exact"), e.get("valid_from", ""))


def catalogue_csv(entries: list[dict]) -> str:
    cols = [c for c in CSV_COLUMNS if any(e.get(c) not in (None, "", [], ()) for e in entries)]
    if "code" not in cols:
        cols = ["code"] + cols
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for e in sorted(entries, key=entry_sort_key):
        w.writerow([fmt_value(e.get(c)) for c in cols])
    return buf.getvalue()


def tsv(header: list[str], rows: list[list[Any]]) -> str:
    def clean(v: Any) -> str:
        return re.sub(r"[\t\r\n]+", " ", str(v if v is not None else ""))
    return "\n".join(["\t".join(header)] + ["\t".join(clean(x) for x in r) for r in rows]) + "\n"


# ------------------------------------------------------------------ restrictions.yaml

def _q(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def restriction_yaml(entries: list[dict], indent: int, comments: dict[str, str] | None = None) -> str:
    """Entries as block-sequence items at `indent` spaces; values as JSON (valid YAML flow)."""
    pad = " " * indent
    out = []
    for e in entries:
        c = (comments or {}).get(e["id"])
        if c:
            out.append(f"{pad}# {c}")
        out.append(f"{pad}- id: {_q(e['id'])}")
        out.append(f"{pad}  text: {_q(e['text'])}")
        if "when" in e:
            out.append(f"{pad}  when: {json.dumps(e['when'], ensure_ascii=False)}")
        if "on_fail" in e:
            out.append(f"{pad}  on_fail: {e['on_fail']}")
        if e.get("review_reason"):
            out.append(f"{pad}  review_reason: {_q(e['review_reason'])}")
        if e.get("source"):
            s = e["source"]
            out.append(f"{pad}  source: {json.dumps(s, ensure_ascii=False) if isinstance(s, list) else _q(s)}")
    return "\n".join(out) + ("\n" if out else "")


def _markers(block: str) -> tuple[str, str]:
    return (f"# >>> catalogue import: {block}", f"# <<< catalogue import: {block}")


def splice_restrictions(old_text: str | None, block: str, entries: list[dict], note: str,
                        comments: dict[str, str] | None = None) -> str:
    """restrictions.yaml with the block `block` replaced by `entries` (or appended)."""
    begin, end = _markers(block)
    if old_text is None:
        body = restriction_yaml(entries, 2, comments)
        return (RESTRICTIONS_HEADER + "restrictions:\n" + f"  {begin} — {note}\n" + body + f"  {end}\n")
    lines = old_text.splitlines(keepends=True)
    bi = next((i for i, ln in enumerate(lines) if ln.strip().startswith(begin)), None)
    ei = next((i for i, ln in enumerate(lines) if ln.strip().startswith(end)), None)
    if (bi is None) != (ei is None) or (bi is not None and ei is not None and ei < bi):
        raise SpliceError(f"restrictions.yaml has only one of the two marker lines of block '{block}'")
    if bi is not None and ei is not None:
        indent = len(lines[bi]) - len(lines[bi].lstrip(" "))
        new = (f"{' ' * indent}{begin} — {note}\n" + restriction_yaml(entries, indent, comments)
               + f"{' ' * indent}{end}\n")
        return "".join(lines[:bi]) + new + "".join(lines[ei + 1:])
    doc, problems = parse_yaml(old_text, "restrictions.yaml")
    if doc is None or not isinstance(doc.data, dict):
        raise SpliceError("restrictions.yaml cannot be read: " + "; ".join(p.message for p in problems))
    items = doc.data.get("restrictions")
    text = old_text if old_text.endswith("\n") else old_text + "\n"
    if items is None:
        if "restrictions" in doc.data:   # 'restrictions:' with nothing after it
            indent = 2
        else:
            text += "restrictions:\n"
            indent = 2
    elif isinstance(items, list) and items:
        _, col = doc.pos(("restrictions", 0))
        # the position is the item's mapping; the dash sits two columns to its left
        indent = max(col - 3, 0)
        last_key = max((k for k in doc.data), key=lambda k: doc.pos((k,), key=True)[0])
        if last_key != "restrictions":
            raise SpliceError("'restrictions' is not the last key of restrictions.yaml")
    elif isinstance(items, list):
        # restrictions: []  → a block list
        text = re.sub(r"(?m)^restrictions:\s*\[\s*\]\s*$", "restrictions:", text)
        indent = 2
    else:
        raise SpliceError("'restrictions' in restrictions.yaml is not a list")
    return (text + f"{' ' * indent}{begin} — {note}\n" + restriction_yaml(entries, indent, comments)
            + f"{' ' * indent}{end}\n")


def remove_block(old_text: str, block: str) -> str:
    """restrictions.yaml without the block (a re-import that found no texts)."""
    begin, end = _markers(block)
    lines = old_text.splitlines(keepends=True)
    bi = next((i for i, ln in enumerate(lines) if ln.strip().startswith(begin)), None)
    ei = next((i for i, ln in enumerate(lines) if ln.strip().startswith(end)), None)
    if bi is not None and ei is not None and ei >= bi:
        lines = lines[:bi] + lines[ei + 1:]
    text = "".join(lines)
    doc, _ = parse_yaml(text, "restrictions.yaml")
    if doc is not None and isinstance(doc.data, dict) and doc.data.get("restrictions") is None:
        text = re.sub(r"(?m)^restrictions:\s*$", "restrictions: []", text)
    return text


def check_restrictions_text(text: str, keep_ids: list[str], new_entries: list[dict]) -> None:
    """The spliced file must hold exactly the kept entries and the new ones."""
    doc, problems = parse_yaml(text, "restrictions.yaml")
    if doc is None or not isinstance(doc.data, dict) or not isinstance(doc.data.get("restrictions"), list):
        raise SpliceError("the spliced restrictions.yaml does not parse: " + "; ".join(p.message for p in problems))
    got = [r.get("id") for r in doc.data["restrictions"] if isinstance(r, dict)]
    want = keep_ids + [e["id"] for e in new_entries]
    if sorted(got) != sorted(want) or len(got) != len(set(got)):
        raise SpliceError("the spliced restrictions.yaml does not hold the expected entries")
    by_id = {r["id"]: r for r in doc.data["restrictions"] if isinstance(r, dict)}
    for e in new_entries:
        r = by_id[e["id"]]
        if r.get("text") != e["text"] or r.get("when") != e.get("when"):
            raise SpliceError(f"restriction {e['id']} did not survive the YAML round trip")


def existing_restrictions(text: str | None, block: str) -> tuple[list[str], list[str]]:
    """(ids outside the block, ids inside it) of an existing restrictions.yaml."""
    if text is None:
        return [], []
    begin, end = _markers(block)
    inside: list[str] = []
    outside: list[str] = []
    state = 0
    for ln in text.splitlines():
        s = ln.strip()
        if s.startswith(begin):
            state = 1
            continue
        if s.startswith(end):
            state = 2
            continue
        m = re.match(r"^\s*-\s+id:\s*[\"']?([A-Za-z0-9_.-]+)", ln)
        if m:
            (inside if state == 1 else outside).append(m.group(1))
    return outside, inside


# ------------------------------------------------------------------ pack.yaml

def splice_pack_catalogue(text: str, file: str, kind: str, sources: list[str]) -> str | None:
    """pack.yaml with `file` listed under catalogues; None when it is listed already."""
    doc, problems = parse_yaml(text, "pack.yaml")
    if doc is None or not isinstance(doc.data, dict):
        raise SpliceError("pack.yaml cannot be read: " + "; ".join(p.message for p in problems))
    cats = doc.data.get("catalogues")
    if isinstance(cats, list):
        for c in cats:
            if isinstance(c, dict) and c.get("file") == file:
                if c.get("kind") != kind:
                    raise SpliceError(f"pack.yaml lists {file} as kind '{c.get('kind')}', not '{kind}'")
                return None
    src = f"\n{{pad}}  source: [{', '.join(sources)}]" if sources else ""
    lines = text.splitlines(keepends=True)
    if cats is None and "catalogues" not in doc.data:
        t = text if text.endswith("\n") else text + "\n"
        return t + "catalogues:\n" + f"  - file: {file}\n    kind: {kind}" + src.format(pad="  ") + "\n"
    if not isinstance(cats, list):
        raise SpliceError("'catalogues' in pack.yaml is not a list")
    key_line = doc.pos(("catalogues",), key=True)[0]  # 1-based
    if not cats:
        lines[key_line - 1] = re.sub(r"catalogues:.*", "catalogues:", lines[key_line - 1])
        indent = 2
        insert_at = key_line
    else:
        _, col = doc.pos(("catalogues", 0))
        indent = max(col - 3, 0)
        # the list ends before the next line that starts at column 0 with a key
        insert_at = len(lines)
        for i in range(key_line, len(lines)):
            ln = lines[i]
            if ln.strip() and not ln.startswith((" ", "#", "-")):
                insert_at = i
                break
        while insert_at > key_line and not lines[insert_at - 1].strip():
            insert_at -= 1
    pad = " " * indent
    item = f"{pad}- file: {file}\n{pad}  kind: {kind}" + src.format(pad=pad) + "\n"
    return "".join(lines[:insert_at]) + item + "".join(lines[insert_at:])


def check_pack_text(text: str, file: str, old_count: int) -> None:
    doc, _ = parse_yaml(text, "pack.yaml")
    cats = doc.data.get("catalogues") if doc is not None and isinstance(doc.data, dict) else None
    ok = isinstance(cats, list) and len(cats) == old_count + 1 and any(
        isinstance(c, dict) and c.get("file") == file for c in cats)
    if not ok:
        raise SpliceError("could not add the catalogue file to pack.yaml safely; add it by hand: "
                          f"catalogues: [{{file: {file}, kind: …}}]")


# ------------------------------------------------------------------ atomic writes

def write_all(files: dict[Path, str]) -> None:
    """Write every file to a temporary sibling first, then rename them all; if a rename fails,
    the files already renamed get their old content back, so the pack is never half-updated."""
    temps: list[tuple[Path, Path]] = []
    old: dict[Path, bytes | None] = {}
    done: list[Path] = []
    try:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            old[path] = path.read_bytes() if path.is_file() else None
            fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                f.write(text)
            # mkstemp makes the file private (0600): give it the mode the file had, or the usual one
            try:
                mode = path.stat().st_mode & 0o777
            except FileNotFoundError:
                mode = 0o666 & ~_umask()
            os.chmod(tmp, mode)
            temps.append((Path(tmp), path))
        for tmp, path in temps:
            os.replace(tmp, path)
            done.append(path)
    except BaseException:
        for path in done:
            try:
                if old[path] is None:
                    path.unlink()
                else:
                    path.write_bytes(old[path])  # type: ignore[arg-type]
            except OSError:
                pass
        raise
    finally:
        for tmp, _ in temps:
            if tmp.exists():
                tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
