"""Emails of the biller: the payment receipt to its customers, with a link that works at any later time; the
reconciliation alert to its staff."""

from dataclasses import dataclass

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from tasdid.core.money import wire
from tasdid.messaging.services import email_send

from .models import Discrepancy, Payment
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


def discrepancy_alert(*, discrepancy: Discrepancy) -> ComposedEmail:
    """The staff alert for a reconciliation discrepancy (French, plain text): what differs, what was done, where
    to look. No card data beyond what the admin shows."""
    order = discrepancy.order
    done = {
        Discrepancy.Kind.NOT_CAPTURED: _("paiement annulé, factures rouvertes (de nouveau à payer) ; le client a "
                                         "reçu un reçu : à prévenir."),
        Discrepancy.Kind.NOT_RECORDED: _("rien n'est enregistré chez le facturier : rembourser le client ou "
                                         "régulariser ses factures."),
        Discrepancy.Kind.MISMATCH: _("paiement laissé tel quel : comparer avec la passerelle."),
    }[Discrepancy.Kind(discrepancy.kind)]
    with translation.override(settings.LANGUAGE_CODE):
        lines = [
            _("Le rapprochement avec la passerelle de paiement a constaté un écart."),
            "",
            _("Écart : %(kind)s") % {"kind": discrepancy.get_kind_display()},
            _("Ordre de paiement : %(oid)s") % {"oid": order.oid},
            _("Statut à la passerelle : %(status)s") % {"status": discrepancy.gateway_status},
            _("Montant du facturier : %(amount)s DH") % {"amount": wire(discrepancy.amount)},
            _("Montant encaissé : %(amount)s DH") % {"amount": wire(discrepancy.captured_amount)},
            _("Reçu : %(number)s") % {"number": discrepancy.receipt_number or "-"},
            _("Transaction : %(trans_id)s") % {"trans_id": discrepancy.trans_id or "-"},
            _("Factures : %(refs)s") % {"refs": discrepancy.invoice_references or "-"},
            _("Détail : %(detail)s") % {"detail": discrepancy.detail or "-"},
            _("Suite donnée : %(done)s") % {"done": done},
            "",
            _("Les écarts : %(url)s") % {
                "url": f"{settings.BILLER_URL}/admin/billing/discrepancy/{discrepancy.pk}/change/"},
        ]
        return ComposedEmail(subject=_("Écart de rapprochement : ordre %(oid)s") % {"oid": order.oid},
                             body_text="\n".join(lines) + "\n", body_html="")


def discrepancy_alert_queue(*, discrepancy: Discrepancy) -> bool:
    """Queue the alert to the configured address (settings.RECONCILE_ALERT_EMAIL) in the caller's transaction;
    False when no address is configured (the ERROR log line and the admin list remain)."""
    if not settings.RECONCILE_ALERT_EMAIL:
        return False
    composed = discrepancy_alert(discrepancy=discrepancy)
    email_send(to=settings.RECONCILE_ALERT_EMAIL, subject=composed.subject, body_text=composed.body_text)
    return True
