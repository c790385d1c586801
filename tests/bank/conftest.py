"""Fixtures of the bank's tests: the sandbox banks and cards, signed AReq messages, and a stand-in 3DS Server.

The stand-in 3DS Server is a tiny HTTP server on loopback playing the gateway's side of the contract in
docs/architecture.md (RReq → signed RRes, the browser's CRes at notificationURL, a page that posts the CReq);
the gateway's real endpoints are tested with the gateway.
"""

import datetime as dt
import html
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from django.db import connection

from tasdid.bank import sandbox
from tasdid.core import threeds

LINK = threeds.LINK_DIRECTORY_ACS  # these tests stand in for the directory


@pytest.fixture
def banks(db):
    from tasdid.bank.demo import seed_demo

    seed_demo()
    return sandbox


def areq_message(card: sandbox.SandboxCard, *, server_url: str, amount_minor: int = 28500,
                 trans_id: str | None = None, merchant: str = "Tasdid Télécom", **overrides) -> dict:
    month, year = card.expiry.split("/")
    message = {
        "messageType": "AReq",
        "messageVersion": "2.2.0",
        "threeDSServerTransID": trans_id or str(uuid.uuid4()),
        "acctNumber": card.number,
        "cardExpiryDate": year + month,
        "purchaseAmount": str(amount_minor),
        "purchaseCurrency": "504",
        "purchaseExponent": "2",
        "purchaseDate": dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S"),
        "merchantName": merchant,
        "acquirerMerchantID": "600000001",
        "threeDSServerURL": server_url + "/3ds/rreq",
        "notificationURL": server_url + "/3ds/notification",
        "deviceChannel": "02",
        "messageCategory": "01",
        "dsTransID": str(uuid.uuid4()),  # the directory names each AReq it sends to the ACS
    }
    message.update(overrides)
    return message


class FakeThreeDSServer:
    """Records the RReqs and CRes it receives; ``mode`` decides how it answers an RReq."""

    def __init__(self):
        self.rreqs: list[dict] = []
        self.cres: list[dict] = []
        self.session_data: list[str] = []
        self.mode = "ok"  # ok | http500 | unsigned | refuse
        self.start_pages: dict[str, tuple[str, str, str]] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                key = self.path.rsplit("/", 1)[-1]
                if not self.path.startswith("/start/") or key not in fake.start_pages:
                    self._send(404, b"not found", "text/plain")
                    return
                action, creq, session_data = fake.start_pages[key]
                page = (
                    "<!doctype html><html><head><meta charset='utf-8'><title>Site de paiement</title></head><body>"
                    f"<form method='post' action='{html.escape(action)}'>"
                    f"<input type='hidden' name='creq' value='{html.escape(creq)}'>"
                    f"<input type='hidden' name='threeDSSessionData' value='{html.escape(session_data)}'>"
                    "<button type='submit'>Continuer</button></form></body></html>"
                )
                self._send(200, page.encode(), "text/html; charset=utf-8")

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/3ds/rreq":
                    self._rreq(body)
                elif self.path == "/3ds/notification":
                    fields = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                    cres = threeds.decode_browser_message(fields.get("cres", ""), message_type="CRes")
                    fake.cres.append(cres)
                    fake.session_data.append(fields.get("threeDSSessionData", ""))
                    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>Retour</title></head><body>"
                            f"<h1>Retour sur le site de paiement</h1><p id='status'>transStatus={cres['transStatus']}"
                            "</p></body></html>")
                    self._send(200, page.encode(), "text/html; charset=utf-8")
                else:
                    self._send(404, b"not found", "text/plain")

            def _rreq(self, body: bytes):
                if fake.mode == "http500":
                    self._send(500, b"boom", "text/plain")
                    return
                try:
                    rreq = threeds.verify_body(body, self.headers.get(threeds.SIGNATURE_HEADER),
                                               message_type="RReq", link=LINK)
                except threeds.MessageError:
                    self._send(400, b"bad rreq", "text/plain")
                    return
                fake.rreqs.append(rreq)
                rres = {"messageType": "RRes", "messageVersion": rreq["messageVersion"],
                        "threeDSServerTransID": rreq["threeDSServerTransID"], "acsTransID": rreq["acsTransID"],
                        "dsTransID": rreq["dsTransID"], "resultsStatus": "01"}
                payload, signature = threeds.sign_body(rres, link=LINK)
                if fake.mode == "unsigned":
                    signature = "not-a-signature"
                self._send(200, payload, "application/json", {threeds.SIGNATURE_HEADER: signature})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add_start_page(self, *, acs_url: str, creq: str, session_data: str) -> str:
        key = uuid.uuid4().hex
        self.start_pages[key] = (acs_url, creq, session_data)
        return f"{self.url}/start/{key}"


@pytest.fixture
def three_ds_server():
    fake = FakeThreeDSServer()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def post_areq(bank_url: str, message: dict):
    import httpx

    body, signature = threeds.sign_body(message, link=LINK)
    return httpx.post(bank_url + "/acs/areq", content=body, timeout=10,
                      headers={"Content-Type": "application/json", threeds.SIGNATURE_HEADER: signature})


def creq_for(ares: dict) -> str:
    return threeds.encode_browser_message({
        "messageType": "CReq", "messageVersion": ares["messageVersion"],
        "threeDSServerTransID": ares["threeDSServerTransID"], "acsTransID": ares["acsTransID"],
        "challengeWindowSize": "05",
    })


def verified(response) -> dict:
    """The JSON of a signed ARes/Erro after checking its signature."""
    payload = json.loads(response.content)
    return threeds.verify_body(response.content, response.headers.get(threeds.SIGNATURE_HEADER),
                               message_type=payload.get("messageType", ""), link=LINK)


def bank_rows() -> list[tuple[str, tuple]]:
    """Every row of every bank table, with its table's name."""
    rows = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            if table.startswith("bank_"):
                cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 - our table names
                rows += [(table, row) for row in cursor.fetchall()]
    return rows
