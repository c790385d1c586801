"""Fuzzing the merchant XML API (``POST /fim/api``): generated ``CC5Request`` bodies, each knowing what the gateway
must answer, and a probe that posts one and classifies the answer. Shared by the short test (test_api_fuzz.py) and
the long run (bench/api_fuzz.py).

The oracle is a model of the merchant's orders kept beside the gateway's: each order kept (authorized, the
merchant's callback answered APPROVED), captured, voided or declined, what was refunded of it, and the answers the
gateway must give again (the same operation within the replay window). A valid operation must be approved exactly
when the model says it can be (PostAuth of a kept authorization, whole; Void of a kept one; Credit within what is
left), its repeat must get the same bytes, and a query must tell the model's state. Every other request is invalid
by construction (XML that is malformed, malicious — DOCTYPE, entities, external references, billion laughs —, not
UTF-8, too large; a field missing, doubled or outside its rules; wrong credentials) and must get an ``Error`` with
nothing moved. No answer may be a server error or unreadable. The acquirer here approves in-process (the rails'
own behaviour is the endpoint tests'), declining refunds whose cents are 13."""

import itertools
import random
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import quote_plus

from django.test import Client
from django.utils import timezone

from tasdid.core.acquiring import RefundResult, SettlementResult
from tasdid.gateway import services, xmlapi
from tasdid.gateway.backfill import attempt_operations
from tasdid.gateway.models import Attempt, AttemptState, CallbackAnswer, Operation, OperationState, PaymentSession

CLIENT_ID, OTHER_ID = "600000066", "600000067"
USER, PASSWORD = "fuzz-api", "fuzz-api-password-0001"
OTHER_USER, OTHER_PASSWORD = "fuzz-other", "fuzz-other-password-01"
VICTIM, VICTIM_PASSWORD = "fuzz-victim", "fuzz-victim-password-1"
ENDPOINT = "/fim/api"
_rrns = itertools.count(100000000000)


class FuzzAcquirer:
    """Approves every capture and void at once; approves refunds but those whose cents are 13 (declined 05)."""

    def capture(self, request):
        return SettlementResult("00")

    def void(self, request):
        return SettlementResult("00")

    def refund(self, request):
        if request.amount_minor % 100 == 13:
            return RefundResult("05")
        return RefundResult("00", rrn=str(next(_rrns)))


def setup_merchants() -> None:
    merchant = services.merchant_register(client_id=CLIENT_ID, name="Boutique fuzz API",
                                          return_hosts=["shop.example.ma"], store_key="FUZZ-API-KEY-0001").merchant
    other = services.merchant_register(client_id=OTHER_ID, name="Autre boutique", return_hosts=["shop.example.ma"],
                                       store_key="FUZZ-API-KEY-0002").merchant
    services.api_user_create(merchant=merchant, name=USER, password=PASSWORD)
    services.api_user_create(merchant=merchant, name=VICTIM, password=VICTIM_PASSWORD)
    services.api_user_create(merchant=other, name=OTHER_USER, password=OTHER_PASSWORD)


@dataclass
class Order:
    oid: str
    amount: Decimal
    state: str  # "kept", "captured", "voided", "declined"
    refunded: Decimal = Decimal("0.00")
    captured: Decimal = Decimal("0.00")  # what its capture took: whole, or part of the authorization once


@dataclass
class Model:
    orders: dict[str, Order] = field(default_factory=dict)
    kept_answers: dict[tuple, bytes] = field(default_factory=dict)

    def left(self, order: Order) -> Decimal:
        return order.captured - order.refunded if order.state == "captured" else Decimal("0.00")


def new_order(model: Model, rng: random.Random, n: int) -> Order:
    """An order of the merchant as the hosted page leaves it (recorded directly: the page is not fuzzed here)."""
    from tasdid.gateway.models import Merchant

    merchant = Merchant.objects.get(client_id=CLIENT_ID)
    state = rng.choice(["kept", "kept", "captured", "captured", "declined"])
    amount = Decimal(rng.randint(1, 2_000_000)) / 100
    oid = f"FZ{n}-{rng.randint(0, 10**6)}"
    now = timezone.now()
    session = PaymentSession.objects.create(
        token=f"fz-{oid}", merchant=merchant, oid=oid, amount=amount, browser_digest="x",
        request_fields={"TranType": "PreAuth"}, state="failed" if state == "declined" else "succeeded",
        created_at=now, expires_at=now, updated_at=now)
    attempt = Attempt.objects.create(
        session=session, amount=amount, brand="VISA", masked_pan="400011******0017", pan_fingerprint="f",
        threeds_server_trans_id=f"fz-{oid}"[:36], trans_id=f"T{n:012d}",
        stan=f"{500000 + n % 400000:06d}",  # above the STANs the gateway gives its own messages
        transmitted_at=now.replace(microsecond=0), authorized_at=now, created_at=now, updated_at=now, deadline=now,
        state={"kept": AttemptState.AUTHORIZED, "captured": AttemptState.CAPTURED}.get(state, AttemptState.DECLINED),
        response_code="05" if state == "declined" else "00", proc_return_code="05" if state == "declined" else "00",
        auth_code="" if state == "declined" else "A1B2C3", rrn="" if state == "declined" else f"{n:012d}",
        callback_answer=CallbackAnswer.APPROVED if state != "declined" else CallbackAnswer.FAILURE,
        settled_at=now if state == "captured" else None)
    for operation in attempt_operations(attempt, Operation):  # its authorization and capture, as the gateway keeps them
        operation.save()
    order = Order(oid=oid, amount=amount, state=state, captured=amount if state == "captured" else Decimal("0.00"))
    model.orders[oid] = order
    return order


@dataclass
class Case:
    kind: str
    body: bytes
    content_type: str = "text/xml; charset=utf-8"
    expect: str = "error"  # "approved", "declined", "error", "query", "replay"
    order: Order | None = None
    op: str = ""
    amount: Decimal | None = None
    key: tuple | None = None
    replay: bytes | None = None


def _amount_text(amount: Decimal, rng: random.Random) -> str:
    text = f"{amount:.2f}"
    if text.endswith("0") and rng.random() < 0.3:
        text = text[:-1]  # 10.5 and 10.50 are the same amount
    if text.endswith(".0") or text.endswith(".00"):
        text = text.split(".")[0] if rng.random() < 0.5 else text
    return text


def _xml(fields: list[tuple[str, str]], extra: list[tuple[str, str]] = (), *, declaration: bool = True) -> bytes:
    def esc(v: str) -> str:
        return v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    inner = "".join(f"<{k}>{esc(v)}</{k}>" for k, v in fields)
    if extra:
        inner += "<Extra>" + "".join(f"<{k}>{esc(v)}</{k}>" for k, v in extra) + "</Extra>"
    head = '<?xml version="1.0" encoding="UTF-8"?>\n' if declaration else ""
    return (head + f"<CC5Request>{inner}</CC5Request>").encode("utf-8")


def _credentials(user: str = USER, password: str = PASSWORD, client_id: str = CLIENT_ID) -> list[tuple[str, str]]:
    return [("Name", user), ("Password", password), ("ClientId", client_id)]


def _valid_operation(model: Model, rng: random.Random) -> Case:
    order = rng.choice(list(model.orders.values()))
    op = rng.choice(["PostAuth", "Void", "Credit", "Credit"])
    amount: Decimal | None = None
    if op == "Credit":
        left = model.left(order) or order.amount
        amount = rng.choice([left, Decimal(rng.randint(1, max(1, int(left * 100)))) / 100,
                             Decimal(rng.randint(0, max(0, int(left) - 1))) + Decimal("0.13"),
                             Decimal(rng.randint(1, int(order.amount * 100) + 500)) / 100])
    elif op == "PostAuth" and rng.random() < 0.5:
        amount = rng.choice([order.amount, order.amount, order.amount + Decimal("0.01"),
                             Decimal(rng.randint(1, max(1, int(order.amount * 100)))) / 100])  # part of it
    idem = f"k{rng.randint(0, 3)}" if rng.random() < 0.3 else ""
    fields = [*_credentials(), ("Type", rng.choice([op, op, op.upper(), op.lower()])), ("OrderId", order.oid)]
    if amount is not None:
        fields.append(("Total", _amount_text(amount, rng)))
    if rng.random() < 0.7:
        fields.append(("Currency", "504"))
    for name in rng.sample(["Email", "IPAddress", "UserId", "Mode", "GroupId"], rng.choice([0, 0, 1, 2])):
        fields.append((name, f"v{rng.randint(0, 99)}"))  # elements Nestpay clients send, ignored here
    if rng.random() < 0.3:
        rng.shuffle(fields)
    if rng.random() < 0.1:
        fields = [(k, f"  {v}\n") for k, v in fields]  # whitespace around values is not part of them
    extra = [("IDEMPOTENCY_KEY", idem)] if idem else []
    body = _xml(fields, extra, declaration=rng.random() < 0.8)
    key = (op, order.oid, amount, idem)
    case = Case(kind=f"valid {op}", body=body, order=order, op=op, amount=amount, key=key)
    if rng.random() < 0.1:
        case.body = ("DATA=" + quote_plus(body.decode("utf-8"))).encode("ascii")
        case.content_type = "application/x-www-form-urlencoded"
        case.kind += " (form DATA)"
    if key in model.kept_answers:
        case.expect, case.replay = "replay", model.kept_answers[key]
        case.kind = f"repeat {op}"
        return case
    if op == "PostAuth":  # a capture asked again for what it took finds it (nothing moves)
        ok = (order.state == "kept" and (amount is None or Decimal("0") < amount <= order.amount)) or (
            order.state == "captured" and (amount or order.amount) == order.captured)
    elif op == "Void":  # a void asked again finds it
        ok = order.state in ("kept", "voided")
    else:
        ok = order.state == "captured" and Decimal("0") < amount <= model.left(order)
    case.expect = "approved" if ok else "error"
    if ok and op == "Credit" and int(amount * 100) % 100 == 13:
        case.expect = "declined"
    return case


def _query(model: Model, rng: random.Random) -> Case:
    which = rng.choice(["ORDERSTATUS", "ORDERHISTORY"])
    known = rng.random() < 0.9 and model.orders
    order = rng.choice(list(model.orders.values())) if known else None
    oid = order.oid if order else f"NOPE-{rng.randint(0, 10**6)}"
    body = _xml([*_credentials(), ("OrderId", oid)], [(which, rng.choice(["QUERY", "query"]))])
    return Case(kind=f"query {which}" + ("" if order else " unknown order"), body=body,
                expect="query" if order else "error", order=order, op=which)


_BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                   + b"".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
                              .encode() for i in range(1, 10))
                   + b"]><CC5Request><Name>&lol9;</Name></CC5Request>")


def _malicious(rng: random.Random) -> Case:
    good = _xml([*_credentials(), ("Type", "Void"), ("OrderId", "X-1")]).decode("utf-8")
    choices = {
        "billion laughs": _BILLION_LAUGHS,
        "external entity (file)": (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                                   b"<CC5Request><Name>&x;</Name></CC5Request>"),
        "external entity (url)": (b'<!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]>'
                                  b"<CC5Request><Password>&x;</Password></CC5Request>"),
        "parameter entity": (b'<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]>'
                             b"<CC5Request/>"),
        "external DTD": b'<!DOCTYPE CC5Request SYSTEM "http://127.0.0.1:9/cc5.dtd"><CC5Request/>',
        "internal entity": (b'<!DOCTYPE r [<!ENTITY pw "' + PASSWORD.encode() + b'">]><CC5Request><Name>'
                            + USER.encode() + b"</Name><Password>&pw;</Password><ClientId>" + CLIENT_ID.encode()
                            + b"</ClientId><OrderId>X</OrderId><Extra><ORDERSTATUS>QUERY</ORDERSTATUS></Extra>"
                            b"</CC5Request>"),
        "xinclude": good.replace(f"<Password>{PASSWORD}</Password>",
                                 '<Password><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
                                 'href="/etc/passwd" parse="text"/></Password>').encode(),
        "latin-1 bytes": good.replace("X-1", "X-1").replace(USER, "fuzz-apié").encode("latin-1"),
        "declared ISO-8859-1": good.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"').encode("utf-8"),
        "UTF-16": good.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"),
        "too large": good.replace("<Type>", "<Email>" + "a" * (xmlapi.MAX_BODY) + "</Email><Type>").encode(),
        "deep nesting": ("<CC5Request>" + "<a>" * 5000 + "</a>" * 5000 + "</CC5Request>").encode(),
        "many elements": ("<CC5Request>" + "<Email>x</Email>" * 200 + "</CC5Request>").encode(),
        "control character": good.replace("X-1", "X\x01-1").encode(),
        "NUL": good.replace("X-1", "X\x00-1").encode(),
        "junk": bytes(rng.randrange(256) for _ in range(rng.randint(0, 300))),
        "empty": b"",
        "not XML": b"Name=fuzz-api&Password=x",
        "truncated": good.encode()[: rng.randint(1, len(good) - 1)],
        "other root": good.replace("CC5Request", "CC5Response").encode(),
        "cdata script": good.replace("X-1", "<![CDATA[<script>]]>").encode(),
        "form without DATA": b"XML=" + quote_plus(good).encode(),
        "form DATA twice": ("DATA=" + quote_plus(good) + "&DATA=" + quote_plus(good)).encode(),
        "form not UTF-8": b"DATA=%3CCC5Request%3E%FF%3C%2FCC5Request%3E",
    }
    kind = rng.choice(list(choices))
    content_type = "application/x-www-form-urlencoded" if kind.startswith("form") else "text/xml"
    return Case(kind=f"malicious: {kind}", body=choices[kind], content_type=content_type)


_BAD_TOTALS = ["0", "0.00", "-1.00", "1.005", "12,50", "1e3", "abc", "NaN", "Infinity", "١٠٠", "+1.00", "0x10",
               "9999999999.00", "1 000", "."]


def _invalid(model: Model, rng: random.Random) -> Case:
    """Well-formed XML with one thing wrong: nothing may move."""
    order = rng.choice(list(model.orders.values()))
    fields = [*_credentials(), ("Type", "Credit"), ("OrderId", order.oid), ("Total", "1.00"), ("Currency", "504")]
    extra: list[tuple[str, str]] = []
    mutation = rng.choice(["missing", "bad total", "bad type", "bad currency", "doubled", "type and query",
                           "bad oid", "too long", "bad query", "two queries", "nested", "attribute",
                           "wrong password", "unknown user", "other merchant's user", "other client id",
                           "bad idempotency key", "no type"])
    if mutation == "unknown user" and rng.random() < 0.75:
        mutation = "wrong password"  # an unknown name costs a password hash's time: rarer
    if mutation == "missing":
        fields.pop(rng.choice([0, 1, 2, 3, 4, 5]))  # Name, Password, ClientId, Type, OrderId, Total
    elif mutation == "bad total":
        fields[5] = ("Total", rng.choice(_BAD_TOTALS))
    elif mutation == "bad type":
        fields[3] = ("Type", rng.choice(["Sale", "Auth", "PreAuth", "Refund", "Credit2", "VOID ", "Post Auth"]))
        if fields[3][1].strip().lower() in ("void",):
            fields[3] = ("Type", "Voidd")
    elif mutation == "bad currency":
        fields[6] = ("Currency", rng.choice(["978", "MAD", "5040", "٥٠٤"]))
    elif mutation == "doubled":
        fields.append(rng.choice(fields))
    elif mutation == "type and query":
        extra = [("ORDERSTATUS", "QUERY")]
    elif mutation == "bad oid":
        fields = [(k, rng.choice(["A B", "x" * 65, "é", "a;b", "<&>"]) if k == "OrderId" else v) for k, v in fields]
    elif mutation == "too long":
        fields.append(("Email", "x" * (xmlapi.MAX_VALUE + 1)))
    elif mutation == "bad query":
        fields = [f for f in fields if f[0] != "Type"]
        extra = [("ORDERSTATUS", rng.choice(["YES", "", "query please"]))]
    elif mutation == "two queries":
        fields = [f for f in fields if f[0] != "Type"]
        extra = [("ORDERSTATUS", "QUERY"), ("ORDERHISTORY", "QUERY")]
    elif mutation == "bad idempotency key":
        extra = [("IDEMPOTENCY_KEY", rng.choice(["a b", "x" * 65, "é"]))]
    elif mutation == "no type":
        fields = [f for f in fields if f[0] != "Type"]
    elif mutation == "wrong password":
        fields[0], fields[1] = ("Name", VICTIM), ("Password", rng.choice(["", "x", VICTIM_PASSWORD + "x",
                                                                          VICTIM_PASSWORD.upper()]) or "y")
    elif mutation == "unknown user":
        fields[0] = ("Name", f"nobody-{rng.randint(0, 10**6)}")
    elif mutation == "other merchant's user":
        fields[0], fields[1] = ("Name", OTHER_USER), ("Password", OTHER_PASSWORD)
    elif mutation == "other client id":
        fields[2] = ("ClientId", rng.choice([OTHER_ID, "600000999", "x"]))
    body = _xml(fields, extra)
    if mutation == "nested":
        body = body.replace(b"<Total>1.00</Total>", b"<Total><a>1.00</a></Total>")
    elif mutation == "attribute":
        body = body.replace(b"<Total>", b'<Total currency="504">')
    return Case(kind=f"invalid: {mutation}", body=body)


def generate(model: Model, rng: random.Random) -> Case:
    roll = rng.random()
    if roll < 0.45:
        return _valid_operation(model, rng)
    if roll < 0.6:
        return _query(model, rng)
    if roll < 0.8:
        return _invalid(model, rng)
    return _malicious(rng)


class Outcome:
    APPROVED, DECLINED, REFUSED = "approved", "declined", "refused"
    SERVER_ERROR, WRONG_ACCEPT, WRONG_REFUSAL, WRONG_ANSWER = ("server error", "wrong accept", "wrong refusal",
                                                               "wrong answer")


@dataclass
class Run:
    counts: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    requests: int = 0

    @property
    def bad(self) -> int:
        return sum(self.counts.get(o, 0) for o in (Outcome.SERVER_ERROR, Outcome.WRONG_ACCEPT, Outcome.WRONG_REFUSAL,
                                                    Outcome.WRONG_ANSWER))

    def count(self, outcome: str, case: Case, detail: str = "") -> str:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if outcome in (Outcome.SERVER_ERROR, Outcome.WRONG_ACCEPT, Outcome.WRONG_REFUSAL, Outcome.WRONG_ANSWER):
            self.failures.append(f"{outcome}: {case.kind}: {detail} {case.body[:300]!r}")
        return outcome


def gateway_client() -> Client:
    return Client(raise_request_exception=False, **{"tasdid.party": "gateway"})


def probe(client: Client, run: Run, model: Model, case: Case) -> str:
    run.requests += 1
    run.kinds[case.kind] = run.kinds.get(case.kind, 0) + 1
    response = client.post(ENDPOINT, data=case.body, content_type=case.content_type)
    if response.status_code != 200:
        return run.count(Outcome.SERVER_ERROR, case, f"HTTP {response.status_code}")
    try:
        answer = xmlapi.read_response(response.content)
    except Exception as exc:  # an answer a merchant cannot read
        return run.count(Outcome.SERVER_ERROR, case, f"unreadable answer {type(exc).__name__}")
    if case.expect == "replay":
        if response.content != case.replay:
            return run.count(Outcome.WRONG_ANSWER, case, "a repeat got another answer")
        return run.count(answer.response.lower() if answer.response != "Error" else Outcome.REFUSED, case)
    if answer.response == "Error":
        if case.expect in ("approved", "declined", "query"):
            return run.count(Outcome.WRONG_REFUSAL, case, f"{answer.extra.get('ERRORCODE')} {answer.err_msg}")
        return run.count(Outcome.REFUSED, case)
    if case.expect == "error":
        return run.count(Outcome.WRONG_ACCEPT, case, answer.response)
    if case.expect == "query":
        return _check_query(run, model, case, answer)
    if answer.response.lower() != case.expect:
        return run.count(Outcome.WRONG_ANSWER, case, f"{answer.response} instead of {case.expect}")
    order = case.order
    if case.op == "PostAuth":
        if order.state == "kept":
            order.captured = case.amount or order.amount
        order.state = "captured"
    elif case.op == "Void":
        order.state = "voided"
    elif case.expect == "approved":
        order.refunded += case.amount
    model.kept_answers[case.key] = response.content
    return run.count(answer.response.lower(), case)


_STATUS = {"kept": "AUTHORIZED", "captured": "CAPTURED", "voided": "VOIDED", "declined": "DECLINED"}


def _check_query(run: Run, model: Model, case: Case, answer: xmlapi.ApiResponse) -> str:
    order = case.order
    if case.op == "ORDERSTATUS":
        seen = (answer.extra.get("ORDERSTATUS"), answer.extra.get("REFUND_AMT"), answer.extra.get("CAPTURE_AMT"))
        wanted = (_STATUS[order.state], f"{order.refunded:.2f}",
                  f"{order.captured:.2f}" if order.state == "captured" else "0.00")
    else:
        credits = [row.split("\t") for k, row in answer.extra.items() if k.startswith("TRX") and k != "TRXCOUNT"]
        seen = (sum((Decimal(r[2]) for r in credits if r[0] == "Credit" and r[1] == "C"), Decimal("0.00")),
                any(r[0] == "PostAuth" for r in credits), any(r[0] == "Void" for r in credits))
        wanted = (order.refunded, order.state == "captured", order.state == "voided")
    if seen != wanted:
        return run.count(Outcome.WRONG_ANSWER, case, f"{seen} instead of {wanted}")
    return run.count(Outcome.APPROVED, case)


def step(run: Run, model: Model, rng: random.Random, n: int, *, client: Client) -> str:
    open_orders = sum(1 for o in model.orders.values() if o.state == "kept" or model.left(o) > 0)
    if open_orders < 20 or rng.random() < 0.05:
        new_order(model, rng, n)
    return probe(client, run, model, generate(model, rng))


def check_money(model: Model) -> list[str]:
    """The gateway's records against the model: each order's state and what was refunded of it."""
    problems = []
    states = {AttemptState.AUTHORIZED: "kept", AttemptState.CAPTURED: "captured", AttemptState.VOIDED: "voided",
              AttemptState.DECLINED: "declined"}
    for attempt in Attempt.objects.select_related("session").filter(session__merchant__client_id=CLIENT_ID):
        order = model.orders[attempt.session.oid]
        refunded = sum((op.amount for op in Operation.objects.filter(attempt=attempt, kind="refund",
                                                                         state=OperationState.APPROVED)),
                       Decimal("0.00"))
        if (states.get(attempt.state), refunded) != (order.state, order.refunded):
            problems.append(f"{order.oid}: gateway {attempt.state} refunded {refunded}, model {order.state} "
                            f"refunded {order.refunded}")
    return problems
