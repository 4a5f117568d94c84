"""Each validation problem of a coding folder: a broken fixture, and the code, file, line and column shown."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from rules_engine.cli import main
from rules_engine.coding import load_chain

from .conftest import MAP_HEADER, ONE_MAP, SYSTEMS, manifest, write_pack

GOOD = "A01.000,甲,A01.000,甲,equivalent,\n"


def _problems(regions, files: dict[str, str], **kw):
    d = write_pack(regions, "990000", "1", files)
    _, problems = load_chain([d], regions.parent, **kw)
    return problems


def _one(problems, code):
    found = [p for p in problems if p.code == code]
    assert found, [p.format() for p in problems]
    return found[0]


def _table_problem(regions, body: str, code: str, header: str = MAP_HEADER):
    p = _one(_problems(regions, {"coding.yaml": manifest(ONE_MAP), "map.csv": header + GOOD + body}), code)
    assert p.file == "regions/990000/1/coding/map.csv"
    return p


def test_malformed_source_code_is_located_at_its_cell(regions):
    p = _table_problem(regions, "A1.000,乙,A01.000,甲,equivalent,\n", "E-CODING-CODE")
    assert (p.line, p.col) == (3, 1) and "A1.000" in p.message
    assert p.source_line.startswith("A1.000")


def test_malformed_target_code_column_points_at_the_target_cell(regions):
    p = _table_problem(regions, "B02.000,乙,B02.000x1,乙,equivalent,\n", "E-CODING-CODE")
    assert (p.line, p.col) == (3, len("B02.000,乙,") + 1) and "target_code" in p.message


def test_a_code_with_a_stray_space_is_malformed(regions):
    p = _table_problem(regions, "B02.000 ,乙,B02.000,乙,equivalent,\n", "E-CODING-CODE")
    assert "spaces" in p.message and p.line == 3


def test_duplicate_row(regions):
    p = _table_problem(regions, GOOD, "E-CODING-DUPLICATE")
    assert p.line == 3 and "line 2" in p.message


def test_conflicting_rows_same_target_other_relationship(regions):
    p = _table_problem(regions, "A01.000,甲,A01.000,甲,related,other\n", "E-CODING-CONFLICT")
    assert p.line == 3 and "line 2" in p.message


def test_conflicting_rows_two_equivalent_targets(regions):
    p = _table_problem(regions, "A01.000,甲,A01.001,甲一,equivalent,\n", "E-CODING-CONFLICT")
    assert p.line == 3 and "equivalent" in p.message and p.col == len("A01.000,甲,A01.001,甲一,") + 1


def test_conflicting_rows_mapped_and_not_mapped(regions):
    p = _table_problem(regions, "A01.000,甲,,,not-mapped,gone\n", "E-CODING-CONFLICT")
    assert p.line == 3


def test_rows_on_other_dates_or_conditions_do_not_conflict(regions):
    head = MAP_HEADER.strip() + ",depends_on,valid_from,valid_to\n"
    body = ("A01.000,甲,A01.000,甲,equivalent,,,2020-01-01,2020-12-31\n"
            "A01.000,甲,A01.001,甲,equivalent,,,2021-01-01,\n"
            "B01.000,乙,B01.000,乙,equivalent,,gend=1,,\n"
            "B01.000,乙,B01.001,乙,equivalent,,gend=2,,\n")
    problems = _problems(regions, {"coding.yaml": manifest(ONE_MAP), "map.csv": head + body})
    assert [p for p in problems if p.severity == "error"] == []


def test_unknown_relationship_gets_the_fhir_meaning_as_hint(regions):
    p = _table_problem(regions, "B02.000,乙,B02.000,乙,wider,x\n", "E-CODING-RELATIONSHIP")
    assert p.line == 3 and "source-is-narrower" in p.hint  # R4 'wider' = the target is wider
    p = _table_problem(regions, "B02.000,乙,B02.000,乙,equivalnet,x\n", "E-CODING-RELATIONSHIP")
    assert "equivalent" in p.hint


def test_narrower_without_a_note(regions):
    p = _table_problem(regions, "B02.000x001,乙扩,B02.000,乙,source-is-narrower,\n", "E-CODING-NOTE")
    assert p.line == 3 and p.col == len("B02.000x001,乙扩,B02.000,乙,") + 1


def test_related_without_a_note_is_a_warning(regions):
    p = _table_problem(regions, "B02.000x001,乙扩,B02.000,乙,related,\n", "W-CODING-NOTE")
    assert p.severity == "warning"


def test_not_mapped_row_with_a_target(regions):
    p = _table_problem(regions, "B02.000,乙,B02.000,乙,not-mapped,x\n", "E-CODING-TARGET")
    assert p.line == 3


def test_mapped_row_without_a_target(regions):
    p = _table_problem(regions, "B02.000,乙,,,equivalent,\n", "E-CODING-CODE")
    assert "not-mapped" in p.hint


def test_one_code_two_names_is_a_warning(regions):
    p = _table_problem(regions, "B02.000,乙,A01.000,另一个名字,related,x\n", "W-CODING-NAME")
    assert p.line == 3 and p.severity == "warning"


def test_bad_depends_on_and_dates(regions):
    head = MAP_HEADER.strip() + ",depends_on,valid_from,valid_to\n"
    p = _table_problem(regions, "B02.000,乙,B02.000,乙,equivalent,,sex=2,,\n", "E-CODING-DEPENDS", header=head)
    assert "gend" in p.hint
    p = _table_problem(regions, "B02.000,乙,B02.000,乙,equivalent,,age>ten,,\n", "E-CODING-DEPENDS", header=head)
    assert "number" in p.message
    p = _table_problem(regions, "B02.000,乙,B02.000,乙,equivalent,,,2021-02-30,\n", "E-CODING-DATE", header=head)
    assert p.line == 3
    p = _table_problem(regions, "B02.000,乙,B02.000,乙,equivalent,,,2021-02-01,2020-01-01\n", "E-CODING-DATE",
                       header=head)
    assert "before" in p.message


def test_unknown_and_missing_columns(regions):
    p = _one(_problems(regions, {"coding.yaml": manifest(ONE_MAP),
                                 "map.csv": "source_code,target_cod,relationship\n"}), "E-CODING-COLUMN")
    assert (p.line, p.col) == (1, len("source_code,") + 1) and "target_code" in p.hint


def test_row_with_the_wrong_number_of_cells(regions):
    p = _table_problem(regions, "B02.000,乙,B02.000\n", "E-CSV-ROW")
    assert p.line == 3


def test_unknown_code_system_family_in_the_manifest(regions):
    text = "systems:\n  icd11:clinical-1:\n    name: x\n"
    p = _one(_problems(regions, {"coding.yaml": text}), "E-CODING-SYSTEM")
    assert p.file == "regions/990000/1/coding/coding.yaml" and (p.line, p.col) == (2, 3)
    assert "icd11" in p.message


def test_a_map_between_systems_nobody_declares(regions):
    maps = ("  - file: map.csv\n    source_system: icd10:clinical-2.0\n"
            "    target_system: icd10:insurance-2.1\n")
    p = _one(_problems(regions, {"coding.yaml": manifest(maps), "map.csv": MAP_HEADER + GOOD}), "E-CODING-SYSTEM")
    assert (p.line, p.col) == (9, 18) and "insurance-2.1" in p.message and "insurance-2.0" in p.hint


def test_missing_table_file_and_schema_errors_in_the_manifest(regions):
    p = _one(_problems(regions, {"coding.yaml": manifest(ONE_MAP)}), "E-CODING-FILE")
    assert p.line == 7
    p = _one(_problems(regions, {"coding.yaml": SYSTEMS + "mapz: []\n"}), "E-SCHEMA-UNKNOWN-KEY")
    assert p.line == 6 and "maps" in p.hint


def test_unknown_provenance_id(regions):
    text = manifest(ONE_MAP.replace("    source_system", "    source: NOPE\n    source_system"))
    p = _one(_problems(regions, {"coding.yaml": text, "map.csv": MAP_HEADER + GOOD}, known_sources=["T990000"]),
             "E-CODING-SOURCE")
    assert p.line == 8


def test_unlisted_table_is_a_warning(regions):
    p = _one(_problems(regions, {"coding.yaml": manifest(ONE_MAP), "map.csv": MAP_HEADER + GOOD,
                                 "old.csv": MAP_HEADER}), "W-CODING-UNUSED")
    assert p.severity == "warning" and p.file.endswith("old.csv")


@pytest.mark.parametrize("body,code,line", [
    ("L1,001102000050000\nL1,001102000030000\n", "E-CODING-CONFLICT", 3),
    ("L1,001102000050000\nL1,001102000050000\n", "E-CODING-DUPLICATE", 3),
    ("L 1,001102000050000\n", "E-CODING-CODE", 2),
    ("L1,0011-0200\n", "E-CODING-CODE", 2),
    ("L1,\n", "W-CODING-NOTE", 2),
])
def test_item_map_problems(regions, body, code, line):
    p = _one(_problems(regions, {"coding.yaml": manifest(items="  - file: items.csv\n"),
                                 "items.csv": "medins_list_codg,med_list_codg\n" + body}), code)
    assert p.line == line and p.file.endswith("items.csv")


def test_item_row_contradicting_the_files_institution(regions):
    p = _one(_problems(regions, {"coding.yaml": manifest(items="  - file: items.csv\n    fixmedins_code: H1\n"),
                                 "items.csv": "medins_list_codg,med_list_codg,fixmedins_code\nL1,A1,H2\n"}),
             "E-CODING-INSTITUTION")
    assert p.line == 2


def test_coding_validate_command_reports_located_problems_and_exit_1(regions):
    write_pack(regions, "990000", "1", {"coding.yaml": manifest(ONE_MAP),
                                        "map.csv": MAP_HEADER + GOOD + "B02.000x001,乙扩,B02.000,乙,source-is-narrower,\n"})
    res = CliRunner().invoke(main, ["coding", "validate", str(regions)])
    assert res.exit_code == 1
    assert "map.csv:3:" in res.output and "E-CODING-NOTE" in res.output and "^" in res.output


def test_coding_validate_passes_on_the_shipped_packs(regions_dir):
    res = CliRunner().invoke(main, ["coding", "validate", str(regions_dir)])
    assert res.exit_code == 0, res.output
    assert "error(s)" in res.output


def test_sources_can_be_checked_when_the_chain_is_merged(regions):
    from rules_engine.coding import load_coding, merge_chain
    text = manifest(ONE_MAP.replace("    source_system", "    source: [T990000, NOPE]\n    source_system"))
    d = write_pack(regions, "990000", "1", {"coding.yaml": text, "map.csv": MAP_HEADER + GOOD})
    part, problems = load_coding(d, regions.parent)
    assert problems == []  # no provenance known yet: nothing to say
    _, problems = merge_chain([part], known_sources={"T990000"})
    [p] = problems
    assert (p.code, p.line, p.col) == ("E-CODING-SOURCE", 8, 21) and "NOPE" in p.message


def test_two_item_files_of_one_pack_may_not_map_the_same_code(regions):
    items = "  - file: a.csv\n  - file: b.csv\n"
    p = _one(_problems(regions, {"coding.yaml": manifest(items=items),
                                 "a.csv": "medins_list_codg,med_list_codg\nL1,A1\n",
                                 "b.csv": "medins_list_codg,med_list_codg\nX0,A2\nl1,A2\n"}), "E-CODING-CONFLICT")
    assert p.file.endswith("b.csv") and p.line == 3 and "a.csv:2" in p.message


def test_coding_validate_warns_about_national_codes_missing_from_the_catalogue(regions):
    write_pack(regions, "990000", "1", {"coding.yaml": manifest(items="  - file: items.csv\n"),
                                        "items.csv": "medins_list_codg,med_list_codg\nL1,NOSUCH1\n"})
    res = CliRunner().invoke(main, ["coding", "validate", str(regions)])
    assert res.exit_code == 0, res.output   # a warning, not an error
    assert "items.csv:2:1: warning W-CODING-CATALOGUE: national code NOSUCH1" in res.output
