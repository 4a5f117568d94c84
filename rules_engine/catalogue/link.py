"""Link catalogue rows that carry no product code to a code table, by name and dosage form.

The national drug catalogue lists generic name + dosage form (阿帕他胺, 口服常释剂型), while
a claim line carries a product's 23/20-character 医保药品编码. Given a table of product codes
with their product names (阿帕他胺片 XL02BBA326A001010102180 …), a row links to the products
whose name it *covers*:

1. the row's own name, its parenthesised alternatives (感冒清热颗粒(片、胶囊) → 感冒清热颗粒,
   感冒清热片, 感冒清热胶囊; 埃索美拉唑(艾司奥美拉唑) → both names), and the product names its
   dosage form covers, from the mapping's templates (口服常释剂型: {name}片, {name}胶囊 …);
2. a product name is tried as written, then without a trailing parenthesis, then — only if
   nothing matched — without a salt word (盐酸…, …钠), because the catalogue names the moiety;
3. a product whose code does not start with the row's category code (XA02BC…) is not linked:
   the same words in another class are another drug;
4. a product that matches two rows is linked to neither (reported as ambiguous).

Optionally a `match: prefix` entry is written per code prefix (generic name + dosage form: 14
characters of a 西药 code, 11 of a 中成药 code) when every product of the code table under that
prefix links to the same row — so other manufacturers' products of the same drug resolve too.
Nothing is dropped: unlinked rows and unlinked products are listed with the reason.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .restrictions_parser import _norm


@dataclass
class CodeRow:
    code: str
    name: str
    row: int          # row number in the code table file


@dataclass
class LinkRow:
    index: int        # position in the importer's row list
    row: int          # source row number
    name: str
    form: str
    group: str


@dataclass
class LinkResult:
    codes: dict[int, list[tuple[CodeRow, str]]] = field(default_factory=dict)   # row index → (code row, rule)
    prefixes: dict[int, list[tuple[str, list[CodeRow]]]] = field(default_factory=dict)  # row index → prefixes
    unlinked_rows: dict[int, str] = field(default_factory=dict)                 # row index → reason
    ambiguous: list[tuple[CodeRow, list[int]]] = field(default_factory=list)
    group_mismatch: list[tuple[CodeRow, list[int]]] = field(default_factory=list)
    unmatched_codes: list[CodeRow] = field(default_factory=list)
    duplicate_codes: list[tuple[CodeRow, CodeRow]] = field(default_factory=list)
    prefix_blocked: int = 0
    resolved_by_name: int = 0     # matched two rows; linked to the one naming the product exactly


def _strip_paren(s: str) -> tuple[str, list[str]] | None:
    m = re.match(r"^(.*?)\(([^()]*)\)$", s)
    if not m or not m.group(1):
        return None
    return m.group(1), [x for x in re.split(r"[、,]", m.group(2)) if x]


def _ends_with_form(s: str, form_words: list[str]) -> str | None:
    for w in form_words:  # longest first
        if s.endswith(w) and len(s) > len(w):
            return w
    return None


def _is_alias(item: str) -> bool:
    """A parenthesised word that names the same drug (艾司奥美拉唑) rather than qualifying it
    (15AA, Ⅱ, Vero细胞): Chinese characters only."""
    return bool(re.fullmatch(r"[\u4e00-\u9fff]{2,}", item))


def row_names(name: str, form: str, forms: dict[str, list[str]], form_words: list[str]) -> dict[str, int]:
    """Every product name a catalogue row covers → 0 when the row spells it out, 1 when its dosage
    form's template makes it (a row that names a product exactly wins over one that covers it by form)."""
    n = _norm(name)
    base = {n}
    qualified: tuple[str, str] | None = None
    sp = _strip_paren(n)
    if sp:
        pre, items = sp
        fw = _ends_with_form(pre, form_words)
        if fw and items and all(i in form_words for i in items):
            stem = pre[: -len(fw)]
            base |= {pre} | {stem + i for i in items}
        elif items and all(_is_alias(i) for i in items):
            base.add(pre)
            base |= set(items)   # an alias: 埃索美拉唑(艾司奥美拉唑)
        else:
            # a qualifier (复方氨基酸(15AA), 人用狂犬病疫苗(Vero细胞)) stays part of the name; product
            # names put it after the form word: 复方氨基酸(15AA) + 注射剂 → 复方氨基酸注射液(15AA)
            qualified = (pre, n[len(pre):])
    out = {b: 0 for b in base}
    for tpl in forms.get(form, []):
        for b in base:
            out.setdefault(tpl.replace("{name}", b), 1)
        if qualified:
            out.setdefault(tpl.replace("{name}", qualified[0]) + qualified[1], 1)
    return out


def product_variants(name: str, form_words: list[str], salt_prefixes: list[str],
                     salt_suffixes: list[str]) -> tuple[list[str], list[str]]:
    """(names to try first, salt-stripped names to try when the first match nothing)."""
    n = _norm(name)
    first = [n]
    sp = _strip_paren(n)
    if sp:
        pre, items = sp
        if all(_is_alias(i) for i in items):
            first.append(pre)        # 小儿回春丸(大蜜丸) → 小儿回春丸
            if len(items) == 1 and _ends_with_form(items[0], form_words):
                first.append(items[0])   # 小儿退热合剂(小儿退热口服液)
    second: list[str] = []
    for v in list(first):
        lead = "注射用" if v.startswith("注射用") else ""
        body = v[len(lead):]
        for sp_ in salt_prefixes:
            if body.startswith(sp_) and len(body) > len(sp_) + 1:
                second.append(lead + body[len(sp_):])
        fw = _ends_with_form(body, form_words) or ""
        moiety = body[: len(body) - len(fw)] if fw else body
        for ss in salt_suffixes:
            if moiety.endswith(ss) and len(moiety) > len(ss) + 1:
                second.append(lead + moiety[: -len(ss)] + fw)
                for sp_ in salt_prefixes:
                    if moiety.startswith(sp_):
                        second.append(lead + moiety[len(sp_):-len(ss)] + fw)
    return first, [s for s in dict.fromkeys(second) if s not in first]


def link(rows: list[LinkRow], codes: list[CodeRow], config: dict[str, Any]) -> LinkResult:
    forms: dict[str, list[str]] = {k: list(v) for k, v in (config.get("forms") or {}).items()}
    form_words = sorted({_norm(w) for w in (config.get("form_words") or [])}, key=len, reverse=True)
    salt_p = sorted(config.get("salt_prefixes") or [], key=len, reverse=True)
    salt_s = sorted(config.get("salt_suffixes") or [], key=len, reverse=True)
    prefix_len: dict[str, int] = dict(config.get("prefix_entries") or {})
    res = LinkResult()

    index: dict[str, list[tuple[int, LinkRow]]] = {}
    for r in rows:
        for nm, rank in row_names(r.name, r.form, forms, form_words).items():
            index.setdefault(nm, []).append((rank, r))

    seen: dict[str, CodeRow] = {}
    assigned: dict[str, int] = {}   # code → row index
    for c in codes:
        if c.code in seen:
            if _norm(seen[c.code].name) != _norm(c.name):
                res.duplicate_codes.append((seen[c.code], c))
            continue
        seen[c.code] = c
        first, second = product_variants(c.name, form_words, salt_p, salt_s)
        rule = "name"
        cands, exact_rows = _rows_for(first, index)
        if not cands:
            cands, exact_rows = _rows_for(second, index)
            rule = "name without salt"
        if not cands:
            res.unmatched_codes.append(c)
            continue
        in_group = [r for r in cands if not r.group or c.code.startswith(r.group)]
        if not in_group:
            res.group_mismatch.append((c, [r.index for r in cands]))
            continue
        if len(in_group) > 1:
            named = [r for r in in_group if r.index in exact_rows]
            if len(named) == 1:
                res.resolved_by_name += 1
                in_group = named
            else:
                res.ambiguous.append((c, [r.index for r in in_group]))
                continue
        r = in_group[0]
        res.codes.setdefault(r.index, []).append((c, rule))
        assigned[c.code] = r.index

    # prefix entries: every product of the table under the prefix links to the same row
    if prefix_len:
        under: dict[str, list[CodeRow]] = {}
        for c in seen.values():
            n = prefix_len.get(c.code[:1])
            if n and len(c.code) > n:
                under.setdefault(c.code[:n], []).append(c)
        for p, members in sorted(under.items()):
            owners = {assigned.get(m.code) for m in members}
            if len(owners) == 1 and None not in owners:
                owner = owners.pop()
                res.prefixes.setdefault(owner, []).append((p, sorted(members, key=lambda m: m.code)))
            elif any(m.code in assigned for m in members):
                res.prefix_blocked += 1

    for r in rows:
        if r.index not in res.codes:
            res.unlinked_rows[r.index] = _why_unlinked(r, res)
    return res


def _rows_for(names: list[str], index: dict[str, list[tuple[int, LinkRow]]]) -> tuple[list[LinkRow], set[int]]:
    """Rows covering the first name (in order) that any row covers; and those that spell it out."""
    for n in names:
        hits = index.get(n, [])
        if hits:
            out: list[LinkRow] = []
            for _, r in hits:
                if r not in out:
                    out.append(r)
            return out, {r.index for rank, r in hits if rank == 0}
    return [], set()


def _why_unlinked(r: LinkRow, res: LinkResult) -> str:
    amb = [c for c, idx in res.ambiguous if r.index in idx]
    if amb:
        return f"{len(amb)} product(s) match this row and another one (e.g. {amb[0].code} {amb[0].name})"
    mis = [c for c, idx in res.group_mismatch if r.index in idx]
    if mis:
        return (f"{len(mis)} product(s) carry this name but their codes are outside category {r.group} "
                f"(e.g. {mis[0].code} {mis[0].name})")
    return "no product of the code table has a name this row covers"
