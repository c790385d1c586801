"""The portal's home page in each language passes axe at phone and desktop widths (the helper's own check)."""

import pytest
from playwright.sync_api import Page

from tests.browser.a11y import check_page


@pytest.mark.parametrize("lang", ["fr", "ar", "en"])
def test_home_page_is_accessible(parties, page: Page, lang):
    page.goto(f"{parties['biller']}/?lang={lang}")
    assert page.locator("html").get_attribute("lang") == lang
    check_page(page, f"portal-home-{lang}")


def test_the_check_finds_what_axe_finds(page: Page):
    page.set_content('<html lang="fr"><head><title>t</title></head><body><main><img src="x.png">'
                     '<input type="text"></main></body></html>')
    with pytest.raises(AssertionError, match="image-alt"):
        check_page(page, "a11y-self-check")
