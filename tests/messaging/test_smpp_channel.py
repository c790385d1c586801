"""The SMPP channel against an SMPP 3.4 server that is not ours (smpp34's, tests/support/smsc.py) on 127.0.0.1:
submit_sm and its id, delivery receipts, an inbound « code » to 1111 answered end to end, a connection cut
mid-stream, refusals retried later, and ``tasdid smpp`` as a real process."""

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django_tasks_db.models import DBTaskResult

from tasdid.billing.codes import fidelio_scope
from tasdid.billing.models import FidelioCode
from tasdid.core.codes import code_digest
from tasdid.messaging.models import Sms
from tasdid.messaging.services import (
    REDACTED,
    outbox_sweep,
    sms_deliver,
    sms_resend,
    sms_send,
)
from tasdid.messaging.smpp import SmppChannel, SmppConfig
from tasdid.messaging.smpp_codec import ESME_RINVDSTADR, ESME_RTHROTTLED
from tests import factories
from tests.billing.payments_fixtures import line_with_two_invoices, new_order
from tests.support.smsc import Smsc
from tests.support.tasks import database_url, wait_until

TEXT = "Votre code fidelio est 482193. Il est valable 15 minutes et ne sert qu'une fois."


class ChannelThread:
    """SmppChannel.run in a thread with its own event loop, as ``tasdid smpp`` runs it."""

    def __init__(self, port: int, **overrides):
        values = {"host": "127.0.0.1", "port": port, "system_id": "tasdid", "password": "secret",
                  "system_type": "tasdid", "poll_interval": 0.05, "reconnect_min": 0.05, "reconnect_max": 0.5}
        self.channel = SmppChannel(SmppConfig(**{**values, **overrides}))
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="smpp-channel")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main():
            self.stop_event = asyncio.Event()
            self.started.set()
            await self.channel.run(self.stop_event)

        try:
            self.loop.run_until_complete(main())
        finally:
            self.loop.run_until_complete(sync_to_async(connections.close_all, thread_sensitive=True)())
            self.loop.close()

    def start(self) -> "ChannelThread":
        self.thread.start()
        self.started.wait(10)
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(30)
        assert not self.thread.is_alive(), "the SMPP channel did not stop"


@pytest.fixture
def smpp_mode(settings, transactional_db):
    settings.SMS_CHANNEL = "smpp"


@pytest.fixture
def smsc():
    """The SMS centre; every test sets its receipts and policy before the channel binds."""
    centre = Smsc(receipts=False).start()
    yield centre
    centre.stop()


@pytest.fixture
def channel(smsc, smpp_mode):
    threads = []

    def start(**overrides) -> ChannelThread:
        thread = ChannelThread(smsc.port, **overrides).start()
        threads.append(thread)
        return thread

    yield start
    for thread in threads:
        if thread.thread.is_alive():
            thread.stop()


def status(sms: Sms) -> str:
    return Sms.objects.get(pk=sms.pk).status


# Out: submit_sm, its id, the receipts --------------------------------------------------------------------------

def test_a_queued_sms_reaches_the_sms_centre_and_its_receipt_makes_it_delivered(smsc, channel):
    sms = sms_send(sender="1111", to="06 61 00 00 01", text=TEXT, secrets=["482193"])
    assert DBTaskResult.objects.count() == 0  # no task: tasdid smpp takes it from the outbox
    channel()
    wait_until(lambda: status(sms) == "accepted", timeout=30, what="the SMS accepted")

    [submitted] = smsc.accepted
    assert (submitted.destination_addr, submitted.dest_addr_ton) == ("212661000001", 1)
    assert (submitted.source_addr, submitted.data_coding, submitted.registered_delivery) == ("1111", 0, 1)
    assert submitted.text == TEXT
    assert [system_id for system_id, _ in smsc.binds] == ["tasdid"]
    sms.refresh_from_db()
    assert (sms.smsc_id, sms.attempts, sms.text, sms.last_error) == ("smsc-1", 1, TEXT, "")
    assert sms.accepted_at is not None and sms.delivered_at is None

    smsc.send_receipt("smsc-1", "DELIVRD")
    wait_until(lambda: status(sms) == "delivered", timeout=30, what="the receipt applied")
    sms.refresh_from_db()
    assert sms.text == TEXT.replace("482193", REDACTED) and sms.secrets == []
    assert sms.delivered_at is not None and sms.smsc_id == "smsc-1"
    assert len(smsc.received) == 1


def test_an_undeliverable_receipt_fails_the_sms_and_staff_can_resend_it(smsc, channel):
    sms = sms_send(sender="1111", to="+212661000002", text="Votre paiement de 120,00 DH est enregistré.")
    channel()
    wait_until(lambda: status(sms) == "accepted", timeout=30, what="the SMS accepted")
    smsc.send_receipt("smsc-1", "UNDELIV")
    wait_until(lambda: status(sms) == "failed", timeout=30, what="the receipt applied")
    sms.refresh_from_db()
    assert sms.last_error == "delivery receipt: stat:UNDELIV err:001"
    assert smsc.accepted[0].data_coding == 3  # Latin-1: "é"
    assert smsc.accepted[0].text == "Votre paiement de 120,00 DH est enregistré."

    smsc.receipts = True
    assert sms_resend(sms_id=sms.pk) is True  # the admin's « Renvoyer »
    assert DBTaskResult.objects.count() == 0
    wait_until(lambda: status(sms) == "delivered", timeout=30, what="the resent SMS delivered")
    sms.refresh_from_db()
    assert (sms.smsc_id, sms.resends, sms.attempts, sms.last_error) == ("smsc-2", 1, 2, "")
    assert smsc.texts() == ["Votre paiement de 120,00 DH est enregistré."] * 2


def test_arabic_and_long_texts_go_as_ucs2_and_in_message_payload(smsc, channel):
    smsc.receipts = True
    arabic = sms_send(sender="1111", to="+212661000003", text="رمز فيديليو الخاص بك هو 482193")
    long = sms_send(sender="1111", to="+212661000004", text="Facture " + "x" * 300)
    channel()
    wait_until(lambda: status(arabic) == status(long) == "delivered", timeout=30, what="both delivered")
    by_dest = {s.destination_addr: s for s in smsc.accepted}
    assert by_dest["212661000003"].data_coding == 8
    assert by_dest["212661000003"].text == "رمز فيديليو الخاص بك هو 482193"
    assert by_dest["212661000004"].short_message == b""
    assert by_dest["212661000004"].text == "Facture " + "x" * 300


# In: « code » to 1111 ------------------------------------------------------------------------------------------

def test_code_texted_to_1111_through_the_sms_centre_gets_a_fidelio_code_back(smsc, channel):
    smsc.receipts = True
    line = factories.mobile_line(number="+212661000001")
    channel()
    wait_until(lambda: smsc.bound, timeout=30, what="the channel bound")

    assert smsc.send_mo(source="212661000001", to="1111", text=" Code ") is True

    wait_until(lambda: smsc.accepted, timeout=30, what="the answer submitted")
    [answer] = smsc.accepted
    assert (answer.source_addr, answer.destination_addr, answer.dest_addr_ton) == ("1111", "212661000001", 1)
    code = re.fullmatch(r"Votre code fidelio est (\d{6})\. Il est valable 15 minutes .*", answer.text).group(1)
    [stored] = FidelioCode.objects.filter(line=line)
    assert stored.digest == code_digest(fidelio_scope(line.pk), code)  # the code the biller will accept
    inbound = Sms.objects.get(direction="in")
    assert (inbound.sender, inbound.recipient, inbound.text, inbound.status) == ("+212661000001", "1111",
                                                                                 " Code ", "handled")
    outbound = Sms.objects.get(direction="out")
    wait_until(lambda: status(outbound) == "delivered", timeout=30, what="the answer delivered")
    outbound.refresh_from_db()
    assert code not in outbound.text and outbound.recipient == "+212661000001"


def test_code_from_an_unknown_number_gets_the_polite_refusal(smsc, channel):
    channel()
    wait_until(lambda: smsc.bound, timeout=30, what="the channel bound")
    assert smsc.send_mo(source="212661999999", to="1111", text="code") is True
    wait_until(lambda: smsc.accepted, timeout=30, what="the answer submitted")
    assert smsc.accepted[0].text.startswith("Ce numéro ne correspond à aucune ligne mobile client.")
    assert FidelioCode.objects.count() == 0


# The connection dropped, refusals ------------------------------------------------------------------------------

def test_a_connection_cut_mid_stream_loses_nothing_and_sends_nothing_twice(smsc, channel):
    """The SMS centre takes 59 SMS, then holds every submit_sm and the network drops: the held ones (no answer,
    no id) are submitted again after the channel binds again; each of the 200 reaches the SMS centre once."""
    smsc.receipts = True
    state = {"cut": False}

    def policy(submitted, n):
        if state["cut"] or n < 60:
            return "accept"
        if n == 60:
            loop = asyncio.get_running_loop()

            def cut():
                state["cut"] = True
                state["task"] = asyncio.ensure_future(smsc._cut())
            loop.call_later(0.3, cut)
        return "hold"

    smsc.policy = policy
    sent = [sms_send(sender="1111", to=f"+2126610{i:05d}", text=f"Message {i}") for i in range(200)]
    running = channel()
    wait_until(lambda: Sms.objects.filter(status="delivered").count() == 200, timeout=60,
               what="every SMS delivered", log=lambda: f"{Counter(Sms.objects.values_list('status', flat=True))} "
                                                       f"at the SMS centre: {len(smsc.received)} received, "
                                                       f"{len(smsc.accepted)} accepted, "
                                                       f"{smsc.receipts_refused} receipts refused")

    counts = Counter(smsc.texts())
    assert len(counts) == 200 and set(counts.values()) == {1}
    assert len(smsc.binds) == 2 and running.channel.binds == 2
    held = len(smsc.received) - 200  # submitted twice: once held (unanswered), once accepted
    assert 1 <= held <= 10  # at most the window
    attempts = Counter(Sms.objects.filter(pk__in=[s.pk for s in sent]).values_list("attempts", flat=True))
    assert attempts[2] == held and attempts[1] == 200 - held
    assert sorted(Sms.objects.values_list("smsc_id", flat=True)) == sorted(f"smsc-{i}" for i in range(1, 201))


def test_a_throttled_submit_is_retried_later(smsc, channel):
    smsc.policy = lambda submitted, n: ("reject", ESME_RTHROTTLED) if n == 1 else "accept"
    sms = sms_send(sender="1111", to="+212661000001", text=TEXT, secrets=["482193"])
    channel()
    wait_until(lambda: Sms.objects.get(pk=sms.pk).last_error, timeout=30, what="the refusal recorded")
    sms.refresh_from_db()
    assert (sms.status, sms.attempts, sms.last_error) == ("queued", 1, "submit_sm refused: ESME_RTHROTTLED")
    assert sms.next_try_at is not None and sms.smsc_id == "" and smsc.accepted == []
    assert sms.text == TEXT  # not final: the code stays for the next try

    wait_until(lambda: status(sms) == "accepted", timeout=30, what="accepted on the second try")
    sms.refresh_from_db()
    assert (sms.attempts, sms.smsc_id, sms.last_error, sms.next_try_at) == (2, "smsc-1", "", None)
    assert len(smsc.received) == 2 and smsc.texts() == [TEXT]


def test_a_permanent_refusal_fails_the_sms_at_once(smsc, channel):
    smsc.policy = lambda submitted, n: ("reject", ESME_RINVDSTADR)
    sms = sms_send(sender="1111", to="+212661000001", text=TEXT, secrets=["482193"])
    channel()
    wait_until(lambda: status(sms) == "failed", timeout=30, what="the SMS failed")
    sms.refresh_from_db()
    assert (sms.attempts, sms.last_error, sms.smsc_id) == (1, "submit_sm refused: ESME_RINVDSTADR", "")
    assert "482193" not in sms.text
    assert len(smsc.received) == 1


# The outbox on the SMPP channel -------------------------------------------------------------------------------

def test_no_task_and_no_sweep_touch_an_sms_on_the_smpp_channel(smpp_mode):
    sms = sms_send(sender="1111", to="+212661000001", text=TEXT)
    assert DBTaskResult.objects.count() == 0
    assert outbox_sweep() == 0
    assert sms_deliver(sms_id=sms.pk) is False  # a task left from the sandbox channel changes nothing
    sms.refresh_from_db()
    assert (sms.status, sms.attempts) == ("queued", 0)


# tasdid smpp, a real process ------------------------------------------------------------------------------------

def test_tasdid_smpp_as_a_process_resubmits_what_it_had_not_seen_answered(smsc, smpp_mode, tmp_path):
    smsc.receipts = True
    # Left by a process that died after its submit_sm and before the answer: no id, so submitted again.
    orphan = sms_send(sender="1111", to="+212661000001", text="Reste d'avant")
    Sms.objects.filter(pk=orphan.pk).update(status="sending", attempts=1)
    # Accepted before that death, with its id: never submitted again.
    known = sms_send(sender="1111", to="+212661000002", text="Déjà accepté")
    Sms.objects.filter(pk=known.pk).update(status="accepted", attempts=1, smsc_id="old-7")
    fresh = sms_send(sender="1111", to="+212661000003", text="Nouveau")
    env = {"DJANGO_SETTINGS_MODULE": "tasdid.settings", "DATABASE_URL": database_url(),
           "TASDID_SMS_CHANNEL": "smpp", "TASDID_SMPP_HOST": "127.0.0.1", "TASDID_SMPP_PORT": str(smsc.port),
           "TASDID_SMPP_SYSTEM_ID": "tasdid", "TASDID_SMPP_PASSWORD": "secret", "TASDID_SMPP_SYSTEM_TYPE": "tasdid"}
    log = tmp_path / "smpp.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "tasdid.cli", "smpp", "--poll-interval", "0.05"],
                                   env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: status(orphan) == status(fresh) == "delivered", timeout=60,
                   what="both delivered by tasdid smpp", log=log.read_text)
        smsc.cut()  # the network drops: the process binds again
        wait_until(lambda: len(smsc.binds) == 2, timeout=30, what="bound again", log=log.read_text)
        smsc.send_mo(source="212661000009", to="4444", text="bonjour")
        wait_until(lambda: len(smsc.accepted) == 3, timeout=30, what="the answer", log=log.read_text)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0, log.read_text()
    assert sorted(smsc.texts()) == sorted(["Reste d'avant", "Nouveau",
                                           "Ce numéro de service n'est pas attribué. Votre message n'a pas été "
                                           "traité."])
    assert Sms.objects.get(pk=known.pk).status == "accepted"
    output = log.read_text()
    assert "1 SMS submitted without an answer before the last stop: queued again" in output
    assert "SMPP channel stopped" in output and "secret" not in output


# The admin ----------------------------------------------------------------------------------------------------

def test_staff_see_the_sms_centre_states_and_ids_and_resend_a_failed_sms(smpp_mode):
    from tests.messaging.test_delivery_once import _row
    from tests.support.staff import signed_in, staff_account

    staff_account("staff", parties=["biller"])
    staff = signed_in("biller", "staff")
    accepted = sms_send(sender="1111", to="+212661000001", text="Votre facture est disponible.")
    Sms.objects.filter(pk=accepted.pk).update(status="accepted", attempts=1, smsc_id="a1b2c3")
    failed = sms_send(sender="1111", to="+212661000002", text="Votre paiement est enregistré.")
    Sms.objects.filter(pk=failed.pk).update(status="failed", attempts=1, smsc_id="d4e5f6",
                                            last_error="delivery receipt: stat:UNDELIV err:001")
    page = staff.get("/admin/messaging/sms/").content.decode()
    assert "Renvoyer les SMS en échec" in page
    row = _row(page, "Votre facture est disponible.")
    assert [row[i] for i in (5, 6, 9)] == ["accepté par le centre SMS", "1", "a1b2c3"]
    row = _row(page, "Votre paiement est enregistré.")
    assert [row[i] for i in (5, 8, 9)] == ["échec", "delivery receipt: stat:UNDELIV err:001", "d4e5f6"]
    detail = staff.get(f"/admin/messaging/sms/{accepted.pk}/change/").content.decode()
    assert "Identifiant au centre SMS" in detail and "Accepté le" in detail

    response = staff.post("/admin/messaging/sms/", {"action": "resend",
                                                    "_selected_action": [accepted.pk, failed.pk]}, follow=True)
    content = response.content.decode()
    assert "1 message remis en file d&#x27;envoi." in content and "1 message ignoré" in content
    failed.refresh_from_db()
    assert (failed.status, failed.resends, failed.smsc_id) == ("queued", 1, "")
    assert Sms.objects.get(pk=accepted.pk).status == "accepted"
    assert DBTaskResult.objects.count() == 0  # tasdid smpp takes it from the table


def test_tasdid_smpp_refuses_to_start_without_the_smpp_channel_or_an_account(settings):
    from django.core.management import CommandError, call_command

    settings.SMS_CHANNEL = "sandbox"
    with pytest.raises(CommandError, match="le canal SMS n'est pas SMPP : définissez TASDID_SMS_CHANNEL=smpp"):
        call_command("smpp")
    settings.SMS_CHANNEL, settings.SMPP_SYSTEM_ID = "smpp", ""
    with pytest.raises(CommandError, match="définissez TASDID_SMPP_SYSTEM_ID"):
        call_command("smpp")


def test_the_answer_speaks_the_line_s_language_and_the_arabic_keyword_gets_arabic(smsc, channel):
    """Through the SMS centre (no page, no active language): « code » from a line whose latest payment order was
    placed in English is answered in English; « رمز » (sent in UCS-2) is answered in Arabic."""
    line, _june, _july = line_with_two_invoices(number="+212661000001")
    new_order(line, language="en")
    channel()
    wait_until(lambda: smsc.bound, timeout=30, what="the channel bound")

    assert smsc.send_mo(source="212661000001", to="1111", text="code") is True
    wait_until(lambda: len(smsc.accepted) == 1, timeout=30, what="the first answer submitted")
    assert re.fullmatch(r"Your fidelio code is \d{6}\. It is valid for 15 minutes .*", smsc.accepted[0].text)

    assert smsc.send_mo(source="212661000001", to="1111", text=" رمز ") is True
    wait_until(lambda: len(smsc.accepted) == 2, timeout=30, what="the second answer submitted")
    answer = smsc.accepted[1]
    assert answer.data_coding == 8
    assert re.fullmatch(r"رمز فيديليو الخاص بك هو \d{6}\. صالح لمدة 15 دقيقة .*", answer.text)
    assert Sms.objects.filter(direction="in", text=" رمز ").count() == 1
