"""The gateway's back office in Chromium, against the real gateway server: a staff member signs in, opens a
merchant's daily settlement report and sees its chart (server-rendered SVG, under the strict CSP: nothing
blocked), the figures beside it, the CSV it exports, and the day's transactions a link away."""

import contextlib
import csv
import io

from playwright.sync_api import expect

from tasdid.gateway.models import AttemptState
from tests.gateway.conftest import make_merchant
from tests.gateway.test_back_office import DAY, attempt, refund
from tests.support.staff import PASSWORD, staff_account

from .a11y import check_page


def sign_in(page, site: str, username: str) -> None:
    """Through the admin's login form, as staff do."""
    page.goto(f"{site}/admin/login/")
    page.get_by_label("Nom d’utilisateur").fill(username)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Connexion").click()
    page.wait_for_url("**/admin/")

def test_the_daily_report_shows_its_chart(parties, page):
    merchant = make_merchant()
    captured = attempt(merchant, 1, AttemptState.CAPTURED, "285.00")
    attempt(merchant, 2, AttemptState.DECLINED, "20.00", masked="400011******0017")
    attempt(merchant, 3, AttemptState.VOIDED, "50.00")
    refund(captured, 1, "85.00")
    staff_account("amina", parties=["gateway"])
    blocked = []
    page.on("console", lambda message: blocked.append(message.text)
            if "Content Security Policy" in message.text else None)

    gateway = parties["gateway"]
    sign_in(page, gateway, "amina")

    page.goto(f"{gateway}/admin/gateway/merchant/")
    page.get_by_role("link", name="rapport du jour").click()
    page.get_by_label("Jour").fill(DAY.isoformat())
    page.get_by_role("button", name="Afficher").click()
    expect(page.get_by_role("heading", name="Rapport de règlement du jour")).to_be_visible()

    chart = page.get_by_role("img", name="Montants du 7 décembre 2026 par état")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box and box["width"] > 500 and box["height"] > 200
    captured_bar = chart.locator('rect[data-status="captured"]')
    expect(captured_bar).to_be_visible()
    assert captured_bar.bounding_box()["width"] > 300  # the largest amount: the full bar
    expect(chart.locator('rect[data-status="refunded"]')).to_be_visible()
    expect(chart.get_by_text("1 · 285,00 DH", exact=True)).to_be_visible()
    expect(page.locator('tr[data-status="declined"] td.count')).to_have_text("1")
    expect(page.locator("#settlement-net")).to_have_text("200,00 DH")
    assert blocked == []
    check_page(page, "gateway-back-office-report")

    with page.expect_download() as download:
        page.get_by_role("link", name="Exporter les transactions du jour (CSV)").click()
    rows = list(csv.reader(io.StringIO(download.value.path().read_text(encoding="utf-8"))))
    assert [(r[2], r[4], r[5], r[7]) for r in rows[1:]] == [
        ("ORDER-1", "remise", "285.00", "411111******1111"), ("ORDER-2", "refusée", "20.00", "400011******0017"),
        ("ORDER-3", "annulée", "50.00", "411111******1111"), ("ORDER-1", "acceptée", "85.00", "411111******1111")]

    page.get_by_role("link", name="Voir les transactions du jour").click()
    expect(page.get_by_role("cell", name="400011******0017")).to_be_visible()
    expect(page.get_by_text("3 transactions")).to_be_visible()
    assert blocked == []


def test_staff_see_an_api_users_address_locks_and_lift_them(parties, page):
    from tasdid.gateway import services

    merchant = make_merchant()
    user = services.api_user_create(merchant=merchant, name="boutique-api", password="boutique-api-password").user
    for _n in range(services.API_LOCK_AFTER_FAILURES):
        with contextlib.suppress(services.ApiAuthRefused):
            services.api_authenticate(name="boutique-api", password="a-guess-a-guess", client_id=merchant.client_id,
                                      address="203.0.113.9")
    staff_account("amina", parties=["gateway"], superuser=False)

    gateway = parties["gateway"]
    sign_in(page, gateway, "amina")

    page.goto(f"{gateway}/admin/gateway/merchantapiuser/")
    page.get_by_role("link", name="boutique-api").click()
    expect(page.get_by_role("heading", name="Blocages par adresse")).to_be_visible()
    expect(page.locator("td.field-address").get_by_text("203.0.113.9", exact=True)).to_be_visible()

    page.goto(f"{gateway}/admin/gateway/merchantapiuser/")
    page.locator(f'input[name="_selected_action"][value="{user.pk}"]').check()
    page.locator('select[name="action"]').select_option("unlock")
    page.locator('button[name="index"]').click()
    expect(page.get_by_text("Blocages levés : 1 utilisateur(s), 1 adresse(s).")).to_be_visible()
    page.get_by_role("link", name="boutique-api").click()
    expect(page.get_by_text("203.0.113.9")).to_have_count(0)
    expect(page.get_by_role("heading", name="Blocages par adresse")).to_be_visible()
