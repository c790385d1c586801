"""The sandbox mailbox: what the demo's SMTP sink received (real SMTP over loopback), shown safely."""

import re

import pytest

from tasdid.messaging.mail import Attachment
from tasdid.messaging.models import MailboxMessage
from tasdid.messaging.services import email_send

HOSTILE_HTML = ('<p style="color:red">Reçu <b>R-1</b></p><script>alert("x")</script>'
                '<img src="x" onerror="alert(1)"><a href="http://127.0.0.1/recu/R-1/t">Voir</a>')


@pytest.fixture
def received(smtp_sink, run_tasks, settings):
    # Django's test setup swaps in the in-memory email backend; this test wants the real SMTP client.
    settings.EMAIL_BACKEND = "tasdid.messaging.mail.SmtpBackend"
    email_send(to="client@example.ma", subject="Votre reçu de paiement R-1",
               body_text="Bonjour,\nvotre reçu : http://127.0.0.1:8000/recu/R-1/abc\n", body_html=HOSTILE_HTML)
    email_send(to="autre@example.ma", subject="Autre message", body_text="Rien.")
    assert run_tasks() == 2
    assert MailboxMessage.objects.count() == 2
    return MailboxMessage.objects.get(subject="Votre reçu de paiement R-1")


def test_the_mailbox_lists_received_emails_newest_first(client, received):
    html = client.get("/sandbox/mail").content.decode()
    subjects = re.findall(r'<a href="/sandbox/mail/\d+">(.*?)</a>', html)
    assert subjects == ["Autre message", "Votre reçu de paiement R-1"]
    filtered = client.get("/sandbox/mail", {"to": "client@example.ma"}).content.decode()
    assert re.findall(r'<a href="/sandbox/mail/\d+">(.*?)</a>', filtered) == ["Votre reçu de paiement R-1"]


def test_a_message_shows_its_text_with_links_and_its_html_escaped(client, received):
    response = client.get(f"/sandbox/mail/{received.pk}")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<h1>Votre reçu de paiement R-1</h1>" in html
    assert ('votre reçu : <a href="http://127.0.0.1:8000/recu/R-1/abc" rel="nofollow">'
            "http://127.0.0.1:8000/recu/R-1/abc</a>") in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "<script>alert" not in html and "<img src=\"x\"" not in html
    assert f'href="/sandbox/mail/{received.pk}/html"' in html


def test_the_html_part_is_served_in_a_sandboxed_document(client, received):
    response = client.get(f"/sandbox/mail/{received.pk}/html")
    assert response.status_code == 200
    assert response.content.decode().strip() == HOSTILE_HTML
    policy = {d.split(" ", 1)[0]: d for d in response["Content-Security-Policy"].split("; ")}
    assert policy["sandbox"] == "sandbox"
    assert policy["script-src"] == "script-src 'none'"
    assert policy["default-src"] == "default-src 'none'"
    assert policy["form-action"] == "form-action 'none'"


def test_a_message_without_html_has_no_html_view(client, received):
    other = MailboxMessage.objects.get(subject="Autre message")
    assert client.get(f"/sandbox/mail/{other.pk}/html").status_code == 404
    assert client.get("/sandbox/mail/999999").status_code == 404


def test_an_attachment_is_listed_and_downloads_as_sent(client, smtp_sink, run_tasks):
    pdf = b"%PDF-1.7\n% a receipt\n%%EOF\n"
    email_send(to="client@example.ma", subject="Votre reçu de paiement R-2", body_text="Votre reçu est joint.",
               attachments=[Attachment(filename="recu-R-2.pdf", content=pdf, mimetype="application/pdf")])
    assert run_tasks() == 1
    message = MailboxMessage.objects.get()

    html = client.get(f"/sandbox/mail/{message.pk}").content.decode()
    assert (f'<a href="/sandbox/mail/{message.pk}/piece/1" download>recu-R-2.pdf</a> (application/pdf, 27\xa0octets)'
            in html)
    response = client.get(f"/sandbox/mail/{message.pk}/piece/1")
    assert (response.status_code, response["Content-Type"], response.content) == (200, "application/pdf", pdf)
    assert response["Content-Disposition"] == 'attachment; filename="recu-R-2.pdf"'
    assert client.get(f"/sandbox/mail/{message.pk}/piece/2").status_code == 404
