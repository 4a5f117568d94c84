"""The settlement service: the engine over HTTP for hospital systems in C# and Java.

    rules-engine serve --regions regions --keys keys.txt --journal var/decisions.journal

`create_app(ServiceConfig(...))` builds the FastAPI app (tests, embedding); docs/service.md
describes the endpoints, limits, reload behaviour and the decision log.
"""
from __future__ import annotations

from .config import Limits, ServiceConfig

__all__ = ["Limits", "ServiceConfig", "create_app"]


def create_app(config: ServiceConfig, **kw):  # noqa: ANN201 - imported lazily: FastAPI is heavy
    from .app import create_app as _create
    return _create(config, **kw)
