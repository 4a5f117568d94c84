"""Pack tests: YAML cases beside each pack, run by `rules-engine test` and by pytest."""
from .runner import ERROR, FAIL, PASS, CaseResult, find_test_files, run_file, summarize

__all__ = ["PASS", "FAIL", "ERROR", "CaseResult", "find_test_files", "run_file", "summarize"]
