"""Pure parts of the gateway, without a database: the state tables, the merchant request checks, the
invoices kept and deferred, the result fields, the merchant's answer, the sealed 3-D Secure data."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tasdid.core.acquiring import CardData
from tasdid.core.signing import natural_key, ver3_hash, ver3_verify
from tasdid.gateway import protocol, vault
from tasdid.gateway.models import (
    ATTEMPT_ORDER,
    ATTEMPT_TERMINAL,
    ATTEMPT_TRANSITIONS,
    SESSION_ORDER,
    SESSION_TRANSITIONS,
    AttemptState,
    SessionState,
)
from tasdid.gateway.protocol import Item, RequestError

from .conftest import SHOP, merchant_fields

HOSTS = ["shop.example.ma"]


# --- the state machine's tables ------------------------------------------------------------------------


def test_every_allowed_attempt_move_goes_forward_but_a_late_approval_voided_again():
    rank = {s: i for i, s in enumerate(ATTEMPT_ORDER)}
    assert set(rank) == set(AttemptState.values)
    backwards = [(source, target) for source, targets in ATTEMPT_TRANSITIONS.items() for target in targets
                 if rank[target] <= rank[source]]
    assert backwards == [(AttemptState.VOIDED, AttemptState.VOIDING)]


def test_every_allowed_session_move_goes_forward():
    rank = {s: i for i, s in enumerate(SESSION_ORDER)}
    assert set(rank) == set(SessionState.values)
    for source, targets in SESSION_TRANSITIONS.items():
        for target in targets:
            assert rank[target] > rank[source], (source, target)


def test_an_approved_authorization_can_only_end_captured_or_voided():
    assert ATTEMPT_TRANSITIONS[AttemptState.AUTHORIZED] == {AttemptState.CAPTURING, AttemptState.VOIDING}
    assert ATTEMPT_TRANSITIONS[AttemptState.CAPTURING] == {AttemptState.CAPTURED}
    assert ATTEMPT_TRANSITIONS[AttemptState.VOIDING] == {AttemptState.VOIDED}
    # an authorization whose answer never came can be reversed, never captured
    assert AttemptState.CAPTURING not in ATTEMPT_TRANSITIONS[AttemptState.AUTHORIZING]
    terminal = {AttemptState.DECLINED, AttemptState.FAILED, AttemptState.CAPTURED, AttemptState.VOIDED}
    assert set(ATTEMPT_TERMINAL) == terminal


def test_a_session_is_paid_at_most_once_and_cancelled_only_while_open():
    assert SESSION_TRANSITIONS[SessionState.OPEN] == {SessionState.PROCESSING, SessionState.EXPIRED,
                                                      SessionState.CANCELLED}
    assert SESSION_TRANSITIONS[SessionState.PROCESSING] == {SessionState.SUCCEEDED, SessionState.FAILED}
    for final in (SessionState.SUCCEEDED, SessionState.FAILED, SessionState.EXPIRED, SessionState.CANCELLED):
        assert SESSION_TRANSITIONS[final] == frozenset()


# --- reading the request -------------------------------------------------------------------------------


def test_collect_fields_refuses_a_field_posted_twice_in_any_case():
    assert protocol.collect_fields([("amount", ["1.00"]), ("oid", ["A"])]) == {"amount": "1.00", "oid": "A"}
    with pytest.raises(RequestError, match="plusieurs fois"):
        protocol.collect_fields([("amount", ["1.00"]), ("AMOUNT", ["2.00"])])
    with pytest.raises(RequestError, match="plusieurs fois"):
        protocol.collect_fields([("amount", ["1.00", "2.00"])])


def test_field_names_are_case_insensitive_and_values_read_without_surrounding_whitespace():
    fields = {"CLIENTID": "600000099", "OKURL": "x", "tranTYPE": "\tauth "}
    assert protocol.field(fields, "clientid") == "600000099"
    assert protocol.field(fields, "okUrl") == "x"
    assert protocol.field(fields, "failUrl") == ""
    assert protocol.tran_type(fields) == "Auth"
    assert protocol.tran_type({"TranType": " PreAuth"}) == "PreAuth"
    assert protocol.tran_type({"TranType": "PostAuth"}) is None and protocol.tran_type({}) is None


@pytest.mark.parametrize("missing", ["clientid", "amount", "currency", "oid", "okUrl", "failUrl", "callbackUrl",
                                     "rnd", "storetype", "TranType", "hashAlgorithm", "hash"])
def test_a_missing_required_field_is_named(missing):
    fields = {**merchant_fields(), "hash": "x"}
    fields.pop(missing)
    with pytest.raises(RequestError) as exc:
        protocol.check_envelope(fields)
    assert exc.value.message == f"Le champ obligatoire « {missing} » est absent de la demande de paiement."


def test_envelope_requires_ver3_and_returns_the_client_id():
    fields = {**merchant_fields(), "hash": "x"}
    assert protocol.check_envelope(fields) == "600000099"
    with pytest.raises(RequestError, match="ver3"):
        protocol.check_envelope({**fields, "hashAlgorithm": "ver2"})


def test_parse_request_reads_a_complete_request():
    request = protocol.parse_request({**merchant_fields(), "hash": "h", "Extra.Field": "kept"}, return_hosts=HOSTS)
    assert request.amount == Decimal("285.00")
    assert request.oid == "ORDER-0001"
    assert protocol.tran_type(request.fields) == "PreAuth"
    assert protocol.field(request.fields, "okUrl") == SHOP + "/shop/ok"
    assert request.session_seconds == 900
    assert request.allow_defer is True
    assert request.items == (Item("0000111995072017", "Facture Fixe juin 2017", Decimal("186.00")),
                             Item("0000111996072017", "Facture Internet juin 2017", Decimal("99.00")))
    assert "hash" not in request.fields
    assert request.fields["Extra.Field"] == "kept"


@pytest.mark.parametrize(("override", "message"), [
    ({"storetype": "3D_PAY"}, "« storetype » doit être « 3D_PAY_HOSTING »"),
    ({"TranType": "PostAuth"}, "« TranType » doit être « PreAuth » ou « Auth »"),
    ({"currency": "978"}, "« currency » doit être 504"),
    ({"amount": "0.00", "itemCount": None}, "« amount » doit être un nombre positif"),
    ({"amount": "-5.00", "itemCount": None}, "« amount » doit être un nombre positif"),
    ({"amount": "12,50", "itemCount": None}, "« amount » doit être un nombre positif"),
    ({"amount": "1.005", "itemCount": None}, "« amount » doit être un nombre positif"),
    ({"amount": "1e3", "itemCount": None}, "« amount » doit être un nombre positif"),
    ({"okUrl": "https://evil.example.com/ok"}, "« okUrl » n'est pas une adresse enregistrée"),
    ({"failUrl": "https://shop.example.ma:8443/fail"}, "« failUrl » n'est pas une adresse enregistrée"),
    ({"callbackUrl": "https://user@shop.example.ma/cb"}, "« callbackUrl » n'est pas une adresse enregistrée"),
    ({"callbackUrl": "javascript:alert(1)"}, "« callbackUrl » n'est pas une adresse enregistrée"),
    ({"shopurl": "https://shop.example.ma.evil.com/"}, "« shopurl » n'est pas une adresse enregistrée"),
    ({"oid": "A B"}, "« oid »"),
    ({"sessionTimeout": "quinze"}, "« sessionTimeout »"),
    ({"sessionTimeout": "59"}, "« sessionTimeout » doit être comprise entre 60 et 3600 secondes"),
    ({"sessionTimeout": "3601"}, "« sessionTimeout » doit être comprise entre 60 et 3600 secondes"),
    ({"sessionTimeout": "0"}, "« sessionTimeout » doit être comprise entre 60 et 3600 secondes"),
    ({"amount": " 100.00", "itemCount": None}, "« amount » doit être un nombre positif"),
    ({"amount": "100.00 ", "itemCount": None}, "« amount » doit être un nombre positif"),
    ({"amount": "100.00\n", "itemCount": None}, "« amount » doit être un nombre positif"),
    ({"amount": "\t100.00", "itemCount": None}, "« amount » doit être un nombre positif"),
    ({"item2Amount": " 99.00"}, "« item2Amount » est invalide"),
    ({"itemCount": "3"}, "« item3Ref » est absent"),
    ({"itemCount": "1"}, "plus de factures que « itemCount »"),
    ({"itemCount": "zero"}, "« itemCount » doit être un nombre"),
    ({"itemCount": None}, "sans « itemCount »"),
    ({"item2Amount": "99,00"}, "« item2Amount » est invalide"),
    ({"item2Amount": "0"}, "« item2Amount » est invalide"),
    ({"item2Amount": "98.00"}, "la somme des factures n'est pas égale au montant"),
    ({"item2Ref": "0000111995072017"}, "la référence 0000111995072017 figure deux fois"),
    ({"item2Ref": "A,B"}, "« item2Ref » est invalide"),
])
def test_parse_request_refusals_say_what_is_wrong(override, message):
    fields = {**merchant_fields(**override), "hash": "h"}
    with pytest.raises(RequestError) as exc:
        protocol.parse_request(fields, return_hosts=HOSTS)
    assert message in exc.value.message


def test_session_timeout_defaults_and_takes_the_bounds_the_docs_state():
    def seconds(value):
        return protocol.parse_request(merchant_fields(sessionTimeout=value), return_hosts=HOSTS).session_seconds
    assert seconds(None) == 15 * 60
    assert seconds("60") == 60
    assert seconds("1800") == 1800
    assert seconds("3600") == 3600
    assert seconds(" 900 ") == 900  # a number of seconds read as the other fields are, whitespace aside


def test_result_fields_come_in_ver3_hash_order_with_the_hash_last():
    outcome = protocol.Outcome(
        proc_return_code="00", err_msg="", auth_code="P12345", trans_id="26101ABCD1234", host_ref_num="612345678901",
        masked_pan="411111******1111", card_brand="VISA", trx_date="20261207 20:00:00", md_status="1", eci="05",
        paid_amount=Decimal("285.00"), paid_items=["0000111995072017", "0000111996072017"], deferred_items=[],
    )
    fields = protocol.result_fields({**merchant_fields(), "hash": "x"}, outcome, store_key="K", callback=True)
    names = list(fields)
    assert names[-1] == "HASH" and "hash" not in names
    assert names[:-1] == sorted(names[:-1], key=natural_key)
    assert names.index("item2Ref") < names.index("itemCount")  # natural order, case-insensitive: "2" < "c"
    assert ver3_hash({k: v for k, v in fields.items() if k != "HASH"}, "K") == fields["HASH"]


def test_a_request_without_bill_extension_pays_the_whole_amount():
    request = protocol.parse_request(merchant_fields(items=[], amount="42.50"), return_hosts=HOSTS)
    assert request.items == ()
    assert request.allow_defer is False
    assert protocol.payable(request.amount, request.items, []) == Decimal("42.50")


def test_shopurl_is_optional_but_checked_when_given():
    protocol.parse_request(merchant_fields(shopurl=None), return_hosts=HOSTS)


@pytest.mark.parametrize(("url", "hosts", "allowed"), [
    ("https://shop.example.ma/ok", ["shop.example.ma"], True),
    ("https://SHOP.example.ma:443/ok", ["shop.example.ma"], True),
    ("http://shop.example.ma/ok", ["shop.example.ma"], True),
    ("https://shop.example.ma:8443/ok", ["shop.example.ma"], False),
    ("http://127.0.0.1:8000/paiement/ok", ["127.0.0.1:8000"], True),
    ("http://127.0.0.1:8001/paiement/ok", ["127.0.0.1:8000"], False),
    ("http://127.0.0.1/paiement/ok", ["127.0.0.1:8000"], False),
    ("http://127.0.0.1:80/x", ["127.0.0.1"], True),
    ("ftp://shop.example.ma/ok", ["shop.example.ma"], False),
    ("https://shop.example.ma@evil.com/ok", ["shop.example.ma"], False),
    ("https://evil.com/?https://shop.example.ma/", ["shop.example.ma"], False),
    ("https://shop.example.ma:99999/ok", ["shop.example.ma"], False),
    ("//shop.example.ma/ok", ["shop.example.ma"], False),
    ("https://shop.example.ma/o k", ["shop.example.ma"], False),
    ("", ["shop.example.ma"], False),
])
def test_url_allowed_by_registered_host_and_port(url, hosts, allowed):
    assert protocol.url_allowed(url, hosts) is allowed


@pytest.mark.parametrize(("entry", "normal"), [
    ("127.0.0.1:8000", "127.0.0.1:8000"), (" Shop.Example.MA ", "shop.example.ma"),
    ("localhost:8000", "localhost:8000"),
])
def test_normalize_host(entry, normal):
    assert protocol.normalize_host(entry) == normal


@pytest.mark.parametrize("entry", ["", "http://shop.example.ma", "shop.example.ma/path", "host:0", "host:70000",
                                   "a b", "shop.example.ma:"])
def test_normalize_host_refuses_what_is_not_a_host(entry):
    with pytest.raises(ValueError):
        protocol.normalize_host(entry)


# --- kept and deferred invoices ------------------------------------------------------------------------

A = Item("A", "Fixe", Decimal("186.00"))
B = Item("B", "Internet", Decimal("99.00"))
C = Item("C", "Mobile", Decimal("0.01"))


def test_payable_is_the_sum_of_the_kept_invoices():
    assert protocol.payable(Decimal("285.01"), [A, B, C], []) == Decimal("285.01")
    assert protocol.payable(Decimal("285.01"), [A, B, C], ["B"]) == Decimal("186.01")
    assert protocol.payable(Decimal("285.01"), [A, B, C], ["A", "C"]) == Decimal("99.00")


def test_defer_keeps_the_merchant_order_and_is_idempotent():
    assert protocol.defer([A, B, C], [], "C", allowed=True) == ["C"]
    assert protocol.defer([A, B, C], ["C"], "A", allowed=True) == ["A", "C"]
    assert protocol.defer([A, B, C], ["A", "C"], "C", allowed=True) == ["A", "C"]


def test_the_last_invoice_cannot_be_deferred():
    with pytest.raises(protocol.DeferError) as exc:
        protocol.defer([A, B], ["A"], "B", allowed=True)
    assert exc.value.message == "Vous devez payer au moins une facture : la dernière ne peut pas être reportée."
    with pytest.raises(protocol.DeferError):
        protocol.defer([A], [], "A", allowed=True)


def test_defer_refused_when_not_allowed_or_unknown():
    with pytest.raises(protocol.DeferError, match="ne permet pas"):
        protocol.defer([A, B], [], "A", allowed=False)
    with pytest.raises(protocol.DeferError, match="ne fait pas partie"):
        protocol.defer([A, B], [], "Z", allowed=True)


def test_restore():
    assert protocol.restore([A, B, C], ["A", "C"], "A") == ["C"]
    assert protocol.restore([A, B, C], ["C"], "A") == ["C"]
    with pytest.raises(protocol.DeferError):
        protocol.restore([A, B], ["A"], "Z")


@given(st.lists(st.integers(min_value=1, max_value=10**7), min_size=1, max_size=8),
       st.lists(st.integers(min_value=0, max_value=7), max_size=12))
def test_defers_never_leave_nothing_to_pay_and_the_sum_always_adds_up(centimes, picks):
    items = [Item(f"R{i}", "", Decimal(c) / 100) for i, c in enumerate(centimes)]
    total = sum((i.amount for i in items), Decimal("0"))
    deferred: list[str] = []
    for pick in picks:
        ref = items[pick % len(items)].ref
        try:
            deferred = protocol.defer(items, deferred, ref, allowed=True)
        except protocol.DeferError:
            assert len(protocol.kept_items(items, deferred)) == 1
        kept = protocol.kept_items(items, deferred)
        assert len(kept) >= 1
        deferred_sum = sum((i.amount for i in items if i.ref in deferred), Decimal("0"))
        assert protocol.payable(total, items, deferred) + deferred_sum == total


# --- results -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "message"), [
    ("00", ""),
    ("51", "Provision insuffisante"),
    ("54", "Carte expirée"),
    ("41", "Carte perdue"),
    ("43", "Carte volée"),
    ("N7", "Code de vérification (CVV) incorrect"),
    ("05", "Transaction refusée par votre banque"),
    ("62", "Carte soumise à restriction"),
    ("91", "Votre banque ne répond pas, veuillez réessayer plus tard"),
    ("Z9", "Transaction refusée par votre banque"),
])
def test_err_msg_in_french_by_response_code(code, message):
    assert protocol.err_msg_for(code) == message


@pytest.mark.parametrize(("code", "word"), [("00", "Approved"), ("51", "Declined"), ("05", "Declined"),
                                            ("91", "Error"), ("99", "Error")])
def test_response_word(code, word):
    assert protocol.response_word(code) == word


@pytest.mark.parametrize(("answer", "parsed"), [
    ("ACTION=POSTAUTH", "POSTAUTH"),
    ("action=postauth\n", "POSTAUTH"),
    ("<html><body>ACTION=POSTAUTH</body></html>", "POSTAUTH"),
    ("APPROVED", "APPROVED"),
    ("Approved", "APPROVED"),
    ("FAILURE", "FAILURE"),
    ("failure: invoice already paid", "FAILURE"),
    ("ACTION=POSTAUTH FAILURE", "FAILURE"),
    ("APPROVED but FAILURE", "FAILURE"),
    ("OK", ""),
    ("POSTAUTH", ""),
    ("<html><title>502 Bad Gateway</title></html>", ""),
    ("", ""),
    (None, ""),
])
def test_callback_answer_parsing(answer, parsed):
    assert protocol.parse_callback_answer(answer) == parsed


@pytest.mark.parametrize(("status", "text", "outcome"), [
    (200, "ACTION=POSTAUTH", "POSTAUTH"), (200, "APPROVED", "APPROVED"), (200, "FAILURE", "FAILURE"),
    # sent, and no usable answer: the merchant may have recorded the payment
    (200, "OK", "AMBIGUOUS"), (200, "", "AMBIGUOUS"), (500, "ACTION=POSTAUTH", "AMBIGUOUS"), (502, "", "AMBIGUOUS"),
    (503, "FAILURE", "AMBIGUOUS"), (408, "", "AMBIGUOUS"), (429, "", "AMBIGUOUS"), (302, "", "AMBIGUOUS"),
    (201, "ACTION=POSTAUTH", "AMBIGUOUS"),
    # refused before any processing: nothing was recorded
    (404, "", "NOT_DELIVERED"), (403, "CSRF", "NOT_DELIVERED"), (405, "", "NOT_DELIVERED"),
    (400, "ACTION=POSTAUTH", "NOT_DELIVERED"),
])
def test_what_a_reply_to_the_callback_says(status, text, outcome):
    assert protocol.callback_outcome(status, text) == outcome


OUTCOME = protocol.Outcome(
    proc_return_code="00", err_msg="", auth_code="A1B2C3", trans_id="26330ABCDEF", host_ref_num="123456789012",
    masked_pan="411111******1111", card_brand="VISA", trx_date="20170705 10:11:12", md_status="1", eci="05",
    paid_amount=Decimal("186.00"), paid_items=["0000111995072017"], deferred_items=["0000111996072017"],
)


def test_result_fields_echo_the_request_and_are_signed_with_the_store_key():
    request = {**merchant_fields(), "Custom": "x|y\\z", "response": "forged by the merchant"}
    fields = protocol.result_fields(request, OUTCOME, store_key="KEY-12345678", callback=True)
    assert fields["Custom"] == "x|y\\z"
    assert "response" not in fields  # ours wins over a posted field of the same name
    assert fields["Response"] == "Approved"
    assert fields["amount"] == "285.00"
    assert fields["paidAmount"] == "186.00"
    assert fields["paidItems"] == "0000111995072017"
    assert fields["deferredItems"] == "0000111996072017"
    assert fields["callbackCall"] == "true"
    assert fields["EXTRA.TRXDATE"] == "20170705 10:11:12"
    assert fields["MaskedPan"] == "411111******1111"
    assert ver3_verify(fields, "KEY-12345678", hash_field="HASH")
    assert not ver3_verify(fields, "OTHER-KEY-123", hash_field="HASH")
    assert fields["HASH"] == ver3_hash({k: v for k, v in fields.items() if k != "HASH"}, "KEY-12345678")


def test_browser_return_fields_have_no_callback_flag():
    fields = protocol.result_fields(merchant_fields(), OUTCOME, store_key="KEY-12345678", callback=False)
    assert "callbackCall" not in fields
    assert ver3_verify(fields, "KEY-12345678", hash_field="HASH")


def test_a_tampered_result_does_not_verify():
    fields = protocol.result_fields(merchant_fields(), OUTCOME, store_key="KEY-12345678", callback=True)
    fields["paidAmount"] = "285.00"
    assert not ver3_verify(fields, "KEY-12345678", hash_field="HASH")


# --- the sealed card data ------------------------------------------------------------------------------

CARD = CardData(pan="4111111111111111", expiry_yymm="2812", cvv="123")


def test_sealed_data_opens_with_the_same_content_and_hides_the_card():
    token = vault.seal(attempt_id=42, threeds_server_trans_id="tx-1", card=CARD)
    assert len(token) <= 1024
    assert "4111111111111111" not in token
    opened = vault.unseal(token)
    assert (opened.attempt_id, opened.threeds_server_trans_id, opened.card) == (42, "tx-1", CARD)


def test_sealed_data_is_refused_when_tampered_expired_or_missing():
    token = vault.seal(attempt_id=42, threeds_server_trans_id="tx-1", card=CARD)
    with pytest.raises(vault.VaultError):
        vault.unseal(token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"))
    with pytest.raises(vault.VaultError):
        vault.unseal(token, ttl=-1)
    for junk in ("", "x" * 2000, "not a token", "gAAAAA"):
        with pytest.raises(vault.VaultError):
            vault.unseal(junk)


def test_sealed_data_depends_on_the_vault_key(settings):
    token = vault.seal(attempt_id=1, threeds_server_trans_id="tx", card=CARD)
    settings.TASDID_KEYS = {**settings.TASDID_KEYS, "vault": "another-vault-key"}
    with pytest.raises(vault.VaultError):
        vault.unseal(token)


def test_card_data_repr_never_shows_the_number_or_cvv():
    assert repr(CARD) == "CardData(pan='411111******1111', expiry_yymm='2812')"


@pytest.mark.parametrize("pairs", [[("BillToName", ["a\x00b"])], [("Bill\x00ToName", ["a"])], [("oid", ["\x00"])]])
def test_a_nul_character_is_refused_before_anything_is_stored(pairs):
    # no form posts one, and PostgreSQL cannot store one (a server error before this check)
    with pytest.raises(RequestError) as exc:
        protocol.collect_fields(pairs)
    assert "contient un caractère nul" in exc.value.message
