"""Code grammars: what a well-formed diagnosis, procedure or item code looks like.

Why a grammar at all: a mapping table is only as good as its keys. A code that lost its '+'
or gained a trailing space never matches a claim, silently — so every code in a table is
checked at load time and a bad one is reported at its file:line:col, and every code a user
asks about is checked before it is looked up ("malformed" is a different answer from
"unknown").

The grammars accept every form found in the published ICD-10 国临版2.0 → 医保版2.0 and
ICD-9-CM-3 国临版3.0 → 医保版2.0 tables (docs/coding.md §Code forms), case-insensitively:

- ICD-10: `J18`, `J18.9`, `J18.900`, `I10.x00`; clinical extension `I50.900x007`; dagger /
  asterisk pair `A01.000x003+G01*`, `A02.200x004+N16.0*`; ICD-O morphology suffix of tumour
  codes `C22.101M81600/3`.
- ICD-9-CM-3: `88.79`, `88.7901`, `04.5x00`, the TCM five-character codes `17.92110` and
  `17.922A0`; extension `00.6500x014` (and the irregular `66.69x001`, `86.700x0013`, which
  the published table itself uses).
- items: a hospital's own code (`medins_list_codg`, up to 150 printable characters without
  spaces) and a national catalogue code (`med_list_codg`, letters and digits).

Lookups are keyed by `key(code)`: stripped and upper-cased, because claims arrive with
`I50.900X007` as often as `I50.900x007` (the claim parser upper-cases diagnoses).
"""
from __future__ import annotations

import re
from typing import NamedTuple

FAMILIES = ("icd10", "icd9cm3")
FAMILY_NAMES = {"icd10": "ICD-10 疾病诊断 (diagnoses)", "icd9cm3": "ICD-9-CM-3 手术操作 (procedures)"}

_ICD10_MAIN = r"[A-Z][0-9]{2}(?:\.[0-9X](?:[0-9]{2})?)?"
_ICD10_EXT = r"(?:X[0-9]{3})?"
_ICD10_AST = r"(?:\+[A-Z][0-9]{2}(?:\.[0-9X][0-9]{0,2})?\*)?"
_ICD10_MORPH = r"(?:M[0-9]{5}/[0-9])?"
ICD10 = re.compile(f"({_ICD10_MAIN})({_ICD10_EXT})({_ICD10_AST})({_ICD10_MORPH})", re.IGNORECASE)

_ICD9_AFTER_DOT = r"(?:[0-9][0-9X]?|[0-9]{3}|[0-9][0-9X][0-9]{2}|[0-9]{3}[0-9A-Z][0-9])"
ICD9 = re.compile(rf"([0-9]{{2}}(?:\.{_ICD9_AFTER_DOT})?)((?:X[0-9]{{3,4}})?)", re.IGNORECASE)

LOCAL_ITEM = re.compile(r"[^\s\x00-\x1f\x7f]{1,150}")
NATIONAL_ITEM = re.compile(r"[A-Za-z0-9]{1,50}")

_GRAMMARS = {"icd10": ICD10, "icd9cm3": ICD9}
_EXAMPLES = {"icd10": "J18.900, I50.900x007, A01.000x003+G01*", "icd9cm3": "88.7901, 00.6500x014"}


def key(code: str) -> str:
    """The lookup key of a code: stripped and upper-cased."""
    return code.strip().upper()


def family_of(system: str) -> str | None:
    """'icd10:clinical-2.0' → 'icd10'; None when the family is not one we know."""
    fam = system.partition(":")[0]
    return fam if fam in _GRAMMARS else None


def code_problem(family: str, code: str) -> str | None:
    """Why `code` is not a well-formed code of `family`, or None when it is."""
    if code != code.strip():
        return f"code {code!r} has spaces around it"
    if not code:
        return "empty code"
    if not _GRAMMARS[family].fullmatch(code):
        return f"'{code}' is not a well-formed {FAMILY_NAMES[family]} code (for example {_EXAMPLES[family]})"
    return None


def guess_family(code: str) -> str:
    """A diagnosis starts with a letter, a procedure with two digits."""
    c = code.strip()
    return "icd9cm3" if c[:1].isdigit() else "icd10"


class Parts(NamedTuple):
    """A code split into what the hierarchy and the importer reason about (upper-case)."""

    main: str        # J18.900, I10.X00, 88.7901
    ext: str         # X007 or ''
    asterisk: str    # +G01* or ''
    morphology: str  # M81600/3 or ''

    @property
    def core(self) -> str:
        return self.main + self.ext


def parts(family: str, code: str) -> Parts | None:
    """Split a well-formed code; None when it is malformed."""
    m = _GRAMMARS[family].fullmatch(code.strip())
    if not m:
        return None
    g = [x.upper() for x in m.groups()]
    if family == "icd10":
        return Parts(g[0], g[1], g[2], g[3])
    return Parts(g[0], g[1], "", "")


def parent(family: str, core: str) -> str | None:
    """The next code up the hierarchy the editions share, or None at a category.

    - an extension code belongs to its main code: I50.900X007 → I50.900;
    - a six-character detailed code belongs to its four-character category written with
      '00': C81.001 → C81.000, K74.301 → K74.300 (ICD-9-CM-3: 66.6901 → 66.6900).
    Irregular forms (three-character, five-digit TCM codes) have no parent here.
    """
    p = parts(family, core)
    if p is None:
        return None
    if p.ext:
        return p.main
    main = p.main
    if len(main) == 7 and main[5:] != "00":
        return main[:5] + "00"
    return None


def ancestors(family: str, core: str) -> list[str]:
    out: list[str] = []
    cur: str | None = core
    while cur is not None:
        cur = parent(family, cur)
        if cur is not None:
            out.append(cur)
    return out
