"""The hash-chained journal: appends, lookups, masking, retention, and tampering detection."""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules_engine.journal import (GENESIS, JournalError, Journal, Masker, canonical_json, entry_hash, entry_material,
                                  sha256_hex)
from rules_engine.journal.canonical import CanonicalError

ROOT = Path(__file__).resolve().parents[2]
KEY = b"k" * 32


class Clock:
    """A settable clock, so retention can be tested without waiting two years."""

    def __init__(self, start: dt.datetime):
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now


def fill(j: Journal, n: int, kind: str = "settlement") -> list:
    return [j.append(kind, {"i": i, "amount": Decimal(f"{i}.10"), "certno": f"11010119900101{i:04d}"},
                     keys={"request_id": f"r{i}", "mdtrt_id": f"m{i % 3}"}) for i in range(1, n + 1)]


def db(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path), isolation_level=None)


class _Out:
    def __init__(self, r):
        self.returncode, self.stdout, self.stderr = r.exit_code, r.stdout, r.stderr


def cli(*args: str) -> _Out:
    """The CLI in-process (click's runner): the same code path as the command, without a Python start-up."""
    from click.testing import CliRunner

    from rules_engine.cli import main
    return _Out(CliRunner().invoke(main, list(args), catch_exceptions=False))


# ------------------------------------------------------------------ the chain

def test_entries_chain_from_genesis_and_hash_what_they_store(tmp_path):
    with Journal(tmp_path / "j.db") as j:
        es = fill(j, 5)
        assert [e.seq for e in es] == [1, 2, 3, 4, 5]
        assert es[0].prev_hash == GENESIS
        assert all(b.prev_hash == a.hash for a, b in zip(es, es[1:]))
        r = j.verify()
        assert r.ok and r.entries == 5 and r.first_bad is None and r.head_hash == es[-1].hash
        assert j.head() == (5, es[-1].hash)
    # a verifier in another language needs sha256 over the stored texts, nothing else
    row = db(tmp_path / "j.db").execute("SELECT seq, time, kind, keys_json, payload_json, prev_hash, hash "
                                        "FROM entries WHERE seq=3").fetchone()
    material = entry_material(*row[:6])
    assert json.loads(material)["payload"]["amount"] == "3.10", "decimals kept exactly, as text"
    assert sha256_hex(material) == row[6] == entry_hash(*row[:6])


def test_empty_journal_verifies(tmp_path):
    with Journal(tmp_path / "j.db") as j:
        r = j.verify()
        assert r.ok and r.entries == 0 and j.head() is None


def test_append_many_is_all_or_nothing(tmp_path):
    with Journal(tmp_path / "j.db") as j:
        fill(j, 2)
        with pytest.raises(JournalError):
            j.append_many([("a", {"x": 1}, None), ("a", {"x": float("nan")}, None)])
        with pytest.raises(JournalError):
            j.append_many([("a", {"x": 1}, None), ("Bad Kind", {}, None)])
        assert j.count() == 2
        es = j.append_many([("a", {"x": 1}, None), ("b", {"x": 2}, {"msgid": "H1"})])
        assert [e.seq for e in es] == [3, 4] and j.verify().ok


@pytest.mark.parametrize("kind,payload,keys", [
    ("Settlement", {}, None), ("", {}, None), ("a" * 65, {}, None),
    ("x", [], None), ("x", {"v": {1, 2}}, None), ("x", {"v": b"bytes"}, None), ("x", {1: "int", "a": "mixed keys"}, None),
    ("x", {}, {"bad name": "v"}), ("x", {}, {"k": ["list"]}), ("x", {}, {"k": "v" * 300}),
])
def test_bad_entries_are_refused_with_a_reason(tmp_path, kind, payload, keys):
    with Journal(tmp_path / "j.db") as j:
        with pytest.raises(JournalError) as e:
            j.append(kind, payload, keys=keys)
        assert e.value.message
        assert j.count() == 0


# ------------------------------------------------------------------ tampering

def test_edited_payload_is_found_at_its_seq(tmp_path):
    path = tmp_path / "j.db"
    with Journal(path) as j:
        fill(j, 6)
    db(path).execute("UPDATE entries SET payload_json = replace(payload_json, '\"4.10\"', '\"40.10\"') WHERE seq=4")
    with Journal(path, create=False) as j:
        r = j.verify()
    assert not r.ok and r.first_bad == 4
    assert r.problems[0].code == "E-JOURNAL-HASH"
    out = cli("journal", "verify", str(path))
    assert out.returncode == 1 and "broken at seq 4" in out.stderr


def test_edited_and_rehashed_entry_is_found_by_the_next_link(tmp_path):
    path = tmp_path / "j.db"
    with Journal(path) as j:
        fill(j, 6)
    c = db(path)
    seq, t, kind, keys, payload, prev = c.execute("SELECT seq, time, kind, keys_json, payload_json, prev_hash "
                                                  "FROM entries WHERE seq=2").fetchone()
    payload = payload.replace('"2.10"', '"0.01"')
    c.execute("UPDATE entries SET payload_json=?, hash=? WHERE seq=2",
              (payload, entry_hash(seq, t, kind, keys, payload, prev)))
    with Journal(path, create=False) as j:
        r = j.verify()
    assert not r.ok and r.first_bad == 2 and r.problems[0].code == "E-JOURNAL-LINK"


def test_deleted_entry_is_found(tmp_path):
    path = tmp_path / "j.db"
    with Journal(path) as j:
        fill(j, 6)
    db(path).execute("DELETE FROM entries WHERE seq=3")
    with Journal(path, create=False) as j:
        r = j.verify()
    assert not r.ok and r.first_bad == 3 and r.problems[0].code == "E-JOURNAL-MISSING"


def test_reordered_entries_are_found(tmp_path):
    path = tmp_path / "j.db"
    with Journal(path) as j:
        fill(j, 6)
    c = db(path)
    c.execute("UPDATE entries SET seq=-1 WHERE seq=4")
    c.execute("UPDATE entries SET seq=4 WHERE seq=5")
    c.execute("UPDATE entries SET seq=5 WHERE seq=-1")
    with Journal(path, create=False) as j:
        r = j.verify()
    assert not r.ok and r.first_bad == 4


def test_swapped_contents_are_found(tmp_path):
    path = tmp_path / "j.db"
    with Journal(path) as j:
        fill(j, 6)
    c = db(path)
    a = c.execute("SELECT payload_json FROM entries WHERE seq=2").fetchone()[0]
    b = c.execute("SELECT payload_json FROM entries WHERE seq=3").fetchone()[0]
    c.execute("UPDATE entries SET payload_json=? WHERE seq=2", (b,))
    c.execute("UPDATE entries SET payload_json=? WHERE seq=3", (a,))
    with Journal(path, create=False) as j:
        assert j.verify().first_bad == 2


def test_truncated_tail_needs_an_anchor(tmp_path):
    path = tmp_path / "j.db"
    with Journal(path) as j:
        fill(j, 6)
        anchor = j.head()
    db(path).execute("DELETE FROM entries WHERE seq >= 5")
    with Journal(path, create=False) as j:
        assert j.verify().ok, "a chain alone cannot show its last entries gone"
        r = j.verify(anchor=anchor)
    assert not r.ok and r.problems[0].code == "E-JOURNAL-ANCHOR" and r.first_bad == 5
    out = cli("journal", "verify", str(path), "--anchor", f"{anchor[0]}:{anchor[1]}")
    assert out.returncode == 1


def test_anchor_detects_a_recomputed_chain(tmp_path):
    path = tmp_path / "j.db"
    with Journal(path) as j:
        fill(j, 4)
        anchor = j.head()
    c = db(path)
    prev = GENESIS
    for seq, t, kind, keys, payload in c.execute("SELECT seq, time, kind, keys_json, payload_json FROM entries "
                                                 "ORDER BY seq").fetchall():
        payload = payload.replace('"1.10"', '"9.10"')
        h = entry_hash(seq, t, kind, keys, payload, prev)
        c.execute("UPDATE entries SET payload_json=?, prev_hash=?, hash=? WHERE seq=?", (payload, prev, h, seq))
        prev = h
    with Journal(path, create=False) as j:
        assert j.verify().ok
        assert j.verify(anchor=anchor).first_bad == 4


# ------------------------------------------------------------------ retention

def test_purge_keeps_the_rest_verifiable_and_seq_going_on(tmp_path):
    clock = Clock(dt.datetime(2022, 1, 1, tzinfo=dt.timezone.utc))
    path = tmp_path / "j.db"
    with Journal(path, clock=clock) as j:
        assert j.retention_days == 730
        fill(j, 4)
        clock.now = dt.datetime(2023, 6, 1, tzinfo=dt.timezone.utc)
        fill(j, 3)
        clock.now = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
        r = j.purge()
        assert (r.purged, r.purged_through) == (4, 4)
        assert [e.seq for e in j.last(10)] == [5, 6, 7, 8] and j.get(8).kind == "journal.purge"
        v = j.verify()
        assert v.ok and v.checkpoint["purged_through"] == 4 and v.first_seq == 5
        e = j.append("settlement", {"after": True})
        assert e.seq == 9 and j.verify().ok
        assert j.purge().purged == 0, "nothing else is two years old"
        clock.now = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
        r = j.purge()
        assert r.purged_through == 9 and j.verify().ok
        assert j.append("x", {}).seq == 11


def test_a_forged_checkpoint_is_found(tmp_path):
    clock = Clock(dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))
    path = tmp_path / "j.db"
    with Journal(path, clock=clock) as j:
        fill(j, 3)
        clock.now = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc)
        fill(j, 3)
        j.purge()
    c = db(path)
    # hide entries 4 and 5 behind a forged checkpoint: the chain does not confirm it
    last = c.execute("SELECT hash FROM entries WHERE seq=5").fetchone()[0]
    c.execute("DELETE FROM entries WHERE seq IN (4, 5)")
    c.execute("UPDATE checkpoints SET purged_through=5, last_hash=?", (last,))
    with Journal(path, create=False) as j:
        r = j.verify()
    assert not r.ok and {p.code for p in r.problems} >= {"E-JOURNAL-CHECKPOINT"}


def test_deleting_the_purge_record_is_found(tmp_path):
    clock = Clock(dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))
    path = tmp_path / "j.db"
    with Journal(path, clock=clock) as j:
        fill(j, 3)
        clock.now = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc)
        j.purge()
    db(path).execute("DELETE FROM entries WHERE kind='journal.purge'")
    with Journal(path, create=False) as j:
        assert not j.verify().ok


# ------------------------------------------------------------------ lookups

def test_find_by_key(tmp_path):
    with Journal(tmp_path / "j.db") as j:
        fill(j, 7)
        assert [e.seq for e in j.find(request_id="r3")] == [3]
        assert [e.seq for e in j.find("m1")] == [1, 4, 7]
        assert [e.seq for e in j.find(mdtrt_id="m1", request_id="r4")] == [4]
        assert [e.seq for e in j.find("m1", limit=2)] == [4, 7]
        assert j.find(request_id="nope") == [] and j.find("m1", kind="other") == []
        assert [e.seq for e in j.last(2)] == [6, 7]


def test_the_index_is_not_trusted_over_the_hashed_keys(tmp_path):
    path = tmp_path / "j.db"
    with Journal(path) as j:
        fill(j, 3)
    db(path).execute("UPDATE entry_keys SET value='r1' WHERE seq=2 AND name='request_id'")
    with Journal(path, create=False) as j:
        assert [e.seq for e in j.find(request_id="r1")] == [1]


# ------------------------------------------------------------------ masking

def test_keyed_pseudonyms_link_without_naming(tmp_path):
    path = tmp_path / "j.db"
    with Journal(path, mask_key=KEY) as j:
        a = j.append("settlement", {"certno": "110101199001011234", "psn_name": "张三", "nested": [
            {"conn_tel": "13800138000", "mdtrt_cert_no": "110101199001011234", "diag_name": "肺炎"}]},
            keys={"certno": "110101199001011234", "request_id": "r1"})
        b = j.append("consent.given", {"certno": "110101199001011234"})
        p = a.payload
        assert p["certno"].startswith("hmac-sha256:") and p["certno"] == p["nested"][0]["mdtrt_cert_no"]
        assert p["certno"] == b.payload["certno"] == a.keys["certno"], "one person, one pseudonym"
        assert p["psn_name"] != "张三" and p["nested"][0]["conn_tel"] != "13800138000"
        assert p["nested"][0]["diag_name"] == "肺炎", "only personal fields are masked"
        assert [e.seq for e in j.find(certno="110101199001011234")] == [1]
        assert [e.seq for e in j.find("110101199001011234")] == [1]
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"110101199001011234" not in raw and "张三".encode() not in raw
    with Journal(path, create=False) as j:  # readers need no key
        assert j.verify().ok and j.get(1).payload["certno"] == p["certno"]
        with pytest.raises(JournalError) as e:  # writers do
            j.append("x", {})
        assert e.value.code == "E-JOURNAL-KEY"
    with Journal(path, create=False, mask_key=b"another key, not the journal's") as j:
        with pytest.raises(JournalError):
            j.append("x", {})


def test_without_a_key_personal_fields_are_redacted(tmp_path):
    with Journal(tmp_path / "j.db") as j:
        e = j.append("settlement", {"psn_name": "张三", "ADDR": "北京市", "phone": 13800138000, "empty": "",
                                    "certno": None}, keys={"certno": "110101199001011234"})
        assert e.payload == {"psn_name": "***", "ADDR": "***", "phone": "***", "empty": "", "certno": None}
        assert e.keys["certno"] == "***"
    with Journal(tmp_path / "j.db", create=False, mask_key=KEY) as j:
        with pytest.raises(JournalError):
            j.append("x", {})  # a redacting journal cannot switch to pseudonyms


def test_mask_fields_are_configurable(tmp_path):
    with Journal(tmp_path / "j.db", mask_fields=["psn_no", "*_secret"]) as j:
        e = j.append("x", {"psn_no": "P1", "my_secret": "s", "certno": "kept: not listed"})
        assert e.payload == {"psn_no": "***", "my_secret": "***", "certno": "kept: not listed"}
    with Journal(tmp_path / "j.db", create=False) as j:  # the journal remembers its list
        assert j.append("x", {"psn_no": "P2"}).payload == {"psn_no": "***"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**18, 10**18) | st.text(max_size=20)
    | st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-10**9, max_value=10**9),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["a", "certno", "psn_name", "b", "tel", "zz", "数"]), children, max_size=4),
    max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_canonical_json_is_one_text_per_value(v):
    text = canonical_json(v)
    again = json.loads(text)
    assert canonical_json(again) == text, "reading and re-writing changes nothing"
    assert text == canonical_json(json.loads(json.dumps(again)))


@settings(max_examples=200, deadline=None)
@given(json_values, st.sampled_from([None, KEY]))
def test_masking_is_idempotent_and_total(v, key):
    m = Masker(key=key)
    once = m.mask({"root": v})
    assert m.mask(once) == once
    plain = json.dumps(v, default=str, ensure_ascii=False)
    for value in _personal_values({"root": v}, m):
        if isinstance(value, str) and len(value) > 3 and value not in ("***",):
            assert value not in json.dumps(once, default=str, ensure_ascii=False) or value in plain.replace(
                value, "", 1)


def _personal_values(v, m):
    if isinstance(v, dict):
        for k, x in v.items():
            if m.matches(k) and not isinstance(x, (dict, list)):
                yield x
            else:
                yield from _personal_values(x, m)
    elif isinstance(v, list):
        for x in v:
            yield from _personal_values(x, m)


def test_canonical_refuses_what_has_no_single_text():
    for bad in (float("nan"), Decimal("Infinity"), {1, 2}, b"x", {1: "a", "b": "mixed keys"}):
        with pytest.raises(CanonicalError):
            canonical_json(bad)
    assert canonical_json({"b": Decimal("0.10"), "a": [1, "中"]}) == '{"a":[1,"中"],"b":"0.10"}'
    assert canonical_json({"s": "\ud800"}) == '{"s":"\\ud800"}', "a lone surrogate is escaped, not lost"


# ------------------------------------------------------------------ files that are not journals

def test_a_file_that_is_not_a_journal_is_refused(tmp_path):
    other = tmp_path / "other.db"
    db(other).execute("CREATE TABLE t(x)")
    with pytest.raises(JournalError) as e:
        Journal(other)
    assert e.value.code == "E-JOURNAL-FORMAT"
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(JournalError):
        Journal(junk)
    with pytest.raises(JournalError) as e:
        Journal(tmp_path / "missing.db", create=False)
    assert e.value.code == "E-JOURNAL-MISSING"


# ------------------------------------------------------------------ CLI

def test_cli_show_verify_head_purge_keygen(tmp_path):
    path = tmp_path / "j.db"
    with Journal(path) as j:
        fill(j, 5)
    out = cli("journal", "show", str(path), "--key", "r2")
    assert out.returncode == 0 and out.stdout.startswith("#2 ") and "request_id=r2" in out.stdout
    out = cli("journal", "show", str(path), "--key", "mdtrt_id=m2", "--format", "json")
    assert [e["seq"] for e in json.loads(out.stdout)] == [2, 5]
    out = cli("journal", "show", str(path), "--last", "2", "--format", "json")
    assert [e["seq"] for e in json.loads(out.stdout)] == [4, 5]
    assert cli("journal", "show", str(path), "--seq", "99").returncode == 1
    out = cli("journal", "verify", str(path))
    assert out.returncode == 0 and "5 entries" in out.stdout
    head = cli("journal", "head", str(path)).stdout.strip()
    assert cli("journal", "verify", str(path), "--anchor", head).returncode == 0
    assert cli("journal", "verify", str(tmp_path / "none.db")).returncode == 2
    assert cli("journal", "verify", str(path), "--anchor", "nonsense").returncode == 2
    out = cli("journal", "purge", str(path), "--older-than-days", "0")
    assert out.returncode == 0 and "purged 5 entries" in out.stdout
    assert cli("journal", "verify", str(path)).returncode == 0
    keyfile = tmp_path / "mask.key"
    assert cli("journal", "keygen", str(keyfile)).returncode == 0
    assert (keyfile.stat().st_mode & 0o777) == 0o600 and len(keyfile.read_text().strip()) == 64
    assert cli("journal", "keygen", str(keyfile)).returncode == 2
