"""Smart claim audit (智能审核): rules across a claim's lines and the person's recent history.

Pack data lives in `regions/<region>/<version>/audit/` (docs/audit.md). The API:

    part, problems = load_audit(pack_dir)                        # one pack (None: no audit folder)
    rules, problems = merge_chain([root_part, …, leaf_part], named=pack.conditions)
    rules, problems = load_chain([ps.raws[k].dir for k in pack.chain], named=pack.conditions)
    history = parse_history(claim_dict.get("history"))           # ClaimError with paths on bad input
    hits = audit(rules, claim_in, facts, history)                 # → [Hit], in claim order
    hits = DurableAudit(rules).audit(claim_in, facts, history)    # the durable-rules reference

`AuditRules` is immutable and picklable (no closures; evaluators are built lazily per rule set).
"""
from __future__ import annotations

from .evaluate import audit, index_of
from .lines import check_line_times, claim_facts, parse_history
from .load import AuditPart, audit_digest, load_audit, load_chain, merge_chain
from .model import (ACTIONS, KINDS, UNDATED_ID, AuditRule, AuditRules, HistoryLine, Hit, ItemSet, SourceRef)

__all__ = ["audit", "index_of", "check_line_times", "claim_facts", "parse_history", "AuditPart", "audit_digest",
           "load_audit", "load_chain", "merge_chain", "ACTIONS", "KINDS", "UNDATED_ID", "AuditRule", "AuditRules",
           "HistoryLine", "Hit", "ItemSet", "SourceRef", "DurableAudit"]


def __getattr__(name: str):
    if name == "DurableAudit":  # durable-rules is imported only when the reference is asked for
        from .durable_ref import DurableAudit
        return DurableAudit
    raise AttributeError(name)
