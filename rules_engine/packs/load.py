"""Load: find packs on disk and read their files into located documents, checked by schema.

This stage knows files, not policy: it reads `pack.yaml`, `policy.yaml`, `restrictions.yaml`
and the catalogue files a pack lists, checks each against its JSON Schema, and returns a
`RawPack` with every problem found. Nothing here raises for bad input.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..problems import Problem
from ..validate.schema import load_schema, validate_document, validate_rows
from .source import Document, Table, read_csv, read_yaml

PACK_FILE = "pack.yaml"
POLICY_FILE = "policy.yaml"
RESTRICTIONS_FILE = "restrictions.yaml"
CODES_FILE = "codes.yaml"
KNOWN_DIRS = {"tests", "catalogue", "coding", "audit", "docs"}


@dataclass
class CatalogueFile:
    kind: str
    file: str                      # as written in pack.yaml
    spec_path: tuple               # where pack.yaml lists it
    entries: list[dict]            # typed rows (numbers as Decimal)
    locate: list[tuple[str, int, int]]  # (file, line, col) of each entry
    doc: Document | None = None
    table: Table | None = None


@dataclass
class RawPack:
    dir: Path
    display: str
    meta: Document | None
    policy: Document | None = None
    restrictions: Document | None = None
    codes: Document | None = None
    catalogues: list[CatalogueFile] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    raw_digest: str = ""
    complete: bool = True  # False: only pack.yaml parsed, other files hashed (compiled-cache path)
    base: Path | None = None  # what display paths are relative to
    coding_digest: str | None = None  # digest of coding/ (None: the pack has none)
    audit_digest: str | None = None   # digest of audit/ (None: the pack has none)

    @property
    def ok(self) -> bool:
        return self.meta is not None and isinstance(self.meta.data, dict)

    def get(self, key: str, default: Any = None) -> Any:
        if not self.ok:
            return default
        return self.meta.data.get(key, default)

    @property
    def region(self) -> str | None:
        r = self.get("region")
        return r if isinstance(r, str) else None

    @property
    def version(self) -> str | None:
        v = self.get("version")
        return v if isinstance(v, str) else None

    @property
    def key(self) -> str:
        return f"{self.region}@{self.version}"


def discover(root: Path) -> list[Path]:
    """Every pack folder under `root` (a folder holding pack.yaml), or `root` itself."""
    root = Path(root)
    if (root / PACK_FILE).is_file():
        return [root]
    if not root.is_dir():
        return []
    found = sorted({p.parent for p in root.rglob(PACK_FILE)
                    if not any(part.startswith(".") for part in p.relative_to(root).parts)})
    # a pack folder nested inside another pack (e.g. test fixtures) is its own pack too
    return found


def _display(path: Path, base: Path | None) -> str:
    try:
        if base is not None:
            return str(path.relative_to(base))
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def load_pack(pack_dir: Path, base: Path | None = None, *, parse_files: bool = True) -> RawPack:
    """Read a pack folder. With parse_files=False only pack.yaml is parsed and the other files are
    hashed: enough to find a compiled pack in the cache without paying for parsing."""
    pack_dir = Path(pack_dir)
    disp_dir = _display(pack_dir, base)
    digest = hashlib.sha256()
    problems: list[Problem] = []

    def rel(name: str) -> str:
        return str(Path(disp_dir) / name) if disp_dir not in (".", "") else name

    meta, ps = read_yaml(pack_dir / PACK_FILE, rel(PACK_FILE))
    problems += ps
    raw = RawPack(dir=pack_dir, display=disp_dir, meta=meta, problems=problems, base=base)
    if meta is None:
        return raw
    digest.update(b"pack.yaml\0" + meta.raw)
    if (pack_dir / "coding").is_dir():
        from ..coding.load import coding_digest
        raw.coding_digest = coding_digest(pack_dir)
        digest.update(b"coding\0" + raw.coding_digest.encode())
    if (pack_dir / "audit").is_dir():
        from ..audit.load import audit_digest
        raw.audit_digest = audit_digest(pack_dir) or None
        digest.update(b"audit\0" + (raw.audit_digest or "").encode())
    if not isinstance(meta.data, dict):
        problems.append(meta.problem("E-SCHEMA-TYPE", "pack.yaml must be a mapping of keys such as region, "
                                     "version, effective", ()))
        raw.meta = None
        return raw
    problems += validate_document(meta, "pack.schema.json")

    # folder layout: regions/<region>/<version>/ — the names must agree with pack.yaml
    region, version = raw.region, raw.version
    if version and pack_dir.name != version:
        problems.append(meta.problem("E-PACK-FOLDER", f"version '{version}' does not match the folder name "
                                     f"'{pack_dir.name}'", ("version",),
                                     hint=f"rename the folder to '{version}' or fix the version"))
    if region and pack_dir.parent.name != region and pack_dir.parent.name.isdigit():
        problems.append(meta.problem("E-PACK-FOLDER", f"region '{region}' does not match the folder name "
                                     f"'{pack_dir.parent.name}'", ("region",)))

    if not parse_files:
        raw.complete = False
        names = [POLICY_FILE, RESTRICTIONS_FILE, CODES_FILE] + [c.get("file") for c in (meta.data.get("catalogues") or [])
                                                    if isinstance(c, dict) and isinstance(c.get("file"), str)]
        for name in names:
            path = pack_dir / name
            if path.is_file():
                try:
                    digest.update(name.encode() + b"\0" + path.read_bytes())
                except OSError:
                    raw.complete = True  # unreadable: force the full path, which reports it
        raw.raw_digest = digest.hexdigest()
        return raw

    for name, attr, schema in ((POLICY_FILE, "policy", "policy.schema.json"),
                               (RESTRICTIONS_FILE, "restrictions", "restrictions.schema.json"),
                               (CODES_FILE, "codes", "codes.schema.json")):
        path = pack_dir / name
        if path.is_file():
            doc, ps = read_yaml(path, rel(name))
            problems += ps
            if doc is not None:
                digest.update(name.encode() + b"\0" + doc.raw)
                if doc.data is None:
                    doc.data = {}
                if not isinstance(doc.data, dict):
                    problems.append(doc.problem("E-SCHEMA-TYPE", f"{name} must be a mapping", ()))
                else:
                    problems += validate_document(doc, schema)
                    setattr(raw, attr, doc)

    cats = meta.data.get("catalogues") or []
    if isinstance(cats, list):
        for i, spec in enumerate(cats):
            if not isinstance(spec, dict) or not isinstance(spec.get("file"), str) or spec.get("kind") not in (
                    "drug", "service", "consumable"):
                continue  # the schema already reported it
            cf = _load_catalogue(pack_dir, rel, spec, ("catalogues", i), meta, problems, digest)
            if cf is not None:
                raw.catalogues.append(cf)

    # files the pack holds but nothing reads: probably a typo in a name
    listed = {PACK_FILE, POLICY_FILE, RESTRICTIONS_FILE, CODES_FILE} | {c.get("file") for c in cats if isinstance(c, dict)}
    for p in sorted(pack_dir.rglob("*")):
        if not p.is_file() or p.name.startswith("."):
            continue
        relp = str(p.relative_to(pack_dir))
        top = relp.split("/")[0]
        if relp in listed or top in ("tests", "docs", "coding", "audit") or p.suffix not in (".yaml", ".yml", ".csv"):
            continue
        problems.append(Problem("W-PACK-UNUSED", f"file '{relp}' is not read by the pack",
                                file=rel(relp), severity="warning",
                                hint="list catalogue files under 'catalogues' in pack.yaml; policy and restrictions "
                                     "must be named policy.yaml and restrictions.yaml"))
    raw.raw_digest = digest.hexdigest()
    return raw


def _load_catalogue(pack_dir: Path, rel, spec: dict, spec_path: tuple, meta: Document,
                    problems: list[Problem], digest) -> CatalogueFile | None:
    fname: str = spec["file"]
    path = pack_dir / fname
    try:
        inside = path.resolve().is_relative_to(pack_dir.resolve())
    except OSError:
        inside = False
    if not inside:
        problems.append(meta.problem("E-PACK-FILE", f"catalogue file '{fname}' lies outside the pack folder",
                                     spec_path + ("file",)))
        return None
    if not path.is_file():
        problems.append(meta.problem("E-PACK-FILE", f"catalogue file '{fname}' does not exist",
                                     spec_path + ("file",), hint="check the path; it is relative to the pack folder"))
        return None
    if fname.endswith(".csv"):
        table, ps = read_csv(path, rel(fname))
        problems.extend(ps)
        if table is None:
            return None
        digest.update(fname.encode() + b"\0" + table.raw)
        entries, locs = _typed_rows(table, problems)
        cf = CatalogueFile(kind=spec["kind"], file=fname, spec_path=spec_path, entries=entries, locate=locs,
                           table=table)
        return cf
    doc, ps = read_yaml(path, rel(fname))
    problems.extend(ps)
    if doc is None:
        return None
    digest.update(fname.encode() + b"\0" + doc.raw)
    if not isinstance(doc.data, dict):
        problems.append(doc.problem("E-SCHEMA-TYPE", "a catalogue file is a mapping with 'entries'", ()))
        return None
    entries = doc.data.get("entries")
    shallow = dict(doc.data, entries=[]) if isinstance(entries, list) else doc.data
    problems.extend(validate_document(doc, "catalogue.schema.json", shallow))
    if doc.data.get("kind") not in (None, spec["kind"]):
        problems.append(doc.problem("E-PACK-KIND", f"this file says kind '{doc.data.get('kind')}' but pack.yaml "
                                    f"lists it as '{spec['kind']}'", ("kind",)))
    if not isinstance(entries, list):
        return None

    def locate_row(i: int, path: tuple, key: bool) -> tuple[str, int, int, str | None]:
        line, col = doc.pos(("entries", i) + tuple(path), key=key)
        return doc.file, line, col, doc.lines[line - 1] if 0 < line <= len(doc.lines) else None

    typed: list[dict] = []
    for e in entries:
        if isinstance(e, dict):
            e = {k: (Decimal(repr(v)) if isinstance(v, float) else v) for k, v in e.items()}
        typed.append(e)
    problems.extend(validate_rows(typed, "catalogue-entry.schema.json", locate_row))
    locs = [(doc.file,) + doc.pos(("entries", i)) for i in range(len(entries))]
    return CatalogueFile(kind=spec["kind"], file=fname, spec_path=spec_path, entries=typed, locate=locs, doc=doc)


_NUMBER_COLS = {"selfpay_prop", "pric_uplmt_amt"}
_LIST_COLS = {"restrictions"}


def _typed_rows(table: Table, problems: list[Problem]) -> tuple[list[dict], list[tuple[str, int, int]]]:
    """CSV cells are text; give each column its schema type, locating every bad cell."""
    props = load_schema("catalogue-entry.schema.json")["properties"]
    colno = {h: i + 1 for i, h in enumerate(table.header)}
    for h in table.header:
        if h not in props:
            from ..problems import did_you_mean
            hint = did_you_mean(h, props)
            problems.append(Problem("E-CSV-COLUMN", f"unknown column '{h}'", file=table.file, line=1,
                                    col=colno[h], hint=(hint + " " if hint else "") + "columns: " + ", ".join(props)))
    rows: list[dict] = []
    locs: list[tuple[str, int, int]] = []
    for r, line in zip(table.rows, table.row_lines):
        out: dict[str, Any] = {}
        for k, v in r.items():
            if k not in props:
                continue
            v = v.strip()
            if v == "":
                continue
            if k in _NUMBER_COLS:
                try:
                    d = Decimal(v)
                    if not d.is_finite():
                        raise InvalidOperation
                    out[k] = d
                except InvalidOperation:
                    problems.append(Problem("E-CSV-VALUE", f"column '{k}': '{v}' is not a number", file=table.file,
                                            line=line, col=colno[k], path=k,
                                            hint="write a plain decimal such as 0.15 (not 15% or 0,15)"))
            elif k in _LIST_COLS:
                out[k] = [x.strip() for x in v.replace("；", ";").split(";") if x.strip()]
            else:
                out[k] = v
        rows.append(out)
        locs.append((table.file, line, 1))

    def locate_row(i: int, path: tuple, key: bool) -> tuple[str, int, int, str | None]:
        # for CSV the column is the cell's column number, not a character offset
        return table.file, table.row_lines[i], colno.get(path[0], 1) if path else 1, None

    problems.extend(validate_rows(rows, "catalogue-entry.schema.json", locate_row))
    return rows, locs
