"""The disease-name → ICD-10 table the parser uses: every entry justified by the insurance-edition table."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from rules_engine.catalogue.restrictions_parser import diagnosis_terms
from rules_engine.conditions.language import icd_matches, parse_icd_pattern

ICD = Path(__file__).resolve().parents[3] / "shared" / "reference" / "data" / "icd10_yibao2.0_codes_from_map.csv"


def test_every_code_is_a_valid_icd_pattern_and_terms_are_unique():
    terms, absent = diagnosis_terms()
    words = [w for t in terms for w in t.words]
    assert len(words) == len(set(words))
    for t in terms:
        for c in t.icd:
            assert parse_icd_pattern(c) is not None, (t.term, c)
    assert not set(absent) & set(words)


@pytest.fixture(scope="module")
def table():
    if not ICD.is_file():
        pytest.skip(f"{ICD} is absent (the reference data is not part of the repository)")
    with open(ICD, encoding="utf-8") as f:
        return [(r["yibao_code"], r["yibao_name"]) for r in csv.DictReader(f)]


@pytest.mark.parametrize("term", [t.term for t in diagnosis_terms()[0]])
def test_each_prefix_holds_codes_named_for_the_term(table, term):
    """The evidence: under every listed prefix the table has codes, and one carries the disease's name."""
    t = next(x for x in diagnosis_terms()[0] if x.term == term)
    for pat in t.icd:
        p = parse_icd_pattern(pat)
        hits = [n for c, n in table if icd_matches(c, (p,))]
        assert hits, f"{term}: no code under {pat} in the table"
        assert any(any(w in n for w in t.names) for n in hits), f"{term}: no name under {pat} carries {t.names}"
