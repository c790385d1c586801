"""The issuer host: the sandbox banks behind ISO 8583 over TCP (``tasdid issuer``, DESIGN.md §5).

One asyncio server answers for every sandbox bank (a card is found by its number, whichever bank issued it).
Each connection carries framed messages (``core.iso8583``: 2-byte length, then the message); requests may be
pipelined, and each is answered as soon as it is done, so answers may come out of order (the client matches
them by STAN + DE7, ``iso8583.match_key``). The bank's work runs in a small thread pool, one transaction per
message, through ``tasdid.bank.services.authorization`` — the functions the in-process acquirer calls too.

Authorizations (0100) go by **group commit**: those that arrive while one batch is being decided wait in a queue,
and the next batch (up to ``batch_max``, from every connection) is decided in one transaction by
``authorization.authorize_many`` — each answered as it would be alone after the ones before it, none before the
transaction has committed. ``group_workers`` threads take batches in turn, each keeping its database
connection between batches; a batch that fails is decided again one message at a time, each in its own
transaction, so that one message's fault costs only its own answer (96).

Per message (docs/iso8583.md, "The issuer host"):

- 0100 → ``authorization.authorize``: 0110 with DE39, and DE38 + DE37 when approved (a hold is placed);
- 0220 → ``authorization.hold_capture``: 0230 (up to the hold; more is 13);
- 0400 → by DE90's original MTI: 0100 → ``hold_void``, 0200 → ``refund_reverse``; anything else 12; 0410;
- 0200 with processing code 20 → ``authorization.refund``: 0210; a purchase (00) is not offered here: 12;
- 0800 (sign-on, sign-off, echo) → 0810 with 00.

Bad input: a frame whose length is 0, over ``iso8583.MAX_FRAME`` or cut short, a peer silent for
``idle_timeout`` seconds, or a message that cannot be answered (unknown MTI, a response, no readable STAN
and DE7): that connection is closed. A message that can be answered but breaks the profile gets 30
(``iso8583.format_error_answer``). Nothing is written for either. A fault of the bank (database) answers 96.
Never a card number or a CVV in the logs.
"""

import asyncio
import contextlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor

from django.db import connections
from django.views.decorators.debug import sensitive_variables

from tasdid.core import iso8583 as iso
from tasdid.core import response_codes as rc
from tasdid.core.aio import BatchedWriter, within

from .services import authorization

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8584
IDLE_TIMEOUT = 30.0  # seconds a connection may stay silent (or take to send one frame)
WORKERS = 4  # threads doing the bank's work
MAX_IN_FLIGHT = 64  # requests of one connection being answered at once; the next read waits
MAX_CONNECTIONS = 256
BATCH_MAX = 256  # authorizations decided in one transaction at most
GROUP_WORKERS = 2  # threads deciding batches of authorizations, each its own transaction


def address_from_env() -> tuple[str, int]:
    """TASDID_ISSUER_HOST and TASDID_ISSUER_PORT, or 127.0.0.1:8584."""
    host = os.environ.get("TASDID_ISSUER_HOST", "").strip() or DEFAULT_HOST
    port_text = os.environ.get("TASDID_ISSUER_PORT", "").strip() or str(DEFAULT_PORT)
    if not port_text.isascii() or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"TASDID_ISSUER_PORT is not a port number: {port_text!r}")
    return host, int(port_text)


# --- The bank's answer to one decoded request (runs in a worker thread) ---------------------------------------


@sensitive_variables()  # the request carries the card number and CVV
def answer(message: iso.Message) -> iso.Message:
    """The response to one request of the profile, after the bank's work (one transaction)."""
    try:
        return _answer(message)
    except Exception:
        # The database failed or locked: nobody decided. 96 tells the switch to reverse and retry later.
        logger.exception("issuer: %s STAN %s not answered by the bank", message.MTI, message.stan)
        return iso.respond(message, rc.SYSTEM_MALFUNCTION)
    finally:
        connections.close_all()  # this thread's connection: no transaction left open between messages


@sensitive_variables()  # the card number and CVV
def _ask(message: iso.AuthorizationRequest) -> dict:
    return {"pan": message.pan, "expiry_yymm": message.expiry_yymm, "cvv": message.cvv,
            "amount_minor": message.amount_minor, "currency": message.currency, "merchant_id": message.merchant_id,
            "merchant_name": message.merchant_name, "order_id": message.order_id, "stan": message.stan,
            "transmitted_at": message.transmitted_at, "eci": message.eci,
            "authentication_value": message.authentication_value, "ds_trans_id": message.ds_trans_id,
            "trans_status": message.trans_status}


@sensitive_variables()  # the requests carry card numbers and CVVs
def answer_authorizations(messages: list[iso.AuthorizationRequest]) -> list[iso.Message]:
    """The answers to a batch of 0100, decided in one transaction (group commit), for a thread that keeps its
    database connection between batches. If the batch fails, each is decided again alone (``answer``)."""
    try:
        if len(messages) == 1:
            return [_answer(messages[0])]
        outcomes = authorization.authorize_many([authorization.AuthorizationAsk(**_ask(m)) for m in messages])
        return [iso.respond(m, o.response_code, rrn=o.rrn, auth_code=o.auth_code)
                for m, o in zip(messages, outcomes, strict=True)]
    except Exception:
        logger.exception("issuer: a batch of %d authorizations failed, each decided again alone", len(messages))
        connections.close_all()  # this thread's connection, perhaps broken: the next batch opens another
        if len(messages) == 1:
            return [iso.respond(messages[0], rc.SYSTEM_MALFUNCTION)]
        return [answer(m) for m in messages]


@sensitive_variables()
def _answer(message: iso.Message) -> iso.Message:
    if isinstance(message, iso.NetworkRequest):
        return iso.respond(message, rc.APPROVED)
    if isinstance(message, iso.AuthorizationRequest):
        outcome = authorization.authorize(**_ask(message))
        return iso.respond(message, outcome.response_code, rrn=outcome.rrn, auth_code=outcome.auth_code)
    if isinstance(message, iso.CompletionRequest):
        outcome = authorization.hold_capture(
            merchant_id=message.merchant_id, rrn=message.rrn, original_stan=message.original.stan,
            original_transmitted_at=message.original.transmitted_at, amount_minor=message.amount_minor,
            currency=message.currency,
        )
        return iso.respond(message, outcome.response_code)
    if isinstance(message, iso.ReversalRequest):
        original = message.original
        if original.mti == "0100":
            outcome = authorization.hold_void(merchant_id=message.merchant_id, rrn=message.rrn,
                                              original_stan=original.stan,
                                              original_transmitted_at=original.transmitted_at)
        elif original.mti == "0200":
            outcome = authorization.refund_reverse(merchant_id=message.merchant_id, original_stan=original.stan,
                                                   original_transmitted_at=original.transmitted_at)
        else:  # a capture is final (refund it instead); a reversal is not reversed
            return iso.respond(message, rc.INVALID_TRANSACTION)
        return iso.respond(message, outcome.response_code)
    if isinstance(message, iso.FinancialRequest):
        if not message.is_refund:  # single-message purchases are not offered by the sandbox issuer
            return iso.respond(message, rc.INVALID_TRANSACTION, rrn="")
        outcome = authorization.refund(
            merchant_id=message.merchant_id, stan=message.stan, transmitted_at=message.transmitted_at,
            amount_minor=message.amount_minor, currency=message.currency, pan=message.pan, rrn=message.rrn,
            merchant_name=message.merchant_name,
        )
        return iso.respond(message, outcome.response_code, rrn=outcome.rrn or message.rrn)
    raise TypeError(f"not a request: {message.MTI}")  # the connection handler never passes one


# --- The server ----------------------------------------------------------------------------------------------


class IssuerHost:
    """The TCP server. ``await start()``, then ``port``; ``await close()`` to stop."""

    def __init__(self, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, idle_timeout: float = IDLE_TIMEOUT,
                 workers: int = WORKERS, max_in_flight: int = MAX_IN_FLIGHT,
                 max_connections: int = MAX_CONNECTIONS, batch_max: int = BATCH_MAX,
                 group_workers: int = GROUP_WORKERS):
        self.host, self.requested_port = host, port
        self.batch_max = batch_max
        self.group_workers = group_workers
        self.group_threads = ThreadPoolExecutor(max_workers=group_workers, thread_name_prefix="issuer-auth")
        self._authorizations: asyncio.Queue | None = None
        self._group_tasks: list[asyncio.Task] = []
        self._closing = False
        self.batches = 0  # batches of authorizations decided (each one transaction)
        self.idle_timeout = idle_timeout
        self.max_in_flight = max_in_flight
        self.max_connections = max_connections
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="issuer")
        self.server: asyncio.Server | None = None
        self.connections = 0

    @property
    def port(self) -> int:
        assert self.server is not None, "not started"
        return self.server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        self._authorizations = asyncio.Queue()
        self._group_tasks = [asyncio.create_task(self._group_commit(), name=f"issuer-group-commit-{n}")
                             for n in range(self.group_workers)]
        self.server = await asyncio.start_server(self._connection, self.host, self.requested_port,
                                                 limit=iso.MAX_FRAME + iso.LENGTH_PREFIX)

    async def serve_forever(self) -> None:
        if self.server is None:
            await self.start()
        async with self.server:
            await self.server.serve_forever()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        self._closing = True  # from now on an authorization is answered 96 at once (nobody decides it)
        for task in self._group_tasks:
            task.cancel()
        await asyncio.gather(*self._group_tasks, return_exceptions=True)
        self.group_threads.shutdown(wait=True)
        self.executor.shutdown(wait=True)

    async def _group_commit(self) -> None:
        """Take what waits in the queue (at least one, at most ``batch_max``) and decide it in one transaction."""
        loop = asyncio.get_running_loop()
        queue = self._authorizations
        try:
            while True:
                batch = [await queue.get()]
                while len(batch) < self.batch_max and not queue.empty():
                    batch.append(queue.get_nowait())
                deciding = loop.run_in_executor(self.group_threads, answer_authorizations, [m for m, _ in batch])
                try:
                    answers = await asyncio.shield(deciding)
                except asyncio.CancelledError:
                    # Stopping: the batch already in a thread is committed there, so its answers still go out.
                    self._deliver(batch, await deciding)
                    raise
                self.batches += 1
                self._deliver(batch, answers)
        finally:
            # Stopping: what still waits was never decided (96: nobody decided, nothing is held).
            while not queue.empty():
                message, future = queue.get_nowait()
                self._deliver([(message, future)], [iso.respond(message, rc.SYSTEM_MALFUNCTION)])

    @staticmethod
    def _deliver(batch: list, answers: list[iso.Message]) -> None:
        for (_message, future), response in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result(response)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve_connection(reader, writer)
        except asyncio.CancelledError:
            # The host is stopping. Not re-raised: asyncio 3.11's stream callback logs a cancelled handler as an
            # error. The bank's work already handed to a thread finishes there, in its own transaction.
            writer.close()

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if self.connections >= self.max_connections:
            logger.warning("issuer: connection from %s refused: %s open", peer, self.connections)
            writer.close()
            return
        self.connections += 1
        out = BatchedWriter(writer)  # the answers of one batch leave together
        in_flight = asyncio.Semaphore(self.max_in_flight)
        pending: set[asyncio.Task] = set()

        async def send(message: iso.Message) -> None:
            out.write(iso.encode_frame(message))
            await out.drain()

        async def work(message: iso.Message) -> None:
            try:
                if isinstance(message, iso.AuthorizationRequest) and self._closing:
                    response = iso.respond(message, rc.SYSTEM_MALFUNCTION)
                elif isinstance(message, iso.AuthorizationRequest):  # group commit (see the module)
                    decided = asyncio.get_running_loop().create_future()
                    self._authorizations.put_nowait((message, decided))
                    response = await decided
                else:
                    response = await asyncio.get_running_loop().run_in_executor(self.executor, answer, message)
                await send(response)
            except (ConnectionError, OSError):
                pass  # the peer left; the bank's work is done and recorded, a re-sent request gets its answer
            finally:
                in_flight.release()

        try:
            while True:
                await in_flight.acquire()
                try:
                    payload = await within(self.idle_timeout, iso.read_frame(reader))
                except TimeoutError:
                    in_flight.release()
                    logger.info("issuer: %s silent for %ss: closed", peer, self.idle_timeout)
                    break
                except iso.MessageError as exc:  # framing: the stream is out of step
                    in_flight.release()
                    logger.warning("issuer: %s sent a bad frame (%s): closed", peer, exc)
                    break
                if payload is None:
                    in_flight.release()
                    break
                try:
                    message = iso.decode(payload)
                except iso.MessageError as exc:
                    in_flight.release()
                    refusal = iso.format_error_answer(exc)
                    if refusal is None:
                        logger.warning("issuer: %s sent a message nobody can be answered for (%s): closed", peer,
                                       exc)
                        break
                    logger.info("issuer: %s: format error %s, answered 30", peer, exc)
                    await send(refusal)
                    continue
                if message.MTI not in iso.REQUESTS:
                    in_flight.release()
                    logger.warning("issuer: %s sent a %s, which is not a request: closed", peer, message.MTI)
                    break
                task = asyncio.create_task(work(message))
                pending.add(task)
                task.add_done_callback(pending.discard)
        except (ConnectionError, OSError):
            pass
        finally:
            if pending:  # requests already read are answered (and their work is never cut half-way)
                await asyncio.gather(*pending, return_exceptions=True)
            self.connections -= 1
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


async def serve(*, host: str, port: int, ready=None, **options) -> None:
    """Run the host until cancelled; ``ready(host)`` is called once it listens."""
    issuer = IssuerHost(host=host, port=port, **options)
    await issuer.start()
    if ready is not None:
        ready(issuer)
    try:
        await issuer.serve_forever()
    finally:
        await issuer.close()
