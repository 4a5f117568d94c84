"""Consents and member queries in the one hash-chained journal: personal fields masked, kept two
years by default, an edited entry named by `rules-engine journal verify` and not believed."""
from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner
from member_helpers import CLINIC, PURPOSE, consent, entries

from rules_engine.cli import main
from rules_engine.member import MemberError
from rules_engine.member.sandbox import BJ

CERTNO, NAME = "110101198001010011", "张示例"


def _path(svc):
    return str(svc.journal.path)


def test_consents_and_queries_land_in_the_chain_masked(svc):
    c = consent(svc, BJ, ["insurance"], certno=CERTNO, psn_name=NAME)
    svc.insurance(BJ, purpose=PURPOSE, caller=CLINIC)
    with pytest.raises(MemberError):
        svc.benefits(BJ, purpose=PURPOSE, caller=CLINIC)
    svc.withdraw_consent(c["consent_id"], by="person")
    kinds = [e.kind for e in entries(svc.journal)]
    assert kinds == ["consent.given", "member.query", "member.refused", "consent.withdrawn"]
    given = entries(svc.journal, "consent.given")[0].payload
    assert given["certno"] != CERTNO and given["psn_name"] != NAME           # masked
    assert {"granted_to", "data", "purpose", "given_at", "channel", "until", "withdrawn"} <= set(given)
    raw = open(_path(svc), "rb").read()
    assert CERTNO.encode() not in raw and NAME.encode("utf-8") not in raw
    assert svc.journal.verify().ok
    assert svc.journal.retention_days == 730


def test_journal_verify_names_an_edited_entry_and_the_edit_is_not_believed(svc):
    consent(svc, BJ, ["insurance"])
    svc.insurance(BJ, purpose=PURPOSE, caller=CLINIC)
    ok = CliRunner().invoke(main, ["journal", "verify", _path(svc)])
    assert ok.exit_code == 0, ok.output
    # someone widens the consent in the file: benefits too
    seq = entries(svc.journal, "consent.given")[0].seq
    con = sqlite3.connect(_path(svc))
    payload = json.loads(con.execute("SELECT payload_json FROM entries WHERE seq=?", (seq,)).fetchone()[0])
    payload["data"] = ["insurance", "benefits"]
    con.execute("UPDATE entries SET payload_json=? WHERE seq=?", (json.dumps(payload, ensure_ascii=False), seq))
    con.commit()
    con.close()
    bad = CliRunner().invoke(main, ["journal", "verify", _path(svc)])
    assert bad.exit_code != 0 and f"seq {seq}" in bad.output
    with pytest.raises(MemberError) as e:        # the edited consent allows nothing
        svc.benefits(BJ, purpose=PURPOSE, caller=CLINIC)
    assert e.value.status == 403
