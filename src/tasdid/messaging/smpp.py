"""The SMPP 3.4 channel: ``tasdid smpp`` binds to the SMS centre as a transceiver and stays bound.

- **Out.** It takes due queued SMS from the outbox in batches (``services.smpp_claim`` marks them "sending",
  committed before any submit_sm), submits them (up to ``window`` awaiting their answer at once) and records each
  answer (``services.smpp_record``): the SMS centre's message id ("accepted"), or a transient refusal
  (throttled, queue full, system error) or a lost connection (back to the queue with a backoff), or a permanent
  refusal ("failed").
- **Receipts.** A deliver_sm whose esm_class says "delivery receipt" moves the SMS it names (by the SMS
  centre's id) to delivered or failed (``services.smpp_receipt``). A receipt may arrive before the id it names
  is recorded (the SMS centre answers, then delivers at once): it waits in memory and is applied right after.
- **In.** Any other deliver_sm is an SMS from a phone to a service's short number, handed to
  ``services.sms_receive`` as the sandbox phone does (the biller's « code » to 1111).
- **The link.** The library (smpp34, a Rust/tokio SMPP engine) sends enquire_link and answers the SMS
  centre's; when the session ends, the process binds again after 0.5, 1, 2 … s (at most 30 s, with jitter).

Delivery guarantee: at least once, and exactly once for every SMS whose id was recorded. SMPP has no
idempotency key for submit_sm: an SMS whose submit_sm was sent but whose answer never arrived (the connection
dropped, the process died) may or may not be at the SMS centre; it is submitted again (a customer may get a
code twice rather than never). An SMS with a recorded id is never submitted again. See docs/sms-centre.md.
"""

import asyncio
import contextlib
import logging
import random
from collections import OrderedDict
from dataclasses import dataclass

import smpp34
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, close_old_connections

from tasdid.core.aio import within

from . import services
from .smpp_codec import (
    ESM_DELIVERY_RECEIPT,
    ESM_TYPE_MASK,
    ESME_RTHROTTLED,
    SHORT_MESSAGE_MAX,
    decode_text,
    encode_text,
    is_transient,
    parse_receipt,
    received_address,
    status_name,
)
from .smpp_codec import address as smpp_address

logger = logging.getLogger(__name__)

EARLY_RECEIPTS_MAX = 10_000  # receipts kept while the id they name is not recorded yet


@dataclass(frozen=True)
class SmppConfig:
    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    source_addr: str = ""  # "" = each SMS's own sender
    window: int = 10
    batch: int = 200  # SMS taken from the outbox at once
    poll_interval: float = 0.5  # seconds between two looks at an empty outbox
    submit_timeout: float = 30.0  # seconds to wait for a submit_sm_resp
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    throttle_pause: float = 1.0  # seconds without submitting after ESME_RTHROTTLED

    @classmethod
    def from_settings(cls, **overrides) -> "SmppConfig":
        values = {
            "host": settings.SMPP_HOST, "port": settings.SMPP_PORT, "system_id": settings.SMPP_SYSTEM_ID,
            "password": settings.SMPP_PASSWORD, "system_type": settings.SMPP_SYSTEM_TYPE,
            "source_addr": settings.SMPP_SOURCE_ADDR, "window": settings.SMPP_WINDOW,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _db(func):
    """Run a service in Django's one sync thread (the ORM is synchronous), closing stale connections first."""
    def call(*args, **kwargs):
        close_old_connections()
        return func(*args, **kwargs)
    return sync_to_async(call, thread_sensitive=True)


class SmppChannel:
    """One long-lived ESME: bind, submit, receive, bind again. ``run(stop)`` returns when ``stop`` is set."""

    def __init__(self, config: SmppConfig):
        self.config = config
        self.early_receipts: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self.binds = 0  # successful binds since start (the reconnect tests and the bench read it)
        self.submitted = 0  # submit_sm answered with a message id
        self._throttled_until = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        await self._with_db_retry(stop, services.smpp_requeue_unacknowledged)
        delay = self.config.reconnect_min
        while not stop.is_set():
            client = smpp34.Client(
                host=self.config.host, port=self.config.port, system_id=self.config.system_id,
                password=self.config.password, bind_type="TRX", system_type=self.config.system_type,
                window_size=self.config.window, connect_timeout_ms=10_000)
            try:
                smsc = await client.connect()
            except (smpp34.SmppError, OSError) as exc:
                wait = delay * random.uniform(0.8, 1.2)
                logger.warning("SMS centre %s:%s: bind failed (%s), next try in %.1f s",
                               self.config.host, self.config.port, exc, wait)
                await _sleep_unless(stop, wait)
                delay = min(delay * 2, self.config.reconnect_max)
                continue
            delay = self.config.reconnect_min
            self.binds += 1
            logger.info("SMS centre %s:%s: bound as transceiver %r (bind %s)",
                        self.config.host, self.config.port, self.config.system_id, self.binds)
            try:
                await self._session(smsc, stop)
            finally:
                with contextlib.suppress(Exception):
                    await client.stop()
            if not stop.is_set():
                logger.warning("SMS centre %s:%s: connection lost, binding again", self.config.host,
                               self.config.port)

    async def _session(self, smsc, stop: asyncio.Event) -> None:
        lost = asyncio.Event()
        receiver = asyncio.ensure_future(self._receive(smsc, lost))
        sender = asyncio.ensure_future(self._send(smsc, stop, lost))
        try:
            await _first(stop, lost)
        finally:
            lost.set()
            await asyncio.gather(sender, return_exceptions=True)
            if not receiver.done():  # stopping, or a submit_sm unanswered on a live link: end the session
                with contextlib.suppress(Exception):
                    await within(5, smsc.unbind())
            # Receipts and SMS already acknowledged to the SMS centre wait in the library's queue: handle them all
            # (the receiver returns at the session's end) before binding again; give up only on a stuck one.
            with contextlib.suppress(Exception):
                await within(60, asyncio.shield(receiver))
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)

    # --- out -----------------------------------------------------------------------------------------------

    async def _send(self, smsc, stop: asyncio.Event, lost: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        window = asyncio.Semaphore(self.config.window)
        recording: asyncio.Future | None = None  # the previous batch's answers, recorded while this one goes
        try:
            while not (stop.is_set() or lost.is_set()):
                recording = await self._send_batch(smsc, stop, lost, loop, window, recording)
        finally:
            if recording is not None:
                await recording

    async def _send_batch(self, smsc, stop, lost, loop, window, recording):
        """Claim a batch, submit it, and hand its answers to a recording task; returns that task (or the one
        still running), which the next batch awaits before recording its own (one writer, in order)."""
        pause = self._throttled_until - loop.time()
        if pause > 0:
            await _sleep_unless(lost, pause)
            return recording
        try:
            batch = await _db(services.smpp_claim)(limit=self.config.batch)
        except DatabaseError as exc:
            logger.warning("database unavailable while taking SMS: %s", exc)
            await _sleep_unless(lost, 1.0)
            return recording
        if not batch:
            if recording is not None:
                await recording
            await _sleep_unless(lost, self.config.poll_interval)  # lost is set on stop too
            return None
        outcomes = await asyncio.gather(*(self._submit(smsc, sms, window, lost) for sms in batch))
        if recording is not None:
            await recording
        return asyncio.ensure_future(self._record(stop, outcomes))

    async def _record(self, stop: asyncio.Event, outcomes) -> None:
        accepted = await self._with_db_retry(stop, services.smpp_record, outcomes, forever=True)
        self.submitted += len(accepted or ())
        await self._apply_early_receipts(accepted or ())

    async def _submit(self, smsc, sms: services.SmsToSubmit, window: asyncio.Semaphore,
                      lost: asyncio.Event) -> services.SubmitOutcome:
        source = smpp_address(self.config.source_addr or sms.sender)
        dest = smpp_address(sms.recipient)
        coding, payload = encode_text(sms.text)
        fields = {"source_addr": source.addr, "source_addr_ton": source.ton, "source_addr_npi": source.npi,
                  "dest_addr_ton": dest.ton, "dest_addr_npi": dest.npi, "data_coding": coding,
                  "registered_delivery": 1}  # a receipt on final delivery or failure
        if len(payload) > SHORT_MESSAGE_MAX:
            fields["tlvs"] = [smpp34.Tlv(smpp34.TLV_MESSAGE_PAYLOAD, payload)]
            payload = b""
        async with window:
            if lost.is_set():
                return services.SubmitOutcome(sms.pk, error="connection lost before submit_sm", submitted=False)
            try:
                resp = await within(self.config.submit_timeout, smsc.submit_sm(dest.addr, payload, **fields))
            except (TimeoutError, smpp34.SmppError, OSError) as exc:
                # No answer: the SMS centre may or may not have it. Without an id it is submitted again.
                lost.set()
                return services.SubmitOutcome(sms.pk, error=f"no submit_sm_resp: {type(exc).__name__}: {exc}")
        if resp.is_success:  # without an id (some SMS centres), no receipt can name it: it stays accepted
            return services.SubmitOutcome(sms.pk, accepted=True, smsc_id=resp.message_id or "")
        status = resp.command_status
        if status == ESME_RTHROTTLED:
            self._throttled_until = asyncio.get_running_loop().time() + self.config.throttle_pause
        return services.SubmitOutcome(sms.pk, error=f"submit_sm refused: {status_name(status)}",
                                      transient=is_transient(status))

    # --- in ------------------------------------------------------------------------------------------------

    async def _receive(self, smsc, lost: asyncio.Event) -> None:
        try:
            while True:
                event = await smsc.next()
                if not isinstance(event, smpp34.DeliverSmEvent):  # Disconnected
                    return
                try:
                    await self._deliver_sm(event)
                except Exception:  # one bad PDU or a database hiccup must not end the session
                    logger.exception("deliver_sm from the SMS centre not handled")
        finally:
            lost.set()

    async def _deliver_sm(self, event) -> None:
        text = decode_text(event.data_coding, event.short_message)
        tlvs = {tlv.tag: tlv for tlv in event.tlvs}
        if event.esm_class & ESM_TYPE_MASK == ESM_DELIVERY_RECEIPT:
            receipted = tlvs.get(smpp34.TLV_RECEIPTED_MESSAGE_ID)
            state = tlvs.get(smpp34.TLV_MESSAGE_STATE)
            receipt = parse_receipt(text, receipted_message_id=receipted.as_string() if receipted else None,
                                    message_state=state.as_int() if state else None)
            if receipt is None:
                # Only what comes before « text: »: that field echoes the SMS's first characters, a code among them.
                logger.warning("delivery receipt naming no message: %r", text.split("text:", 1)[0][:120])
                return
            apply = _db(services.smpp_receipt)
            if not await apply(smsc_id=receipt.smsc_id, stat=receipt.stat, err=receipt.err):
                self.early_receipts[receipt.smsc_id] = (receipt.stat, receipt.err)
                # The id may have been recorded (and the early receipts looked at) while we asked: ask again.
                if await apply(smsc_id=receipt.smsc_id, stat=receipt.stat, err=receipt.err):
                    self.early_receipts.pop(receipt.smsc_id, None)
                while len(self.early_receipts) > EARLY_RECEIPTS_MAX:
                    smsc_id, _ = self.early_receipts.popitem(last=False)
                    logger.warning("delivery receipt for unknown SMS-centre id %s dropped", smsc_id)
            return
        if event.esm_class & ESM_TYPE_MASK:
            logger.info("deliver_sm of type esm_class=0x%02x ignored", event.esm_class)
            return
        payload = tlvs.get(smpp34.TLV_MESSAGE_PAYLOAD)
        if payload is not None and not event.short_message:
            text = decode_text(event.data_coding, payload.value)
        sender = received_address(event.source_addr, event.source_addr_ton)
        to = received_address(event.destination_addr, event.dest_addr_ton)
        try:
            await _db(services.sms_receive)(sender=sender, to=to, text=text)
        except ValueError as exc:  # not a phone number: nothing to answer to
            logger.warning("inbound SMS from %r to %r not handled: %s", sender, to, exc)

    async def _apply_early_receipts(self, accepted) -> None:
        for outcome in accepted:
            early = self.early_receipts.pop(outcome.smsc_id, None)
            if early is not None and outcome.smsc_id:
                await _db(services.smpp_receipt)(smsc_id=outcome.smsc_id, stat=early[0], err=early[1])

    async def _with_db_retry(self, stop: asyncio.Event, func, *args, forever: bool = False):
        """A service call that a busy or lost database delays rather than loses (``forever``: even past stop,
        for the answers of the SMS centre, which exist nowhere else)."""
        delay = 0.1
        while True:
            try:
                return await _db(func)(*args)
            except DatabaseError as exc:
                if stop.is_set() and not forever:
                    return None
                logger.warning("database unavailable (%s), next try in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)


async def _sleep_unless(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await within(seconds, event.wait())


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()

