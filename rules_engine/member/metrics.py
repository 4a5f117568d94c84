"""Prometheus metrics of the member service, and two read-at-scrape gauges the 医保 desk alerts on.

| name | type | labels | what |
|---|---|---|---|
| rules_engine_member_queries_total | counter | op, outcome | member queries and actions: ok / refused (consent, bad input) / failed (platform) |
| rules_engine_member_query_seconds | histogram | op | time to answer one (platform round trip included) |
| rules_engine_member_consents_total | counter | action | consents given / withdrawn |
| rules_engine_member_evoucher_requests_total | counter | role, outcome | 移动支付 messages: success / failure / unknown |
| rules_engine_member_evoucher_callbacks_total | counter | result | notifications: accepted / bad_signature / malformed / invalid / unknown_order |
| rules_engine_outbox_awaiting_reversal | gauge | kind | settlements whose outcome is unknown or whose 冲正 is not done (kind="settlement"), e-voucher payments or refunds with an unknown outcome (kind="evoucher") |
| rules_engine_reconcile_unbalanced | gauge | region | 3201 answers of the last 36 hours that say "not balanced" (stmt_rslt ≠ 0) |

The two gauges are read from the gateway outbox file(s) when Prometheus scrapes, like the gateway's
own outbox gauges: right after a restart, and across every process writing the outbox. They sit
here rather than in the gateway's registry only because this issue may not change the gateway's
metrics module; they name gateway facts and could move there unchanged.
"""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
AWAITING_SETTLEMENT = ("UNKNOWN", "REVERSING", "REVERSAL_FAILED")
AWAITING_EVOUCHER = ("UNKNOWN", "REFUND_UNKNOWN")


class OutboxWatch:
    """Collector: settlements awaiting 冲正 and unbalanced 3201 answers, read from outbox files."""

    def __init__(self, sources: Callable[[], Iterable[tuple[Path, str]]], *, window_s: float = 36 * 3600):
        self._sources = sources   # (outbox path, the reconcile transaction number) pairs
        self.window_s = window_s

    def collect(self):  # prometheus_client collector protocol
        awaiting = GaugeMetricFamily("rules_engine_outbox_awaiting_reversal",
                                     "settlements (and e-voucher payments) with an unknown outcome or an unfinished 冲正",
                                     labels=["kind"])
        unbalanced = GaugeMetricFamily("rules_engine_reconcile_unbalanced",
                                       "3201 answers of the last 36 hours that are not balanced", labels=["region"])
        totals = {"settlement": 0, "evoucher": 0}
        regions: dict[str, int] = {}
        since = time.time() - self.window_s
        seen: set[Path] = set()
        for path, recon in self._sources():
            p = Path(path)
            if p in seen or not p.exists():
                continue
            seen.add(p)
            try:
                c = sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=2)
            except sqlite3.Error:
                continue
            try:
                totals["settlement"] += c.execute(
                    "SELECT COUNT(*) FROM submissions WHERE state IN (%s)" % ",".join("?" * len(AWAITING_SETTLEMENT)),
                    AWAITING_SETTLEMENT).fetchone()[0]
                try:
                    totals["evoucher"] += c.execute(
                        "SELECT COUNT(*) FROM evoucher_orders WHERE state IN (%s)" % ",".join(
                            "?" * len(AWAITING_EVOUCHER)), AWAITING_EVOUCHER).fetchone()[0]
                except sqlite3.Error:
                    pass  # an outbox no e-voucher order was ever written to
                for region, response in c.execute("SELECT region, response FROM requests WHERE infno=? AND state='DONE' "
                                                  "AND created>=?", (recon, since)):
                    regions.setdefault(region, 0)
                    try:
                        stmt = (json.loads(response or "{}").get("output") or {}).get("stmtinfo") or {}
                    except (ValueError, AttributeError):
                        continue
                    if str(stmt.get("stmt_rslt", "0")) != "0":
                        regions[region] += 1
            except sqlite3.Error:
                pass  # a scrape never raises
            finally:
                c.close()
        for k, v in totals.items():
            awaiting.add_metric([k], v)
        for r, v in sorted(regions.items()):
            unbalanced.add_metric([r], v)
        yield awaiting
        yield unbalanced


class MemberMetrics:
    """The member service's metrics, in `registry` (the service's own when installed there)."""

    def __init__(self, registry: CollectorRegistry | None = None,
                 outboxes: Callable[[], Iterable[tuple[Path, str]]] | None = None):
        r = self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.queries = Counter("rules_engine_member_queries_total", "member queries and actions by outcome",
                               ["op", "outcome"], registry=r)
        self.latency = Histogram("rules_engine_member_query_seconds", "time to answer a member query or action",
                                 ["op"], buckets=BUCKETS, registry=r)
        self.consents = Counter("rules_engine_member_consents_total", "consents given and withdrawn", ["action"],
                                registry=r)
        self.evoucher = Counter("rules_engine_member_evoucher_requests_total", "移动支付 messages by role and outcome",
                                ["role", "outcome"], registry=r)
        self.callbacks = Counter("rules_engine_member_evoucher_callbacks_total", "e-voucher notifications by result",
                                 ["result"], registry=r)
        if outboxes is not None:
            r.register(OutboxWatch(outboxes))

    def render(self) -> str:
        from prometheus_client import generate_latest
        return generate_latest(self.registry).decode("utf-8")
