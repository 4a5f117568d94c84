"""`python -m rules_engine …` — the same as the `rules-engine` command."""
from rules_engine.cli import main

main()
