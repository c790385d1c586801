"""Benchmark the biller's PDF documents: the monthly bill (the guide's sample) and the payment receipt (with its
verification code and QR code), each in French, Arabic and English, rendered as the site renders them (template,
then WeasyPrint with the process's fonts and parsed stylesheets, tasdid.billing.documents).

After a warm-up (the first render loads WeasyPrint and the fonts: printed apart), each document is rendered N
times in this process; the median, p95 and max wall time are printed, with the CPU time's median (less moved by
what else runs on the machine) and the PDF's size. The target is a median under 150 ms per document.

    .venv/bin/python bench/documents_bench.py              # 50 renders of each
    .venv/bin/python bench/documents_bench.py --renders 200
    .venv/bin/python bench/documents_bench.py --fresh        # without the reused fonts and stylesheets

Not a test: the figures depend on the machine and on what else runs on it (the load average is printed).
No database: the documents are built from plain data, the same dataclasses the selectors return.
"""

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from portal_probe import percentile  # noqa: E402

TARGET_MS = 150.0


def setup_django() -> None:
    os.environ.setdefault("TASDID_SANDBOX", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tasdid.settings")
    import logging

    import django

    django.setup()
    logging.disable(logging.INFO)  # WeasyPrint logs each step at INFO


def sample_bill():
    """The guide's sample bill: « Facture du mois de Juin 2017 », 186.00 + 99.00 = 285.00 DH TTC."""
    from tasdid.billing.selectors.bills import BillDocument, BillInvoice, BillItem, BillService

    d = Decimal
    july = (dt.date(2017, 7, 1), dt.date(2017, 7, 31))
    return BillDocument(
        number="100000001-201706", month=dt.date(2017, 6, 1), due_date=dt.date(2017, 7, 19),
        biller_name="Tasdid Télécom", client_number="100000001", customer_name="Mme Khadija Alaoui",
        customer_address=["12, rue Ibn Battouta", "20000 Casablanca", "Maroc"],
        services=[BillService("fixed", "05 22 00 00 01"), BillService("internet", "12 345 678")],
        has_fixed_line=True,
        invoices=[
            BillInvoice("0000111995072017", "fixed", "05 22 00 00 01", d("155.00"), d("31.00"), d("186.00"), False, [
                BillItem("Abonnement", "Ligne mixte illimité TT", *july, d("155.00"), False),
                BillItem("Options et services", "5 H tout temps Mobile", dt.date(2017, 6, 1), dt.date(2017, 6, 30),
                         d("0.00"), True),
            ]),
            BillInvoice("0000111996072017", "internet", "12 345 678", d("82.50"), d("16.50"), d("99.00"), False, [
                BillItem("Abonnement", "Menara ADSL illimité 4 Mb/s", *july, d("82.50"), False),
            ]),
        ],
        total_ht=d("237.50"), total_vat=d("47.50"), total_ttc=d("285.00"), vat_percent=20, loyalty_points=150,
        loyalty_balance=196,
    )


def sample_receipt():
    """The receipt of the sample bill's two invoices, with its verification code and QR code, as the site builds
    it (tasdid.billing.selectors.payments.receipt)."""
    from tasdid.billing.selectors.payments import Receipt, ReceiptLine

    return Receipt(
        number="R2017-00000042", paid_at=dt.datetime(2017, 7, 10, 9, 30, tzinfo=dt.UTC), email="k.alaoui@example.ma",
        lines=[ReceiptLine("0000111995072017", "Fixe", "fixed", "Juin 2017", Decimal("186.00")),
               ReceiptLine("0000111996072017", "Internet", "internet", "Juin 2017", Decimal("99.00"))],
        total=Decimal("285.00"), masked_pan="400000******0002", card_brand="Visa", auth_code="P12345",
        trans_id="26101ABCD1234", merchant_name="Tasdid Télécom", oid="ORDER-0001",
        path="/recu/R2017-00000042/x", url="http://127.0.0.1/recu/R2017-00000042/x",
        verify_code="7K3QZ9XW2M", verify_url="http://127.0.0.1/verifier/R2017-00000042/7K3QZ9XW2M",
    )


def renderers() -> dict[str, Callable[[], bytes]]:
    from django.utils import translation

    from tasdid.billing.documents import bill_pdf
    from tasdid.portal.receipt_pdf import render_receipt_pdf

    bill, receipt = sample_bill(), sample_receipt()

    def receipt_pdf(language: str) -> Callable[[], bytes]:  # as the receipt page's download and the email render it
        def render() -> bytes:
            with translation.override(language):
                return render_receipt_pdf(receipt=receipt)
        return render

    return {
        "bill (fr)": lambda: bill_pdf(bill, language="fr"),
        "bill (ar)": lambda: bill_pdf(bill, language="ar"),
        "bill (en)": lambda: bill_pdf(bill, language="en"),
        "receipt (fr)": receipt_pdf("fr"),
        "receipt (ar)": receipt_pdf("ar"),
        "receipt (en)": receipt_pdf("en"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--renders", type=int, default=50, help="timed renders of each document (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed renders of each document first (default 5)")
    parser.add_argument("--fresh", action="store_true",
                        help="a new font configuration and stylesheets parsed again for every render (no reuse)")
    args = parser.parse_args()

    setup_django()
    started = time.perf_counter()
    documents = renderers()
    if args.fresh:
        from tasdid.billing import documents as module

        def fresh(render: Callable[[], bytes]) -> Callable[[], bytes]:
            def again() -> bytes:
                module._local.__dict__.pop("renderer", None)
                return render()
            return again

        documents = {name: fresh(render) for name, render in documents.items()}
    first = {}
    for name, render in documents.items():
        t0 = time.perf_counter()
        render()
        first[name] = (time.perf_counter() - t0) * 1000
    print(f"first render (loads WeasyPrint and the fonts): {(time.perf_counter() - started) * 1000:.0f} ms in all, "
          + ", ".join(f"{name} {ms:.0f} ms" for name, ms in first.items()))
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}, {os.cpu_count()} CPUs; "
          f"{args.renders} renders each after {args.warmup} warm-up renders"
          + ("; fonts and stylesheets NOT reused (--fresh)" if args.fresh else ""))
    print(f"{'document':<14} {'median':>8} {'p95':>8} {'max':>8} {'cpu med':>8} {'size':>8}")
    worst = 0.0
    for name, render in documents.items():
        for _ in range(args.warmup):
            render()
        wall, cpu = [], []
        for _ in range(args.renders):
            w0, c0 = time.perf_counter(), time.process_time()
            pdf = render()
            cpu.append((time.process_time() - c0) * 1000)
            wall.append((time.perf_counter() - w0) * 1000)
        median = statistics.median(wall)
        worst = max(worst, median)
        print(f"{name:<14} {median:>6.1f}ms {percentile(wall, 0.95):>6.1f}ms {max(wall):>6.1f}ms "
              f"{statistics.median(cpu):>6.1f}ms {len(pdf) / 1024:>6.1f}kB")
    verdict = "under" if worst < TARGET_MS else "OVER"
    print(f"slowest median {worst:.1f} ms: {verdict} the {TARGET_MS:.0f} ms target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
