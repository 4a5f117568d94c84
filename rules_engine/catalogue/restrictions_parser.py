"""Restriction texts (备注 / 限定支付范围) → conditions of the pack's condition language.

The catalogue's restrictions are free text: "限工伤保险", "限二级及以上医疗机构的肿瘤患者",
"限成人和5岁及以上儿童单纯性甲型和乙型流感患者". A wrong condition pays or refuses real money,
so the parser encodes only what it can read with certainty and says why it stopped. Its rule:

* **Facts of the claim** — insurance type (工伤 / 生育保险), institution level (二级及以上医疗机构),
  setting (住院, 急诊或住院), age (成人, N岁及以上, N至M岁), sex (女性) — are exact: a line that
  fails them goes 全自费. Where a word has readings that differ (儿童: under 18 by law, under 14
  in paediatric practice; "12岁以下": ≤12 by the 民法典 §1259 reading, <12 in drug labels), the
  widest reading refuses (age ≥ 18 fails 儿童) and the narrowest only flags (age 14–17 is paid
  and marked for review).
* **Diagnoses** named in the text become ICD checks through diagnosis-terms.yaml, whose codes each
  mean the disease (a passing check is evidence the patient has it). A diagnosis may also be
  coded elsewhere, so a *failed* check never refuses the line: it flags it for review.
* **The rest** — 二线用药, 支付不超过14天, 血糖控制不佳, 急救/抢救, gene tests, scores — cannot
  be read from a claim. It stays as text and flags every line for review, with the reason.

One published text therefore becomes up to three restrictions, all attached to the entry:
``<id>`` (or the first present of these) the exact part, on_fail ownpay; ``<id>.check`` the
uncertain part, on_fail review; ``<id>.text`` no condition, always flagged. A text read in full
needs only the first. Alternatives ("限A；限B", "1.…；2.…", "…，或…") keep this soundness:
the exact part becomes "any alternative's exact part" and exists only when every alternative has
one; the check likewise; any unread remainder keeps the text entry.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

TERMS_FILE = Path(__file__).resolve().parent / "diagnosis-terms.yaml"

# kinds reported in the coverage table
KINDS = ("insurance", "level", "setting", "age", "sex", "diagnosis", "approval")


@dataclass
class Alt:
    """One alternative of a restriction: exact conditions, uncertain checks, unread remainder."""

    exact: list[dict] = field(default_factory=list)
    check: list[dict] = field(default_factory=list)
    residue: list[tuple[str, str]] = field(default_factory=list)   # (text, reason)
    kinds: set[str] = field(default_factory=set)

    def empty(self) -> bool:
        return not self.exact and not self.check


@dataclass
class Parsed:
    """The reading of one text: the restriction entries to write and what was understood."""

    text: str
    exact: dict | None = None        # condition (on_fail ownpay)
    check: dict | None = None        # condition (on_fail review)
    residue: list[tuple[str, str]] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)
    whole_reason: str | None = None  # why nothing was read, when nothing was

    @property
    def status(self) -> str:
        """condition: read in full; partial: some conditions + text for review; review: text only."""
        if self.exact is None and self.check is None:
            return "review"
        return "partial" if self.residue else "condition"

    def review_reason(self) -> str:
        if self.whole_reason:
            return self.whole_reason
        parts = []
        seen = set()
        for t, why in self.residue:
            key = (t, why)
            if key in seen:
                continue
            seen.add(key)
            parts.append(f"'{t}': {why}" if t else why)
        return "not encoded: " + "; ".join(parts)

    def restrictions(self, rid: str, source: Any = None) -> list[dict]:
        """The restrictions.yaml entries for this text under id `rid` (see the module doc)."""
        out: list[dict] = []
        names = iter([rid, None])

        def next_id(role: str) -> str:
            first = next(names, None)
            return first if first is not None else f"{rid}.{role}"

        if self.exact is not None:
            out.append(_entry(next_id("exact"), self.text, self.exact, None, source))
        if self.check is not None:
            reason = ("a diagnosis may be coded outside the listed ICD codes, and a bound with two readings "
                      "is checked at its narrow reading: a failed check flags the line for review instead of "
                      "refusing it") if "diagnosis" in self.kinds else (
                      "checked at the narrow reading of a bound with two readings: a failed check flags the "
                      "line for review instead of refusing it")
            if "approval" in self.kinds:
                reason += "; hosp_appr_flag '1' is read as 审批通过 (the code values are unconfirmed)"
            out.append(_entry(next_id("check"), self.text, self.check, "review", source, reason))
        if self.residue or (self.exact is None and self.check is None):
            out.append(_entry(next_id("text"), self.text, None, None, source, self.review_reason()))
        return out


def _entry(rid: str, text: str, when: dict | None, on_fail: str | None, source: Any,
           reason: str | None = None) -> dict:
    e: dict[str, Any] = {"id": rid, "text": text}
    if when is not None:
        e["when"] = when
    if on_fail is not None:
        e["on_fail"] = on_fail
    if reason:
        e["review_reason"] = reason
    if source:
        e["source"] = source
    return e


# ------------------------------------------------------------------ diagnosis terms

@dataclass(frozen=True)
class Term:
    term: str
    words: tuple[str, ...]     # term + also, longest first
    icd: tuple[str, ...]
    names: tuple[str, ...]


@lru_cache(maxsize=1)
def diagnosis_terms() -> tuple[tuple[Term, ...], dict[str, str]]:
    import yaml
    data = yaml.safe_load(TERMS_FILE.read_text(encoding="utf-8"))
    terms = []
    for t in data["terms"]:
        words = tuple(sorted({_norm(t["term"])} | {_norm(a) for a in t.get("also", [])}, key=len, reverse=True))
        terms.append(Term(t["term"], words, tuple(t["icd"]), tuple(t.get("names", []))))
    return tuple(terms), dict(data.get("absent") or {})


@lru_cache(maxsize=1)
def _term_index() -> list[tuple[str, Term]]:
    terms, _ = diagnosis_terms()
    idx = [(w, t) for t in terms for w in t.words]
    idx.sort(key=lambda x: len(x[0]), reverse=True)
    return idx


# ------------------------------------------------------------------ normalisation

_PUNCT = str.maketrans({"（": "(", "）": ")", "：": ":", "；": ";", "，": ",", "、": "、", "＜": "<", "＞": ">",
                        "≦": "≤", "≧": "≥", "～": "~", "－": "-", "—": "-", "–": "-"})


def _norm(s: str) -> str:
    s = s.translate(_PUNCT)
    # NFKC for full-width ASCII and for the Kangxi / CJK radicals a PDF export leaves in (⼉ for 儿);
    # other Chinese punctuation is kept
    s = "".join(unicodedata.normalize("NFKC", c) if c.isascii() or "\uff01" <= c <= "\uff5e"
                or "\u2e80" <= c <= "\u2fdf" else c for c in s)
    s = s.replace("Ⅰ", "I").replace("Ⅱ", "II").replace("Ⅲ", "III").replace("Ⅳ", "IV")
    return re.sub(r"\s+", "", s)


# ------------------------------------------------------------------ the parser

_RESIDUE_REASONS: list[tuple[re.Pattern, str]] = [(re.compile(p), r) for p, r in [
    (r"二线|三线|一线", "line of therapy (一线/二线) needs the treatment history"),
    (r"支付不超过\d+[天日个月]|最多支付\d+[天日]|连续使用不超过|支付疗程|疗程", "a course limit needs the earlier lines of the treatment"),
    (r"每日|每天|日剂量|总量", "a daily quantity limit needs the day's total dose"),
    (r"每眼|累计最多支付|年度最多支付|支数", "a quantity limit over time needs the patient's history"),
    (r"急救|抢救", "an emergency/rescue situation is a clinical judgement, not a claim fact"),
    (r"药敏|检测|检验|阳性|阴性|突变|基因|表达|抗体|评分|分级|分期|分型|指数|BMI|≥\d|<\d|>\d|低于|高于|大于|小于",
     "a test result, score or stage is not on the claim"),
    (r"处方|医师|专科", "the prescriber's qualification is not on the claim"),
    (r"说明书", "the drug label's wording is not encoded"),
    (r"联合|联用|配合|合用|单独使用|单药", "combination with other drugs needs the whole prescription"),
    (r"既往|治疗失败|无效|不耐受|应答不佳|反应不佳|效果不佳|控制不佳|难以控制|无法|不能|不适合|不适宜|难治|复发|初治|未经|未接受|接受过",
     "prior treatment and its response need the treatment history"),
    (r"营养风险|筛查", "a screening result is not on the claim"),
    (r"急性期|恢复期|急性|慢性|轻度|中度|重度|轻中度|中重度|晚期|早期|局部|转移|进展|活动性|稳定|新发|发作|术后|围手术|手术|移植",
     "a severity, phase or clinical context narrows the diagnosis beyond its ICD codes"),
]]

_NEGATION = re.compile(r"除外|不含|不包括|排除|阴性")


def parse(text: str) -> Parsed:
    """Read one restriction text. Never raises: what it cannot read, it says."""
    raw = text.strip()
    t = _norm(raw).rstrip("。.")
    p = Parsed(text=raw)
    if not t:
        p.whole_reason = "empty text"
        return p
    if not re.search(r"[\u4e00-\u9fff]", t):
        p.whole_reason = (f"'{t}' is a symbol without words (its meaning is in the catalogue's 凡例, not in this "
                          "data)")
        return p
    sentences = [s for s in re.split(r"。", t) if s]
    first, rest = sentences[0], sentences[1:]
    m = re.match(r"^需(.+?)方予支付$", first)
    if m:
        # "需经营养风险筛查，…的住院患者方予支付" reads like a 限 clause: every part is required
        first = "限" + m.group(1)
    if not first.startswith("限"):
        if re.match(r"^(支付不超过|单次住院)", first):
            p.whole_reason = "a course limit (" + first + ") needs the earlier lines of the treatment"
        elif "用于" in t or re.match(r"^[\u4e00-\u9fff]{2,6}[，,、]", first):
            p.whole_reason = ("an indication statement (功能主治), not a 限 clause: payment is limited to the "
                              "indication, which needs clinical review")
        else:
            p.whole_reason = "the text is not a 限… clause the parser knows"
        return p
    body = first[1:].lstrip(":").strip()
    if re.match(r"^以下", body) or re.search(r"方可支付[^:]*:", body):
        p.whole_reason = "a list of conditions introduced by '以下…' is read as text"
        return p
    alts = _alternatives(body)
    # further sentences: "应同时符合以下条件：1.…；2.…" adds conditions to every alternative (AND);
    # any other sentence (a course limit, a note on the label) is kept as text, never read as a
    # condition: "尚未确定本品在0-6岁儿童中的安全性" is not an age limit
    extra = Alt()
    for s in rest:
        if s.startswith("应同时符合以下条件"):
            for it in _numbered(s.split(":", 1)[1] if ":" in s else ""):
                _parse_segment(it, extra)
        else:
            extra.residue.append((s, _reason(s)))
    _combine(p, alts, extra)
    return p


def _numbered(s: str) -> list[str]:
    """'1.A；2.B' → ['A', 'B']: item k+1 starts at 'k+1.' after a separator, so '1.50岁以上…' is
    item 1 reading '50岁以上…'."""
    if not s.startswith("1."):
        return [s] if s else []
    items, pos, k = [], 2, 2
    while True:
        m = re.compile(r"[;,:。]\s*" + str(k) + r"\.").search(s, pos)
        if not m:
            items.append(s[pos:])
            break
        items.append(s[pos:m.start()])
        pos, k = m.end(), k + 1
    return [x.strip(" ;,") for x in items if x.strip(" ;,")]


def _alternatives(body: str) -> list[Alt]:
    if body.startswith("1."):
        items = _numbered(body)
    else:
        items = [x for x in re.split(r";|,或(?=[\u4e00-\u9fff\d])", body) if x]
    # "限子宫肌瘤患者或生育保险": an insurance type joined by 或 is an alternative of its own, never a
    # condition on the other words
    split: list[str] = []
    for it in items:
        m = re.fullmatch(r"(.+?)或((?:工伤|生育)保险)|((?:工伤|生育)保险)或(.+)", it)
        split += [x for x in (m.groups() if m else (it,)) if x]
    items = split
    out = []
    for it in items:
        a = Alt()
        for seg in [x for x in it.split(",") if x]:
            _parse_segment(seg, a)
        out.append(a)
    return out


def _combine(p: Parsed, alts: list[Alt], extra: Alt) -> None:
    for a in alts + [extra]:
        p.kinds |= a.kinds
        p.residue += a.residue
    if not alts:
        p.whole_reason = "nothing after 限"
        return
    # exact part: any alternative's exact part — only when every alternative has one
    exact: dict | None = None
    if all(a.exact for a in alts):
        exact = simplify({"any": [{"all": a.exact} for a in alts]})
    if extra.exact:
        exact = simplify({"all": ([exact] if exact else []) + extra.exact})
    # check: any alternative's (exact ∧ check) — only when every alternative has some condition;
    # needed only when some alternative carries a check (else the exact part says it all)
    check: dict | None = None
    if any(a.check for a in alts):
        if all(not a.empty() for a in alts):
            if len(alts) == 1:
                check = simplify({"all": alts[0].check})
            else:
                check = simplify({"any": [{"all": a.exact + a.check} for a in alts]})
        else:
            p.residue.append(("", "an alternative has no readable condition, so the others' checks cannot apply"))
    if extra.check:
        check = simplify({"all": ([check] if check else []) + extra.check})
    p.exact, p.check = exact, check
    if p.exact is None and p.check is None and not p.residue:
        p.residue.append(("", "no part of the text could be read as a condition"))


def simplify(c: dict) -> dict:
    """Flatten nested all/any, drop repeated items, unwrap one-item lists."""
    import json
    for op in ("all", "any"):
        if op in c and len(c) == 1:
            items: list[dict] = []
            seen: set[str] = set()
            for it in c[op]:
                it = simplify(it)
                sub = it[op] if op in it and len(it) == 1 else [it]
                for x in sub:
                    k = json.dumps(x, sort_keys=True, ensure_ascii=False)
                    if k not in seen:
                        seen.add(k)
                        items.append(x)
            return items[0] if len(items) == 1 else {op: items}
    return c


# ------------------------------------------------------------------ one segment

_LEVEL = re.compile(r"^(?:在)?二级及以上(?:医疗机构|医院|定点医疗机构)(?:的|用于|使用)?")
_LEVEL3 = re.compile(r"^(?:在)?三级(?:及以上)?(?:医疗机构|医院|定点医疗机构)(?:的|用于|使用)?")
_INSURANCE = [(re.compile(r"工伤保险"), "410"), (re.compile(r"生育保险"), "510")]
_SETTING = [
    (re.compile(r"急诊或住院(?:患者|病人)?"), {"any": [{"is": "emergency"}, {"is": "inpatient"}]}),
    (re.compile(r"(?<!单次)(?<!每次)(?<!本次)住院(?:患者|病人|期间|使用|治疗)(?:方予支付)?"), {"is": "inpatient"}),
]
_SEX = [(re.compile(r"女性|妇女"), "2"), (re.compile(r"男性"), "1")]
_APPROVAL = re.compile(r"事前审查后方可(?:使用|用)|经(?:医保)?(?:经办机构)?审批(?:后)?(?:方可)?(?:使用|支付)?|审批后使用")

_AGE_UNIT = r"(?:岁|周岁)"
_AGE_PATTERNS: list[tuple[re.Pattern, str]] = [(re.compile(p), k) for p, k in [
    (rf"(\d+){_AGE_UNIT}?(?:至|到|-|~)(<)?(\d+){_AGE_UNIT}(以下|以内)?", "range"),
    (rf"(\d+){_AGE_UNIT}和\1{_AGE_UNIT}以上", "gte"),
    (rf"(\d+){_AGE_UNIT}及\1{_AGE_UNIT}以上", "gte"),
    (rf"(?:≥|大于等于|年满)(\d+){_AGE_UNIT}", "gte"),
    (rf"(\d+){_AGE_UNIT}(?:及|或)?以上", "gte"),
    (rf"年龄大于(\d+){_AGE_UNIT}|(?:>|大于|超过)(\d+){_AGE_UNIT}", "gt"),
    (rf"(?:<|小于|未满|不满)(\d+){_AGE_UNIT}", "lt"),
    (rf"(\d+){_AGE_UNIT}以下", "lte_words"),
]]
_ADULT = re.compile(r"成年人|成人|成年")
_CHILD = re.compile(r"儿童|小儿|儿科")
_YOUTH = re.compile(r"青少年")
_INFANT = re.compile(r"新生儿|婴儿|婴幼儿|\d+月龄|\d+日龄")

_FILLER = re.compile(
    r"^(?:的|患者|病人|者|人群|使用|用药|时使用|时|用|治疗|的治疗|和|及|与|或|、|\(|\)|的患者|诊断|明确诊断|诊断明确|"
    r"临床确诊|确诊|有|明确的|明确|证据|的明确诊断证据|诊断证据|的诊断|有明确|方予支付|支付|上述|所致|引起)+$")
_EVIDENCE = re.compile(r"有明确(?:的)?|明确诊断(?:的)?|诊断明确(?:的)?|临床确诊(?:的)?|(?:的)?明确诊断证据|诊断证据|"
                       r"(?:的)?诊断(?:的)?|有(?=[\u4e00-\u9fff])")


def _parse_segment(seg: str, a: Alt) -> None:
    """Read the facts of one comma-separated segment into `a`; what is left is residue."""
    s = seg.strip()
    if not s:
        return
    # prescriber clauses mention levels that do not apply to the line (首次处方时需由二级及以上…)
    if re.search(r"首次处方|医师处方|医师开具", s):
        a.residue.append((s, "the prescriber's qualification is not on the claim"))
        return
    rest: list[str] = []
    work = s
    # institution level: only as the segment's opening words ("限二级及以上医疗机构…")
    m = _LEVEL.match(work)
    if m:
        a.exact.append({"hosp_lv": ["2", "3"]})
        a.kinds.add("level")
        work = work[m.end():]
    else:
        m = _LEVEL3.match(work)
        if m:
            a.exact.append({"hosp_lv": "3"})
            a.kinds.add("level")
            work = work[m.end():]
    # insurance type
    for rx, code in _INSURANCE:
        m = rx.search(work)
        if m:
            a.exact.append({"insutype": code})
            a.kinds.add("insurance")
            work = work[:m.start()] + "|" + work[m.end():]
    # setting
    for rx, cond in _SETTING:
        m = rx.search(work)
        if m:
            a.exact.append(cond)
            a.kinds.add("setting")
            work = work[:m.start()] + "|" + work[m.end():]
            break
    # approval
    m = _APPROVAL.search(work)
    if m:
        a.check.append({"hosp_appr_flag": "1"})
        a.kinds.add("approval")
        work = work[:m.start()] + "|" + work[m.end():]
    # sex
    for rx, code in _SEX:
        m = rx.search(work)
        if m and not re.search(r"男性和女性|女性和男性", work):
            a.exact.append({"gend": code})
            a.kinds.add("sex")
            work = work[:m.start()] + "|" + work[m.end():]
            break
    # age
    work = _parse_age(work, a)
    # diagnoses
    work = _parse_diagnoses(work, a)
    # what is left
    for piece in [x for x in re.split(r"\|", work) if x]:
        core = _EVIDENCE.sub("", piece)
        core = re.sub(r"\([A-Za-z0-9\-+ /,.]+\)", "", core)  # abbreviations such as (COPD), (ALS)
        if not core or _FILLER.match(core):
            continue
        rest.append(piece.strip("的、,;") or piece)
    for piece in rest:
        a.residue.append((piece, _reason(piece)))


def _reason(piece: str) -> str:
    for rx, why in _RESIDUE_REASONS:
        if rx.search(piece):
            return why
    _, absent = diagnosis_terms()
    for name, why in absent.items():
        if name in piece:
            return f"{name} has no ICD mapping ({why})"
    return "not a phrase the parser can read as a claim fact or a mapped diagnosis"


def _parse_age(work: str, a: Alt) -> str:
    """Age bounds → exact conditions at the widest reading, checks at the narrowest."""
    lo_w = lo_n = None   # widest / narrowest lower bound (gte)
    hi_w = hi_n = None   # widest / narrowest upper bound (lte)
    found = False
    adult = bool(_ADULT.search(work))
    child = bool(_CHILD.search(work))
    if _INFANT.search(work):
        return work  # months and days are not in the claim's age: leave it to the residue
    spans: list[tuple[int, int]] = []
    numeric: list[tuple[int | None, int | None, int | None, int | None]] = []
    for rx, kind in _AGE_PATTERNS:
        for m in rx.finditer(work):
            if any(m.start() < e and s < m.end() for s, e in spans):
                continue
            spans.append((m.start(), m.end()))
            g = [x for x in m.groups()]
            if kind == "range":
                lo, strict, hi, words = int(g[0]), g[1], int(g[2]), g[3]
                if strict or words:   # '至<12岁' is exact; '至12岁以下' has two readings
                    numeric.append((lo, lo, hi if words else hi - 1, hi - 1))
                else:
                    numeric.append((lo, lo, hi, hi))
            elif kind == "gte":
                n = int(next(x for x in g if x))
                numeric.append((n, n, None, None))
            elif kind == "gt":
                n = int(next(x for x in g if x))
                numeric.append((n, n + 1, None, None))       # 'over 2' at whole years: 2 (wide), 3 (narrow)
            elif kind == "lt":
                n = int(g[0])
                numeric.append((None, None, n - 1, n - 1))
            elif kind == "lte_words":
                n = int(g[0])
                numeric.append((None, None, n, n - 1))
    if not numeric and not adult and not child:
        if _YOUTH.search(work):
            return work  # 青少年 alone has no agreed bounds: residue
        return work
    if numeric:
        found = True
        if adult and len(numeric) == 1 and numeric[0][2] is None and numeric[0][0] is not None and numeric[0][0] <= 18 \
                and re.search(r"成人(?:和|及|、|或)|(?:和|及|、|或)成人|成年人(?:和|及)|(?:和|及)成年人", work):
            # '成人和5岁及以上儿童' / '≥12岁青少年及成人': the union is 'N and above'
            lo_w, lo_n = numeric[0][0], numeric[0][1]
        elif adult:
            return work  # an adult group next to an age range in another relation: residue
        else:
            for lw, ln, hw, hn in numeric:
                lo_w = lw if lo_w is None or (lw is not None and lw > lo_w) else lo_w
                lo_n = ln if lo_n is None or (ln is not None and ln > lo_n) else lo_n
                hi_w = hw if hi_w is None or (hw is not None and hw < hi_w) else hi_w
                hi_n = hn if hi_n is None or (hn is not None and hn < hi_n) else hi_n
            if child and hi_w is None:
                hi_w, hi_n = 17, 13   # '5岁及以上儿童': 儿童 closes the range
    elif adult and not child:
        found = True
        lo_w = lo_n = 18
    elif child and not adult:
        found = True
        hi_w, hi_n = 17, 13
    else:
        return work  # both adult and child words without numbers: residue
    if not found:
        return work
    exact = _age_cond(lo_w, hi_w)
    narrow = _age_cond(lo_n, hi_n)
    if exact:
        a.exact.append(exact)
    if narrow and narrow != exact:
        a.check.append(narrow)
    a.kinds.add("age")
    # consume the age words
    for s_, e_ in sorted(spans, reverse=True):
        work = work[:s_] + "|" + work[e_:]
    work = _ADULT.sub("|", work)
    work = _CHILD.sub("|", work)
    work = _YOUTH.sub("|", work)
    work = re.sub(r"\((?:≥|>|<)?\d+" + _AGE_UNIT + r"?\)", "|", work)
    return work


def _age_cond(lo: int | None, hi: int | None) -> dict | None:
    if lo is None and hi is None:
        return None
    if lo is not None and hi is not None:
        return {"age": {"between": [lo, hi]}}
    if lo is not None:
        return {"age": {"gte": lo}}
    return {"age": {"lte": hi}}


def _parse_diagnoses(work: str, a: Alt) -> str:
    """Every mapped disease term → one ICD check (OR of the terms found)."""
    if _NEGATION.search(work):
        return work  # a term inside "…阴性 / …除外" must not become a requirement
    found: list[Term] = []
    out = work
    masked: dict[str, str] = {}
    for word, term in _term_index():
        while True:
            i = out.find(word)
            if i < 0:
                break
            if i > 0 and out[i - 1] == "非":
                # '非小细胞…' is not the term: hide it from shorter terms, restore it afterwards
                key = chr(0xE000 + len(masked))
                masked[key] = word
                out = out[:i] + key + out[i + len(word):]
                continue
            if term not in found:
                found.append(term)
            out = out[:i] + "|" + out[i + len(word):]
    for key, word in masked.items():
        out = out.replace(key, word)
    if not found:
        return work
    codes: list[str] = []
    for t in found:
        for c in t.icd:
            if c not in codes:
                codes.append(c)
    a.check.append({"diagnoses": {"icd": codes}})
    a.kinds.add("diagnosis")
    # terms joined only by list separators are alternatives; anything else between them stays residue
    return out


def parse_all(texts: list[str]) -> dict[str, Parsed]:
    return {t: parse(t) for t in dict.fromkeys(texts)}
