"""The receipt email end to end: the callback reaches the biller over real TCP, the outbox task sends it by
SMTP to the sink, and its link opens the receipt later from a client without any cookie."""

import re
from email.parser import BytesParser
from email.policy import default as default_policy

import httpx
from django.conf import settings
from django.utils import timezone

from tasdid.billing.models import Payment
from tasdid.messaging.models import Email, MailboxMessage
from tasdid.messaging.selectors import mailbox
from tests.billing.payments_fixtures import (
    EMAIL,
    MASKED,
    gateway_message,
    line_with_two_invoices,
    new_order,
    receipt_link,
)
from tests.support.pci import card_numbers_in


def read_email(raw: str) -> dict[str, str]:
    """Headers and bodies of a received message. Parsed from bytes: its bodies are 8-bit UTF-8, which the str
    parser of the email package garbles."""
    parsed = BytesParser(policy=default_policy).parsebytes(raw.encode("utf-8"))
    return {
        "subject": str(parsed["Subject"]),
        "to": str(parsed["To"]),
        "text": parsed.get_body(preferencelist=("plain",)).get_content(),
        "html": parsed.get_body(preferencelist=("html",)).get_content(),
    }


def test_receipt_email_arrives_by_smtp_with_a_link_that_works_without_a_session(parties, smtp_sink, run_tasks):
    line, june, july = line_with_two_invoices()
    order = new_order(line)
    with httpx.Client(base_url=parties["biller"], timeout=30) as gateway:
        answer = gateway.post("/paiement/callback", data=gateway_message(order, paid=[june.reference]))
    assert (answer.status_code, answer.text) == (200, "ACTION=POSTAUTH")
    payment = Payment.objects.get()
    assert MailboxMessage.objects.count() == 0  # queued, not sent from inside the settlement

    run_tasks()

    assert Email.objects.get().status == "sent"
    [message] = mailbox(to=EMAIL)
    parts = read_email(message.raw)
    number = payment.receipt_number
    link = receipt_link(payment, absolute=True)
    assert parts["subject"] == f"Votre reçu de paiement {number}"
    assert parts["to"] == EMAIL
    local = timezone.localtime(payment.paid_at)
    text = parts["text"]
    when = f"le {local:%d/%m/%Y} à {local:%H:%M}"
    assert f"Nous avons bien reçu votre paiement de 186.00 DH {when} et vous en remercions." in text
    assert f"Reçu de paiement : {number}" in text
    assert f"Carte : Visa {MASKED}" in text
    assert f"- Facture Mobile {june.reference} (Juin 2017) : 186.00 DH" in text
    assert "Total payé : 186.00 DH" in text
    assert july.reference not in text  # deferred: not paid, not on the receipt
    assert link in text
    assert f'<a href="{link}" style="color: #0b5cad; font-weight: bold; text-decoration: underline;">Consulter et ' \
           'imprimer mon reçu</a>' in parts["html"]
    assert not card_numbers_in(message.raw)  # the Message-ID and MIME boundaries set aside

    # Later, from anywhere: a fresh client with no cookie at all follows the link.
    with httpx.Client(timeout=60) as browser:
        page = browser.get(link)
        assert page.status_code == 200
        assert number in page.text and "Reçu de paiement" in page.text and MASKED in page.text
        assert not browser.cookies
        pdf = browser.get(link + "/pdf")
        assert (pdf.status_code, pdf.headers["content-type"]) == (200, "application/pdf")
        tampered = browser.get(re.sub(r".$", lambda m: "A" if m.group() != "A" else "B", link))
        assert tampered.status_code == 404
    assert link.startswith(settings.BILLER_URL + "/recu/")


def test_a_refused_callback_sends_no_email(parties, smtp_sink, run_tasks):
    line, *_ = line_with_two_invoices()
    order = new_order(line)
    with httpx.Client(base_url=parties["biller"], timeout=30) as gateway:
        answer = gateway.post("/paiement/callback", data={**gateway_message(order), "amount": "1.00"})
        declined = gateway.post("/paiement/callback", data=gateway_message(order, code="51"))
    assert (answer.text, declined.text) == ("FAILURE", "APPROVED")

    run_tasks()

    assert Email.objects.count() == 0
    assert MailboxMessage.objects.count() == 0
