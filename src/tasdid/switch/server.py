"""The switch's ISO 8583 server: acquirers in, BIN routing, issuer links, the journal, timeouts and reversals.

One asyncio loop (``Switch``), which ``tasdid switch`` runs (``serve``):

- Acquirers connect on ``SwitchConfig.host:port``; each connection is persistent and pipelined: every request is
  handled by a task of its own and answered when its answer comes, in any order (at most ``max_in_flight`` at
  once per connection, then the switch stops reading it). A connection that says nothing for ``idle_timeout``
  seconds, or whose framing breaks (a length of 0 or over ``iso8583.MAX_FRAME``, a frame cut short), is closed;
  a message that cannot be decoded is answered 30 when its type, STAN and DE7 were read
  (``iso8583.format_error_answer``), else the connection is closed. Nothing else is ever affected.
- Routing: the card number's longest BIN prefix among the ``Route`` rows (re-read every ``routes_refresh``
  seconds); no route answers 92. A completion (0220), a reversal (0400) or a refund without card number (0200
  ``20xxxx``) goes where its original (DE90) went, with DE90 rewritten to the switch's own STAN and DE7.
- Issuer links (``IssuerLink``): one persistent connection per issuer host, signed on (0800 ``001``) when it
  connects, tested by an echo (0800 ``301``) every ``echo_interval`` seconds, reconnected with a doubling backoff.
  Each request goes out under the link's own STAN and the switch's DE7, so two acquirers' STANs never meet at an
  issuer; the answer is found by (STAN, DE7), in any order, and given back to the acquirer under its own.
- A link that is down answers 91 at once. No answer within ``issuer_timeout`` seconds (or the link lost after
  the request left): 91 to the acquirer, and for an authorization or a purchase a ``PendingReversal`` row, whose
  0400 is sent until a 0410 comes, with a doubling backoff, again after a restart; a late answer is journaled
  and ignored.
- The same acquirer (its address), MTI, STAN, DE7 and merchant while the first is in flight or answered within
  ``duplicate_window`` seconds: 94, and the first goes on; a 0220 or 0400 repeated after its answer gets that
  same answer again (a repeat changes nothing and ends the acquirer's retries).
- Journal: one ``JournalEntry`` per message, written in batches by a task of its own; the card number only
  masked (first 6 + last 4), never a CVV.

Database work runs in the switch's own threads (``Switch.db``), each call one short transaction.
"""

import asyncio
import contextlib
import dataclasses
import datetime as dt
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.db import close_old_connections, connections

from tasdid.core.aio import BatchedWriter, within
from tasdid.core.cards import mask

from . import iso8583 as iso
from . import selectors, services
from .routing import RouteEntry, route_for

logger = logging.getLogger("tasdid.switch")

Address = tuple[str, int]
rc = iso.rc
# Requests whose loss after sending leaves money held or moved at the issuer: reversed on a timeout.
REVERSIBLE = ("0100", "0200")
# Requests routed by the original they name (DE90), not by a card number.
FOLLOW_ORIGINAL = ("0220", "0400")
# The note of an answer given again to a repeated request (the clearing file counts the first one only).
REPEAT_NOTE = selectors.REPEAT_NOTE


@dataclass(frozen=True)
class SwitchConfig:
    host: str = "127.0.0.1"
    port: int = 8583  # 0: a free port (tests), read back from Switch.port
    default_issuer: Address = ("127.0.0.1", 8584)
    issuer_timeout: float = 10.0
    echo_interval: float = 30.0
    echo_timeout: float = 5.0
    idle_timeout: float = 300.0
    duplicate_window: float = 300.0
    routes_refresh: float = 30.0
    reconnect_min: float = 0.2
    reconnect_max: float = 10.0
    reversal_min: float = 1.0
    reversal_max: float = 60.0
    max_in_flight: int = 256
    max_frame: int = iso.MAX_FRAME
    journal_batch: int = 500
    journal_interval: float = 0.1

    @classmethod
    def from_settings(cls, **overrides) -> "SwitchConfig":
        from django.conf import settings

        values = {
            "host": settings.SWITCH_HOST, "port": settings.SWITCH_PORT,
            "default_issuer": (settings.ISSUER_HOST, settings.ISSUER_PORT),
            "issuer_timeout": settings.SWITCH_ISSUER_TIMEOUT, "echo_interval": settings.SWITCH_ECHO_SECONDS,
            "idle_timeout": settings.SWITCH_IDLE_SECONDS, "duplicate_window": settings.SWITCH_DUPLICATE_SECONDS,
            "routes_refresh": settings.SWITCH_ROUTES_SECONDS,
        }
        values.update(overrides)
        return cls(**values)


class LinkDown(Exception):
    """The issuer link is not up, or went down before the request could leave."""


class NoAnswer(Exception):
    """The request left for the issuer and no answer came (timeout, or the link lost meanwhile)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer or "")


def _in_thread(function: Callable, kwargs: dict):
    """``function(**kwargs)`` for a database thread, with the thread's connection closed afterwards."""

    def run():
        close_old_connections()
        try:
            return function(**kwargs)
        finally:
            connections.close_all()

    return run


def _keeping_connection(function: Callable, kwargs: dict):
    """``function(**kwargs)`` for a thread that keeps its database connection; closed after a failure (perhaps
    that connection's), so that the next call opens another."""

    def run():
        try:
            return function(**kwargs)
        except Exception:
            connections.close_all()
            raise

    return run


def journal_fields(message: iso.Message, *, direction: str, peer: str = "", bank_name: str = "",
                   related: iso.Message | None = None, latency: float | None = None, note: str = "",
                   request: iso.Message | None = None) -> dict:
    """A journal row for ``message``: what may be kept of it (masked card number, never a CVV). For an answer,
    ``request`` lends what the answer does not carry: DE90, DE48 OI, and the amount and currency when absent."""
    pan = getattr(message, "pan", "") or ""
    amount = getattr(message, "amount_minor", None)
    currency = getattr(message, "currency", "") or ""
    original = getattr(message, "original", None)
    order_id = getattr(message, "order_id", "") or ""
    if request is not None:
        amount = amount if amount is not None else getattr(request, "amount_minor", None)
        currency = currency or getattr(request, "currency", "") or ""
        original = original or getattr(request, "original", None)
        order_id = order_id or getattr(request, "order_id", "") or ""
    return {
        "at": dt.datetime.now(dt.UTC), "direction": direction, "peer": peer[:80], "bank_name": bank_name[:80],
        "mti": message.MTI, "stan": message.stan, "transmitted_at": message.transmitted_at,
        "related_stan": related.stan if related is not None else "",
        "related_transmitted_at": related.transmitted_at if related is not None else None,
        "rrn": getattr(message, "rrn", "") or "", "response_code": getattr(message, "response_code", "") or "",
        "masked_pan": mask(pan) if pan else "", "merchant_id": getattr(message, "merchant_id", "") or "",
        "processing_code": getattr(message, "processing_code", "") or "",
        "amount_minor": amount, "currency": currency,
        "original_mti": original.mti if original is not None else "",
        "original_stan": original.stan if original is not None else "",
        "original_transmitted_at": original.transmitted_at if original is not None else None,
        "order_id": order_id[:64], "latency_ms": None if latency is None else round(latency * 1000),
        "note": note[:200],
    }


class JournalUnavailable(Exception):
    """A row that had to be on disk before the switch goes on could not be written."""


class Journal:
    """Journal rows queued by the hot path and written in batches by one task. Most rows may wait for their batch
    (``record``); a forwarded 0100 or 0200 may not (``record_durably``): the switch needs it to find the original
    of a reversal after a restart, so it is committed before the frame leaves, with whatever else waits (group
    commit: one transaction for every request forwarded meanwhile)."""

    def __init__(self, config: SwitchConfig, db: Callable):
        self.config = config
        self.db = db  # runs a function in the journal's own thread, which keeps its database connection
        self.queue: asyncio.Queue[tuple[dict, asyncio.Future | None]] = asyncio.Queue()
        self._durable_waiting = asyncio.Event()
        self._durable_queued = 0  # rows of record_durably not yet written
        self.written = 0

    def record(self, entry: dict) -> None:
        self.queue.put_nowait((entry, None))

    async def record_durably(self, entry: dict) -> None:
        """Return once ``entry`` is committed; JournalUnavailable when it could not be."""
        future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((entry, future))
        self._durable_queued += 1
        self._durable_waiting.set()
        await future

    async def run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            if batch[0][1] is None and not self._durable_waiting.is_set():
                with contextlib.suppress(TimeoutError):  # let a batch gather, unless a row must be on disk
                    await within(self.config.journal_interval, self._durable_waiting.wait())
            self._durable_waiting.clear()
            while not self.queue.empty() and len(batch) < self.config.journal_batch:
                batch.append(self.queue.get_nowait())
            await self._write(batch)
            if self._durable_queued:
                self._durable_waiting.set()  # more than a batch waited: the rest goes at once too

    async def flush(self) -> None:
        batch = []
        while not self.queue.empty():
            batch.append(self.queue.get_nowait())
        if batch:
            await self._write(batch)

    async def _write(self, batch: list[tuple[dict, asyncio.Future | None]]) -> None:
        self._durable_queued -= sum(future is not None for _entry, future in batch)
        try:
            self.written += await self.db(services.journal_append, entries=[entry for entry, _future in batch])
        except Exception as exc:  # the journal must never stop the switch; the rows are lost, say so
            logger.exception("journal: %d rows could not be written", len(batch))
            for _entry, future in batch:
                if future is not None and not future.done():
                    future.set_exception(JournalUnavailable(str(exc)))
            return
        for _entry, future in batch:
            if future is not None and not future.done():
                future.set_result(None)


class IssuerLink:
    """One persistent connection to an issuer host: sign-on, echo, reconnection, STAN allocation, matching."""

    def __init__(self, switch: "Switch", address: Address):
        self.switch = switch
        self.config = switch.config
        self.address = address
        self.name = f"{address[0]}:{address[1]}"
        self.up = asyncio.Event()
        self.pending: dict[tuple[str, str], asyncio.Future] = {}
        self.writer: asyncio.StreamWriter | None = None
        self.out: BatchedWriter | None = None  # self.writer's frames, one write per turn of the loop
        self._stans = itertools.cycle(range(1, 1_000_000))
        self._stans_in_flight: set[str] = set()  # the STANs of ``pending`` (each in flight once)
        self.sign_ons = 0  # successful sign-ons (counts reconnections)
        self.echoes = 0  # answered echoes
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"issuer-link {self.name}")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    def _next_stan(self) -> str:
        for _ in range(1_000_000):
            stan = f"{next(self._stans):06d}"
            if stan not in self._stans_in_flight:
                return stan
        raise LinkDown("no free STAN")

    async def exchange(self, build: Callable[[str, dt.datetime], iso.Message], *, timeout: float,
                       require_up: bool = True, related: iso.Message | None = None,
                       bank_name: str = "") -> tuple[iso.Message, iso.Message]:
        """Send ``build(stan, de7)`` and wait for its answer: (sent, answer). Raises LinkDown when it could not
        leave, NoAnswer (with ``.sent``) when it left and no answer came."""
        if (require_up and not self.up.is_set()) or self.writer is None or self.writer.is_closing():
            raise LinkDown(f"{self.name}: link down")
        message = build(self._next_stan(), _now())
        key = iso.match_key(message)
        future = asyncio.get_running_loop().create_future()
        self.pending[key] = future
        self._stans_in_flight.add(message.stan)
        started = time.monotonic()
        try:
            entry = journal_fields(message, direction="iss_out", peer=self.name, bank_name=bank_name,
                                   related=related)
            if message.MTI in REVERSIBLE:
                # On disk before it leaves: a switch that dies once it has left still finds, after its restart,
                # the original of the acquirer's reversal (else it would answer 12 and the issuer's hold stay).
                try:
                    await self.switch.journal.record_durably(entry)
                except JournalUnavailable as exc:
                    raise LinkDown(f"{self.name}: not forwarded, the journal cannot be written ({exc})") from None
                if self.writer is None or self.writer.is_closing():
                    raise LinkDown(f"{self.name}: link lost")
            try:
                self.out.write(iso.encode_frame(message))
                await self.out.drain()
            except (ConnectionError, OSError) as exc:
                raise LinkDown(f"{self.name}: {exc}") from None
            if message.MTI not in REVERSIBLE:
                self.switch.journal.record(entry)
            try:
                answer = await within(timeout, asyncio.shield(future))
            except (TimeoutError, LinkDown) as exc:
                error = NoAnswer(f"{self.name}: {'no answer in time' if isinstance(exc, TimeoutError) else exc}")
                error.sent = message
                raise error from None
            self.switch.journal.record(journal_fields(answer, direction="iss_in", peer=self.name,
                                                      bank_name=bank_name, related=related,
                                                      latency=time.monotonic() - started))
            return message, answer
        finally:
            self.pending.pop(key, None)
            self._stans_in_flight.discard(message.stan)

    async def _run(self) -> None:
        delay = self.config.reconnect_min
        while True:
            try:
                reader, writer = await within(self.config.echo_timeout, asyncio.open_connection(*self.address))
            except (OSError, TimeoutError) as exc:
                logger.info("issuer link %s: connection failed (%s), next try in %.1f s", self.name, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.reconnect_max)
                continue
            self.writer, self.out = writer, BatchedWriter(writer)
            reading = asyncio.create_task(self._read(reader, writer), name=f"issuer-read {self.name}")
            try:
                if await self._network(iso.SIGN_ON, require_up=False):
                    self.sign_ons += 1
                    self.up.set()
                    delay = self.config.reconnect_min
                    logger.info("issuer link %s: signed on", self.name)
                    while True:
                        done, _ = await asyncio.wait({reading}, timeout=self.config.echo_interval)
                        if done or not await self._network(iso.ECHO):
                            break
                        self.echoes += 1
                else:
                    logger.warning("issuer link %s: sign-on refused or unanswered", self.name)
            finally:
                self.up.clear()
                self.writer = None
                reading.cancel()
                writer.close()
                for future in self.pending.values():
                    if not future.done():
                        future.set_exception(LinkDown(f"{self.name}: link lost"))
            logger.warning("issuer link %s: down, reconnecting in %.1f s", self.name, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.reconnect_max)

    async def _network(self, code: str, *, require_up: bool = True) -> bool:
        try:
            _sent, answer = await self.exchange(
                lambda stan, now: iso.NetworkRequest(stan=stan, transmitted_at=now, network_code=code),
                timeout=self.config.echo_timeout, require_up=require_up)
        except (LinkDown, NoAnswer) as exc:
            logger.warning("issuer link %s: 0800 %s: %s", self.name, code, exc)
            return False
        return isinstance(answer, iso.NetworkResponse) and answer.approved

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                message = await iso.read_message(reader, max_size=self.config.max_frame)
            except iso.MessageError as exc:
                logger.warning("issuer link %s: bad message (%s)", self.name, exc)
                if exc.stream_lost:
                    return
                continue
            except (ConnectionError, OSError):
                return
            if message is None:
                return
            if isinstance(message, iso.NetworkRequest):  # the issuer's own echo
                writer.write(iso.encode_frame(iso.respond(message, rc.APPROVED)))
                continue
            if message.MTI in iso.REQUESTS:
                logger.warning("issuer link %s: unexpected request %s ignored", self.name, message.MTI)
                continue
            future = self.pending.get(iso.match_key(message))
            if future is not None and not future.done():
                future.set_result(message)
            else:
                logger.warning("issuer link %s: late or unknown %s STAN %s ignored", self.name, message.MTI,
                               message.stan)
                self.switch.journal.record(journal_fields(message, direction="iss_in", peer=self.name,
                                                          note="réponse tardive ou inconnue, ignorée"))


@dataclass(frozen=True)
class Forward:
    """Where an acquirer's request went: the issuer, and the STAN and DE7 it carried there."""

    address: Address
    bank_name: str
    stan: str
    transmitted_at: dt.datetime


class Switch:
    def __init__(self, config: SwitchConfig):
        self.config = config
        # The threads of the switch's database work; stop() waits for them, so no query outlives the switch.
        self._db_threads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="switch-db")
        # The journal's writes, one batch after another in a thread of their own that keeps its connection
        # (a new one per batch cost more than the batch's INSERT).
        self._journal_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="switch-journal")
        self.journal = Journal(config, self._journal_db)
        self.routes: list[RouteEntry] = []
        self.links: dict[Address, IssuerLink] = {}
        # (acquirer host, MTI, STAN, DE7, merchant) -> (monotonic time answered, the answer); None: in flight
        self.recent: OrderedDict[tuple, tuple[float, iso.Message | None] | None] = OrderedDict()
        # (merchant, MTI, STAN, DE7) of an acquirer's request -> where it went (the journal holds older ones)
        self.forwards: OrderedDict[tuple, Forward] = OrderedDict()
        # (merchant, MTI, STAN, DE7) of originals reversed before they arrived (a 0400 overtook its 0100 on another
        # connection): declined if they come. In memory: a restart drops the connections they could come on.
        self.reversed_unseen: OrderedDict[tuple, None] = OrderedDict()
        self.server: asyncio.base_events.Server | None = None
        self.port: int | None = None
        self._tasks: list[asyncio.Task] = []
        self._handlers: set[asyncio.Task] = set()
        self._connections: set[asyncio.Task] = set()
        self._reversing: set[int] = set()
        self._reversal_wakeup = asyncio.Event()
        self.closed_connections = 0  # acquirer connections closed by the switch (bad input, idle)

    async def db(self, function: Callable, /, **kwargs):
        """``function(**kwargs)`` in one of the switch's database threads (each call one short transaction)."""
        return await asyncio.get_running_loop().run_in_executor(self._db_threads, _in_thread(function, kwargs))

    async def _journal_db(self, function: Callable, /, **kwargs):
        return await asyncio.get_running_loop().run_in_executor(self._journal_thread, _keeping_connection(function,
                                                                                                          kwargs))

    # --- life cycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.load_routes()
        self.server = await asyncio.start_server(self._serve_acquirer, self.config.host, self.config.port,
                                                 limit=self.config.max_frame + 16)
        self.port = self.server.sockets[0].getsockname()[1]
        self._tasks = [asyncio.create_task(self.journal.run(), name="journal"),
                       asyncio.create_task(self._refresh_routes(), name="routes"),
                       asyncio.create_task(self._reversals(), name="reversals")]
        logger.info("switch listening on %s:%s", self.config.host, self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        tasks = [*self._tasks, *self._handlers, *self._connections]
        for task in tasks:
            task.cancel()
        for link in list(self.links.values()):
            await link.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.journal.flush()
        await self._journal_db(connections.close_all)
        await asyncio.to_thread(self._journal_thread.shutdown, wait=True)
        await asyncio.to_thread(self._db_threads.shutdown, wait=True)

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def load_routes(self) -> None:
        host, port = self.config.default_issuer
        self.routes = await self.db(selectors.routes_active, default_host=host, default_port=port)
        for route in self.routes:
            self.link(route.address)

    def link(self, address: Address) -> IssuerLink:
        link = self.links.get(address)
        if link is None:
            link = self.links[address] = IssuerLink(self, address)
            link.start()
        return link

    async def _refresh_routes(self) -> None:
        while True:
            await asyncio.sleep(self.config.routes_refresh)
            try:
                await self.load_routes()
            except Exception:
                logger.exception("routes: could not be read, the previous table stays")

    # --- acquirers --------------------------------------------------------------------------------------------

    async def _serve_acquirer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        host = peer.rsplit(":", 1)[0]
        this = asyncio.current_task()
        self._connections.add(this)
        slots = asyncio.Semaphore(self.config.max_in_flight)
        out = BatchedWriter(writer)  # the answers ready in one turn of the loop leave together

        async def send(message: iso.Message, *, request: iso.Message | None, started: float | None,
                       note: str = "", bank_name: str = "", forward: Forward | None = None) -> None:
            related = None
            if forward is not None:
                related = dataclasses.replace(message, stan=forward.stan, transmitted_at=forward.transmitted_at)
            self.journal.record(journal_fields(
                message, direction="acq_out", peer=peer, bank_name=bank_name, related=related, note=note,
                request=request,
                latency=None if started is None else time.monotonic() - started))
            if writer.is_closing():
                return
            out.write(iso.encode_frame(message))
            with contextlib.suppress(ConnectionError, OSError):
                await out.drain()

        try:
            while True:
                await slots.acquire()
                try:
                    payload = await within(self.config.idle_timeout,
                                           iso.read_frame(reader, max_size=self.config.max_frame))
                except TimeoutError:
                    logger.info("acquirer %s: idle for %.0f s, closed", peer, self.config.idle_timeout)
                    break
                except iso.MessageError as exc:  # framing lost: nothing can be answered
                    logger.warning("acquirer %s: %s, closed", peer, exc)
                    self.journal.record({"at": dt.datetime.now(dt.UTC), "direction": "acq_in", "peer": peer,
                                         "note": f"trame illisible, connexion fermée : {exc.reason}"[:200]})
                    break
                except (ConnectionError, OSError):
                    break
                if payload is None:
                    return
                started = time.monotonic()
                try:
                    message = iso.decode(payload)
                except iso.MessageError as exc:
                    slots.release()
                    answer = iso.format_error_answer(exc)
                    self.journal.record({"at": dt.datetime.now(dt.UTC), "direction": "acq_in", "peer": peer,
                                         "mti": exc.mti or "", "stan": exc.stan or "",
                                         "transmitted_at": exc.transmitted_at, "merchant_id": exc.merchant_id or "",
                                         "note": f"erreur de format : {exc.where} : {exc.reason}"[:200]})
                    if answer is None:
                        logger.warning("acquirer %s: %s, nothing to answer, closed", peer, exc)
                        break
                    await send(answer, request=None, started=started, note="erreur de format")
                    continue
                except Exception:  # the codec's contract broken: that connection alone pays for it
                    logger.exception("acquirer %s: undecodable frame, closed", peer)
                    break
                task = asyncio.create_task(self._handle(message, peer=peer, host=host, send=send, started=started))
                self._handlers.add(task)
                task.add_done_callback(self._handlers.discard)
                task.add_done_callback(lambda _task: slots.release())
            self.closed_connections += 1
        finally:
            self._connections.discard(this)
            writer.close()

    async def _handle(self, request: iso.Message, *, peer: str, host: str, send, started: float) -> None:
        try:
            await self._handle_request(request, peer=peer, host=host, send=send, started=started)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must cost one answer (96), never the switch
            logger.exception("switch: %s STAN %s failed", request.MTI, getattr(request, "stan", "?"))
            if request.MTI in iso.REQUESTS and not isinstance(request, iso.NetworkRequest):
                await send(iso.respond(request, rc.SYSTEM_MALFUNCTION), request=request, started=started,
                           note="dysfonctionnement du switch")

    async def _handle_request(self, request: iso.Message, *, peer: str, host: str, send, started: float) -> None:
        self.journal.record(journal_fields(request, direction="acq_in", peer=peer))
        if isinstance(request, iso.NetworkRequest):  # the acquirer's sign-on or echo: the switch answers
            await send(iso.respond(request, rc.APPROVED), request=request, started=started)
            return
        if request.MTI not in iso.REQUESTS:
            logger.warning("acquirer %s: a response (%s) is not expected here, ignored", peer, request.MTI)
            return
        key = (host, request.MTI, request.stan, iso.de7(request.transmitted_at), request.merchant_id)
        self._expire_recent()
        if key in self.recent:
            first = self.recent[key]
            if first is not None and first[1] is not None and request.MTI in FOLLOW_ORIGINAL:
                # A completion or reversal sent again after its answer (the acquirer missed it): the same
                # answer again, so that a repeat changes nothing and still ends the acquirer's retries.
                await send(first[1], request=request, started=started, note=REPEAT_NOTE)
                return
            await send(iso.respond(request, rc.DUPLICATE_TRANSMISSION), request=request, started=started,
                       note="transmission en double")
            return
        self.recent[key] = None
        answered: list[iso.Message] = []

        async def send_once(message: iso.Message, **kwargs) -> None:
            answered.append(message)
            await send(message, **kwargs)

        try:
            await self._route_and_forward(request, send=send_once, started=started)
        finally:
            self.recent[key] = (time.monotonic(), answered[-1] if answered else None)
            self.recent.move_to_end(key)

    def _expire_recent(self) -> None:
        limit = time.monotonic() - self.config.duplicate_window
        while self.recent:
            _key, answered = next(iter(self.recent.items()))
            if answered is None or answered[0] > limit:
                break
            self.recent.popitem(last=False)

    def _forward_key(self, merchant_id: str, mti: str, stan: str, transmitted_at: dt.datetime) -> tuple:
        return (merchant_id, mti, stan, iso.de7(transmitted_at))

    async def _original(self, request: iso.Message) -> Forward | None:
        original = request.original
        key = self._forward_key(request.merchant_id, original.mti, original.stan, original.transmitted_at)
        if (found := self.forwards.get(key)) is not None:
            return found
        row = await self.db(selectors.forwarded_original, merchant_id=request.merchant_id, mti=original.mti,
                       stan=original.stan, transmitted_at=original.transmitted_at)
        if row is None:
            return None
        host, _, port = row.peer.rpartition(":")
        return Forward((host, int(port)), row.bank_name, row.stan, row.transmitted_at)

    async def _route_and_forward(self, request: iso.Message, *, send, started: float) -> None:
        follows = request.MTI in FOLLOW_ORIGINAL or (isinstance(request, iso.FinancialRequest) and not request.pan)
        rewrite: dict = {}
        if request.MTI in REVERSIBLE and self._forward_key(request.merchant_id, request.MTI, request.stan,
                                                           request.transmitted_at) in self.reversed_unseen:
            # Its reversal came first (on another connection) and was answered: never forward it now, whether it
            # names a card (an authorization) or follows a payment (a refund by RRN).
            await send(iso.respond(request, rc.INVALID_TRANSACTION), request=request, started=started,
                       note="annulé par l'acquéreur avant d'arriver")
            return
        if follows:
            original = await self._original(request)
            if original is None:
                if isinstance(request, iso.ReversalRequest) and await self.db(
                        selectors.answered_locally, merchant_id=request.merchant_id, mti=request.original.mti,
                        stan=request.original.stan, transmitted_at=request.original.transmitted_at):
                    # The switch answered the original itself: nothing was held, nothing to undo.
                    await send(iso.respond(request, rc.APPROVED), request=request, started=started,
                               note="original jamais transmis à l'émetteur : rien à annuler")
                else:
                    self.reversed_unseen[self._forward_key(request.merchant_id, request.original.mti,
                                                           request.original.stan,
                                                           request.original.transmitted_at)] = None
                    while len(self.reversed_unseen) > 100_000:
                        self.reversed_unseen.popitem(last=False)
                    await send(iso.respond(request, rc.INVALID_TRANSACTION), request=request, started=started,
                               note="original inconnu du switch")
                return
            if isinstance(request, iso.ReversalRequest) and await self.db(
                    selectors.reversal_exists, host=original.address[0], port=original.address[1],
                    stan=original.stan, transmitted_at=original.transmitted_at):
                await send(iso.respond(request, rc.APPROVED), request=request, started=started,
                           bank_name=original.bank_name, note="annulation déjà en cours par le switch")
                return
            address, bank_name = original.address, original.bank_name
            rewrite["original"] = dataclasses.replace(request.original, stan=original.stan,
                                                      transmitted_at=original.transmitted_at)
        else:
            route = route_for(request.pan, self.routes)
            if route is None:
                await send(iso.respond(request, rc.NO_ROUTE), request=request, started=started,
                           note="aucune route pour ce BIN")
                return
            address, bank_name = route.address, route.bank_name

        link = self.link(address)
        forward_key = self._forward_key(request.merchant_id, request.MTI, request.stan, request.transmitted_at)
        sent_as: list[iso.Message] = []

        def build(stan: str, now: dt.datetime) -> iso.Message:
            message = dataclasses.replace(request, stan=stan, transmitted_at=now, **rewrite)
            sent_as.append(message)
            self.forwards[forward_key] = Forward(address, bank_name, stan, now)
            while len(self.forwards) > 100_000:
                self.forwards.popitem(last=False)
            return message

        try:
            _sent, answer = await link.exchange(build, timeout=self.config.issuer_timeout, related=request,
                                                bank_name=bank_name)
        except LinkDown as exc:
            self.forwards.pop(forward_key, None)
            logger.warning("switch: %s STAN %s: %s", request.MTI, request.stan, exc)
            await send(iso.respond(request, rc.ISSUER_UNAVAILABLE), request=request, started=started,
                       bank_name=bank_name, note="émetteur injoignable")
            return
        except NoAnswer as exc:
            logger.warning("switch: %s STAN %s: %s", request.MTI, request.stan, exc)
            sent: iso.Message = exc.sent
            forward = Forward(address, bank_name, sent.stan, sent.transmitted_at)
            if request.MTI in REVERSIBLE:
                await self._open_reversal(sent, forward)
            await send(iso.respond(request, rc.ISSUER_UNAVAILABLE), request=request, started=started,
                       bank_name=bank_name, forward=forward, note="pas de réponse de l'émetteur à temps")
            return
        forward = Forward(address, bank_name, sent_as[-1].stan, sent_as[-1].transmitted_at)
        if iso.RESPONSE_MTI[request.MTI] != answer.MTI:
            await send(iso.respond(request, rc.SYSTEM_MALFUNCTION), request=request, started=started,
                       bank_name=bank_name, forward=forward, note=f"réponse {answer.MTI} de l'émetteur")
            return
        await send(dataclasses.replace(answer, stan=request.stan, transmitted_at=request.transmitted_at),
                   request=request, started=started, bank_name=bank_name, forward=forward)

    # --- reversals ------------------------------------------------------------------------------------------

    async def _open_reversal(self, sent: iso.Message, forward: Forward) -> None:
        try:
            await self.db(services.reversal_open, host=forward.address[0], port=forward.address[1],
                     bank_name=forward.bank_name, original_mti=sent.MTI, original_stan=sent.stan,
                     original_transmitted_at=sent.transmitted_at, processing_code=sent.processing_code,
                     amount_minor=sent.amount_minor, currency=sent.currency, merchant_id=sent.merchant_id,
                     order_id=getattr(sent, "order_id", ""))
        except Exception:
            logger.exception("reversal of %s STAN %s at %s could not be recorded", sent.MTI, sent.stan,
                             forward.address)
            return
        self._reversal_wakeup.set()

    async def _reversals(self) -> None:
        while True:
            try:
                due = await self.db(selectors.reversals_due, now=dt.datetime.now(dt.UTC))
            except Exception:
                logger.exception("reversals: could not be read")
                due = []
            for reversal in due:
                if reversal.id not in self._reversing:
                    self._reversing.add(reversal.id)
                    task = asyncio.create_task(self._send_reversal(reversal))
                    self._handlers.add(task)
                    task.add_done_callback(self._handlers.discard)
            self._reversal_wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await within(self.config.reversal_min, self._reversal_wakeup.wait())

    async def _send_reversal(self, reversal) -> None:
        try:
            link = self.link((reversal.issuer_host, reversal.issuer_port))
            original = iso.OriginalData(mti=reversal.original_mti, stan=reversal.original_stan,
                                        transmitted_at=reversal.original_transmitted_at.astimezone(dt.UTC))
            try:
                _sent, answer = await link.exchange(
                    lambda stan, now: iso.ReversalRequest(
                        amount_minor=reversal.amount_minor, currency=reversal.currency, stan=stan,
                        transmitted_at=now, merchant_id=reversal.merchant_id, original=original,
                        processing_code=reversal.processing_code, order_id=reversal.order_id),
                    timeout=self.config.issuer_timeout, bank_name=reversal.bank_name)
            except (LinkDown, NoAnswer) as exc:
                delay = min(self.config.reversal_min * 2 ** reversal.attempts, self.config.reversal_max)
                await self.db(services.reversal_retry_later, reversal_id=reversal.id, delay_seconds=delay,
                         error=str(exc))
                return
            await self.db(services.reversal_acknowledge, reversal_id=reversal.id, response_code=answer.response_code)
            logger.info("reversal of %s STAN %s acknowledged by %s (%s)", reversal.original_mti,
                        reversal.original_stan, link.name, answer.response_code)
        finally:
            self._reversing.discard(reversal.id)
