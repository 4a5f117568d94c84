"""The gateway configuration file (gateway.yaml): per-region endpoint, identity and security.

Read like a rule pack — `parse_yaml` keeps every value's line and column, the JSON Schema in
schemas/gateway-config.schema.json checks the structure (editors use it too) — and then checked for
what a schema cannot see, *at load time* rather than at the first claim: a region code that is not
6 digits or that the packs do not know, an environment variable that is not set, a key file that is
missing or does not decode, a private key that does not match its public key, an endpoint that is not
an http(s) URL, a settlement listed as retryable. Every finding is a located `Problem`, all of them in
one run, and no configuration object is returned while there is an error.

Secrets are read here (so a missing one is found at start) into `Secret` objects that never show
their value; the configuration holds ready-built security plug-ins (`RegionConfig.security`).
"""
from __future__ import annotations

import logging
import os
import random
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from ..packs.source import Document, Path_, parse_yaml
from ..problems import Problem, did_you_mean
from ..validate.schema import validate_document
from .security import (
    RegionSecurity, Secret, SecurityError, build_message_security, build_transport, parse_sm2_private_key,
    parse_sm2_public_key,
)

log = logging.getLogger(__name__)

SCHEMA = "gateway-config.schema.json"
DEFAULT_INFVER = "V1.0"
DEFAULT_RETENTION_DAYS = 730  # two years
DEFAULT_IDEMPOTENT = ("9001", "1101", "2001", "5201", "5203", "5206", "3201", "3202")
#: business writes: registration, fee upload, settlement, admission, filing, 冲正 — never auto-retried
UNSAFE_PREFIXES = ("22", "23", "24", "25", "26")
MERGED_BLOCKS = ("operator", "timeouts", "retry", "journal", "outbox")
REQUIRED = (("endpoint",), ("fixmedins_code",), ("fixmedins_name",), ("recer_sys_code",),
            ("operator", "opter"), ("operator", "opter_name"))
MAX_KEY_FILE_BYTES = 64 * 1024

# settings whose value is a key source, per plug-in: name → (kind, constructor argument)
#   kind "secret": text secret; "private": SM2 private key; "public": SM2 public key
_SOURCES: dict[str, dict[str, tuple[str, str]]] = {
    "x_tif": {"token": ("secret", "token")},
    "bearer": {"token": ("secret", "token"), "client_secret": ("secret", "client_secret"),
               "password": ("secret", "password")},
    "apikey": {"key": ("secret", "key")},
    "scheme_b": {"app_secret": ("secret", "app_secret"), "private_key": ("private", "private_key"),
                 "public_key": ("public", "public_key"), "platform_public_key": ("public", "peer_public_key")},
    "sm2_sm4": {"client_id": ("secret", "client_id"), "private_key": ("private", "private_key"),
                "public_key": ("public", "public_key"), "platform_public_key": ("public", "peer_public_key")},
}


# --------------------------------------------------------------------------- the loaded configuration

@dataclass(frozen=True)
class Operator:
    opter_type: str
    opter: str
    opter_name: str


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    read: float = 60.0
    write: float = 60.0
    pool: float = 10.0
    total: float = 90.0

    def as_httpx(self) -> Any:
        """An `httpx.Timeout` for the phases; `total` is the caller's overall deadline per attempt."""
        import httpx

        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, for idempotent transactions only."""

    max_attempts: int = 3
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    multiplier: float = 2.0
    jitter: float = 0.2
    idempotent_infnos: frozenset[str] = frozenset(DEFAULT_IDEMPOTENT)

    def retryable(self, infno: str) -> bool:
        return str(infno) in self.idempotent_infnos and not str(infno).startswith(UNSAFE_PREFIXES)

    def delay(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `retry` (1 = the first retry)."""
        base = min(self.max_backoff, self.initial_backoff * self.multiplier ** max(retry - 1, 0))
        return max(0.0, base * (1 + self.jitter * (2 * rand() - 1)))


@dataclass(frozen=True)
class JournalSettings:
    path: Path | None = None
    retention_days: int = DEFAULT_RETENTION_DAYS


@dataclass(frozen=True)
class OutboxSettings:
    path: Path


@dataclass(frozen=True)
class RegionConfig:
    """One region's gateway settings, security plug-ins built and secrets loaded."""

    region: str
    name: str | None
    endpoint: str
    fixmedins_code: str
    fixmedins_name: str
    recer_sys_code: str
    infver: str
    operator: Operator
    timeouts: Timeouts
    retry: RetryPolicy
    journal: JournalSettings
    outbox: OutboxSettings
    security: RegionSecurity
    location: str = ""  # file:line of the region's entry, for later messages

    def envelope_fields(self) -> dict[str, str]:
        """The envelope fields this configuration decides (the rest — infno, msgid, inf_time,
        insuplc_admdvs, sign_no — are per request)."""
        return {
            "mdtrtarea_admvs": self.region,
            "recer_sys_code": self.recer_sys_code,
            "infver": self.infver,
            "opter_type": self.operator.opter_type,
            "opter": self.operator.opter,
            "opter_name": self.operator.opter_name,
            "fixmedins_code": self.fixmedins_code,
            "fixmedins_name": self.fixmedins_name,
        }


@dataclass(frozen=True)
class GatewayConfig:
    file: str
    regions: Mapping[str, RegionConfig] = field(default_factory=dict)

    def region(self, code: str) -> RegionConfig:
        try:
            return self.regions[code]
        except KeyError:
            hint = did_you_mean(code, self.regions)
            raise KeyError(f"region {code!r} is not configured in {self.file}"
                           + (f"; {hint}" if hint else f" (configured: {', '.join(sorted(self.regions))})")) from None


class GatewayConfigError(Exception):
    """Raised by `require_gateway_config`: the problems, formatted one per paragraph."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        super().__init__(f"{len(errors)} error(s) in the gateway configuration:\n"
                         + "\n".join(p.format() for p in errors))


# --------------------------------------------------------------------------- loading

def load_gateway_config(path: str | Path, *, pack_dir: str | Path | None = None,
                        environ: Mapping[str, str] | None = None,
                        inject: Mapping[str, Mapping[str, Any]] | None = None,
                        display: str | None = None) -> tuple[GatewayConfig | None, list[Problem]]:
    """Load and check a gateway.yaml. Returns (config or None when any error, every problem).

    `pack_dir`: when given, each configured region must be one the packs there know.
    `environ`: the environment to read `env:` sources from (default `os.environ`).
    `inject`: test doubles per plug-in name, e.g. ``{"bearer": {"fetch": fake}}``.
    """
    p = Path(path)
    name = display or str(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        return None, [Problem("E-FILE-READ", f"cannot read the gateway configuration: {e.strerror}", file=name)]
    return parse_gateway_config(raw, name, base_dir=p.resolve().parent, pack_dir=pack_dir,
                                environ=environ, inject=inject)


def require_gateway_config(path: str | Path, **kw: Any) -> GatewayConfig:
    """`load_gateway_config`, raising GatewayConfigError on any error (warnings are logged)."""
    config, problems = load_gateway_config(path, **kw)
    for p in problems:
        if p.severity == "warning":
            log.warning("%s", p.format(with_source=False))
    if config is None:
        raise GatewayConfigError(problems)
    return config


def parse_gateway_config(text: bytes | str, file: str, *, base_dir: str | Path | None = None,
                         pack_dir: str | Path | None = None, environ: Mapping[str, str] | None = None,
                         inject: Mapping[str, Mapping[str, Any]] | None = None,
                         ) -> tuple[GatewayConfig | None, list[Problem]]:
    doc, problems = parse_yaml(text, file)
    if doc is None:
        return None, problems
    if not isinstance(doc.data, dict):
        problems.append(doc.problem("E-GW-FORM", "a gateway configuration is a mapping with a 'regions' key"))
        return None, problems
    schema_problems = validate_document(doc, SCHEMA)
    problems += schema_problems
    loader = _Loader(doc, Path(base_dir) if base_dir else Path.cwd(),
                     os.environ if environ is None else environ, inject or {}, schema_problems)
    known = None
    if pack_dir is not None:
        known, ps = known_regions(Path(pack_dir))
        problems += ps
    regions: dict[str, RegionConfig] = {}
    raw_regions = doc.data.get("regions")
    defaults = doc.data.get("defaults") if isinstance(doc.data.get("defaults"), dict) else {}
    if isinstance(raw_regions, dict):
        for code, entry in raw_regions.items():
            rc = loader.region(code, entry if isinstance(entry, dict) else {}, defaults, known)
            if rc is not None:
                regions[code] = rc
    problems += loader.problems
    problems = _dedupe(problems)  # a problem in `defaults` is found once per region that inherits it
    if any(p.severity == "error" for p in problems):
        return None, problems
    return GatewayConfig(file=file, regions=regions), problems


def known_regions(pack_dir: Path) -> tuple[set[str] | None, list[Problem]]:
    """The region codes the packs under `pack_dir` declare (pack.yaml only: cheap)."""
    from ..packs.load import PACK_FILE, discover
    from ..packs.source import read_yaml

    if not pack_dir.is_dir():
        return None, [Problem("E-GW-PACKS", "the pack directory does not exist; regions cannot be checked",
                              file=str(pack_dir))]
    codes: set[str] = set()
    for d in discover(pack_dir):
        meta, _ = read_yaml(d / PACK_FILE)
        if meta is not None and isinstance(meta.data, dict) and isinstance(meta.data.get("region"), str):
            codes.add(meta.data["region"])
    if not codes:
        return None, [Problem("E-GW-PACKS", "no rule packs found here; regions cannot be checked", file=str(pack_dir))]
    return codes, []


class _Loader:
    """Semantic checks and object building for one document; collects problems, never raises."""

    def __init__(self, doc: Document, base: Path, environ: Mapping[str, str],
                 inject: Mapping[str, Mapping[str, Any]], schema_problems: list[Problem]):
        self.doc = doc
        self.schema_paths = [p.path for p in schema_problems if p.severity == "error" and p.path]
        self.base = base
        self.environ = environ
        self.inject = inject
        self.problems: list[Problem] = []

    # ---- helpers

    def err(self, code: str, message: str, path: Path_, *, key: bool = False, hint: str | None = None,
            severity: str = "error") -> None:
        self.problems.append(self.doc.problem(code, message, path, key=key, hint=hint, severity=severity))

    def _errors(self) -> int:
        return sum(1 for p in self.problems if p.severity == "error")

    # ---- one region

    def region(self, code: str, entry: dict, defaults: dict, known: set[str] | None) -> RegionConfig | None:
        rpath: Path_ = ("regions", code)
        before = self._errors()
        if not (len(code) == 6 and code.isdigit()):
            self.err("E-GW-REGION", f"'{code}' is not a region code: a region is named by its 6-digit "
                                    "medical-insurance region code", rpath, key=True,
                     hint="write the code in quotes, e.g. \"110000\" (an unquoted 010000 loses its zero)")
        elif known is not None and code not in known:
            h = did_you_mean(code, sorted(known))
            self.err("E-GW-REGION-UNKNOWN", f"region {code} has no rule pack", rpath, key=True,
                     hint=(h + " " if h else "") + "packs exist for: " + ", ".join(sorted(known)))
        merged, where = _merge(defaults, entry, rpath)

        def at(*sub: Any) -> Path_:
            return _origin(where, tuple(sub), rpath)

        missing = [".".join(req) for req in REQUIRED if _get(merged, req) is None]
        if missing:
            self.err("E-GW-MISSING", f"region {code} has no {', '.join(repr(m) for m in missing)}", rpath, key=True,
                     hint=f"set {'it' if len(missing) == 1 else 'them'} under regions.\"{code}\" or under defaults")
        endpoint = merged.get("endpoint")
        if isinstance(endpoint, str):
            self.check_url(endpoint, at("endpoint"), "endpoint")
        retry = self.retry(merged.get("retry") if isinstance(merged.get("retry"), dict) else {}, at)
        tsettings = merged.get("transport") if isinstance(merged.get("transport"), dict) else {"plugin": "none"}
        msettings = (merged.get("message_security") if isinstance(merged.get("message_security"), dict)
                     else {"plugin": "none"})
        if isinstance(tsettings.get("token_url"), str):
            self.check_url(tsettings["token_url"], at("transport", "token_url"), "token_url")
        transport = self.plugin(tsettings, at("transport"), build_transport, "transport")
        message = self.plugin(msettings, at("message_security"), build_message_security, "message_security")
        outbox = self.path_setting(_get(merged, ("outbox", "path")) or "outbox.sqlite", at("outbox", "path"))
        jpath = _get(merged, ("journal", "path"))
        journal_path = self.path_setting(jpath, at("journal", "path")) if isinstance(jpath, str) else None
        if self._errors() > before or transport is None or message is None:
            return None
        op = merged.get("operator", {})
        to = merged.get("timeouts", {})
        line, _ = self.doc.pos(rpath, key=True)
        try:
            return RegionConfig(
                region=code, name=merged.get("name"), endpoint=endpoint,
                fixmedins_code=merged["fixmedins_code"], fixmedins_name=merged["fixmedins_name"],
                recer_sys_code=merged["recer_sys_code"], infver=merged.get("infver", DEFAULT_INFVER),
                operator=Operator(op.get("opter_type", "1"), op["opter"], op["opter_name"]),
                timeouts=Timeouts(**{k: float(v) for k, v in to.items()}),
                retry=retry,
                journal=JournalSettings(journal_path, int(_get(merged, ("journal", "retention_days"))
                                                          or DEFAULT_RETENTION_DAYS)),
                outbox=OutboxSettings(outbox),
                security=RegionSecurity(transport, message, region=code),
                location=f"{self.doc.file}:{line}",
            )
        except (KeyError, TypeError, ValueError):  # only after a schema error, which is reported
            return None

    # ---- checks

    def check_url(self, url: str, path: Path_, what: str) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as e:
            self.err("E-GW-ENDPOINT", f"{what} is not a valid URL ({e})", path)
            return
        if parts.scheme not in ("http", "https"):
            self.err("E-GW-ENDPOINT", f"{what} must start with http:// or https://, found '{url[:60]}'", path,
                     hint="for example https://fsi.example.invalid/fsi/api/rsfComIfsService/callService")
        elif not parts.hostname:
            self.err("E-GW-ENDPOINT", f"{what} has no host name", path)
        elif any(c.isspace() for c in url):
            self.err("E-GW-ENDPOINT", f"{what} contains white space", path)
        elif parts.username is not None or parts.password is not None:
            self.err("E-GW-ENDPOINT", f"{what} carries credentials (user:password@host)", path,
                     hint="credentials belong in a key source (env or file), never in the URL")
            # the caret display would quote the line, password included: not in a log
            self.problems[-1] = replace(self.problems[-1], source_line=None)
        elif port == 0:
            self.err("E-GW-ENDPOINT", f"{what} has port 0", path)

    def retry(self, r: dict, at: Callable[..., Path_]) -> RetryPolicy:
        infnos = r.get("idempotent_infnos")
        if isinstance(infnos, list):
            for i, n in enumerate(infnos):
                if isinstance(n, str) and n.startswith(UNSAFE_PREFIXES):
                    self.err("E-GW-RETRY-UNSAFE", f"transaction {n} writes business data and must never be re-sent "
                                                  "automatically", at("retry", "idempotent_infnos") + (i,),
                             hint="an unknown outcome of a settlement is resolved by 冲正 (2601), not by a retry")
        try:
            kw: dict[str, Any] = {k: r[k] for k in ("max_attempts", "initial_backoff", "max_backoff",
                                                     "multiplier", "jitter") if k in r}
            if isinstance(infnos, list):
                kw["idempotent_infnos"] = frozenset(str(n) for n in infnos)
            policy = RetryPolicy(**kw)
        except TypeError:
            return RetryPolicy()
        if isinstance(policy.initial_backoff, (int, float)) and isinstance(policy.max_backoff, (int, float)) \
                and policy.initial_backoff > policy.max_backoff:
            self.err("E-GW-RETRY", f"initial_backoff ({policy.initial_backoff}) is above max_backoff "
                                   f"({policy.max_backoff})", at("retry", "initial_backoff"))
        return policy

    def path_setting(self, value: Any, path: Path_) -> Path:
        p = Path(str(value)).expanduser()
        p = Path(os.path.normpath(p if p.is_absolute() else self.base / p))
        if p.is_dir():
            self.err("E-GW-PATH", f"'{value}' is a directory; a file path is needed", path)
        elif p.parent.exists() and not p.parent.is_dir():
            self.err("E-GW-PATH", f"the parent of '{value}' is not a directory", path)
        return p

    # ---- plug-ins and key sources

    def plugin(self, settings: dict, path: Path_, build: Callable[..., Any], what: str) -> Any:
        name = settings.get("plugin", "none")
        sources = _SOURCES.get(name, {})
        kwargs: dict[str, Any] = {"plugin": name}
        ok = True
        for k, v in settings.items():
            if k == "plugin":
                continue
            if k in sources:
                kind, arg = sources[k]
                value = self.source(v, path + (k,), kind, f"{what}.{k}")
                if value is None:
                    ok = False
                kwargs[arg] = value
            else:
                kwargs[k] = v
        if name == "scheme_b" and settings.get("response_signature", "required") == "required" \
                and "platform_public_key" not in settings:
            self.err("E-GW-SECURITY", "scheme_b verifies every answer but no platform_public_key is set", path,
                     key=True, hint="add platform_public_key, or set response_signature: optional")
            ok = False
        if name == "x_tif" and "token" not in settings:
            self.err("W-GW-NO-TOKEN", "x_tif without a token: only a public portal accepts an empty paasToken",
                     path, key=True, severity="warning")
        if not ok or self._blocked(path):
            return None
        try:
            return build(kwargs, **self.inject.get(name, {}))
        except SecurityError as e:
            self.err("E-GW-SECURITY", f"{what} ({name}): {e.message}", path, key=True)
        except TypeError as e:  # a setting the schema already reported
            log.debug("plug-in %s not built: %s", name, e)
        return None

    def _blocked(self, path: Path_) -> bool:
        """True when the schema already reported an error inside this block (building the plug-in
        would only repeat it less clearly)."""
        prefix = _pstr(path)
        return any(p == prefix or p.startswith(prefix + ".") or p.startswith(prefix + "[")
                   for p in self.schema_paths)

    def source(self, src: Any, path: Path_, kind: str, what: str) -> Any:
        """Resolve a key source to a Secret (secret, private key) or bytes (public key)."""
        if not isinstance(src, dict):
            return None  # schema error already reported
        fmt = src.get("format", "auto")
        origin: str
        if "env" in src and isinstance(src["env"], str):
            origin = f"env:{src['env']}"
            text = self.environ.get(src["env"])
            if text is None:
                self.err("E-GW-ENV-UNSET", f"environment variable {src['env']} is not set ({what})", path + ("env",),
                         hint=f"export {src['env']}=… before starting the gateway")
                return None
            if not text.strip():
                self.err("E-GW-ENV-EMPTY", f"environment variable {src['env']} is empty ({what})", path + ("env",))
                return None
        elif "file" in src and isinstance(src["file"], str):
            text = self.read_key_file(src["file"], path + ("file",), what, secret=kind != "public")
            if text is None:
                return None
            origin = f"file:{src['file']}"
        elif "value" in src and isinstance(src["value"], str) and kind == "public":
            text, origin = src["value"], "inline"
        else:
            return None
        try:
            if kind == "private":
                return Secret(parse_sm2_private_key(text, fmt), origin)
            if kind == "public":
                return parse_sm2_public_key(text, fmt)
        except SecurityError as e:
            code = "E-GW-SECURITY" if e.code == "E-SEC-LIBRARY" else "E-GW-KEY-FORMAT"
            self.err(code, f"{what} from {origin}: {e.message}", path, key=True)
            return None
        return Secret(text.strip(), origin)

    def read_key_file(self, name: str, path: Path_, what: str, *, secret: bool) -> str | None:
        p = Path(name).expanduser()
        p = p if p.is_absolute() else self.base / p
        try:
            st = p.stat()
        except FileNotFoundError:
            self.err("E-GW-KEY-FILE", f"key file not found: {p} ({what})", path,
                     hint="generate test keys with tools/gateway_test_keys.py, or point to the issued key")
            return None
        except OSError as e:
            self.err("E-GW-KEY-FILE", f"cannot read key file {p}: {e.strerror} ({what})", path)
            return None
        if not stat.S_ISREG(st.st_mode):
            self.err("E-GW-KEY-FILE", f"{p} is not a regular file ({what})", path)
            return None
        if st.st_size > MAX_KEY_FILE_BYTES:
            self.err("E-GW-KEY-FILE", f"{p} is {st.st_size:,} bytes; a key file is a few hundred ({what})", path)
            return None
        try:
            text = p.read_bytes().decode("utf-8-sig")
        except OSError as e:
            self.err("E-GW-KEY-FILE", f"cannot read key file {p}: {e.strerror} ({what})", path)
            return None
        except UnicodeDecodeError:
            self.err("E-GW-KEY-FORMAT", f"key file {p} is not text ({what})", path)
            return None
        if not text.strip():
            self.err("E-GW-KEY-FILE", f"key file {p} is empty ({what})", path)
            return None
        if secret:
            if st.st_mode & 0o077:
                self.err("W-GW-KEY-PERMS", f"key file {p} is readable by group or others "
                                           f"(mode {stat.S_IMODE(st.st_mode):o})", path, severity="warning",
                         hint=f"chmod 600 {p}")
            repo = _inside_git_tree(p)
            if repo is not None:
                self.err("W-GW-KEY-IN-REPO", f"key file {p} lies inside the git working tree {repo}", path,
                         severity="warning", hint="keep keys outside the repository; reference them by path or env")
        return text


# --------------------------------------------------------------------------- merging defaults

def _merge(defaults: dict, entry: dict, rpath: Path_) -> tuple[dict, dict[Path_, Path_]]:
    """defaults ⊕ region entry, and for each merged key the document path it came from."""
    out: dict[str, Any] = {}
    where: dict[Path_, Path_] = {}
    for k, v in defaults.items():
        out[k] = v
        where[(k,)] = ("defaults", k)
    for k, v in entry.items():
        if k in MERGED_BLOCKS and isinstance(v, dict) and isinstance(out.get(k), dict):
            sub = dict(out[k])
            for kk in out[k]:
                where[(k, kk)] = ("defaults", k, kk)
            for kk, vv in v.items():
                sub[kk] = vv
                where[(k, kk)] = rpath + (k, kk)
            out[k] = sub
        else:
            out[k] = v
            # a whole block taken from the region: drop deeper origins from defaults
            for wk in [w for w in where if w[0] == k]:
                del where[wk]
        where[(k,)] = rpath + (k,)
    return out, where


def _origin(where: dict[Path_, Path_], sub: Path_, rpath: Path_) -> Path_:
    for n in range(len(sub), 0, -1):
        if sub[:n] in where:
            return where[sub[:n]] + sub[n:]
    return rpath + sub


def _get(d: Any, path: tuple) -> Any:
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple] = set()
    out = []
    for p in problems:
        k = (p.file, p.line, p.col, p.code, p.message)
        if k not in seen:
            seen.add(k)
            out.append(p)
    return out


def _pstr(path: Path_) -> str:
    from ..packs.source import path_str

    return path_str(path)


def _inside_git_tree(p: Path) -> Path | None:
    for parent in p.resolve().parents:
        if (parent / ".git").exists():
            return parent
    return None
