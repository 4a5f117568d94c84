"""Monitoring for the gateway: Prometheus metrics and structured JSON logs without personal fields.

Why a registry per gateway (not the process-global default): a process may hold several gateways
(tests, the benchmark next to a simulator), and each must count only its own traffic. The outbox
depth and the age of the oldest pending request are read from the outbox when Prometheus
scrapes (a collector), not kept in memory: after a restart they are right at once, and a second
process writing the same outbox is counted too.

Metric names (all prefixed ``rules_engine_gateway_``):

| name | type | labels | what |
|---|---|---|---|
| requests_total | counter | infno, outcome | every answer: success / failure / unknown |
| request_seconds | histogram | infno | round trip, from the outbox record to the answer |
| retries_total | counter | infno | re-sends of idempotent calls (sign-in, queries) |
| reversals_total | counter | kind, result | 冲正 (2601) and refunds (2208/2305): done / failed / unknown |
| signins_total | counter | reason | 9001: first, expired, rejected |
| comparisons_total | counter | result | match / warn / block |
| outbox_depth | gauge | state | requests not finished (PENDING, UNKNOWN) and open submissions |
| outbox_oldest_pending_seconds | gauge | | age of the oldest unfinished request |
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import time
from typing import Any, Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from ..journal.mask import DEFAULT_FIELDS, Masker

PREFIX = "rules_engine_gateway_"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class _OutboxCollector:
    """Reads depth and oldest age from the outbox(es) at scrape time."""

    def __init__(self, sources: Callable[[], Iterable[Any]]):
        self._sources = sources

    def collect(self):  # prometheus_client collector protocol
        depth = GaugeMetricFamily(PREFIX + "outbox_depth", "unfinished requests and open submissions",
                                  labels=["state"])
        oldest = GaugeMetricFamily(PREFIX + "outbox_oldest_pending_seconds",
                                   "age of the oldest unfinished request (0 when none)")
        totals: dict[str, int] = {}
        age = 0.0
        now = time.time()
        for ob in self._sources():
            try:
                stats = ob.depth()
            except Exception:  # a scrape never raises; an unreadable outbox shows as nothing
                continue
            for k, v in stats["states"].items():
                totals[k] = totals.get(k, 0) + v
            if stats["oldest"] is not None:
                age = max(age, now - stats["oldest"])
        for k in ("PENDING", "UNKNOWN", "open_submissions"):
            totals.setdefault(k, 0)
        for k, v in sorted(totals.items()):
            depth.add_metric([k], v)
        oldest.add_metric([], age)
        yield depth
        yield oldest


class GatewayMetrics:
    """The gateway's metrics in their own registry; `render()` gives the text exposition."""

    def __init__(self, outboxes: Callable[[], Iterable[Any]] | None = None):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(PREFIX + "requests_total", "answers by transaction and outcome",
                                ["infno", "outcome"], registry=r)
        self.latency = Histogram(PREFIX + "request_seconds", "round trip per transaction", ["infno"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.retries = Counter(PREFIX + "retries_total", "re-sends of idempotent calls", ["infno"], registry=r)
        self.reversals = Counter(PREFIX + "reversals_total", "冲正 and refunds by result", ["kind", "result"],
                                 registry=r)
        self.signins = Counter(PREFIX + "signins_total", "sign-ins (9001) by reason", ["reason"], registry=r)
        self.comparisons = Counter(PREFIX + "comparisons_total", "platform vs engine comparisons", ["result"],
                                   registry=r)
        if outboxes is not None:
            r.register(_OutboxCollector(outboxes))

    def observe(self, infno: str, outcome: str, seconds: float) -> None:
        self.requests.labels(infno, outcome).inc()
        self.latency.labels(infno).observe(max(0.0, seconds))

    def render(self) -> str:
        return generate_latest(self.registry).decode("utf-8")

    def value(self, name: str, **labels: str) -> float:
        """One sample's value (0 when absent) — for tests and `gateway status`."""
        v = self.registry.get_sample_value(PREFIX + name, labels or None)
        return float(v or 0.0)


# --------------------------------------------------------------------------- structured logs

_STRIP = Masker(DEFAULT_FIELDS)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event, and the record's `fields`, with every
    personal field (certno, psn_name, phone, address …) removed — not masked: a log line never
    needs them, and a removed field cannot leak through a weak mask."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            out.update(_STRIP.strip(dict(fields)))
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
        return json.dumps(out, ensure_ascii=False, default=str, sort_keys=False)


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log `event` with structured fields (stripped of personal fields by `JsonFormatter`; stripped
    here too, so a plain-text handler cannot print them either)."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"fields": _STRIP.strip(fields)})


def json_logging(level: int = logging.INFO, stream: Any = None) -> logging.Handler:
    """Install a JSON-lines handler on the gateway's loggers (CLI `--log-json`)."""
    h = logging.StreamHandler(stream)
    h.setFormatter(JsonFormatter())
    lg = logging.getLogger("rules_engine.gateway")
    lg.addHandler(h)
    lg.setLevel(level)
    return h


# a library does not print: warnings reach the user only through a handler they install
# (`rules-engine gateway … --log-json`, or their own logging configuration)
logging.getLogger("rules_engine.gateway").addHandler(logging.NullHandler())
