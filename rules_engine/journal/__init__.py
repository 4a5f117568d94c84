"""One append-only, hash-chained journal for the decision log, the gateway's audit log and consent records.

    from rules_engine.journal import Journal
    with Journal("var/decisions.journal", mask_key=key) as j:
        e = j.append("settlement", {"input": claim, ...}, keys={"request_id": rid})
        j.verify().ok            # False names the first bad seq
        j.find(request_id=rid)   # lookups by key
        j.purge()                # retention (two years by default), chain stays verifiable

See store.py for the format and its guarantees, mask.py for how personal fields are stored.
"""
from __future__ import annotations

from .canonical import CanonicalError, canonical_json, sha256_hex
from .mask import DEFAULT_FIELDS, PSEUDONYM_PREFIX, REDACTED, Masker
from .store import (DEFAULT_RETENTION_DAYS, FORMAT, GENESIS, Entry, Journal, JournalError, PurgeResult,
                    VerifyProblem, VerifyResult, entry_hash, entry_material)

__all__ = ["CanonicalError", "canonical_json", "sha256_hex", "DEFAULT_FIELDS", "PSEUDONYM_PREFIX", "REDACTED",
           "Masker", "DEFAULT_RETENTION_DAYS", "FORMAT", "GENESIS", "Entry", "Journal", "JournalError",
           "PurgeResult", "VerifyProblem", "VerifyResult", "entry_hash", "entry_material"]
