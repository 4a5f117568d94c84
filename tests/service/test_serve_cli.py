"""`rules-engine serve` refuses to start on bad settings, with a located message; `apikey` and `openapi`."""
from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner
from service_helpers import ROOT, make_regions

from rules_engine.cli import main
from rules_engine.service.auth import KeyFileError, KeyStore, hash_key


def serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rules_engine.cli", "serve", "--port", "1", *args],
                          capture_output=True, text=True, cwd=str(ROOT), timeout=120)


def test_invalid_packs_stop_the_start_with_every_problem_located(tmp_path):
    regions = make_regions(tmp_path)
    policy = regions / "110000" / "2021.1" / "policy.yaml"
    policy.write_text(policy.read_text(encoding="utf-8").replace("ratio: 0.85", "ratio: 1.85", 1), encoding="utf-8")
    out = serve("--regions", str(regions))
    assert out.returncode == 1
    assert "policy.yaml:" in out.stderr and "E-RATIO" in out.stderr and "Traceback" not in out.stderr


def test_settings_errors(tmp_path):
    regions = make_regions(tmp_path)
    out = serve("--regions", str(regions), "--host", "0.0.0.0")
    assert out.returncode == 2 and "--keys" in out.stderr
    bad = tmp_path / "bad-keys.txt"
    bad.write_text("his settle rek_this-is-a-key-not-a-hash\n", encoding="utf-8")
    out = serve("--regions", str(regions), "--keys", str(bad))
    assert out.returncode == 2 and "bad-keys.txt:1:" in out.stderr and "hash" in out.stderr
    out = serve("--regions", str(tmp_path / "nowhere"))
    assert out.returncode == 2 and "no such directory" in out.stderr
    journal = tmp_path / "j.journal"
    from rules_engine.journal import Journal
    Journal(journal, mask_key=b"k" * 32).close()
    out = serve("--regions", str(regions), "--journal", str(journal))
    assert out.returncode == 1 and "pseudonymises personal fields with key" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("text,where", [
    ("his settle\n", ":1:"),
    ("# comment\nhis owner sha256:" + "0" * 64 + "\n", ":2:"),
    ("his settle sha256:" + "0" * 64 + "\nhis admin sha256:" + "1" * 64 + "\n", ":2:"),
    ("a settle sha256:" + "0" * 64 + "\nb admin sha256:" + "0" * 64 + "\n", ":2:"),
    ("bad/id settle sha256:" + "0" * 64 + "\n", ":1:"),
])
def test_keys_file_errors_are_located(tmp_path, text, where):
    p = tmp_path / "keys.txt"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(KeyFileError) as e:
        KeyStore.load(p)
    assert where in str(e.value)


def test_apikey_new_appends_only_the_hash(tmp_path):
    keys = tmp_path / "keys.txt"
    r = CliRunner().invoke(main, ["apikey", "new", "his-1", "--role", "settle", "--keys", str(keys)])
    assert r.exit_code == 0
    key = r.stdout.strip()
    assert key.startswith("rek_") and key not in keys.read_text()
    assert (keys.stat().st_mode & 0o777) == 0o600
    r2 = CliRunner().invoke(main, ["apikey", "new", "ops", "--role", "admin,settle", "--keys", str(keys)])
    store = KeyStore.load(keys)
    assert store.authenticate(key).id == "his-1" and store.authenticate(key).roles == {"settle"}
    assert store.authenticate(r2.stdout.strip()).roles == {"admin", "settle"}
    assert store.authenticate("rek_guess") is None and store.authenticate("") is None
    assert CliRunner().invoke(main, ["apikey", "new", "his-1", "--keys", str(keys)]).exit_code == 2
    assert CliRunner().invoke(main, ["apikey", "new", "x", "--role", "root"]).exit_code == 2
    r = CliRunner().invoke(main, ["apikey", "hash"], input=key + "\n")
    assert r.stdout.strip() == hash_key(key)


def test_openapi_check(tmp_path):
    out = tmp_path / "openapi.json"
    assert CliRunner().invoke(main, ["openapi", "-o", str(out), "--check"]).exit_code == 1
    assert CliRunner().invoke(main, ["openapi", "-o", str(out)]).exit_code == 0
    assert CliRunner().invoke(main, ["openapi", "-o", str(out), "--check"]).exit_code == 0
