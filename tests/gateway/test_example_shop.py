"""The example shop (examples/cmi_shop: a merchant written from the public CMI plugins' behaviour, standard library
only) registered by the README's two commands, then its walkthrough run as an integrator runs it — a separate
Python process — against the gateway's live server over the real card rails (the gateway's ISO 8583 client → the
switch → the issuer host → the bank's ledger) and the bank's frictionless 3-D Secure: a customer pays on the
hosted page, the shop's callback answers APPROVED, the shop captures part, refunds twice, is refused a refund above
what is left, asks the status and the history. Then the money is checked in every party: the bank's hold and
ledger, the gateway's operation rows, the shop's own record."""

import ast
import io
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command

pytest.importorskip("tasdid.switch.server")
pytest.importorskip("tasdid.bank.issuer")

from tasdid.bank.models import Card, Hold, LedgerEntry, Refund
from tasdid.core.cards import fingerprint
from tasdid.core.signing import ver3_hash
from tasdid.gateway.models import Attempt, AttemptState, CallbackAnswer, Operation, OperationKind, OperationState
from tests.support.ports import free_port

from .test_merchant_protocol_doc import block, vector

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cmi_shop"
CLIENT_ID, STORE_KEY = "600000002", "EXAMPLE-SHOP-STORE-KEY-TEST"
API_NAME, API_PASSWORD = "boutique-exemple-api", "EXAMPLE-SHOP-API-PASSWORD-TEST"
CARD = "4000110000000041"  # the walkthrough's frictionless sandbox card


@pytest.fixture
def card_rails(demo_card_rails):
    return demo_card_rails


@pytest.fixture
def registered_shop(parties, settings, monkeypatch):
    """The gateway's live server and the bank's 3-D Secure directory; the shop registered as its README says."""
    settings.GATEWAY_3DS_DIRECTORY_URL = parties["switch"] + "/3ds/areq"
    port = free_port()
    call_command("merchant_add", client_id=CLIENT_ID, store_key=STORE_KEY, name="Boutique exemple",
                 return_hosts=[f"127.0.0.1:{port}"], stdout=io.StringIO())
    monkeypatch.setattr("sys.stdin", io.StringIO(API_PASSWORD + "\n"))
    call_command("merchant_api_user", client_id=CLIENT_ID, name=API_NAME, password_stdin=True, stdout=io.StringIO())
    return parties["gateway"], port


def walkthrough(gateway: str, port: int, orders: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(EXAMPLE / "walkthrough.py"), "--gateway", gateway, "--client-id", CLIENT_ID,
         "--store-key", STORE_KEY, "--api-name", API_NAME, "--api-password", API_PASSWORD, "--port", str(port),
         "--orders-file", str(orders), *extra],
        capture_output=True, text=True, timeout=600, cwd=orders.parent,
    )


def balance() -> Decimal:
    return Card.objects.get(fingerprint=fingerprint(CARD)).account.balance


def test_the_walkthrough_pays_captures_and_refunds_and_every_party_agrees(registered_shop, tmp_path, monkeypatch):
    gateway, port = registered_shop
    opening = balance()
    orders = tmp_path / "orders.json"
    done = walkthrough(gateway, port, orders, "--amount", "250.00", "--capture", "200.00",
                       "--refund", "50.00", "--refund", "30.00")
    assert done.returncode == 0, done.stdout + done.stderr
    transcript = done.stdout
    assert "answered APPROVED (authorization kept for a later capture)" in transcript
    assert "/cmi/ok answered HTTP 200 « Merci ! »" in transcript
    assert "REFUND_REFUSED" in transcript and transcript.rstrip().endswith("OK")
    assert CARD not in transcript  # the card number masked

    # The shop's own record.
    ((oid, order),) = json.loads(orders.read_text()).items()
    assert (order["state"], order["amount"], order["captured"], order["refunded"]) == (
        "captured", "250.00", "200.00", "80.00")
    assert order["callback"]["answer"] == "APPROVED" and order["callback"]["ProcReturnCode"] == "00"
    assert order["return"] == {"page": "ok", "verified": True}
    assert [(r["amount"], r["state"], r["ERRORCODE"]) for r in order["refunds"]] == [
        ("50.00", "approved", ""), ("30.00", "approved", ""), ("130.00", "error", "REFUND_REFUSED")]
    assert len({r["key"] for r in order["refunds"]}) == 3

    # The gateway: the attempt kept by the shop's APPROVED, captured by its PostAuth, and one row per operation.
    attempt = Attempt.objects.get(session__oid=oid)
    assert (attempt.state, attempt.callback_answer) == (AttemptState.CAPTURED, CallbackAnswer.APPROVED)
    rows = [(o.kind, o.state, o.amount) for o in Operation.objects.filter(attempt=attempt).order_by("created_at", "pk")]
    assert rows == [(OperationKind.AUTHORIZATION, OperationState.APPROVED, Decimal("250.00")),
                    (OperationKind.CAPTURE, OperationState.APPROVED, Decimal("200.00")),
                    (OperationKind.REFUND, OperationState.APPROVED, Decimal("50.00")),
                    (OperationKind.REFUND, OperationState.APPROVED, Decimal("30.00"))]
    assert set(Operation.objects.filter(attempt=attempt, kind=OperationKind.REFUND)
               .values_list("requested_by", flat=True)) == {f"api:{API_NAME}"}

    # The bank: the hold captured for 200.00 (the other 50.00 released), the two refunds credited to the card's
    # account, nothing for the refused one.
    hold = Hold.objects.get(rrn=attempt.rrn)
    assert (hold.state, hold.amount, hold.order_id) == (Hold.State.CAPTURED, Decimal("250.00"), oid)
    assert LedgerEntry.objects.get(hold=hold).amount == Decimal("200.00")
    assert sorted(r.amount for r in Refund.objects.filter(hold=hold, response_code="00")) == [
        Decimal("30.00"), Decimal("50.00")]
    credits = LedgerEntry.objects.filter(account=hold.account, kind=LedgerEntry.Kind.CREDIT, hold__isnull=True,
                                         label__startswith="Remboursement")
    assert sorted(e.amount for e in credits) == [Decimal("30.00"), Decimal("50.00")]
    assert balance() == opening - Decimal("200.00") + Decimal("80.00")

    # A refund above what is left, once more from the shop's own client: the API's error, nothing moves anywhere.
    monkeypatch.syspath_prepend(str(EXAMPLE))
    from cc5 import Cc5Client

    api = Cc5Client(gateway, name=API_NAME, password=API_PASSWORD, client_id=CLIENT_ID)
    entries, refunds = LedgerEntry.objects.count(), Operation.objects.filter(kind=OperationKind.REFUND).count()
    refused = api.credit(oid, "120.01", key="above-what-is-left")
    assert (refused.response, refused.proc_return_code, refused.error_code) == ("Error", "99", "REFUND_REFUSED")
    assert "120.00 DH" in refused.err_msg
    assert LedgerEntry.objects.count() == entries and balance() == opening - Decimal("120.00")
    assert Operation.objects.filter(kind=OperationKind.REFUND).count() == refunds
    status = api.order_status(oid)
    assert {k: status.extra[k] for k in ("ORDERSTATUS", "CAPTURE_AMT", "REFUND_AMT", "REFUNDABLE_AMT")} == {
        "ORDERSTATUS": "CAPTURED", "CAPTURE_AMT": "200.00", "REFUND_AMT": "80.00", "REFUNDABLE_AMT": "120.00"}


def test_the_example_uses_the_standard_library_only():
    """What an integrator copies: no dependency, nothing of Tasdid."""
    local = {path.stem for path in EXAMPLE.glob("*.py")}
    for path in EXAMPLE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top in local or top == "__future__", (path.name, name)


def test_the_shop_refuses_a_callback_whose_hash_does_not_match(monkeypatch):
    """The plugin's check, in the posted order: a value changed, or the same fields in another order, fail."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    from shop import OrderBook, Shop, posted_hash

    shop = Shop(gateway="http://gateway.invalid", client_id=CLIENT_ID, store_key=STORE_KEY,
                base_url="http://127.0.0.1:1", orders=OrderBook())
    oid = shop.new_order("99.50")["oid"]
    pairs = [("amount", "99.50"), ("clientid", CLIENT_ID), ("currency", "504"), ("oid", oid),
             ("ProcReturnCode", "00"), ("Response", "Approved")]
    signed = [*pairs, ("HASH", posted_hash(pairs, STORE_KEY))]
    assert shop.on_callback([*pairs[:-1], ("Response", "Declined"), signed[-1]]) == "FAILURE"
    other_amount = [("amount", "9.50"), *pairs[1:]]  # signed right, but not the order's amount
    assert shop.on_callback([*other_amount, ("HASH", posted_hash(other_amount, STORE_KEY))]) == "FAILURE"
    assert shop.on_callback([*reversed(pairs), signed[-1]]) == "FAILURE"
    assert shop.book.get(oid)["callback"] is None
    assert shop.on_callback(signed) == "APPROVED" and shop.book.get(oid)["state"] == "authorized"
    assert shop.on_callback(signed) == "APPROVED"  # sent again: the same answer, recorded once
    assert shop.book.get(oid)["callback"]["calls"] == 2


def test_the_shop_signs_its_request_as_the_protocol_says(monkeypatch):
    """The documented test vector (docs/merchant-protocol.md §3), and the shop's own request as the gateway's
    hash computes it."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    from shop import OrderBook, Shop, request_hash

    assert request_hash(vector(), "TEST1234") == block("text vector-hash").strip()
    shop = Shop(gateway="http://gateway.invalid", client_id=CLIENT_ID, store_key=STORE_KEY,
                base_url="http://127.0.0.1:1", orders=OrderBook())
    fields = shop.new_order("1234.5", customer="Mme A|B \\ C")["fields"]
    assert fields["amount"] == "1234.50" and fields["TranType"] == "PreAuth"
    assert fields["hash"] == ver3_hash({k: v for k, v in fields.items() if k != "hash"}, STORE_KEY)


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    b"<CC5Response><ErrMsg>&b;</ErrMsg></CC5Response>",
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><CC5Response><ErrMsg>&x;'
    b"</ErrMsg></CC5Response>",
    b'<?xml version="1.0"?><!DOCTYPE CC5Response SYSTEM "http://127.0.0.1:1/evil.dtd"><CC5Response/>',
    b"<CC5Response><Extra><A><B>deep</B></A></Extra></CC5Response>",
    b"<Other/>",
    b"<CC5Response><Response>Approved",
    b"<CC5Response>" + b"x" * 70_000 + b"</CC5Response>",
], ids=["entities", "external-entity", "external-dtd", "too-deep", "other-root", "truncated", "too-large"])
def test_the_shop_reads_no_doctype_entity_or_oversized_answer(monkeypatch, body):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    from cc5 import Cc5Error, parse_response

    with pytest.raises(Cc5Error):
        parse_response(body)
    answer = parse_response(b'<?xml version="1.0" encoding="UTF-8"?><CC5Response><Response>Approved</Response>'
                            b"<ProcReturnCode>00</ProcReturnCode><Extra><TRXCOUNT>1</TRXCOUNT>"
                            b"<TRX1>Credit\tC\t5.00</TRX1></Extra></CC5Response>")
    assert answer.approved and answer.transactions == [{"TYPE": "Credit", "TRANS_STAT": "C", "AMOUNT": "5.00"}]
