#!/usr/bin/env python3
"""Rebuild the national baseline's audit rules from the NHSA 「两库」 rule libraries.

    .venv/bin/python tools/rebuild_audit.py                  # writes regions/000000/2024.1/audit/
    .venv/bin/python tools/rebuild_audit.py --check          # exit 1 when the shipped files differ
    .venv/bin/python tools/rebuild_audit.py --data DIR --out DIR

Reads ../shared/reference/data/ (README §2): nhsa_liangku_drug_rules.csv (901 generic-level drug
rules), nhsa_liangku_drug_rule_codes.csv (their 13,827 product codes),
nhsa_liangku_service_item_rules.csv (891 service-item rules) and
nhsa_liangku_service_item_duplicate_charge.csv (900 main/sub pairs, batch 7). Writes:

- audit.yaml                the named conditions the tables use (the documented settings below)
- drug-rules.csv            one rule per drug rule row      (LKD-<row>)
- drug-rule-items.csv       rule,item: the product codes    (one per line, so next year diffs)
- service-rules.csv         one rule per service rule row   (LKS-<row>); 主次操作 groups (LKS-MS<n>)
- duplicate-charge.csv      one rule per pair               (LKR-<序号>)
- IMPORT-REPORT.md          what became what; every source row imported or rejected with its reason

Every rule names its source file, batch, rule type and row (`ref_*` columns): a hit names them.
The output is deterministic (no dates, sorted as the sources are), so a test can assert that the
shipped files are exactly what this tool writes.

Settings (where the source says only a word, the reading is ours — and written down here)
------------------------------------------------------------------------------------------
- 儿童 → age < CHILD_UNDER = 18. The source says only 儿童. 未成年人保护法 第二条 counts everyone
  under 18 as a minor, and the catalogue restriction parser of this project refuses a 儿童
  restriction from 18 (its widest reading); paediatric practice often draws the line at 14, but
  refusing a 14–17-year-old a children's product would refuse lines that may be right, so the
  audit rejects from 18 — the widest reading, as the restriction parser does.
- 新生儿 → age < 1. A newborn is ≤ 28 days old; a claim carries whole years, so age 0 is the
  closest it can test (a 2-month-old passes: a warn-free miss, never a false reject).
- 婴幼儿 → age < 3 (婴儿 under 1, 幼儿 1–3).
- 参保人年龄超出法定就业年龄 (职业功能训练) → warn unless 16 ≤ age < 60 (men, or sex not given)
  or 16 ≤ age < 55 (women): retirement ages differ by occupation (女工人 50) and rise from 2025,
  so this only warns.
- 工伤 → insutype 410; 生育 → insutype 510 or med_type 51 / 52 (生育门诊 / 生育住院: maternity care
  billed under the merged employee insurance).
- 住院 → the pack's named condition `inpatient` (policy.yaml), so a region's definition applies.
- 二级 → hosp_lv 2 or 3 (限二级及以上); 三级 → hosp_lv 3.
- 支付疗程 N天 → course_limit over calendar days from the first billing; "单次住院" in the text →
  the course is one admission, otherwise the person's history, a pause of more than
  COURSE_GAP_DAYS = 30 days starting a new course. Courses are inferred: these rules warn.
- 限定频次 N 日/天 → at most N per day; 24 小时 → at most 24 (hours) per day.
- 周期超频次 N per K days → at most N in any K consecutive days.
- 重复收费 单日 → within a day; 同一小时 → less than 1 hour apart; 6小时 → less than 6 hours apart;
  单次就诊 → within the admission (the claim, plus history lines of the same mdtrt_id).
- 主次操作 → a warning when two or more items of one surgical group are billed on one day (the
  second and later must be discounted; the discount is not money the engine computes).
- Actions: sex, age, insurance type, inpatient, institution level, frequency and duplicate charges
  reject the line (reject_line); working age, courses and 主次操作 warn.
"""
from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "reference" / "data"
OUT = ROOT / "regions" / "000000" / "2024.1" / "audit"
SOURCE = "NHSA-LIANGKU-RULES"

CHILD_UNDER = 18
NEWBORN_UNDER = 1
INFANT_UNDER = 3
WORK_FROM, WORK_TO_MEN, WORK_TO_WOMEN = 16, 60, 55
COURSE_GAP_DAYS = 30

DRUG_RULES = "nhsa_liangku_drug_rules.csv"
DRUG_CODES = "nhsa_liangku_drug_rule_codes.csv"
SERVICE_RULES = "nhsa_liangku_service_item_rules.csv"
DUPLICATES = "nhsa_liangku_service_item_duplicate_charge.csv"

CODE_15 = re.compile(r"^[0-9]{15}$")
DRUG_CODE = re.compile(r"^[XZ][0-9A-Z]{19}([0-9A-Z]{3})?$")

AUDIT_YAML = f"""# yaml-language-server: $schema=../../../../schemas/audit.schema.json
# Named conditions of the national baseline's audit rules (the CSV tables beside this file name
# them in their 'when' column). Written by tools/rebuild_audit.py — edit the tool, not this file.
# Each reading below is a documented setting of that tool (its docstring says why); a region may
# redefine any of them in its own audit/ folder (merged by name, the child's wins).
conditions:
  lk_not_male:              # 限女性: the claim does not say the patient is male
    not: {{gend: "1"}}
  lk_not_female:            # 限男性: the claim does not say the patient is female
    not: {{gend: "2"}}
  lk_child:                 # 儿童: under {CHILD_UNDER} (未成年人保护法 第二条; the widest reading)
    age: {{lt: {CHILD_UNDER}}}
  lk_newborn:               # 新生儿 (≤ 28 days): the claim's age is whole years, so age 0
    age: {{lt: {NEWBORN_UNDER}}}
  lk_infant:                # 婴幼儿: under {INFANT_UNDER}
    age: {{lt: {INFANT_UNDER}}}
  lk_working_age:           # 法定就业年龄: {WORK_FROM} to retirement ({WORK_TO_MEN} men, {WORK_TO_WOMEN} women; warn only)
    any:
      - {{gend: "2", age: {{gte: {WORK_FROM}, lt: {WORK_TO_WOMEN}}}}}
      - {{not: {{gend: "2"}}, age: {{gte: {WORK_FROM}, lt: {WORK_TO_MEN}}}}}
  lk_work_injury:           # 限工伤保险
    insutype: "410"
  lk_maternity:             # 限生育保险: insutype 510, or 生育门诊 / 生育住院 under the merged insurance
    any:
      - {{insutype: "510"}}
      - {{med_type: ["51", "52"]}}
  lk_level2:                # 限二级及以上医疗机构
    hosp_lv: ["2", "3"]
  lk_level3:                # 限三级医疗机构
    hosp_lv: "3"
"""

DRUG_COLS = ["id", "kind", "name", "when", "days", "basis", "scope", "gap_days", "action", "message", "source",
             "ref_file", "ref_batch", "ref_rule_type", "ref_row"]
SERVICE_COLS = ["id", "kind", "name", "items", "when", "max", "per", "days", "within", "basis", "scope", "gap_days",
                "action", "message", "source", "ref_file", "ref_batch", "ref_rule_type", "ref_row", "ref_rows"]
DUP_COLS = ["id", "kind", "name", "items", "main", "within", "hours", "action", "message", "source", "ref_file",
            "ref_batch", "ref_rule_type", "ref_seq", "ref_row"]


class Report:
    def __init__(self) -> None:
        self.made: Counter = Counter()          # (source, rule_type) → rules
        self.rows: Counter = Counter()          # (source, rule_type) → rows read
        self.rejected: list[tuple[str, int, str]] = []
        self.notes: list[tuple[str, int, str]] = []

    def reject(self, file: str, row: int, why: str) -> None:
        self.rejected.append((file, row, why))


def read(path: Path, columns: list[str], report: Report) -> list[tuple[int, dict]]:
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise SystemExit(f"{path}: missing columns {missing} (found {reader.fieldnames})")
        return [(i, {k: (v or "").strip() for k, v in r.items()}) for i, r in enumerate(reader, start=1)]


def _course_days(text: str) -> int | None:
    m = re.search(r"不超过(\d+)天|最多支付(\d+)天", text)
    if m:
        return int(m.group(1) or m.group(2))
    if re.search(r"不超过(一年|12个月)", text):
        return 365
    return None


def drug_rules(data: Path, report: Report) -> tuple[list[list], list[list]]:
    rows = read(data / DRUG_RULES, ["batch", "rule_type", "drug_generic_name", "limit_value", "description"], report)
    codes = read(data / DRUG_CODES, ["batch", "rule_type", "drug_generic_name", "seq", "drug_code"], report)
    by_rule: dict[tuple[str, str, str], list[tuple[int, str]]] = defaultdict(list)
    for i, r in codes:
        c = r["drug_code"]
        if not DRUG_CODE.match(c):
            report.reject(DRUG_CODES, i, f"'{c}' is not a 20/23-character 医保药品编码")
            continue
        by_rule[(r["batch"], r["rule_type"], r["drug_generic_name"])].append((i, c))
    out, items = [], []
    used_keys = set()
    for i, r in rows:
        rt, lv, name, desc = r["rule_type"], r["limit_value"], r["drug_generic_name"], r["description"]
        report.rows[(DRUG_RULES, rt)] += 1
        key = (r["batch"], rt, name)
        rid = f"LKD-{i:04d}"
        base = {"id": rid, "name": name, "source": SOURCE, "ref_file": DRUG_RULES, "ref_batch": r["batch"],
                "ref_rule_type": rt, "ref_row": i}
        rule = None
        if rt == "限定性别对象" and lv in ("男", "女"):
            rule = dict(base, kind="item_condition", when="lk_not_female" if lv == "男" else "lk_not_male",
                        action="reject_line", message=f"{name}：限{lv}性 / for {'men' if lv == '男' else 'women'} only")
        elif rt == "限定年龄对象" and lv == "儿童":
            rule = dict(base, kind="item_condition", when="lk_child", action="reject_line",
                        message=f"{name}：限儿童（{CHILD_UNDER}岁以下）/ children only (under {CHILD_UNDER})")
        elif rt == "限定保险类型" and lv in ("工伤", "生育"):
            rule = dict(base, kind="item_condition", when="lk_work_injury" if lv == "工伤" else "lk_maternity",
                        action="reject_line", message=f"{name}：限{lv}保险 / "
                        + ("work-injury insurance only" if lv == "工伤" else "maternity insurance only"))
        elif rt == "限定就医方式" and lv == "住院":
            rule = dict(base, kind="item_condition", when="inpatient", action="reject_line",
                        message=f"{name}：限住院 / inpatient only")
        elif rt == "限定机构等级" and lv in ("二级", "三级"):
            rule = dict(base, kind="item_condition", when="lk_level2" if lv == "二级" else "lk_level3",
                        action="reject_line", message=f"{name}：限{'二级及以上' if lv == '二级' else '三级'}医疗机构 / "
                        f"level-{'2 and above' if lv == '二级' else '3'} institutions only")
        elif rt == "限定支付疗程" and re.fullmatch(r"\d+天", lv):
            days = int(lv[:-1])
            said = _course_days(desc)
            if said is not None and said != days:
                report.notes.append((DRUG_RULES, i, f"{name}: the rule says {days} days, its text says {said}; "
                                     f"the rule's value {days} is used"))
            one_stay = "单次住院" in desc
            rule = dict(base, kind="course_limit", days=days, basis="span", scope="admission" if one_stay else "history",
                        gap_days="" if one_stay else COURSE_GAP_DAYS, action="warn",
                        message=f"{name}：{'单次住院' if one_stay else ''}支付不超过{days}天 / paid for at most {days} days"
                        + (" per admission" if one_stay else " per course"))
        if rule is None:
            report.reject(DRUG_RULES, i, f"rule type '{rt}' with limit '{lv}' is not one the tool reads")
            continue
        found = by_rule.get(key)
        if not found:
            report.reject(DRUG_RULES, i, f"no product codes for {name} in {DRUG_CODES}")
            continue
        used_keys.add(key)
        seen = set()
        for _, c in found:
            if c not in seen:
                seen.add(c)
                items.append([rid, c])
        out.append(rule)
        report.made[(DRUG_RULES, rt)] += 1
    for key, found in by_rule.items():
        if key not in used_keys:
            for ci, c in found:
                report.reject(DRUG_CODES, ci, f"code {c} belongs to {key[2]} ({key[0]} {key[1]}), which is no rule "
                              "of the tables")
    return [[r.get(c, "") for c in DRUG_COLS] for r in out], items


def service_rules(data: Path, report: Report) -> list[list]:
    rows = read(data / SERVICE_RULES, ["batch", "rule_type", "item_code", "item_name", "limit_value", "limit_unit",
                                       "description"], report)
    out = []
    groups: dict[str, list[tuple[int, dict]]] = {}
    for i, r in rows:
        rt, code, name, lv, unit, desc = (r["rule_type"], r["item_code"], r["item_name"], r["limit_value"],
                                          r["limit_unit"], r["description"])
        report.rows[(SERVICE_RULES, rt)] += 1
        if not CODE_15.match(code):
            report.reject(SERVICE_RULES, i, f"'{code}' is not a 15-digit national service item code")
            continue
        base = {"id": f"LKS-{i:04d}", "name": name, "items": code, "source": SOURCE, "ref_file": SERVICE_RULES,
                "ref_batch": r["batch"], "ref_rule_type": rt, "ref_row": i}
        rule = None
        if rt == "限定性别对象" and lv in ("男", "女"):
            rule = dict(base, kind="item_condition", when="lk_not_female" if lv == "男" else "lk_not_male",
                        action="reject_line", message=f"{name}：限{lv}性 / for {'men' if lv == '男' else 'women'} only")
        elif rt == "限定年龄对象" and lv in ("儿童", "新生儿", "婴幼儿"):
            cond, under, who = {"儿童": ("lk_child", CHILD_UNDER, "children"),
                                "新生儿": ("lk_newborn", NEWBORN_UNDER, "newborns"),
                                "婴幼儿": ("lk_infant", INFANT_UNDER, "infants and toddlers")}[lv]
            rule = dict(base, kind="item_condition", when=cond, action="reject_line",
                        message=f"{name}：限{lv}（{under}岁以下）/ {who} only (under {under})")
        elif rt == "限年龄" and "就业年龄" in desc:
            rule = dict(base, kind="item_condition", when="lk_working_age", action="warn",
                        message=f"{name}：限法定就业年龄 / working age only ({WORK_FROM} to retirement)")
        elif rt == "限定频次" and lv.isdigit() and unit in ("日", "天", "小时"):
            n = int(lv)
            if unit == "小时" and n != 24:
                report.reject(SERVICE_RULES, i, f"{n} 小时 is not a daily limit the tool reads")
                continue
            text = f"每日不超过{n}小时 / at most {n} hours per day" if unit == "小时" else f"每日限{n}次 / at most {n} per day"
            rule = dict(base, kind="quantity_limit", max=n, per="day", action="reject_line", message=f"{name}：{text}")
        elif rt == "周期超频次" and lv.isdigit() and re.fullmatch(r"per (\d+) days", unit):
            k = int(unit.split()[1])
            rule = dict(base, kind="quantity_limit", max=int(lv), per="days", days=k, action="reject_line",
                        message=f"{name}：每{k}天限{lv}次 / at most {lv} in {k} days")
        elif rt == "限支付疗程" and _course_days(desc) is not None:
            days = _course_days(desc)
            rule = dict(base, kind="course_limit", days=days, basis="span", scope="history", gap_days=COURSE_GAP_DAYS,
                        action="warn", message=f"{name}：支付不超过{days}天 / paid for at most {days} days per course")
        elif rt == "限定主次操作" and lv.endswith("组"):
            groups.setdefault(lv, []).append((i, r))
            report.made[(SERVICE_RULES, rt)] += 0
            continue
        if rule is None:
            report.reject(SERVICE_RULES, i, f"rule type '{rt}' with limit '{lv}' / unit '{unit}' is not one the tool reads")
            continue
        out.append(rule)
        report.made[(SERVICE_RULES, rt)] += 1
    for n, (group, members) in enumerate(groups.items(), start=1):
        codes = list(dict.fromkeys(r["item_code"] for _, r in members))
        out.append({"id": f"LKS-MS{n}", "kind": "exclusive", "name": group, "items": ";".join(codes), "within": "day",
                    "action": "warn", "source": SOURCE, "ref_file": SERVICE_RULES, "ref_batch": members[0][1]["batch"],
                    "ref_rule_type": "限定主次操作", "ref_row": members[0][0],
                    "ref_rows": ";".join(str(i) for i, _ in members),
                    "message": f"{group}：经同一切口的第二及以后手术应按规定折价计收 / second and later procedures of one "
                               "incision must be billed at a discount"})
        report.made[(SERVICE_RULES, "限定主次操作")] += 1
    return [[r.get(c, "") for c in SERVICE_COLS] for r in out]


WITHIN = {"单日": ("day", "", "同日", "on the same day"), "同一小时": ("hours", 1, "同一小时内", "within the hour"),
          "6小时": ("hours", 6, "6小时内", "within 6 hours"),
          "单次就诊": ("admission", "", "同次就诊", "in the same visit")}


def duplicate_rules(data: Path, report: Report) -> list[list]:
    rows = read(data / DUPLICATES, ["batch", "seq", "period", "main_item_code", "main_item_name", "sub_item_code",
                                    "sub_item_name", "note"], report)
    out = []
    seen: dict[tuple[str, str, str], int] = {}
    for i, r in rows:
        report.rows[(DUPLICATES, "重复收费")] += 1
        main, sub, period = r["main_item_code"], r["sub_item_code"], r["period"]
        if not CODE_15.match(main) or not CODE_15.match(sub):
            report.reject(DUPLICATES, i, f"'{main}' / '{sub}' is not a 15-digit national service item code")
            continue
        if main == sub:
            report.reject(DUPLICATES, i, f"main and sub item are the same code {main}")
            continue
        if period not in WITHIN:
            report.reject(DUPLICATES, i, f"period '{period}' is not one the tool reads")
            continue
        if not r["seq"].isdigit():
            report.reject(DUPLICATES, i, f"序号 '{r['seq']}' is not a number")
            continue
        if (main, sub, period) in seen:
            report.reject(DUPLICATES, i, f"repeats row {seen[(main, sub, period)]}")
            continue
        seen[(main, sub, period)] = i
        within, hours, zh, en = WITHIN[period]
        seq = int(r["seq"])
        note = f"（{r['note']}）" if r["note"] else ""
        out.append({"id": f"LKR-{seq:04d}", "kind": "duplicate_charge", "name": r["sub_item_name"], "items": sub,
                    "main": main, "within": within, "hours": hours, "action": "reject_line",
                    "message": f"{r['sub_item_name']}：{zh}已收{r['main_item_name']}{note}，不得另收 / included in "
                               f"{r['main_item_name']} billed {en}",
                    "source": SOURCE, "ref_file": DUPLICATES, "ref_batch": r["batch"], "ref_rule_type": "重复收费",
                    "ref_seq": seq, "ref_row": i})
        report.made[(DUPLICATES, "重复收费")] += 1
    return [[r.get(c, "") for c in DUP_COLS] for r in out]


def csv_text(header: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def report_text(report: Report, counts: dict[str, int]) -> str:
    lines = ["# Audit rules of the national baseline: import report", "",
             "Written by `tools/rebuild_audit.py` from `shared/reference/data/` (README §2: the NHSA 「两库」 batches "
             "1–8 as re-typed in jdzwq/MediModel@573b603d). Do not edit: rerun the tool. Every source row is counted "
             "below as a rule made (or a member of a 主次操作 group rule) or as rejected with its row and reason.", "",
             "| source file | rule type | rows read | rules made |", "|---|---|---:|---:|"]
    keys = sorted(set(report.rows) | set(report.made))
    for k in keys:
        lines.append(f"| {k[0]} | {k[1]} | {report.rows.get(k, 0):,} | {report.made.get(k, 0):,} |")
    lines += ["", "Files written: " + ", ".join(f"`{f}` ({n:,} rows)" for f, n in counts.items()) + ".", ""]
    lines += ["## Settings", "",
              f"- 儿童 → age < {CHILD_UNDER}; 新生儿 → age < {NEWBORN_UNDER}; 婴幼儿 → age < {INFANT_UNDER}; "
              f"法定就业年龄 → {WORK_FROM} ≤ age < {WORK_TO_MEN} (men, sex not given) / {WORK_TO_WOMEN} (women), warn only.",
              f"- 支付疗程: calendar days from the first billing; 单次住院 → one admission, otherwise the history with a "
              f"new course after a pause of more than {COURSE_GAP_DAYS} days; warn only.",
              "- Why each reading: the docstring of `tools/rebuild_audit.py` and docs/audit.md.", ""]
    lines += ["## Rejected rows", ""]
    if report.rejected:
        lines += [f"- {f} row {r}: {why}" for f, r, why in report.rejected]
    else:
        lines.append("None: every row became a rule (or part of a 主次操作 group rule).")
    lines += ["", "## Notes", ""]
    lines += [f"- {f} row {r}: {why}" for f, r, why in report.notes] or ["None."]
    return "\n".join(lines) + "\n"


def build(data: Path) -> dict[str, str]:
    report = Report()
    drugs, items = drug_rules(data, report)
    services = service_rules(data, report)
    dups = duplicate_rules(data, report)
    files = {
        "audit.yaml": AUDIT_YAML,
        "drug-rules.csv": csv_text(DRUG_COLS, drugs),
        "drug-rule-items.csv": csv_text(["rule", "item"], items),
        "service-rules.csv": csv_text(SERVICE_COLS, services),
        "duplicate-charge.csv": csv_text(DUP_COLS, dups),
    }
    counts = {"drug-rules.csv": len(drugs), "drug-rule-items.csv": len(items), "service-rules.csv": len(services),
              "duplicate-charge.csv": len(dups)}
    files["IMPORT-REPORT.md"] = report_text(report, counts)
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA, help="the reference data folder (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=OUT, help="the audit folder to write (default: %(default)s)")
    ap.add_argument("--check", action="store_true", help="compare with --out instead of writing; exit 1 on a difference")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"error: no reference data folder {args.data}", file=sys.stderr)
        return 2
    files = build(args.data)
    if args.check:
        differ = [n for n, text in files.items()
                  if not (args.out / n).is_file() or (args.out / n).read_bytes() != text.encode("utf-8")]
        extra = sorted(p.name for p in args.out.glob("*") if p.is_file() and p.name not in files) if args.out.is_dir() else []
        for n in differ:
            print(f"differs: {args.out / n}")
        for n in extra:
            print(f"not written by the tool: {args.out / n}")
        if differ or extra:
            return 1
        print(f"{args.out}: identical to a rebuild ({len(files)} files)")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for n, text in files.items():
        (args.out / n).write_bytes(text.encode("utf-8"))
    # the rules must load cleanly: check them with the engine's own loader
    sys.path.insert(0, str(ROOT))
    from rules_engine.audit import load_chain
    named = {"inpatient": None}
    from rules_engine.conditions.language import Cmp, Src
    named["inpatient"] = Cmp("med_type", "in", frozenset({"21", "23", "24", "28"}), Src("policy.yaml", 1, 1))
    rules, problems = load_chain([args.out.parent], ROOT, named=named)
    errors = [p for p in problems if p.severity == "error"]
    for p in problems[:20]:
        print(p.format(with_source=False), file=sys.stderr)
    print(f"wrote {len(files)} files to {args.out}: {len(rules):,} rules {dict(sorted(rules.by_kind().items()))}, "
          f"{len(errors)} error(s), {len(problems) - len(errors)} warning(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
