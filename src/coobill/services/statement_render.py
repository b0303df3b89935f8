"""A statement (services/statements.py) as a printable HTML page or a PDF, in English or
Chinese, its amounts in the ledger's currency. The PDF is drawn by ReportLab: Helvetica for
Latin text, Adobe's STSong-Light (a CID font every PDF reader has, so nothing is embedded) when
the text needs Chinese or symbols Helvetica lacks."""

from __future__ import annotations

import io
from html import escape

from coobill.errors import BadRequest
from coobill.formatting import duration, money
from coobill.services.statements import ADJUSTMENTS, CALLS, FEES, KINDS, RECHARGES, Statement

LANGUAGES = ("en", "zh")

_EN = {
    "title": "Statement", "extension": "Extension", "period": "Period",
    "currency": "Currency", "opening": "Opening balance", "closing": "Closing balance",
    RECHARGES: "Recharges", CALLS: "Calls", FEES: "Fees", ADJUSTMENTS: "Adjustments",
    "date": "Date", "item": "Item", "detail": "Detail", "amount": "Amount",
    "balance": "Balance", "none": "No movements this month.",
    "line." + RECHARGES: "Recharge", "line." + CALLS: "Call", "line." + FEES: "Fee",
    "line." + ADJUSTMENTS: "Adjustment", "count": "{n} item(s)", "range": "{first} to {last}",
}
_ZH = {
    "title": "对账单", "extension": "分机", "period": "期间", "currency": "货币",
    "opening": "期初余额", "closing": "期末余额", RECHARGES: "充值", CALLS: "通话",
    FEES: "周期费用", ADJUSTMENTS: "调整", "date": "日期", "item": "项目", "detail": "摘要",
    "amount": "金额", "balance": "余额", "none": "本月无变动。",
    "line." + RECHARGES: "充值", "line." + CALLS: "通话", "line." + FEES: "周期费用",
    "line." + ADJUSTMENTS: "调整", "count": "{n} 笔", "range": "{first} 至 {last}",
}
LABELS = {"en": _EN, "zh": _ZH}


def check_language(language: str | None) -> str:
    language = language or "en"
    if language not in LANGUAGES:
        raise BadRequest("language: must be en or zh", field="language")
    return language


def _rows(st: Statement, words: dict[str, str]) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for line in st.lines:
        detail = line.description
        if line.kind == CALLS and line.seconds is not None:
            detail = f"{detail} · {duration(line.seconds)}"
        rows.append((line.at.strftime("%Y-%m-%d %H:%M"), words.get("line." + line.kind, line.kind),
                     detail, money(line.amount, st.currency_symbol),
                     money(line.balance, st.currency_symbol)))
    return rows


def _summary(st: Statement, words: dict[str, str]) -> list[tuple[str, str, str]]:
    kinds = [(words[kind], words["count"].format(n=st.count(kind)),
              money(st.total(kind), st.currency_symbol)) for kind in KINDS]
    return [(words["opening"], "", money(st.opening, st.currency_symbol)), *kinds,
            (words["closing"], "", money(st.closing, st.currency_symbol))]


def _range(st: Statement, words: dict[str, str]) -> str:
    return words["range"].format(first=st.first_day.isoformat(), last=st.last_day.isoformat())


CSS = """
body { font-family: system-ui, "Noto Sans", "PingFang SC", "Microsoft YaHei", sans-serif;
       color: #111; margin: 2rem auto; max-width: 48rem; }
h1 { font-size: 1.5rem; margin: 0 0 .5rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0 0 1rem; }
dt { color: #555; } dd { margin: 0; }
table { border-collapse: collapse; width: 100%; margin: 0 0 1.5rem; }
th, td { border-bottom: 1px solid #ccc; padding: .3rem .5rem; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td { font-weight: 600; border-top: 2px solid #111; }
@media print { body { margin: 0; max-width: none; } @page { margin: 15mm; } }
"""


def to_html(st: Statement, language: str = "en", *, stylesheet: str | None = None) -> str:
    """A page that prints as it shows: its styles inline (a file that needs no other), or
    linked from `stylesheet` (the portal's, whose policy refuses inline styles)."""
    words = LABELS[check_language(language)]
    e = escape
    head = (f"<dl><dt>{e(words['extension'])}</dt><dd>{e(st.name or st.extension)} "
            f"[{e(st.extension)}]</dd><dt>{e(words['period'])}</dt><dd>{e(_range(st, words))}"
            f"</dd><dt>{e(words['currency'])}</dt><dd>{e(st.currency)} "
            f"({e(st.currency_symbol)})</dd></dl>")
    closing = len(KINDS) + 1
    summary = "".join(
        f"<tr class=\"{'total' if i in (0, closing) else 'kind'}\"><td>{e(a)}</td>"
        f"<td>{e(b)}</td><td class=\"num\">{e(c)}</td></tr>"
        for i, (a, b, c) in enumerate(_summary(st, words)))
    lines = "".join(
        f"<tr class=\"{e(line.kind)}\"><td>{e(d)}</td><td>{e(k)}</td><td>{e(x)}</td>"
        f"<td class=\"num\">{e(a)}</td><td class=\"num\">{e(b)}</td></tr>"
        for line, (d, k, x, a, b) in zip(st.lines, _rows(st, words), strict=True)
    ) or f"<tr><td colspan=\"5\">{e(words['none'])}</td></tr>"
    title = f"{words['title']} {st.extension} {st.month}"
    style = (f"<link rel=\"stylesheet\" href=\"{e(stylesheet)}\">" if stylesheet
             else f"<style>{CSS}</style>")
    return (
        f"<!doctype html>\n<html lang=\"{'zh-CN' if language == 'zh' else 'en'}\"><head>"
        f"<meta charset=\"utf-8\"><title>{e(title)}</title>{style}</head><body>"
        f"<h1>{e(words['title'])} · {e(st.month)}</h1>{head}"
        f"<table class=\"summary\"><tbody>{summary}</tbody></table>"
        f"<table class=\"lines\"><thead><tr><th>{e(words['date'])}</th><th>{e(words['item'])}"
        f"</th><th>{e(words['detail'])}</th><th class=\"num\">{e(words['amount'])}</th>"
        f"<th class=\"num\">{e(words['balance'])}</th></tr></thead><tbody>{lines}</tbody>"
        f"</table></body></html>\n"
    )


def to_pdf(st: Statement, language: str = "en") -> bytes:
    """The statement as an A4 PDF."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    words = LABELS[check_language(language)]
    summary, rows = _summary(st, words), _rows(st, words)
    texts = [st.name, st.currency_symbol, *(c for r in rows for c in r), *words.values()]
    font = _font_for(texts)
    styles = getSampleStyleSheet()
    title = styles["Title"].clone("statement-title", fontName=font, alignment=0)
    body = styles["Normal"].clone("statement-body", fontName=font)
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm,
                            topMargin=15 * mm, bottomMargin=15 * mm, invariant=1,
                            title=f"{words['title']} {st.extension} {st.month}",
                            author="coobill")
    head = [[words["extension"], f"{st.name or st.extension} [{st.extension}]"],
            [words["period"], _range(st, words)],
            [words["currency"], f"{st.currency} ({st.currency_symbol})"]]
    grid = [(words["date"], words["item"], words["detail"], words["amount"], words["balance"]),
            *rows] if rows else [(words["none"], "", "", "", "")]
    base = [("FONTNAME", (0, 0), (-1, -1), font), ("FONTSIZE", (0, 0), (-1, -1), 9),
            ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.grey)]
    doc.build([
        Paragraph(f"{escape(words['title'])} · {escape(st.month)}", title),
        Table(head, hAlign="LEFT", style=TableStyle([("FONTNAME", (0, 0), (-1, -1), font)])),
        Spacer(1, 6 * mm),
        Table(summary, hAlign="LEFT", colWidths=(60 * mm, 40 * mm, 40 * mm), style=TableStyle(
            [*base, ("ALIGN", (2, 0), (2, -1), "RIGHT"),
             ("LINEABOVE", (0, -1), (-1, -1), 1, colors.black)])),
        Spacer(1, 6 * mm),
        Table(grid, repeatRows=1, colWidths=(30 * mm, 25 * mm, 55 * mm, 35 * mm, 35 * mm),
              style=TableStyle([*base, ("ALIGN", (3, 0), (4, -1), "RIGHT"),
                                ("LINEBELOW", (0, 0), (-1, 0), 1, colors.black)])),
        Paragraph("", body),
    ])
    return out.getvalue()


def _font_for(texts: list[str]) -> str:
    """Helvetica while every character is in its encoding (Windows-1252), else STSong-Light."""
    try:
        "".join(texts).encode("cp1252")
        return "Helvetica"
    except UnicodeEncodeError:
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.cidfonts import UnicodeCIDFont

        if "STSong-Light" not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
        return "STSong-Light"
