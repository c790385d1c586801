"""Django's error reports never show the text of an SMS being queued: it can carry a code (fidelio, 3-D Secure)."""

import html

import pytest
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter, get_exception_reporter_class

from tasdid.messaging import services, tasks
from tasdid.messaging.models import Sms

pytestmark = pytest.mark.django_db

CODE = "482193"
TEXT = f"Votre code fidelio est {CODE}. Il est valable 15 minutes."


def broken(*args, **kwargs):
    raise RuntimeError("broken on purpose")


def test_an_exception_while_queueing_an_sms_reports_neither_its_text_nor_its_code(monkeypatch):
    monkeypatch.setattr(type(tasks.deliver_sms), "enqueue", broken)
    with pytest.raises(RuntimeError) as raised:
        services.sms_send(sender="1111", to="+212661000001", text=TEXT, secrets=[CODE])
    exc_info = (raised.type, raised.value, raised.tb)
    project_reporter = get_exception_reporter_class(None)
    assert project_reporter is not ExceptionReporter
    django_reporter = ExceptionReporter(None, *exc_info, is_email=True)
    django_reporter.filter = SafeExceptionReporterFilter()  # the decorator alone, without the project's layer
    for reporter in (project_reporter(None, *exc_info, is_email=True), django_reporter):
        text, page = reporter.get_traceback_text(), html.unescape(reporter.get_traceback_html())
        assert "broken on purpose" in text and "sms_send" in page
        for report in (text, page):
            assert CODE not in report
            assert "Votre code fidelio" not in report
    assert not Sms.objects.exists()  # the failure rolled the SMS back
