"""CLI commands beyond the core ones, one module per area (catalogue, convert, gateway, serve …).

Each module registers its commands on `rules_engine.cli.main`; importing this package imports
them all, so adding a command is adding a file.
"""
from __future__ import annotations

import importlib
import pkgutil

for _m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    importlib.import_module(f"{__name__}.{_m.name}")
