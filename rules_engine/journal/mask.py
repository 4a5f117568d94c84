"""Masking personal fields before anything is stored.

Two modes, chosen when a journal is created and fixed for its life:

- **keyed hash** (`hmac`, when a key is given): the value becomes
  `hmac-sha256:` + the first 32 hex digits of HMAC-SHA256(key, value). The same person gets
  the same pseudonym in every entry and every field (a certno in a settlement and in a consent
  record match), so an auditor who holds the key can answer "which entries concern ID number
  X?" — `Journal.find(certno=...)` hashes the question the same way — while the file alone
  names no one. A plain, unkeyed hash would not do: an ID number (18 digits, 6 of them a known
  region code, 8 a birth date, 1 a check digit) or a phone number is brute-forced in minutes.
  With the key kept apart from the journal (a file readable by the service only, or a secret
  store), the pseudonyms are as strong as the key; destroying the key makes them unlinkable
  for good (crypto-shredding), which is how an erasure request can be honoured without
  breaking the hash chain.
- **redaction** (`redact`, when no key is given): the value becomes `***`. Nothing can be
  linked or looked up later; nothing leaks. The safe default for a machine whose operators
  have not set up a key.

Field names are matched case-insensitively against glob patterns, at any depth of the payload
(`feedetail[3].bilg_dr_name` is reached too), and in entry keys as well as payloads. Values
already masked (a pseudonym or `***`) are left as they are, so masking is idempotent: a
journal entry re-journalled, or a replayed input, is not masked twice.
"""
from __future__ import annotations

import fnmatch
import hashlib
import hmac
import re
from typing import Any, Iterable

from .canonical import canonical_json

#: The national interface's personal fields (2201/2203/2401 and the 1101 person query): ID
#: numbers, names, phones and addresses. `brdy` (birth date) is not here: the engine needs an
#: age, and the service reduces `brdy` to that age before journalling (docs/service.md).
DEFAULT_FIELDS: tuple[str, ...] = (
    "certno", "*_certno", "*cert_no",            # 证件号码, mdtrt_cert_no (often the ID number), psn_cert_no
    "psn_name", "coner_name", "*_psn_name",      # 人员姓名, 联系人姓名
    "phone", "*phone", "tel", "*_tel", "mob", "*_mob",  # 电话 / 手机
    "addr", "*_addr", "email",                   # 住址, 邮箱
)

REDACTED = "***"
PSEUDONYM_PREFIX = "hmac-sha256:"
_PSEUDONYM = re.compile(r"^hmac-sha256:[0-9a-f]{32}$")


class Masker:
    """Replace personal fields by a keyed pseudonym (with `key`) or `***` (without)."""

    def __init__(self, fields: Iterable[str] = DEFAULT_FIELDS, key: bytes | None = None):
        self.fields = tuple(dict.fromkeys(str(f).strip().lower() for f in fields if str(f).strip()))
        self._exact = frozenset(f for f in self.fields if not any(c in f for c in "*?["))
        self._globs = tuple(f for f in self.fields if f not in self._exact)
        self._key = key or None
        self._cache: dict[str, bool] = {}

    @property
    def mode(self) -> str:
        return "hmac" if self._key else "redact"

    @property
    def key_id(self) -> str | None:
        """A short public fingerprint of the key (never the key): says which key made the pseudonyms."""
        if not self._key:
            return None
        return hmac.new(self._key, b"rules-engine journal key id", hashlib.sha256).hexdigest()[:16]

    def matches(self, name: str) -> bool:
        hit = self._cache.get(name)
        if hit is None:
            low = name.lower()
            hit = low in self._exact or any(fnmatch.fnmatchcase(low, g) for g in self._globs)
            if len(self._cache) < 4096:
                self._cache[name] = hit
        return hit

    def pseudonym(self, value: Any) -> Any:
        """The stored form of one personal value (None and "" stay: they say nothing)."""
        if value is None or value == "":
            return value
        if isinstance(value, str) and (value == REDACTED or _PSEUDONYM.match(value)):
            return value  # already masked
        if not self._key:
            return REDACTED
        text = value if isinstance(value, str) else canonical_json(value)
        digest = hmac.new(self._key, text.strip().encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
        return PSEUDONYM_PREFIX + digest[:32]

    def mask(self, value: Any) -> Any:
        """A copy of `value` with every personal field masked, at any depth."""
        if isinstance(value, dict):
            return {k: (self.pseudonym(v) if isinstance(k, str) and self.matches(k) else self.mask(v))
                    for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.mask(v) for v in value]
        return value

    def strip(self, value: Any) -> Any:
        """A copy of `value` without the personal fields at all (for hashes that must not depend on them)."""
        if isinstance(value, dict):
            return {k: self.strip(v) for k, v in value.items() if not (isinstance(k, str) and self.matches(k))}
        if isinstance(value, (list, tuple)):
            return [self.strip(v) for v in value]
        return value
