"""Coding conversion: ICD editions (国临版 ↔ 医保版) and local → national item codes.

Pack data lives in `regions/<region>/<version>/coding/` (docs/coding.md). The API:

    part, problems = load_coding(pack_dir)              # one pack's coding folder (None: it has none)
    coding, problems = merge_chain([root_part, …, leaf_part])
    coding.translate("I50.900x007", "icd10:clinical-2.0", "icd10:insurance-2.0")  # → Translation
    coding.convert_diagnoses(codes, "clinical-2.0", date=…)   # claim path → CodeConversion (+ warnings)
    coding.map_item("ZC0001", fixmedins_code="H11…", date=…)  # → ItemMapping (national code or None + reason)
    code_claim(coding, claim_in)                              # both, for a parsed claim → ClaimCoding
"""
from __future__ import annotations

from .claim import ClaimCoding, LineCoding, code_claim
from .load import CodingPart, coding_digest, load_chain, load_coding, merge_chain
from .model import (AMBIGUOUS, BROADER, EQUIVALENT, NARROWER, NO_MAP, NOT_MAPPED, RELATED, RELATIONSHIPS, SAME,
                    UNKNOWN, CodeConversion, Coding, ConceptMap, ItemMap, ItemMapping, Match, System, Translation)

__all__ = ["ClaimCoding", "LineCoding", "code_claim", "CodingPart", "coding_digest", "load_chain", "load_coding",
           "merge_chain", "Coding", "ConceptMap",
           "ItemMap", "ItemMapping", "Match", "System", "Translation", "CodeConversion", "RELATIONSHIPS", "EQUIVALENT",
           "NARROWER", "BROADER", "RELATED", "NOT_MAPPED", "AMBIGUOUS", "UNKNOWN", "NO_MAP", "SAME"]
