"""The whole story of one order, against a running gateway, as the shop and its customer live it:

1. the shop (``shop.py``) starts on 127.0.0.1; a customer's browser (plain HTTP: cookies, forms, the
   auto-submitted ones followed as their script would) opens its checkout, is sent to the gateway's hosted page
   with the shop's PreAuth request, pays with a sandbox card (frictionless 3-D Secure), and comes back to the shop;
   meanwhile the gateway's callback reached the shop, which verified it and answered ``APPROVED``;
2. the shop captures part of the authorization (``PostAuth``), refunds part (``Credit``), refunds again, asks for
   a refund above what is left (refused, nothing moves), then asks ``ORDERSTATUS`` and ``ORDERHISTORY``.

It prints a transcript and exits 0 when every step went as a shop expects, 1 otherwise.

    python examples/cmi_shop/walkthrough.py                      # against `make demo` (its example shop)
    python examples/cmi_shop/walkthrough.py --gateway https://… --client-id … --store-key … \\
        --api-name … --api-password … --port 8010 --amount 250.00 --capture 200.00 --refund 50.00 --refund 30.00
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.error
import urllib.request
from decimal import Decimal
from html.parser import HTMLParser
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import urlencode, urljoin, urlsplit

from cc5 import Cc5Error
from shop import ShopServer, money, server_from, settings_arguments

# A sandbox card that the bank authenticates without asking the customer anything (frictionless 3-D Secure):
# `tasdid sandbox cards` lists them all.
FRICTIONLESS_CARD = "VISA,4000110000000041,03/30,441"


class WalkthroughError(Exception):
    pass


# --- The customer's browser -------------------------------------------------------------------------------------

class _LoopbackIsSecure(DefaultCookiePolicy):
    """Browsers send ``Secure`` cookies to http://127.0.0.1 (a secure context); http.cookiejar only over https."""

    def return_ok_secure(self, cookie, request):
        return urlsplit(request.get_full_url()).hostname in ("127.0.0.1", "localhost") or \
            super().return_ok_secure(cookie, request)


class _Forms(HTMLParser):
    def __init__(self, base: str):
        super().__init__(convert_charrefs=True)
        self.base, self.forms, self._form = base, [], None

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = {"action": urljoin(self.base, a.get("action") or self.base), "attrs": a, "fields": {}}
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None and a.get("name"):
            kind = a.get("type", "text").lower()
            if kind not in ("checkbox", "radio", "submit", "button", "image", "reset", "file") or "checked" in a:
                self._form["fields"][a["name"]] = a.get("value", "")

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None


class Page:
    def __init__(self, url: str, status: int, text: str):
        self.url, self.status, self.text = url, status, text
        parser = _Forms(url)
        parser.feed(text)
        self.forms = parser.forms

    def form(self, **attrs: str) -> dict | None:
        return next((f for f in self.forms if all(f["attrs"].get(k) == v for k, v in attrs.items())), None)

    @property
    def autosubmitted(self) -> dict | None:
        return next((f for f in self.forms if "data-autosubmit" in f["attrs"] or f["attrs"].get("id") == "cmi-payment"),
                    None)

    @property
    def heading(self) -> str:
        match = re.search(r"(?s)<h1[^>]*>(.*?)</h1>", self.text)
        return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split()) if match else ""


class Browser:
    def __init__(self, timeout: float = 60.0):
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar(_LoopbackIsSecure())))
        self.timeout = timeout

    def open(self, url: str, data: dict[str, str] | None = None) -> Page:
        if urlsplit(url).scheme not in ("http", "https"):
            raise WalkthroughError(f"not a web address: {url!r}")
        body = urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(url, data=body, headers={"Accept-Language": "fr"})  # noqa: S310 - http(s)
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return Page(response.url, response.status, response.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as error:
            return Page(error.url, error.code, error.read().decode("utf-8", "replace"))

    def submit(self, form: dict, **values: str) -> Page:
        return self.open(form["action"], {**form["fields"], **values})


# --- The story --------------------------------------------------------------------------------------------------

class Transcript:
    def __init__(self, out=sys.stdout):
        self.out, self.seen = out, 0

    def step(self, title: str) -> None:
        print(f"\n== {title}", file=self.out, flush=True)

    def line(self, who: str, text: str) -> None:
        print(f"   {who:<9} {text}", file=self.out, flush=True)

    def journal(self, order: dict) -> None:
        """What the shop recorded since the last look (its callback, its API calls)."""
        for entry in order["journal"][self.seen:]:
            self.line("shop", entry)
        self.seen = len(order["journal"])


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise WalkthroughError(what)


def customer_pays(server: ShopServer, amount: str, card: str, say: Transcript) -> tuple[str, Page]:
    """The customer's browser from the shop's checkout to the shop's return page; returns the order id. What the
    shop records meanwhile (its callback) is told after the step that caused it."""
    shop_url = server.url
    brand, number, expiry, cvv = card.split(",")
    month, year = expiry.split("/")
    browser = Browser()
    checkout = browser.open(f"{shop_url}/checkout?amount={amount}")
    request = checkout.form(id="cmi-payment")
    expect(checkout.status == 200 and request is not None, f"the shop's payment form (HTTP {checkout.status})")
    fields = request["fields"]
    say.line("shop", f"GET /checkout → order {fields['oid']}: a form auto-submitted to {request['action']}")
    say.line("", f"TranType={fields['TranType']} amount={fields['amount']} currency={fields['currency']} "
                 f"hashAlgorithm=ver3 hash={fields['hash'][:16]}… ({len(fields)} fields)")
    say.journal(server.shop.book.get(fields["oid"]))
    hosted = browser.submit(request)
    card_form = hosted.form(id="card-form")
    expect(hosted.status == 200 and card_form is not None,
           f"the gateway's hosted page (HTTP {hosted.status} at {hosted.url}): {hosted.heading}")
    say.line("browser", f"POST /fim/est3Dgate, redirected to the hosted page {urlsplit(hosted.url).path}")
    page = browser.submit(card_form, card_type=brand, card_number=number, expiry_month=str(int(month)),
                          expiry_year=f"20{year}", cvv=cvv, terms="on")
    say.line("browser", f"card {brand} {number[:6]}******{number[-4:]} submitted ({expiry}, CVV not shown)")
    say.journal(server.shop.book.get(fields["oid"]))
    for _hop in range(8):  # the frictionless 3-D Secure answer, the gateway's way back to the shop
        form = page.autosubmitted
        if form is None:
            break
        expect(not form["action"].endswith("/acs/challenge"), "a 3-D Secure challenge: use a frictionless card")
        target = urlsplit(form["action"])
        say.line("browser", f"auto-submitted form → {target.netloc}{target.path}")
        page = browser.submit(form)
        say.journal(server.shop.book.get(fields["oid"]))
    expect(page.url.startswith(shop_url), f"the browser back at the shop (HTTP {page.status} at {page.url}): "
                                          f"{page.heading}")
    say.line("shop", f"{urlsplit(page.url).path} answered HTTP {page.status} « {page.heading} »")
    return fields["oid"], page


def _amounts(status) -> str:
    e = status.extra
    return (f"authorized {e.get('ORIG_TRANS_AMT')}, captured {e.get('CAPTURE_AMT')}, refunded {e.get('REFUND_AMT')}, "
            f"refundable {e.get('REFUNDABLE_AMT')} DH")


def run(server: ShopServer, *, amount: str, capture: str, refunds: list[str], card: str = FRICTIONLESS_CARD,
        out=sys.stdout) -> dict:
    """The story; returns the shop's record of the order. Raises WalkthroughError at the first surprise."""
    shop, say = server.shop, Transcript(out)
    amount, capture = money(amount), money(capture or amount)
    say.step(f"1. A customer pays {amount} DH at the shop {server.url} (gateway {shop.gateway})")
    oid, _page = customer_pays(server, amount, card, say)
    order = shop.book.get(oid)
    say.journal(order)
    expect(order["callback"] is not None and order["callback"]["ProcReturnCode"] == "00",
           f"the gateway's callback, approved: {order['callback']}")
    expect(order["state"] == "authorized" and order["return"] == {"page": "ok", "verified": True},
           f"the order authorized and the return verified: {order['state']}, {order['return']}")

    status = shop.status(oid)
    say.line("API", f"ORDERSTATUS → {status.response} {status.extra.get('ORDERSTATUS')} "
                    f"(TRANS_STAT {status.extra.get('TRANS_STAT')}): {_amounts(status)}")
    expect(status.extra.get("ORDERSTATUS") == "AUTHORIZED", "the order kept authorized at the gateway")

    say.step(f"2. The goods ship: the shop captures {capture} DH of {amount} (PostAuth)")
    captured = shop.capture(oid, capture)
    say.journal(shop.book.get(oid))
    expect(captured.approved, f"the capture approved: {captured.fields} {captured.extra}")
    status = shop.status(oid)
    say.line("API", f"ORDERSTATUS → {status.extra.get('ORDERSTATUS')} (TRANS_STAT {status.extra.get('TRANS_STAT')}): "
                    f"{_amounts(status)}")
    expect(status.extra.get("CAPTURE_AMT") == capture, f"{capture} captured: {status.extra}")

    left = Decimal(capture)
    for n, refund in enumerate(refunds, start=1):
        refund = money(refund)
        say.step(f"{2 + n}. The customer returns goods: the shop refunds {refund} DH (Credit)")
        answer = shop.refund(oid, refund)
        say.journal(shop.book.get(oid))
        expect(answer.approved, f"the refund approved: {answer.fields} {answer.extra}")
        left -= Decimal(refund)
        expect(answer.extra.get("REFUNDABLE_AMT") == money(left),
               f"{money(left)} left to refund, the gateway says {answer.extra.get('REFUNDABLE_AMT')}")
        say.line("API", f"REFUNDABLE_AMT {answer.extra.get('REFUNDABLE_AMT')} DH")

    too_much = money(left + Decimal("10.00"))
    say.step(f"{3 + len(refunds)}. The shop asks a refund of {too_much} DH, above the {money(left)} DH left (refused)")
    refused = shop.refund(oid, too_much)
    say.journal(shop.book.get(oid))
    expect(refused.response == "Error" and refused.error_code == "REFUND_REFUSED",
           f"the refund above what is left refused: {refused.fields} {refused.extra}")

    say.step(f"{4 + len(refunds)}. The shop asks the order's status and history")
    status = shop.status(oid)
    say.line("API", f"ORDERSTATUS → {status.extra.get('ORDERSTATUS')} (TRANS_STAT {status.extra.get('TRANS_STAT')}), "
                    f"card {status.extra.get('PAN')}, auth {status.extra.get('AUTH_CODE')}")
    say.line("", _amounts(status))
    refunded = money(Decimal(capture) - left)
    expect((status.extra.get("ORDERSTATUS"), status.extra.get("CAPTURE_AMT"), status.extra.get("REFUND_AMT"),
            status.extra.get("REFUNDABLE_AMT")) == ("CAPTURED", capture, refunded, money(left)),
           f"the status's amounts: {status.extra}")
    history = shop.history(oid)
    say.line("API", f"ORDERHISTORY → {len(history.transactions)} transactions")
    for trx in history.transactions:
        say.line("", f"{trx.get('TYPE', ''):<9} {trx.get('TRANS_STAT', ''):<2} {trx.get('AMOUNT', ''):>9} DH  "
                     f"{trx.get('DATE', '')}  {trx.get('TRANS_ID', '')}")
    kinds = [(t.get("TYPE"), t.get("AMOUNT")) for t in history.transactions]
    expect(kinds == [("PreAuth", amount), ("PostAuth", capture), *(("Credit", money(r)) for r in refunds)],
           f"the history: {kinds}")

    order = shop.book.get(oid)
    say.step("The shop's record")
    say.line("shop", f"order {oid}: {order['state']}, amount {order['amount']}, captured {order['captured']}, "
                     f"refunded {order['refunded']} DH; refunds "
                     + ", ".join(f"{r['amount']} {r['state']}" for r in order["refunds"]))
    return order


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    settings_arguments(parser)
    parser.add_argument("--amount", default="250.00")
    parser.add_argument("--capture", default="200.00", help="the amount captured (PostAuth); all when equal")
    parser.add_argument("--refund", action="append", dest="refunds", help="a partial refund (repeatable)")
    parser.add_argument("--card", default=FRICTIONLESS_CARD, help="BRAND,NUMBER,MM/YY,CVV of a frictionless card")
    parser.add_argument("--json", action="store_true", help="print the shop's record of the order as JSON at the end")
    args = parser.parse_args(argv)
    server = server_from(args).start()
    try:
        order = run(server, amount=args.amount, capture=args.capture, refunds=args.refunds or ["50.00", "30.00"],
                    card=args.card)
    except (WalkthroughError, Cc5Error, OSError) as failure:
        print(f"\nFAILED: {type(failure).__name__}: {failure}", file=sys.stderr)
        return 1
    finally:
        server.stop()
    if args.json:
        print(json.dumps(order, indent=2, ensure_ascii=False))
    print("\nOK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
