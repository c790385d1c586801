"""Small template helpers of the biller's pages."""

from django import template
from django.conf import settings

register = template.Library()


@register.simple_tag
def biller_name() -> str:
    return settings.BILLER_NAME
