"""A merchant site on 127.0.0.1 written from the public CMI plugins' behaviour, not from our code: it checks the
callback and the browser's return by hashing the values **in the order they arrive** (skipping ``hash`` and
``encoding``), each value HTML-decoded and trimmed first as CMI's merchant kit does, and answers the callback
``ACTION=POSTAUTH`` when the hash matches, ``FAILURE`` when it does not. Some plugins sort the names
(natcasesort) before hashing; this one does not, which is what a gateway posting its fields in another order
than the hash's breaks."""

import base64
import hashlib
import html
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl


def in_order_hash(pairs: list[tuple[str, str]], store_key: str) -> str:
    """What the plugin computes: the values as posted, in that order, then the store key (ver3 escaping)."""
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace("|", "\\|")

    values = [escape(html.unescape(v).strip()) for k, v in pairs if k.lower() not in ("hash", "encoding")]
    plain = "|".join([*values, escape(store_key)])
    return base64.b64encode(hashlib.sha512(plain.encode("utf-8")).digest()).decode("ascii")


def checks(pairs: list[tuple[str, str]], store_key: str) -> bool:
    posted = next((v for k, v in pairs if k == "HASH"), None)
    return posted is not None and posted == in_order_hash(pairs, store_key)


@dataclass
class Shop:
    store_key: str
    callbacks: list[list[tuple[str, str]]] = field(default_factory=list)  # each as posted, in order
    answers: list[str] = field(default_factory=list)
    returns: list[tuple[str, list[tuple[str, str]], bool]] = field(default_factory=list)  # path, fields, verified


class _Handler(BaseHTTPRequestHandler):
    server: "CmiMerchant"

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def _send(self, status: int, body: str, content_type: str) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode("utf-8")
        pairs = parse_qsl(body, keep_blank_values=True)
        shop = self.server.shop
        if self.path == "/shop/callback":
            shop.callbacks.append(pairs)
            answer = "ACTION=POSTAUTH" if checks(pairs, shop.store_key) else "FAILURE"
            shop.answers.append(answer)
            return self._send(200, answer, "text/plain")
        if self.path in ("/shop/ok", "/shop/fail"):
            verified = checks(pairs, shop.store_key)
            shop.returns.append((self.path, pairs, verified))
            word = "commande confirmée" if verified else "signature invalide"
            return self._send(200, f"<!doctype html><title>Boutique</title><h1>{word}</h1>", "text/html; charset=utf-8")
        return self._send(404, "not here", "text/plain")


class CmiMerchant(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, store_key: str):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.shop = Shop(store_key=store_key)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"
