"""The receipt email as a customer's mail program receives it: through a real SMTP server on 127.0.0.1, parsed
with the email package: a text and an HTML alternative and the receipt's PDF, transactional headers, all in the
language of the page the customer paid from."""

import subprocess
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy

from django.conf import settings
from django.utils import timezone

from tasdid.billing.emails import receipt_email_queue
from tasdid.billing.models import Payment
from tasdid.billing.services.payments import payment_callback
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


def received(raw: str) -> EmailMessage:
    return BytesParser(policy=default_policy).parsebytes(raw.encode("utf-8"))


def pdf_text(content: bytes, tmp_path) -> str:
    path = tmp_path / "receipt.pdf"
    path.write_bytes(content)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True, timeout=60).stdout


def pay(language: str, run_tasks) -> tuple[Payment, EmailMessage]:
    line, june, _ = line_with_two_invoices()
    order = new_order(line, language=language)
    assert payment_callback(fields=gateway_message(order, paid=[june.reference])).answer == "ACTION=POSTAUTH"
    before = timezone.now().replace(microsecond=0)
    run_tasks()
    [message] = mailbox(to=EMAIL)
    parsed = received(message.raw)
    assert before <= parsed["Date"].datetime <= timezone.now()  # the Date header: when it was sent, in UTC
    return Payment.objects.get(), parsed


def parts(message: EmailMessage) -> tuple[str, str, EmailMessage]:
    """The text and HTML alternatives and the one attachment, checking the structure on the way."""
    assert message.get_content_type() == "multipart/mixed"
    alternative, attachment = message.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    text, html = (p.get_content() for p in alternative.iter_parts())
    return text, html, attachment


def test_french_receipt_email_has_text_html_and_the_pdf_and_transactional_headers(smtp_sink, run_tasks, tmp_path):
    payment, message = pay("fr", run_tasks)
    number, link = payment.receipt_number, receipt_link(payment, absolute=True)
    text, html, attachment = parts(message)

    assert message["Subject"] == f"Votre reçu de paiement {number}"
    assert message["To"] == EMAIL
    assert message["From"] == settings.DEFAULT_FROM_EMAIL
    assert message["Reply-To"] == settings.EMAIL_REPLY_TO == "Tasdid Service client <service-client@tasdid.example.ma>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Content-Language"] == "fr"
    email = Email.objects.get()
    assert message["Message-ID"] == f"<{email.message_id}@tasdid.example.ma>"
    assert message["List-Unsubscribe"] is None and message["Precedence"] is None

    local = timezone.localtime(payment.paid_at)
    assert f"Nous avons bien reçu votre paiement de 186.00 DH le {local:%d/%m/%Y} à {local:%H:%M}" in text
    assert f"Reçu de paiement : {number}" in text and f"Carte : Visa {MASKED}" in text
    assert "Votre reçu est joint à cet email au format PDF." in text
    assert link in text
    assert '<html lang="fr" dir="ltr">' in html
    assert f'<a href="{link}"' in html and "Consulter et imprimer mon reçu</a>" in html
    assert "<img" not in html and "<link" not in html and "<style" not in html and "<script" not in html

    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == f"recu-{number}.pdf"
    assert attachment.get_content_disposition() == "attachment"
    pdf = pdf_text(attachment.get_content(), tmp_path)
    assert number in pdf and "186.00" in pdf and "Reçu de paiement" in pdf and "Juin 2017" in pdf


def test_an_order_placed_in_arabic_gets_an_arabic_email_and_pdf(smtp_sink, run_tasks, tmp_path):
    payment, message = pay("ar", run_tasks)
    number = payment.receipt_number
    text, html, attachment = parts(message)

    # Encoded words folded onto the next line: the parser keeps the fold's space, mail programs do not.
    assert message["Subject"].lstrip() == f"إيصال الدفع الخاص بكم {number}"
    assert message["Content-Language"] == "ar"
    assert "تسلّمنا دفعتكم بمبلغ 186.00 درهم" in text
    assert "يونيو 2017" in text  # the month, in Arabic
    assert "Nous avons" not in text and "Reçu" not in text
    assert '<html lang="ar" dir="rtl">' in html and 'dir="rtl"' in html.split("<body", 1)[1]
    assert "تسلّمنا دفعتكم بمبلغ 186.00 درهم" in html and "عرض الإيصال وطباعته</a>" in html
    assert f'<span dir="ltr">{MASKED}</span>' in html  # a card number keeps its order in right-to-left text
    pdf = pdf_text(attachment.get_content(), tmp_path)
    assert number in pdf and "186.00" in pdf and MASKED in pdf
    assert "إيصال الدفع" in pdf and "يونيو" in pdf and "Juin" not in pdf and "Reçu de paiement" not in pdf


def test_an_order_placed_in_english_gets_an_english_email_and_pdf(smtp_sink, run_tasks, tmp_path):
    payment, message = pay("en", run_tasks)
    number = payment.receipt_number
    text, html, attachment = parts(message)

    local = timezone.localtime(payment.paid_at)
    assert message["Subject"].lstrip() == f"Your payment receipt {number}"
    assert message["Content-Language"] == "en"
    assert f"We have received your payment of 186.00 DH on {local:%d/%m/%Y} at {local:%H:%M}" in text
    assert "June 2017" in text and "Total paid: 186.00 DH" in text
    assert '<html lang="en" dir="ltr">' in html and "View and print my receipt</a>" in html
    pdf = pdf_text(attachment.get_content(), tmp_path)
    assert number in pdf and "186.00" in pdf and "June 2017" in pdf


def test_the_receipt_email_is_queued_once_however_often_its_task_runs(db, run_tasks):
    line, *_ = line_with_two_invoices()
    payment_callback(fields=gateway_message(new_order(line)))
    payment = Payment.objects.get()
    assert Email.objects.count() == 0  # not composed inside the settlement

    assert receipt_email_queue(payment_id=payment.pk) is True
    assert receipt_email_queue(payment_id=payment.pk) is False
    run_tasks()  # the settlement's own task comes after: nothing more

    email = Email.objects.get()
    assert (email.subject, email.language, email.attachments.count()) == (
        f"Votre reçu de paiement {payment.receipt_number}", "fr", 1)
    payment.refresh_from_db()
    assert payment.receipt_email_queued_at is not None


def test_a_payment_voided_before_its_email_was_composed_gets_no_receipt_email(db, run_tasks):
    line, *_ = line_with_two_invoices()
    order = new_order(line)
    payment_callback(fields=gateway_message(order))
    order.state = "voided"  # reconciliation found it never captured (services.reconciliation)
    order.save(update_fields=["state"])

    run_tasks()

    assert Email.objects.count() == 0
    assert MailboxMessage.objects.count() == 0
    assert Payment.objects.get().receipt_email_queued_at is None


def test_without_the_pdf_setting_the_email_has_no_attachment_and_does_not_promise_one(smtp_sink, run_tasks, settings):
    settings.RECEIPT_EMAIL_PDF = False
    payment, message = pay("fr", run_tasks)
    assert message.get_content_type() == "multipart/alternative"
    text, html = (p.get_content() for p in message.iter_parts())
    assert "joint à cet email" not in text and "joint à cet email" not in html
    assert receipt_link(payment, absolute=True) in text
    assert message.get_payload()[0].get_filename() is None


def test_with_arabic_digits_the_arabic_email_writes_eastern_digits_dirhams_and_moroccan_months(
        smtp_sink, run_tasks, tmp_path, settings):
    """settings.ARABIC_DIGITS = "arabic", an order placed in Arabic paying June and July 2017: the text, the HTML
    and the PDF write amounts, dates and times in Eastern Arabic digits, « درهم » (never "DH") and July as Morocco
    names it (« يوليوز »); references and the card unchanged."""
    settings.ARABIC_DIGITS = "arabic"
    line, june, july = line_with_two_invoices()
    order = new_order(line, language="ar")
    fields = gateway_message(order, paid=[june.reference, july.reference])
    assert payment_callback(fields=fields).answer == "ACTION=POSTAUTH"
    run_tasks()
    [message] = mailbox(to=EMAIL)
    text, html, attachment = parts(received(message.raw))
    payment = Payment.objects.get()
    local = timezone.localtime(payment.paid_at)
    eastern = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
    day, clock = f"{local:%d/%m/%Y}".translate(eastern), f"{local:%H:%M}".translate(eastern)

    for body in (text, html):
        for expected in ["٢٨٥٫٠٠ درهم", day, clock, "يونيو ٢٠١٧", "يوليوز ٢٠١٧", june.reference, july.reference,
                         MASKED]:
            assert expected in body.replace("\u00a0", " "), expected
        assert "DH" not in body and "285.00" not in body and "يوليو " not in body
    assert "١٨٦٫٠٠ درهم" in html.replace("\u00a0", " ") and "٩٩٫٠٠ درهم" in html.replace("\u00a0", " ")
    pdf = pdf_text(attachment.get_content(), tmp_path)
    assert "٢٨٥٫٠٠" in pdf and "يوليوز" in pdf and "285.00" not in pdf and payment.receipt_number in pdf
