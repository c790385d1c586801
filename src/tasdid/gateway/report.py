"""The back office's daily settlement report as pure functions: its chart (server-rendered SVG, nothing to fetch
and no script: the pages' CSP allows neither) and its CSV export (safe to open in a spreadsheet)."""

import csv
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal

from django.utils.formats import number_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .selectors import ReportLine

STATUS_LABELS = {
    "captured": gettext_lazy("remises"),
    "authorized": gettext_lazy("autorisées, en attente de remise"),
    "voided": gettext_lazy("annulées"),
    "declined": gettext_lazy("refusées"),
    "failed": gettext_lazy("échouées"),
    "processing": gettext_lazy("en cours"),
    "refunded": gettext_lazy("remboursements"),
}
STATUS_COLOURS = {
    "captured": "#1b7f3b", "authorized": "#2f6db5", "voided": "#7a7a7a", "declined": "#b3261e",
    "failed": "#8c4a00", "processing": "#5c4d9a", "refunded": "#a0356b",
}

# A spreadsheet reads a cell starting with one of these as a formula (CSV injection, OWASP): such a cell is
# written after a quote, which the spreadsheet shows as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "|", "%")


def money(amount: Decimal) -> str:
    return f"{amount:.2f}"


def bar_chart(lines: Sequence[ReportLine], *, title: str) -> SafeString:
    """A horizontal bar per status, its length the amount, labelled with the count and the amount in dirhams
    (written as the page's language writes numbers)."""
    row, label_width, bar_width, value_width, top = 34, 250, 360, 190, 40
    width = label_width + bar_width + value_width
    height = top + row * len(lines) + 10
    largest = max((line.total for line in lines), default=Decimal("0")) or Decimal("1")
    bars = []
    for i, line in enumerate(lines):
        y = top + i * row
        length = int(bar_width * line.total / largest) if line.total else 0
        bars.append((
            y + 21, capfirst(STATUS_LABELS[line.status]),
            label_width, y + 6, max(length, 2 if line.count else 0), STATUS_COLOURS[line.status], line.status,
            STATUS_LABELS[line.status], line.count, number_format(line.total, 2),
            label_width + max(length, 2) + 8, y + 21,
            _("%(count)s · %(amount)s DH") % {"count": line.count, "amount": number_format(line.total, 2)},
        ))
    body = format_html_join(
        "\n",
        '<text x="0" y="{}" font-size="14" fill="#222">{}</text>'
        '<rect x="{}" y="{}" width="{}" height="22" fill="{}" data-status="{}">'
        "<title>{} : {} · {} DH</title></rect>"
        '<text x="{}" y="{}" font-size="14" fill="#222">{}</text>',
        bars,
    )
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="settlement-chart" role="img" '
        'aria-labelledby="settlement-chart-title" viewBox="0 0 {} {}" width="100%" preserveAspectRatio="xMinYMin meet">'
        '<title id="settlement-chart-title">{}</title>'
        '<text x="0" y="20" font-size="16" font-weight="bold" fill="#222">{}</text>{}</svg>',
        width, height, title, title, body,
    )


def csv_cell(value: object) -> str:
    """A cell as written: text that a spreadsheet would run as a formula gets a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """The CSV document: a header row, then the rows, every cell escaped (amounts are written as 123.45)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([csv_cell(cell) for cell in header])
    for row in rows:
        writer.writerow([money(cell) if isinstance(cell, Decimal) else csv_cell(cell) for cell in row])
    return out.getvalue()
