"""Linking catalogue rows (generic name + dosage form) to product codes."""
from __future__ import annotations

from rules_engine.catalogue.link import CodeRow, LinkRow, link, product_variants, row_names

CONFIG = {
    "forms": {"口服常释剂型": ["{name}片", "{name}胶囊"], "注射剂": ["{name}注射液", "注射用{name}"]},
    "form_words": ["丸", "颗粒", "片", "胶囊", "口服液", "注射液"],
    "salt_prefixes": ["盐酸"], "salt_suffixes": ["钠"],
    "prefix_entries": {"X": 14, "Z": 11},
}


def rows(*specs):
    return [LinkRow(i, i + 2, n, f, g) for i, (n, f, g) in enumerate(specs)]


def test_row_names_cover_forms_alternatives_and_aliases():
    assert set(row_names("感冒清热颗粒(片、胶囊)", "", {}, CONFIG["form_words"])) >= {"感冒清热颗粒", "感冒清热片",
                                                                                  "感冒清热胶囊"}
    assert set(row_names("依西美坦", "口服常释剂型", CONFIG["forms"], [])) >= {"依西美坦片", "依西美坦胶囊"}
    assert "艾司奥美拉唑注射液" in row_names("埃索美拉唑(艾司奥美拉唑)", "注射剂", CONFIG["forms"], [])
    # a qualifier stays with the name and moves after the form word, the way products are named
    names = row_names("复方氨基酸(15AA)", "注射剂", CONFIG["forms"], [])
    assert "复方氨基酸注射液(15AA)" in names and "复方氨基酸注射液" not in names


def test_salt_words_are_tried_only_when_the_name_matches_nothing():
    first, second = product_variants("注射用盐酸川芎嗪", CONFIG["form_words"], ["盐酸"], ["钠"])
    assert first == ["注射用盐酸川芎嗪"] and "注射用川芎嗪" in second


def test_link_by_form_template_and_category_guard():
    rs = rows(("依西美坦", "口服常释剂型", "XL02B"), ("依西美坦", "注射剂", "XL02B"))
    codes = [CodeRow("XL02BGY096A001010100107", "依西美坦片", 2),
             CodeRow("XL02BGY096B002010100001", "依西美坦注射液", 3),
             CodeRow("XA01BGY096A001010100002", "依西美坦片", 4)]   # same words, another class
    res = link(rs, codes, CONFIG)
    assert [c.code for c, _ in res.codes[0]] == ["XL02BGY096A001010100107"]
    assert [c.code for c, _ in res.codes[1]] == ["XL02BGY096B002010100001"]
    assert [c.code for c, _ in res.group_mismatch] == ["XA01BGY096A001010100002"]


def test_ambiguous_product_links_to_no_row():
    rs = rows(("甲药", "口服常释剂型", "X"), ("甲药片", "", "X"), ("甲药(乙药)", "口服常释剂型", "X"))
    res = link(rs, [CodeRow("XA01AAA001A001010100001", "乙药片", 2)], CONFIG)
    assert res.codes == {2: res.codes[2]}  # only the row naming 乙药 links
    res = link(rows(("甲药", "口服常释剂型", "X"), ("甲药", "口服常释剂型", "X")),
               [CodeRow("XA01AAA001A001010100001", "甲药片", 2)], CONFIG)
    assert not res.codes and len(res.ambiguous) == 1 and set(res.unlinked_rows) == {0, 1}


def test_a_row_naming_the_product_wins_over_a_form_template():
    rs = rows(("克霉唑", "栓剂", "XG01"), ("克霉唑阴道膨胀栓", "", "XG01AF"))
    cfg = dict(CONFIG, forms={"栓剂": ["{name}阴道膨胀栓"]})
    res = link(rs, [CodeRow("XG01AFK079D009010103649", "克霉唑阴道膨胀栓", 2)], cfg)
    assert list(res.codes) == [1] and res.resolved_by_name == 1


def test_prefix_entry_only_when_every_product_under_it_links_to_the_row():
    rs = rows(("依西美坦", "口服常释剂型", "XL02B"), ("阿那曲唑", "口服常释剂型", "XL02B"))
    codes = [CodeRow("XL02BGY096A001010100107", "依西美坦片", 2), CodeRow("XL02BGY096A001010200107", "依西美坦片", 3),
             CodeRow("XL02BGA001A001010100001", "阿那曲唑片", 4), CodeRow("XL02BGA001A001010100002", "某未知片", 5)]
    res = link(rs, codes, CONFIG)
    assert [p for p, _ in res.prefixes[0]] == ["XL02BGY096A001"]
    assert 1 not in res.prefixes and res.prefix_blocked == 1   # 某未知片 shares 阿那曲唑片's prefix
