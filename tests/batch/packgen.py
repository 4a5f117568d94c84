"""Random packs and claim histories for the batch ⇔ per-claim differential tests (hypothesis).

The packs exercise what the batch path re-implements: every base kind, deductibles per claim, per
year (accumulator) and shared, bands with a position accumulator on a gross or net basis, case
picks, every ratio adjustment, cross-region cuts of each kind, claim and yearly caps, the admission
counter, personal accounts, restrictions (met, unmet, review, not encoded), catalogue entries with
ceilings, own self-pay ratios, validity windows, prefix entries, and the three settings. Claims
span two years and two versions of the insured pack (sometimes switching mid-year), three
treatment places (home, a district without a pack, another province), and a few claims that the
batch path hands to the per-claim path.

The treatment places' packs carry random smart-audit rules (audit/rules.yaml) of every kind —
conditions on claim and line facts, 限定诊断, counts per day / N days / claim / admission,
duplicate charges by day / hours / claim / admission, exclusive groups, courses by span or
prd_days with and without gaps — with every action, and the claims trip them: a few codes per
claim (so they repeat), lines with and without `fee_ocur_time` (a date, a clock time) over
one-day and multi-day visits, prd_days present or not.
"""
from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import yaml
from hypothesis import strategies as st

INSURED = "510000"
DISTRICT = "510105"
OTHER = "520000"
FUNDS = [("310100", "hifp_pay"), ("330100", "hifob_pay"), ("390200", "hifmi_pay"), ("320100", "cvlserv_pay"),
         ("610100", "maf_pay"), ("999997", "oth_pay")]
CODES = ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7"]
ICD = ["J18.900", "J10.100", "I10.X00", "E11.900", "C34.900"]


def ratio(draw, lo=0, hi=100) -> float:
    return draw(st.integers(lo, hi)) / 100


def amount(draw, lo, hi) -> float | int:
    v = draw(st.integers(lo, hi))
    return v if draw(st.booleans()) else v + draw(st.integers(0, 99)) / 100


@st.composite
def claim_condition(draw, counter: bool, depth: int = 0):
    opts = ["is", "hosp_lv", "age", "diag", "cross", "filing", "gend", "psn", "dise", "insutype", "not", "all",
            "any", "community"]
    if counter:
        opts.append("adm")
    k = draw(st.sampled_from(opts if depth < 2 else opts[:10]))
    if k == "is":
        return {"is": draw(st.sampled_from(["inpatient", "outpatient", "employee", "resident", "retired",
                                            "in_service"]))}
    if k == "hosp_lv":
        return {"hosp_lv": draw(st.lists(st.sampled_from(["1", "2", "3", "9"]), min_size=1, max_size=3, unique=True))}
    if k == "age":
        op = draw(st.sampled_from(["gte", "lt", "between"]))
        if op == "between":
            a = draw(st.integers(0, 80))
            return {"age": {"between": [a, a + draw(st.integers(0, 30))]}}
        return {"age": {op: draw(st.integers(0, 90))}}
    if k == "diag":
        return {"diagnoses": {"icd": draw(st.lists(st.sampled_from(["J18", "J09-J11", "I10", "C00-C97", "E11.900"]),
                                                   min_size=1, max_size=2, unique=True))}}
    if k == "cross":
        return {draw(st.sampled_from(["cross_region", "cross_province"])): draw(st.booleans())}
    if k == "filing":
        return {"filing_type": draw(st.lists(st.sampled_from(["referral", "emergency", "unfiled", "resettled_retiree"]),
                                             min_size=1, max_size=2, unique=True))}
    if k == "gend":
        return {"gend": draw(st.sampled_from(["1", "2"]))}
    if k == "psn":
        op = draw(st.sampled_from(["eq", "ne", "exists"]))
        return {"psn_type": {op: "11" if op != "exists" else draw(st.booleans())}}
    if k == "dise":
        return {"dise_codg": {"exists": draw(st.booleans())}}
    if k == "insutype":
        return {"insutype": {"in": ["310", "390"]} if draw(st.booleans()) else {"ne": "390"}}
    if k == "community":
        return {"community_flag": "1"}
    if k == "adm":
        return {"admission_seq": {draw(st.sampled_from(["gte", "lte"])): draw(st.integers(1, 3))}}
    if k == "not":
        return {"not": draw(claim_condition(counter, depth + 1))}
    items = draw(st.lists(claim_condition(counter, depth + 1), min_size=1, max_size=3))
    return {k: items}


@st.composite
def line_condition(draw):
    k = draw(st.sampled_from(["hosp_lv", "age", "appr", "chrg", "cnt", "pric", "kind", "days", "diag", "code",
                              "amount", "local"]))
    if k == "hosp_lv":
        return {"hosp_lv": ["2", "3"]}
    if k == "age":
        return {"age": {"gte": 5, "lt": 60}}
    if k == "appr":
        return {"hosp_appr_flag": "1"}
    if k == "chrg":
        return {"med_chrgitm_type": draw(st.sampled_from(["09", "11"]))}
    if k == "cnt":
        return {"cnt": {"lte": draw(st.integers(1, 5)) + draw(st.sampled_from([0, 0.5]))}}
    if k == "pric":
        return {"pric": {"gt": draw(st.integers(1, 300)) + draw(st.sampled_from([0, 0.25]))}}
    if k == "kind":
        return {"list_kind": draw(st.sampled_from(["drug", "service"]))}
    if k == "days":
        return {"prd_days": {"exists": draw(st.booleans())}}
    if k == "diag":
        return {"diagnoses": {"icd": ["J09-J11", "J18"]}}
    if k == "code":
        return {"med_list_codg": {"prefix": ["C1", "PX"]}}
    if k == "amount":
        return {"det_item_fee_sumamt": {"gte": draw(st.integers(1, 500))}}
    return {"medins_list_codg": {"exists": draw(st.booleans())}}


@st.composite
def bands(draw):
    n = draw(st.integers(1, 3))
    edges = sorted(draw(st.lists(st.integers(1, 600), min_size=n, max_size=n, unique=True)))
    out = []
    for i in range(n):
        b = {"ratio": ratio(draw, 0, 100)}
        last = i == n - 1
        if not last or draw(st.integers(0, 4)) == 0:
            b = {"to": edges[i] * 100, **b}
        out.append(b)
    return out


@st.composite
def policy(draw):
    counter = draw(st.booleans())
    accs: list[dict] = []
    layers: list[dict] = []
    n_layers = draw(st.integers(1, 4))
    used_fields = draw(st.permutations(FUNDS))
    if counter:
        accs.append({"id": "admissions", "adds": "count", "when": {"is": "inpatient"}})
    for i in range(n_layers):
        lid = f"L{i}"
        fpt, field = used_fields[i % len(used_fields)]
        layer: dict = {"id": lid, "name": f"layer {i}", "fund_pay_type": fpt, "setl_field": field}
        if draw(st.integers(0, 3)):
            layer["when"] = draw(claim_condition(counter))
        # later layers pay on what earlier ones left (the validator refuses parallel layers above 100 %)
        layer["base"] = "inscp" if i == 0 else draw(st.sampled_from(["inscp_remaining", "policy_remaining"]))
        dk = draw(st.sampled_from(["none", "claim", "year", "shared"] if i else ["none", "claim", "year"]))
        ded_max = 0
        if dk == "claim":
            if draw(st.booleans()):
                a = amount(draw, 0, 3000)
                layer["deductible"] = {"period": "claim", "amount": a}
                ded_max = a
            else:
                vals = [amount(draw, 0, 3000) for _ in range(3)]
                layer["deductible"] = {"period": "claim", "amount": {
                    "cases": [{"when": draw(claim_condition(counter)), "value": vals[0]},
                              {"when": draw(claim_condition(counter)), "value": vals[1]}], "else": vals[2]}}
                ded_max = max(vals)
        elif dk == "year":
            a = amount(draw, 0, 3000)
            accs.append({"id": f"{lid}_dedc", "adds": {"deductible_of": lid}})
            layer["deductible"] = {"period": "year", "accumulator": f"{lid}_dedc", "amount": a}
            ded_max = a
        elif dk == "shared":
            earlier = [x["id"] for x in layers if "deductible" in x]
            if earlier:
                layer["deductible"] = {"shared_with": draw(st.sampled_from(earlier))}
        bd: dict = {"basis": draw(st.sampled_from(["gross", "net"]))}
        pos = draw(st.sampled_from(["none", "inscp", "base_of", "above", "medfee", "paid"]))
        if pos != "none":
            adds = {"inscp": "inscp_scp_amt", "base_of": {"base_of": lid}, "above": {"above_deductible_of": lid},
                    "medfee": "medfee_sumamt", "paid": {"paid_by": [lid]}}[pos]
            acc = {"id": f"{lid}_pos", "adds": adds}
            if draw(st.booleans()):
                acc["when"] = draw(claim_condition(counter))
            accs.append(acc)
            bd["position"] = f"{lid}_pos"
        if draw(st.booleans()):
            bd["ratios"] = draw(bands())
        else:
            bd["ratios"] = {"cases": [{"when": draw(claim_condition(counter)), "value": draw(bands())}
                                      for _ in range(draw(st.integers(1, 2)))], "else": draw(bands())}
        layer["bands"] = bd
        adj = []
        for _ in range(draw(st.integers(0, 2))):
            kind = draw(st.sampled_from(["self_share_times", "ratio_minus", "ratio_times", "ratio_plus"]))
            a = {"when": draw(claim_condition(counter)), kind: ratio(draw, 0, 100)}
            adj.append(a)
        if adj:
            layer["adjust"] = adj
        caps = []
        for _ in range(draw(st.integers(0, 2))):
            lo = int(ded_max) + 1
            if draw(st.booleans()):
                accs.append({"id": f"{lid}_cap{len(caps)}", "adds": {"paid_by": [lid]}})
                caps.append({"amount": amount(draw, lo, lo + 40000), "period": "year",
                             "accumulator": f"{lid}_cap{len(caps)}"})
            else:
                caps.append({"amount": amount(draw, lo, lo + 40000), "period": "claim"})
        if caps:
            layer["caps"] = caps
        layers.append(layer)
    doc: dict = {
        "conditions": {"inpatient": {"med_type": ["21", "24"]}, "outpatient": {"med_type": ["11", "13"]},
                       "employee": {"insutype": "310"}, "resident": {"insutype": "390"},
                       "retired": {"insutype_retr_flag": "1"}, "in_service": {"not": {"insutype_retr_flag": "1"}},
                       "emergency": {"med_type": ["13", "24"]}},
        "accumulators": accs, "layers": layers}
    if counter:
        doc["admission_counter"] = "admissions"
    if draw(st.booleans()):
        filings = ["resettled_retiree", "long_term_resident", "resident_worker", "referral", "emergency",
                   "other_temporary", "unfiled"]
        groups = draw(st.lists(st.sampled_from(filings), min_size=1, max_size=7, unique=True))
        cuts = []
        while groups:
            k = draw(st.integers(1, len(groups)))
            g, groups = groups[:k], groups[k:]
            kind = draw(st.sampled_from(["none", "ratio_minus", "ratio_times", "prior_selfpay"]))
            cuts.append({"filing": g, kind: True if kind == "none" else ratio(draw, 0, 30 if kind != "ratio_times" else 100)})
        cr = {"scope": draw(st.sampled_from(["province", "any"])), "cuts": cuts}
        if draw(st.booleans()):
            cr["layers"] = draw(st.lists(st.sampled_from([x["id"] for x in layers]), min_size=1, unique=True))
        doc["cross_region"] = cr
    if draw(st.booleans()):
        pa_ = {"fund_pay_type": "310200"}
        if draw(st.booleans()):
            pa_["when"] = draw(claim_condition(counter))
        if draw(st.booleans()):
            pa_["covers"] = draw(st.lists(st.sampled_from(["inscp_self", "preselfpay_amt", "overlmt_selfpay",
                                                            "fulamt_ownpay_amt"]), min_size=1, unique=True))
        doc["personal_account"] = pa_
    return doc


@st.composite
def catalogue(draw):
    rids = ["R0", "R1", "R2", "R3"]
    entries = []
    for code in CODES:
        e: dict = {"code": code, "name": f"item {code}", "category": draw(st.sampled_from(["甲", "乙", "乙", "丙"])),
                   "med_chrgitm_type": draw(st.sampled_from(["09", "11", "03"]))}
        if draw(st.integers(0, 3)) == 0:
            e["selfpay_prop"] = ratio(draw, 0, 40)
        if draw(st.integers(0, 2)) == 0:
            e["pric_uplmt_amt"] = draw(st.integers(1, 300)) + draw(st.sampled_from([0, 0.5, 0.123456]))
        if draw(st.integers(0, 2)) == 0:
            e["restrictions"] = draw(st.lists(st.sampled_from(rids), min_size=1, max_size=2, unique=True))
        w = draw(st.sampled_from(["none", "from", "to", "split"]))
        if w == "from":
            e["valid_from"] = "2023-07-01"
        elif w == "to":
            e["valid_to"] = "2024-03-31"
        elif w == "split":
            e["valid_to"] = "2023-12-31"
            e2 = dict(e, valid_from="2024-01-01", category=draw(st.sampled_from(["甲", "乙"])))
            e2.pop("valid_to")
            entries.append(e)
            entries.append(e2)
            continue
        entries.append(e)
    entries.append({"code": "PX", "name": "a generic name", "category": draw(st.sampled_from(["甲", "乙"])),
                    "match": "prefix"})
    if draw(st.booleans()):
        entries.append({"code": "PX1", "name": "a longer prefix", "category": "丙", "match": "prefix"})
    restrictions = []
    for rid in rids:
        r: dict = {"id": rid, "text": f"限 {rid}"}
        if draw(st.integers(0, 4)):
            r["when"] = draw(line_condition()) if draw(st.booleans()) else {"all": [draw(line_condition()),
                                                                                   draw(line_condition())]}
            if draw(st.booleans()):
                r["on_fail"] = "review"
        restrictions.append(r)
    return entries, restrictions


@st.composite
def settings(draw):
    return {"rounding": draw(st.sampled_from(["half_up", "half_even", "down"])),
            "line_order": draw(st.sampled_from(["ceiling_first", "selfpay_first"])),
            "selfpay_prop_from": draw(st.sampled_from(["treatment", "insured"]))}


@st.composite
def world(draw):
    """Packs (as files) and a population of claims."""
    switch = draw(st.sampled_from(["2024-01-01", "2023-07-01"]))
    packs = {}
    v1_to = _day_before(switch)
    for region, ver, frm, to in ((INSURED, "2023.1", "2023-01-01", v1_to), (INSURED, "2024.1", switch, None),
                                 (OTHER, "2023.1", "2023-01-01", None)):
        entries, restrictions = draw(catalogue())
        meta = {"region": region, "name": f"test {region}", "version": ver, "effective": {"from": frm},
                "select_by": draw(st.sampled_from(["settlement", "settlement", "admission"])),
                "provenance": [{"id": "T", "title": "test", "confidence": "sample"}],
                "settings": draw(settings()),
                "catalogue_defaults": {"selfpay_prop": {"乙": ratio(draw, 0, 30),
                                                        **({"甲": ratio(draw, 0, 5)} if draw(st.booleans()) else {})}},
                "catalogues": [{"file": "catalogue/items.yaml", "kind": draw(st.sampled_from(["drug", "service"]))}]}
        if to:
            meta["effective"]["to"] = to
        pol = draw(policy()) if region == INSURED else {"conditions": {"emergency": {"med_type": ["13"]}}}
        packs[f"{region}/{ver}"] = {
            "pack.yaml": meta, "policy.yaml": pol, "restrictions.yaml": {"restrictions": restrictions},
            "catalogue/items.yaml": {"kind": meta["catalogues"][0]["kind"], "entries": entries}}
        aud = draw(audit_doc(region != INSURED))
        if aud is not None:
            packs[f"{region}/{ver}"]["audit/rules.yaml"] = aud
    claims = draw(population())
    return packs, claims


def _date(y: int, m: int, d: int):
    import datetime as dt
    return dt.date(y, m, d)


def _td(days: int):
    import datetime as dt
    return dt.timedelta(days=days)


def _day_before(d: str) -> str:
    import datetime as dt
    return (dt.date.fromisoformat(d) - dt.timedelta(days=1)).isoformat()


@st.composite
def population(draw):
    out = []
    n_people = draw(st.integers(1, 5))
    k = 0
    for p in range(n_people):
        employee = draw(st.booleans())
        for _ in range(draw(st.integers(1, 6))):
            out.append(draw(one_claim(f"P{p}", f"M{k}", employee)))
            k += 1
    if draw(st.booleans()):
        out.append(draw(one_claim(None, f"M{k}", True)))  # no psn_no: a person of its own
    return out


@st.composite
def one_claim(draw, psn: str | None, mid: str, employee: bool):
    year = draw(st.sampled_from([2023, 2024]))
    month = draw(st.integers(1, 12))
    day = draw(st.integers(1, 28))
    med = draw(st.sampled_from(["11", "13", "21", "24", "14"]))
    c: dict = {"mdtrt_id": mid, "insuplc_admdvs": INSURED,
               "mdtrtarea_admvs": draw(st.sampled_from([INSURED, INSURED, INSURED, DISTRICT, OTHER])),
               "insutype": "310" if employee else "390", "med_type": med,
               "setl_time": f"{year}-{month:02d}-{day:02d} {draw(st.integers(0, 23)):02d}:{draw(st.sampled_from([0, 30])):02d}:00",
               "hosp_lv": draw(st.sampled_from(["1", "2", "3", "9"])), "age": draw(st.integers(0, 95))}
    if psn:
        c["psn_no"] = psn
    for f, vals in (("insutype_retr_flag", ["0", "1"]), ("gend", ["1", "2"]), ("community_flag", ["0", "1"]),
                    ("psn_type", ["11", "12"]), ("acct_used_flag", ["0", "1", "1"]),
                    ("filing_type", ["referral", "emergency", "resettled_retiree", "unfiled"]),
                    ("dise_codg", ["M00100"])):
        if draw(st.booleans()):
            c[f] = draw(st.sampled_from(vals))
    if draw(st.integers(0, 2)) == 0:
        c["balc"] = Decimal(draw(st.integers(0, 300000))) / 100
    if draw(st.booleans()):
        c["diseinfo"] = [{"diag_code": x} for x in draw(st.lists(st.sampled_from(ICD), min_size=1, max_size=2))]
    if med in ("21", "24") and draw(st.booleans()):
        c["begntime"] = f"{year - draw(st.integers(0, 1))}-{draw(st.integers(1, 12)):02d}-{draw(st.integers(1, 28)):02d}"
    elif draw(st.integers(0, 3)) == 0:   # a visit of a few days (or one, begntime on the settlement date)
        start = max(_date(year, month, day) - _td(draw(st.integers(0, 4))), _date(year, 1, 1))
        c["begntime"] = start.isoformat() + (" 08:00:00" if draw(st.booleans()) else "")
    rare = draw(st.integers(0, 39))  # 0 and the bounds are drawn often: the rare cases use 17 and 23
    if rare == 17:
        c["icd_edition"] = "clinical-2.0"
    palette = draw(st.lists(st.sampled_from(CODES + ["PX12", "PX7", "PX13", "NOPE"]), min_size=1, max_size=4,
                            unique=True))   # few codes a claim: audit rules see them repeat
    timed = draw(st.sampled_from(["none", "some", "all"]))
    lines = []
    for j in range(draw(st.integers(1, 7))):
        code = draw(st.sampled_from(palette))
        if draw(st.integers(0, 39)) == 17:
            code = None
        cnt = Decimal(draw(st.integers(0, 80))) / 4
        pric = Decimal(draw(st.integers(1, 40000))) / 100
        amt = (cnt * pric).quantize(Decimal("0.01"))
        ln: dict = {"feedetl_sn": str(j + 1), "cnt": cnt, "pric": pric, "det_item_fee_sumamt": amt}
        if code is not None:
            ln["med_list_codg"] = code
        else:
            ln["medins_list_codg"] = "LOCAL1"  # a local code only: the per-claim path prices it
        if draw(st.booleans()):
            ln["hosp_appr_flag"] = draw(st.sampled_from(["0", "1"]))
        if draw(st.booleans()):
            ln["prd_days"] = draw(st.sampled_from([1, 2, 3, 7, 30, Decimal("2.5"), Decimal("0.0001")]))
        if timed == "all" or (timed == "some" and draw(st.booleans())):
            d = _date(year, month, day) - _td(draw(st.integers(0, 5)))
            ln["fee_ocur_time"] = d.isoformat() + (
                f" {draw(st.sampled_from([0, 1, 8, 13, 23])):02d}:{draw(st.sampled_from([0, 30, 59])):02d}:00"
                if draw(st.booleans()) else "")
        lines.append(ln)
    if rare == 29 and draw(st.integers(0, 3)) == 0:   # refused by both paths (a located input error here)
        lines[0]["fee_ocur_time"] = draw(st.sampled_from(["2023-02-30", "yesterday", "2023-01-01 25:00:00"]))
    c["feedetail"] = lines
    if rare == 23:
        c["accumulators"] = {"L0_dedc": Decimal("100.00")}
    return c


AUDIT_ITEMS = CODES + ["PX12", "PX7", "prefix:PX", "prefix:PX1", "prefix:C", "prefix:C1"]
AUDIT_NAMED = {"inpatient": {"med_type": ["21", "24"]}, "outpatient": {"med_type": ["11", "13"]},
               "employee": {"insutype": "310"}, "resident": {"insutype": "390"},
               "retired": {"insutype_retr_flag": "1"}, "in_service": {"not": {"insutype_retr_flag": "1"}}}


@st.composite
def audit_rule(draw, i: int) -> dict:
    """One audit rule of any kind and action, on the codes the claims use."""
    kind = draw(st.sampled_from(["item_condition", "diagnosis_required", "quantity_limit", "duplicate_charge",
                                 "exclusive", "course_limit"]))
    if kind == "exclusive":   # a big group of separate items: two of them often meet in a claim
        items = draw(st.lists(st.sampled_from(CODES + ["PX12", "PX7", "prefix:PX1"]), min_size=3, max_size=8,
                              unique=True))
    else:
        items = draw(st.lists(st.sampled_from(AUDIT_ITEMS), min_size=1, max_size=4, unique=True))
    # reject_claim refuses the whole population's comparison (the per-claim path raises): drawn rarely
    action = draw(st.sampled_from(["warn"] * 6 + ["reject_line"] * 13 + ["reject_claim"]))
    r: dict = {"id": f"A{i}", "kind": kind, "items": items, "action": action}
    if kind == "item_condition":
        c = draw(st.sampled_from(["claim", "line", "both"]))
        if c == "claim":
            r["when"] = draw(claim_condition(True))
        elif c == "line":
            r["when"] = draw(line_condition())
        else:
            r["when"] = {"any": [draw(claim_condition(True)), draw(line_condition())]}
    elif kind == "diagnosis_required":
        r["icd"] = draw(st.lists(st.sampled_from(["J18", "J09-J11", "I10", "C00-C97", "E11.900"]), min_size=1,
                                 max_size=2, unique=True))
    elif kind == "quantity_limit":
        r["per"] = draw(st.sampled_from(["day", "days", "claim", "admission"]))
        r["max"] = draw(st.sampled_from([0.25, 1, 2, 3, 5.5, 12]))
        if r["per"] == "days":
            r["days"] = draw(st.integers(2, 9))
    elif kind == "duplicate_charge":
        r["main"] = draw(st.lists(st.sampled_from(AUDIT_ITEMS), min_size=1, max_size=3, unique=True))
        r["within"] = draw(st.sampled_from(["day", "hours", "claim", "admission"]))
        if r["within"] == "hours":
            r["hours"] = draw(st.integers(1, 30))
    elif kind == "exclusive":
        r["within"] = draw(st.sampled_from(["day", "claim", "admission"]))
    else:   # short courses (1 day often): the claims' few days and prd_days run past them
        r["days"] = draw(st.sampled_from([1, 1, 2, 3, 5]))
        r["basis"] = draw(st.sampled_from(["span", "prd_days"]))
        r["scope"] = draw(st.sampled_from(["claim", "admission", "history"]))
        if draw(st.booleans()):
            r["gap_days"] = draw(st.integers(1, 5))
    return r


@st.composite
def audit_doc(draw, own_conditions: bool) -> dict | None:
    """An audit/rules.yaml (None: the pack has no audit folder). `own_conditions`: the pack's policy
    does not define the named conditions the rules use, so the audit file does."""
    if not draw(st.integers(0, 5)):
        return None
    doc: dict = {"rules": [draw(audit_rule(i)) for i in range(draw(st.integers(1, 7)))]}
    if own_conditions:
        doc = {"conditions": dict(AUDIT_NAMED), **doc}
    return doc


def write_packs(root: Path, packs: dict) -> None:
    for key, files in packs.items():
        d = root / key
        for name, data in files.items():
            p = d / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def dedent(s: str) -> str:
    return textwrap.dedent(s).lstrip("\n")
