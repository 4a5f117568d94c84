"""Prometheus metrics, correct with one worker or several.

With several uvicorn workers every process counts on its own; `rules-engine serve` then sets
PROMETHEUS_MULTIPROC_DIR (a fresh folder) before the workers start, and /metrics — whichever
worker answers — adds up all of them from the files there (prometheus-client's multiprocess
mode). Gauges say how they combine: packs in force and reload failure take the maximum over
live workers, in-flight requests the sum.
"""
from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("rules_engine_http_requests_total", "HTTP requests by endpoint and status",
                                ["endpoint", "method", "status"], registry=r)
        self.latency = Histogram("rules_engine_http_request_duration_seconds",
                                 "Time from request to response, by endpoint and the claim's insured region",
                                 ["endpoint", "region"], buckets=LATENCY_BUCKETS, registry=r)
        self.settlements = Counter("rules_engine_settlements_total", "Claims settled or refused, by insured region",
                                   ["region", "outcome"], registry=r)
        self.pack_info = Gauge("rules_engine_pack_info", "1 for every pack version in force (region, version, hash)",
                               ["region", "version", "hash"], registry=r, multiprocess_mode="livemax")
        self.packs_loaded = Gauge("rules_engine_packs_loaded_timestamp_seconds", "When the packs in force were loaded",
                                  registry=r, multiprocess_mode="livemax")
        self.reloads = Counter("rules_engine_pack_reloads_total", "Pack reloads by result and trigger",
                               ["result", "trigger"], registry=r)
        self.reload_failing = Gauge("rules_engine_pack_reload_failing",
                                    "1 while the newest packs on disk fail validation (the previous set is served)",
                                    registry=r, multiprocess_mode="livemax")
        self.rejected = Counter("rules_engine_rejected_total", "Requests refused by a limit or by authentication",
                                ["reason"], registry=r)
        self.inflight = Gauge("rules_engine_inflight_requests", "Requests being computed", registry=r,
                              multiprocess_mode="livesum")
        self.journal = Counter("rules_engine_journal_appends_total", "Decision-log appends by result", ["result"],
                               registry=r)
        self._packs_shown: set[tuple[str, str, str]] = set()

    def set_packs(self, packs: list[tuple[str, str, str]], loaded_at: float) -> None:
        """Mark the packs in force (1) and those no longer in force (0)."""
        now = set(packs)
        for labels in self._packs_shown - now:
            self.pack_info.labels(*labels).set(0)
        for labels in now:
            self.pack_info.labels(*labels).set(1)
        self._packs_shown |= now
        self.packs_loaded.set(loaded_at)

    def exposition(self) -> tuple[bytes, str]:
        if multiprocess():
            from prometheus_client import multiprocess as mp
            reg = CollectorRegistry()
            mp.MultiProcessCollector(reg)
            return generate_latest(reg), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def close(self) -> None:
        if multiprocess():
            from prometheus_client import multiprocess as mp
            try:
                mp.mark_process_dead(os.getpid())
            except OSError:
                pass
