"""One claim → one settlement: choose the packs, price the lines, run the layers, add up.

The treatment place's pack prices the lines (就医地目录); the insured place's pack runs the
fund layers (参保地政策). The parts are then added up so that the platform's identities hold by
construction: the person's share is what the funds do not pay, the account pays part of it.
"""
from __future__ import annotations

from ..model.claim import ClaimError, ClaimIn, FieldError, SettlementError
from ..model.settlement import FUND_FIELDS, Settlement, Warning_
from ..money import PPM
from ..packs.model import CompiledPack
from ..packs.registry import PackSelectionError, PackSet
from .layers import run_layers
from .lines import price_lines
from .plan import plan_for


class PackNotFound(SettlementError):
    code = "E-NO-PACK"


def select_pack(packs: PackSet, region: str, claim: ClaimIn, role: str) -> CompiledPack:
    try:
        pack = packs.select(region, claim.setl_date)
        if pack.info.select_by == "admission" and claim.adm_date and claim.adm_date != claim.setl_date:
            pack = packs.select(region, claim.adm_date)
    except PackSelectionError as e:
        field = "insuplc_admdvs" if role == "insured" else "mdtrtarea_admvs"
        raise PackNotFound(e.message, [FieldError(field, e.code, e.message)], code=e.code) from None
    return pack


def settle(packs: PackSet, claim: ClaimIn) -> Settlement:
    insured = select_pack(packs, claim.insuplc_admdvs, claim, "insured")
    treatment = insured if claim.mdtrtarea_admvs == claim.insuplc_admdvs else select_pack(
        packs, claim.mdtrtarea_admvs, claim, "treatment")
    iplan = plan_for(insured)
    tplan = iplan if treatment is insured else plan_for(treatment)
    warnings: list[Warning_] = []

    # the person's year-to-date figures, in the insured pack's units
    acc: dict[str, int] = {}
    declared = {a.acc.id for a in iplan.accumulators}
    bad: list[FieldError] = []
    for k, v in claim.accumulators.items():
        if k not in declared:
            warnings.append(Warning_("W-CLAIM-ACCUMULATOR", f"accumulator '{k}' is not used by {insured.key}; ignored",
                                     f"accumulators.{k}"))
            continue
        if k in iplan.count_accumulators:
            if v % 100:
                bad.append(FieldError(f"accumulators.{k}", "E-CLAIM-VALUE", f"'{k}' counts claims: a whole number"))
                continue
            v //= 100
        acc[k] = v
    if bad:
        raise ClaimError(bad[0].message, bad)

    # code conversion before anything reads a code: clinical-edition diagnoses to the edition the
    # restrictions are written in, hospital item codes to national ones (the treatment place's tables)
    coded = None
    diagnoses = claim.diagnoses
    conversions: list[dict] = []
    if claim.icd_edition or any(ln.med_list_codg is None for ln in claim.lines):
        from ..coding.claim import code_claim
        coded = code_claim(treatment.coding, claim)
        diagnoses = tuple(c.upper() for c in coded.diagnoses)
        for w in coded.warnings:
            warnings.append(Warning_("W-CODING", w))
        if coded.conversion is not None:
            for t in coded.conversion.translations:
                conversions.append({"kind": "diagnosis", "code": t.code, "from": t.source_system, "to": t.target_system,
                                    "targets": list(t.targets), "match": t.kind})
        for lc in coded.lines:
            if lc.mapping is not None:
                conversions.append({"kind": "item", "feedetl_sn": lc.feedetl_sn, "medins_list_codg":
                                    lc.mapping.local_code, "med_list_codg": lc.national_code,
                                    **({"reason": lc.reason} if lc.national_code is None else {})})

    cross_region = claim.insuplc_admdvs != claim.mdtrtarea_admvs
    counter = insured.admission_counter
    facts = {
        "insutype": claim.insutype, "psn_type": claim.psn_type, "insutype_retr_flag": claim.insutype_retr_flag,
        "cvlserv_flag": claim.cvlserv_flag, "med_type": claim.med_type, "age": claim.age, "gend": claim.gend,
        "hosp_lv": claim.hosp_lv, "community_flag": claim.community_flag,
        "admission_seq": acc.get(counter, 0) + 1 if counter else None,
        "cross_region": cross_region, "cross_province": claim.insuplc_admdvs[:2] != claim.mdtrtarea_admvs[:2],
        "filing_type": claim.filing_type,
        "diagnoses": diagnoses, "dise_codg": claim.dise_codg,
        "insuplc_admdvs": claim.insuplc_admdvs, "mdtrtarea_admvs": claim.mdtrtarea_admvs,
    }
    if cross_region and not claim.filing_type:
        # 急诊抢救 counts as filed (医保发〔2022〕22号); the pack's 'emergency' condition says what is one
        emergency = iplan.emergency is not None and iplan.emergency(facts, None)
        facts["filing_type"] = "emergency" if emergency else "unfiled"

    selfpay_pack = insured if insured.settings.selfpay_prop_from == "insured" else treatment
    date = claim.adm_date if treatment.info.select_by == "admission" and claim.adm_date else claim.setl_date
    mapped = coded is not None and any(lc.mapping is not None for lc in coded.lines)
    lines = price_lines(claim.lines, facts, tplan, selfpay_pack, date, coded if mapped else None)

    # smart audit (智能审核) with the treatment place's rules, on the priced lines
    hits: list = []
    if treatment.audit is not None:
        if mapped:
            from ..coding.claim import with_national_codes
            hits = apply_audit(treatment.audit, with_national_codes(claim, coded), facts, lines, warnings)
        else:
            hits = apply_audit(treatment.audit, claim, facts, lines, warnings)

    medfee = fulamt = overlmt = pre = inscp = 0
    for lr in lines:
        medfee += lr.line.amount
        fulamt += lr.fulamt
        overlmt += lr.overlmt
        pre += lr.pre
        inscp += lr.inscp
        if lr.review:
            warnings.append(Warning_("W-LINE-REVIEW", f"line {lr.line.feedetl_sn}: a restriction needs human review",
                                     f"feedetail[{lr.line.index}]"))

    layers = run_layers(iplan, facts, inscp, pre, acc)
    if not layers:
        warnings.append(Warning_("W-NO-LAYER", f"no fund layer of {insured.key} applies to this claim (insutype "
                                 f"{claim.insutype}, med_type {claim.med_type}): the funds pay nothing"))
    funds = dict.fromkeys(FUND_FIELDS, 0)
    act_dedc = None
    pool_prop = 0
    for r in layers:
        funds[r.layer.setl_field] += r.pay
        if act_dedc is None and r.layer.deductible is not None and not r.shared_from:
            act_dedc = r.deductible
        if r.layer.setl_field == "hifp_pay" and not pool_prop and r.segments:
            pool_prop = r.segments[-1].ratio
    fund_sum = sum(funds.values())
    hosp_part = 0
    psn_part = medfee - fund_sum - hosp_part

    # personal account
    acct_pay = 0
    acct_fpt = None
    balc = claim.balc
    pa = insured.personal_account
    if pa is not None and claim.acct_used_flag == "1" and balc and iplan.account_when(facts, None):
        acct_fpt = pa.fund_pay_type
        borne_pre = max(0, min(pre, psn_part - fulamt - overlmt))
        inscp_self = max(0, psn_part - fulamt - overlmt - borne_pre)
        parts = {"fulamt_ownpay_amt": fulamt, "overlmt_selfpay": overlmt, "preselfpay_amt": borne_pre,
                 "inscp_self": inscp_self}
        allowed = sum(parts[c] for c in pa.covers)
        acct_pay = min(allowed, balc, psn_part)
    balc_after = balc - acct_pay if balc is not None else None

    # accumulators after this claim
    by_id = {r.layer.id: r for r in layers}
    after = dict(acc)
    for ap in iplan.accumulators:
        a = ap.acc
        if not ap.when(facts, None):
            after.setdefault(a.id, acc.get(a.id, 0))
            continue
        if a.adds == "inscp_scp_amt":
            add = inscp
        elif a.adds == "medfee_sumamt":
            add = medfee
        elif a.adds == "count":
            add = 1
        elif a.adds == "paid_by":
            add = sum(by_id[lid].pay for lid in a.layers if lid in by_id)
        elif a.adds == "deductible_of":
            add = sum(by_id[lid].deductible for lid in a.layers if lid in by_id)
        elif a.adds == "base_of":
            add = sum(by_id[lid].base for lid in a.layers if lid in by_id)
        else:  # above_deductible_of
            add = sum(by_id[lid].base - by_id[lid].deductible - by_id[lid].prior_selfpay
                      for lid in a.layers if lid in by_id)
        after[a.id] = acc.get(a.id, 0) + add

    return Settlement(
        claim=claim, insured=insured, treatment=treatment, facts=facts, lines=lines, layers=layers,
        medfee_sumamt=medfee, fulamt_ownpay_amt=fulamt, overlmt_selfpay=overlmt, preselfpay_amt=pre,
        inscp_scp_amt=inscp, act_pay_dedc=act_dedc or 0, funds=funds, fund_pay_sumamt=fund_sum,
        psn_part_amt=psn_part, acct_pay=acct_pay, psn_cash_pay=psn_part - acct_pay, hosp_part_amt=hosp_part,
        balc=balc_after, acct_fund_pay_type=acct_fpt, pool_prop=pool_prop, accumulators_before=acc,
        accumulators_after=after, count_accumulators=iplan.count_accumulators, warnings=warnings,
        conversions=conversions, audit_hits=hits)


class AuditRejected(SettlementError):
    code = "E-AUDIT-REJECTED"


def apply_audit(rules, claim: ClaimIn, facts: dict, lines: list, warnings: list) -> list:
    """Run the audit rules and act on their hits: a rejected line becomes 全自费 with the rule as its
    reason; a rejected claim is refused whole (with every hit); a warning is a warning."""
    from ..audit import audit as run_audit
    from .lines import AUDIT_REJECTED, Reason, line_facts
    by_sn = {lr.line.feedetl_sn: lr for lr in lines}
    hits = run_audit(rules, claim, facts, claim.history,
                     line_facts=lambda ln: line_facts(ln, by_sn[ln.feedetl_sn].entry))
    if not hits:
        return hits
    refused = [h for h in hits if h.action == "reject_claim"]
    if refused:
        errs = [FieldError(f"feedetail[{by_sn[sn].line.index}]" if sn in by_sn else "feedetail", h.rule_id,
                           h.message + (f" ({h.ref.label()})" if h.ref is not None else ""))
                for h in refused for sn in (h.lines or ("",))]
        raise AuditRejected(f"the claim is refused by {len(refused)} audit rule(s): "
                            + "; ".join(f"{h.rule_id} {h.message}" for h in refused[:3]), errs)
    for h in hits:
        where = ", ".join(h.lines)
        if h.action == "reject_line":
            for sn in h.lines:
                lr = by_sn.get(sn)
                if lr is None:
                    continue
                lr.fulamt, lr.overlmt, lr.pre, lr.inscp = lr.line.amount, 0, 0, 0
                lr.selfpay_ppm = PPM
                lr.reasons.append(Reason(AUDIT_REJECTED, lr.entry, arg=h))
        else:
            warnings.append(Warning_("W-AUDIT", f"{h.rule_id}: {h.message}" + (f" (lines {where})" if where else "")
                                     + (f" — {h.ref.label()}" if h.ref is not None else "")))
    return hits
