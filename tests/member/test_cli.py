"""`rules-engine member …` against the simulator: consent, query, refusal with a located message."""
from __future__ import annotations

from click.testing import CliRunner
from member_helpers import PURPOSE, days

from rules_engine.cli import main
from rules_engine.member.sandbox import BJ


def _run(sandbox, *args, regions_dir):
    return CliRunner().invoke(main, ["member", "-c", str(sandbox.member_yaml), "--regions", str(regions_dir),
                                     "--as", "desk", "--purpose", PURPOSE, *args])


def test_consent_insurance_and_a_refusal(sandbox, regions_dir):
    r = _run(sandbox, "insurance", BJ, regions_dir=regions_dir)
    assert r.exit_code == 1 and "E-CONSENT-MISSING" in r.output and "Traceback" not in r.output
    r = _run(sandbox, "consent", "give", BJ, "--data", "insurance,filings", "--channel", "counter", "--until", days(10),
             regions_dir=regions_dir)
    assert r.exit_code == 0 and "consent_id: C" in r.output
    r = _run(sandbox, "insurance", BJ, regions_dir=regions_dir)
    assert r.exit_code == 0 and "职工基本医疗保险" in r.output
    r = _run(sandbox, "file", BJ, "--type", "referral", "--admdvs", "130000", "--begin", days(3), "--end", days(1),
             regions_dir=regions_dir)
    assert r.exit_code == 1 and "enddate:" in r.output
    r = _run(sandbox, "consent", "list", BJ, regions_dir=regions_dir)
    assert r.exit_code == 0 and "desk" in r.output and "[insurance, filings]" in r.output


def test_missing_settings_is_a_usage_error(tmp_path):
    r = CliRunner().invoke(main, ["member", "-c", str(tmp_path / "none.yaml"), "--purpose", "x", "insurance", BJ])
    assert r.exit_code == 2 and "no member settings" in r.output
