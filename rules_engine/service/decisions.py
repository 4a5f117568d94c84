"""The decision log: what the service records for every settlement, and replaying it.

One journal entry of kind `settlement` per claim settled:

    keys     request_id, mdtrt_id (when the claim has one)
    payload  request_id, endpoint, index (in a batch), input_sha256 (of the bytes received),
             input (the claim, personal fields masked by the journal, birth date reduced to age),
             packs (insured/treatment: region, version, hash, chain), pack_set,
             totals (setlinfo amounts as exact decimal text), funds (setldetail), warnings,
             output_sha256, digest_excludes, latency_ms, key_id, explain, engine

`output_sha256` is the sha256 of the whole answer as the service writes it (amounts as JSON
numbers, keys sorted, no whitespace, without the explanation) *minus* the personal fields
listed in `digest_excludes` wherever the engine echoes them (setlinfo, the lines): those are
masked in the recorded input, so a replay could not reproduce them. `rules-engine replay`
settles the recorded input again with the recorded pack versions and compares totals and digest.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hashlib

from ..journal import DEFAULT_FIELDS, Entry, Masker
from ..money import fen_str, to_fen

KIND = "settlement"
TOTAL_FIELDS = ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt",
                "act_pay_dedc", "hifp_pay", "cvlserv_pay", "hifes_pay", "hifmi_pay", "hifob_pay", "maf_pay", "oth_pay",
                "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay", "hosp_part_amt", "balc")


def engine_version() -> str:
    try:
        from importlib.metadata import version
        return f"rules-engine {version('rules-engine')}"
    except Exception:  # pragma: no cover - not installed as a distribution
        return "rules-engine"


_ENGINE = engine_version()


def digest_fields(journal_fields: tuple[str, ...] = ()) -> list[str]:
    return sorted(set(DEFAULT_FIELDS) | set(journal_fields))


def output_sha256(plain_out: dict[str, Any], excludes: list[str]) -> str:
    """Digest of a `to_plain`-ed answer. Personal fields are removed two levels deep — the depth at
    which the engine's answer carries claim fields (setlinfo.psn_name, result[i].…) — which costs
    a few µs where a full walk costs hundreds."""
    from .jsonout import dumps_plain
    m = _masker(tuple(excludes))
    body: dict[str, Any] = {}
    for k, v in plain_out.items():
        if k == "explanation" or m.matches(k):
            continue
        if isinstance(v, dict):
            if any(m.matches(a) for a in v):
                v = {a: b for a, b in v.items() if not m.matches(a)}
        elif isinstance(v, list) and v:
            names: set[str] = set()
            for x in v:
                if isinstance(x, dict):
                    names.update(x)
            bad = {a for a in names if m.matches(a)}
            if bad:  # copy only when something must go (the lines normally hold no personal field)
                v = [{a: b for a, b in x.items() if a not in bad} if isinstance(x, dict) else x for x in v]
        body[k] = v
    return hashlib.sha256(dumps_plain(body, sort_keys=True)).hexdigest()


_maskers: dict[tuple[str, ...], Masker] = {}


def _masker(fields: tuple[str, ...]) -> Masker:
    m = _maskers.get(fields)
    if m is None:
        m = _maskers[fields] = Masker(fields)
    return m


def minimised_input(claim: dict[str, Any], age: int | None) -> dict[str, Any]:
    """The claim as recorded: a birth date becomes the age the engine derived from it."""
    if "brdy" not in claim:
        return claim
    c = {k: v for k, v in claim.items() if k != "brdy"}
    if "age" not in c and age is not None:
        c["age"] = age
    return c


def totals(setlinfo: dict[str, Any]) -> dict[str, Any]:
    """The amounts as exact decimal text with their scale: "3502.00"."""
    return {f: (fen_str(to_fen(setlinfo[f])) if setlinfo.get(f) is not None else None)
            for f in TOTAL_FIELDS if f in setlinfo}


def decision(claim: dict[str, Any], s: Any, out: dict[str, Any], *, request_id: str, endpoint: str,
             index: int | None, input_sha256: str, latency_ms: float, key_id: str | None, explain: bool,
             pack_set: str, excludes: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(payload, keys) of the journal entry for one settled claim; `out` is the answer after `to_plain`."""
    packs = out["packs"]
    payload = {
        "request_id": request_id, "endpoint": endpoint, "index": index, "input_sha256": input_sha256,
        "input": minimised_input(claim, getattr(s.claim, "age", None)),
        "packs": packs, "pack_set": pack_set,
        "totals": totals(out["setlinfo"]),
        "funds": [{"fund_pay_type": r["fund_pay_type"], "fund_payamt": fen_str(to_fen(r["fund_payamt"]))}
                  for r in out["setldetail"]],
        "warnings": [w["code"] for w in out["warnings"]],
        "output_sha256": output_sha256(out, excludes), "digest_excludes": excludes,
        "latency_ms": round(latency_ms, 3), "key_id": key_id, "explain": explain, "engine": _ENGINE,
    }
    keys = {"request_id": request_id}
    mdtrt = claim.get("mdtrt_id")
    if isinstance(mdtrt, str) and mdtrt and len(mdtrt) <= 100:
        keys["mdtrt_id"] = mdtrt
    return payload, keys


# ------------------------------------------------------------------ replay

@dataclass
class ReplayOutcome:
    status: str                      # match | differ | refused
    message: str
    seq: int
    differences: list[dict[str, Any]] = field(default_factory=list)
    packs: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "match"

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "status": self.status, "message": self.message, "differences": self.differences,
                "packs": self.packs}


def replay(entry: Entry, regions: str | Path, *, cache: bool | Path = False) -> ReplayOutcome:
    """Settle a recorded claim again with the recorded pack versions and compare.

    Refuses — rather than compare against something else — when a recorded pack version is not
    under `regions`, or is there with other content (its hash differs), or when the engine
    would now choose another pack for the claim.
    """
    from ..api import Engine
    from ..model.claim import SettlementError
    from ..packs.registry import PackSet, default_cache_dir

    seq = entry.seq
    if entry.kind != KIND:
        return ReplayOutcome("refused", f"entry {seq} is a '{entry.kind}' entry, not a settlement", seq)
    p = entry.payload
    rec_packs: dict[str, Any] = p.get("packs") or {}
    if not isinstance(p.get("input"), dict) or not rec_packs:
        return ReplayOutcome("refused", f"entry {seq} holds no input or no pack versions to replay", seq)
    root = Path(regions)
    if not root.is_dir():
        return ReplayOutcome("refused", f"no pack directory {root}", seq)
    cache_dir = (default_cache_dir() if cache is True else Path(cache)) if cache else None
    ps = PackSet.load(root, cache_dir=cache_dir)
    for role in ("insured", "treatment"):
        rec = rec_packs.get(role)
        if not rec:
            continue
        chain = tuple(rec.get("chain") or ())
        pack = ps.compiled.get(chain)
        label = f"{rec.get('region')}@{rec.get('version')}"
        if pack is None:
            errs = [x for x in ps.problems.errors if f"/{rec.get('region')}/{rec.get('version')}/" in f"/{x.file}"]
            why = f" (it has errors: {errs[0].format(with_source=False)})" if errs else ""
            return ReplayOutcome("refused", f"the {role} pack {label} (chain {' → '.join(chain)}) is not under "
                                 f"{root}{why}; restore that version (e.g. from version control) and pass --regions",
                                 seq, packs=rec_packs)
        if pack.content_hash != rec.get("hash"):
            return ReplayOutcome("refused", f"the {role} pack {label} under {root} has hash {pack.content_hash[:16]}…, "
                                 f"the entry was settled with {str(rec.get('hash'))[:16]}…: its files changed since. "
                                 "Restore the recorded version to replay", seq, packs=rec_packs)
    engine = Engine(ps, cache_dir=cache_dir)
    try:
        s = engine.settle(p["input"])
    except SettlementError as e:
        return ReplayOutcome("differ", f"the recorded input is now refused: {e.code}: {e.message}", seq,
                             packs=rec_packs)
    from .jsonout import to_plain
    out = s.to_dict(numbers="float")
    now_packs = out["packs"]
    for role in ("insured", "treatment"):
        if role in rec_packs and now_packs[role]["hash"] != rec_packs[role].get("hash"):
            return ReplayOutcome("refused", f"the engine now picks {now_packs[role]['region']}@"
                                 f"{now_packs[role]['version']} as the {role} pack, not the recorded "
                                 f"{rec_packs[role].get('region')}@{rec_packs[role].get('version')}: "
                                 f"the pack folder holds other versions for that date", seq, packs=rec_packs)
    excludes = p.get("digest_excludes") or digest_fields()
    now_totals = totals(out["setlinfo"])
    diffs = [{"field": f, "recorded": v, "now": now_totals.get(f)}
             for f, v in (p.get("totals") or {}).items() if now_totals.get(f) != v]
    digest_now = output_sha256(out, list(excludes))
    if not diffs and digest_now == p.get("output_sha256"):
        return ReplayOutcome("match", f"entry {seq} replays to the same settlement (output {digest_now[:16]}…)", seq,
                             packs=rec_packs)
    if not diffs:
        diffs = [{"field": "output_sha256", "recorded": p.get("output_sha256"), "now": digest_now}]
    return ReplayOutcome("differ", f"entry {seq} settles differently now: " + ", ".join(
        f"{d['field']} {d['recorded']} → {d['now']}" for d in diffs[:6]), seq, diffs, rec_packs)


def now_ms(t0: float, t1: float) -> float:
    return (t1 - t0) * 1000.0


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()
