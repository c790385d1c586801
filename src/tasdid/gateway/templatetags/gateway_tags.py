"""Template helpers of the hosted page."""

from decimal import Decimal

from django import template

from tasdid.core import money

register = template.Library()


@register.filter
def dh(amount: Decimal | str) -> str:
    """285 -> "285.00 DH", written as the guide's bill and the biller's pages write amounts (a point, no
    grouping), with a non-breaking space before the unit."""
    return money.dh(amount, space="\u00a0")
