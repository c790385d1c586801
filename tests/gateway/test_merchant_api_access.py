"""Who may call the merchant XML API (``/fim/api``) and what it reads: the API user's Name, Password and ClientId
(unknown name, wrong password, another merchant's ClientId, a disabled user), the lockout after wrong passwords,
and XML that is malformed or malicious (DOCTYPE, entities, external references, billion laughs, not UTF-8, too
large): each answered by a CC5Response Error, nothing read further and nothing moved. The API users' admin and
command."""

import datetime as dt
import io

import pytest
from django.contrib.auth.hashers import check_password
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from tasdid.core.staff import staff_grant
from tasdid.gateway import flow, services, xmlapi
from tasdid.gateway.models import ApiAddressLock, ApiRequestRecord, Event, MerchantApiUser

from .conftest import gateway_client, make_merchant
from .hashers import CountingHasher

pytestmark = pytest.mark.django_db

NAME, PASSWORD, CLIENT = "shop-api", "shop-api-password-01", "600000099"


@pytest.fixture
def user(db) -> MerchantApiUser:
    merchant = make_merchant(client_id=CLIENT)
    return services.api_user_create(merchant=merchant, name=NAME, password=PASSWORD).user


@pytest.fixture
def counting_hasher(settings) -> type[CountingHasher]:
    """Passwords hashed by the counting hasher (first of PASSWORD_HASHERS), its count from zero."""
    settings.PASSWORD_HASHERS = ["tests.gateway.hashers.CountingHasher", *settings.PASSWORD_HASHERS]
    CountingHasher.calls = 0
    return CountingHasher


def ask(body: bytes, content_type: str = "text/xml", *, address: str = "127.0.0.1", **meta) -> xmlapi.ApiResponse:
    response = gateway_client().post("/fim/api", data=body, content_type=content_type, REMOTE_ADDR=address, **meta)
    assert response.status_code == 200
    return xmlapi.read_response(response.content)


def status_query(*, name: str = NAME, password: str = PASSWORD, client_id: str = CLIENT) -> bytes:
    return xmlapi.build_request(name=name, password=password, client_id=client_id, order_id="ORDER-1",
                                query="ORDERSTATUS")


def test_the_password_is_kept_hashed_and_a_right_one_opens_the_api(user):
    assert user.password != PASSWORD and check_password(PASSWORD, user.password)
    answer = ask(status_query())
    assert (answer.response, answer.extra["ERRORCODE"]) == ("Error", "ORDER_UNKNOWN")  # authenticated: the order
    user.refresh_from_db()
    assert user.last_used_at is not None and user.failed_attempts == 0


def test_an_unknown_name_and_a_wrong_password_get_the_same_answer(user):
    unknown = ask(status_query(name="nobody-here"))
    wrong = ask(status_query(password="not-the-password"))
    assert unknown == wrong
    assert (wrong.response, wrong.proc_return_code, wrong.extra["ERRORCODE"]) == ("Error", "99", "AUTH")
    assert wrong.err_msg == "Identifiants API invalides : Name ou Password incorrect."
    assert wrong.order_id == "ORDER-1"


def test_a_user_of_another_client_id_is_refused(user):
    make_merchant(client_id="600000100")
    answer = ask(status_query(client_id="600000100"))
    assert (answer.response, answer.extra["ERRORCODE"]) == ("Error", "CLIENTID")
    assert answer.err_msg == "Cet utilisateur API n'appartient pas au marchand indiqué par ClientId."


def test_a_disabled_user_or_merchant_is_refused(user):
    MerchantApiUser.objects.filter(pk=user.pk).update(active=False)
    assert ask(status_query()).extra["ERRORCODE"] == "INACTIVE"
    MerchantApiUser.objects.filter(pk=user.pk).update(active=True)
    make_merchant(client_id=CLIENT, active=False)
    assert ask(status_query()).extra["ERRORCODE"] == "INACTIVE"


def test_wrong_passwords_in_a_row_lock_the_address_they_come_from_then_the_lock_ends(user):
    attacker, program = "203.0.113.9", "198.51.100.20"
    for _n in range(services.API_LOCK_AFTER_FAILURES - 1):
        assert ask(status_query(password="guess-guess-guess"), address=attacker).extra["ERRORCODE"] == "AUTH"
    row = ApiAddressLock.objects.get(api_user=user)
    assert (row.address, row.failures, row.locked_until) == (attacker, services.API_LOCK_AFTER_FAILURES - 1, None)
    assert ask(status_query(password="guess-guess-guess"), address=attacker).extra["ERRORCODE"] == "AUTH"
    row.refresh_from_db()
    assert row.locked_until is not None and row.locked_until > timezone.now() + dt.timedelta(minutes=29)
    # Locked there: a wrong password gets what an unknown name gets (the lock does not tell the name exists) ...
    assert ask(status_query(password="guess-guess-guess"), address=attacker).extra["ERRORCODE"] == "AUTH"
    assert ask(status_query(name="nobody-here", password="guess-guess-guess"),
               address=attacker).extra["ERRORCODE"] == "AUTH"
    # ... and even the right password is refused from that address, and says so ...
    locked = ask(status_query(), address=attacker)
    assert (locked.response, locked.extra["ERRORCODE"]) == ("Error", "LOCKED")
    assert "bloqué" in locked.err_msg
    # ... while the merchant's program, at its own address, goes on: the lock is the attacker's address's only.
    assert ask(status_query(), address=program).extra["ERRORCODE"] == "ORDER_UNKNOWN"
    user.refresh_from_db()
    assert user.locked_until is None
    assert user.failed_attempts == services.API_LOCK_AFTER_FAILURES  # the locked address's tries counted no more
    # Once the lock is over, the right password opens again from there and ends the address's count.
    ApiAddressLock.objects.filter(pk=row.pk).update(locked_until=timezone.now() - dt.timedelta(seconds=1))
    assert ask(status_query(), address=attacker).extra["ERRORCODE"] == "ORDER_UNKNOWN"
    assert not ApiAddressLock.objects.exists()
    # A right password ends the count of wrong ones in a row from its address.
    ask(status_query(password="guess-guess-guess"), address=program)
    assert ApiAddressLock.objects.get().failures == 1
    ask(status_query(), address=program)
    assert not ApiAddressLock.objects.exists()


def test_wrong_passwords_from_many_addresses_lock_the_user_everywhere(counting_hasher, db):
    """Guesses spread over many addresses, each staying under its own lock: at API_USER_LOCK_AFTER_FAILURES within
    API_LOCK_FOR the user is locked whatever the address, its right password told LOCKED."""
    user = services.api_user_create(merchant=make_merchant(client_id=CLIENT), name=NAME, password=PASSWORD).user
    per_address = services.API_LOCK_AFTER_FAILURES - 1
    for n in range(services.API_USER_LOCK_AFTER_FAILURES):
        assert ask(status_query(password=f"guess-{n:04d}-guess"),
                   address=f"192.0.2.{n // per_address + 1}").extra["ERRORCODE"] == "AUTH"
        if n + 1 < services.API_USER_LOCK_AFTER_FAILURES:
            user.refresh_from_db()
            assert user.locked_until is None and user.failed_attempts == n + 1
    assert not ApiAddressLock.objects.filter(locked_until__isnull=False).exists()  # no address locked on its own
    user.refresh_from_db()
    assert user.locked_until is not None and user.locked_until > timezone.now() + dt.timedelta(minutes=29)
    fresh = ask(status_query(), address="198.51.100.20")
    assert (fresh.response, fresh.extra["ERRORCODE"]) == ("Error", "LOCKED")
    assert ask(status_query(password="guess-guess-guess"), address="198.51.100.21").extra["ERRORCODE"] == "AUTH"
    # Wrong passwords older than the window no longer count towards it.
    services.api_user_unlock(user_id=user.pk)
    for n in range(3):
        ask(status_query(password="guess-guess-guess"), address=f"192.0.2.{n + 100}")
    MerchantApiUser.objects.filter(pk=user.pk).update(
        failures_since=timezone.now() - services.API_LOCK_FOR - dt.timedelta(seconds=1))
    ask(status_query(password="guess-guess-guess"), address="192.0.2.200")
    user.refresh_from_db()
    assert user.failed_attempts == 1


def test_the_address_is_remote_addr_unless_a_trusted_proxy_says_otherwise(user, settings):
    """X-Forwarded-For is whatever the client writes: without a trusted proxy (TASDID_TRUSTED_PROXIES) it changes
    nothing, so that it cannot dodge an address's lock; behind one, the hop that proxy added is the address."""
    settings.TRUSTED_PROXY_COUNT = 0
    for n in range(services.API_LOCK_AFTER_FAILURES):
        ask(status_query(password="guess-guess-guess"), address="203.0.113.9",
            HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
    assert list(ApiAddressLock.objects.values_list("address", flat=True)) == ["203.0.113.9"]
    assert ask(status_query(), address="203.0.113.9", HTTP_X_FORWARDED_FOR="10.9.9.9").extra["ERRORCODE"] == "LOCKED"
    settings.TRUSTED_PROXY_COUNT = 1
    assert ask(status_query(), address="10.0.0.1",
               HTTP_X_FORWARDED_FOR="203.0.113.9").extra["ERRORCODE"] == "LOCKED"
    assert ask(status_query(), address="10.0.0.1",
               HTTP_X_FORWARDED_FOR="203.0.113.9, 198.51.100.20").extra["ERRORCODE"] == "ORDER_UNKNOWN"


def test_addresses_are_counted_ipv4_as_is_and_ipv6_by_their_64():
    assert services.api_address_key("203.0.113.9") == "203.0.113.9"
    assert services.api_address_key("::ffff:203.0.113.9") == "203.0.113.9"
    assert services.api_address_key("2001:db8:1:2:aaaa::1") == services.api_address_key("2001:db8:1:2::ffff") \
        == "2001:db8:1:2::/64"
    assert services.api_address_key("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert services.api_address_key("") == "" and services.api_address_key("not an address") == "not an address"


def test_the_sweep_forgets_address_counts_that_no_longer_matter(user):
    now = timezone.now()
    ApiAddressLock.objects.create(api_user=user, address="192.0.2.1", failures=2,
                                  last_failure_at=now - services.API_LOCK_FOR - dt.timedelta(minutes=1))
    ApiAddressLock.objects.create(api_user=user, address="192.0.2.2", failures=3, last_failure_at=now)
    ApiAddressLock.objects.create(api_user=user, address="192.0.2.3", failures=0,
                                  last_failure_at=now - services.API_LOCK_FOR - dt.timedelta(minutes=1),
                                  locked_until=now + dt.timedelta(minutes=5))
    assert flow.sweep(now=now) == {"API address counts forgotten": 1}
    assert sorted(ApiAddressLock.objects.values_list("address", flat=True)) == ["192.0.2.2", "192.0.2.3"]


def test_the_hasher_runs_once_for_an_unknown_name_a_wrong_password_and_a_right_one(counting_hasher, db):
    """The same work whatever the name: the time of the answer does not tell which names exist (counted, never
    timed)."""
    merchant = make_merchant(client_id=CLIENT)
    services.api_user_create(merchant=merchant, name=NAME, password=PASSWORD)
    disabled = services.api_user_create(merchant=merchant, name="shop-api-off", password=PASSWORD).user
    MerchantApiUser.objects.filter(pk=disabled.pk).update(active=False)
    cases = [(status_query(name="nobody-here"), "AUTH"), (status_query(password="not-the-password"), "AUTH"),
             (status_query(), "ORDER_UNKNOWN"), (status_query(name="shop-api-off", password="wrong-password"), "AUTH"),
             (status_query(name="shop-api-off"), "INACTIVE")]
    for body, code in cases:
        counting_hasher.calls = 0
        assert ask(body, address="192.0.2.50").extra["ERRORCODE"] == code
        assert counting_hasher.calls == 1, code
    # Locked (here, the address), the same: one hash for the wrong password and for the right one.
    for _n in range(services.API_LOCK_AFTER_FAILURES):
        ask(status_query(password="not-the-password"), address="192.0.2.60")
    for body, code in [(status_query(password="not-the-password"), "AUTH"), (status_query(), "LOCKED")]:
        counting_hasher.calls = 0
        assert ask(body, address="192.0.2.60").extra["ERRORCODE"] == code
        assert counting_hasher.calls <= 1, code


def test_setting_a_password_ends_the_lock(user):
    MerchantApiUser.objects.filter(pk=user.pk).update(locked_until=timezone.now() + dt.timedelta(hours=1))
    ApiAddressLock.objects.create(api_user=user, address="127.0.0.1", last_failure_at=timezone.now(),
                                  locked_until=timezone.now() + dt.timedelta(hours=1))
    services.api_user_set_password(user_id=user.pk, password="a-new-password-123")
    assert not ApiAddressLock.objects.exists()
    assert ask(status_query(password="a-new-password-123")).extra["ERRORCODE"] == "ORDER_UNKNOWN"
    assert ask(status_query()).extra["ERRORCODE"] == "AUTH"  # the old one no longer works


BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + b"".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
                             .encode() for i in range(1, 10))
                  + b"]><CC5Request><Name>&lol9;</Name></CC5Request>")


@pytest.mark.parametrize(("body", "code"), [
    (BILLION_LAUGHS, "FORBIDDEN_XML"),
    (b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><CC5Request><Name>&x;</Name></CC5Request>',
     "FORBIDDEN_XML"),
    (b'<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]><CC5Request/>', "FORBIDDEN_XML"),
    (b'<!DOCTYPE CC5Request SYSTEM "http://127.0.0.1:9/x.dtd"><CC5Request/>', "FORBIDDEN_XML"),
    (f'<!DOCTYPE r [<!ENTITY pw "{PASSWORD}">]><CC5Request><Name>{NAME}</Name><Password>&pw;</Password>'
     f"<ClientId>{CLIENT}</ClientId><OrderId>O</OrderId><Extra><ORDERSTATUS>QUERY</ORDERSTATUS></Extra>"
     "</CC5Request>".encode(), "FORBIDDEN_XML"),
    (f'<CC5Request><Name>{NAME}</Name><Password><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
     f'href="/etc/passwd" parse="text"/></Password><ClientId>{CLIENT}</ClientId><OrderId>O</OrderId>'
     "<Extra><ORDERSTATUS>QUERY</ORDERSTATUS></Extra></CC5Request>".encode(), "BAD_ELEMENT"),
    ('<?xml version="1.0" encoding="ISO-8859-1"?><CC5Request><Name>é</Name></CC5Request>'.encode("latin-1"),
     "NOT_UTF8"),
    ("<CC5Request><Name>é</Name></CC5Request>".encode("latin-1"), "NOT_UTF8"),
    ("<CC5Request><Name>x</Name></CC5Request>".encode("utf-16"), "NOT_UTF8"),
    (b"<CC5Request><Name>x</Name>", "BAD_XML"),
    (b"", "EMPTY"),
    (b"<CC5Response/>", "NOT_CC5REQUEST"),
    (b"<CC5Request>" + b"<a>" * 3000 + b"</a>" * 3000 + b"</CC5Request>", "TOO_LARGE"),
    (b"<CC5Request><Name>a\x01b</Name></CC5Request>", "BAD_XML"),
])
def test_malformed_or_malicious_xml_is_refused_and_reads_nothing(user, body, code):
    answer = ask(body)
    assert (answer.response, answer.proc_return_code, answer.extra["ERRORCODE"]) == ("Error", "99", code)
    assert "root:" not in answer.err_msg and PASSWORD not in answer.err_msg
    user.refresh_from_db()
    assert user.last_used_at is None  # never authenticated
    assert not ApiRequestRecord.objects.exists() and not Event.objects.exists()


def test_a_body_over_the_limit_is_not_read():
    body = b"<CC5Request><Email>" + b"a" * xmlapi.MAX_BODY + b"</Email></CC5Request>"
    answer = ask(body)
    assert answer.extra["ERRORCODE"] == "TOO_LARGE" and str(xmlapi.MAX_BODY) in answer.err_msg


def test_the_xml_may_come_form_encoded_in_data_as_nestpay_clients_post_it(user):
    from urllib.parse import quote_plus

    body = ("DATA=" + quote_plus(status_query().decode())).encode()
    assert ask(body, "application/x-www-form-urlencoded").extra["ERRORCODE"] == "ORDER_UNKNOWN"
    assert ask(b"XML=x", "application/x-www-form-urlencoded").extra["ERRORCODE"] == "BAD_FORM"


def test_only_post_and_no_csrf_token_needed(user):
    client = gateway_client()
    client.handler.enforce_csrf_checks = True
    response = client.get("/fim/api")
    assert response.status_code == 405 and xmlapi.read_response(response.content).extra["ERRORCODE"] == "METHOD"
    response = client.post("/fim/api", data=status_query(), content_type="text/xml")
    assert response.status_code == 200
    assert xmlapi.read_response(response.content).extra["ERRORCODE"] == "ORDER_UNKNOWN"


def test_the_command_creates_a_user_with_a_password_shown_once(db):
    make_merchant(client_id=CLIENT)
    out = io.StringIO()
    call_command("merchant_api_user", "--client-id", CLIENT, "--name", "erp-api", stdout=out)
    password = out.getvalue().split(" : ")[-1].strip()
    user = MerchantApiUser.objects.get(name="erp-api")
    assert len(password) == services.API_PASSWORD_LENGTH and check_password(password, user.password)
    assert password not in user.password
    with pytest.raises(CommandError, match="déjà pris"):
        call_command("merchant_api_user", "--client-id", CLIENT, "--name", "erp-api", stdout=io.StringIO())
    with pytest.raises(CommandError, match="Marchand inconnu"):
        call_command("merchant_api_user", "--client-id", "999", "--name", "x-api", stdout=io.StringIO())


@pytest.fixture
def admin_client_for_gateway(db):
    User.objects.create_superuser("admin", "admin@example.ma", "pw-Strong-123")
    staff_grant(username="admin", parties=["gateway"])
    client = gateway_client()
    assert client.post("/admin/login/", {"username": "admin", "password": "pw-Strong-123"}).status_code == 302
    return client


def test_the_admin_creates_a_user_and_shows_its_generated_password_once(admin_client_for_gateway):
    merchant = make_merchant(client_id=CLIENT)
    response = admin_client_for_gateway.post("/admin/gateway/merchantapiuser/add/", {
        "merchant": merchant.pk, "name": "admin-api", "active": "on", "new_password": ""}, follow=True)
    assert response.status_code == 200
    user = MerchantApiUser.objects.get(name="admin-api")
    shown = [str(m) for m in response.context["messages"]]
    (message,) = [m for m in shown if "affiché une seule fois" in m]
    password = message.rsplit(" : ", 1)[-1]
    assert check_password(password, user.password)
    page = admin_client_for_gateway.get(f"/admin/gateway/merchantapiuser/{user.pk}/change/").content.decode()
    assert password not in page and user.password not in page
    # Set a password: the lock ends.
    MerchantApiUser.objects.filter(pk=user.pk).update(locked_until=timezone.now() + dt.timedelta(hours=1))
    admin_client_for_gateway.post(f"/admin/gateway/merchantapiuser/{user.pk}/change/", {
        "active": "on", "new_password": "typed-password-0001", "address_locks-TOTAL_FORMS": "0",
        "address_locks-INITIAL_FORMS": "0"}, follow=True)
    user.refresh_from_db()
    assert check_password("typed-password-0001", user.password) and user.locked_until is None


def test_the_admin_shows_the_address_locks_and_staff_lift_them(admin_client_for_gateway):
    user = services.api_user_create(merchant=make_merchant(client_id=CLIENT), name=NAME, password=PASSWORD).user
    for _n in range(services.API_LOCK_AFTER_FAILURES):
        ask(status_query(password="guess-guess-guess"), address="203.0.113.9")
    ask(status_query(password="guess-guess-guess"), address="198.51.100.20")
    MerchantApiUser.objects.filter(pk=user.pk).update(locked_until=timezone.now() + dt.timedelta(hours=1))
    page = admin_client_for_gateway.get(f"/admin/gateway/merchantapiuser/{user.pk}/change/").content.decode()
    assert "Blocages par adresse" in page and "203.0.113.9" in page and "198.51.100.20" in page
    assert 'name="address_locks-0-address"' not in page  # shown, not editable
    changelist = admin_client_for_gateway.get("/admin/gateway/merchantapiuser/").content.decode()
    assert "Lever les blocages (l&#x27;utilisateur et ses adresses)" in changelist
    response = admin_client_for_gateway.post("/admin/gateway/merchantapiuser/", {
        "action": "unlock", "_selected_action": [user.pk]}, follow=True)
    assert [str(m) for m in response.context["messages"]] == [
        "Blocages levés : 1 utilisateur(s), 2 adresse(s)."]
    user.refresh_from_db()
    assert user.locked_until is None and user.failed_attempts == 0 and not ApiAddressLock.objects.exists()
    assert ask(status_query(), address="203.0.113.9").extra["ERRORCODE"] == "ORDER_UNKNOWN"


def test_a_repeat_of_a_request_whose_process_died_before_recording_anything_takes_it_over(user):
    """The first request claimed its key and its process died before recording anything: past twice
    BUSY_WAIT_SECONDS, a repeat takes the claim over and is processed (here, an unknown order: refused, the claim
    released); a claim younger than that is waited for, never taken."""
    from tasdid.gateway import api

    body = xmlapi.build_request(name=NAME, password=PASSWORD, client_id=CLIENT, order_id="ORDER-1", type_="Credit",
                                total="10.00")
    key = api.idempotency_key(xmlapi.parse(body))
    claim = services.api_request_claim(user=user, key=key, kind="Credit", order_id="ORDER-1",
                                       now=timezone.now() - dt.timedelta(minutes=5))
    assert claim.record is not None and not claim.busy and not claim.answer
    answer = ask(body)
    assert (answer.response, answer.extra["ERRORCODE"]) == ("Error", "ORDER_UNKNOWN")
    assert not ApiRequestRecord.objects.exists()


def test_of_repeats_taking_over_a_claim_together_one_only_wins(user):
    now = timezone.now()
    stale = services.api_request_claim(user=user, key="k" * 64, kind="Credit", order_id="ORDER-1",
                                       now=now - dt.timedelta(minutes=5)).record
    cutoff = now - dt.timedelta(minutes=1)
    taken = services.api_request_take_over(record=stale, stale_before=cutoff, now=now)
    assert taken is not None and taken.created_at == now
    assert services.api_request_take_over(record=stale, stale_before=cutoff, now=now) is None  # the other repeat
    assert services.api_request_take_over(record=taken, stale_before=cutoff, now=now) is None  # not stale
    # The loser's (or the stalled first holder's) answer is not stored over the winner's claim.
    assert not services.api_request_answered(record=stale, answer="<CC5Response/>", keep=True)
    assert not services.api_request_answered(record=stale, answer="", keep=False)
    assert ApiRequestRecord.objects.get().state == ApiRequestRecord.State.IN_FLIGHT
    assert services.api_request_answered(record=taken, answer="<CC5Response/>", keep=True)
