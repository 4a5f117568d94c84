"""`make demo`: the main job on the shipped packs, as an operator would run it.

Each step is a real CLI command, printed before it runs, so the demo doubles as a tour of the
commands. A step that fails stops the demo with its exit code.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "rules_engine.cli"]
EXAMPLES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "examples" / "claims").glob("*.json"))

STEPS: list[tuple[str, list[str]]] = [
    ("Validate every shipped pack (YAML, schemas, references, bands, dates, inheritance)", ["validate", "regions"]),
    ("List the packs: region, version, dates, inheritance, content hash, confidence", ["packs"]),
    ("Settle the example claims (Beijing inpatient, outpatient, resident; Beijing-insured treated in Hebei)",
     ["simulate", *EXAMPLES]),
    ("Explain every yuan of the cross-region claim", ["simulate", "examples/claims/cross-region-hebei.json",
                                                     "--explain"]),
]


def main() -> int:
    env = dict(os.environ, COLUMNS=os.environ.get("COLUMNS", "150"))
    for title, args in STEPS:
        print(f"\n=== {title}\n$ rules-engine {' '.join(shlex.quote(a) for a in args)}", flush=True)
        r = subprocess.run(CLI + args, cwd=ROOT, env=env)
        if r.returncode != 0:
            print(f"demo step failed with exit code {r.returncode}", file=sys.stderr)
            return r.returncode
    print("\nDemo finished: every step ran against the shipped packs.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
