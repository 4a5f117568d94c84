"""Shared fixtures: the shipped packs, an engine over them, and a builder for small test packs."""
from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REGIONS = ROOT / "regions"
REFERENCE = (ROOT.parent / "shared" / "reference") if (ROOT.parent / "shared" / "reference").exists() else None

os.environ.setdefault("RULES_ENGINE_CACHE", str(ROOT / ".cache" / "test-packs"))


@pytest.fixture(scope="session")
def regions_dir() -> Path:
    return REGIONS


@pytest.fixture(scope="session")
def engine():
    from rules_engine import Engine
    return Engine.from_directory(REGIONS, cache=False)


class PackBuilder:
    """Write small packs into a temporary regions folder: files as dedented text."""

    def __init__(self, root: Path):
        self.root = root

    def pack(self, region: str, version: str, files: dict[str, str]) -> Path:
        d = self.root / region / version
        d.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            p = d / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return d

    def copy_shipped(self, *keys: str) -> None:
        """Copy shipped packs ('000000/2024.1', …) into this folder."""
        for k in keys:
            shutil.copytree(REGIONS / k, self.root / k)


@pytest.fixture
def packs(tmp_path) -> PackBuilder:
    root = tmp_path / "regions"
    root.mkdir()
    return PackBuilder(root)
