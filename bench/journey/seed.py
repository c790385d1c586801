"""The benchmark's data, written through the parties' own services: the bank's demo banks and a pair of cards per
virtual customer (one that the bank challenges, one frictionless, each on its own phone so that concurrent
challenges never read each other's code, with money enough for every payment), the biller as the gateway's
merchant, and customers imported through the bill import (bench/generate_bills.py's, each with a mobile or fixed
line and an internet line, two unpaid invoices on each)."""

from __future__ import annotations

import io
import json
import random
from decimal import Decimal

from bench.generate_bills import customer as generated_customer

from .customer import BenchCard, Identity

CARD_BALANCE = Decimal("100000000.00")
FIRST_CUSTOMER = 1000  # clear of the demo's numbers


def luhn_completed(partial: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return partial + str((10 - total % 10) % 10)


def seed_parties() -> None:
    from tasdid.bank.demo import seed_demo as seed_bank
    from tasdid.gateway.demo import seed_demo as seed_gateway

    seed_bank()
    seed_gateway()


def bench_cards(slots: int) -> dict[str, list[BenchCard]]:
    """Two cards of Banque Atlas per slot (a virtual customer), issued once (kept across runs on one database)."""
    from tasdid.bank import services
    from tasdid.bank.models import Bank, Card
    from tasdid.core.cards import fingerprint

    atlas = Bank.objects.get(code="atlas")
    cards: dict[str, list[BenchCard]] = {"challenge": [], "frictionless": []}
    for slot in range(slots):
        for kind, digit in (("challenge", 7), ("frictionless", 8)):
            number = luhn_completed(f"400011{digit}{slot:08d}")
            phone = f"+2126639{digit}{slot:04d}"
            card = BenchCard(number=number, expiry="12/30", cvv=f"{slot % 1000:03d}", phone=phone,
                             three_d_secure=kind)
            if not Card.objects.filter(fingerprint=fingerprint(number)).exists():
                account = services.account_open(bank_id=atlas.pk, holder_name=f"Client banc {slot}",
                                                opening_balance=CARD_BALANCE)
                services.card_issue(account_id=account.pk, pan=number, expiry=card.expiry, cvv=card.cvv,
                                    holder_name=f"Client banc {slot}", phone=phone, three_ds=kind)
            cards[kind].append(card)
    return cards


def bench_customers(count: int) -> dict[str, list[Identity]]:
    """``count`` new customers imported (numbers after those of earlier runs): their lines by way in."""
    from tasdid.billing.models import Customer
    from tasdid.billing.services.importing import import_bills

    last = (Customer.objects.filter(client_number__startswith="3").order_by("-client_number")
            .values_list("client_number", flat=True).first())
    first = max(FIRST_CUSTOMER, int(last[1:]) + 1 if last else 0)
    rng = random.Random(first)
    customers = [generated_customer(i, rng) for i in range(first, first + count)]
    import_bills(source=io.BytesIO(json.dumps({"format": "tasdid-bills", "version": 1,
                                               "customers": customers}).encode("utf-8")))
    ways: dict[str, list[Identity]] = {"mobile": [], "fixed": [], "internet": []}
    for doc in customers:
        for line in doc["lines"]:
            typed = line.get("number") or line["payment_identifier"]
            refs = tuple(inv["reference"] for bill in doc["bills"] for inv in bill["invoices"]
                         if inv["line"] == typed)
            ways[line["kind"]].append(Identity(way=line["kind"], typed=typed,
                                               payment_code=line.get("payment_code", ""), refs=refs))
    return ways
