"""Template filters of the bill document: keep a value's letters in their own direction within any page.

A customer's name or address may be Arabic in a French bill, Latin in an Arabic one, or both; a number with
spaces ("05 22 00 00 01") in a right-to-left line would have its groups reordered by the bidi algorithm. Unicode
isolates (LRI/FSI … PDI) fence each value off, whatever the renderer does with CSS ``unicode-bidi``; they are
invisible and print nothing.
"""

import unicodedata

from django import template

register = template.Library()

LRI, FSI, PDI = "\u2066", "\u2068", "\u2069"


@register.filter
def isolate(value) -> str:
    """Free text (a name, an address, a label): its own direction, from its first strong letter."""
    return f"{FSI}{value}{PDI}"


@register.filter
def ltr(value) -> str:
    """Digits, codes, dates and amounts: always left to right, "05 22 00 00 01" stays in that order."""
    return f"{LRI}{value}{PDI}"


@register.filter
def direction(value) -> str:
    """"rtl" or "ltr": the direction of ``value``'s first strong letter (HTML's ``dir="auto"``, which the PDF
    renderer lacks), so that a Latin name in an Arabic bill wraps as Latin text, and the reverse."""
    for char in str(value):
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            return "rtl"
        if kind == "L":
            return "ltr"
    return "ltr"
