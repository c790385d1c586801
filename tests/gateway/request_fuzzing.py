"""Fuzzing the payment request endpoint (``POST /fim/est3Dgate``): generated requests, each knowing whether the
gateway must accept it, and a probe that posts one and classifies what the gateway did. Shared by the short
Hypothesis test (test_request_fuzz.py) and the long run (bench/request_fuzz.py).

A case is valid only when built valid and changed, if at all, in ways the protocol ignores (a field name's case,
the fields' order, the ``encoding`` field, which the hash does not cover). Every other change is invalid by
construction: a value changed after signing, a field dropped, added or posted twice, a wrong key, a field outside
its rules signed correctly, bytes that are not UTF-8, an oversized field, junk. The gateway must accept exactly the
valid ones, open a session for the amount signed, refuse the others with a page and write nothing, and never
answer with a server error."""

import random
import re
import string
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import quote_plus, urlsplit

from django.test import Client

from tasdid.core.signing import ver3_hash
from tasdid.gateway import protocol, services
from tasdid.gateway.models import PaymentSession

CLIENT_ID, INACTIVE_ID, UNKNOWN_ID = "600000077", "600000078", "600000079"
STORE_KEY = "FUZZ-STORE-KEY-0001"
HOST = "shop.example.ma"
ENDPOINT = "/fim/est3Dgate"

_TEXT_POOL = (string.ascii_letters + string.digits + " |\\&;#<>\"'%+=.,:/-_?" + "éèçàÉ" + "مرحبا بكم في تسديد"
              + "٠١٢٣٤٥٦٧٨٩" + "\n\t\r\x7f" + "\u200f\u00a0" + "😀")
_NAME_POOL = string.ascii_letters + string.digits + "_.-"
_OID_POOL = string.ascii_letters + string.digits + "._:/-"

INVALID_AMOUNTS = ["0", "0.00", "-1.00", "1.005", "12,50", "1e3", "abc", " 100.00", "100.00 ", "100.00\n",
                   "\t1.00", "١٠٠.٠٠", "1.0.0", "+1.00", "99999999999.00", "0x10", "NaN", "Infinity", "1_000.00",
                   "100.", ".50", "1 000.00"]
INVALID_VALUES = {
    "currency": ["978", "5040", "MAD", "504 x", "0504", "٥٠٤"],
    "storetype": ["3D_PAY", "3D", "PAY_HOSTING", "3D_PAY_HOSTINGX", "3D PAY HOSTING"],
    "TranType": ["PostAuth", "Sale", "Void", "Credit", "Pre Auth"],
    "hashAlgorithm": ["ver2", "sha512", "ver33", "VER 3"],
    "oid": ["A B", "x" * 65, "é", "a;b", "a\nb", "<script>", "a&b"],
    "sessionTimeout": ["59", "0", "3601", "999999", "-5", "abc", "60.5", "1e3", "²", "٩٠٠", "1234567"],
}
INVALID_URLS = ["https://evil.example.com/ok", "https://shop.example.ma.evil.com/", "javascript:alert(1)",
                "https://user:pw@shop.example.ma/", "https://shop.example.ma:8443/", "ftp://shop.example.ma/",
                "//shop.example.ma/x", "https://shop.example.ma/a b", "https://[::1]/", "https://shop.example.ma:99999/",
                "https://shop.example.ma/\x00", "data:text/html,x", "http://127.0.0.1/"]
KNOWN = {n.lower() for n in (*protocol.REQUIRED_FIELDS, "shopurl", "lang", "sessionTimeout", "BillToName", "email",
                             "tel", "encoding", "AutoRedirect", "itemCount", "allowDefer")}


def setup_merchants() -> None:
    """The merchants the cases use: one active (host shop.example.ma), one inactive, with the same key."""
    services.merchant_register(client_id=CLIENT_ID, name="Boutique fuzz", return_hosts=[HOST], store_key=STORE_KEY)
    services.merchant_register(client_id=INACTIVE_ID, name="Boutique fermée", return_hosts=[HOST],
                               store_key=STORE_KEY, active=False)


@dataclass
class Case:
    kind: str
    pairs: list[tuple[str, str]]  # as posted, in order (duplicates allowed)
    valid: bool
    amount: Decimal | None = None  # the amount a valid case's session must have
    oid: str = ""
    raw: bytes | None = None  # a body given as bytes (non-UTF-8, junk): posted as is
    session_seconds: int = 900

    def body(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in self.pairs).encode("utf-8")


def text(rng: random.Random, low: int = 0, high: int = 30) -> str:
    return "".join(rng.choice(_TEXT_POOL) for _ in range(rng.randint(low, high)))


def _amount_text(cents: int, rng: random.Random) -> str:
    whole, part = divmod(cents, 100)
    if part == 0 and rng.random() < 0.2:
        return str(whole)
    return f"{whole}.{part:02d}"


def _url(rng: random.Random, path: str) -> str:
    scheme = rng.choice(["https", "https", "http"])
    host = rng.choice([HOST, HOST.upper(), f"{HOST}:{443 if scheme == 'https' else 80}"])
    query = f"?o={rng.randint(0, 10**6)}" if rng.random() < 0.3 else ""
    return f"{scheme}://{host}/{path}{query}"


def valid_fields(rng: random.Random, n: int) -> tuple[dict[str, str], Decimal, int]:
    """A valid unsigned request for a new order (``n`` makes its oid unique), its amount and its session time."""
    oid = f"F{n}-" + "".join(rng.choice(_OID_POOL) for _ in range(rng.randint(0, 20)))
    fields: dict[str, str] = {"clientid": CLIENT_ID, "oid": oid}
    if rng.random() < 0.5:
        count = rng.randint(1, 5)
        cents = [rng.randint(1, 500_000) for _ in range(count)]
        total = sum(cents)
        fields["itemCount"] = str(count)
        for i, c in enumerate(cents, start=1):
            fields[f"item{i}Ref"] = f"{rng.randint(0, 10**16 - 1):016d}" + str(i)
            fields[f"item{i}Label"] = text(rng)
            fields[f"item{i}Amount"] = _amount_text(c, rng)
        if rng.random() < 0.5:
            fields["allowDefer"] = rng.choice(["true", "false", "TRUE"])
    else:
        total = rng.randint(1, 10**8)
    fields.update({
        "amount": _amount_text(total, rng), "currency": "504",
        "okUrl": _url(rng, "ok"), "failUrl": _url(rng, "fail"), "callbackUrl": _url(rng, "cb"),
        "rnd": str(rng.randint(0, 10**12)), "storetype": rng.choice(["3D_PAY_HOSTING", "3d_pay_hosting"]),
        "TranType": rng.choice(["PreAuth", "Auth", "preauth", "AUTH"]),
        "hashAlgorithm": rng.choice(["ver3", "VER3"]),
    })
    seconds = 900
    if rng.random() < 0.7:
        seconds = rng.choice([900, 1800, 3600, rng.randint(60, 3600)])
        fields["sessionTimeout"] = str(seconds)
    optional = {"shopurl": lambda: _url(rng, "cart"), "lang": lambda: rng.choice(["fr", "ar", "en", "AR", "de", ""]),
                "BillToName": lambda: text(rng), "email": lambda: text(rng, 0, 12), "tel": lambda: text(rng, 0, 12),
                "encoding": lambda: rng.choice(["UTF-8", "utf-8", "ISO-8859-1", text(rng, 0, 5)]),
                "AutoRedirect": lambda: rng.choice(["true", "false"])}
    for name, make in optional.items():
        if rng.random() < 0.6:
            fields[name] = make()
    for _ in range(rng.choice([0, 0, 1, 3])):
        fields["x_" + "".join(rng.choice(_NAME_POOL) for _ in range(rng.randint(1, 20)))] = text(rng)
    names = list(fields)
    rng.shuffle(names)
    return {k: fields[k] for k in names}, Decimal(fields["amount"]).quantize(Decimal("0.01")), seconds


def _signed(fields: dict[str, str], key: str = STORE_KEY) -> list[tuple[str, str]]:
    pairs = list(fields.items())
    pairs.insert(random.Random(len(pairs)).randint(0, len(pairs)), ("hash", ver3_hash(fields, key)))
    return pairs


def _hashed_names(pairs: list[tuple[str, str]]) -> list[int]:
    return [i for i, (k, _v) in enumerate(pairs) if k.lower() != "encoding"]


def _different(rng: random.Random, value: str) -> str:
    while True:
        new = rng.choice([value + rng.choice(_TEXT_POOL), value[:-1], text(rng, 0, 10), value.upper(),
                          value.replace(".", ","), value + "0"])
        if new != value:
            return new


def generate(rng: random.Random, n: int) -> Case:
    """One case, its kind drawn at random; ``n`` makes a valid case's order id unique."""
    fields, amount, seconds = valid_fields(rng, n)
    oid = fields["oid"]
    roll = rng.random()

    def ok(kind: str, pairs: list[tuple[str, str]]) -> Case:
        return Case(kind, pairs, True, amount, oid, session_seconds=seconds)

    def bad(kind: str, pairs: list[tuple[str, str]], raw: bytes | None = None) -> Case:
        return Case(kind, pairs, False, None, oid, raw=raw)

    if roll < 0.22:
        return ok("valid", _signed(fields))
    if roll < 0.30:  # changes the protocol ignores
        pairs = _signed(fields)
        how = rng.randrange(4)
        if how == 0:
            i = rng.randrange(len(pairs))
            name, value = pairs[i]
            pairs[i] = (rng.choice([name.upper(), name.lower(), name.swapcase()]), value)
            return ok("valid: a name's case changed", pairs)
        if how == 1:
            rng.shuffle(pairs)
            return ok("valid: fields reordered", pairs)
        pairs = [(k, v) for k, v in pairs if k.lower() != "encoding"]
        if how == 2:
            return ok("valid: encoding dropped", pairs)
        pairs.append((rng.choice(["encoding", "ENCODING"]), text(rng, 0, 10)))
        return ok("valid: encoding changed", pairs)
    if roll < 0.40:  # a hashed value changed after signing
        pairs = _signed(fields)
        i = rng.choice(_hashed_names(pairs))
        pairs[i] = (pairs[i][0], _different(rng, pairs[i][1]))
        return bad(f"tampered: {pairs[i][0] if pairs[i][0].lower() in KNOWN | {'hash'} else 'other'}", pairs)
    if roll < 0.46:  # a field dropped, or one added, after signing
        pairs = _signed(fields)
        if rng.random() < 0.5:
            i = rng.choice(_hashed_names(pairs))
            name = pairs.pop(i)[0]
            return bad(f"dropped: {name if name.lower() in KNOWN | {'hash'} else 'other'}", pairs)
        pairs.insert(rng.randint(0, len(pairs)), (rng.choice(["x_added", "BillToCompany", "item9Ref", "Lang2"]),
                                                  text(rng)))
        return bad("added after signing", pairs)
    if roll < 0.50:  # a field posted twice
        pairs = _signed(fields)
        name, value = rng.choice(pairs)
        twin = rng.choice([name, name.upper(), name.lower()])
        pairs.insert(rng.randint(0, len(pairs)), (twin, rng.choice([value, text(rng)])))
        return bad("duplicated", pairs)
    if roll < 0.54:  # the hash itself
        unsigned = list(fields.items())
        good = ver3_hash(fields, STORE_KEY)
        wrong = rng.choice([ver3_hash(fields, STORE_KEY + "x"), ver3_hash(fields, ""), good[:-2], good.lower(),
                            good[::-1], "", " ", text(rng, 1, 20), good.replace("+", "-").replace("/", "_")])
        if wrong == good:
            wrong = good[1:]
        if rng.random() < 0.2:
            return bad("hash missing", unsigned)
        return bad("hash wrong", [*unsigned, (rng.choice(["hash", "HASH"]), wrong)])
    if roll < 0.78:  # a field outside its rules, signed correctly
        return bad(*_invalid_signed(rng, fields))
    if roll < 0.84:  # bytes that are not UTF-8 in a hashed value (decoded as U+FFFD, the hash fails)
        pairs = _signed(fields)
        i = rng.choice(_hashed_names(pairs))
        body = "&".join(f"{quote_plus(k)}={quote_plus(v)}" + (rng.choice(["%FF", "%C3%28", "%80", "%ED%A0%80"])
                                                               if j == i else "") for j, (k, v) in enumerate(pairs))
        return bad("not UTF-8", pairs, body.encode("ascii"))
    if roll < 0.88:  # oversized
        pairs = _signed(fields)
        if rng.random() < 0.5:
            big = {**fields, "BillToName": "x" * rng.randint(protocol.MAX_FIELD_LENGTH + 1, 5000)}
            return bad("value too long", _signed(big))
        big = {**fields, "x" + "y" * rng.randint(64, 200): "v"}
        return bad("name too long", _signed(big))
    # junk
    if rng.random() < 0.5:
        return bad("junk bytes", [], bytes(rng.randrange(256) for _ in range(rng.randint(0, 600))))
    pairs = [("".join(rng.choice(_NAME_POOL) for _ in range(rng.randint(1, 12))), text(rng))
             for _ in range(rng.randint(0, 25))]
    return bad("junk fields", pairs)


def _invalid_signed(rng: random.Random, fields: dict[str, str]) -> tuple[str, list[tuple[str, str]]]:
    """A request with one thing outside the protocol's rules, hashed correctly with the store key."""
    f = dict(fields)
    what = rng.randrange(9)
    if what == 0:
        f["amount"] = rng.choice(INVALID_AMOUNTS)
        kind = "amount"
    elif what == 1:
        name = rng.choice(list(INVALID_VALUES))
        f[name] = rng.choice(INVALID_VALUES[name])
        kind = name
    elif what == 2:
        name = rng.choice(["okUrl", "failUrl", "callbackUrl", "shopurl"])
        f[name] = rng.choice(INVALID_URLS)
        kind = "url"
    elif what == 3:
        f["clientid"] = rng.choice([UNKNOWN_ID, INACTIVE_ID, "", "6000000770"])
        kind = "clientid"
    elif what == 4:
        name = rng.choice([n for n in protocol.REQUIRED_FIELDS if n != "hash"])
        f = {k: v for k, v in f.items() if k.lower() != name.lower()}
        if rng.random() < 0.3:
            f[name] = rng.choice(["", " ", "\t"])
        kind = "required missing"
    elif what == 5 and "itemCount" in f:
        count = int(f["itemCount"])
        change = rng.randrange(6)
        if change == 0:
            f["itemCount"] = rng.choice(["0", "100", str(count + 1), "abc", "", "-1", "٢"])
            if f["itemCount"] == "":
                del f["itemCount"]  # items listed without a count
        elif change == 1:
            f[f"item{rng.randint(1, count)}Amount"] = rng.choice(INVALID_AMOUNTS)
        elif change == 2 and count > 1:
            f["item2Ref"] = f["item1Ref"]
        elif change == 3:
            f[f"item{rng.randint(1, count)}Ref"] = rng.choice(["A,B", "", "x" * 65, "a\x01b"])
        elif change == 4:
            f[f"item{count + rng.randint(1, 3)}Ref"] = "0000111995072017"
        else:
            f["amount"] = _amount_text(int(Decimal(f["amount"]) * 100) + rng.choice([1, -1, 100]), rng)
            if f["amount"] in ("0", "0.00"):
                f["amount"] = "0.01" if Decimal(fields["amount"]) != Decimal("0.01") else "0.02"
        kind = "items"
    elif what == 5:
        f[f"item{rng.randint(1, 3)}Ref"] = "0000111995072017"  # an item without itemCount
        kind = "items"
    elif what == 6 and rng.random() < 0.5:
        f["BillToName"] = "x" * (protocol.MAX_FIELD_LENGTH + rng.randint(1, 100))
        kind = "too long"
    elif what == 6:  # a NUL character in a value or a name
        name = rng.choice(list(f))
        if rng.random() < 0.7:
            f[name] = rng.choice(["\x00", f[name] + "\x00", "\x00" + f[name]])
        else:
            f[name + "\x00"] = f.pop(name)
        kind = "NUL character"
    elif what == 7:
        f["sessionTimeout"] = rng.choice(INVALID_VALUES["sessionTimeout"])
        kind = "sessionTimeout"
    else:
        f["amount"] = rng.choice(["0.00", " " + f["amount"], f["amount"] + " ", f["amount"] + "\r\n"])
        kind = "amount"
    return f"signed, invalid: {kind}", _signed(f)


# --- the probe ------------------------------------------------------------------------------------------


class Outcome:
    ACCEPTED = "accepted"
    REFUSED = "refused"
    SERVER_ERROR = "server error"
    WRONG_ACCEPT = "wrong accept"  # an invalid request opened (or continued) a session, or for another amount
    WRONG_REFUSAL = "wrong refusal"  # a valid request refused
    UNCLEAR_REFUSAL = "refusal without a page"  # refused, but without the refusal page


_TOKEN = re.compile(r"^/paiement/([\w-]+)$")


_HANDLERS: list = []


def gateway_client() -> Client:
    """A browser of its own (its own cookies) on the gateway; the clients share one request handler, so that
    the middleware (and the static files' index) loads once, not once per browser."""
    client = Client(raise_request_exception=False, **{"tasdid.party": "gateway"})
    if _HANDLERS:
        client.handler = _HANDLERS[0]
    else:
        _HANDLERS.append(client.handler)
    return client


def post(client: Client, case: Case):
    return client.generic("POST", ENDPOINT, case.body(), content_type="application/x-www-form-urlencoded")


def classify(response, case: Case, *, expect_accept: bool, token: str | None = None) -> tuple[str, str | None]:
    """What the gateway did with ``case`` (and the session's token when it opened one)."""
    if response.status_code >= 500:
        return Outcome.SERVER_ERROR, None
    location = response.get("Location", "") if response.status_code == 303 else ""
    match = _TOKEN.match(urlsplit(location).path) if location else None
    if match:
        session = PaymentSession.objects.filter(token=match.group(1)).first()
        right = (expect_accept and session is not None and session.oid == case.oid and session.amount == case.amount
                 and (token is None or token == match.group(1)))
        return (Outcome.ACCEPTED if right else Outcome.WRONG_ACCEPT), match.group(1)
    if expect_accept:
        return Outcome.WRONG_REFUSAL, None
    body = response.content.decode("utf-8", "replace")
    if response.status_code in (400, 405, 409, 413) and ('id="refusal"' in body or "Cette commande" in body):
        return Outcome.REFUSED, None
    return Outcome.UNCLEAR_REFUSAL, None


@dataclass
class Run:
    """A fuzz run's tally; ``sessions`` counts the sessions valid cases opened (nothing else may open one)."""

    counts: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    sessions: int = 0
    open_orders: list[tuple[Case, Client, str]] = field(default_factory=list)  # for replays

    def tally(self, outcome: str, case: Case, detail: str = "") -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        self.kinds[case.kind] = self.kinds.get(case.kind, 0) + 1
        if outcome not in (Outcome.ACCEPTED, Outcome.REFUSED) and len(self.failures) < 50:
            self.failures.append(f"{outcome}: {case.kind} {detail} {case.body()[:600]!r}")

    @property
    def requests(self) -> int:
        return sum(self.counts.values())

    @property
    def bad(self) -> int:
        return sum(v for k, v in self.counts.items() if k not in (Outcome.ACCEPTED, Outcome.REFUSED))


def step(run: Run, rng: random.Random, n: int, *, client: Client) -> None:
    """One generated request posted (or, now and then, a replay of an order opened earlier), tallied."""
    if run.open_orders and rng.random() < 0.06:
        case, owner, token = rng.choice(run.open_orders)
        if rng.random() < 0.5:  # the same signed request from another browser: refused, the session stays
            response = post(gateway_client(), case)
            replay = Case("replay from another browser", case.pairs, False, case.amount, case.oid, case.raw)
            outcome, _ = classify(response, replay, expect_accept=False)
            run.tally(outcome, replay, f"status {response.status_code}")
        else:  # from the browser that opened it: the same session continues
            response = post(owner, case)
            again = Case("repost from the same browser", case.pairs, True, case.amount, case.oid, case.raw)
            outcome, _ = classify(response, again, expect_accept=True, token=token)
            run.tally(outcome, again, f"status {response.status_code}")
        return
    case = generate(rng, n)
    browser = gateway_client() if case.valid else client
    response = post(browser, case)
    outcome, token = classify(response, case, expect_accept=case.valid)
    run.tally(outcome, case, f"status {response.status_code}")
    if outcome == Outcome.ACCEPTED:
        run.sessions += 1
        if case.session_seconds >= 900:
            run.open_orders.append((case, browser, token))
            del run.open_orders[:-50]
