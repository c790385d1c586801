"""A stand-in for the gateway's order status query on 127.0.0.1 (real HTTP, real ver3 signing), scripted per order:
``POST /fim/status`` with ``action=status`` or ``redeliver``, as the gateway's contract has it.

The script says what the gateway knows of each order: its status, the signed callback fields of its authorized
attempt, and the amount captured. On ``redeliver`` while the merchant's answer is missing (AUTHORIZED, UNRESOLVED)
it really sends the callback to its ``callbackUrl`` (the biller's live server) and moves as the gateway would:
POSTAUTH → CAPTURED, FAILURE → VOIDED, anything else → unchanged. A ``tamper`` hook may spoil the answer after
signing, for the tests of what the biller refuses.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode

import httpx
from django.conf import settings

from tasdid.core.signing import ver3_hash, ver3_verify


@dataclass
class FakeOrder:
    status: str
    callback: dict[str, str] | None = None  # the callback the gateway would send (signed, HASH included)
    captured_amount: str = "0.00"
    deliver: bool = True  # False: a redelivered callback goes nowhere (the merchant's answer stays missing)


@dataclass
class FakeGateway:
    url: str = ""
    orders: dict[str, FakeOrder] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)  # every query, as received
    redeliveries: list[tuple[str, str]] = field(default_factory=list)  # (oid, the biller's answer)
    tamper: Callable[[dict[str, str]], dict[str, str]] | None = None
    refuse_with: int | None = None  # answer every query with this HTTP status
    store_key: str = ""  # the biller's, as the gateway has it (settings.BILLER_STORE_KEY at start)

    def actions(self) -> list[tuple[str, str]]:
        return [(r["oid"], r["action"]) for r in self.requests]

    def answer(self, query: dict[str, str]) -> tuple[int, str]:
        self.requests.append(query)
        store_key = self.store_key
        if (self.refuse_with or query.get("clientid") != settings.BILLER_CLIENT_ID
                or not ver3_verify(query, store_key, hash_field="HASH") or len(query.get("rnd", "")) < 20
                or query.get("action") not in {"status", "redeliver"}):
            return self.refuse_with or 403, "Requête refusée."
        oid = query["oid"]
        order = self.orders.get(oid)
        if order is None:
            fields = {"clientid": query["clientid"], "oid": oid, "OrderStatus": "UNKNOWN", "capturedAmount": "0.00"}
        else:
            if query["action"] == "redeliver" and order.status in {"AUTHORIZED", "UNRESOLVED"} and order.deliver:
                self._redeliver(oid, order)
            fields = {k: v for k, v in (order.callback or {}).items() if k.lower() != "hash"}
            fields.update({"clientid": query["clientid"], "oid": oid, "OrderStatus": order.status,
                           "capturedAmount": order.captured_amount})
        fields["rnd"] = query["rnd"]
        fields["HASH"] = ver3_hash(fields, store_key)
        if self.tamper:
            fields = self.tamper(fields)
        return 200, urlencode(fields)

    def _redeliver(self, oid: str, order: FakeOrder) -> None:
        assert order.callback is not None
        response = httpx.post(order.callback["callbackUrl"], data=order.callback, timeout=30)
        text = response.text.upper()
        self.redeliveries.append((oid, response.text))
        if "FAILURE" in text:
            order.status = "VOIDED"
        elif "ACTION=POSTAUTH" in text:
            order.status, order.captured_amount = "CAPTURED", order.callback["paidAmount"]


def start_fake_gateway() -> tuple[FakeGateway, ThreadingHTTPServer]:
    gateway = FakeGateway(store_key=settings.BILLER_STORE_KEY)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
            if self.path != "/fim/status":
                status, text, kind = 404, "Introuvable.", "text/plain; charset=utf-8"
            else:
                status, text = gateway.answer(dict(parse_qsl(body, keep_blank_values=True)))
                kind = "application/x-www-form-urlencoded" if status == 200 else "text/plain; charset=utf-8"
            payload = text.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format, *args):  # quiet: the test reads gateway.requests
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    gateway.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return gateway, server
