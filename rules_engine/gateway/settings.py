"""The adapter settings (gateway-adapter.yaml): how the gateway submits, compares and reconciles.

Kept apart from gateway.yaml (connection, identity, security — schemas/gateway-config.schema.json)
because those are two questions asked of different people: the network team knows endpoints and
keys, the billing office knows tolerances and the region's 3201 definition. The file is optional;
every value has a default, and where the reference marks a fact as unconfirmed the default is the
reference's value and the setting exists so a region can correct it without code:

| setting | default | why a setting |
|---|---|---|
| infno.* | 9001, 1101, 2001, 5206, 2204, 2206, 2207, 2208, 2301, 2303, 2304, 2305, 2601, 5203, 3201 | province copies of the spec drift |
| signin.reject_patterns | 签到, sign_no | the error a stale sign_no produces is not documented (reference gateway.md §5.5) |
| signin.max_age_hours | 12, and a new day | sign_no lifetime not documented (§3.4) |
| reconcile.fund_pay_sumamt_includes_acct_pay | false | Hunan excludes, Zhuhai includes (§3.5) |
| reconcile.clr_type_* | 11 / 21 | only when an answer carries no clr_type; codes unconfirmed |
| person.accumulators | {} | 5206 cum_type_code values are regional (Q0000, C0000, S0000 …) |
| submission.mdtrt_cert_type | 02 | 就诊凭证类型 of a claim that names none |

Read like every other YAML here: located problems, all at once, no object while there is an error.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from ..money import MoneyError, scaled_int
from ..packs.source import Path_, parse_yaml
from ..problems import Problem
from ..validate.schema import validate_document

SCHEMA = "gateway-adapter.schema.json"
DEFAULT_FILE = "gateway-adapter.yaml"


@dataclass(frozen=True)
class CompareSettings:
    tolerance_fen: int = 0
    on_difference: str = "block"
    field_tolerance_fen: Mapping[str, int] = field(default_factory=dict)
    lines: bool = True

    def tolerance(self, name: str) -> int:
        return self.field_tolerance_fen.get(name, self.tolerance_fen)


@dataclass(frozen=True)
class ReconcileSettings:
    fund_pay_sumamt_includes_acct_pay: bool = False
    refd_setl_flag: str = "0"
    clr_type_outpatient: str = "11"
    clr_type_inpatient: str = "21"


@dataclass(frozen=True)
class SignInSettings:
    max_age_hours: float = 12.0
    reject_patterns: tuple[str, ...] = ("签到", "sign_no")
    mac: str = "00-00-00-00-00-00"
    ip: str = "127.0.0.1"


@dataclass(frozen=True)
class SubmissionSettings:
    mdtrt_cert_type: str = "02"
    psn_setlway: str = "01"
    inpatient_med_types: tuple[str, ...] = ("21", "22", "23", "24", "25", "26", "28", "52")
    fresh_attempts: int = 1
    lease_seconds: float = 300.0
    require_mdtrt_id: bool = False


@dataclass(frozen=True)
class PersonSettings:
    accumulators: Mapping[str, str] = field(default_factory=dict)
    retired_psn_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class Transactions:
    """Transaction numbers by role (reference national-interface.md §3.3)."""

    signin: str = "9001"
    person: str = "1101"
    eligibility: str = "2001"
    cumulative: str = "5206"
    fee_upload_outpatient: str = "2204"
    presettle_outpatient: str = "2206"
    settle_outpatient: str = "2207"
    refund_outpatient: str = "2208"
    fee_upload_inpatient: str = "2301"
    presettle_inpatient: str = "2303"
    settle_inpatient: str = "2304"
    refund_inpatient: str = "2305"
    reversal: str = "2601"
    settlement_query: str = "5203"
    reconcile: str = "3201"

    def role(self, infno: str) -> str | None:
        for f in fields(self):
            if getattr(self, f.name) == infno:
                return f.name
        return None

    @property
    def settlements(self) -> frozenset[str]:
        """The transactions that book money: never re-sent, an unknown outcome goes to 冲正."""
        return frozenset((self.settle_outpatient, self.settle_inpatient))


@dataclass(frozen=True)
class AdapterSettings:
    compare: CompareSettings = field(default_factory=CompareSettings)
    reconcile: ReconcileSettings = field(default_factory=ReconcileSettings)
    signin: SignInSettings = field(default_factory=SignInSettings)
    submission: SubmissionSettings = field(default_factory=SubmissionSettings)
    person: PersonSettings = field(default_factory=PersonSettings)
    infno: Transactions = field(default_factory=Transactions)
    utc_offset_hours: int = 8
    durability: str = "FULL"


@dataclass(frozen=True)
class AdapterConfig:
    """Settings per region; a region without an entry gets `defaults`."""

    file: str | None
    defaults: AdapterSettings = field(default_factory=AdapterSettings)
    regions: Mapping[str, AdapterSettings] = field(default_factory=dict)

    def region(self, code: str) -> AdapterSettings:
        return self.regions.get(code, self.defaults)


_BLOCKS = {"compare": CompareSettings, "reconcile": ReconcileSettings, "signin": SignInSettings,
           "submission": SubmissionSettings, "person": PersonSettings, "infno": Transactions}


def load_adapter_config(path: str | Path | None, *, gateway_config: Any = None,
                        display: str | None = None) -> tuple[AdapterConfig | None, list[Problem]]:
    """Read gateway-adapter.yaml; `path` None or a missing default file → all defaults.

    With `gateway_config`, regions configured here but not in gateway.yaml are reported, and so are
    two regions sharing a fixmedins_code with different outbox files (their msgids could repeat).
    """
    problems: list[Problem] = []
    if path is None:
        cfg = AdapterConfig(file=None)
    else:
        p = Path(path)
        name = display or str(path)
        try:
            raw = p.read_bytes()
        except OSError as e:
            return None, [Problem("E-FILE-READ", f"cannot read the adapter settings: {e.strerror}", file=name)]
        cfg, problems = parse_adapter_config(raw, name)
        if cfg is None:
            return None, problems
    if gateway_config is not None:
        problems += cross_check(cfg, gateway_config)
    if any(p.severity == "error" for p in problems):
        return None, problems
    return cfg, problems


def parse_adapter_config(text: bytes | str, file: str) -> tuple[AdapterConfig | None, list[Problem]]:
    doc, problems = parse_yaml(text, file)
    if doc is None:
        return None, problems
    if doc.data is None:
        return AdapterConfig(file=file), problems
    if not isinstance(doc.data, dict):
        problems.append(doc.problem("E-GWA-FORM", "adapter settings are a mapping with 'defaults' and/or 'regions'"))
        return None, problems
    schema_problems = validate_document(doc, SCHEMA)
    problems += schema_problems
    if any(p.severity == "error" for p in schema_problems):
        return None, problems

    def build(raw: Mapping[str, Any], base: AdapterSettings, at: Path_) -> AdapterSettings:
        out = base
        for block, cls in _BLOCKS.items():
            if block not in raw:
                continue
            kw: dict[str, Any] = {}
            for k, v in raw[block].items():
                where = at + (block, k)
                if block == "compare" and k == "tolerance":
                    kw["tolerance_fen"] = _fen(v, doc, where, problems)
                elif block == "compare" and k == "fields":
                    merged = dict(base.compare.field_tolerance_fen)
                    merged.update({n: _fen(x, doc, where + (n,), problems) for n, x in v.items()})
                    kw["field_tolerance_fen"] = merged
                elif block == "person" and k == "accumulators":
                    merged = dict(base.person.accumulators)
                    merged.update(v)
                    kw["accumulators"] = merged
                elif isinstance(v, list):
                    kw[k] = tuple(str(x) for x in v)
                else:
                    kw[k] = v
            out = replace(out, **{block: replace(getattr(out, block), **kw)})
        for k in ("utc_offset_hours", "durability"):
            if k in raw:
                out = replace(out, **{k: raw[k]})
        return out

    defaults = build(doc.data.get("defaults") or {}, AdapterSettings(), ("defaults",))
    regions: dict[str, AdapterSettings] = {}
    for code, entry in (doc.data.get("regions") or {}).items():
        if not (len(code) == 6 and code.isdigit()):
            problems.append(doc.problem("E-GW-REGION", f"'{code}' is not a region code: a region is named by its "
                                        "6-digit medical-insurance region code", ("regions", code), key=True,
                                        hint="write the code in quotes, e.g. \"110000\""))
            continue
        regions[code] = build(entry or {}, defaults, ("regions", code))
    _check_infnos(doc, problems, defaults, regions)
    if any(p.severity == "error" for p in problems):
        return None, problems
    return AdapterConfig(file=file, defaults=defaults, regions=regions), problems


def _fen(v: Any, doc: Any, where: Path_, problems: list[Problem]) -> int:
    try:
        return scaled_int(repr(v) if isinstance(v, float) else v, 2, "tolerance")
    except MoneyError as e:
        problems.append(doc.problem("E-GWA-AMOUNT", str(e), where, hint="an amount in yuan with at most 2 decimals"))
        return 0


def _check_infnos(doc: Any, problems: list[Problem], defaults: AdapterSettings,
                  regions: Mapping[str, AdapterSettings]) -> None:
    """Two roles with one number would make the outbox misread its own rows (a settlement taken for
    an upload): refuse it."""
    for code, s in [("defaults", defaults), *regions.items()]:
        seen: dict[str, str] = {}
        for f in fields(s.infno):
            n = getattr(s.infno, f.name)
            if n in seen:
                path: Path_ = ("defaults", "infno", f.name) if code == "defaults" else ("regions", code, "infno", f.name)
                problems.append(doc.problem("E-GWA-INFNO", f"transaction {n} is given for both {seen[n]} and {f.name}",
                                            path))
            seen[n] = f.name


def cross_check(cfg: AdapterConfig, gateway_config: Any) -> list[Problem]:
    out: list[Problem] = []
    file = cfg.file or "<adapter defaults>"
    for code in cfg.regions:
        if code not in gateway_config.regions:
            out.append(Problem("W-GWA-REGION", f"region {code} has adapter settings but no entry in "
                                               f"{gateway_config.file}", file=file, severity="warning"))
    by_code: dict[str, tuple[str, Path]] = {}
    for code, rc in gateway_config.regions.items():
        prev = by_code.get(rc.fixmedins_code)
        if prev is not None and prev[1] != rc.outbox.path:
            out.append(Problem("E-GW-MSGID-SHARED",
                               f"regions {prev[0]} and {code} send as institution {rc.fixmedins_code} but keep their "
                               f"msgid counters in different outboxes ({prev[1]}, {rc.outbox.path}): two messages "
                               "could carry the same msgid", file=rc.location or gateway_config.file,
                               hint="give both regions the same outbox path"))
        by_code.setdefault(rc.fixmedins_code, (code, rc.outbox.path))
    return out


def default_adapter_path(gateway_config_path: str | Path) -> Path | None:
    """gateway-adapter.yaml beside gateway.yaml, when it exists."""
    p = Path(gateway_config_path).resolve().parent / DEFAULT_FILE
    return p if p.exists() else None
