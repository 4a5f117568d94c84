"""Mapping files: how one spreadsheet layout becomes catalogue fields.

A mapping is data (schemas/catalogue-mapping.schema.json), not code, so next year's release of
the same layout is imported with the same file and an analyst can write one for a regional
layout without Python. This module loads and checks a mapping (located problems, like every
pack file) and resolves its column references against the header actually found in a file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..packs.source import Document, read_yaml
from ..problems import Problem, did_you_mean
from ..validate.schema import validate_document

SHIPPED_DIR = Path(__file__).resolve().parent / "mappings"

ENTRY_FIELDS = ("code", "match", "name", "category", "selfpay_prop", "pric_uplmt_amt", "valid_from", "valid_to",
                "validity", "med_chrgitm_type", "dosage_form", "catalogue_no", "note", "source")

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
# placeholders every template may use besides source columns
BUILTIN_PLACEHOLDERS = {"_sheet": "the sheet's name (xlsx)", "_file": "the file name without extension",
                        "_row": "the row number"}


@dataclass(frozen=True)
class FieldSpec:
    """Where one field's value comes from (exactly one of columns, template, value)."""

    name: str
    columns: tuple[str | int, ...] = ()
    template: str | None = None
    lookup: dict[str, dict[str, str]] = field(default_factory=dict)
    value: Any = None
    values: dict[str, str] = field(default_factory=dict)
    required: bool = False
    width: int | None = None
    strip: str = ""

    def refs(self) -> tuple[str | int, ...]:
        """Every source column this field reads (alternatives included)."""
        if self.template is not None:
            return tuple(_PLACEHOLDER.findall(self.template))
        return self.columns


@dataclass
class Mapping:
    name: str
    file: str
    doc: Document | None
    title: str = ""
    description: str = ""
    confidence: str | None = None
    kinds: tuple[str, ...] = ()
    format: str = "auto"
    encoding: str = "auto"
    sheet: str | int | None = None
    header: bool = True
    header_row: int | None = None
    fill_down: tuple[str | int, ...] = ()
    skip_when_empty: tuple[str | int, ...] = ()
    skip_values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    restriction_text: FieldSpec | None = None
    restriction_id: FieldSpec | None = None
    restriction_source: tuple[str, ...] = ()
    restriction_parse: bool = True
    link: dict[str, Any] | None = None
    link_fields: dict[str, FieldSpec] = field(default_factory=dict)

    def required_refs(self) -> list[tuple[str, tuple[str | int, ...]]]:
        """(field, alternatives) that must be present in the header for the file to be read at all."""
        out = []
        for f in self.fields.values():
            if f.columns and (f.required or f.name in ("code", "name", "category")):
                out.append((f.name, f.columns))
        for f in (self.restriction_text,):
            if f is not None and f.columns:
                out.append(("restrictions.text", f.columns))
        for name, f in self.link_fields.items():
            if f.columns and name == "name":
                out.append(("link.name", f.columns))
        return out

    def all_specs(self) -> list[FieldSpec]:
        specs = list(self.fields.values()) + list(self.link_fields.values())
        specs += [s for s in (self.restriction_text, self.restriction_id) if s is not None]
        return specs


def shipped_mappings() -> dict[str, Path]:
    """name → file of the mappings shipped with the package."""
    return {p.stem: p for p in sorted(SHIPPED_DIR.glob("*.yaml"))}


def resolve_mapping_path(ref: str) -> Path | None:
    """A path to a mapping file, or the name of a shipped mapping."""
    p = Path(ref)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return p
    return shipped_mappings().get(ref)


def load_mapping(path: Path, display: str | None = None) -> tuple[Mapping | None, list[Problem]]:
    """Read and check a mapping file; every problem located at its YAML line."""
    doc, problems = read_yaml(path, display or str(path))
    if doc is None:
        return None, problems
    if not isinstance(doc.data, dict):
        return None, problems + [doc.problem("E-MAPPING-SHAPE", "a mapping file is a YAML mapping with 'name' and "
                                             "'fields'")]
    problems += validate_document(doc, "catalogue-mapping.schema.json")
    if any(p.severity == "error" for p in problems):
        return None, problems
    d = doc.data
    src = d.get("source") or {}
    m = Mapping(name=d["name"], file=doc.file, doc=doc, title=d.get("title", ""), description=d.get("description", ""),
                confidence=d.get("confidence"), kinds=tuple(d.get("kinds") or ()), format=src.get("format", "auto"),
                encoding=src.get("encoding", "auto"), sheet=src.get("sheet"), header=src.get("header", True),
                header_row=src.get("header_row"), fill_down=tuple(src.get("fill_down") or ()),
                skip_when_empty=tuple(src.get("skip_when_empty") or ()),
                skip_values={str(k): tuple(str(x) for x in v) for k, v in (src.get("skip_values") or {}).items()})
    for name, spec in (d.get("fields") or {}).items():
        m.fields[name] = _spec(name, spec)
    m.defaults = {k: str(v) for k, v in (d.get("defaults") or {}).items()}
    r = d.get("restrictions")
    if r:
        m.restriction_text = _spec("restrictions.text", r["text"])
        m.restriction_id = _spec("restrictions.id", r["id"])
        srcs = r.get("source")
        m.restriction_source = (srcs,) if isinstance(srcs, str) else tuple(srcs or ())
        m.restriction_parse = r.get("parse", True)
    link = d.get("link")
    if link and link.get("include"):
        other = shipped_mappings().get(link["include"])
        base_link = None
        if other is not None and other.resolve() != path.resolve():
            base, ps = load_mapping(other)
            base_link = base.link if base is not None else None
        if base_link is None:
            problems.append(doc.problem("E-MAPPING-INCLUDE", f"link.include: '{link['include']}' is not a shipped "
                                        "mapping with a 'link' section", ("link", "include"),
                                        hint="shipped: " + ", ".join(shipped_mappings())))
        else:
            link = {**{k: v for k, v in base_link.items() if k not in ("name", "form", "group", "include")}, **link}
    if link:
        m.link = link
        for k in ("name", "form", "group"):
            if k in link:
                m.link_fields[k] = _spec(f"link.{k}", link[k])
    # checks the schema cannot express
    if "code" not in m.fields and not link:
        problems.append(doc.problem("E-MAPPING-CODE", "the mapping gives no source for 'code' and has no 'link' "
                                    "section: rows could not be matched by any claim", ("fields",),
                                    hint="map the code column, e.g. code: {column: 医保编码}"))
    for spec in m.all_specs():
        for ref in spec.refs():
            if isinstance(ref, str) and ref in BUILTIN_PLACEHOLDERS:
                continue
            if isinstance(ref, int) and m.header:
                problems.append(doc.problem("E-MAPPING-COLUMN", f"{spec.name}: column number {ref} is only allowed "
                                            "when source.header is false", _spec_path(spec)))
            if isinstance(ref, str) and not m.header and not ref.isdigit():
                problems.append(doc.problem("E-MAPPING-COLUMN", f"{spec.name}: '{ref}' names a header but the file "
                                            "has none (source.header: false); use column numbers", _spec_path(spec)))
    return (None if any(p.severity == "error" for p in problems) else m), problems


def _spec(name: str, spec: dict) -> FieldSpec:
    col = spec.get("column")
    cols: tuple = ()
    if col is not None:
        cols = tuple(col) if isinstance(col, list) else (col,)
    return FieldSpec(name=name, columns=cols, template=spec.get("template"), lookup=dict(spec.get("lookup") or {}),
                     value=spec.get("value"), values={str(k): str(v) for k, v in (spec.get("values") or {}).items()},
                     required=bool(spec.get("required", False)), width=spec.get("width"), strip=spec.get("strip", ""))


def _spec_path(spec: FieldSpec) -> tuple:
    if spec.name.startswith("restrictions."):
        return ("restrictions", spec.name.split(".", 1)[1])
    if spec.name.startswith("link."):
        return ("link", spec.name.split(".", 1)[1])
    return ("fields", spec.name)


# ------------------------------------------------------------------ header resolution

def norm_header(h: Any) -> str:
    """Header text compared loosely: trimmed, inner whitespace and full-width spaces removed."""
    if h is None:
        return ""
    s = str(h).replace("\u3000", " ").replace("\xa0", " ")
    return re.sub(r"\s+", "", s)


def find_column(headers: list[str], ref: str | int, header: bool) -> int | None:
    """0-based index of a column reference in a (possibly merged, 'a/b') header list."""
    if not header:
        n = int(ref)
        return n - 1 if 1 <= n <= len(headers) else None
    want = norm_header(ref)
    # exact full header first, then the last part of a merged header, then any part
    for i, h in enumerate(headers):
        if norm_header(h) == want:
            return i
    for i, h in enumerate(headers):
        parts = [norm_header(p) for p in str(h).split("/")]
        if parts and parts[-1] == want:
            return i
    for i, h in enumerate(headers):
        if want in [norm_header(p) for p in str(h).split("/")]:
            return i
    return None


def missing_fields(m: Mapping) -> list[str]:
    """Fields every entry needs that the mapping (with --set values) gives no source for."""
    return [f for f in ("name", "category") if f not in m.fields]


def missing_columns(m: Mapping, headers: list[str]) -> list[tuple[str, tuple[str | int, ...], str | None]]:
    """Required fields whose column is absent: (field, alternatives, did-you-mean hint)."""
    out = []
    for fname, alts in m.required_refs():
        if any(find_column(headers, a, m.header) is not None for a in alts):
            continue
        hint = None
        if m.header:
            parts = [p for h in headers for p in str(h).split("/") if p]
            for a in alts:
                hint = did_you_mean(str(a), parts)
                if hint:
                    break
        out.append((fname, alts, hint))
    return out
