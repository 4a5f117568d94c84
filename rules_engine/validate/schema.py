"""JSON Schema validation, with each problem located at the offending YAML node or CSV cell.

The schemas in `schemas/` are the one source of structure (editors use them too). jsonschema
reports paths; we turn them into file:line:col plus an analyst-readable message ("unknown key
'valeu' … did you mean 'value'?", "expected a number, found the text '1300'"). For catalogue
rows — tens of thousands of them — a fastjsonschema validator compiled from the *same* entry
schema screens each row in ~2 µs, and only failing rows go through jsonschema for the full,
located list of problems.
"""
from __future__ import annotations

import copy
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

import fastjsonschema
import jsonschema
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource

from ..packs.source import Document, Path_
from ..problems import Problem, did_you_mean

_BASE = "https://rules-engine.invalid/schemas/"


def schema_dir() -> Path:
    env = os.environ.get("RULES_ENGINE_SCHEMAS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "schemas"


@lru_cache(maxsize=None)
def _registry() -> Registry:
    resources = []
    for p in sorted(schema_dir().glob("*.schema.json")):
        data = json.loads(p.read_text(encoding="utf-8"))
        data = dict(data, **{"$id": _BASE + p.name})
        resources.append((_BASE + p.name, Resource.from_contents(data)))
    return Registry().with_resources(resources)


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    return _registry().contents(_BASE + name)


@lru_cache(maxsize=None)
def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_schema(name), registry=_registry(),
                                           format_checker=jsonschema.FormatChecker())


def _inline_refs(node: Any, current: str, seen: tuple = ()) -> Any:
    """Bundle a schema into one self-contained document (for fastjsonschema)."""
    if isinstance(node, dict):
        if "$ref" in node:
            ref = node["$ref"]
            target_file, _, pointer = ref.partition("#")
            file = target_file or current
            doc = load_schema(file)
            target: Any = doc
            for part in [p for p in pointer.split("/") if p]:
                target = target[part]
            key = (file, pointer)
            if key in seen:  # recursive: leave open
                return {}
            rest = {k: v for k, v in node.items() if k != "$ref"}
            merged = _inline_refs(target, file, seen + (key,))
            if rest:
                return {"allOf": [merged, _inline_refs(rest, current, seen)]}
            return merged
        return {k: _inline_refs(v, current, seen) for k, v in node.items()
                if k not in ("$schema", "$id", "$defs", "examples", "title", "description", "default", "format")}
    if isinstance(node, list):
        return [_inline_refs(v, current, seen) for v in node]
    return node


@lru_cache(maxsize=None)
def fast_validator(name: str) -> Callable[[Any], Any]:
    bundled = _inline_refs(copy.deepcopy(load_schema(name)), name)
    return fastjsonschema.compile(bundled)


# ------------------------------------------------------------------ messages

_TYPE_WORDS = {"string": "text", "number": "a number", "integer": "a whole number", "object": "a mapping",
               "array": "a list", "boolean": "true/false", "null": "nothing"}


def _found(v: Any) -> str:
    if v is None:
        return "nothing"
    if isinstance(v, bool):
        return f"{str(v).lower()}"
    if isinstance(v, (int, float)):
        return f"the number {v}"
    if isinstance(v, str):
        return f"the text '{v}'"
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    return type(v).__name__


def _expected_types(t: Any) -> str:
    ts = t if isinstance(t, list) else [t]
    return " or ".join(_TYPE_WORDS.get(x, x) for x in ts)


def _subschema_label(schema: dict) -> str | None:
    return schema.get("title") or (schema.get("description", "").split(".")[0] or None)


def _narrow(err: ValidationError) -> ValidationError:
    """For oneOf/anyOf, descend to the most relevant branch error when there is one."""
    while err.validator in ("oneOf", "anyOf") and err.context:
        # Prefer branches whose errors are deeper than the oneOf itself (the value had the right shape)
        deeper = [e for e in err.context if len(e.absolute_path) > len(err.absolute_path)]
        if deeper:
            err = best_match(deeper)
            continue
        non_type = [e for e in err.context if e.validator not in ("type", "const", "enum", "required")]
        if len(non_type) == 1:
            err = non_type[0]
            continue
        break
    return err


def error_to_problem(err: ValidationError, locate: Callable[[Path_, bool], tuple[str, int, int, str | None]],
                     code_prefix: str = "E-SCHEMA") -> Problem:
    err = _narrow(err)
    path = tuple(err.absolute_path)
    v = err.validator
    inst = err.instance
    key = False
    hint = None
    code = f"{code_prefix}-{str(v).upper()}"
    if v == "additionalProperties":
        allowed = list(err.schema.get("properties", {}))
        extra = [k for k in inst if k not in allowed] if isinstance(inst, dict) else []
        bad = extra[0] if extra else "?"
        path = path + (bad,)
        key = True
        code = f"{code_prefix}-UNKNOWN-KEY"
        msg = f"unknown key '{bad}'"
        h = did_you_mean(bad, allowed)
        hint = (h + " " if h else "") + ("allowed keys: " + ", ".join(allowed) if allowed else "")
        if len(extra) > 1:
            msg += f" (and {', '.join(repr(e) for e in extra[1:])})"
    elif v == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        code = f"{code_prefix}-MISSING"
        msg = f"missing required key '{missing}'"
        prop = err.schema.get("properties", {}).get(missing, {})
        label = _subschema_label(prop) if isinstance(prop, dict) else None
        if label:
            hint = f"'{missing}': {label}"
    elif v == "type":
        msg = f"expected {_expected_types(err.validator_value)}, found {_found(inst)}"
        if isinstance(inst, (int, float)) and "string" in (err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]):
            hint = f"codes and versions are text: write '{inst}' in quotes (an unquoted 000000 would become 0)"
        elif isinstance(inst, str) and err.validator_value in ("number", "integer"):
            hint = "write the number without quotes"
    elif v == "enum":
        choices = [str(c) for c in err.validator_value]
        msg = f"{_found(inst)} is not one of: {', '.join(choices)}"
        hint = did_you_mean(str(inst), choices)
        code = f"{code_prefix}-VALUE"
    elif v == "const":
        msg = f"expected {err.validator_value!r}, found {_found(inst)}"
    elif v == "pattern":
        label = _subschema_label(err.schema)
        msg = f"{_found(inst)} does not have the expected form" + (f" ({label})" if label else "")
        ex = err.schema.get("examples")
        if ex:
            hint = "for example: " + ", ".join(repr(e) for e in ex[:2])
        code = f"{code_prefix}-FORM"
    elif v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        word = {"minimum": "below the minimum", "maximum": "above the maximum",
                "exclusiveMinimum": "not above", "exclusiveMaximum": "not below"}[v]
        msg = f"{_found(inst)} is {word} {err.validator_value}"
        if err.schema.get("maximum") == 1 and v == "maximum":
            hint = "ratios are written as fractions: 85 % is 0.85"
            code = "E-RATIO-RANGE"
        else:
            code = f"{code_prefix}-RANGE"
    elif v in ("minItems", "minLength", "minProperties"):
        msg = f"{_found(inst)} is empty or too short"
    elif v == "maxLength":
        msg = f"{_found(inst)} is longer than {err.validator_value} characters"
    elif v == "format":
        msg = f"{_found(inst)} is not a valid {err.validator_value}"
        hint = "dates are written YYYY-MM-DD" if err.validator_value == "date" else None
    elif v in ("oneOf", "anyOf"):
        labels = []
        for sub in err.validator_value:
            if isinstance(sub, dict):
                if "required" in sub and len(sub) == 1:
                    labels.append("'" + "', '".join(sub["required"]) + "'")
                elif sub.get("type") == "object" and sub.get("required"):
                    labels.append("{" + ", ".join(f"{k}: …" for k in sub["required"]) + "}")
                elif "type" in sub:
                    labels.append(_expected_types(sub["type"]))
                elif "$ref" in sub:
                    labels.append(sub["$ref"].split("/")[-1])
                elif "enum" in sub:
                    labels.append("one of " + ", ".join(map(str, sub["enum"])))
        if labels and all(l.startswith("'") for l in labels):
            msg = "exactly one of " + ", ".join(labels) + " must be given"
        else:
            msg = f"{_found(inst)} does not fit any allowed form" + (f" (expected: {'; '.join(labels)})" if labels else "")
        if isinstance(inst, dict):  # a mapping with a misspelt key: name the nearest key of the allowed forms
            keys = [k for sub in err.validator_value if isinstance(sub, dict) for k in sub.get("properties", {})]
            unknown = [str(k) for k in inst if k not in keys]
            if unknown and keys:
                hint = did_you_mean(unknown[0], keys) or ("keys of the allowed forms: " + ", ".join(keys))
    else:
        msg = err.message
    file, line, col, src = locate(path, key)
    pstr = _path_str(path)
    return Problem(code=code, message=msg, file=file, line=line, col=col, hint=hint or None,
                   path=pstr if path else None, source_line=src)


def _path_str(path: Path_) -> str:
    from ..packs.source import path_str
    return path_str(path)


def validate_document(doc: Document, schema_name: str, data: Any | None = None) -> list[Problem]:
    """Every schema problem of a YAML document, located."""
    v = validator(schema_name)
    data = doc.data if data is None else data

    def locate(path: Path_, key: bool) -> tuple[str, int, int, str | None]:
        line, col = doc.pos(path, key=key)
        src = doc.lines[line - 1] if 0 < line <= len(doc.lines) else None
        return doc.file, line, col, src

    out = [error_to_problem(e, locate) for e in v.iter_errors(data)]
    return _dedupe(out)


def _dedupe(problems: Iterable[Problem]) -> list[Problem]:
    seen = set()
    out = []
    for p in problems:
        k = (p.file, p.line, p.col, p.code, p.message)
        if k not in seen:
            seen.add(k)
            out.append(p)
    return out


def validate_rows(rows: list[dict], schema_name: str,
                  locate_row: Callable[[int, Path_, bool], tuple[str, int, int, str | None]]) -> list[Problem]:
    """Validate many small objects: fast screen, full located report only for failing rows."""
    fast = fast_validator(schema_name)
    full = validator(schema_name)
    problems: list[Problem] = []
    for i, row in enumerate(rows):
        try:
            fast(row)
            continue
        except fastjsonschema.JsonSchemaException:
            pass
        for e in full.iter_errors(row):
            problems.append(error_to_problem(e, lambda path, key, i=i: locate_row(i, path, key)))
    return _dedupe(problems)
