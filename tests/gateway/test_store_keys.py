"""Store keys at rest: sealed in the database, never in clear; the migration that seals the keys already
registered; a rotation with the previous key still accepted on the merchant's requests until its date (the
gateway signing with the new one only); a new encryption key, and ``tasdid merchant reseal`` re-sealing the
rows under it."""

import datetime as dt
from urllib.parse import parse_qsl

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from tasdid.core.signing import ver3_hash, ver3_verify
from tasdid.gateway import flow, services, store_keys
from tasdid.gateway.models import Merchant, MerchantMode, PaymentSession

from .conftest import CLIENT_ID, STORE_KEY, gateway_client, make_merchant, merchant_fields, open_session, signed
from .test_order_status import authorized_attempt

pytestmark = pytest.mark.django_db


def raw_rows() -> list[tuple]:
    """Every column of every merchant row, as the database holds them."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM gateway_merchant")
        return cursor.fetchall()


def held_in_clear(secret: str) -> bool:
    return any(secret in str(value) for row in raw_rows() for value in row)


def test_the_store_key_is_sealed_in_the_database_and_read_in_clear():
    merchant = make_merchant()
    assert not held_in_clear(STORE_KEY)
    (sealed,) = Merchant.objects.values_list("store_key_sealed", flat=True)
    assert sealed.startswith("gAAAAA") and STORE_KEY not in sealed  # a Fernet token
    assert Merchant.objects.get(pk=merchant.pk).store_key == STORE_KEY
    assert [f.name for f in Merchant._meta.fields if "store_key" in f.name and "sealed" not in f.name] == [
        "previous_store_key_until", "store_key_changed_at", "previous_store_key_changed_at"]  # no clear column
    # sealed twice, the same key gives two different tokens (no equality to search the table by)
    assert store_keys.seal(STORE_KEY) != store_keys.seal(STORE_KEY)


def test_a_key_sealed_elsewhere_is_not_opened(settings):
    settings.TASDID_KEYS = {**settings.TASDID_KEYS, "store-keys": "the key the rows are sealed under"}
    make_merchant()
    settings.TASDID_KEYS = {**settings.TASDID_KEYS, "store-keys": "a key the rows were never sealed under"}
    with pytest.raises(store_keys.StoreKeyError):
        Merchant.objects.get().store_key  # noqa: B018


@pytest.mark.django_db(transaction=True)
def test_the_migration_seals_the_keys_already_registered():
    executor = MigrationExecutor(connection)
    before, after = [("gateway", "0007_operations")], [("gateway", "0008_merchant_store_keys_back_office")]
    try:
        executor.migrate(before)
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO gateway_merchant (client_id, name, store_key, return_hosts, active, created_at, "
                "updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                ["600000055", "Boutique ancienne", "OLD-CLEAR-KEY-5555", '["shop.example.ma"]', True,
                 timezone.now(), timezone.now()])
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        assert not held_in_clear("OLD-CLEAR-KEY-5555")
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())  # the model as it is now reads the row
        merchant = Merchant.objects.get(client_id="600000055")
        assert (merchant.store_key, merchant.mode) == ("OLD-CLEAR-KEY-5555", MerchantMode.PRODUCTION)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


# --- rotation with an overlap ---------------------------------------------------------------------------


def test_rotation_keeps_the_previous_key_until_its_date_then_refuses_it():
    merchant = make_merchant()
    rotation = services.merchant_rotate_store_key(merchant_id=merchant.pk, overlap=dt.timedelta(days=3))
    new_key = rotation.new_key
    assert len(new_key) == 32 and new_key != STORE_KEY
    assert not held_in_clear(new_key) and not held_in_clear(STORE_KEY)
    merchant.refresh_from_db()
    assert (merchant.store_key, merchant.previous_store_key) == (new_key, STORE_KEY)

    # signed with the old key during the overlap: accepted; with the new one: accepted
    open_session(gateway_client(), signed(merchant_fields(oid="OLD-KEY-1"), store_key=STORE_KEY))
    open_session(gateway_client(), signed(merchant_fields(oid="NEW-KEY-1"), store_key=new_key))
    # after the date: the old key is refused, nothing written; the new one still accepted
    with time_machine.travel(rotation.previous_until + dt.timedelta(seconds=1), tick=False):
        response = gateway_client().post("/fim/est3Dgate", signed(merchant_fields(oid="OLD-KEY-2"),
                                                                  store_key=STORE_KEY))
        assert response.status_code == 400
        assert "La signature « hash » de la demande de paiement est invalide." in response.content.decode()
        assert not PaymentSession.objects.filter(oid="OLD-KEY-2").exists()
        open_session(gateway_client(), signed(merchant_fields(oid="NEW-KEY-2"), store_key=new_key))


def status_query(key: str, oid: str = "ORDER-0001") -> dict[str, str]:
    """A merchant's status query signed with ``key``; the gateway's answer, read."""
    fields = {"clientid": CLIENT_ID, "oid": oid, "rnd": "a5Rq0LkP9zXw3Vb7Tn2Mh", "action": "status",
              "hashAlgorithm": "ver3"}
    response = gateway_client().post("/fim/status", {**fields, "HASH": ver3_hash(fields, key)})
    assert response.status_code == 200
    return dict(parse_qsl(response.content.decode(), keep_blank_values=True))


def signed_only_with(fields: dict[str, str], key: str, other: str) -> bool:
    return ver3_verify(fields, key, hash_field="HASH") and not ver3_verify(fields, other, hash_field="HASH")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("signed_with", ["previous", "new"])
def test_during_the_overlap_a_session_is_answered_with_the_key_that_signed_its_request(counterparty, rails,
                                                                                        signed_with):
    """A merchant that has not installed the new key yet keeps getting callbacks and returns it can verify: a
    request signed with the previous key (in the overlap) gets its callback and return signed with it; one
    signed with the new key, with the new. The session remembers which key, not the key."""
    merchant = make_merchant(hosts=["shop.example.ma", counterparty.host])
    new_key = services.merchant_rotate_store_key(merchant_id=merchant.pk).new_key
    key, other = (STORE_KEY, new_key) if signed_with == "previous" else (new_key, STORE_KEY)
    open_session(gateway_client(), signed(merchant_fields(base=counterparty.url), store_key=key))
    session = PaymentSession.objects.get()
    assert session.request_key_since is not None and not held_in_clear(key)

    attempt = authorized_attempt()
    flow.deliver_callback(attempt_id=attempt.pk)
    (callback,) = counterparty.state.callbacks
    assert signed_only_with(callback, key, other)
    back = flow.merchant_return(attempt_id=attempt.pk)
    assert signed_only_with(back.fields, key, other)
    # a status query is answered with the key that signed the query
    assert signed_only_with(status_query(STORE_KEY), STORE_KEY, new_key)
    assert signed_only_with(status_query(new_key), new_key, STORE_KEY)

    # the overlap over: the previous key is no longer held, the new one signs
    merchant.refresh_from_db()
    with time_machine.travel(merchant.previous_store_key_until + dt.timedelta(seconds=1), tick=False):
        assert signed_only_with(flow.merchant_return(attempt_id=attempt.pk).fields, new_key, STORE_KEY)


@pytest.mark.django_db(transaction=True)
def test_a_session_opened_before_a_rotation_keeps_its_key_while_held(counterparty, rails):
    merchant = make_merchant(hosts=["shop.example.ma", counterparty.host])
    open_session(gateway_client(), signed(merchant_fields(base=counterparty.url)))
    new_key = services.merchant_rotate_store_key(merchant_id=merchant.pk).new_key

    attempt = authorized_attempt()
    flow.deliver_callback(attempt_id=attempt.pk)
    (callback,) = counterparty.state.callbacks
    assert signed_only_with(callback, STORE_KEY, new_key)  # its key is now the previous one, still held
    # a second rotation drops it: the current key signs
    newest = services.merchant_rotate_store_key(merchant_id=merchant.pk).new_key
    assert signed_only_with(flow.merchant_return(attempt_id=attempt.pk).fields, newest, STORE_KEY)


def test_a_second_rotation_drops_the_key_in_its_overlap_and_overlaps_are_bounded():
    merchant = make_merchant()
    first = services.merchant_rotate_store_key(merchant_id=merchant.pk).new_key
    second = services.merchant_rotate_store_key(merchant_id=merchant.pk).new_key
    merchant.refresh_from_db()
    assert merchant.store_keys_accepted(timezone.now()) == [second, first]
    for overlap in (dt.timedelta(days=91), dt.timedelta(seconds=-1)):
        with pytest.raises(ValueError, match="période de recouvrement"):
            services.merchant_rotate_store_key(merchant_id=merchant.pk, overlap=overlap)
    merchant.refresh_from_db()
    assert merchant.store_key == second


def test_a_key_replaced_by_hand_ends_any_overlap():
    merchant = make_merchant()
    services.merchant_rotate_store_key(merchant_id=merchant.pk)
    make_merchant(store_key="REPLACED-BY-HAND-1")
    merchant.refresh_from_db()
    assert merchant.store_keys_accepted(timezone.now()) == ["REPLACED-BY-HAND-1"]


def test_a_merchant_in_test_is_refused_outside_the_sandbox(settings):
    merchant = make_merchant()
    assert merchant.mode == MerchantMode.TEST
    settings.SANDBOX = False
    response = gateway_client().post("/fim/est3Dgate", signed(merchant_fields()))
    assert response.status_code == 400 and "Ce marchand est en mode test" in response.content.decode()
    assert not PaymentSession.objects.exists()
    services.merchant_register(client_id=CLIENT_ID, name="Boutique Test", return_hosts=["shop.example.ma"],
                               mode=MerchantMode.PRODUCTION)
    open_session(gateway_client(), signed(merchant_fields()))


# --- a new encryption key -------------------------------------------------------------------------------


def test_reseal_command_moves_every_row_under_the_new_encryption_key(settings, capsys):
    settings.TASDID_KEYS = {**settings.TASDID_KEYS, "store-keys": "first-encryption-key"}
    a = make_merchant()
    b = make_merchant(client_id="600000100", store_key="OTHER-STORE-KEY-1")
    rotated = services.merchant_rotate_store_key(merchant_id=b.pk).new_key
    before = raw_rows()

    # the new key first, the old one still listed: every row still opens, then is re-sealed under the new one
    settings.TASDID_KEYS = {**settings.TASDID_KEYS, "store-keys": "second-encryption-key, first-encryption-key"}
    assert Merchant.objects.get(pk=a.pk).store_key == STORE_KEY
    call_command("merchant_reseal")
    assert "chiffrées à nouveau : 2 marchand(s) ; déjà sous la première clé : 0." in capsys.readouterr().out
    assert raw_rows() != before
    call_command("merchant_reseal")
    assert "chiffrées à nouveau : 0 marchand(s) ; déjà sous la première clé : 2." in capsys.readouterr().out

    # the old encryption key gone: every key still opens, the rotation's overlap kept
    settings.TASDID_KEYS = {**settings.TASDID_KEYS, "store-keys": "second-encryption-key"}
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.store_key, b.store_key, b.previous_store_key) == (STORE_KEY, rotated, "OTHER-STORE-KEY-1")
    assert not held_in_clear(STORE_KEY) and not held_in_clear(rotated)


def test_rows_sealed_before_the_variable_was_set_still_open_then_move_under_it(settings, capsys):
    """Sealed under the key derived from the secret key (no variable), the rows still open once the variable is
    set (no store key unreadable, no payment refused); ``merchant reseal`` moves them under the variable's key."""
    settings.TASDID_KEYS = {**settings.TASDID_KEYS, "store-keys": ""}
    merchant = make_merchant()
    settings.TASDID_KEYS = {**settings.TASDID_KEYS, "store-keys": "the-configured-encryption-key"}
    assert Merchant.objects.get(pk=merchant.pk).store_key == STORE_KEY
    open_session(gateway_client(), signed(merchant_fields(oid="AFTER-THE-VARIABLE")))
    assert not store_keys.sealed_under_first(Merchant.objects.get(pk=merchant.pk).store_key_sealed)

    call_command("merchant_reseal")
    assert "chiffrées à nouveau : 1 marchand(s)" in capsys.readouterr().out
    # the secret key changed as well: the variable's key alone opens the row
    settings.SECRET_KEY = "another-secret-key-the-rows-were-never-sealed-under-0123456789"
    assert Merchant.objects.get(pk=merchant.pk).store_key == STORE_KEY
    assert not held_in_clear(STORE_KEY)


def test_keys_derived_from_the_secret_key_fallbacks_open_too(settings):
    settings.TASDID_KEYS = {**settings.TASDID_KEYS, "store-keys": ""}
    old_secret = settings.SECRET_KEY
    merchant = make_merchant()
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-secret-key-0123456789-abcdefghijklmnop", [old_secret]
    assert Merchant.objects.get(pk=merchant.pk).store_key == STORE_KEY
    services.store_keys_reseal()
    settings.SECRET_KEY_FALLBACKS = []
    assert Merchant.objects.get(pk=merchant.pk).store_key == STORE_KEY


def test_reseal_refuses_rows_sealed_under_a_key_no_longer_listed(settings):
    settings.TASDID_KEYS = {**settings.TASDID_KEYS, "store-keys": "first-encryption-key"}
    make_merchant()
    before = raw_rows()
    settings.TASDID_KEYS = {**settings.TASDID_KEYS, "store-keys": "second-encryption-key"}
    with pytest.raises(CommandError, match="remettez l'ancienne clé dans la liste"):
        call_command("merchant_reseal")
    assert raw_rows() == before


def test_reseal_drops_a_previous_key_past_its_date(settings):
    merchant = make_merchant()
    rotation = services.merchant_rotate_store_key(merchant_id=merchant.pk, overlap=dt.timedelta(days=1))
    services.store_keys_reseal(now=rotation.previous_until + dt.timedelta(seconds=1))
    merchant.refresh_from_db()
    assert (merchant.previous_store_key_sealed, merchant.previous_store_key_until) == ("", None)
    assert not held_in_clear(STORE_KEY)
