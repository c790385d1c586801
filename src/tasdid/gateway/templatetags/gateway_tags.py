"""Template helpers of the hosted page."""

from decimal import Decimal

from django import template

from tasdid.core.money import quantize

register = template.Library()


@register.filter
def dh(amount: Decimal | str) -> str:
    """285.00 -> "285,00 DH" (French writing, non-breaking space before the unit)."""
    value = quantize(Decimal(str(amount)))
    whole, cents = f"{value:.2f}".split(".")
    groups = f"{int(whole):,}".replace(",", "\u202f")
    return f"{groups},{cents}\u00a0DH"
