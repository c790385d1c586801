"""The receipt's QR code and its amount in words, in the page's language."""

from decimal import Decimal

from django import template
from django.utils import translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from tasdid.billing.receipts import qr_svg
from tasdid.core.amount_words import amount_in_words

register = template.Library()


@register.simple_tag
def receipt_qr(url: str) -> str:
    """The QR code of ``url`` as an inline SVG element (segno's output: our own markup, escaped title)."""
    return mark_safe(qr_svg(url, title=_("Code QR de vérification du reçu")))  # noqa: S308


@register.filter
def in_words(amount: Decimal) -> str:
    """« deux cent quatre-vingt-cinq dirhams » in the active language."""
    return amount_in_words(amount, (translation.get_language() or "fr").split("-")[0])
