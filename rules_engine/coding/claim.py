"""The claim path in one call: a claim's diagnoses to the pack's edition, its lines' local codes to
national codes — what settlement needs before pricing and before any restriction is checked.

`code_claim(coding, claim)` reads a parsed claim (`rules_engine.model.claim.ClaimIn`, by duck
typing: `diagnoses`, `icd_edition`, `setl_date`, `gend`, `age`, `lines[*].med_list_codg /
medins_list_codg / feedetl_sn`, `raw['fixmedins_code']`) and returns what to settle with plus the
warnings to show. It never raises for data: an unmapped code is a warning, never a silent pass
(issue 4 §1–2).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .model import CodeConversion, Coding, ItemMapping


@dataclass(frozen=True, slots=True)
class LineCoding:
    """One fee line's national code after mapping."""

    index: int
    feedetl_sn: str
    national_code: str | None          # None: price the line as 全自费 with `reason`
    mapping: ItemMapping | None = None  # None when the line carried med_list_codg itself

    @property
    def reason(self) -> str | None:
        if self.national_code is not None:
            return None
        return self.mapping.reason if self.mapping else "the line has neither med_list_codg nor medins_list_codg"


@dataclass(frozen=True, slots=True)
class ClaimCoding:
    diagnoses: tuple[str, ...]              # the codes restrictions are checked against
    conversion: CodeConversion | None       # None: the claim states no icd_edition (codes used as sent)
    lines: tuple[LineCoding, ...]
    warnings: tuple[str, ...]               # diagnosis warnings, then one per unmapped line


def code_claim(coding: Coding | None, claim: Any) -> ClaimCoding:
    """Convert a claim's codes with the coding of the pack that prices it (the treatment place's)."""
    date = getattr(claim, "setl_date", None)
    facts = {"gend": getattr(claim, "gend", None), "age": getattr(claim, "age", None)}
    facts = {k: v for k, v in facts.items() if v is not None}
    diagnoses = tuple(claim.diagnoses)
    conversion = None
    warnings: list[str] = []
    edition = getattr(claim, "icd_edition", None)
    if edition and coding is not None:
        conversion = coding.convert_diagnoses(diagnoses, edition, date=date, facts=facts)
        diagnoses = conversion.codes
        warnings += [f"diagnosis {w}" for w in conversion.warnings]
    elif edition:
        warnings.append(f"the claim's diagnoses are in edition {edition}, but the pack has no coding data to "
                        "convert them; they are used as sent")
    fix = (getattr(claim, "raw", None) or {}).get("fixmedins_code")
    lines = []
    for ln in claim.lines:
        if ln.med_list_codg:
            lines.append(LineCoding(ln.index, ln.feedetl_sn, ln.med_list_codg))
            continue
        if not ln.medins_list_codg:
            lines.append(LineCoding(ln.index, ln.feedetl_sn, None))
            warnings.append(f"line {ln.feedetl_sn}: no item code; priced as 全自费")
            continue
        if coding is None:
            m = ItemMapping(ln.medins_list_codg, fix, None, "the pack has no local → national item map", kind="no-map")
        else:
            m = coding.map_item(ln.medins_list_codg, fix, date=date)
        lines.append(LineCoding(ln.index, ln.feedetl_sn, m.national_code, m))
        if not m.ok:
            warnings.append(f"line {ln.feedetl_sn}: {m.reason}; priced as 全自费")
    return ClaimCoding(diagnoses, conversion, tuple(lines), tuple(warnings))


def with_national_codes(claim: Any, coded: ClaimCoding) -> Any:
    """The claim as the audit must see it: a line the hospital sent with its own code only carries
    the national code it was mapped to (the audit rules name national codes). The claim itself is
    left as it was; unchanged when no line was mapped."""
    from dataclasses import replace
    national = {lc.feedetl_sn: lc.national_code for lc in coded.lines
                if lc.mapping is not None and lc.national_code is not None}
    if not national:
        return claim
    return replace(claim, lines=[replace(ln, med_list_codg=national[ln.feedetl_sn])
                                 if ln.med_list_codg is None and ln.feedetl_sn in national else ln
                                 for ln in claim.lines])
