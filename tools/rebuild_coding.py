#!/usr/bin/env python3
"""Rebuild the national baseline's ICD coding tables from the reference data, byte for byte.

    .venv/bin/python tools/rebuild_coding.py                 # ../shared/reference/data → regions/000000/2024.1/coding
    .venv/bin/python tools/rebuild_coding.py --check         # write nothing; exit 1 when the shipped files differ
    .venv/bin/python tools/rebuild_coding.py --data DIR --out DIR

The same as `rules-engine coding rebuild`: rules_engine.coding.importer.rebuild derives every
row's relationship (docs/coding.md §How relationships are derived) and writes the two tables and
IMPORT-REPORT.md. Deterministic: the same input bytes give the same output bytes.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rules_engine.cli import main  # noqa: E402

if __name__ == "__main__":
    main(["coding", "rebuild", *sys.argv[1:]])
