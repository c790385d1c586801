"""An SMS centre for tests: the smpp34 library's SMPP 3.4 server (not our code) on 127.0.0.1, in a thread of its
own, behind a plain TCP relay that can cut the connection (the network failing between us and it).

It accepts every submit_sm with ids "smsc-1", "smsc-2" … and, when ``receipts`` is on, sends a delivery receipt
(DELIVRD) for each right after; ``policy`` can refuse or hold a submit_sm instead; ``send_mo`` delivers an SMS
from a phone; ``cut`` drops every connection at once."""

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import smpp34

from tests.support.ports import free_port


@dataclass
class Submitted:
    source_addr: str
    source_addr_ton: int
    destination_addr: str
    dest_addr_ton: int
    data_coding: int
    short_message: bytes
    registered_delivery: int
    tlvs: list = field(default_factory=list)
    smsc_id: str = ""  # "" when refused or held

    @property
    def text(self) -> str:
        payload = self.short_message or next((t.value for t in self.tlvs if t.tag == smpp34.TLV_MESSAGE_PAYLOAD),
                                             b"")
        if self.data_coding == 8:
            return payload.decode("utf-16-be")
        return payload.decode("latin-1")


# policy(submitted, n) -> "accept" | ("reject", status) | "hold"   (n: 1 for the first submit_sm received, …)
Policy = Callable[[Submitted, int], object]


class Smsc:
    def __init__(self, *, receipts: bool = True, policy: Policy | None = None, system_id: str = "SIMSMSC"):
        self.receipts = receipts
        self.policy = policy
        self.system_id = system_id
        self.port = free_port()  # where the channel connects (the relay)
        self._server_port = free_port()
        self.accepted: list[Submitted] = []
        self.received: list[Submitted] = []  # every submit_sm, accepted or not
        self.binds: list[tuple[str, str]] = []  # (system_id, password is not exposed: system_id only) per bind
        self.held: list[smpp34.SubmitSmEvent] = []
        self.receipts_refused = 0  # deliver_sm of a receipt answered with an error (then sent again)
        self._sessions: dict[str, smpp34.Esme] = {}
        self._links: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="smsc")

    # --- life --------------------------------------------------------------------------------------------

    def start(self) -> "Smsc":
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self._stop(), timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _call(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start(self) -> None:
        self._server = smpp34.Server(host="127.0.0.1", port=self._server_port, system_id=self.system_id)
        await self._server.start()
        self._relay = await asyncio.start_server(self._relay_connection, "127.0.0.1", self.port)
        self._events = asyncio.ensure_future(self._serve())

    async def _stop(self) -> None:
        self._events.cancel()
        self._relay.close()
        await self._cut()
        with contextlib.suppress(Exception):
            await self._server.stop()

    # --- the SMPP server ---------------------------------------------------------------------------------

    async def _serve(self) -> None:
        while True:
            event = await self._server.next()
            if isinstance(event, smpp34.Esme):
                self._sessions[event.session_id] = event
                with self._lock:
                    self.binds.append((event.system_id, event.session_id))
            elif isinstance(event, smpp34.SubmitSmEvent):
                await self._submit(event)
            elif isinstance(event, smpp34.Unbound):
                self._sessions.pop(event.session_id, None)

    async def _submit(self, event: smpp34.SubmitSmEvent) -> None:
        submitted = Submitted(event.source_addr, event.source_addr_ton, event.destination_addr, event.dest_addr_ton,
                              event.data_coding, event.short_message, event.registered_delivery, list(event.tlvs))
        with self._lock:
            self.received.append(submitted)
            n = len(self.received)
        decision = self.policy(submitted, n) if self.policy else "accept"
        if decision == "hold":
            self.held.append(event)  # never answered: the relay is cut meanwhile
            return
        if isinstance(decision, tuple):
            event.reject(decision[1])
            return
        with self._lock:
            submitted.smsc_id = f"smsc-{len(self.accepted) + 1}"
            self.accepted.append(submitted)
        event.accept(message_id=submitted.smsc_id)
        if self.receipts and submitted.registered_delivery & 0x01:
            await self.receipt(submitted.smsc_id, "DELIVRD", session_id=event.session_id, to=submitted)

    async def receipt(self, smsc_id: str, stat: str, *, session_id: str, to: Submitted) -> None:
        esme = self._sessions.get(session_id)
        if esme is None:
            return
        err = "000" if stat == "DELIVRD" else "001"
        text = (f"id:{smsc_id} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'} submit date:2612071200 "
                f"done date:2612071201 stat:{stat} err:{err} text:")
        # As an SMS centre does, a receipt the client refused (its inbound queue full) is delivered again later.
        for _ in range(50):
            try:
                resp = await esme.deliver_sm(to.source_addr, text.encode(), source_addr=to.destination_addr,
                                             esm_class=0x04)
            except Exception:  # the session is gone
                return
            if resp.is_success:
                return
            self.receipts_refused += 1
            await asyncio.sleep(0.2)

    def send_receipt(self, smsc_id: str, stat: str) -> None:
        """A receipt for an accepted message, later (to the session bound now)."""
        submitted = next(s for s in self.accepted if s.smsc_id == smsc_id)
        session_id = next(iter(self._sessions))
        self._call(self.receipt(smsc_id, stat, session_id=session_id, to=submitted))

    def send_mo(self, *, source: str, to: str, text: str, source_ton: int = 1) -> bool:
        """An SMS from a phone (``source`` international without "+") to a short number; True when acknowledged.
        ASCII text goes in the default alphabet, anything else (Arabic) in UCS-2 (data_coding 8), as a phone sends
        it."""
        ascii_only = text.isascii()
        payload, coding = (text.encode(), 0) if ascii_only else (text.encode("utf-16-be"), 8)

        async def deliver():
            esme = next(iter(self._sessions.values()))
            resp = await esme.deliver_sm(to, payload, source_addr=source, source_addr_ton=source_ton,
                                         source_addr_npi=1, data_coding=coding)
            return resp.is_success
        return self._call(deliver())

    # --- the network -------------------------------------------------------------------------------------

    async def _relay_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._server_port)
        self._links.append((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def _cut(self) -> None:
        links, self._links = self._links, []
        for down, up in links:
            down.transport.abort()
            up.transport.abort()
        for event in self.held:
            with contextlib.suppress(Exception):
                event.reject(smpp34.ESME_RSYSERR)  # to a closed session: nobody hears it
        self.held.clear()

    def cut(self) -> None:
        """Drop every connection at once, as a failing network does (the SMPP session is not unbound)."""
        self._call(self._cut())

    @property
    def connections(self) -> int:
        return len(self._links)

    @property
    def bound(self) -> int:
        return len(self._sessions)

    def texts(self) -> list[str]:
        with self._lock:
            return [s.text for s in self.accepted]

