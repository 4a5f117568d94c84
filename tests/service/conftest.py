"""Fixtures of the service tests; the helpers are in service_helpers.py (importable from tests here)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from service_helpers import Server, make_keys, make_regions  # noqa: E402


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """One server per module: shipped packs (national baseline + Beijing 2021), keys, a journal."""
    root = tmp_path_factory.mktemp("service")
    regions = make_regions(root)
    keys_file, keys = make_keys(root)
    srv = Server(root, regions, keys_file=keys_file, journal=root / "decisions.journal",
                 args=["--watch-interval", "0"]).start()
    srv.keys = keys  # type: ignore[attr-defined]
    yield srv
    srv.stop()

