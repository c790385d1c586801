"""Codes fidelio by SMS: "code" to 1111 from a customer's mobile gets a 6-digit code back; hashed, expiring,
single use, replaced by the next one, limited per line; anything else gets a polite answer."""

import datetime as dt
import html
import re
import sys

import pytest
import time_machine
from django.utils import timezone
from django.views.debug import SafeExceptionReporterFilter, get_exception_reporter_class

from tasdid.billing.codes import fidelio_scope
from tasdid.billing.models import FidelioCode, IdentificationAttempt, PaymentOrder
from tasdid.billing.services import fidelio
from tasdid.billing.services.fidelio import FidelioReply, fidelio_code_request, is_code_request
from tasdid.billing.services.identification import Identified, Refusal, Refused, identify_mobile
from tasdid.core.codes import code_digest, generate_numeric
from tasdid.messaging.models import HandsetMessage, Sms
from tasdid.messaging.services import REDACTED, sms_receive
from tests import factories
from tests.billing.payments_fixtures import line_with_two_invoices, new_order
from tests.support.sms import code_in, last_sms_text

NUMBER = "+212661000001"
T0 = dt.datetime(2025, 6, 12, 10, 0, tzinfo=dt.UTC)  # 11:00 in Casablanca (UTC+1)


@pytest.mark.parametrize("text", ["code", "CODE", " Code ", "\tcOdE\n", "co de", " C O D E "])
def test_code_keyword_in_any_case_with_spaces(text):
    assert is_code_request(text)


@pytest.mark.parametrize("text", ["", "codes", "code 1", "mot de passe", "côde", "c0de"])
def test_other_texts_are_not_code_requests(text):
    assert not is_code_request(text)


def _send_code_sms(text="code", sender=NUMBER):
    sms_receive(sender=sender, to="1111", text=text)


@pytest.mark.django_db
def test_code_sms_to_1111_sends_a_code_back_hashed_at_rest_and_redacted_after_delivery(run_tasks):
    line = factories.mobile_line(number=NUMBER)
    with time_machine.travel(T0, tick=False):
        _send_code_sms(" Code ")
        assert run_tasks() == 1

    received = HandsetMessage.objects.get(number=NUMBER)
    assert received.sender == "1111"
    code = code_in(received.text)
    assert received.text == (f"Votre code fidelio est {code}. Il est valable 15 minutes et ne sert qu'une fois. "
                             "Ne le communiquez à personne.")
    stored = FidelioCode.objects.get(line=line)
    assert stored.digest == code_digest(fidelio_scope(line.pk), code)
    assert code not in stored.digest
    assert stored.created_at == T0
    assert stored.expires_at == T0 + dt.timedelta(minutes=15)
    assert stored.used_at is None
    # The outbox keeps the SMS without its secret once delivered.
    outbound = Sms.objects.get(direction=Sms.Direction.OUTBOUND)
    assert outbound.status == Sms.Status.DELIVERED
    assert code not in outbound.text and REDACTED in outbound.text
    assert outbound.secrets == []
    inbound = Sms.objects.get(direction=Sms.Direction.INBOUND)
    assert (inbound.sender, inbound.recipient, inbound.text) == (NUMBER, "1111", " Code ")


@pytest.mark.django_db
def test_code_validity_is_configurable(settings):
    settings.FIDELIO_CODE_SECONDS = 300
    line = factories.mobile_line(number=NUMBER)
    assert fidelio_code_request(number=NUMBER, now=T0) == FidelioReply.CODE_SENT
    assert FidelioCode.objects.get(line=line).expires_at == T0 + dt.timedelta(minutes=5)
    assert "valable 5 minutes" in Sms.objects.get().text


@pytest.mark.django_db
def test_code_works_once_and_not_after_expiry(run_tasks):
    line = factories.mobile_line(number=NUMBER)
    fidelio_code_request(number=NUMBER, now=T0)
    run_tasks()
    code = code_in(last_sms_text(NUMBER))

    late = T0 + dt.timedelta(minutes=15)
    assert identify_mobile(number=NUMBER, fidelio_code=code, client_ip="10.0.0.1", now=late) == \
        Refused(Refusal.WRONG_CODE)

    fidelio_code_request(number=NUMBER, now=T0 + dt.timedelta(minutes=16))
    run_tasks()
    fresh = code_in(last_sms_text(NUMBER))
    at = T0 + dt.timedelta(minutes=30, seconds=59)  # 14 min 59 s after it was sent
    assert identify_mobile(number=NUMBER, fidelio_code=fresh, client_ip="10.0.0.1", now=at) == \
        Identified(line_id=line.pk, kind="mobile")
    assert FidelioCode.objects.get(expires_at__gt=at).used_at == at
    assert identify_mobile(number=NUMBER, fidelio_code=fresh, client_ip="10.0.0.1", now=at) == \
        Refused(Refusal.WRONG_CODE)


@pytest.mark.django_db
def test_a_new_code_replaces_the_older_unused_one(run_tasks):
    line = factories.mobile_line(number=NUMBER)
    fidelio_code_request(number=NUMBER, now=T0)
    run_tasks()
    first = code_in(last_sms_text(NUMBER))
    fidelio_code_request(number=NUMBER, now=T0 + dt.timedelta(minutes=1))
    run_tasks()
    second = code_in(last_sms_text(NUMBER))

    later = T0 + dt.timedelta(minutes=2)
    if first != second:  # two random codes may be equal (1 in a million): then the first proves nothing
        assert identify_mobile(number=NUMBER, fidelio_code=first, client_ip="", now=later) == \
            Refused(Refusal.WRONG_CODE)
    assert identify_mobile(number=NUMBER, fidelio_code=second, client_ip="", now=later) == \
        Identified(line_id=line.pk, kind="mobile")
    older = FidelioCode.objects.filter(line=line).order_by("created_at").first()
    assert older.expires_at == T0 + dt.timedelta(minutes=1)
    assert older.used_at is None


@pytest.mark.django_db
def test_a_code_is_only_right_for_its_own_line(run_tasks):
    factories.mobile_line(number=NUMBER)
    other = factories.mobile_line(number="+212661000002")
    fidelio_code_request(number=NUMBER, now=T0)
    fidelio_code_request(number=other.number, now=T0)
    run_tasks()
    mine = code_in(last_sms_text(NUMBER))
    theirs = code_in(last_sms_text(other.number))
    if mine != theirs:
        assert identify_mobile(number=other.number, fidelio_code=mine, client_ip="", now=T0) == \
            Refused(Refusal.WRONG_CODE)
    assert identify_mobile(number=other.number, fidelio_code=theirs, client_ip="", now=T0) == \
        Identified(line_id=other.pk, kind="mobile")


@pytest.mark.django_db
def test_three_requests_per_quarter_hour_then_a_polite_wait(run_tasks):
    line = factories.mobile_line(number=NUMBER)
    for minute in (0, 1, 2):
        assert fidelio_code_request(number=NUMBER, now=T0 + dt.timedelta(minutes=minute)) == FidelioReply.CODE_SENT
    assert fidelio_code_request(number=NUMBER, now=T0 + dt.timedelta(minutes=5)) == FidelioReply.TOO_MANY_REQUESTS
    assert FidelioCode.objects.filter(line=line).count() == 3
    run_tasks()
    # The first request leaves the window at 10:15 UTC, 11:15 in Casablanca.
    assert last_sms_text(NUMBER) == ("Vous avez déjà demandé plusieurs codes fidelio. Merci de patienter : vous "
                                     "pourrez en demander un nouveau à partir de 11:15.")
    assert fidelio_code_request(number=NUMBER, now=T0 + dt.timedelta(minutes=15)) == FidelioReply.CODE_SENT
    assert FidelioCode.objects.filter(line=line).count() == 4


@pytest.mark.django_db
def test_unknown_number_gets_a_polite_answer_and_no_code(run_tasks):
    factories.mobile_line(number=NUMBER)
    factories.fixed_line(number="+212522000001")
    _send_code_sms(sender="0662999999")
    _send_code_sms(sender="0522000001")  # a fixed line's number is no mobile line
    run_tasks()
    expected = ("Ce numéro ne correspond à aucune ligne mobile client. Pour obtenir un code fidelio, envoyez « code » "
                "au 1111 depuis le numéro mobile de la ligne à payer.")
    assert last_sms_text("+212662999999") == expected
    assert last_sms_text("+212522000001") == expected
    assert FidelioCode.objects.count() == 0


@pytest.mark.django_db
def test_unknown_keyword_gets_a_polite_answer_and_no_code(run_tasks):
    factories.mobile_line(number=NUMBER)
    _send_code_sms("bonjour")
    run_tasks()
    assert last_sms_text(NUMBER) == ("Message non reconnu. Pour recevoir votre code fidelio, envoyez « code » au 1111 "
                                     "depuis le numéro mobile de la ligne à payer.")
    assert FidelioCode.objects.count() == 0


@pytest.mark.django_db
def test_a_locked_line_gets_no_code_until_the_lock_ends(run_tasks):
    line = factories.mobile_line(number=NUMBER)
    line.locked_until = T0 + dt.timedelta(minutes=30)
    line.save(update_fields=["locked_until"])
    assert fidelio_code_request(number=NUMBER, now=T0) == FidelioReply.LINE_LOCKED
    run_tasks()
    assert last_sms_text(NUMBER) == ("Après plusieurs codes erronés, votre ligne est bloquée jusqu'à 11:30. Vous "
                                     "pourrez alors demander un nouveau code fidelio.")
    assert FidelioCode.objects.count() == 0
    assert fidelio_code_request(number=NUMBER, now=T0 + dt.timedelta(minutes=30)) == FidelioReply.CODE_SENT


@pytest.mark.django_db
def test_five_wrong_fidelio_codes_lock_the_line_and_the_right_one_waits(run_tasks):
    line = factories.mobile_line(number=NUMBER)
    fidelio_code_request(number=NUMBER, now=T0)
    run_tasks()
    code = code_in(last_sms_text(NUMBER))
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for attempt in range(4):
        assert identify_mobile(number=NUMBER, fidelio_code=wrong, client_ip="10.0.0.9",
                               now=T0 + dt.timedelta(seconds=attempt)) == Refused(Refusal.WRONG_CODE)
    fifth = T0 + dt.timedelta(seconds=4)
    locked_until = fifth + dt.timedelta(minutes=30)
    assert identify_mobile(number=NUMBER, fidelio_code=wrong, client_ip="10.0.0.9", now=fifth) == \
        Refused(Refusal.LINE_LOCKED, locked_until=locked_until)
    # Locked: even the right code is refused, and not used up.
    assert identify_mobile(number=NUMBER, fidelio_code=code, client_ip="10.0.0.9", now=fifth) == \
        Refused(Refusal.LINE_LOCKED, locked_until=locked_until)
    assert FidelioCode.objects.get(line=line).used_at is None
    assert list(IdentificationAttempt.objects.order_by("pk").values_list("reason", flat=True)) == \
        ["wrong_code"] * 5 + ["line_locked"]


@pytest.mark.django_db
def test_requests_read_the_clock_when_no_time_is_given():
    factories.mobile_line(number=NUMBER)
    with time_machine.travel(T0, tick=False):
        assert timezone.now() == T0
        fidelio_code_request(number=NUMBER)
    assert FidelioCode.objects.get().created_at == T0
    assert Sms.objects.get().text.startswith("Votre code fidelio est ")


@pytest.mark.django_db
def test_a_lock_ending_another_day_says_the_day(run_tasks):
    line = factories.mobile_line(number=NUMBER)
    line.locked_until = T0 + dt.timedelta(hours=13, minutes=50)  # 00:50 the next day in Casablanca
    line.save(update_fields=["locked_until"])
    fidelio_code_request(number=NUMBER, now=T0)
    run_tasks()
    assert "bloquée jusqu'à 13/06/2025 à 00:50." in last_sms_text(NUMBER)



def _error_report(call):
    """The project's error report of the exception ``call()`` raises, as the 500 email would render it."""
    try:
        call()
    except RuntimeError:
        return get_exception_reporter_class(None)(None, *sys.exc_info())
    raise AssertionError("no exception")


@pytest.mark.django_db
def test_an_error_while_queueing_the_code_sms_reports_no_code(monkeypatch):
    """The finished SMS holds the code in clear: an error report of a failure to queue it must not show it."""
    factories.mobile_line(number=NUMBER)
    issued = {}

    def generate(length):
        issued["code"] = generate_numeric(length)
        return issued["code"]

    def outbox_down(*, sender, to, text, secrets=()):
        assert issued["code"] in text  # the SMS is finished, the code in it
        raise RuntimeError("outbox down")

    monkeypatch.setattr(fidelio, "generate_numeric", generate)
    monkeypatch.setattr(fidelio, "sms_send", outbox_down)
    reporter = _error_report(lambda: fidelio_code_request(number=NUMBER, now=T0))

    text, page = reporter.get_traceback_text(), html.unescape(reporter.get_traceback_html())
    assert "outbox down" in text
    assert issued["code"] not in text and issued["code"] not in page
    reply = next(frame for frame in reporter.get_traceback_frames() if frame["function"] == "_reply")
    assert dict(reply["vars"])["text"] == SafeExceptionReporterFilter.cleansed_substitute


# The answer's language: the line's, or Arabic for « رمز », never the page's or the channel's ---------------------

@pytest.mark.parametrize("text", ["رمز", " رمز ", "ر م ز"])
def test_the_arabic_keyword_is_a_code_request(text):
    assert is_code_request(text)


def _phone_answer(client, run_tasks, text: str, query: str = "") -> str:
    response = client.post(f"/sandbox/phone{query}", {"sender": "06 61 00 00 01", "recipient": "1111", "text": text})
    assert response.status_code == 302
    assert run_tasks() == 1
    return HandsetMessage.objects.filter(number=NUMBER).order_by("-received_at", "-pk").first().text


@pytest.mark.django_db
def test_the_sandbox_phone_page_s_language_does_not_decide_the_answer(client, run_tasks):
    """The phone page in Arabic, a line that never paid on the biller's site: the answer is in French."""
    factories.mobile_line(number=NUMBER)
    client.get("/sandbox/phone?lang=ar")
    text = _phone_answer(client, run_tasks, "code", "?lang=ar")
    assert re.fullmatch(r"Votre code fidelio est \d{6}\. Il est valable 15 minutes .*", text)


@pytest.mark.django_db
def test_the_answer_speaks_the_language_of_the_line_s_latest_payment_order(client, run_tasks):
    line, _june, _july = line_with_two_invoices(number=NUMBER)
    first = new_order(line, language="ar")
    later = first.created_at + dt.timedelta(minutes=1)
    PaymentOrder.objects.create(oid="ORDER-LATER", line=line, email=first.email, amount=first.amount,
                                created_at=later, updated_at=later, language="en")  # the latest one
    text = _phone_answer(client, run_tasks, "code")
    assert re.fullmatch(r"Your fidelio code is \d{6}\. It is valid for 15 minutes .*", text)
    assert _phone_answer(client, run_tasks, "hello") == (
        "Message not recognised. To get your fidelio code, text “code” to 1111 from the mobile number of the line "
        "to pay.")


@pytest.mark.django_db
def test_the_arabic_keyword_is_answered_in_arabic_whatever_the_line_used(client, run_tasks):
    line, _june, _july = line_with_two_invoices(number=NUMBER)
    new_order(line, language="fr")
    text = _phone_answer(client, run_tasks, "رمز")
    code = code_in(text)
    assert text == (f"رمز فيديليو الخاص بك هو {code}. صالح لمدة 15 دقيقة ولا يُستعمل إلا مرة واحدة. "
                    "لا تُطلع عليه أحدًا.")
    assert FidelioCode.objects.get(line=line).digest == code_digest(fidelio_scope(line.pk), code)
    # An unknown number writing « رمز » is told so in Arabic.
    HandsetMessage.objects.all().delete()
    client.post("/sandbox/phone", {"sender": "06 61 99 99 99", "recipient": "1111", "text": "رمز"})
    assert run_tasks() == 1
    assert HandsetMessage.objects.get(number="+212661999999").text.startswith("هذا الرقم لا يطابق أي خط محمول لزبون.")
