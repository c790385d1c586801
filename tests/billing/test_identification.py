"""Identification: the right code for the right line; wrong codes lock the line for a while; failures from
one client address are limited; every attempt is recorded."""

import datetime as dt

import pytest

from tasdid.billing.models import IdentificationAttempt, ServiceLine
from tasdid.billing.services.identification import (
    Identified,
    Refusal,
    Refused,
    identify_fixed,
    identify_internet,
    identify_mobile,
)
from tests import factories

T0 = dt.datetime(2025, 6, 12, 10, 0, tzinfo=dt.UTC)
FIXED = "+212522000001"


def _attempts():
    return list(IdentificationAttempt.objects.order_by("pk")
                .values_list("client_ip", "kind", "line_id", "succeeded", "reason"))


@pytest.mark.django_db
def test_fixed_line_with_its_payment_code():
    line = factories.fixed_line(number=FIXED, payment_code="4821")
    assert identify_fixed(number=FIXED, payment_code="4821", client_ip="10.0.0.1", now=T0) == \
        Identified(line_id=line.pk, kind="fixed")
    assert _attempts() == [("10.0.0.1", "fixed", line.pk, True, "")]


@pytest.mark.django_db
def test_internet_line_by_its_payment_identifier():
    line = factories.internet_line(identifier="12345678")
    assert identify_internet(payment_identifier="12345678", client_ip="10.0.0.1", now=T0) == \
        Identified(line_id=line.pk, kind="internet")
    assert identify_internet(payment_identifier="12345679", client_ip="10.0.0.1", now=T0) == \
        Refused(Refusal.UNKNOWN_LINE)
    assert _attempts() == [("10.0.0.1", "internet", line.pk, True, ""),
                           ("10.0.0.1", "internet", None, False, "unknown_line")]


@pytest.mark.django_db
def test_unknown_lines_are_refused_and_recorded():
    factories.fixed_line(number=FIXED)
    factories.mobile_line(number="+212661000001")
    assert identify_fixed(number="+212522000002", payment_code="4821", client_ip="10.0.0.1", now=T0) == \
        Refused(Refusal.UNKNOWN_LINE)
    # A mobile number is no fixed line, and the other way round.
    assert identify_fixed(number="+212661000001", payment_code="4821", client_ip="10.0.0.1", now=T0) == \
        Refused(Refusal.UNKNOWN_LINE)
    assert identify_mobile(number=FIXED, fidelio_code="123456", client_ip="", now=T0) == Refused(Refusal.UNKNOWN_LINE)
    assert _attempts() == [("10.0.0.1", "fixed", None, False, "unknown_line"),
                           ("10.0.0.1", "fixed", None, False, "unknown_line"),
                           (None, "mobile", None, False, "unknown_line")]


@pytest.mark.django_db
def test_a_payment_code_is_only_right_for_its_own_number():
    factories.fixed_line(number=FIXED, payment_code="4821")
    other = factories.fixed_line(number="+212522000002", payment_code="7777")
    assert identify_fixed(number=other.number, payment_code="4821", client_ip="", now=T0) == \
        Refused(Refusal.WRONG_CODE)
    assert identify_fixed(number=other.number, payment_code="7777", client_ip="", now=T0) == \
        Identified(line_id=other.pk, kind="fixed")


@pytest.mark.django_db
def test_five_wrong_payment_codes_lock_the_line_for_thirty_minutes():
    line = factories.fixed_line(number=FIXED, payment_code="4821")
    for i in range(4):
        assert identify_fixed(number=FIXED, payment_code="0000", client_ip="10.0.0.1",
                              now=T0 + dt.timedelta(minutes=i)) == Refused(Refusal.WRONG_CODE)
    line.refresh_from_db()
    assert (line.failed_attempts, line.locked_until) == (4, None)

    fifth = T0 + dt.timedelta(minutes=4)
    until = fifth + dt.timedelta(minutes=30)
    assert identify_fixed(number=FIXED, payment_code="0000", client_ip="10.0.0.1", now=fifth) == \
        Refused(Refusal.LINE_LOCKED, locked_until=until)
    line.refresh_from_db()
    assert (line.failed_attempts, line.locked_until) == (0, until)

    # Still locked one second before the end, even with the right code (from anywhere).
    assert identify_fixed(number=FIXED, payment_code="4821", client_ip="10.0.0.2",
                          now=until - dt.timedelta(seconds=1)) == Refused(Refusal.LINE_LOCKED, locked_until=until)
    # Unlocked when the lock ends.
    assert identify_fixed(number=FIXED, payment_code="4821", client_ip="10.0.0.2", now=until) == \
        Identified(line_id=line.pk, kind="fixed")
    line.refresh_from_db()
    assert (line.failed_attempts, line.locked_until) == (0, None)
    assert [a[4] for a in _attempts()] == ["wrong_code"] * 5 + ["line_locked", ""]


@pytest.mark.django_db
def test_a_right_code_resets_the_count_of_wrong_ones():
    line = factories.fixed_line(number=FIXED, payment_code="4821")
    for _ in range(4):
        identify_fixed(number=FIXED, payment_code="0000", client_ip="", now=T0)
    assert identify_fixed(number=FIXED, payment_code="4821", client_ip="", now=T0) == \
        Identified(line_id=line.pk, kind="fixed")
    assert ServiceLine.objects.get(pk=line.pk).failed_attempts == 0
    for _ in range(4):
        assert identify_fixed(number=FIXED, payment_code="0000", client_ip="", now=T0) == Refused(Refusal.WRONG_CODE)


@pytest.mark.django_db
def test_twenty_failures_from_one_address_block_it_for_a_quarter_hour():
    line = factories.internet_line(identifier="12345678")
    for i in range(20):
        identify_internet(payment_identifier=f"9{i:07d}", client_ip="10.0.0.66", now=T0 + dt.timedelta(seconds=i))
    blocked_at = T0 + dt.timedelta(minutes=1)
    # Even the right identifier is refused from that address...
    assert identify_internet(payment_identifier="12345678", client_ip="10.0.0.66", now=blocked_at) == \
        Refused(Refusal.TOO_MANY_ATTEMPTS)
    assert not IdentificationAttempt.objects.filter(succeeded=True).exists()
    # ...but not from another one.
    assert identify_internet(payment_identifier="12345678", client_ip="10.0.0.67", now=blocked_at) == \
        Identified(line_id=line.pk, kind="internet")
    # The window slides: once the first failure is 15 minutes old, the address gets a try again.
    assert identify_internet(payment_identifier="12345678", client_ip="10.0.0.66",
                             now=T0 + dt.timedelta(minutes=15) - dt.timedelta(seconds=1)) == \
        Refused(Refusal.TOO_MANY_ATTEMPTS)
    assert identify_internet(payment_identifier="12345678", client_ip="10.0.0.66",
                             now=T0 + dt.timedelta(minutes=15)) == Identified(line_id=line.pk, kind="internet")
    assert IdentificationAttempt.objects.count() == 24
    assert IdentificationAttempt.objects.filter(reason="too_many_attempts").count() == 2


@pytest.mark.django_db
def test_nineteen_failures_do_not_block_the_address():
    line = factories.internet_line(identifier="12345678")
    for i in range(19):
        identify_internet(payment_identifier=f"9{i:07d}", client_ip="10.0.0.66", now=T0)
    assert identify_internet(payment_identifier="12345678", client_ip="10.0.0.66", now=T0) == \
        Identified(line_id=line.pk, kind="internet")


@pytest.mark.django_db
def test_mobile_line_without_any_code_sent_refuses_every_code():
    line = factories.mobile_line(number="+212661000001")
    assert identify_mobile(number=line.number, fidelio_code="000000", client_ip="", now=T0) == \
        Refused(Refusal.WRONG_CODE)
    line.refresh_from_db()
    assert line.failed_attempts == 1


def test_two_tries_with_the_same_code_at_once_only_one_wins(transactional_db, run_tasks):
    """Two browsers post the same code fidelio at the same moment: the line's row lock lets one through."""
    import threading

    from django.db import connection

    from tasdid.billing.services.fidelio import fidelio_code_request
    from tests.support.sms import code_in, last_sms_text

    line = factories.mobile_line(number="+212661000001")
    fidelio_code_request(number=line.number)
    run_tasks()
    code = code_in(last_sms_text(line.number))
    barrier = threading.Barrier(2)
    results = []

    def attempt(ip: str) -> None:
        try:
            barrier.wait(timeout=10)
            results.append(identify_mobile(number=line.number, fidelio_code=code, client_ip=ip))
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(f"10.0.0.{i}",)) for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results, key=repr) == [Identified(line_id=line.pk, kind="mobile"), Refused(Refusal.WRONG_CODE)]
    assert IdentificationAttempt.objects.filter(succeeded=True).count() == 1
