"""The card rails in the simulation: the gateway's ISO 8583 client, the switch and the issuer host, each message
encoded, carried through the seeded network and decoded, with no socket and no thread.

- **The gateway's side** is ``tasdid.gateway.rails`` itself: ``SwitchAcquirer`` builds the messages (0100, 0220,
  0400, 0200/20), ``send_reversal`` and ``sweep_reversals`` keep the ``PendingReversal`` rows; only the connection
  is the simulation's (``SimConnection`` in place of ``RailsConnection``: the same ``exchange``, ``up``,
  ``wait_up`` and ``config``), so NotSent and NoAnswer mean what they mean over TCP.
- **The switch** is ``tasdid.switch.server.Switch``: each request goes through its own ``_handle`` (duplicate
  detection, BIN routing, DE90 rewriting, 91 and its own reversals, the journal), run to completion on an event
  loop of the simulation's. What is not the switch's logic is replaced: its database calls run inline (one short
  transaction each, as in its threads), its issuer link (``SimIssuerLink``) carries the forwarded message through
  the network to the issuer host, its journal is written at the end of each message (``SimJournal``: the real
  one writes a batch a moment later) and its clock is the simulation's. Its reversal loop (``_send_reversal``)
  is a step the scheduler takes.
- **The issuer host** is ``tasdid.bank.issuer.answer``: the decoded message, the bank's services, the answer.

Faults, drawn from the run's seed, on each of the four legs (gateway → switch, switch → issuer and back): a
message lost, late (after its sender gave up: it arrives at a later step, and what its answer says goes to
nobody), duplicated (a copy arrives later), answers reordered (a late answer comes after newer ones); a
connection refused; the switch or the issuer host crashing between request and answer. A crash loses what the
process held in memory (the switch's in-flight map, its recent requests, the journal rows not yet written: each
written or lost, as the batch happened to be) and keeps what it had committed. Requests on one connection keep
their order, as TCP does: a late request arrives before anything sent after it on the same connection, unless
the receiver restarted meanwhile (then it is lost).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import types
from collections import Counter
from typing import TYPE_CHECKING

from tasdid.bank import issuer
from tasdid.core import iso8583 as iso
from tasdid.gateway import rails as gateway_rails
from tasdid.switch import selectors as switch_selectors
from tasdid.switch import server as switch_server
from tasdid.switch import services as switch_services

if TYPE_CHECKING:
    from .network import Network

ACQUIRER_HOST = "10.0.0.2"  # the gateway's machine, as the switch sees it (its duplicate key names the host)
ISSUER_ADDRESS = ("10.0.0.4", 8584)


class SimJournal:
    """The switch's journal: rows queued while a message is handled, written when it is done (``flush``)."""

    def __init__(self):
        self.queue: list[dict] = []
        self.written = 0

    def record(self, entry: dict) -> None:
        self.queue.append(entry)

    def flush(self) -> None:
        entries, self.queue = self.queue, []
        if entries:
            self.written += switch_services.journal_append(entries=entries)


class SimIssuerLink(switch_server.IssuerLink):
    """The switch's link to the issuer host, over the simulated network; its STANs are the real link's."""

    def start(self) -> None:  # no connection task: the network is the simulation's
        self.up.set()

    async def exchange(self, build, *, timeout: float, require_up: bool = True, related: iso.Message | None = None,
                       bank_name: str = "") -> tuple[iso.Message, iso.Message]:
        rails: IsoRails = self.switch.rails
        if rails.net.is_down("issuer"):
            raise switch_server.LinkDown(f"{self.name}: link down")
        message = build(self._next_stan(), switch_server._now())
        rails.net.maybe_crash("before forwarding to the issuer host")
        self.switch.journal.record(switch_server.journal_fields(message, direction="iss_out", peer=self.name,
                                                                bank_name=bank_name, related=related))
        if message.MTI in switch_server.REVERSIBLE:  # as the real link: on disk before it leaves (group commit)
            self.switch.journal.flush()
        answer = rails.to_issuer(message)
        if answer is None:
            error = switch_server.NoAnswer(f"{self.name}: no answer in time")
            error.sent = message
            raise error
        self.switch.journal.record(switch_server.journal_fields(answer, direction="iss_in", peer=self.name,
                                                                bank_name=bank_name, related=related, latency=0))
        rails.net.maybe_crash("between the issuer's answer and the answer to the acquirer")
        return message, answer


class SimSwitch(switch_server.Switch):
    """``Switch`` with its database calls inline, its issuer links simulated and its journal written per message."""

    def __init__(self, rails: IsoRails):
        super().__init__(switch_server.SwitchConfig(default_issuer=ISSUER_ADDRESS))
        self.rails = rails
        self.journal = SimJournal()

    async def db(self, function, /, **kwargs):
        return function(**kwargs)

    def link(self, address):
        link = self.links.get(address)
        if link is None:
            link = self.links[address] = SimIssuerLink(self, address)
            link.start()
        return link


@dataclasses.dataclass
class _Peer:
    """One gateway process's connection to the switch."""

    process: str
    port: int

    @property
    def address(self) -> str:
        return f"{ACQUIRER_HOST}:{self.port}"


class SimConnection:
    """What ``tasdid.gateway.rails`` uses of its ``RailsConnection``, over the simulated network."""

    config = gateway_rails.RailsConfig(timeout=10.0, connect_wait=5.0)

    def __init__(self, rails: IsoRails):
        self.rails = rails

    @property
    def up(self) -> bool:
        return not self.rails.net.is_down("switch")

    def wait_up(self, timeout: float) -> bool:
        return self.up

    def exchange(self, message: iso.Message, *, timeout: float | None = None) -> iso.Message:
        return self.rails.acquirer_exchange(message)

    def close(self) -> None:
        pass


class IsoRails:
    def __init__(self, net: Network):
        self.net = net
        self.loop = asyncio.new_event_loop()
        self.switch: SimSwitch | None = None
        self.incarnation: Counter[str] = Counter()  # restarts of the switch and the issuer host
        self.peers: dict[str, _Peer] = {}
        self.connection = SimConnection(self)
        self.figures: Counter[str] = Counter()
        # Faults placed by a scripted test: "refuse 0400", "late 0100"... each taken once per count.
        self.forced: Counter[str] = Counter()

    def _fault(self, kind: str, message: iso.Message, p: float) -> bool:
        if self.forced[f"{kind} {message.MTI}"] > 0:
            self.forced[f"{kind} {message.MTI}"] -= 1
            return True
        return self.net.chance(p)

    def close(self) -> None:
        self.loop.close()

    def run(self, coroutine):
        """``coroutine`` to completion on the simulation's loop, in this thread. A loop that already runs here
        (Playwright's sync driver, when a browser test ran before in this process) is set aside meanwhile."""
        outer = asyncio._get_running_loop()
        asyncio._set_running_loop(None)
        try:
            return self.loop.run_until_complete(coroutine)
        finally:
            asyncio._set_running_loop(outer)

    # --- processes ------------------------------------------------------------------------------------------

    def the_switch(self) -> SimSwitch:
        """The switch process's memory: a fresh one after each restart (routes read again from its table)."""
        if self.switch is None:
            self.switch = SimSwitch(self)
            self.run(self.switch.load_routes())
        return self.switch

    def went_down(self, process: str) -> None:
        """``process`` died or was killed: its connections drop, what it held in memory is lost."""
        if process not in ("switch", "issuer"):
            return
        self.incarnation[process] += 1
        self.figures[f"{process} down"] += 1
        if process == "switch" and self.switch is not None:
            if self.switch.journal.queue:  # the journal's last batch: written just before the death, or not
                if self.net.rng.random() < self.net.faults.journal_survives:
                    self.switch.journal.flush()
                    self.net.log("    the switch's last journal batch was written before it died")
                else:
                    self.net.log(f"    the switch's last {len(self.switch.journal.queue)} journal rows are lost")
            self.switch = None

    def _peer(self) -> _Peer:
        process = self.net.process
        peer = self.peers.get(process)
        if peer is None:
            peer = self.peers[process] = _Peer(process, 40000 + len(self.peers))
        return peer

    # --- ordered links --------------------------------------------------------------------------------------

    def _later(self, link: str, what: str, deliver) -> None:
        from .network import Delayed

        self.net.in_flight.append(Delayed(what, deliver, link=link))

    def flush_link(self, link: str) -> None:
        """What is still on its way on ``link`` arrives now, in order: nothing overtakes it on a connection."""
        while True:
            waiting = [m for m in self.net.in_flight if m.link == link]
            if not waiting:
                return
            self.net.in_flight.remove(waiting[0])
            self.net.log(f"  arrives first (same connection): {waiting[0].description}")
            waiting[0].deliver()

    # --- gateway → switch -----------------------------------------------------------------------------------

    def acquirer_exchange(self, message: iso.Message) -> iso.Message:
        """The gateway process running now sends ``message`` on its connection and waits for the answer."""
        net, peer = self.net, self._peer()
        link = f"{peer.process} → switch"
        what = f"{link} {message.MTI} STAN {message.stan}"
        self.figures[f"gateway {message.MTI}"] += 1
        if net.is_down("switch") or self._fault("refuse", message, net.faults.iso_refuse):
            net.log(f"  {what}: no connection to the switch (not sent)")
            self.figures["not sent"] += 1
            raise gateway_rails.NotSent("no connection to the switch")
        self.flush_link(link)
        frame = iso.encode_frame(message)
        if net.chance(net.faults.iso_lose_request):
            net.log(f"  {what}: lost on the way (no answer in time)")
            self.figures["lost"] += 1
            raise gateway_rails.NoAnswer("no answer within 10 s")
        incarnation = self.incarnation["switch"]
        if self._fault("late", message, net.faults.iso_delay):
            net.log(f"  {what}: late (no answer in time; it arrives later)")
            self.figures["late"] += 1
            self._later(link, what, functools.partial(self._late_to_switch, frame, peer, incarnation))
            raise gateway_rails.NoAnswer("no answer within 10 s")
        answer = self._switch_answers(frame, peer)
        if answer is None:
            raise gateway_rails.NoAnswer("connection lost before the answer")
        if net.chance(net.faults.iso_duplicate):
            net.log(f"  {what}: duplicated (a copy arrives later)")
            self.figures["duplicated"] += 1
            self._later(link, what + " (copy)", functools.partial(self._late_to_switch, frame, peer, incarnation))
        answer_frame = iso.encode_frame(answer)
        if net.chance(net.faults.iso_lose_answer):
            net.log(f"  {what}: answered {answer.MTI} {answer.response_code}, the answer is lost")
            self.figures["answer lost"] += 1
            raise gateway_rails.NoAnswer("no answer within 10 s")
        if net.chance(net.faults.iso_delay):
            net.log(f"  {what}: answered {answer.MTI} {answer.response_code}, the answer comes late (ignored)")
            self.figures["answer late"] += 1
            self._later(f"switch → {peer.process}", f"{what}: its answer",
                        functools.partial(self._late_answer_to_gateway, answer_frame))
            raise gateway_rails.NoAnswer("no answer within 10 s")
        received = iso.decode_frame(answer_frame)
        assert iso.match_key(received) == iso.match_key(message), (message.MTI, received.MTI)
        net.log(f"  {what} → {received.MTI} {received.response_code}")
        return received

    def _switch_answers(self, frame: bytes, peer: _Peer) -> iso.Message | None:
        """The switch reads ``frame`` from ``peer`` and handles it (``Switch._handle``); its answer, or None if it
        died meanwhile or answered nothing."""
        net = self.net
        switch = self.the_switch()
        request = iso.decode_frame(frame)
        answers: list[iso.Message] = []

        async def send(message: iso.Message, *, request: iso.Message | None, started: float | None,
                       note: str = "", bank_name: str = "", forward=None) -> None:
            # As the switch's own answer path: journaled (with the issuer leg's STAN and DE7), then written.
            related = None
            if forward is not None:
                related = dataclasses.replace(message, stan=forward.stan, transmitted_at=forward.transmitted_at)
            switch.journal.record(switch_server.journal_fields(
                message, direction="acq_out", peer=peer.address, bank_name=bank_name, related=related, note=note,
                request=request, latency=0))
            answers.append(message)

        try:
            net.run_as("switch", lambda: self.run(switch._handle(
                request, peer=peer.address, host=ACQUIRER_HOST, send=send, started=0.0)))
        except BaseException as crash:
            from .network import SimCrash

            if not isinstance(crash, SimCrash) or crash.process != "switch":
                raise
            net.log(f"  !! {crash}")
            self.figures["switch crashed"] += 1
            net.take_down("switch", steps=net.rng.randint(1, 6), why="crashed")
            return None
        switch.journal.flush()
        return answers[-1] if answers else None

    def _late_to_switch(self, frame: bytes, peer: _Peer, incarnation: int) -> None:
        if self.net.is_down("switch") or self.incarnation["switch"] != incarnation:
            self.net.log("  … the switch restarted meanwhile: the connection and the message are lost")
            return
        answer = self._switch_answers(frame, peer)
        if answer is not None:
            self.net.log(f"  … answered {answer.MTI} {answer.response_code} to nobody (the gateway ignores a late "
                         "answer)")

    def _late_answer_to_gateway(self, frame: bytes) -> None:
        answer = iso.decode_frame(frame)
        self.net.log(f"  … {answer.MTI} STAN {answer.stan} {answer.response_code} reaches the gateway, which "
                     "had given up: ignored")

    # --- switch → issuer host -------------------------------------------------------------------------------

    def to_issuer(self, message: iso.Message) -> iso.Message | None:
        """The switch's forwarded message to the issuer host and back; None when no answer comes in time."""
        net, link = self.net, "switch → issuer"
        what = f"{link} {message.MTI} STAN {message.stan}"
        self.figures[f"issuer {message.MTI}"] += 1
        self.flush_link(link)
        frame = iso.encode_frame(message)
        if net.chance(net.faults.iso_lose_request):
            net.log(f"  {what}: lost on the way (no answer in time)")
            self.figures["lost"] += 1
            return None
        incarnation = self.incarnation["issuer"]
        switch_incarnation = self.incarnation["switch"]
        if net.chance(net.faults.iso_delay):
            net.log(f"  {what}: late (no answer in time; it arrives later)")
            self.figures["late"] += 1
            self._later(link, what, functools.partial(self._late_to_issuer, frame, incarnation, switch_incarnation))
            return None
        answer = self._issuer_answers(frame)
        if answer is None:
            return None
        if net.chance(net.faults.iso_duplicate):
            net.log(f"  {what}: duplicated (a copy arrives later)")
            self.figures["duplicated"] += 1
            self._later(link, what + " (copy)",
                        functools.partial(self._late_to_issuer, frame, incarnation, switch_incarnation))
        answer_frame = iso.encode_frame(answer)
        if net.chance(net.faults.iso_lose_answer):
            net.log(f"  {what}: answered {answer.MTI} {answer.response_code}, the answer is lost")
            self.figures["answer lost"] += 1
            return None
        if net.chance(net.faults.iso_delay):
            net.log(f"  {what}: answered {answer.MTI} {answer.response_code}, the answer comes late")
            self.figures["answer late"] += 1
            self._later("issuer → switch", f"{what}: its answer",
                        functools.partial(self._late_answer_to_switch, answer_frame, switch_incarnation))
            return None
        received = iso.decode_frame(answer_frame)
        assert iso.match_key(received) == iso.match_key(message), (message.MTI, received.MTI)
        net.log(f"  {what} → {received.MTI} {received.response_code}")
        return received

    def _issuer_answers(self, frame: bytes) -> iso.Message | None:
        from .network import SimCrash

        net = self.net
        if net.is_down("issuer"):
            net.log("  the issuer host is down: the message is lost")
            return None
        request = iso.decode_frame(frame)
        try:
            return net.run_as("issuer", lambda: issuer.answer(request))
        except SimCrash as crash:
            if crash.process != "issuer":
                raise
            net.log(f"  !! {crash}")
            self.figures["issuer crashed"] += 1
            net.take_down("issuer", steps=net.rng.randint(1, 6), why="crashed")
            return None

    def _late_to_issuer(self, frame: bytes, incarnation: int, switch_incarnation: int) -> None:
        if self.net.is_down("issuer") or self.incarnation["issuer"] != incarnation:
            self.net.log("  … the issuer host restarted meanwhile: the connection and the message are lost")
            return
        answer = self._issuer_answers(frame)
        if answer is not None:
            self.net.log(f"  … the issuer answered {answer.MTI} {answer.response_code} late")
            self._late_answer_to_switch(iso.encode_frame(answer), switch_incarnation)

    def _late_answer_to_switch(self, frame: bytes, switch_incarnation: int) -> None:
        if self.net.is_down("switch") or self.incarnation["switch"] != switch_incarnation:
            self.net.log("  … the switch restarted meanwhile: the late answer is lost")
            return
        answer = iso.decode_frame(frame)
        switch = self.the_switch()
        # As the issuer link's reader does with an answer nobody waits for: journaled, ignored.
        switch.journal.record(switch_server.journal_fields(answer, direction="iss_in", peer="issuer",
                                                           note="réponse tardive ou inconnue, ignorée"))
        switch.journal.flush()
        self.net.log(f"  … {answer.MTI} STAN {answer.stan} {answer.response_code} reaches the switch late: "
                     "journaled, ignored")

    # --- the processes' own loops ---------------------------------------------------------------------------

    def switch_reversals(self) -> dict[str, int]:
        """One pass of the switch's reversal loop: every reversal it owes whose next try has come."""
        from .network import SimCrash

        if self.net.is_down("switch"):
            return {}
        switch = self.the_switch()
        counts: Counter[str] = Counter()
        for reversal in switch_selectors.reversals_due(now=dt.datetime.now(dt.UTC)):
            try:
                self.net.run_as("switch", lambda r=reversal: self.run(switch._send_reversal(r)))
            except SimCrash as crash:
                if crash.process != "switch":
                    raise
                self.net.log(f"  !! {crash}")
                self.net.take_down("switch", steps=self.net.rng.randint(1, 6), why="crashed")
                counts["switch crashed"] += 1
                break
            counts["sent"] += 1
            switch.journal.flush()
        return dict(counts)

    def gateway_reversals(self) -> dict[str, int]:
        """The gateway's sweep of the reversals it owes (``tasdid.gateway.rails.sweep_reversals``)."""
        return gateway_rails.sweep_reversals(rails=self.connection)


def install(monkeypatch, rails: IsoRails) -> None:
    """The gateway's connection is the simulation's; the switch's clock and its database are the run's."""
    monkeypatch.setattr(gateway_rails, "connection", lambda: rails.connection)
    # The switch's duplicate window and latencies count in the simulation's time (time-machine moves time.time,
    # not the monotonic clock).
    monkeypatch.setattr(switch_server, "time", types.SimpleNamespace(monotonic=__import__("time").time))
    # The issuer host closes its thread's database connection after each message; here every party shares one.
    monkeypatch.setattr(issuer, "connections", types.SimpleNamespace(close_all=lambda: None))
    # The switch's coroutines call the database inline (its threads, in production): allowed in this process.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
