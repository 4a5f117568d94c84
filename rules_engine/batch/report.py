"""The impact report a person would rather look at: one HTML page, charts embedded as PNG.

No server, no JavaScript, no files beside it: the page can be mailed or archived as it is. Charts
are drawn with matplotlib's Agg backend; their labels are codes (med_type 21, hospital level 3)
because a CJK font may be missing where the report is made — the tables beside them carry the
Chinese names, which every browser shows.
"""
from __future__ import annotations

import base64
import html
import io
from decimal import Decimal
from typing import Any

import numpy as np


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, Decimal):
        return f"{v:,.2f}"
    if isinstance(v, float):
        return f"{v:+.2f} %"
    if isinstance(v, (int, np.integer)):
        return f"{v:,}"
    return html.escape(str(v))


def charts(rep: dict) -> dict[str, str]:
    """name → data URI of a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out: dict[str, str] = {}
    blue, orange, green, red = "#4C72B0", "#DD8452", "#55A868", "#C44E52"

    rows = rep.get("by_fund_pay_type") or []
    if rows:
        fig, ax = plt.subplots(figsize=(6.4, 3.2))
        x = np.arange(len(rows))
        ax.bar(x - 0.2, [float(r["base"]) / 1e4 for r in rows], 0.4, label="base", color=blue)
        ax.bar(x + 0.2, [float(r["reform"]) / 1e4 for r in rows], 0.4, label="reform", color=orange)
        ax.set_xticks(x, [r["fund_pay_type"] for r in rows])
        ax.set_ylabel("10k yuan")
        ax.set_title("Fund payments by fund_pay_type")
        ax.legend()
        out["funds"] = _png(fig)

    for g, title in (("med_type", "Change in fund payments by med_type"),
                     ("hosp_lv", "Change by hospital level (hosp_lv)"),
                     ("amount_band", "Change by claim amount (medfee_sumamt, yuan)"),
                     ("person_type", "Change by person type")):
        rows = rep.get("by", {}).get(g) or []
        if not rows:
            continue
        fig, ax = plt.subplots(figsize=(6.4, 3.0))
        vals = [float(r["fund_delta"]) / 1e4 for r in rows]
        ax.bar(range(len(rows)), vals, color=[green if v >= 0 else red for v in vals])
        ax.set_xticks(range(len(rows)), [str(r["key"]) for r in rows], rotation=20 if g == "person_type" else 0)
        ax.axhline(0, color="#444", linewidth=0.8)
        ax.set_ylabel("Δ fund, 10k yuan")
        ax.set_title(title)
        out[g] = _png(fig)

    d = rep.get("_person_deltas")
    if d is not None and len(d) and (d != 0).any():
        nz = d[d != 0] / 100.0
        fig, ax = plt.subplots(figsize=(6.4, 3.0))
        lo, hi = np.percentile(nz, [1, 99])
        ax.hist(np.clip(nz, lo, hi), bins=50, color=blue)
        ax.set_xlabel("Δ personal share over the period, yuan (1st–99th percentile)")
        ax.set_ylabel("people")
        ax.set_title(f"People affected: {int((d < 0).sum()):,} pay less, {int((d > 0).sum()):,} pay more")
        out["people"] = _png(fig)
    return out


def _table(rows: list[dict], cols: list[tuple[str, str]]) -> str:
    if not rows:
        return "<p class=muted>none</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h in cols)
    body = "".join("<tr>" + "".join(f"<td class={'num' if isinstance(r.get(k), (int, float, Decimal)) else 'txt'}>"
                                     f"{_fmt(r.get(k))}</td>" for k, _ in cols) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(rep: dict) -> str:
    img = charts(rep)
    e = html.escape
    parts = [f"""<!doctype html><html lang=zh><head><meta charset=utf-8>
<title>Impact: {e(rep['reform']['name'] or rep['reform']['pack'])}</title>
<style>
body{{font-family:system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;max-width:1000px;margin:2em auto;
color:#222;padding:0 1em}} h1{{font-size:1.5em}} h2{{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}}
table{{border-collapse:collapse;margin:.5em 0;font-size:.9em}} td,th{{padding:.25em .6em;border-bottom:1px solid #eee}}
th{{text-align:left;background:#f6f6f6}} td.num{{text-align:right;font-variant-numeric:tabular-nums}}
.summary li{{margin:.3em 0}} .muted{{color:#888}} img{{max-width:100%}} .grid{{display:grid;
grid-template-columns:1fr 1fr;gap:1em}} code{{background:#f4f4f4;padding:0 .25em}}
</style></head><body>
<h1>Impact of {e(rep['reform']['name'] or 'the reform')}</h1>
<p>Region <b>{e(rep['region'])}</b> · base <code>{e(rep['base']['pack'])}</code> · reform
<code>{e(rep['reform']['pack'])}</code></p>
<ul class=summary>{''.join(f'<li>{e(s)}</li>' for s in rep['summary'])}</ul>"""]
    ch = rep["reform"].get("changes") or []
    if ch:
        parts.append("<h2>What the reform changes</h2>" + _table(ch, [("file", "file"), ("path", "path"),
                                                                      ("op", "change"), ("value", "value")]))
    parts.append("<h2>Fund totals</h2>")
    if "funds" in img:
        parts.append(f"<img alt='fund totals' src='{img['funds']}'>")
    parts.append(_table(rep["by_fund_pay_type"], [("fund_pay_type", "fund_pay_type"), ("name", "基金"),
                                                  ("base", "base"), ("reform", "reform"), ("delta", "Δ"),
                                                  ("pct", "Δ %")]))
    parts.append(_table(rep["totals"], [("field", "field"), ("base", "base"), ("reform", "reform"),
                                        ("delta", "Δ"), ("pct", "Δ %")]))
    parts.append("<h2>Where the change falls</h2><div class=grid>")
    for g in ("med_type", "hosp_lv", "amount_band", "person_type"):
        if g in img:
            parts.append(f"<img alt='{g}' src='{img[g]}'>")
    parts.append("</div>")
    titles = {"med_type": "by med_type 医疗类别", "hosp_lv": "by hospital level 医院等级",
              "amount_band": "by claim amount (yuan)", "person_type": "by person type 人员类别"}
    for g, rows in rep["by"].items():
        parts.append(f"<h3>{e(titles[g])}</h3>" + _table(rows, [
            ("key", g), ("name", "name"), ("claims", "claims"), ("changed", "changed"), ("fund_base", "fund base"),
            ("fund_reform", "fund reform"), ("fund_delta", "Δ fund"), ("psn_delta", "Δ personal"), ("pct", "Δ %")]))
    p = rep["people"]
    parts.append("<h2>People</h2>")
    if "people" in img:
        parts.append(f"<img alt='people' src='{img['people']}'>")
    parts.append(_table([
        {"what": "pay less", "people": p["pay_less"], "total": p["less_total"], "median": p["less_median"],
         "p90": p["less_p90"], "max": p["less_max"]},
        {"what": "pay more", "people": p["pay_more"], "total": p["more_total"], "median": p["more_median"],
         "p90": p["more_p90"], "max": p["more_max"]},
        {"what": "unchanged", "people": p["unchanged"]}],
        [("what", ""), ("people", "people"), ("total", "total Δ yuan"), ("median", "median"),
         ("p90", "90th pct (further from 0)"), ("max", "largest")]))
    parts.append("<h2>Largest changes — claims</h2>" + _table(rep["largest_claims"], [
        ("mdtrt_id", "mdtrt_id"), ("psn_no", "psn_no"), ("setl_time", "setl_time"), ("med_type", "med_type"),
        ("hosp_lv", "hosp_lv"), ("medfee", "medfee"), ("fund_base", "fund base"), ("fund_reform", "fund reform"),
        ("delta", "Δ")]))
    parts.append("<h2>Largest changes — people</h2>" + _table(rep["largest_people"], [
        ("psn_no", "psn_no"), ("claims", "claims"), ("person_type", "type"), ("psn_delta", "Δ personal share"),
        ("fund_delta", "Δ fund")]))
    parts.append(f"<p class=muted>{rep['claims']:,} claims, {rep['lines']:,} fee lines; "
                 f"{rep['verified_claims']:,} claims re-settled by the per-claim path and found equal; "
                 f"{rep['fallback_claims']:,} settled by the per-claim path. Amounts in yuan, exact to the fen.</p>"
                 "</body></html>")
    return "\n".join(parts)
