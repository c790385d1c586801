"""A tiny shop taking card payments through a CMI-compatible gateway (CMI Morocco's hosted page, Nestpay
``3D_PAY_HOSTING``, hash ``ver3``), written the way the public CMI plugins (PHP kit, Laravel, WooCommerce, Node)
do it. Standard library only: copy it, change the settings, put your own database behind ``OrderBook``.

- ``GET /checkout?amount=250.00`` records an order and answers the payment form (auto-submitted) to
  ``<gateway>/fim/est3Dgate``: ``TranType=PreAuth``, the ver3 hash over the values of the fields sorted by PHP's
  ``natcasesort`` of their names (``hash`` and ``encoding`` left out, ``\\`` and ``|`` escaped, the store key
  last).
- ``POST /cmi/callback`` (server to server): the hash is checked over the values **in the order they were
  posted**, each HTML-decoded and trimmed, as CMI's kit does; then the order and its amount. Approved: the shop
  answers ``APPROVED``, keeping the authorization to capture it later (``PostAuth``, when the goods ship);
  declined: ``APPROVED`` too (acknowledged, nothing to capture); a wrong hash or an unknown order: ``FAILURE``.
- ``POST /cmi/ok`` and ``/cmi/fail``: the customer's browser comes back; the same check, then a page. The payment
  is recorded from the callback only.
- ``GET /orders/<oid>``: the shop's record of an order, as JSON (for the walkthrough and your checks).

``Shop.capture``, ``Shop.refund``, ``Shop.status`` and ``Shop.history`` call the merchant XML API (``cc5.py``)
and keep the answers in the order's record.

Run alone: ``python shop.py --gateway http://127.0.0.1:8001 --client-id 600000002 --store-key ... --port 8010``
then open http://127.0.0.1:8010/."""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import os
import re
import secrets
import threading
import time
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlsplit

from cc5 import Cc5Client, Cc5Response

MAX_FORM = 64 * 1024  # bytes of a posted form the shop reads at most


# --- The ver3 hash ------------------------------------------------------------------------------------------------

def natural_key(name: str):
    """PHP's natcasesort of the field names: case folded to upper case, runs of digits compared by value."""
    parts = re.split(r"([0-9]+)", name.upper())
    return [(0, int(p), p) if p.isascii() and p.isdigit() else (1, 0, p) for p in parts if p]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|")


def _digest(values: list[str], store_key: str) -> str:
    plain = "|".join([*(_escape(v) for v in values), _escape(store_key)])
    return base64.b64encode(hashlib.sha512(plain.encode("utf-8")).digest()).decode("ascii")


def request_hash(fields: dict[str, str], store_key: str) -> str:
    """The payment request's hash: the values sorted by their names' natural order."""
    names = sorted((n for n in fields if n.lower() not in ("hash", "encoding")), key=natural_key)
    return _digest([fields[n] for n in names], store_key)


def posted_hash(pairs: list[tuple[str, str]], store_key: str) -> str:
    """The callback's (and the return's) hash as CMI's kit checks it: every value in the order posted, HTML-decoded
    and trimmed, ``HASH`` and ``encoding`` left out."""
    return _digest([html.unescape(v).strip() for k, v in pairs if k.lower() not in ("hash", "encoding")], store_key)


def verified(pairs: list[tuple[str, str]], store_key: str) -> bool:
    posted = [v for k, v in pairs if k == "HASH"]
    return len(posted) == 1 and secrets.compare_digest(posted[0], posted_hash(pairs, store_key))


# --- The shop's orders ----------------------------------------------------------------------------------------------

def money(value) -> str:
    return f"{Decimal(value):.2f}"


class OrderBook:
    """The shop's orders, kept in a JSON file (or in memory without one). Your database goes here."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path else None
        self.lock = threading.RLock()
        self.orders: dict[str, dict] = {}
        if self.path and self.path.exists():
            self.orders = json.loads(self.path.read_text(encoding="utf-8"))

    def save(self) -> None:
        if self.path:
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps(self.orders, indent=2, ensure_ascii=False), encoding="utf-8")
            os.replace(temporary, self.path)

    def get(self, oid: str) -> dict | None:
        with self.lock:
            order = self.orders.get(oid)
            return json.loads(json.dumps(order)) if order else None

    def note(self, order: dict, text: str) -> None:
        order["journal"].append(f"{time.strftime('%H:%M:%S')} {text}")


class Shop:
    def __init__(self, *, gateway: str, client_id: str, store_key: str, base_url: str, api: Cc5Client | None = None,
                 orders: OrderBook | None = None, lang: str = "fr"):
        self.gateway = gateway.rstrip("/")
        self.client_id, self.store_key, self.base_url, self.lang = client_id, store_key, base_url.rstrip("/"), lang
        self.api = api
        self.book = orders or OrderBook()

    # The payment request ----------------------------------------------------------------------------------------

    def new_order(self, amount: str, *, customer: str = "Client Exemple", email: str = "client@example.ma") -> dict:
        amount = money(amount)
        if Decimal(amount) <= 0:
            raise ValueError("amount must be positive")
        oid = f"EX{time.strftime('%Y%m%d%H%M%S')}{secrets.token_hex(3).upper()}"
        with self.book.lock:
            order = {"oid": oid, "amount": amount, "currency": "504", "state": "awaiting payment",
                     "created": time.strftime("%Y-%m-%d %H:%M:%S"), "callback": None, "return": None,
                     "captured": "0.00", "refunds": [], "refunded": "0.00", "journal": []}
            self.book.orders[oid] = order
            self.book.note(order, f"order {oid} of {amount} DH created")
            self.book.save()
        return {"oid": oid, "fields": self.payment_fields(order, customer=customer, email=email)}

    def payment_fields(self, order: dict, *, customer: str, email: str) -> dict[str, str]:
        fields = {
            "clientid": self.client_id, "amount": order["amount"], "currency": "504", "oid": order["oid"],
            "okUrl": self.base_url + "/cmi/ok", "failUrl": self.base_url + "/cmi/fail",
            "callbackUrl": self.base_url + "/cmi/callback", "shopurl": self.base_url + "/",
            "TranType": "PreAuth", "storetype": "3D_PAY_HOSTING", "hashAlgorithm": "ver3",
            "rnd": secrets.token_hex(10), "lang": self.lang, "BillToName": customer, "email": email,
            "encoding": "UTF-8",
        }
        fields["hash"] = request_hash(fields, self.store_key)
        return fields

    def payment_page(self, fields: dict[str, str]) -> str:
        inputs = "\n".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                           for k, v in fields.items())
        return (f'<!doctype html><html lang="fr"><meta charset="utf-8"><title>Paiement</title>'
                f'<p>Redirection vers la page de paiement sécurisée…</p>'
                f'<form id="cmi-payment" method="post" action="{html.escape(self.gateway)}/fim/est3Dgate">\n'
                f'{inputs}\n<noscript><button type="submit">Payer</button></noscript></form>'
                f'<script>document.getElementById("cmi-payment").submit()</script></html>')

    # The callback and the return ------------------------------------------------------------------------------------

    def on_callback(self, pairs: list[tuple[str, str]]) -> str:
        """The gateway's callback: its answer (``APPROVED`` or ``FAILURE``), the order recorded."""
        fields = dict(pairs)
        if not verified(pairs, self.store_key):
            return "FAILURE"
        with self.book.lock:
            order = self.book.orders.get(fields.get("oid", ""))
            if order is None or fields.get("amount") != order["amount"] or fields.get("currency") != "504":
                return "FAILURE"
            approved = fields.get("ProcReturnCode") == "00"
            again = order["callback"] is not None
            order["callback"] = {
                "verified": True, "answer": "APPROVED", "ProcReturnCode": fields.get("ProcReturnCode", ""),
                "Response": fields.get("Response", ""), "AuthCode": fields.get("AuthCode", ""),
                "TransId": fields.get("TransId", ""), "HostRefNum": fields.get("HostRefNum", ""),
                "MaskedPan": fields.get("MaskedPan", ""), "ErrMsg": fields.get("ErrMsg", ""),
                "mdStatus": fields.get("mdStatus", ""), "calls": (order["callback"] or {}).get("calls", 0) + 1,
            }
            if not again:  # a callback sent again is answered as the first one, nothing recorded twice
                order["state"] = "authorized" if approved else "payment failed"
                order["authorized"] = order["amount"] if approved else "0.00"
            self.book.note(order, f"callback: hash verified (values in the posted order), ProcReturnCode "
                                  f"{fields.get('ProcReturnCode')}, AuthCode {fields.get('AuthCode') or '-'}, "
                                  f"card {fields.get('MaskedPan') or '-'}; answered APPROVED"
                                  + (" (authorization kept for a later capture)" if approved else "")
                                  + (" (sent again)" if again else ""))
            self.book.save()
        return "APPROVED"

    def on_return(self, page: str, pairs: list[tuple[str, str]]) -> tuple[int, str]:
        fields = dict(pairs)
        ok = verified(pairs, self.store_key)
        with self.book.lock:
            order = self.book.orders.get(fields.get("oid", "")) if ok else None
            if order is not None:
                order["return"] = {"page": page, "verified": True}
                self.book.note(order, f"the customer's browser came back to /cmi/{page}: hash verified")
                self.book.save()
            state = order["state"] if order else ""
        if not ok or order is None:
            return 400, _page("Retour invalide", "La signature du retour de paiement est invalide.")
        if page == "ok" and state in ("authorized", "captured"):
            return 200, _page("Merci !", f"Paiement de {order['amount']} DH autorisé pour la commande "
                                         f"{order['oid']}. Il sera débité à l'expédition.")
        if page == "ok":  # the callback has not been recorded yet
            return 200, _page("Paiement en cours de confirmation", f"Commande {order['oid']}.")
        return 200, _page("Paiement non abouti", html.escape(fields.get("ErrMsg", "")))

    # The merchant XML API -------------------------------------------------------------------------------------------

    def _api(self) -> Cc5Client:
        if self.api is None:
            raise RuntimeError("no API user configured")
        return self.api

    def capture(self, oid: str, amount: str = "") -> Cc5Response:
        answer = self._api().postauth(oid, money(amount) if amount else "")
        with self.book.lock:
            order = self.book.orders[oid]
            if answer.approved:
                order["captured"] = money(amount) if amount else order["amount"]
                order["state"] = "captured"
            self.book.note(order, f"PostAuth {money(amount) if amount else 'all'}: {_summary(answer)}")
            self.book.save()
        return answer

    def refund(self, oid: str, amount: str) -> Cc5Response:
        amount = money(amount)
        with self.book.lock:  # the refund's own key, recorded before it is sent: a retry reuses it
            order = self.book.orders[oid]
            refund = {"key": f"{oid}-R{len(order['refunds']) + 1}", "amount": amount, "state": "sent"}
            order["refunds"].append(refund)
            self.book.save()
        answer = self._api().credit(oid, amount, key=refund["key"])
        with self.book.lock:
            order = self.book.orders[oid]
            refund = order["refunds"][-1]
            refund.update(state="approved" if answer.approved else answer.response.lower(), TransId=answer.trans_id,
                          ErrMsg=answer.err_msg, ERRORCODE=answer.error_code)
            order["refunded"] = money(sum((Decimal(r["amount"]) for r in order["refunds"] if r["state"] == "approved"),
                                          Decimal(0)))
            self.book.note(order, f"Credit {amount} (key {refund['key']}): {_summary(answer)}")
            self.book.save()
        return answer

    def status(self, oid: str) -> Cc5Response:
        return self._api().order_status(oid)

    def history(self, oid: str) -> Cc5Response:
        return self._api().order_history(oid)


def _summary(answer: Cc5Response) -> str:
    text = f"{answer.response} {answer.proc_return_code}"
    if answer.trans_id:
        text += f" TransId {answer.trans_id}"
    if answer.error_code:
        text += f" {answer.error_code}"
    if answer.err_msg:
        text += f" « {answer.err_msg} »"
    return text


def _page(title: str, text: str) -> str:
    return (f'<!doctype html><html lang="fr"><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<h1>{html.escape(title)}</h1><p>{text}</p></html>")


# --- The web server ---------------------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    server: ShopServer

    def log_message(self, format, *args):
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, body: str, content_type: str = "text/html; charset=utf-8") -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        shop = self.server.shop
        url = urlsplit(self.path)
        if url.path == "/":
            return self._send(200, _page("Boutique exemple", '<a href="/checkout?amount=250.00">Payer 250.00 DH</a>'))
        if url.path == "/checkout":
            try:
                created = shop.new_order(parse_qs(url.query).get("amount", ["250.00"])[0])
            except (ValueError, InvalidOperation):
                return self._send(400, _page("Montant invalide", "Indiquez un montant positif."))
            return self._send(200, shop.payment_page(created["fields"]))
        if url.path.startswith("/orders/"):
            order = shop.book.get(url.path.removeprefix("/orders/"))
            if order is None:
                return self._send(404, "{}", "application/json")
            return self._send(200, json.dumps(order, ensure_ascii=False), "application/json; charset=utf-8")
        return self._send(404, _page("Introuvable", ""))

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_FORM:
            return self._send(413, "FAILURE", "text/plain")
        pairs = parse_qsl(self.rfile.read(length).decode("utf-8", "replace"), keep_blank_values=True)
        shop = self.server.shop
        if self.path == "/cmi/callback":
            return self._send(200, shop.on_callback(pairs), "text/plain; charset=utf-8")
        if self.path in ("/cmi/ok", "/cmi/fail"):
            return self._send(*shop.on_return(self.path.removeprefix("/cmi/"), pairs))
        return self._send(404, _page("Introuvable", ""))


class ShopServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, shop_factory, port: int = 0, *, verbose: bool = False):
        super().__init__(("127.0.0.1", port), _Handler)
        self.verbose = verbose
        self.shop: Shop = shop_factory(f"http://127.0.0.1:{self.server_address[1]}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> ShopServer:
        threading.Thread(target=self.serve_forever, name="cmi-shop", daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def settings_arguments(parser: argparse.ArgumentParser) -> None:
    """The shop's settings, from the command line or the environment (defaults: the demo's example shop)."""
    env = os.environ.get
    parser.add_argument("--gateway", default=env("CMI_GATEWAY_URL", "http://127.0.0.1:8001"))
    parser.add_argument("--client-id", default=env("CMI_CLIENT_ID", "600000002"))
    parser.add_argument("--store-key", default=env("CMI_STORE_KEY", "EXAMPLE-SHOP-STORE-KEY"))
    parser.add_argument("--api-name", default=env("CMI_API_NAME", "boutique-exemple-api"))
    parser.add_argument("--api-password", default=env("CMI_API_PASSWORD", "EXAMPLE-SHOP-API-PASSWORD"))
    parser.add_argument("--port", type=int, default=int(env("CMI_SHOP_PORT", "8010")),
                        help="the shop's port on 127.0.0.1 (registered at the gateway as a return host)")
    parser.add_argument("--orders-file", default=env("CMI_SHOP_ORDERS"), help="keep the orders in this JSON file")


def server_from(args, *, verbose: bool = False) -> ShopServer:
    api = Cc5Client(args.gateway, name=args.api_name, password=args.api_password, client_id=args.client_id)
    book = OrderBook(args.orders_file)
    return ShopServer(lambda base: Shop(gateway=args.gateway, client_id=args.client_id, store_key=args.store_key,
                                        base_url=base, api=api, orders=book), args.port, verbose=verbose)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    settings_arguments(parser)
    server = server_from(parser.parse_args(), verbose=True)
    print(f"Boutique exemple : {server.url}/ (passerelle {server.shop.gateway}, Ctrl-C pour arrêter)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
