"""deploy/alerts.yml: it loads, every rule has the shape Prometheus needs, every expression names
metrics our code really registers, and the two read-at-scrape gauges count what they say."""
from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "alerts.yml"
PROMQL_WORDS = {"sum", "by", "rate", "increase", "max", "min", "clamp_min", "without", "on", "and", "or", "unless",
                "avg", "count", "humanizePercentage", "humanizeDuration", "ignoring", "group_left", "bool"}
REQUIRED = {"PlatformErrorRateHigh", "OutboxOldestPendingTooOld", "SettlementsAwaitingReversal", "PackReloadFailing",
            "ReconciliationNotBalanced"}


def _rules() -> list[dict]:
    doc = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [r for g in doc["groups"] for r in g["rules"]]


def _registered() -> set[str]:
    """Metric names registered by the code: every collector in the service, gateway and member registries."""
    from prometheus_client import CollectorRegistry

    from rules_engine.gateway.metrics import GatewayMetrics
    from rules_engine.member.metrics import MemberMetrics
    from rules_engine.service.metrics import Metrics
    names: set[str] = set()
    svc = Metrics()
    gw = GatewayMetrics(outboxes=lambda: [])
    mem = MemberMetrics(CollectorRegistry(auto_describe=True), outboxes=lambda: [])
    for reg in (svc.registry, gw.registry, mem.registry):
        for fam in reg.collect():
            names.add(fam.name)
            names.update(s.name for s in fam.samples)
            if fam.type == "counter":
                names.add(fam.name + "_total")
    return names


def test_the_rules_file_has_prometheus_shape():
    doc = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    assert isinstance(doc["groups"], list) and doc["groups"]
    seen = set()
    for g in doc["groups"]:
        assert set(g) == {"name", "rules"} and g["rules"]
        for r in g["rules"]:
            assert set(r) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, r
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", r["alert"]) and r["alert"] not in seen
            seen.add(r["alert"])
            assert isinstance(r["expr"], str) and r["expr"].strip()
            assert r["expr"].count("(") == r["expr"].count(")")
            if "for" in r:
                assert re.fullmatch(r"[0-9]+[smh]", r["for"])
            assert r["labels"]["severity"] in ("page", "ticket")
            assert r["annotations"]["summary"] and r["annotations"]["runbook"]
    assert REQUIRED <= seen


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r["alert"])
def test_each_expression_names_real_metrics(rule):
    expr = re.sub(r'\{[^}]*\}', "", rule["expr"])                 # label matchers
    expr = re.sub(r"\[[0-9]+[smhd]\]", "", expr)                     # range selectors
    expr = re.sub(r"(?<![A-Za-z_])[0-9.]+(e-?[0-9]+)?", "", expr)     # numbers (1e-9 …)
    idents = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr)) - PROMQL_WORDS
    metrics = {i for i in idents if i.startswith("rules_engine_")}
    assert metrics, f"{rule['alert']} names no metric of ours"
    assert not (idents - metrics - {"instance", "kind", "region"}), idents - metrics
    missing = metrics - _registered()
    assert not missing, f"{rule['alert']}: not registered anywhere in the code: {missing}"


def test_a_made_up_metric_would_be_caught():
    assert "rules_engine_no_such_thing_total" not in _registered()
    assert "rules_engine_gateway_outbox_oldest_pending_seconds" in _registered()


def test_awaiting_reversal_and_unbalanced_3201_are_read_from_the_outbox(tmp_path):
    """The gauges behind two alerts count real outbox rows: an UNKNOWN settlement, an unknown
    e-voucher payment, and a 3201 answer saying 不平."""
    from prometheus_client import CollectorRegistry

    from rules_engine.gateway.outbox import Outbox
    from rules_engine.member.evoucher import EVoucherOutbox
    from rules_engine.member.metrics import MemberMetrics
    path = tmp_path / "outbox.sqlite"
    EVoucherOutbox(path).close()
    Outbox(path).close()
    now = time.time()
    c = sqlite3.connect(path)
    c.execute("INSERT INTO submissions(region, psn_no, mdtrt_id, visit_key, kind, state, open, claim, claim_hash, "
              "created, updated) VALUES ('110000','P','M','V','settle','UNKNOWN',1,'{}','h',?,?)", (now, now))
    c.execute("INSERT INTO evoucher_orders(id, order_key, region, psn_no, state, open, claim, created, updated) "
              "VALUES ('E1','V2','110000','P','UNKNOWN',1,'{}',?,?)", (now, now))
    for i, rslt in enumerate(("0", "1")):
        c.execute("INSERT INTO requests(msgid, infno, region, purpose, state, owner, created, request, request_hash, "
                  "response) VALUES (?, '3201', '110000', 'reconcile', 'DONE', 'o', ?, '{}', 'h', ?)",
                  (f"M{i}", now, json.dumps({"output": {"stmtinfo": {"stmt_rslt": rslt}}})))
    c.commit()
    c.close()
    reg = CollectorRegistry(auto_describe=True)
    MemberMetrics(reg, outboxes=lambda: [(path, "3201")])
    assert reg.get_sample_value("rules_engine_outbox_awaiting_reversal", {"kind": "settlement"}) == 1
    assert reg.get_sample_value("rules_engine_outbox_awaiting_reversal", {"kind": "evoucher"}) == 1
    assert reg.get_sample_value("rules_engine_reconcile_unbalanced", {"region": "110000"}) == 1
