"""The biller's printable documents (the monthly bill, the payment receipt) as PDF, with WeasyPrint.

Nothing is fetched while rendering: the HTML is a string, the stylesheets local files read here, fonts the
system's, and the URL fetcher allows no protocol (no network, no file:). The costly part of a render that does
not depend on the document (WeasyPrint's font configuration, the parsed stylesheets) is kept per thread, so
that a worker pays it once.
"""

import threading
from collections.abc import Sequence
from pathlib import Path

from django.template.loader import render_to_string
from django.utils import translation

from .selectors.bills import BillDocument

BILL_TEMPLATE = "billing/bill/pdf.html"
BILL_STYLESHEET = Path(__file__).resolve().parent / "templates" / "billing" / "bill" / "bill.css"

_local = threading.local()


class _Renderer:
    """One thread's WeasyPrint state: its font configuration and the stylesheets parsed with it."""

    def __init__(self):
        import weasyprint  # heavy: loaded on the first PDF only
        from weasyprint.text.fonts import FontConfiguration

        self.weasyprint = weasyprint
        self.fetcher = weasyprint.URLFetcher(allowed_protocols=frozenset())
        self.font_config = FontConfiguration()
        self.stylesheets: dict[Path, tuple[int, object]] = {}

    def stylesheet(self, path: Path):
        """``path`` parsed once, and again only when the file changes (its modification time)."""
        mtime = path.stat().st_mtime_ns
        cached = self.stylesheets.get(path)
        if cached is None or cached[0] != mtime:
            css = self.weasyprint.CSS(string=path.read_text("utf-8"), url_fetcher=self.fetcher,
                                      font_config=self.font_config)
            cached = self.stylesheets[path] = (mtime, css)
        return cached[1]

    def pdf(self, html: str, stylesheets: Sequence[Path]) -> bytes:
        document = self.weasyprint.HTML(string=html, url_fetcher=self.fetcher)
        return document.write_pdf(stylesheets=[self.stylesheet(path) for path in stylesheets],
                                  font_config=self.font_config)


def _renderer() -> _Renderer:
    renderer = getattr(_local, "renderer", None)
    if renderer is None:
        renderer = _local.renderer = _Renderer()
    return renderer


def render_pdf(*, html: str, stylesheets: Sequence[Path] = ()) -> bytes:
    """The PDF (A4) of ``html`` with the given local stylesheets; it fetches nothing else, from neither the
    network nor the disk."""
    return _renderer().pdf(html, stylesheets)


def bill_html(bill: BillDocument, *, language: str) -> str:
    """The bill's HTML in ``language`` ("fr", "ar", "en"): labels, month names and direction."""
    with translation.override(language):
        return render_to_string(BILL_TEMPLATE, {"bill": bill})


def bill_pdf(bill: BillDocument, *, language: str) -> bytes:
    """The bill as a PDF in ``language``, shaped like the guide's sample bill."""
    return render_pdf(html=bill_html(bill, language=language), stylesheets=[BILL_STYLESHEET])
