"""Bills documents for the import tests: the guide's sample customer, a mobile customer, and file writers."""

import copy
import json
from pathlib import Path

from tasdid.billing.importing.records import FORMAT, VERSION

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "bills.json"

_GUIDE_CUSTOMER = {
    "client_number": "100000001",
    "name": "Mme Khadija Alaoui",
    "lines": [
        {"kind": "fixed", "number": "05 22 00 00 01", "payment_code": "4821", "label": "Ligne mixte illimité TT"},
        {"kind": "internet", "payment_identifier": "12 345 678", "label": "Menara ADSL illimité 4 Mb/s"},
    ],
    "bills": [{
        "month": "2017-06", "due_date": "2017-07-19", "total_ht": "237.50", "total_vat": "47.50",
        "total_ttc": "285.00", "loyalty_points": 150, "loyalty_balance": 196,
        "invoices": [
            {"reference": "0000111995072017", "line": "05 22 00 00 01", "amount_ht": "155.00", "amount_vat": "31.00",
             "amount_ttc": "186.00", "lines": [
                 {"section": "Abonnement", "label": "Ligne mixte illimité TT", "period_start": "2017-07-01",
                  "period_end": "2017-07-31", "amount_ht": "155.00"},
                 {"section": "Options et services", "label": "5 H tout temps Mobile", "period_start": "2017-06-01",
                  "period_end": "2017-06-30", "free": True},
             ]},
            {"reference": "0000111996072017", "line": "12 345 678", "amount_ht": "82.50", "amount_vat": "16.50",
             "amount_ttc": "99.00", "lines": [
                 {"section": "Abonnement", "label": "Menara ADSL illimité 4 Mb/s", "period_start": "2017-07-01",
                  "period_end": "2017-07-31", "amount_ht": "82.50"},
             ]},
        ],
    }],
}

_MOBILE_CUSTOMER = {
    "client_number": "100000002",
    "name": "M. Youssef Benali",
    "lines": [{"kind": "mobile", "number": "06 61 00 00 01"}],
    "bills": [{
        "month": "2026-09", "due_date": "2026-10-20", "total_ht": "124.17", "total_vat": "24.83", "total_ttc": "149.00",
        "invoices": [{"reference": "0000200001092026", "line": "06 61 00 00 01", "amount_ht": "124.17",
                      "amount_vat": "24.83", "amount_ttc": "149.00",
                      "lines": [{"label": "Forfait Mobile 20 H", "amount_ht": "124.17"}]}],
    }],
}


def guide_customer() -> dict:
    """Mme Khadija Alaoui and the guide's sample bill (fixed 186.00 + internet 99.00 = 285.00 TTC)."""
    return copy.deepcopy(_GUIDE_CUSTOMER)


def mobile_customer() -> dict:
    """M. Youssef Benali, one mobile line, one invoice of 149.00 TTC (minimal fields)."""
    return copy.deepcopy(_MOBILE_CUSTOMER)


def document(*customers: dict) -> dict:
    return {"format": FORMAT, "version": VERSION, "customers": list(customers)}


def write(path: Path, doc: dict | str | bytes) -> Path:
    if isinstance(doc, dict):
        doc = json.dumps(doc, ensure_ascii=False, indent=1)
    path.write_bytes(doc if isinstance(doc, bytes) else doc.encode("utf-8"))
    return path
