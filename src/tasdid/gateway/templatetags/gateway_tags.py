"""Template helpers of the hosted page."""

from decimal import Decimal

from django import template

from tasdid.core import l10n

register = template.Library()


@register.filter
def dh(amount: Decimal | str) -> str:
    """285 -> "285.00 DH", written as the guide's bill and the biller's pages write amounts (a point, no
    grouping), with a non-breaking space before the unit, in the page's language: "285.00 درهم" on an Arabic
    page (Eastern Arabic digits if settings.ARABIC_DIGITS says so), as the biller writes it (tasdid.core.l10n)."""
    return l10n.amount(amount)
