"""Write a bills file (docs/import-format.md) of N invoices for the import benchmark, streaming it to disk.

Each customer has a fixed or mobile line and an internet line, and two monthly bills of two invoices each
(the fixed invoice with a subscription and a free option, like the guide's sample). Numbers, identifiers,
client numbers and references are unique and valid.

    .venv/bin/python bench/generate_bills.py --invoices 1000000 var/bench/bills-1m.json
"""

import argparse
import json
import random
import sys
from decimal import Decimal
from pathlib import Path

from tasdid.core.money import vat_of

INVOICES_PER_CUSTOMER = 4
MONTHS = (("2026-09", "2026-10-20", "2026-10-01", "2026-10-31"), ("2026-10", "2026-11-20", "2026-11-01", "2026-11-30"))
OFFERS = ("Ligne mixte illimité TT", "Forfait 20 H", "Forfait illimité 4G", "Ligne fixe essentiel")
ADSL = ("Menara ADSL illimité 4 Mb/s", "Fibre optique 100 Mb/s", "Menara ADSL 12 Mb/s")


def money(value: Decimal) -> str:
    return f"{value:.2f}"


def invoice(reference: str, line: str, priced: list[tuple[str, str, Decimal]], free: list[tuple[str, str]],
            period: tuple[str, str]) -> dict:
    ht = sum((amount for _s, _l, amount in priced), Decimal("0.00"))
    vat = vat_of(ht)
    lines = [{"section": section, "label": label, "period_start": period[0], "period_end": period[1],
              "amount_ht": money(amount)} for section, label, amount in priced]
    lines += [{"section": section, "label": label, "period_start": period[0], "period_end": period[1], "free": True}
              for section, label in free]
    return {"reference": reference, "line": line, "amount_ht": money(ht), "amount_vat": money(vat),
            "amount_ttc": money(ht + vat), "lines": lines}


def customer(i: int, rng: random.Random) -> dict:
    mobile = i % 3 == 2
    phone = f"06 6{i // 100000 % 10} {i // 10000 % 10}{i // 1000 % 10} {i // 100 % 10}{i // 10 % 10} {i % 10}0" \
        if mobile else f"05 22 {i // 10000 % 100:02d} {i // 100 % 100:02d} {i % 100:02d}"
    identifier = f"{i:08d}"
    identifier = f"{identifier[:2]} {identifier[2:5]} {identifier[5:]}"
    phone_line = {"kind": "mobile", "number": phone} if mobile else {
        "kind": "fixed", "number": phone, "payment_code": f"{rng.randrange(10000):04d}"}
    phone_line["label"] = rng.choice(OFFERS)
    adsl = rng.choice(ADSL)
    bills = []
    for m, (month, due, start, end) in enumerate(MONTHS):
        phone_ht = Decimal(rng.randrange(4900, 49900)) / 100
        adsl_ht = Decimal(rng.randrange(6900, 39900)) / 100
        invoices = [
            invoice(f"00{i:010d}{m * 2 + 1:04d}", phone, [("Abonnement", phone_line["label"], phone_ht)],
                    [("Options et services", "5 H tout temps Mobile")], (start, end)),
            invoice(f"00{i:010d}{m * 2 + 2:04d}", identifier, [("Abonnement", adsl, adsl_ht)], [], (start, end)),
        ]
        total = {name: money(sum((Decimal(inv[f"amount_{name}"]) for inv in invoices), Decimal("0.00")))
                 for name in ("ht", "vat", "ttc")}
        bills.append({"month": month, "due_date": due, "total_ht": total["ht"], "total_vat": total["vat"],
                      "total_ttc": total["ttc"], "loyalty_points": rng.randrange(500),
                      "loyalty_balance": rng.randrange(500, 5000), "invoices": invoices})
    return {"client_number": f"3{i:08d}", "name": f"Client n° {i}",
            "lines": [phone_line, {"kind": "internet", "payment_identifier": identifier, "label": adsl}],
            "bills": bills}


def generate(path: Path, invoices: int, seed: int = 2017) -> int:
    """Write the file; returns its size in bytes."""
    if invoices % INVOICES_PER_CUSTOMER:
        raise SystemExit(f"--invoices must be a multiple of {INVOICES_PER_CUSTOMER}")
    customers = invoices // INVOICES_PER_CUSTOMER
    if customers > 1_000_000:
        raise SystemExit("at most 4,000,000 invoices (the numbering runs out)")
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        out.write('{"format": "tasdid-bills", "version": 1, "customers": [\n')
        for i in range(customers):
            if i:
                out.write(",\n")
            out.write(json.dumps(customer(i, rng), ensure_ascii=False, separators=(",", ":")))
        out.write("\n]}\n")
    return path.stat().st_size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", type=Path)
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2017)
    args = parser.parse_args(argv)
    size = generate(args.path, args.invoices, args.seed)
    print(f"{args.path}: {args.invoices} invoices, {size / 1e6:.1f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
