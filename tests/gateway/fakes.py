"""Local stand-ins for the gateway's counterparties, for the gateway's own tests: an acquirer (the card rails)
and one small HTTP server on 127.0.0.1 playing the 3-D Secure directory and the merchant's callback."""

import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

from django.db import transaction

from tasdid.core import threeds
from tasdid.core.acquiring import (
    AcquirerUnavailable,
    AuthorizationRequest,
    AuthorizationResult,
    SettlementRequest,
    SettlementResult,
)

LINK = threeds.LINK_SERVER_DIRECTORY  # these tests stand in for the directory


@dataclass
class Rails:
    """What the fake acquirer answers and what it was asked. Answers are callables or values; a list of
    values is consumed one per call (its last value repeats)."""

    authorize_answer: object = field(default_factory=lambda: AuthorizationResult("00", "A1B2C3", "123456789012"))
    capture_answers: list = field(default_factory=lambda: [SettlementResult("00")])
    void_answers: list = field(default_factory=lambda: [SettlementResult("00")])
    authorize_delay: float = 0.0
    authorizations: list[AuthorizationRequest] = field(default_factory=list)
    captures: list[SettlementRequest] = field(default_factory=list)
    voids: list[SettlementRequest] = field(default_factory=list)
    in_transaction: list[bool] = field(default_factory=list)  # was a DB transaction open at each call?
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _answer(self, answers: list):
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


RAILS = Rails()


class FakeAcquirer:
    """Loaded by the gateway from settings.GATEWAY_ACQUIRER, one instance per use, like the real ones."""

    def _record(self, bucket: list, request) -> None:
        with RAILS.lock:
            bucket.append(request)
            RAILS.in_transaction.append(transaction.get_connection().in_atomic_block)

    def authorize(self, request: AuthorizationRequest) -> AuthorizationResult:
        self._record(RAILS.authorizations, request)
        if RAILS.authorize_delay:
            time.sleep(RAILS.authorize_delay)
        answer = RAILS.authorize_answer
        if isinstance(answer, Exception):
            raise answer
        return answer

    def capture(self, request: SettlementRequest) -> SettlementResult:
        self._record(RAILS.captures, request)
        return RAILS._answer(RAILS.capture_answers)

    def void(self, request: SettlementRequest) -> SettlementResult:
        self._record(RAILS.voids, request)
        return RAILS._answer(RAILS.void_answers)


UNAVAILABLE = AcquirerUnavailable("no answer in time")


# --- the directory and the merchant --------------------------------------------------------------------


@dataclass
class Counterparty:
    """State of the fake HTTP server: the ARes by card number, the merchant's answer, what arrived."""

    # card number -> "Y" | "A" | "C" | "U" | "N" | "R" | "500" (HTTP error) | "badsig" | "timeout"
    ares_by_pan: dict[str, str] = field(default_factory=dict)
    default_ares: str = "U"
    callback_answer: str = "ACTION=POSTAUTH"  # or "timeout", "500", "404", "drop" (connection closed unanswered)
    callback_script: list[str] = field(default_factory=list)  # answers for the next callbacks, then callback_answer
    areqs: list[dict] = field(default_factory=list)
    ares: list[dict] = field(default_factory=list)
    callbacks: list[dict[str, str]] = field(default_factory=list)
    returns: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # the browser's (path, fields)
    acs_url: str = "http://127.0.0.1:9/acs/challenge"


def ares_for(areq: dict, status: str, acs_url: str) -> dict:
    ares = {"messageType": "ARes", "messageVersion": threeds.MESSAGE_VERSION,
            "threeDSServerTransID": areq["threeDSServerTransID"], "dsTransID": str(uuid.uuid4()),
            "acsTransID": str(uuid.uuid4()), "transStatus": status}
    if status == "C":
        ares["acsURL"] = acs_url
    if status in ("Y", "A"):
        brand_eci = "02" if areq["acctNumber"].startswith("5") else "05"
        ares.update(eci=brand_eci if status == "Y" else "06", authenticationValue="AAABBEg0VhI0VniQEjRWAAAAAAA=")
    if status == "U":
        ares["transStatusReason"] = "13"
    if status == "R":
        ares["transStatusReason"] = "04"
    return ares


class _Handler(BaseHTTPRequestHandler):
    server: "CounterpartyServer"

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        state = self.server.state
        if self.path == "/3ds/areq":
            areq = threeds.verify_body(body, self.headers.get(threeds.SIGNATURE_HEADER), message_type="AReq", link=LINK)
            state.areqs.append(areq)
            status = state.ares_by_pan.get(areq["acctNumber"], state.default_ares)
            if status == "500":
                return self._send(500, b"oops")
            if status == "timeout":
                time.sleep(self.server.slow_seconds)
                return self._send(500, b"late")
            ares = ares_for(areq, status, state.acs_url)
            state.ares.append(ares)
            payload, signature = threeds.sign_body(ares, link=LINK)
            if status == "badsig":
                ares["transStatus"] = "Y"
                payload, signature = threeds.sign_body(ares, link=LINK)
                signature = "forged" + signature[6:]
            return self._send(200, payload, {"Content-Type": "application/json",
                                             threeds.SIGNATURE_HEADER: signature})
        if self.path.startswith("/shop/callback"):
            fields = dict(parse_qsl(body.decode(), keep_blank_values=True))
            state.callbacks.append(fields)
            answer = state.callback_script.pop(0) if state.callback_script else state.callback_answer
            if answer == "timeout":
                time.sleep(self.server.slow_seconds)
            if answer == "500":
                return self._send(500, b"ACTION=POSTAUTH")
            if answer == "404":
                return self._send(404, b"not here")
            if answer == "drop":  # the merchant got it all, then the connection closed without an answer
                self.close_connection = True
                return None
            return self._send(200, answer.encode(), {"Content-Type": "text/plain"})
        if self.path in ("/shop/ok", "/shop/fail"):
            fields = dict(parse_qsl(body.decode(), keep_blank_values=True))
            state.returns.append((self.path, fields))
            page = (f'<!doctype html><title>Boutique</title><h1 id="back">{self.path}</h1>'
                    f'<p id="code">{fields.get("ProcReturnCode", "")}</p>')
            return self._send(200, page.encode(), {"Content-Type": "text/html; charset=utf-8"})
        return self._send(404, b"not here")


class CounterpartyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = Counterparty()
        self.slow_seconds = 2.0
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"
