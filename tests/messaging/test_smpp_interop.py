"""The SMPP channel against a second, independent SMPP implementation: smppy's asyncio SMPP server (pure Python,
its PDUs from smpppdu), so that the channel's PDUs are checked by a codec other than the library it uses."""

import asyncio
import threading
import warnings

import pytest

from tasdid.messaging.models import Sms
from tasdid.messaging.services import sms_send
from tests import factories
from tests.messaging.test_smpp_channel import ChannelThread, status
from tests.support.ports import free_port
from tests.support.tasks import wait_until

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # smpppdu declares a pkg_resources namespace
    from smppy import Application
    from smppy.server import SmppProtocol


class Recorder(Application):
    def __init__(self):
        super().__init__("SMPPY")
        self.received: list[tuple[str, str, str]] = []
        self.clients = []

    async def handle_bound_client(self, client):
        self.clients.append(client)
        return client

    async def handle_unbound_client(self, client):
        return None

    async def handle_sms_received(self, client, source_number, dest_number, text):
        self.received.append((source_number, dest_number, text))


@pytest.fixture
def smppy_server(settings, transactional_db):
    settings.SMS_CHANNEL = "smpp"
    app, port = Recorder(), free_port()
    # The server's loop runs in a thread of its own from the start: this thread may already run another loop
    # (Playwright's, when browser tests ran before in this worker).
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(
        loop.create_server(lambda: SmppProtocol(app=app), "127.0.0.1", port), loop).result(10)
    yield app, port, loop
    loop.call_soon_threadsafe(server.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_smppy_receives_the_sms_and_its_code_request_is_answered(smppy_server):
    app, port, loop = smppy_server
    line = factories.mobile_line(number="+212661000001")
    sms = sms_send(sender="1111", to="+212661000002", text="Votre paiement est enregistré.")
    channel = ChannelThread(port).start()
    try:
        wait_until(lambda: status(sms) == "accepted", timeout=30, what="accepted by smppy")
        assert app.received == [("1111", "212661000002", "Votre paiement est enregistré.")]
        sms.refresh_from_db()
        assert sms.smsc_id == ""  # smppy answers without an id: accepted, never submitted again

        # A phone texts « code » to 1111 (national number, TON unknown): smppy's deliver_sm.
        asyncio.run_coroutine_threadsafe(app.clients[0].send_sms("0661000001", "1111", "code"), loop).result(10)
        wait_until(lambda: len(app.received) == 2, timeout=30, what="the answer at smppy")
    finally:
        channel.stop()
    source, dest, text = app.received[1]
    assert (source, dest) == ("1111", "212661000001")
    assert text.startswith("Votre code fidelio est ") and text[23:29].isdigit() and text[29] == "."
    assert Sms.objects.get(direction="in").sender == line.number
