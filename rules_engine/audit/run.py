"""Audit one claim alone, as `rules-engine audit` and `POST /v1/audit` both do.

Why a module of its own: the command and the service must give the same answer for the same claim
— the rules of the pack in force at the treatment place on the claim's date (the pack that prices
its lines), merged along its chain, over the claim's lines and its `history`.
"""
from __future__ import annotations

from typing import Any

from ..model.claim import parse_claim
from .evaluate import audit
from .lines import claim_facts


def verdict(hits: list) -> str:
    """One word for the chat window and the table: the strongest action among the hits."""
    actions = {h.action for h in hits}
    if "reject_claim" in actions:
        return "claim refused"
    if "reject_line" in actions:
        return "lines refused"
    return "warnings" if actions else "clean"


def audit_claim(packs: Any, data: dict) -> dict[str, Any]:
    """The audit of one claim (a dict in the national field names, `history` allowed).

    Raises the claim reader's `ClaimError` (every problem with its path) for a bad claim and
    `SettlementError` subclasses when no pack is in force at the treatment place."""
    from ..settle.core import select_pack

    claim = parse_claim(data)
    pack = select_pack(packs, claim.mdtrtarea_admvs, claim, "treatment")
    rules = pack.audit
    facts = claim_facts(claim)
    if claim.icd_edition or any(ln.med_list_codg is None for ln in claim.lines):
        # the rules are written in the codes the settlement converts to: the same conversion first
        # (clinical-edition diagnoses, hospital item codes)
        from ..coding.claim import code_claim, with_national_codes
        coded = code_claim(pack.coding, claim)
        facts["diagnoses"] = tuple(c.upper() for c in coded.diagnoses)
        claim = with_national_codes(claim, coded)
    hits = audit(rules, claim, facts, claim.history) if rules is not None else []
    return {"pack": pack.label, "chain": list(pack.chain), "rules": len(rules) if rules is not None else 0,
            "verdict": verdict(hits), "hits": [h.to_dict(claim.history) for h in hits]}
