"""Two authorizations racing on one account never spend the same money (the account row is locked); an
authorization and its reversal racing never leave money held (the message key is locked)."""

import threading
import time
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from tasdid.bank import sandbox, selectors, services
from tasdid.bank.demo import seed_demo
from tasdid.bank.models import Card, Hold
from tasdid.core.cards import fingerprint

POOR = sandbox.card_by_outcome("51")  # 50.00 DH


def test_two_authorizations_racing_on_one_account_do_not_overdraw(transactional_db, monkeypatch):
    seed_demo()
    # Widen the window between reading the available balance and writing the hold: without the lock, both
    # threads would read 50.00 and both would approve 30.00.
    real, reads = selectors.accounts_held, []

    def slow_held(**kwargs):
        value = real(**kwargs)
        reads.append(kwargs)
        time.sleep(0.3)
        return value

    monkeypatch.setattr(selectors, "accounts_held", slow_held)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def pay(stan: str):
        try:
            barrier.wait(timeout=10)
            month, year = POOR.expiry.split("/")
            results.append(services.authorize(
                pan=POOR.number, expiry_yymm=year + month, cvv=POOR.cvv, amount_minor=3000, currency="504",
                merchant_id="600000001", stan=stan, transmitted_at=timezone.now(),
            ).response_code)
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=pay, args=(f"00000{i}",)) for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(reads) == 2  # each decision read the holds through the widened window
    assert sorted(results) == ["00", "51"]
    account = Card.objects.get(fingerprint=fingerprint(POOR.number)).account
    assert Hold.objects.filter(account=account, state="held").count() == 1
    assert selectors.account_available(account_id=account.pk, balance=account.balance) == Decimal("20.00")


VISA = sandbox.card_by_outcome("00", "none")


def test_an_authorization_and_its_reversal_racing_never_leave_a_hold(transactional_db, monkeypatch):
    """The gateway reverses (by STAN and time, the answer not come yet) while the bank is deciding: whichever
    gets the message key first, the end is the same: no money held. (SQLite serializes every transaction, so
    the race is real on PostgreSQL only, where it left a hold before the key was locked.)"""
    seed_demo()
    real = selectors.accounts_held
    deciding = threading.Event()

    def slow_held(**kwargs):
        deciding.set()
        value = real(**kwargs)
        time.sleep(0.3)
        return value

    monkeypatch.setattr(selectors, "accounts_held", slow_held)
    when = timezone.now()
    results, errors = {}, []

    def authorize():
        try:
            month, year = VISA.expiry.split("/")
            results["authorization"] = services.authorize(
                pan=VISA.number, expiry_yymm=year + month, cvv=VISA.cvv, amount_minor=3000, currency="504",
                merchant_id="600000001", stan="000777", transmitted_at=when).response_code
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    def reverse():
        try:
            deciding.wait(timeout=10)
            results["reversal"] = services.hold_void(merchant_id="600000001", original_stan="000777",
                                                     original_transmitted_at=when).reason
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=authorize), threading.Thread(target=reverse)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert results in ({"authorization": "00", "reversal": "released"},
                       {"authorization": "12", "reversal": "no such authorization: a late one will be declined"})
    assert not Hold.objects.filter(state="held").exists()
    account = Card.objects.get(fingerprint=fingerprint(VISA.number)).account
    assert selectors.account_available(account_id=account.pk, balance=account.balance) == VISA.balance
