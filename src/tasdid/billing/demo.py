"""The biller's demo data, imported through the real bill import: the guide's sample bill and customers with
unpaid invoices to try each way in (mobile, fixe, internet) and deferring."""

import io
import json
from dataclasses import dataclass
from decimal import Decimal

from tasdid.billing.services.importing import import_bills


@dataclass(frozen=True)
class DemoIdentity:
    """What a person types on the portal to reach a demo line's unpaid invoices.

    ``typed`` is the mobile or fixed number, or the internet payment identifier, as printed on the bill.
    Mobile lines have no printed code: the code fidelio comes by SMS ("code" to 1111, sandbox phone).
    """

    kind: str  # "mobile", "fixed" or "internet" (ServiceLine.Kind)
    typed: str
    payment_code: str
    client_number: str
    customer: str
    unpaid: tuple[tuple[str, str], ...]  # (invoice reference, amount TTC), oldest first

    @property
    def total(self) -> str:
        """What the line owes in all, TTC ("348.00")."""
        return f"{sum((Decimal(amount) for _ref, amount in self.unpaid), Decimal('0.00')):.2f}"


DEMO_IDENTITIES: tuple[DemoIdentity, ...] = (
    DemoIdentity("fixed", "05 22 00 00 01", "4821", "100000001", "Mme Khadija Alaoui",
                 (("0000111995072017", "186.00"),)),
    DemoIdentity("internet", "12 345 678", "", "100000001", "Mme Khadija Alaoui",
                 (("0000111996072017", "99.00"),)),
    DemoIdentity("mobile", "06 61 00 00 01", "", "100000002", "M. Youssef Benali",
                 (("0000200001092026", "149.00"), ("0000200001102026", "199.00"))),
    DemoIdentity("mobile", "07 00 00 00 02", "", "100000003", "Mme Salma Idrissi",
                 (("0000300001102026", "99.00"),)),
    DemoIdentity("fixed", "05 37 00 00 02", "1234", "100000004", "M. Omar Tazi",
                 (("0000400001092026", "120.00"), ("0000400001102026", "120.00"))),
    DemoIdentity("internet", "98 765 432", "", "100000004", "M. Omar Tazi",
                 (("0000400002092026", "299.00"), ("0000400002102026", "299.00"))),
    DemoIdentity("mobile", "06 61 00 00 09", "", "100000005", "Mme Nadia Berrada", ()),
)


def _item(section: str, label: str, start: str, end: str, amount: str | None = None) -> dict:
    item = {"section": section, "label": label, "period_start": start, "period_end": end}
    if amount is None:
        item["free"] = True
    else:
        item["amount_ht"] = amount
    return item


def _invoice(reference: str, line: str, ht: str, vat: str, ttc: str, items: list[dict]) -> dict:
    return {"reference": reference, "line": line, "amount_ht": ht, "amount_vat": vat, "amount_ttc": ttc,
            "lines": items}


def _bill(month: str, due: str, totals: tuple[str, str, str], invoices: list[dict], points: int = 0,
          balance: int = 0) -> dict:
    return {"month": month, "due_date": due, "total_ht": totals[0], "total_vat": totals[1], "total_ttc": totals[2],
            "loyalty_points": points, "loyalty_balance": balance, "invoices": invoices}


_FORFAIT_20H = "Forfait Mobile 20 H"

# The importer checks every figure (VAT 20 % per invoice rounded to the centime, TTC, sums): a typo here
# fails the demo loudly rather than showing wrong amounts.
DEMO_DOCUMENT: dict = {
    "format": "tasdid-bills",
    "version": 1,
    "customers": [
        {   # The guide's sample bill: "Facture du mois de Juin 2017", 186.00 + 99.00 = 285.00 DH TTC.
            "client_number": "100000001",
            "name": "Mme Khadija Alaoui",
            "lines": [
                {"kind": "fixed", "number": "05 22 00 00 01", "payment_code": "4821",
                 "label": "Ligne mixte illimité TT"},
                {"kind": "internet", "payment_identifier": "12 345 678", "label": "Menara ADSL illimité 4 Mb/s"},
            ],
            "bills": [_bill("2017-06", "2017-07-19", ("237.50", "47.50", "285.00"), points=150, balance=196, invoices=[
                _invoice("0000111995072017", "05 22 00 00 01", "155.00", "31.00", "186.00", [
                    _item("Abonnement", "Ligne mixte illimité TT", "2017-07-01", "2017-07-31", "155.00"),
                    _item("Options et services", "5 H tout temps Mobile", "2017-06-01", "2017-06-30"),
                ]),
                _invoice("0000111996072017", "12 345 678", "82.50", "16.50", "99.00", [
                    _item("Abonnement", "Menara ADSL illimité 4 Mb/s", "2017-07-01", "2017-07-31", "82.50"),
                ]),
            ])],
        },
        {   # Two unpaid invoices on one mobile line: try deferring one of them.
            "client_number": "100000002",
            "name": "M. Youssef Benali",
            "lines": [{"kind": "mobile", "number": "06 61 00 00 01", "label": _FORFAIT_20H}],
            "bills": [
                _bill("2026-09", "2026-10-20", ("124.17", "24.83", "149.00"), points=40, balance=310, invoices=[
                    _invoice("0000200001092026", "06 61 00 00 01", "124.17", "24.83", "149.00", [
                        _item("Abonnement", _FORFAIT_20H, "2026-09-01", "2026-09-30", "124.17"),
                    ]),
                ]),
                _bill("2026-10", "2026-11-20", ("165.83", "33.17", "199.00"), points=55, balance=365, invoices=[
                    _invoice("0000200001102026", "06 61 00 00 01", "165.83", "33.17", "199.00", [
                        _item("Abonnement", _FORFAIT_20H, "2026-10-01", "2026-10-31", "124.17"),
                        _item("Consommations hors forfait", "Appels vers l'international", "2026-09-01",
                              "2026-09-30", "41.66"),
                    ]),
                ]),
            ],
        },
        {
            "client_number": "100000003",
            "name": "Mme Salma Idrissi",
            "lines": [{"kind": "mobile", "number": "07 00 00 00 02", "label": "Forfait Jawal 10 H"}],
            "bills": [
                _bill("2026-10", "2026-11-20", ("82.50", "16.50", "99.00"), points=20, balance=75, invoices=[
                    _invoice("0000300001102026", "07 00 00 00 02", "82.50", "16.50", "99.00", [
                        _item("Abonnement", "Forfait Jawal 10 H", "2026-10-01", "2026-10-31", "82.50"),
                    ]),
                ]),
            ],
        },
        {   # A fixed line and an internet line, each with two unpaid invoices.
            "client_number": "100000004",
            "name": "M. Omar Tazi",
            "lines": [
                {"kind": "fixed", "number": "05 37 00 00 02", "payment_code": "1234", "label": "Ligne fixe essentiel"},
                {"kind": "internet", "payment_identifier": "98 765 432", "label": "Fibre optique 100 Mb/s"},
            ],
            "bills": [
                _bill("2026-09", "2026-10-20", ("349.17", "69.83", "419.00"), points=80, balance=340, invoices=[
                    _invoice("0000400001092026", "05 37 00 00 02", "100.00", "20.00", "120.00", [
                        _item("Abonnement", "Ligne fixe essentiel", "2026-09-01", "2026-09-30", "100.00"),
                    ]),
                    _invoice("0000400002092026", "98 765 432", "249.17", "49.83", "299.00", [
                        _item("Abonnement", "Fibre optique 100 Mb/s", "2026-09-01", "2026-09-30", "249.17"),
                    ]),
                ]),
                _bill("2026-10", "2026-11-20", ("349.17", "69.83", "419.00"), points=80, balance=420, invoices=[
                    _invoice("0000400001102026", "05 37 00 00 02", "100.00", "20.00", "120.00", [
                        _item("Abonnement", "Ligne fixe essentiel", "2026-10-01", "2026-10-31", "100.00"),
                    ]),
                    _invoice("0000400002102026", "98 765 432", "249.17", "49.83", "299.00", [
                        _item("Abonnement", "Fibre optique 100 Mb/s", "2026-10-01", "2026-10-31", "249.17"),
                    ]),
                ]),
            ],
        },
        {   # A line with nothing to pay.
            "client_number": "100000005",
            "name": "Mme Nadia Berrada",
            "lines": [{"kind": "mobile", "number": "06 61 00 00 09", "label": _FORFAIT_20H}],
        },
    ],
}


def seed_demo() -> None:
    """Import the demo document through the bill import; idempotent (a second run finds it all there)."""
    import_bills(source=io.BytesIO(json.dumps(DEMO_DOCUMENT).encode("utf-8")))
