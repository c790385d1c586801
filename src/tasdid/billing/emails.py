"""Emails of the biller to its customers: the payment receipt, with a link that works at any later time."""

from dataclasses import dataclass

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from tasdid.messaging.services import email_send

from .models import Payment
from .selectors.payments import Receipt, receipt_for


@dataclass(frozen=True)
class ComposedEmail:
    subject: str
    body_text: str
    body_html: str


def receipt_email(*, receipt: Receipt) -> ComposedEmail:
    """Subject, text and HTML of the receipt email (French); the card appears masked, nothing more."""
    with translation.override(settings.LANGUAGE_CODE):
        context = {"receipt": receipt, "merchant": receipt.merchant_name}
        return ComposedEmail(
            subject=_("Votre reçu de paiement %(number)s") % {"number": receipt.number},
            body_text=render_to_string("billing/email/receipt.txt", context),
            body_html=render_to_string("billing/email/receipt.html", context),
        )


def receipt_email_queue(*, payment: Payment) -> None:
    """Queue the receipt email in the caller's transaction (durable outbox): sent once it commits, or never."""
    receipt = receipt_for(receipt_number=payment.receipt_number)
    assert receipt is not None
    composed = receipt_email(receipt=receipt)
    email_send(to=payment.email, subject=composed.subject, body_text=composed.body_text,
               body_html=composed.body_html)
