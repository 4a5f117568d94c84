"""The platform's catalogue downloads (1301 / 1305 / 1306): headerless tab-separated files read by position."""
from __future__ import annotations

import json


def tsv_line(width: int, cols: dict[int, str]) -> str:
    cells = [""] * width
    for k, v in cols.items():
        cells[k - 1] = v
    return "\t".join(cells)


def test_1301_drugs_with_class_and_restriction(tmp_path, pack, cli, h):
    lines = [tsv_line(92, {1: "XA01ABD075A002010100483", 4: "地喹氯铵", 11: "含片", 24: "0", 37: "2020-01-01 00:00:00",
                           38: "2099-12-31 00:00:00", 57: "限工伤保险。", 79: "1", 92: "乙类"}),
             tsv_line(92, {1: "XA01ABD075A002010100594", 4: "地喹氯铵", 11: "含片", 24: "0", 37: "20200101",
                           79: "0", 92: "乙类"})]          # vali_flag 0: a retired product, skipped and listed
    f = tmp_path / "1301.txt"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = cli("catalogue", "import", f, "--kind", "drug", "--region", "990009", "--into", pack, "--mapping",
            "nhsa-1301", "--report", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    text = h.read(pack / "catalogue" / "drugs.csv")
    assert "XA01ABD075A002010100483,地喹氯铵,乙,R1301-XA01ABD075A002010100483,2020-01-01,2099-12-31,09,含片" in text
    assert "0100594" not in text
    rep = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert rep["skipped"][0]["row"] == 2 and "79" in rep["skipped"][0]["reason"]


def test_1305_services_need_the_class_from_elsewhere(tmp_path, pack, cli, h):
    f = tmp_path / "1305.txt"
    f.write_text(tsv_line(16, {1: "001102000050000", 10: "住院诊查费", 7: "1", 12: "2021-01-01"}) + "\n",
                 encoding="utf-8")
    args = ("catalogue", "import", f, "--kind", "service", "--region", "990009", "--into", pack, "--mapping",
            "nhsa-1305")
    r = cli(*args)
    assert r.exit_code == 2 and "--set category" in r.output
    r = cli(*args, "--set", "category=甲")
    assert r.exit_code == 0, r.output
    assert "001102000050000,住院诊查费,甲,2021-01-01" in h.read(pack / "catalogue" / "services.csv")


def test_1306_consumables_short_line_is_reported(tmp_path, pack, cli, h):
    f = tmp_path / "1306.txt"
    f.write_text(tsv_line(71, {1: "C01010101001000000001", 2: "一次性使用输液器", 8: "0.7mm", 68: "1"}) + "\n"
                 + "C0101\t太短的一行\n", encoding="utf-8")
    r = cli("catalogue", "import", f, "--kind", "consumable", "--region", "990009", "--into", pack, "--mapping",
            "nhsa-1306", "--set", "category=乙", "--keep-going", "--report", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    text = h.read(pack / "catalogue" / "consumables.csv")
    assert "C01010101001000000001,一次性使用输液器,乙,规格：0.7mm" in text and "太短" not in text
    rej = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["rejected"]
    assert rej[0]["row"] == 2 and "has 2 columns" in rej[0]["reason"]
