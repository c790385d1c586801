"""Steps on the biller's home and identification forms, as a person takes them in the browser."""

from playwright.sync_api import Page

EMAIL = "client@example.ma"


def open_category(page: Page, biller: str, category: str) -> None:
    page.goto(biller + "/")
    page.get_by_role("link", name=category).click()


def fill_email_and_terms(page: Page, *, confirmation: str | None = None, terms: bool = True) -> None:
    page.get_by_label("Adresse email de notification", exact=True).fill(EMAIL)
    if confirmation is not None:
        page.get_by_label("Confirmation de l'adresse email", exact=True).fill(confirmation)
    if terms:
        page.get_by_label("J'accepte les conditions générales d'utilisation").check()


def submit(page: Page) -> None:
    page.get_by_role("button", name="Consultez et payer en ligne").click()
