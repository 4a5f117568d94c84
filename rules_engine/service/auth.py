"""API keys: stored hashed, checked by hash, never logged.

The keys file, one key a line (`#` starts a comment):

    # id         roles          hash of the key
    his-ward-3   settle         sha256:4f2a…
    ops          admin,settle   sha256:9c1e…

`rules-engine apikey new ID --role settle --keys FILE` makes a key, prints it once and appends
its line. Roles: `settle` (settle, read packs — and audit and code conversion when those
endpoints are added), `admin` (reload, validate). A key may hold both.

Why sha256 and not argon2/bcrypt: the keys are 256-bit random tokens made by the command
above, so there is nothing to guess and a fast hash is enough; a slow hash protects *low-
entropy* secrets (passwords) and would cost more than the settlement itself on every request.
A file of sha256 hashes of random keys is useless to whoever steals it.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

ROLES = ("settle", "admin")
KEY_PREFIX = "rek_"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_HASH = re.compile(r"^sha256:([0-9a-f]{64})$")


class KeyFileError(ValueError):
    """The keys file has a bad line; the message says file:line."""


@dataclass(frozen=True)
class ApiKey:
    id: str
    roles: frozenset[str]

    def allows(self, role: str) -> bool:
        return role in self.roles


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh key: 'rek_' + 43 URL-safe characters (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


class KeyStore:
    def __init__(self, keys: dict[str, ApiKey], source: str | None = None, mtime: float | None = None):
        self._by_hash = keys  # hex digest → key
        self.source = source
        self.mtime = mtime

    def __len__(self) -> int:
        return len(self._by_hash)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "KeyStore":
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
            mtime = p.stat().st_mtime
        except OSError as e:
            raise KeyFileError(f"{p}: cannot read the keys file: {e.strerror}") from None
        except UnicodeDecodeError:
            raise KeyFileError(f"{p}: the keys file is not UTF-8 text") from None
        keys: dict[str, ApiKey] = {}
        ids: set[str] = set()
        for n, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 3:
                raise KeyFileError(f"{p}:{n}: expected 'ID ROLES sha256:HEX', found {len(parts)} field(s)")
            kid, roles_text, h = parts
            if not _ID.match(kid):
                raise KeyFileError(f"{p}:{n}: key id '{kid}': letters, digits, '_', '.', '@', '-' (≤ 64)")
            if kid in ids:
                raise KeyFileError(f"{p}:{n}: key id '{kid}' appears twice")
            roles = frozenset(r.strip() for r in roles_text.split(",") if r.strip())
            unknown = roles - set(ROLES)
            if not roles or unknown:
                raise KeyFileError(f"{p}:{n}: role(s) {', '.join(sorted(unknown)) or '(none)'}: use "
                                   f"{' or '.join(ROLES)}, comma-separated")
            m = _HASH.match(h.lower())
            if not m:
                hint = " — that looks like a key itself: store its hash (rules-engine apikey hash)" if h.startswith(
                    KEY_PREFIX) else ""
                raise KeyFileError(f"{p}:{n}: the hash must be 'sha256:' and 64 hex digits{hint}")
            if m.group(1) in keys:
                raise KeyFileError(f"{p}:{n}: the same key is listed twice")
            ids.add(kid)
            keys[m.group(1)] = ApiKey(kid, roles)
        return cls(keys, str(p), mtime)

    def authenticate(self, presented: str | None) -> ApiKey | None:
        """The key's identity, or None. Looked up by the sha256 of the presented value: the time a
        lookup takes depends on that digest, never on the secret itself."""
        if not presented or len(presented) > 256:
            return None
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).hexdigest()
        return self._by_hash.get(digest)


def presented_key(headers) -> str | None:
    """`Authorization: Bearer <key>` or `X-API-Key: <key>`."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    k = headers.get("x-api-key")
    return k.strip() if k else None
