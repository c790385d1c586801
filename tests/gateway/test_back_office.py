"""The gateway's back office: a merchant's transactions searched (order, masked card, dates, state, amount), its
daily settlement report (counts and totals by state, the refunds from their operations, a server-rendered
chart) and its CSV export (masked cards, decimal amounts, no spreadsheet formula), the store key rotated from the
admin with the new key shown once; every page for the gateway's staff only, in French whatever the language
the browser carries."""

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from tasdid.core import i18n
from tasdid.core.staff import staff_grant
from tasdid.gateway import report, selectors, services
from tasdid.gateway.models import (
    Attempt,
    AttemptState,
    Merchant,
    Operation,
    OperationKind,
    OperationState,
    PaymentSession,
)
from tests.support.staff import PASSWORD, party_client, signed_in, staff_account

from .conftest import STORE_KEY, make_merchant

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 12, 7)
TZ = timezone.get_default_timezone()


def at(hour: int, minute: int = 0, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=TZ)


def attempt(merchant: Merchant, n: int, state: str, amount: str, *, masked: str = "411111******1111",
            when: dt.datetime | None = None, oid: str | None = None) -> Attempt:
    when = when or at(9, n)
    session = PaymentSession.objects.create(
        token=f"tok-{merchant.client_id}-{n}", merchant=merchant, oid=oid or f"ORDER-{n}", amount=Decimal(amount),
        browser_digest="x", state="succeeded", created_at=when, expires_at=when, updated_at=when)
    return Attempt.objects.create(
        session=session, state=state, amount=Decimal(amount), brand="VISA", masked_pan=masked, pan_fingerprint="f",
        threeds_server_trans_id=f"3ds-{merchant.client_id}-{n}", trans_id=f"T{merchant.client_id[-2:]}{n:04d}",
        stan=f"{n:06d}", response_code="00" if state != AttemptState.DECLINED else "05", auth_code="A1B2C3",
        deadline=when, created_at=when, updated_at=when)


def refund(of: Attempt, n: int, amount: str, *, state=OperationState.APPROVED, decided=None) -> Operation:
    decided = decided or at(15, n)
    return Operation.objects.create(
        attempt=of, kind=OperationKind.REFUND, state=state, amount=Decimal(amount), stan=f"{900 + n:06d}",
        transmitted_at=decided, response_code="00" if state == OperationState.APPROVED else "05",
        rrn=f"{n:012d}", requested_by="staff:amina", created_at=decided, decided_at=decided, updated_at=decided)


@pytest.fixture
def day_data():
    """Merchant A's day: two captures, a void, a decline, a failure, one still authorized, one the day before,
    a refund approved and one refused; merchant B's capture the same day (never in A's figures)."""
    a = make_merchant()
    b = make_merchant(client_id="600000100", store_key="OTHER-STORE-KEY-1")
    rows = {
        "captured": attempt(a, 1, AttemptState.CAPTURED, "285.00"),
        "captured2": attempt(a, 2, AttemptState.CAPTURED, "100.00", masked="555555******4444"),
        "voided": attempt(a, 3, AttemptState.VOIDED, "50.00"),
        "declined": attempt(a, 4, AttemptState.DECLINED, "20.00", masked="400011******0017"),
        "failed": attempt(a, 5, AttemptState.FAILED, "30.00", oid="=HYPERLINK(\"http://x\")"),
        "authorized": attempt(a, 6, AttemptState.AUTHORIZED, "40.00", oid="@SUM(1+1)"),
        "yesterday": attempt(a, 7, AttemptState.CAPTURED, "999.00", when=at(23, 59, DAY - dt.timedelta(days=1))),
        "other": attempt(b, 8, AttemptState.CAPTURED, "777.00"),
    }
    refund(rows["captured"], 1, "85.00")
    refund(rows["captured"], 2, "10.00", state=OperationState.REFUSED)
    return a, b, rows


@pytest.fixture
def staff():
    staff_account("staff", parties=["gateway"])
    return signed_in("gateway")


def shown(page: str) -> list[str]:
    """The TransIds listed in the transactions table."""
    return re.findall(r"<td>(T\d{6})</td>", page)


# --- the daily report ------------------------------------------------------------------------------------


def test_daily_report_counts_and_totals(day_data):
    a, _b, _rows = day_data
    result = selectors.daily_report(a, DAY)
    assert [(line.status, line.count, line.total) for line in result.lines] == [
        ("captured", 2, Decimal("385.00")), ("authorized", 1, Decimal("40.00")), ("voided", 1, Decimal("50.00")),
        ("declined", 1, Decimal("20.00")), ("failed", 1, Decimal("30.00")), ("processing", 0, Decimal("0.00")),
        ("refunded", 1, Decimal("85.00")),
    ]
    assert result.net == Decimal("300.00")
    before = selectors.daily_report(a, DAY - dt.timedelta(days=1))
    assert (before.line("captured").count, before.line("captured").total, before.line("refunded").count) == (
        1, Decimal("999.00"), 0)


def test_report_page_shows_the_figures_and_the_chart(day_data, staff):
    a, _b, _rows = day_data
    response = staff.get(f"/admin/gateway/merchant/{a.pk}/rapport/", {"day": DAY.isoformat()})
    assert response.status_code == 200
    page = response.content.decode()
    rows = {status: (count, total) for status, count, total in re.findall(
        r'<tr data-status="(\w+)"><th scope="row">[^<]*</th><td class="count">(\d+)</td>'
        r'<td class="total">([\d,]+) DH</td>', page)}
    assert rows == {"captured": ("2", "385,00"), "authorized": ("1", "40,00"), "voided": ("1", "50,00"),
                    "declined": ("1", "20,00"), "failed": ("1", "30,00"), "processing": ("0", "0,00"),
                    "refunded": ("1", "85,00")}
    assert '<td class="total" id="settlement-net">300,00 DH</td>' in page
    basis = re.search(r'<p class="help" id="settlement-basis">([^<]+)</p>', page).group(1)
    assert "au jour où ils ont commencé" in basis and "une remise ou une annulation faite un autre jour" in basis
    svg = re.search(r'<svg [^>]*class="settlement-chart".*?</svg>', page, re.S).group(0)
    assert 'role="img"' in svg and "<script" not in svg and "style=" not in svg
    widths = dict(re.findall(r'width="(\d+)" height="22" fill="#[0-9a-f]{6}" data-status="(\w+)"', svg))
    by_status = {status: int(width) for width, status in widths.items()}
    assert by_status["captured"] == 360 and by_status["processing"] == 0  # the largest amount fills the bar
    assert by_status["refunded"] == int(360 * 85 / 385)
    assert "2 · 385,00 DH" in svg and "remises : 2 · 385,00 DH" in svg
    assert f'href="/admin/gateway/merchant/{a.pk}/rapport.csv?day=2026-12-07"' in page


def test_report_of_a_bad_day_falls_back_to_today_and_the_csv_refuses_it(day_data, staff):
    a, _b, _rows = day_data
    response = staff.get(f"/admin/gateway/merchant/{a.pk}/rapport/", {"day": "2026-13-45"})
    assert response.status_code == 200 and "Saisissez une date valide." in response.content.decode()
    response = staff.get(f"/admin/gateway/merchant/{a.pk}/rapport.csv", {"day": "demain"})
    assert response.status_code == 400
    assert "Jour invalide" in response.content.decode()


# --- the CSV export ----------------------------------------------------------------------------------------


def test_csv_export_of_the_day(day_data, staff):
    a, _b, _rows = day_data
    response = staff.get(f"/admin/gateway/merchant/{a.pk}/rapport.csv", {"day": DAY.isoformat()})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="tasdid-{a.pk}-2026-12-07.csv"'
    assert "no-store" in response["Cache-Control"]
    text = response.content.decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["date", "opération", "commande", "TransId", "état", "montant", "devise", "carte",
                       "type de carte", "n° d'autorisation", "code réponse"]
    body = rows[1:]
    assert [(r[1], r[2], r[4], r[5], r[7]) for r in body] == [
        ("paiement", "ORDER-1", "remise", "285.00", "411111******1111"),
        ("paiement", "ORDER-2", "remise", "100.00", "555555******4444"),
        ("paiement", "ORDER-3", "annulée", "50.00", "411111******1111"),
        ("paiement", "ORDER-4", "refusée", "20.00", "400011******0017"),
        ("paiement", "'=HYPERLINK(\"http://x\")", "échouée", "30.00", "411111******1111"),
        ("paiement", "'@SUM(1+1)", "autorisée", "40.00", "411111******1111"),
        ("remboursement", "ORDER-1", "acceptée", "85.00", "411111******1111"),
    ]
    assert body[0][0] == "2026-12-07T09:01:00+01:00"
    assert "999.00" not in text and "777.00" not in text and "10.00" not in text
    assert not re.search(r"\d{13,19}", text)  # no card number, only masked ones


@pytest.mark.parametrize(("value", "written"), [
    ("=1+1", "'=1+1"), ("+33", "'+33"), ("-2", "'-2"), ("@A1", "'@A1"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("|calc", "'|calc"), ("%0A", "'%0A"), ("ORDER-1", "ORDER-1"), ("", ""), (None, ""),
])
def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(value, written):
    assert report.csv_cell(value) == written


def test_csv_amounts_are_decimals_even_negative():
    text = report.csv_text(["a", "b"], [[Decimal("-5"), "=x"], [Decimal("12.5"), "ok"]])
    assert text == "a,b\r\n-5.00,'=x\r\n12.50,ok\r\n"


# --- the transactions and their search ----------------------------------------------------------------------


@pytest.mark.parametrize(("query", "expected"), [
    ({}, ["T990006", "T990005", "T990004", "T990003", "T990002", "T990001", "T990007"]),
    ({"oid": "ORDER-3"}, ["T990003"]),
    ({"oid": "ORDER-8"}, []),  # merchant B's order
    ({"card_first6": "555555"}, ["T990002"]),
    ({"card_last4": "0017"}, ["T990004"]),
    ({"card_first6": "411111", "card_last4": "1111"}, ["T990006", "T990005", "T990003", "T990001", "T990007"]),
    ({"date_from": "2026-12-06", "date_to": "2026-12-06"}, ["T990007"]),
    ({"date_from": "2026-12-07"}, ["T990006", "T990005", "T990004", "T990003", "T990002", "T990001"]),
    ({"status": "captured"}, ["T990002", "T990001", "T990007"]),
    ({"status": "captured", "date_to": "2026-12-06"}, ["T990007"]),
    ({"amount": "285.00"}, ["T990001"]),
    ({"amount": "285"}, ["T990001"]),
])
def test_transaction_search(day_data, staff, query, expected):
    a, _b, _rows = day_data
    response = staff.get(f"/admin/gateway/merchant/{a.pk}/transactions/", query)
    assert response.status_code == 200
    assert shown(response.content.decode()) == expected


@pytest.mark.parametrize(("query", "message"), [
    ({"card_first6": "4111111111111111"}, "Assurez-vous que cette valeur comporte au plus 6 caractères"),
    ({"card_first6": "41111"}, "Saisissez exactement les 6 premiers chiffres de la carte."),
    ({"card_last4": "11a1"}, "Saisissez exactement les 4 derniers chiffres de la carte."),
    ({"date_from": "2026-12-08", "date_to": "2026-12-07"}, "La date de fin précède la date de début."),
    ({"amount": "douze"}, "Saisissez un nombre."),
    ({"status": "paid"}, "Sélectionnez un choix valide."),
])
def test_a_bad_search_says_why_and_lists_nothing(day_data, staff, query, message):
    a, _b, _rows = day_data
    response = staff.get(f"/admin/gateway/merchant/{a.pk}/transactions/", query)
    assert response.status_code == 200
    page = response.content.decode()
    assert message in page and shown(page) == []
    assert "4111111111111111" not in page


@pytest.mark.parametrize("typed", ["4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111"])
def test_a_card_number_typed_in_any_search_field_is_never_written_back(day_data, staff, typed):
    a, _b, _rows = day_data
    for name in ("card_first6", "card_last4", "oid", "amount", "date_from", "date_to"):
        response = staff.get(f"/admin/gateway/merchant/{a.pk}/transactions/", {name: typed, "page": "2"})
        assert response.status_code == 200, name
        page = response.content.decode()
        assert typed not in page and "4111111111111111" not in re.sub(r"[ +-]|%20", "", page), name
    # in the order field, the search runs as typed and the field shows the card masked
    response = staff.get(f"/admin/gateway/merchant/{a.pk}/transactions/", {"oid": "4111111111111111"})
    assert 'value="411111******1111"' in response.content.decode()


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "1999-12-31", "2100-01-01"])
def test_a_day_out_of_range_is_refused_with_a_clear_error(day_data, staff, day):
    a, _b, _rows = day_data
    message = "Indiquez une date entre le 1er janvier 2000 et le 31 décembre 2099."
    base = f"/admin/gateway/merchant/{a.pk}"
    for query in ({"date_to": day}, {"date_from": day}, {"date_from": "2026-12-01", "date_to": day}):
        response = staff.get(f"{base}/transactions/", query)
        assert response.status_code == 200, query
        assert message in response.content.decode() and shown(response.content.decode()) == []
    report_page = staff.get(f"{base}/rapport/", {"day": day})
    assert report_page.status_code == 200 and message in report_page.content.decode()
    assert staff.get(f"{base}/rapport.csv", {"day": day}).status_code == 400
    for edge in ("2000-01-01", "2099-12-31"):
        assert staff.get(f"{base}/transactions/", {"date_from": edge, "date_to": edge}).status_code == 200
        assert staff.get(f"{base}/rapport.csv", {"day": edge}).status_code == 200


def test_search_is_served_by_the_indexes():
    """The back office's filters have their indexes (the migration adds them)."""
    indexes = {tuple(index.fields) for index in Attempt._meta.indexes}
    assert {("session", "created_at"), ("created_at",), ("state", "created_at"), ("masked_pan",)} <= indexes
    assert ("merchant", "created_at") in {tuple(index.fields) for index in PaymentSession._meta.indexes}


def test_transactions_are_paged(staff):
    merchant = make_merchant()
    for n in range(1, 56):
        attempt(merchant, n, AttemptState.CAPTURED, "10.00", when=at(8) + dt.timedelta(minutes=n))
    first = staff.get(f"/admin/gateway/merchant/{merchant.pk}/transactions/", {"status": "captured"})
    page = first.content.decode()
    assert len(shown(page)) == 50 and "55 transactions" in page and "Page 1 sur 2" in page
    assert 'href="?status=captured&amp;page=2"' in page
    second = staff.get(f"/admin/gateway/merchant/{merchant.pk}/transactions/", {"status": "captured", "page": 2})
    assert len(shown(second.content.decode())) == 5


# --- rotation from the admin ---------------------------------------------------------------------------------


def test_admin_rotation_asks_for_confirmation_then_shows_the_new_key_once(staff):
    merchant = make_merchant()
    listing = staff.post("/admin/gateway/merchant/", {"action": "rotate_store_key", "_selected_action": [merchant.pk]})
    assert listing.status_code == 302 and listing["Location"] == f"/admin/gateway/merchant/{merchant.pk}/rotation/"
    confirm = staff.get(listing["Location"])
    assert confirm.status_code == 200 and "no-store" in confirm["Cache-Control"]
    assert "Oui, changer la clé" in confirm.content.decode()
    merchant.refresh_from_db()
    assert merchant.store_key == STORE_KEY  # nothing changed by looking

    token = re.search(r'name="confirmation" value="([^"]+)"', confirm.content.decode()).group(1)
    refused = staff.post(listing["Location"], {"overlap_days": "365", "confirmation": token})
    assert refused.status_code == 200 and "inférieure ou égale à 90" in refused.content.decode()
    merchant.refresh_from_db()
    assert merchant.store_key == STORE_KEY

    done = staff.post(listing["Location"], {"overlap_days": "3", "confirmation": token})
    assert done.status_code == 200 and "no-store" in done["Cache-Control"]
    merchant.refresh_from_db()
    new_key = merchant.store_key
    assert new_key != STORE_KEY and f'<code id="new-store-key">{new_key}</code>' in done.content.decode()
    assert merchant.previous_store_key == STORE_KEY
    assert abs(merchant.previous_store_key_until - (timezone.now() + dt.timedelta(days=3))) < dt.timedelta(minutes=1)
    # the same confirmation posted again (a reload): nothing more changes
    again = staff.post(listing["Location"], {"overlap_days": "3", "confirmation": token}, follow=True)
    assert "Cette confirmation a déjà servi" in again.content.decode()
    merchant.refresh_from_db()
    assert (merchant.store_key, merchant.previous_store_key) == (new_key, STORE_KEY)
    # never again: the change page and the listing show it masked only
    change = staff.get(f"/admin/gateway/merchant/{merchant.pk}/change/").content.decode()
    assert new_key not in change and STORE_KEY not in change
    assert "••••••••" + new_key[-4:] in change and "••••••••1234, acceptée jusqu&#x27;au" in change
    assert new_key not in staff.get("/admin/gateway/merchant/").content.decode()


def test_one_confirmation_rotates_once_even_posted_from_two_browsers(staff):
    """Two posts of the same confirmation (a double submit, two tabs or browsers of the staff): the key rotates
    once, the merchant's key it was shown for stays accepted during the overlap."""
    merchant = make_merchant()
    other = signed_in("gateway")  # the same staff member in a second browser
    path = f"/admin/gateway/merchant/{merchant.pk}/rotation/"
    tokens = [re.search(r'name="confirmation" value="([^"]*)"', c.get(path).content.decode()).group(1)
              for c in (staff, other)]
    done = staff.post(path, {"overlap_days": "3", "confirmation": tokens[0]})
    assert done.status_code == 200 and 'id="new-store-key"' in done.content.decode()
    again = other.post(path, {"overlap_days": "3", "confirmation": tokens[1]}, follow=True)
    assert "Cette confirmation a déjà servi" in again.content.decode()
    merchant.refresh_from_db()
    new_key = re.search(r'<code id="new-store-key">([^<]+)</code>', done.content.decode()).group(1)
    assert merchant.store_keys_accepted(timezone.now()) == [new_key, STORE_KEY]


def test_the_rotation_service_refuses_a_confirmation_of_a_key_already_changed():
    merchant = make_merchant()
    confirmation = services.rotation_confirmation(merchant)
    first = services.merchant_rotate_store_key(merchant_id=merchant.pk, confirmation=confirmation)
    with pytest.raises(services.RotationOutdated):
        services.merchant_rotate_store_key(merchant_id=merchant.pk, confirmation=confirmation)
    merchant.refresh_from_db()
    assert merchant.store_keys_accepted(timezone.now()) == [first.new_key, STORE_KEY]


def test_admin_rotation_of_several_merchants_at_once_is_refused(staff):
    a = make_merchant()
    b = make_merchant(client_id="600000100")
    response = staff.post("/admin/gateway/merchant/", {"action": "rotate_store_key",
                                                       "_selected_action": [a.pk, b.pk]}, follow=True)
    assert "Choisissez un seul marchand pour changer sa clé." in response.content.decode()
    assert [m.store_key for m in Merchant.objects.order_by("pk")] == [STORE_KEY, STORE_KEY]


# --- who sees the pages, in which language --------------------------------------------------------------------


def pages(merchant: Merchant) -> list[str]:
    base = f"/admin/gateway/merchant/{merchant.pk}"
    return [f"{base}/transactions/", f"{base}/rapport/?day=2026-12-07", f"{base}/rotation/",
            f"{base}/change/", "/admin/gateway/merchant/"]


@pytest.mark.parametrize("lang", ["fr", "ar", "en"])
def test_back_office_pages_render_for_the_staff_in_french_whatever_the_language(day_data, staff, lang):
    a, _b, _rows = day_data
    staff.cookies[i18n.COOKIE] = lang  # chosen on the customer pages of the same host
    for path in pages(a):
        response = staff.get(path, HTTP_ACCEPT_LANGUAGE=lang)
        assert response.status_code == 200, path
        assert response["Content-Language"] == "fr"
        page = response.content.decode()
        assert '<html lang="fr"' in page
        assert STORE_KEY not in page and not re.search(r"\b\d{13,19}\b", page)
    report_page = staff.get(pages(a)[1]).content.decode()
    assert "Rapport de règlement du jour" in report_page and "Remises" in report_page


def test_back_office_pages_are_for_the_gateway_staff_only(day_data):
    a, _b, _rows = day_data
    staff_account("biller-staff", parties=["biller"])
    others = signed_in("biller", "biller-staff")
    for path in pages(a):
        anonymous = party_client("gateway").get(path)
        assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
        assert others.get(path).status_code in (302, 404)
    assert party_client("gateway").post(pages(a)[2], {"overlap_days": "1"}).status_code == 302
    a.refresh_from_db()
    assert a.store_key == STORE_KEY


def _csrf(page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def plain_staff(username: str = "clerk", *, permissions=()) -> Client:
    """A gateway staff member who is not a superuser, signed in through the login form, CSRF enforced."""
    staff_account(username, parties=["gateway"], superuser=False)
    if permissions:
        staff_grant(username=username, parties=["gateway"], permissions=permissions)
    browser = party_client("gateway", enforce_csrf_checks=True)
    login = browser.get("/admin/login/")
    response = browser.post("/admin/login/", {"username": username, "password": PASSWORD, "next": "/admin/",
                                              "csrfmiddlewaretoken": _csrf(login.content.decode())})
    assert response.status_code == 302
    return browser


def test_the_staff_group_sees_transactions_but_rotates_no_key_without_the_permission(day_data):
    a, _b, _rows = day_data
    clerk = plain_staff()
    base = f"/admin/gateway/merchant/{a.pk}"
    for path in (f"{base}/transactions/", f"{base}/rapport/?day=2026-12-07", f"{base}/rapport.csv?day=2026-12-07"):
        assert clerk.get(path).status_code == 200, path
    assert clerk.get(f"{base}/rotation/").status_code == 403
    listing = clerk.get("/admin/gateway/merchant/")
    assert 'value="rotate_store_key"' not in listing.content.decode()
    refused = clerk.post(f"{base}/rotation/", {"overlap_days": "1", "confirmation": services.rotation_confirmation(a),
                                              "csrfmiddlewaretoken": _csrf(listing.content.decode())})
    assert refused.status_code == 403
    a.refresh_from_db()
    assert a.store_key == STORE_KEY
    assert "gateway.rotate_store_key" not in {
        f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name="gateway staff").permissions.all()}


def test_without_the_attempts_permission_the_transactions_and_the_report_are_refused(day_data):
    a, _b, _rows = day_data
    clerk = plain_staff()
    Group.objects.get(name="gateway staff").permissions.remove(
        Permission.objects.get(content_type__app_label="gateway", codename="view_attempt"))
    base = f"/admin/gateway/merchant/{a.pk}"
    assert clerk.get(f"{base}/change/").status_code == 200  # the merchant itself is still seen
    for path in (f"{base}/transactions/", f"{base}/rapport/?day=2026-12-07", f"{base}/rapport.csv?day=2026-12-07"):
        assert clerk.get(path).status_code == 403, path


def test_with_the_rotation_permission_the_key_rotates_and_only_with_the_csrf_token():
    merchant = make_merchant()
    officer = plain_staff("officer", permissions=["gateway.rotate_store_key"])
    path = f"/admin/gateway/merchant/{merchant.pk}/rotation/"
    confirm = officer.get(path)
    assert confirm.status_code == 200
    fields = {"overlap_days": "3", "confirmation": services.rotation_confirmation(merchant)}
    assert officer.post(path, fields).status_code == 403  # no CSRF token
    merchant.refresh_from_db()
    assert merchant.store_key == STORE_KEY
    done = officer.post(path, {**fields, "csrfmiddlewaretoken": _csrf(confirm.content.decode())})
    assert done.status_code == 200 and 'id="new-store-key"' in done.content.decode()
    merchant.refresh_from_db()
    assert merchant.store_key != STORE_KEY
    listing = officer.get("/admin/gateway/merchant/").content.decode()
    assert 'value="rotate_store_key"' in listing


def test_staff_grant_gives_a_reserved_permission_by_name_only(capsys):
    staff_account("ops", parties=["gateway"], superuser=False)
    with pytest.raises(ValueError):
        staff_grant(username="ops", parties=["gateway"], permissions=["gateway.change_merchant"])
    call_command("staff_grant", "ops", "gateway", "--permission", "gateway.rotate_store_key")
    assert "ops : permission gateway.rotate_store_key." in capsys.readouterr().out
    assert User.objects.get(username="ops").has_perm("gateway.rotate_store_key")


def test_unknown_merchant_is_not_found(staff):
    assert staff.get("/admin/gateway/merchant/999/rapport/").status_code == 404
    assert staff.get("/admin/gateway/merchant/999/transactions/").status_code == 404


def test_the_search_by_card_and_by_state_and_date_use_their_indexes_on_postgresql(day_data):
    """On PostgreSQL (``scripts/with-postgres``): the masked card's prefix is searched through its index (a
    LIKE 'xxxxxx%' needs varchar_pattern_ops under a non-C collation), the state over a date range through
    (state, created_at). The table is tiny: the plan is asked with sequential scans priced out."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the plans are PostgreSQL's")

    def plan(rows) -> str:
        sql, params = rows.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + sql, params)
            return "\n".join(row[0] for row in cursor.fetchall())

    assert "gateway_attempt_masked_pan" in plan(Attempt.objects.filter(masked_pan__startswith="411111"))
    start, end = selectors.day_bounds(DAY)
    assert "gateway_attempt_state_day" in plan(
        Attempt.objects.filter(state=AttemptState.CAPTURED, created_at__gte=start, created_at__lt=end))
