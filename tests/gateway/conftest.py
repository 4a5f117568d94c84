"""Gateway test fixtures: throw-away SM2 key pairs made per session (never committed keys)."""
from __future__ import annotations

import base64
from dataclasses import dataclass

import gmssl_pyx
import pytest

from rules_engine.gateway.security import Secret


@dataclass(frozen=True)
class KeyPair:
    private: bytes  # raw 32 bytes
    public: bytes  # X‖Y, 64 bytes

    @property
    def private_b64(self) -> str:
        return base64.b64encode(self.private).decode()

    @property
    def public_b64(self) -> str:
        return base64.b64encode(b"\x04" + self.public).decode()

    def secret(self) -> Secret:
        return Secret(self.private, "test-fixture")


def _pair() -> KeyPair:
    public, private = gmssl_pyx.sm2_key_generate()
    return KeyPair(private=private, public=public)


@pytest.fixture(scope="session")
def channel_keys() -> KeyPair:
    """Our side (the hospital's channel)."""
    return _pair()


@pytest.fixture(scope="session")
def platform_keys() -> KeyPair:
    """The platform's side (what a simulator would hold)."""
    return _pair()
