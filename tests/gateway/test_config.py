"""The gateway configuration: the example loads, every plug-in builds from it, and each kind of bad
input is a located problem (file:line:col), all reported in one run, with no secret in any output."""
from __future__ import annotations

import json
import logging
import os
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules_engine.gateway.config import (
    GatewayConfigError, RetryPolicy, load_gateway_config, parse_gateway_config, require_gateway_config,
)
from rules_engine.gateway.security import (
    ApiKeyAuth, BearerAuth, NoMessageSecurity, SchemeB, Secret, Sm2Sm4, XTifAuth,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "gateway.yaml"
SCHEMA = ROOT / "schemas" / "gateway-config.schema.json"

APP_SECRET = "AppSecretForTests0000000000000000"
TOKEN = "tif-token-for-tests"
CLIENT_ID = "ClientId16Bytes!"


@pytest.fixture
def keydir(tmp_path, channel_keys, platform_keys) -> Path:
    d = tmp_path / "keys"
    d.mkdir()
    for name, text, mode in [("channel.key", channel_keys.private_b64, 0o600),
                             ("channel.pub", channel_keys.public_b64, 0o644),
                             ("platform.pub", platform_keys.public_b64, 0o644)]:
        p = d / name
        p.write_text(text + "\n")
        os.chmod(p, mode)
    return d


@pytest.fixture
def env(channel_keys) -> dict[str, str]:
    return {"TIF_TOKEN": TOKEN, "APP_SECRET": APP_SECRET, "CLIENT_ID": CLIENT_ID,
            "OAUTH_SECRET": "oauth-client-secret", "OAUTH_PASSWORD": "oauth-password",
            "API_KEY": "api-key-value", "CHANNEL_KEY_HEX": channel_keys.private.hex()}


def write(tmp_path: Path, text: str, name: str = "gateway.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return p


BASE = """
defaults:
  operator: {opter: "0001", opter_name: 测试}
  fixmedins_name: 测试医院
  recer_sys_code: YBXT
regions:
  "110000":
    endpoint: https://fsi.example.invalid/api
    fixmedins_code: H11010500001
"""


# --------------------------------------------------------------------------- what loads

def test_example_config_loads_and_merges_defaults():
    config, problems = load_gateway_config(EXAMPLE, pack_dir=ROOT / "regions",
                                           environ={"GW_110000_PAAS_TOKEN": "t"})
    assert [p for p in problems if p.severity == "error"] == []
    bj = config.region("110000")
    assert bj.infver == "V1.0" and bj.journal.retention_days == 730
    assert bj.operator.opter_type == "1" and bj.timeouts.connect == 10
    assert isinstance(bj.security.transport, XTifAuth)
    assert isinstance(bj.security.message, NoMessageSecurity)
    assert bj.outbox.path == (ROOT / ".cache" / "gateway" / "outbox.sqlite")
    assert bj.envelope_fields()["mdtrtarea_admvs"] == "110000"
    assert bj.envelope_fields()["fixmedins_code"] == "H11010500001"


def test_defaults_apply_when_omitted(tmp_path):
    config, problems = load_gateway_config(write(tmp_path, BASE), environ={})
    assert problems == []
    r = config.region("110000")
    assert (r.infver, r.journal.retention_days, r.retry.max_attempts) == ("V1.0", 730, 3)
    assert r.outbox.path == tmp_path / "outbox.sqlite"
    assert r.security.transport.headers() == {}
    assert r.retry.retryable("9001") and not r.retry.retryable("2207")


def test_every_plugin_builds_from_the_config(tmp_path, keydir, env, channel_keys, platform_keys):
    text = BASE + f"""
  "110100":
    endpoint: http://127.0.0.1:8080/fsi/api
    fixmedins_code: H11010500002
    transport: {{plugin: bearer, token_url: "https://auth.example.invalid/oauth/token", client_id: his,
                client_secret: {{env: OAUTH_SECRET}}, username: op, password: {{env: OAUTH_PASSWORD}}}}
    message_security:
      plugin: scheme_b
      app_id: 0123456789ABCDEF0123456789ABCDEF
      app_secret: {{env: APP_SECRET}}
      private_key: {{file: keys/channel.key}}
      public_key: {{file: keys/channel.pub}}
      platform_public_key: {{file: {keydir}/platform.pub}}
  "110200":
    endpoint: https://fsi.example.invalid/api
    fixmedins_code: H11010500003
    transport: {{plugin: apikey, key: {{env: API_KEY}}, header: X-Api-Key}}
    message_security:
      plugin: sm2_sm4
      client_id: {{env: CLIENT_ID}}
      private_key: {{env: CHANNEL_KEY_HEX, format: hex}}
      public_key: {{value: "{channel_keys.public_b64}"}}
  "110300":
    endpoint: https://fsi.example.invalid/api
    fixmedins_code: H11010500004
    transport: {{plugin: x_tif, paasid: mbs_fsi_auth, token: {{env: TIF_TOKEN}}, signature_case: upper}}
"""
    config, problems = load_gateway_config(write(tmp_path, text), environ=env)
    assert problems == []
    r1, r2, r3 = (config.region(c) for c in ("110100", "110200", "110300"))
    assert isinstance(r1.security.transport, BearerAuth) and isinstance(r1.security.message, SchemeB)
    assert isinstance(r2.security.transport, ApiKeyAuth) and isinstance(r2.security.message, Sm2Sm4)
    assert r3.security.transport.headers()["x-tif-signature"].isupper()
    # the configured channel talks to a platform holding the matching keys
    platform = SchemeB(app_id="0123456789ABCDEF0123456789ABCDEF", app_secret=Secret(APP_SECRET, "t"),
                       private_key=platform_keys.secret(), public_key=platform_keys.public,
                       peer_public_key=channel_keys.public)
    wire = r1.security.message.seal({"data": {"amt": Decimal("3.30")}})
    assert platform.open(wire)["data"] == {"amt": Decimal("3.30")}
    assert r1.security.message.open(platform.seal({"data": {"ok": "1"}}))["data"] == {"ok": "1"}


# --------------------------------------------------------------------------- located errors

def expect(tmp_path, text: str, code: str, environ=None, pack_dir=None, fragment: str | None = None):
    """Load `text`; assert a problem `code` located on the line marked `# <-`."""
    text = textwrap.dedent(text).lstrip("\n")
    marked = [i + 1 for i, line in enumerate(text.splitlines()) if "# <-" in line]
    path = write(tmp_path, text)
    config, problems = load_gateway_config(path, environ=environ or {}, pack_dir=pack_dir)
    assert config is None
    hits = [p for p in problems if p.code == code]
    assert hits, [p.format() for p in problems]
    p = hits[0]
    assert p.file == str(path) and p.col >= 1
    if marked:
        assert p.line == marked[0], p.format()
    if fragment:
        assert fragment in p.message + (p.hint or ""), p.format()
    assert f"{path}:{p.line}:{p.col}" in p.format()
    return problems


def test_region_code_not_six_digits(tmp_path):
    expect(tmp_path, BASE.replace('"110000":', '"11000":  # <-'), "E-GW-REGION", fragment="6-digit")


def test_region_the_packs_do_not_know(tmp_path, regions_dir):
    expect(tmp_path, BASE.replace('"110000":', '"110001":  # <-'), "E-GW-REGION-UNKNOWN",
           pack_dir=regions_dir, fragment="did you mean '110000'")


def test_unset_environment_variable(tmp_path):
    text = BASE + """    transport: {plugin: x_tif, paasid: p, token: {env: GW_NOT_SET}}  # <-\n"""
    expect(tmp_path, text, "E-GW-ENV-UNSET", fragment="GW_NOT_SET")


def test_empty_environment_variable(tmp_path):
    text = BASE + """    transport: {plugin: apikey, key: {env: EMPTY}}  # <-\n"""
    expect(tmp_path, text, "E-GW-ENV-EMPTY", environ={"EMPTY": "  "})


def test_missing_key_file(tmp_path, env):
    text = BASE + """
    message_security:
      plugin: sm2_sm4
      client_id: {env: CLIENT_ID}
      private_key: {file: nowhere/channel.key}  # <-
      public_key: {value: "BEKaw3Qtc31LG/hTPHFPlriKuAn/nzTWl8LiRxLw4iQiSUIyuglptFxNkdCiNXcXvkqTH79Rh/A2sEFU6hjeK3k="}
"""
    expect(tmp_path, text, "E-GW-KEY-FILE", environ=env, fragment="not found")


def test_key_that_does_not_decode(tmp_path, env):
    text = BASE + """
    message_security:
      plugin: sm2_sm4
      client_id: {env: CLIENT_ID}
      private_key: {env: CLIENT_ID}  # <-
      public_key: {value: "BEKaw3Qtc31LG/hTPHFPlriKuAn/nzTWl8LiRxLw4iQiSUIyuglptFxNkdCiNXcXvkqTH79Rh/A2sEFU6hjeK3k="}
"""
    expect(tmp_path, text, "E-GW-KEY-FORMAT", environ=env, fragment="env:CLIENT_ID")


def test_private_key_not_matching_public_key(tmp_path, keydir, env):
    text = BASE + f"""
    message_security:  # <-
      plugin: sm2_sm4
      client_id: {{env: CLIENT_ID}}
      private_key: {{file: {keydir}/channel.key}}
      public_key: {{file: {keydir}/platform.pub}}
"""
    expect(tmp_path, text, "E-GW-SECURITY", environ=env, fragment="does not belong")


def test_client_id_not_an_sm4_key(tmp_path, keydir, env):
    text = BASE + f"""
    message_security:  # <-
      plugin: sm2_sm4
      client_id: {{env: API_KEY}}
      private_key: {{file: {keydir}/channel.key}}
      public_key: {{file: {keydir}/channel.pub}}
"""
    expect(tmp_path, text, "E-GW-SECURITY", environ=env, fragment="16 bytes")


@pytest.mark.parametrize("url, fragment", [
    ("ftp://fsi.example.invalid/api", "http:// or https://"),
    ("fsi.example.invalid/api", "http:// or https://"),
    ("https:///api", "no host"),
    ("https://user:hunter2pw@fsi.example.invalid/api", "credentials"),
    ("https://fsi.example.invalid:99999/api", "not a valid URL"),
])
def test_bad_endpoint(tmp_path, url, fragment):
    text = BASE.replace("https://fsi.example.invalid/api", f'"{url}"  # <-')
    problems = expect(tmp_path, text, "E-GW-ENDPOINT", fragment=fragment)
    assert "hunter2pw" not in "".join(p.format() for p in problems)  # not even in the quoted line


def test_settlement_listed_as_retryable(tmp_path):
    text = BASE + """
    retry:
      idempotent_infnos:
        - "1101"
        - "2207"  # <-
"""
    expect(tmp_path, text, "E-GW-RETRY-UNSAFE", fragment="冲正")


def test_required_field_missing_after_defaults(tmp_path):
    text = BASE.replace('  recer_sys_code: YBXT\n', '').replace('"110000":', '"110000":  # <-')
    expect(tmp_path, text, "E-GW-MISSING", fragment="recer_sys_code")


def test_schema_errors_are_located(tmp_path):
    expect(tmp_path, BASE.replace("fixmedins_code: H11010500001", "fixmedins_code: H1101  # <-"),
           "E-SCHEMA-FORM", fragment="H11010500001")
    expect(tmp_path, BASE + "    transport: {plugin: x_tif, paasId: p}  # <-\n", "E-SCHEMA-UNKNOWN-KEY",
           fragment="did you mean 'paasid'")
    expect(tmp_path, BASE + "    message_security: {plugin: sm9}  # <-\n", "E-SCHEMA-VALUE")
    expect(tmp_path, BASE + "    timeouts: {connect: 0}  # <-\n", "E-SCHEMA-RANGE")
    expect(tmp_path, BASE + "    transport: {plugin: apikey, key: {env: A, file: b}}  # <-\n", "E-SCHEMA-ONEOF",
           fragment="exactly one of")


def test_secret_written_inline_is_refused(tmp_path):
    expect(tmp_path, BASE + '    transport: {plugin: apikey, key: {value: "sekrit"}}  # <-\n',
           "E-SCHEMA-UNKNOWN-KEY")


def test_yaml_syntax_error_is_located(tmp_path):
    expect(tmp_path, "regions:\n  \"110000\": {endpoint: x\n", "E-YAML-SYNTAX")


def test_all_problems_reported_at_once(tmp_path, regions_dir):
    text = BASE.replace('"110000":', '"110001":') + """    transport: {plugin: x_tif, paasid: p, token: {env: NOPE}}
    retry: {idempotent_infnos: ["2304"]}
  "12345":
    endpoint: gopher://x
    fixmedins_code: H12345678901
"""
    config, problems = load_gateway_config(write(tmp_path, text), environ={}, pack_dir=regions_dir)
    assert config is None
    codes = {p.code for p in problems}
    assert {"E-GW-REGION-UNKNOWN", "E-GW-ENV-UNSET", "E-GW-RETRY-UNSAFE", "E-GW-REGION",
            "E-GW-ENDPOINT"} <= codes


def test_problem_in_defaults_located_there_and_reported_once(tmp_path):
    text = BASE.replace("  recer_sys_code: YBXT\n",
                        "  recer_sys_code: YBXT\n  transport: {plugin: apikey, key: {env: UNSET}}\n") + """  "120000":
    endpoint: https://fsi.example.invalid/api
    fixmedins_code: H12010500001
"""
    config, problems = load_gateway_config(write(tmp_path, text), environ={})
    unset = [p for p in problems if p.code == "E-GW-ENV-UNSET"]
    assert len(unset) == 1 and unset[0].line == 5 and unset[0].path.startswith("defaults.transport")


def test_hostile_documents_do_not_crash(tmp_path):
    for text in ["[1, 2]\n", "regions: [1]\n", "regions:\n  '110000': 5\n", "a: &a [*a]\n",
                 "regions:\n  '110000':\n    transport: {plugin: bearer, token: 5}\n", ""]:
        config, problems = parse_gateway_config(text, "g.yaml")
        assert config is None and problems, text


def test_require_raises_with_formatted_problems(tmp_path):
    path = write(tmp_path, BASE + "    transport: {plugin: apikey, key: {env: UNSET}}\n")
    with pytest.raises(GatewayConfigError) as e:
        require_gateway_config(path, environ={})
    assert f"{path}:" in str(e.value) and "UNSET" in str(e.value)
    assert e.value.problems


def test_unreadable_config_file(tmp_path):
    config, problems = load_gateway_config(tmp_path / "absent.yaml")
    assert config is None and problems[0].code == "E-FILE-READ"


# --------------------------------------------------------------------------- warnings

def test_world_readable_key_file_warns(tmp_path, keydir, env):
    os.chmod(keydir / "channel.key", 0o644)
    text = BASE + f"""
    message_security:
      plugin: sm2_sm4
      client_id: {{env: CLIENT_ID}}
      private_key: {{file: {keydir}/channel.key}}
      public_key: {{file: {keydir}/channel.pub}}
"""
    config, problems = load_gateway_config(write(tmp_path, text), environ=env)
    assert config is not None
    assert [p.code for p in problems] == ["W-GW-KEY-PERMS"] and "chmod 600" in problems[0].hint


def test_key_inside_a_git_tree_warns(tmp_path, keydir, env):
    (tmp_path / ".git").mkdir()
    text = BASE + """
    message_security:
      plugin: sm2_sm4
      client_id: {env: CLIENT_ID}
      private_key: {file: keys/channel.key}
      public_key: {file: keys/channel.pub}
"""
    config, problems = load_gateway_config(write(tmp_path, text), environ=env)
    assert config is not None and [p.code for p in problems] == ["W-GW-KEY-IN-REPO"]


# --------------------------------------------------------------------------- secrets

def test_no_secret_in_config_repr_problems_or_logs(tmp_path, keydir, env, channel_keys, caplog):
    caplog.set_level(logging.DEBUG)
    text = BASE + f"""
    transport: {{plugin: x_tif, paasid: p, token: {{env: TIF_TOKEN}}}}
    message_security:
      plugin: scheme_b
      app_id: 0123456789ABCDEF0123456789ABCDEF
      app_secret: {{env: APP_SECRET}}
      private_key: {{file: {keydir}/channel.key}}
      public_key: {{file: {keydir}/channel.pub}}
      platform_public_key: {{file: {keydir}/platform.pub}}
  "120000":
    endpoint: https://fsi.example.invalid/api
    fixmedins_code: H12010500001
    transport: {{plugin: apikey, key: {{env: API_KEY}}}}
    message_security: {{plugin: sm2_sm4, client_id: {{env: CLIENT_ID}}, private_key: {{env: API_KEY}},
                       public_key: {{value: "{channel_keys.public_b64}"}}}}
"""
    path = write(tmp_path, text)
    config, problems = load_gateway_config(path, environ=env)  # 120000: API_KEY is no SM2 key
    good, _ = load_gateway_config(write(tmp_path, text.split('  "120000"')[0], "good.yaml"), environ=env)
    good.region("110000").security.prepare({"data": {"a": "1"}})
    shown = repr(good) + str(good) + "".join(p.format() for p in problems) + caplog.text
    for secret in (TOKEN, APP_SECRET, CLIENT_ID, "api-key-value", channel_keys.private_b64,
                   channel_keys.private.hex()):
        assert secret not in shown, secret
    assert "Secret(env:APP_SECRET)" in shown


# --------------------------------------------------------------------------- the schema itself

def _walk_properties(node, path="$"):
    if isinstance(node, dict):
        for name, sub in (node.get("properties") or {}).items():
            yield f"{path}.properties.{name}", sub
        for k, v in node.items():
            yield from _walk_properties(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk_properties(v, f"{path}[{i}]")


def test_every_schema_property_has_a_chinese_and_english_description():
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    props = list(_walk_properties(schema))
    assert len(props) > 60
    for where, sub in props:
        d = sub.get("description", "")
        assert any("\u4e00" <= c <= "\u9fff" for c in d), f"{where}: no Chinese in description"
        assert sum(c.isascii() and c.isalpha() for c in d) >= 3, f"{where}: no English in description"


def test_example_validates_against_the_schema_as_a_plain_document():
    import jsonschema
    import yaml

    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8"))).validate(data)


# --------------------------------------------------------------------------- retry policy

@given(retry=st.integers(min_value=1, max_value=30), r=st.floats(min_value=0, max_value=1))
def test_backoff_grows_is_capped_and_jitter_is_bounded(retry, r):
    p = RetryPolicy(initial_backoff=0.5, max_backoff=8, multiplier=2, jitter=0.2)
    base = min(8, 0.5 * 2 ** (retry - 1))
    assert base * 0.8 - 1e-9 <= p.delay(retry, lambda: r) <= base * 1.2 + 1e-9
    assert p.delay(retry + 1, lambda: 0.5) >= p.delay(retry, lambda: 0.5)


def test_timeouts_map_to_httpx(tmp_path):
    httpx = pytest.importorskip("httpx")
    config, _ = load_gateway_config(write(tmp_path, BASE + "    timeouts: {connect: 3, read: 7}\n"), environ={})
    t = config.region("110000").timeouts.as_httpx()
    assert isinstance(t, httpx.Timeout) and (t.connect, t.read, t.write) == (3, 7, 60)
