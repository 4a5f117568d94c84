"""Generate throw-away gateway test keys, so that no private key is ever committed.

    python tools/gateway_test_keys.py DIR            # writes DIR/*.key, DIR/*.pub, DIR/gateway-test.env
    source DIR/gateway-test.env                       # sets the variables examples/gateway.yaml names

Writes a channel (our side) and a platform SM2 key pair as Base64 (private: the raw 32-byte scalar,
mode 600; public: 04‖X‖Y), and an env file with random test values for every secret the example
configuration references by environment variable (the key pairs too, for env-only setups and for a
simulator playing the platform). Every value is random and good for tests only.
"""
from __future__ import annotations

import argparse
import base64
import os
import secrets
import sys
from pathlib import Path

import gmssl_pyx

ENV_NAMES = {
    "GW_110000_PAAS_TOKEN": lambda: secrets.token_hex(16),
    "GW_TEST_APP_SECRET": lambda: secrets.token_hex(16).upper(),
    "GW_TEST_CLIENT_ID": lambda: secrets.token_hex(8).upper(),  # 16 characters: it is an SM4 key
    "GW_TEST_OAUTH_SECRET": lambda: secrets.token_urlsafe(24),
    "GW_TEST_OAUTH_PASSWORD": lambda: secrets.token_urlsafe(16),
    "GW_TEST_APIKEY": lambda: secrets.token_urlsafe(24),
}


def write_pair(directory: Path, stem: str) -> tuple[str, str]:
    """Write STEM.key (mode 600) and STEM.pub; return (private, public) as Base64."""
    public, private = gmssl_pyx.sm2_key_generate()
    priv64 = base64.b64encode(private).decode("ascii")
    pub64 = base64.b64encode(b"\x04" + public).decode("ascii")
    key = directory / f"{stem}.key"
    key.touch(mode=0o600)
    os.chmod(key, 0o600)
    key.write_text(priv64 + "\n", encoding="ascii")
    (directory / f"{stem}.pub").write_text(pub64 + "\n", encoding="ascii")
    return priv64, pub64


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("directory", type=Path, help="where to write the keys (outside the repository)")
    ap.add_argument("--force", action="store_true", help="overwrite existing files")
    args = ap.parse_args(argv)
    d: Path = args.directory
    d.mkdir(parents=True, exist_ok=True)
    if not args.force and any((d / n).exists() for n in ("channel-sm2.key", "platform-sm2.key")):
        print(f"{d}: keys exist already (use --force to replace them)", file=sys.stderr)
        return 1
    c_key, c_pub = write_pair(d, "channel-sm2")
    p_key, p_pub = write_pair(d, "platform-sm2")
    env = d / "gateway-test.env"
    lines = [f"export {k}={f()}" for k, f in ENV_NAMES.items()]
    lines += [f"export GW_TEST_CHANNEL_SM2_KEY={c_key}", f"export GW_TEST_CHANNEL_SM2_PUB={c_pub}",
              f"export GW_TEST_PLATFORM_SM2_KEY={p_key}", f"export GW_TEST_PLATFORM_SM2_PUB={p_pub}"]
    env.touch(mode=0o600)
    os.chmod(env, 0o600)
    env.write_text("\n".join(lines) + "\n", encoding="ascii")
    print(f"wrote channel-sm2.key/.pub, platform-sm2.key/.pub and gateway-test.env in {d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
