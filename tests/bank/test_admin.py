"""The bank's staff admin on the bank's own URLs: every list and record opens; money records are read-only."""

import pytest

from tasdid.bank import sandbox, services
from tasdid.bank.models import AcsTransaction, Card, Hold
from tasdid.core.cards import fingerprint
from tests.support.staff import signed_in, staff_account

from .conftest import areq_message

pytestmark = pytest.mark.django_db
MAIN = sandbox.card_by_outcome("00", "challenge")


@pytest.fixture
def staff(banks):
    staff_account("banker", parties=["bank"])  # only the bank's staff open its admin
    client = signed_in("bank", "banker")  # through the login form
    assert "tasdid_bank_session" in client.cookies  # the party's own session cookie is what the bank reads
    return client


def test_every_admin_page_opens_without_showing_a_card_number(staff):
    ares = services.areq_answer(message=areq_message(MAIN, server_url="https://gw.example.ma"))
    services.challenge_open(acs_trans_id=ares["acsTransID"], three_ds_server_trans_id=ares["threeDSServerTransID"])
    visa = sandbox.card_by_outcome("00", "none")
    month, year = visa.expiry.split("/")
    from django.utils import timezone

    services.authorize(pan=visa.number, expiry_yymm=year + month, cvv=visa.cvv, amount_minor=100, currency="504",
                       merchant_id="600000001", stan="000001", transmitted_at=timezone.now())
    services.refund(merchant_id="600000001", stan="000002", transmitted_at=timezone.now(), amount_minor=100,
                    currency="504", pan=visa.number)
    card = Card.objects.get(fingerprint=fingerprint(MAIN.number))
    pages = ["/admin/", "/admin/bank/bank/", "/admin/bank/account/", "/admin/bank/card/", "/admin/bank/authorization/",
             "/admin/bank/hold/", "/admin/bank/refund/", "/admin/bank/acstransaction/",
             f"/admin/bank/card/{card.pk}/change/",
             f"/admin/bank/account/{card.account_id}/change/", f"/admin/bank/hold/{Hold.objects.get().pk}/change/",
             f"/admin/bank/acstransaction/{AcsTransaction.objects.get().pk}/change/"]
    for url in pages:
        response = staff.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert MAIN.number not in body and visa.number not in body
    assert "522011******0026" in staff.get("/admin/bank/card/").content.decode()
    assert "otp_digest" not in staff.get(pages[-1]).content.decode()


def test_staff_may_block_a_card_but_not_touch_holds(staff):
    card = Card.objects.get(fingerprint=fingerprint(MAIN.number))
    response = staff.post(f"/admin/bank/card/{card.pk}/change/", {"status": "blocked", "three_ds": "challenge"})
    assert response.status_code == 302
    card.refresh_from_db()
    assert card.status == "blocked"
    assert staff.get("/admin/bank/hold/add/").status_code == 403
