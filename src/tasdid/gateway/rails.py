"""The gateway's acquirer over the card rails: ``core.acquiring.Acquirer`` spoken as ISO 8583 to the switch.

``settings.GATEWAY_ACQUIRER`` (``TASDID_GATEWAY_ACQUIRER``) names it by default; docs/iso8583.md, "The gateway
client", is the reference.

- **One connection per process** (``connection()``): a daemon thread runs an asyncio loop that owns a persistent
  TCP connection to the switch (``TASDID_SWITCH_HOST``:``TASDID_SWITCH_PORT``), signs on (0800 ``001``) when it
  connects, sends an echo (0800 ``301``) after ``TASDID_RAILS_ECHO_SECONDS`` of silence, answers the switch's own
  0800, and reconnects with a doubling backoff (0.2 s to 10 s) when the connection is lost or an echo goes
  unanswered. Any thread (gunicorn's, the task worker's) calls ``exchange``, which blocks that thread only;
  requests are pipelined, and each answer finds its request by STAN + DE7 in one in-flight map, in any order.
  A process that forks (gunicorn's preload) makes a connection of its own on first use.
- **STANs** come from ``services.next_stan``: one database row per UTC day, locked, so every message of every
  gateway process has its own STAN for the day (the authorization's is the attempt's, taken by the flow).
- **Unknown outcomes.** No answer within ``TASDID_RAILS_TIMEOUT`` seconds, or the connection lost after the
  request was written: the caller gets ``AcquirerUnavailable`` (the flow then reverses, DESIGN §7), and for an
  authorization (0100) or a refund (0200) a ``PendingReversal`` row is committed in the gateway's database. Its
  0400 (DE90: the original's MTI, STAN and DE7) goes out at once when the flow voids the attempt, then by
  ``sweep_reversals`` (one of ``settings.TASK_WORKER_SWEEPS``) with a doubling backoff, each time under a new STAN,
  until a 0410 with a final code comes; a restart changes nothing. An answer that comes after its request gave
  up is logged and ignored. A request that could not be written at all (no connection within the wait) gets
  ``AcquirerUnavailable`` and owes no reversal.
- **0410 codes**: 91 and 96 (nobody decided: the switch or the issuer failed) and 94 are tried again; any other
  code ends the reversal. For the reversal of an authorization whose answer never came (no RRN), 12 means the
  switch never forwarded it (nothing is held at any bank): the void is reported done (00).
- **Messages**: authorize → 0100 (DE48 CV, EC, AV, DS, TS, OI); capture → 0220 (the amount asked, up to the hold:
  partial captures); void → 0400; refund → 0200 with processing code 20, found by the payment's RRN and DE90.
  DE39 is taken as it comes: ``core.response_codes`` gives its meaning.

Never a card number or a CVV in a log line: messages are logged by MTI and STAN.
"""

import asyncio
import contextlib
import datetime as dt
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from tasdid.core import iso8583 as iso
from tasdid.core import response_codes as rc
from tasdid.core.acquiring import (
    AcquirerUnavailable,
    AuthorizationRequest,
    AuthorizationResult,
    RefundRequest,
    RefundResult,
    SettlementRequest,
    SettlementResult,
)
from tasdid.core.aio import within

from . import selectors, services
from .models import PendingReversal

logger = logging.getLogger(__name__)

# 0410 codes after which the reversal is sent again: nobody decided, or the switch took it for a duplicate.
REVERSAL_RETRY_CODES = (rc.ISSUER_UNAVAILABLE, rc.SYSTEM_MALFUNCTION, rc.DUPLICATE_TRANSMISSION)
_ORDER_ID_CHARS = re.compile(r"[^A-Za-z0-9._:/-]")


class NotSent(Exception):
    """The request could not be written: no connection to the switch. Nothing to reverse."""


class NoAnswer(Exception):
    """The request was written and no answer came in time (or the connection was lost meanwhile)."""


class _ConnectionLost(Exception):
    pass


@dataclass(frozen=True)
class RailsConfig:
    host: str = "127.0.0.1"
    port: int = 8583
    timeout: float = 10.0  # seconds for an answer
    echo_interval: float = 30.0  # seconds of silence before an echo
    echo_timeout: float = 5.0  # seconds for a sign-on's or an echo's answer, and for the TCP connect
    connect_wait: float = 5.0  # seconds a request waits for the connection to be up before NotSent
    reconnect_min: float = 0.2
    reconnect_max: float = 10.0

    @classmethod
    def from_settings(cls, **overrides) -> "RailsConfig":
        values = {"host": settings.SWITCH_HOST, "port": settings.SWITCH_PORT, "timeout": settings.RAILS_TIMEOUT,
                  "echo_interval": settings.RAILS_ECHO_SECONDS}
        values["connect_wait"] = min(values["timeout"], 5.0)
        values.update(overrides)
        return cls(**values)


def _db_stan() -> str:
    """A STAN from the database, in a thread that is not the caller's: its connection closed afterwards."""
    close_old_connections()
    try:
        return services.next_stan()
    finally:
        connections.close_all()


def _now() -> dt.datetime:
    return timezone.now().astimezone(dt.UTC).replace(microsecond=0)


class RailsConnection:
    """The process's connection to the switch, owned by an asyncio loop in a daemon thread (see the module)."""

    def __init__(self, config: RailsConfig, *, stan_source: Callable[[], str] = _db_stan):
        self.config = config
        self.stan_source = stan_source
        self.pid = os.getpid()
        self.sign_ons = 0  # successful sign-ons (counts reconnections)
        self.echoes = 0  # answered echoes
        self.late_answers = 0  # answers that found no request waiting (logged, ignored)
        self.loop = asyncio.new_event_loop()
        self._up = asyncio.Event()
        self._pending: dict[tuple[str, str], asyncio.Future] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._last_traffic = time.monotonic()
        self._thread = threading.Thread(target=self.loop.run_forever, name="tasdid-rails", daemon=True)
        self._thread.start()
        self._main = asyncio.run_coroutine_threadsafe(self._run(), self.loop)

    # --- for any thread ---------------------------------------------------------------------------------------

    @property
    def up(self) -> bool:
        return self._up.is_set()

    def exchange(self, message: iso.Message, *, timeout: float | None = None) -> iso.Message:
        """Send ``message`` and wait for its answer. NotSent: it never left; NoAnswer: it left, no answer."""
        timeout = self.config.timeout if timeout is None else timeout
        future = asyncio.run_coroutine_threadsafe(self._exchange(message, timeout), self.loop)
        try:
            return future.result(timeout + self.config.connect_wait + 5)
        except TimeoutError:  # the loop itself is stuck: the request may have left
            future.cancel()
            raise NoAnswer("the connection's loop did not answer") from None

    def wait_up(self, timeout: float) -> bool:
        """True once signed on (tests, start-up checks)."""
        future = asyncio.run_coroutine_threadsafe(self._wait_up(timeout), self.loop)
        return future.result(timeout + 5)

    def close(self) -> None:
        """Sign off (best effort), close the connection and stop the thread."""
        if not self.loop.is_running():
            return

        async def stop():
            if self._up.is_set():
                with contextlib.suppress(Exception):
                    await self._network(iso.SIGN_OFF)
            main = asyncio.wrap_future(self._main)
            self._main.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await main
            await self.loop.shutdown_default_executor()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), self.loop).result(self.config.echo_timeout + 5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)

    # --- in the loop ------------------------------------------------------------------------------------------

    async def _wait_up(self, timeout: float) -> bool:
        try:
            await within(timeout, self._up.wait())
        except TimeoutError:
            return False
        return True

    async def _exchange(self, message: iso.Message, timeout: float, *, require_up: bool = True) -> iso.Message:
        if require_up and not self._up.is_set() and not await self._wait_up(min(self.config.connect_wait, timeout)):
            raise NotSent(f"no connection to the switch {self.config.host}:{self.config.port}")
        writer = self._writer
        if writer is None or writer.is_closing():
            raise NotSent("the connection to the switch is closing")
        key = iso.match_key(message)
        if key in self._pending:
            raise ValueError(f"STAN {message.stan} is already in flight")
        future = self.loop.create_future()
        self._pending[key] = future
        try:
            data = iso.encode_frame(message)  # a ValueError (a bug of ours) leaves before anything is sent
            try:
                writer.write(data)
                self._last_traffic = time.monotonic()
                await writer.drain()
            except (ConnectionError, OSError) as exc:
                raise NoAnswer(f"connection lost while sending: {type(exc).__name__}") from None
            try:
                return await within(timeout, asyncio.shield(future))
            except TimeoutError:
                raise NoAnswer(f"no answer within {timeout:g} s") from None
            except _ConnectionLost:
                raise NoAnswer("connection lost before the answer") from None
        finally:
            self._pending.pop(key, None)
            if not future.done():
                future.cancel()

    async def _network(self, code: str, *, require_up: bool = True) -> bool:
        stan = await asyncio.to_thread(self.stan_source)
        answer = await self._exchange(iso.NetworkRequest(stan=stan, transmitted_at=_now(), network_code=code),
                                      self.config.echo_timeout, require_up=require_up)
        return isinstance(answer, iso.NetworkResponse) and answer.approved

    async def _run(self) -> None:
        delay = self.config.reconnect_min
        address = f"{self.config.host}:{self.config.port}"
        while True:
            try:
                reader, writer = await within(self.config.echo_timeout, asyncio.open_connection(
                    self.config.host, self.config.port, limit=iso.MAX_FRAME + 2))
            except (OSError, TimeoutError) as exc:
                logger.info("rails: connection to the switch %s failed (%s), next try in %.1f s", address,
                            type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.reconnect_max)
                continue
            self._writer = writer
            self._last_traffic = time.monotonic()
            reading = asyncio.create_task(self._read(reader, writer))
            try:
                signed_on = False
                try:
                    signed_on = await self._network(iso.SIGN_ON, require_up=False)
                except (NotSent, NoAnswer) as exc:
                    logger.warning("rails: sign-on to %s: %s", address, exc)
                except Exception:  # the STAN's database: try again later
                    logger.exception("rails: sign-on to %s failed", address)
                if signed_on:
                    self.sign_ons += 1
                    self._up.set()
                    delay = self.config.reconnect_min
                    logger.info("rails: signed on to the switch %s", address)
                    await self._keep_alive(reading, address)
                else:
                    logger.warning("rails: sign-on to the switch %s refused or unanswered", address)
            finally:
                self._up.clear()
                self._writer = None
                reading.cancel()
                writer.close()
                for future in self._pending.values():
                    if not future.done():
                        future.set_exception(_ConnectionLost())
            logger.warning("rails: connection to the switch %s lost, reconnecting in %.1f s", address, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.reconnect_max)

    async def _keep_alive(self, reading: asyncio.Task, address: str) -> None:
        """Until the connection ends: an echo after each ``echo_interval`` of silence; unanswered, it ends."""
        while True:
            idle = time.monotonic() - self._last_traffic
            wait = max(self.config.echo_interval - idle, 0.01)
            done, _ = await asyncio.wait({reading}, timeout=wait)
            if done:
                return
            if time.monotonic() - self._last_traffic < self.config.echo_interval:
                continue
            try:
                answered = await self._network(iso.ECHO)
            except (NotSent, NoAnswer) as exc:
                logger.warning("rails: echo to %s: %s", address, exc)
                return
            except Exception:
                logger.exception("rails: echo to %s failed", address)
                self._last_traffic = time.monotonic()  # the STAN's database: next echo later
                continue
            if not answered:
                logger.warning("rails: echo refused by %s", address)
                return
            self.echoes += 1

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                message = await iso.read_message(reader)
            except iso.MessageError as exc:
                logger.warning("rails: bad message from the switch (%s)", exc)
                if exc.stream_lost:
                    return
                continue
            except (ConnectionError, OSError):
                return
            if message is None:
                return
            self._last_traffic = time.monotonic()
            if isinstance(message, iso.NetworkRequest):  # the switch's own echo
                writer.write(iso.encode_frame(iso.respond(message, rc.APPROVED)))
                continue
            if message.MTI in iso.REQUESTS:
                logger.warning("rails: the switch sent a request %s STAN %s: ignored", message.MTI, message.stan)
                continue
            future = self._pending.get(iso.match_key(message))
            if future is not None and not future.done():
                future.set_result(message)
            else:
                self.late_answers += 1
                logger.warning("rails: late or unknown answer %s STAN %s (DE39 %s) ignored", message.MTI,
                               message.stan, getattr(message, "response_code", ""))


_connection: RailsConnection | None = None
_connection_lock = threading.Lock()


def connection() -> RailsConnection:
    """This process's connection to the switch, made on first use (again after a fork)."""
    global _connection
    with _connection_lock:
        if _connection is None or _connection.pid != os.getpid():
            _connection = RailsConnection(RailsConfig.from_settings())
        return _connection


def reset_connection() -> None:
    """Close this process's connection (tests; a settings change)."""
    global _connection
    with _connection_lock:
        if _connection is not None and _connection.pid == os.getpid():
            _connection.close()
        _connection = None


# --- The acquirer ------------------------------------------------------------------------------------------------


def _order_id(order_id: str) -> str:
    return _ORDER_ID_CHARS.sub("", order_id)[:64]


class SwitchAcquirer:
    """``core.acquiring.Acquirer`` over ISO 8583 to the switch (see the module)."""

    def __init__(self, rails: RailsConnection | None = None):
        self.rails = rails or connection()

    @sensitive_variables()  # the card
    def authorize(self, request: AuthorizationRequest) -> AuthorizationResult:
        auth = request.authentication
        message = iso.AuthorizationRequest(
            pan=request.card.pan, expiry_yymm=request.card.expiry_yymm, cvv=request.card.cvv,
            amount_minor=request.amount_minor, currency=request.currency, stan=request.stan,
            transmitted_at=request.transmitted_at, merchant_id=request.merchant_id,
            merchant_name=iso.ascii_text(request.merchant_name), order_id=_order_id(request.order_id),
            eci=auth.eci if auth else "", authentication_value=auth.authentication_value if auth else "",
            ds_trans_id=auth.ds_trans_id if auth else "", trans_status=auth.trans_status if auth else "",
        )
        answer = self._send(message, reversible=True)
        return AuthorizationResult(response_code=answer.response_code, auth_code=answer.auth_code, rrn=answer.rrn)

    def capture(self, request: SettlementRequest) -> SettlementResult:
        if not request.rrn:  # no authorization answer, nothing to capture
            return SettlementResult(response_code=rc.INVALID_TRANSACTION)
        message = iso.CompletionRequest(
            amount_minor=request.amount_minor, currency=request.currency, stan=request.stan,
            transmitted_at=request.transmitted_at, merchant_id=request.merchant_id, rrn=request.rrn,
            original=self._original("0100", request.original_stan, request.original_transmitted_at),
            auth_code=request.auth_code, order_id=_order_id(request.order_id))
        return SettlementResult(response_code=self._send(message, reversible=False).response_code)

    def void(self, request: SettlementRequest) -> SettlementResult:
        """The reversal of an authorization: the one owed already if its answer never came, else a new one;
        sent once now, then by ``sweep_reversals`` until acknowledged (AcquirerUnavailable meanwhile)."""
        row = services.reversal_open(
            merchant_id=request.merchant_id, original_mti="0100", original_stan=request.original_stan,
            original_transmitted_at=request.original_transmitted_at, processing_code=iso.PURCHASE,
            amount_minor=request.amount_minor, currency=request.currency, order_id=_order_id(request.order_id),
            rrn=request.rrn, auth_code=request.auth_code)
        if row.state == PendingReversal.State.PENDING:
            if not services.reversal_claim(reversal_id=row.pk, hold_seconds=self._hold_seconds()):
                raise AcquirerUnavailable("the reversal is being sent or waits for its next try")
            row = send_reversal(row.pk, rails=self.rails)
            if row.state != PendingReversal.State.DONE:
                raise AcquirerUnavailable(f"reversal without a final answer ({row.last_error})")
        return SettlementResult(response_code=reversal_outcome(row))

    def refund(self, request: RefundRequest) -> RefundResult:
        message = iso.FinancialRequest(
            processing_code=iso.REFUND, amount_minor=request.amount_minor, currency=request.currency,
            stan=request.stan, transmitted_at=request.transmitted_at, merchant_id=request.merchant_id,
            rrn=request.rrn, original=self._original("0100", request.original_stan, request.original_transmitted_at),
            merchant_name=iso.ascii_text(request.merchant_name), order_id=_order_id(request.order_id))
        answer = self._send(message, reversible=True)
        return RefundResult(response_code=answer.response_code, rrn=answer.rrn)

    # ---

    def _hold_seconds(self) -> float:
        return self.rails.config.timeout + self.rails.config.connect_wait + 5

    @staticmethod
    def _original(mti: str, stan: str, transmitted_at: dt.datetime) -> iso.OriginalData:
        return iso.OriginalData(mti=mti, stan=stan, transmitted_at=transmitted_at.astimezone(dt.UTC))

    @sensitive_variables()  # an authorization carries the card
    def _send(self, message: iso.Message, *, reversible: bool) -> iso.Message:
        try:
            answer = self.rails.exchange(message)
        except NotSent as exc:
            logger.warning("rails: %s STAN %s not sent: %s", message.MTI, message.stan, exc)
            raise AcquirerUnavailable(str(exc)) from None
        except NoAnswer as exc:
            logger.warning("rails: %s STAN %s: %s%s", message.MTI, message.stan, exc,
                           ": reversal recorded" if reversible else "")
            if reversible:
                self._owe_reversal(message)
            raise AcquirerUnavailable(str(exc)) from None
        if iso.RESPONSE_MTI[message.MTI] != answer.MTI:
            logger.error("rails: %s STAN %s answered by a %s", message.MTI, message.stan, answer.MTI)
            if reversible:
                self._owe_reversal(message)
            raise AcquirerUnavailable(f"answered by a {answer.MTI}")
        return answer

    @staticmethod
    def _owe_reversal(message: iso.Message) -> None:
        services.reversal_open(
            merchant_id=message.merchant_id, original_mti=message.MTI, original_stan=message.stan,
            original_transmitted_at=message.transmitted_at, processing_code=message.processing_code,
            amount_minor=message.amount_minor, currency=message.currency, order_id=message.order_id,
            rrn=getattr(message, "rrn", "") if message.MTI == "0200" else "")


def reversal_outcome(row: PendingReversal) -> str:
    """The code a finished reversal stands for: 12 to the reversal of an authorization that never got its answer
    (no RRN) means that the switch never forwarded it, so nothing is held: done (00)."""
    if row.response_code == rc.INVALID_TRANSACTION and row.original_mti == "0100" and not row.rrn:
        return rc.APPROVED
    return row.response_code


def send_reversal(reversal_id: int, *, rails: RailsConnection) -> PendingReversal:
    """One send of a claimed reversal, under a new STAN: done when a final 0410 comes, else due again later."""
    row = PendingReversal.objects.get(pk=reversal_id)
    if row.state == PendingReversal.State.DONE:
        return row
    original = iso.OriginalData(mti=row.original_mti, stan=row.original_stan,
                                transmitted_at=row.original_transmitted_at.astimezone(dt.UTC))
    message = iso.ReversalRequest(
        amount_minor=row.amount_minor, currency=row.currency, stan=services.next_stan(), transmitted_at=_now(),
        merchant_id=row.merchant_id, original=original, processing_code=row.processing_code,
        rrn=row.rrn if row.original_mti == "0100" else "", auth_code=row.auth_code, order_id=row.order_id)
    try:
        answer = rails.exchange(message)
    except (NotSent, NoAnswer) as exc:
        return services.reversal_retry_later(reversal_id=row.pk, error=str(exc))
    if not isinstance(answer, iso.ReversalResponse):
        return services.reversal_retry_later(reversal_id=row.pk, error=f"answered by a {answer.MTI}")
    if answer.response_code in REVERSAL_RETRY_CODES:
        return services.reversal_retry_later(
            reversal_id=row.pk, error=f"0410 {answer.response_code} ({rc.lookup(answer.response_code).meaning})")
    logger.info("rails: reversal of %s STAN %s acknowledged (%s)", row.original_mti, row.original_stan,
                answer.response_code)
    return services.reversal_done(reversal_id=row.pk, response_code=answer.response_code)


def sweep_reversals(*, now: dt.datetime | None = None, rails: RailsConnection | None = None) -> dict[str, int]:
    """Send every reversal whose next try has come (one of ``settings.TASK_WORKER_SWEEPS``). Connects to the
    switch only when there is one; while the switch is unreachable, waits once and leaves them for the next pass."""
    now = now or timezone.now()
    counts: dict[str, int] = {}
    due = selectors.reversals_due(now=now)
    if not due:
        return counts
    rails = rails or connection()
    hold = rails.config.timeout + rails.config.connect_wait + 5
    for n, reversal_id in enumerate(due):
        if not rails.up and not rails.wait_up(rails.config.connect_wait):
            # The switch is unreachable: the rest waits for the next pass rather than each for its own wait.
            counts["reversals waiting for the switch"] = len(due) - n
            break
        if not services.reversal_claim(reversal_id=reversal_id, hold_seconds=hold, now=now):
            continue
        row = send_reversal(reversal_id, rails=rails)
        done = "reversals acknowledged" if row.state == PendingReversal.State.DONE else "reversals retry later"
        counts[done] = counts.get(done, 0) + 1
    return counts


__all__ = ["NoAnswer", "NotSent", "RailsConfig", "RailsConnection", "SwitchAcquirer", "connection",
           "reset_connection", "send_reversal", "sweep_reversals"]
