"""The service's settings: one dataclass, passed to uvicorn workers through the environment.

uvicorn starts each worker as a fresh process that imports the app by name, so the settings
travel as JSON in `RULES_ENGINE_SERVICE_CONFIG` rather than as Python objects.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

ENV_CONFIG = "RULES_ENGINE_SERVICE_CONFIG"


@dataclass
class Limits:
    """Bounds on what one request may cost. Every bound breached is a 4xx problem, never a 500.

    Memory: at most `max_pending` bodies are held at once (each ≤ its body limit), and at most
    `max_inflight` of them are being computed; a request that cannot get a slot within
    `queue_timeout_s` gets 429 with Retry-After instead of waiting without end.
    """

    max_body_bytes: int = 8 * 1024 * 1024           # one claim: 20,000 lines fit in ~6 MiB
    max_batch_body_bytes: int = 32 * 1024 * 1024
    max_upload_bytes: int = 32 * 1024 * 1024        # /v1/validate, as sent (zip or multipart)
    max_upload_unpacked_bytes: int = 256 * 1024 * 1024
    max_upload_files: int = 2000
    max_lines: int = 20_000                          # fee lines per claim (the interface's own bound)
    max_batch_claims: int = 1000
    max_depth: int = 16                              # JSON nesting; a claim needs 4
    max_string: int = 10_000                         # characters in any one JSON string
    max_pending: int = 64                            # requests holding a body, per worker
    max_inflight: int = 8                            # computations at once, per worker
    queue_timeout_s: float = 2.0
    body_timeout_s: float = 15.0                     # to receive a whole body (slow senders)


@dataclass
class ServiceConfig:
    regions: str = "regions"
    journal: str | None = None
    journal_key_file: str | None = None
    journal_sync: str = "FULL"
    journal_retention_days: int | None = None
    keys_file: str | None = None
    allow_anonymous: bool = False                    # only ever set for loopback without --keys
    watch_interval_s: float = 2.0                    # 0: no directory watcher
    runtime_dir: str | None = None                   # reload generation file shared by workers
    cache: bool = True                               # compiled-pack cache (~/.cache/rules-engine)
    extensions: list[str] = field(default_factory=list)
    log_level: str = "info"
    limits: Limits = field(default_factory=Limits)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ServiceConfig":
        data: dict[str, Any] = json.loads(text)
        limits = Limits(**data.pop("limits", {}))
        return cls(**data, limits=limits)

    @classmethod
    def from_env(cls) -> "ServiceConfig":
        text = os.environ.get(ENV_CONFIG)
        if not text:
            raise RuntimeError(f"{ENV_CONFIG} is not set: start the service with 'rules-engine serve'")
        return cls.from_json(text)
