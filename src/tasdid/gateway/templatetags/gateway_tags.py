"""Template helpers of the hosted page."""

from decimal import Decimal

from django import template

from tasdid.core.money import quantize

register = template.Library()


@register.filter
def dh(amount: Decimal | str) -> str:
    """285 -> "285.00 DH", written as the guide's bill and the biller's pages write amounts (a point, no
    grouping), with a non-breaking space before the unit."""
    return f"{quantize(Decimal(str(amount))):.2f}\u00a0DH"
