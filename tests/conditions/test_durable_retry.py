"""durable-rules now and then fails to parse a ruleset text it reads fine on the next call: one
retry, and a text that fails twice is still a located refusal."""
from __future__ import annotations

import pytest

from rules_engine.conditions import durable as D


class _Flaky:
    def __init__(self, failures: int, code: int = 102):
        self.failures, self.code, self.calls = failures, code, 0

    def __call__(self, name, text):
        self.calls += 1
        if self.calls <= self.failures:
            raise D._dre.error(f"Could not create ruleset, error code: {self.code}")
        return ("handle", name)


def test_a_parse_error_once_is_retried(monkeypatch):
    flaky = _Flaky(1)
    monkeypatch.setattr(D._dre, "create_ruleset", flaky)
    assert D._create("r", "{}") == ("handle", "r") and flaky.calls == 2


def test_a_parse_error_twice_is_refused(monkeypatch):
    flaky = _Flaky(2)
    monkeypatch.setattr(D._dre, "create_ruleset", flaky)
    with pytest.raises(D.DurableError, match="error code: 102"):
        D._create("r", "{}")
    assert flaky.calls == 2


def test_other_errors_are_not_retried(monkeypatch):
    flaky = _Flaky(1, code=106)  # rule limit: retrying cannot help
    monkeypatch.setattr(D._dre, "create_ruleset", flaky)
    with pytest.raises(D.DurableError, match="error code: 106"):
        D._create("r", "{}")
    assert flaky.calls == 1
