"""Fixtures of the member tests: a loopback sandbox (fresh SM2 keys, gateway.yaml, member.yaml, the
platform simulator with its two example persons) and a MemberService over it. Helpers: member_helpers.py."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rules_engine.member.sandbox import Sandbox  # noqa: E402


@pytest.fixture
def sandbox(tmp_path, engine):
    sb = Sandbox.create(tmp_path / "sb", engine=engine)
    yield sb
    sb.close()


@pytest.fixture
def svc(sandbox, engine):
    s = sandbox.service(engine=engine)
    yield s
    s.close()


@pytest.fixture
def fast_sandbox(tmp_path, engine):
    """Short read timeouts: a payment answer delayed past them is a simulated timeout."""
    sb = Sandbox.create(tmp_path / "sbf", engine=engine, timeouts="{connect: 1, read: 0.3, write: 1, total: 0.6}")
    yield sb
    sb.close()


KEYS = {"settle": "rek_settle-" + "a" * 40, "admin": "rek_admin-" + "b" * 40}


@pytest.fixture
def http(sandbox, tmp_path, monkeypatch, regions_dir):
    """The settlement service in-process with the member routes, keys 'his' (settle) and 'ops' (admin)."""
    from rules_engine.service.app import create_app
    from rules_engine.service.auth import hash_key
    from rules_engine.service.config import ServiceConfig
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    keys = tmp_path / "keys.txt"
    keys.write_text(f"his settle {hash_key(KEYS['settle'])}\nops admin {hash_key(KEYS['admin'])}\n", encoding="utf-8")
    monkeypatch.setenv("RULES_ENGINE_MEMBER_CONFIG", str(sandbox.member_yaml))
    cfg = ServiceConfig(regions=str(regions_dir), keys_file=str(keys), watch_interval_s=0, cache=False,
                        journal=str(tmp_path / "service-journal.sqlite"))
    with TestClient(create_app(cfg), raise_server_exceptions=False,
                    headers={"Authorization": f"Bearer {KEYS['settle']}"}) as c:
        c.journal_path = tmp_path / "service-journal.sqlite"
        yield c
