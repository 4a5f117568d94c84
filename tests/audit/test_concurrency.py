"""Both backends are safe to share between threads: the same hits as one at a time."""
from __future__ import annotations

import copy
import threading

from rules_engine.audit import DurableAudit, audit, claim_facts, parse_history
from rules_engine.model.claim import parse_claim

from .conftest import claim

CLAIMS = [
    claim([("002101030300000", "2025-03-02 10:00:00"), ("001102000050000", "2025-03-02 08:00:00"),
           ("001102000050000", "2025-03-02 09:00:00")], gend="1"),
    claim([("001103000010000", "2025-03-02 01:00:00"), ("001102000030000", "2025-03-02 02:00:00")]),
    claim([("002503020030000", "2025-03-06 08:00:00")],
          history=[{"med_list_codg": "002503020030000", "fee_ocur_time": "2025-02-25 09:00:00", "cnt": 1}]),
    claim([("ZA04CAE0023010100166", "2025-03-02 10:00:00")], age=30),
]


def _inputs():
    out = []
    for c in CLAIMS:
        c = copy.deepcopy(c)
        history = parse_history(c.pop("history", None))
        ci = parse_claim(c)
        out.append((ci, claim_facts(ci), history))
    return out


def _hammer(fn, inputs, expected, rounds: int) -> list[str]:
    errors: list[str] = []

    def work(k: int) -> None:
        try:
            for r in range(rounds):
                i = (k + r) % len(inputs)
                got = [h.key() for h in fn(*inputs[i])]
                if got != expected[i]:
                    errors.append(f"thread {k} claim {i}: {got}")
        except Exception as e:  # pragma: no cover - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_indexed_evaluator_from_many_threads(baseline):
    inputs = _inputs()
    expected = [[h.key() for h in audit(baseline, *x)] for x in inputs]
    assert all(expected)
    assert _hammer(lambda *x: audit(baseline, *x), inputs, expected, 200) == []


def test_durable_reference_from_many_threads(baseline):
    inputs = _inputs()
    ref = DurableAudit(baseline)
    expected = [[h.key() for h in ref.audit(*x)] for x in inputs]
    assert expected == [[h.key() for h in audit(baseline, *x)] for x in inputs]
    assert _hammer(ref.audit, inputs, expected, 6) == []
