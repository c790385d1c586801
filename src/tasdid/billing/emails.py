"""Emails of the biller: the payment receipt to its customers, with a link that works at any later time; the
notice of a refund to its customers; the reconciliation alert to its staff."""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from tasdid.core.i18n import is_rtl
from tasdid.core.money import wire
from tasdid.messaging.mail import Attachment
from tasdid.messaging.services import email_send
from tasdid.portal.receipt_pdf import receipt_pdf_filename, render_receipt_pdf

from .models import Discrepancy, Payment, Refund
from .selectors.payments import receipt_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ComposedEmail:
    subject: str
    body_text: str
    body_html: str
    language: str = ""
    attachments: tuple[Attachment, ...] = ()


def _context(language: str, **values) -> dict:
    """What every email template of the biller needs beside its own values (billing/email/base.html): the
    language, its direction and the sides text starts and ends on."""
    rtl = is_rtl(language)
    return {"language": language, "rtl": rtl, "start": "right" if rtl else "left", "end": "left" if rtl else "right",
            **values}


def receipt_email(*, receipt_number: str, language: str) -> ComposedEmail | None:
    """The receipt email in ``language`` (the customer's, from the order): subject, text, HTML (right to left in
    Arabic) and the receipt's PDF in the same language (unless settings.RECEIPT_EMAIL_PDF is off); the card
    appears masked, nothing more. None when the payment has no receipt (reconciliation found it never captured)."""
    with translation.override(language):
        receipt = receipt_for(receipt_number=receipt_number)  # month names in this language
        if receipt is None:
            return None
        context = _context(language, receipt=receipt, lines=receipt.lines, merchant=receipt.merchant_name,
                           with_pdf=settings.RECEIPT_EMAIL_PDF)
        attachments = ()
        if settings.RECEIPT_EMAIL_PDF:
            attachments = (Attachment(filename=receipt_pdf_filename(receipt),
                                      content=render_receipt_pdf(receipt=receipt), mimetype="application/pdf"),)
        return ComposedEmail(
            subject=_("Votre reçu de paiement %(number)s") % {"number": receipt.number},
            body_text=render_to_string("billing/email/receipt.txt", context),
            body_html=render_to_string("billing/email/receipt.html", context),
            language=language,
            attachments=attachments,
        )


def receipt_email_queue(*, payment_id: int) -> bool:
    """Compose a payment's receipt email and queue it in the outbox (durable), once per payment: True when this
    call queued it. Composed outside any transaction (the PDF takes a moment), queued under the payment's lock."""
    payment = Payment.objects.select_related("order").filter(pk=payment_id).first()
    if payment is None or payment.receipt_email_queued_at is not None:
        return False
    composed = receipt_email(receipt_number=payment.receipt_number, language=payment.order.language)
    if composed is None:
        logger.warning("receipt %s: no receipt email, the payment was voided first", payment.receipt_number)
        return False
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.receipt_email_queued_at is not None:  # another run of the task queued it meanwhile
            return False
        email_send(to=payment.email, subject=composed.subject, body_text=composed.body_text,
                   body_html=composed.body_html, language=composed.language, attachments=composed.attachments)
        payment.receipt_email_queued_at = timezone.now()
        payment.save(update_fields=["receipt_email_queued_at"])
    return True


def refund_email(*, refund: Refund, language: str) -> ComposedEmail | None:
    """The notice of an approved refund in ``language`` (the order's): how much, when, for which invoices (and
    whether they are due again), on which card, and the receipt's link (it shows the refund). None when the refund
    is not approved or the payment has no receipt."""
    with translation.override(language):
        receipt = receipt_for(receipt_number=refund.payment.receipt_number)
        if receipt is None or refund.state != Refund.State.APPROVED:
            return None
        references = [ref for ref in refund.invoice_references.split(",") if ref]
        lines = [line for line in receipt.lines if line.reference in references]
        context = _context(language, receipt=receipt, refund=refund, lines=lines,
                           reopened=refund.invoices_afterwards == Refund.Afterwards.REOPEN)
        return ComposedEmail(
            subject=_("Remboursement de votre paiement %(number)s") % {"number": receipt.number},
            body_text=render_to_string("billing/email/refund.txt", context),
            body_html=render_to_string("billing/email/refund.html", context),
            language=language,
        )


def refund_email_queue(*, refund_id: int) -> bool:
    """Compose the notice of an approved refund and queue it in the outbox, once per refund: True when this call
    queued it."""
    refund = Refund.objects.select_related("payment__order").filter(pk=refund_id).first()
    if refund is None or refund.email_queued_at is not None:
        return False
    composed = refund_email(refund=refund, language=refund.payment.order.language)
    if composed is None:
        return False
    with transaction.atomic():
        refund = Refund.objects.select_for_update().select_related("payment").get(pk=refund_id)
        if refund.email_queued_at is not None:
            return False
        email_send(to=refund.payment.email, subject=composed.subject, body_text=composed.body_text,
                   body_html=composed.body_html, language=composed.language)
        refund.email_queued_at = timezone.now()
        refund.save(update_fields=["email_queued_at"])
    return True


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
