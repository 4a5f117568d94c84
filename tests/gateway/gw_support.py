"""Helpers for the gateway flow tests: a simulator, a configuration pointing at it, claims."""
from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "claims"
SAMPLES = Path(__file__).resolve().parent / "samples"


def example(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def sample(infno: str) -> bytes:
    return (SAMPLES / f"{infno}.json").read_bytes()


def new_code() -> str:
    """A fixmedins_code of its own for each gateway under test: gateways with separate outboxes that
    share a code would draw the same msgids (which the simulator, like a platform, refuses)."""
    import secrets
    return "H" + "".join(secrets.choice("0123456789") for _ in range(11))


def write_config(d: Path, url: str, *, read: float = 1.0, total: float | None = None, regions=("110000", "130000"),
                 adapter: str | None = None, retry_max: int = 3, extra: str = "", code: str | None = None) -> Path:
    total = total if total is not None else read + 0.5
    code = code or new_code()
    body = "\n".join(f'  "{r}": {{endpoint: "{url}", fixmedins_code: {code}, fixmedins_name: 测试医院, '
                     f'recer_sys_code: YBXT}}' for r in regions)
    (d / "gateway.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        defaults:
          operator: {{opter: "0001", opter_name: 测试经办人}}
          outbox: {{path: outbox.sqlite}}
          timeouts: {{connect: 2, read: {read}, write: {read}, total: {total}}}
          retry: {{max_attempts: {retry_max}, initial_backoff: 0.01, max_backoff: 0.02}}
        {extra}regions:
        """) + body + "\n", encoding="utf-8")
    if adapter is not None:
        (d / "gateway-adapter.yaml").write_text(textwrap.dedent(adapter), encoding="utf-8")
    return d / "gateway.yaml"


def load(d: Path) -> tuple[Any, Any]:
    from rules_engine.gateway.config import require_gateway_config
    from rules_engine.gateway.settings import default_adapter_path, load_adapter_config
    cfg = require_gateway_config(d / "gateway.yaml")
    adapter, problems = load_adapter_config(default_adapter_path(d / "gateway.yaml"), gateway_config=cfg)
    assert adapter is not None, [p.format() for p in problems]
    return cfg, adapter


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def person(base: str, psn_no: str, **over: Any) -> dict:
    c = dict(example(base), psn_no=psn_no)
    c.update(over)
    return c
