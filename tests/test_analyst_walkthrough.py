"""README "An analyst's week", step by step as written: new version, the notice's ratio, the
spreadsheet import, two tests, the policy diff. If a step here changes, the README must too."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "analyst"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rules_engine.cli", *args], capture_output=True, text=True,
                          cwd=cwd)


def test_the_analysts_week_as_the_readme_tells_it(tmp_path):
    shutil.copytree(ROOT / "regions", tmp_path / "my-regions")
    shutil.copytree(EXAMPLES, tmp_path / "examples" / "analyst")
    pack = tmp_path / "my-regions" / "990011" / "2026.1"

    r = cli("new-version", "990011", "--from", "2023.1", "--effective", "2026-01-01", "--regions", "my-regions",
            cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2023.1 now ends 2025-12-31" in r.stdout

    policy = pack / "policy.yaml"
    text = policy.read_text(encoding="utf-8")
    assert text.count("ratios: [{ratio: 0.80}]") == 1
    policy.write_text(text.replace("ratios: [{ratio: 0.80}]", "ratios: [{ratio: 0.85}]"), encoding="utf-8")

    r = cli("catalogue", "import", "examples/analyst/990011-2026-services-SAMPLE.xlsx", "--kind", "service",
            "--region", "990011", "--into", "my-regions/990011/2026.1",
            "--mapping", "examples/analyst/example-services-mapping.yaml", "--report", "import.md", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "heading rows skipped 2, rows rejected 0, rows imported 6" in r.stdout
    assert "leading-zeros 4" in r.stdout and "percent 3" in r.stdout and "full-width 1" in r.stdout
    rows = (pack / "catalogue" / "services.csv").read_text(encoding="utf-8").splitlines()
    assert "001109000030000,监护病房床位费,乙,0.1,150,2026-01-01,示例限价" in rows
    assert (tmp_path / "import.md").exists()

    (pack / "tests" / "cross-region-cut.yaml").unlink()
    shutil.copy(EXAMPLES / "notice-2026.tests.yaml", pack / "tests")
    r = cli("test", "my-regions/990011/2026.1", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 passed, 0 failed, 0 error(s)" in r.stdout

    r = cli("diff", "990011@2023.1", "990011@2026.1", "--regions", "my-regions", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ratio for all cases, band 0–∞: 0.8 → 0.85" in r.stdout
    assert "4 entries added to 乙类" in r.stdout and "1 entry added to 丙类" in r.stdout


def test_the_notice_tests_fail_against_the_unchanged_ratio(tmp_path):
    """The two tests can fail: without step 2 (ratio still 80 %) the fund figures are wrong."""
    shutil.copytree(ROOT / "regions", tmp_path / "my-regions")
    pack = tmp_path / "my-regions" / "990011" / "2026.1"
    assert cli("new-version", "990011", "--from", "2023.1", "--effective", "2026-01-01", "--regions",
               "my-regions", cwd=tmp_path).returncode == 0
    assert cli("catalogue", "import", str(EXAMPLES / "990011-2026-services-SAMPLE.xlsx"), "--kind", "service",
               "--region", "990011", "--into", str(pack), "--mapping",
               str(EXAMPLES / "example-services-mapping.yaml"), cwd=tmp_path).returncode == 0
    (pack / "tests" / "cross-region-cut.yaml").unlink()
    shutil.copy(EXAMPLES / "notice-2026.tests.yaml", pack / "tests")
    r = cli("test", str(pack), cwd=tmp_path)
    assert r.returncode == 1
    assert "hifp_pay" in r.stdout and "1708" in r.stdout  # (3135 − 1000) × 0.80
