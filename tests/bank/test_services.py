"""The bank's services on a real database: authorizations and holds, capture and void, the ACS's challenge."""

import datetime as dt
import itertools
import re
from decimal import Decimal

import pytest
from django.utils import timezone

from tasdid.bank import acs, sandbox, selectors, services
from tasdid.bank.models import (
    Account,
    AcsEvent,
    AcsTransaction,
    Authorization,
    Bank,
    Card,
    Hold,
    HoldEvent,
    LedgerEntry,
    MessageKey,
)
from tasdid.core.cards import fingerprint
from tasdid.messaging.models import Sms
from tests.support.sms import code_in

from .conftest import areq_message

pytestmark = pytest.mark.django_db

_stans = itertools.count(1)
MAIN = sandbox.card_by_outcome("00", "challenge")  # MasterCard, Crédit du Sahel, 3-D Secure challenge
VISA = sandbox.card_by_outcome("00", "none")
FRICTIONLESS = sandbox.card_by_outcome("00", "frictionless")
POOR = sandbox.card_by_outcome("51")
GW = "https://gw.example.ma"


def authorize(card, *, amount_minor=28500, stan=None, cvv=None, expiry=None, merchant="600000001", when=None,
              currency="504", pan=None, **extra):
    month, year = (expiry or card.expiry).split("/")
    return services.authorize(
        pan=pan or card.number, expiry_yymm=year + month, cvv=card.cvv if cvv is None else cvv,
        amount_minor=amount_minor, currency=currency, merchant_id=merchant, merchant_name="Tasdid Télécom",
        order_id="ORDER-1", stan=stan or f"{next(_stans):06d}", transmitted_at=when or timezone.now(), **extra,
    )


def account_of(card) -> Account:
    return Card.objects.get(fingerprint=fingerprint(card.number)).account


def available(card) -> Decimal:
    account = account_of(card)
    return selectors.account_available(account_id=account.pk, balance=account.balance)


def capture(outcome, *, amount_minor=28500, merchant="600000001", currency="504"):
    hold = Hold.objects.get(rrn=outcome.rrn)
    return services.hold_capture(merchant_id=merchant, rrn=outcome.rrn, original_stan=hold.stan,
                                 original_transmitted_at=hold.transmitted_at, amount_minor=amount_minor,
                                 currency=currency)


def void(outcome, *, merchant="600000001"):
    hold = Hold.objects.get(rrn=outcome.rrn)
    return services.hold_void(merchant_id=merchant, rrn=outcome.rrn, original_stan=hold.stan,
                              original_transmitted_at=hold.transmitted_at)


# --- demo data ------------------------------------------------------------------------------------------------


def test_seed_demo_creates_two_banks_and_every_sandbox_card_once(banks):
    from tasdid.bank.demo import seed_demo

    assert seed_demo() == {"banks": 2, "cards": len(sandbox.CARDS), "created": 0}
    atlas, sahel = Bank.objects.get(code="atlas"), Bank.objects.get(code="sahel")
    assert (atlas.name, atlas.short_name, atlas.bin_prefixes) == ("Banque Atlas", "BanqueAtlas", ["400011", "606101"])
    assert (sahel.name, sahel.short_name, sahel.logo) == ("Crédit du Sahel", "CreditSahel", "bank/logos/sahel.svg")
    main = Card.objects.get(fingerprint=fingerprint(MAIN.number))
    assert (main.bank, main.brand, main.masked_pan, main.last4) == (sahel, "MASTERCARD", "522011******0026", "0026")
    assert (main.phone, main.expiry_month, main.expiry_year, main.three_ds) == ("+212662000002", 12, 2028, "challenge")
    assert main.account.balance == Decimal("10000.00")
    assert list(main.account.entries.values_list("kind", "amount")) == [("credit", Decimal("10000.00"))]
    expired = Card.objects.get(fingerprint=fingerprint(sandbox.card_by_outcome("54").number))
    assert (expired.expiry_month, expired.expiry_year) == (3, 2025)


def test_card_issue_refuses_a_number_outside_the_banks_bins(banks):
    account = account_of(VISA)
    cards = Card.objects.count()
    with pytest.raises(ValueError, match="BIN"):
        services.card_issue(account_id=account.pk, pan="5220110000000026", expiry="12/28", cvv="123",
                            holder_name="X", phone="0662000099")
    with pytest.raises(ValueError, match="CVV"):
        services.card_issue(account_id=account.pk, pan="4000110000000090", expiry="12/28", cvv="12",
                            holder_name="X", phone="0662000099")
    assert Card.objects.count() == cards


# --- authorization ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("card", [c for c in sandbox.CARDS if c.three_d_secure == "none"], ids=lambda c: c.outcome)
def test_each_sandbox_card_without_3ds_gets_its_documented_answer(banks, card):
    outcome = authorize(card)
    assert outcome.response_code == card.response_code
    row = Authorization.objects.get()
    assert (row.response_code, row.masked_pan, row.amount) == (card.response_code, card.number[:6] + "******"
                                                                + card.number[-4:], Decimal("285.00"))
    assert Hold.objects.count() == (1 if card.response_code == "00" else 0)


def test_an_approval_places_a_hold_and_records_the_authorization(banks):
    before = available(VISA)
    when = timezone.now()
    outcome = authorize(VISA, stan="000777", when=when, eci="07", trans_status="U")
    assert outcome.approved and re.fullmatch(r"\d{6}", outcome.auth_code) and re.fullmatch(r"\d{12}", outcome.rrn)
    assert available(VISA) == before - Decimal("285.00")
    assert account_of(VISA).balance == before  # nothing debited before the capture
    row = Authorization.objects.get()
    assert (row.response_code, row.reason, row.eci, row.auth_code, row.rrn, row.stan) == (
        "00", "approved", "07", outcome.auth_code, outcome.rrn, "000777")
    assert row.transmitted_at == when.replace(microsecond=0)
    hold = Hold.objects.get()
    assert (hold.amount, hold.state, hold.auth_code, hold.rrn, hold.merchant_id, hold.merchant_name) == (
        Decimal("285.00"), "held", outcome.auth_code, outcome.rrn, "600000001", "Tasdid Télécom")
    assert list(hold.events.values_list("from_state", "to_state")) == [("", "held")]


@pytest.mark.parametrize(
    ("change", "code"),
    [({"cvv": "000"}, "N7"), ({"expiry": "10/29"}, "54"), ({"amount_minor": 0}, "13"), ({"amount_minor": -5}, "13"),
     ({"amount_minor": 10**15}, "13"), ({"currency": "978"}, "57"), ({"pan": sandbox.UNKNOWN_NUMBER}, "14"),
     ({"pan": "not a number"}, "14"), ({"expiry": "13/29"}, "54"), ({"amount_minor": 500001}, "51")],
)
def test_a_decline_changes_no_balance_and_places_no_hold(banks, change, code):
    before = available(VISA)
    outcome = authorize(VISA, **change)
    assert (outcome.response_code, outcome.auth_code, outcome.rrn) == (code, "", "")
    assert Hold.objects.count() == 0
    assert available(VISA) == before
    assert Authorization.objects.get().response_code == code


@pytest.mark.parametrize(("stan", "merchant"), [("12345", "600000001"), ("1234567", "600000001"), ("abcdef", "6"),
                                               ("000001", ""), ("000001", "6" * 33), ("٠٠٠٠٠١", "600000001")])
def test_a_message_without_a_usable_key_is_a_format_error_and_writes_nothing(banks, stan, merchant):
    outcome = authorize(VISA, stan=stan, merchant=merchant)
    assert (outcome.response_code, outcome.rrn) == ("30", "")
    assert Authorization.objects.count() == 0 and Hold.objects.count() == 0
    assert MessageKey.objects.count() == 0


def test_an_unknown_card_is_recorded_masked_without_a_card(banks):
    authorize(VISA, pan=sandbox.UNKNOWN_NUMBER)
    row = Authorization.objects.get()
    assert (row.card, row.masked_pan, row.response_code, row.reason) == (
        None, "400011******9998", "14", "unknown card number")


def test_a_number_or_cvv_in_other_digits_is_not_a_card_of_ours(banks):
    arabic = VISA.number.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    assert authorize(VISA, pan=arabic).response_code == "14"
    assert authorize(VISA, cvv=VISA.cvv.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))).response_code == "N7"
    assert Hold.objects.count() == 0
    assert list(Authorization.objects.values_list("masked_pan", flat=True)) == ["", "400011******0017"]


def test_an_enrolled_card_without_authentication_is_not_honoured(banks):
    assert authorize(MAIN).response_code == "05"
    assert authorize(FRICTIONLESS).response_code == "05"
    assert authorize(MAIN, eci="00", trans_status="U").response_code == "05"
    assert Hold.objects.count() == 0


def test_a_resent_authorization_gets_the_first_answer_and_changes_nothing(banks):
    when = timezone.now()
    first = authorize(VISA, stan="000100", when=when)
    again = authorize(VISA, stan="000100", when=when + dt.timedelta(microseconds=5))
    assert again == first
    assert Hold.objects.count() == 1
    assert Authorization.objects.filter(duplicate_of__isnull=False).count() == 1
    other = authorize(VISA, stan="000100", when=when, amount_minor=100)
    assert (other.response_code, other.rrn) == ("94", "")
    assert Hold.objects.count() == 1
    # The same STAN from another merchant is another message.
    assert authorize(VISA, stan="000100", when=when, merchant="600000002").approved


def test_balance_is_spent_by_holds_until_none_is_left(banks):
    assert available(POOR) == Decimal("50.00")
    assert authorize(POOR, amount_minor=3000).approved
    assert authorize(POOR, amount_minor=2001).response_code == "51"
    assert authorize(POOR, amount_minor=2000).approved
    assert available(POOR) == Decimal("0.00")


def ask(card, *, amount_minor=28500, stan=None, when=None, merchant="600000001", cvv=None, pan=None):
    month, year = card.expiry.split("/")
    return services.authorization.AuthorizationAsk(
        pan=pan or card.number, expiry_yymm=year + month, cvv=card.cvv if cvv is None else cvv,
        amount_minor=amount_minor, currency="504", merchant_id=merchant, merchant_name="Tasdid Télécom",
        order_id="ORDER-1", stan=stan or f"{next(_stans):06d}", transmitted_at=when or timezone.now())


def test_a_batch_answers_each_request_as_alone_after_those_before_it(banks):
    """Group commit (the issuer host's): one transaction, and each request decided in order as if alone."""
    when = timezone.now()
    services.hold_void(merchant_id="600000001", original_stan="007007", original_transmitted_at=when)
    asks = [
        ask(POOR, amount_minor=3000),  # 00: 50.00 available
        ask(POOR, amount_minor=2001),  # 51: 20.00 left after the first
        ask(VISA, stan="005005", when=when),  # 00
        ask(VISA, stan="005005", when=when),  # the same message again in the batch: the first answer repeated
        ask(VISA, stan="005005", when=when, amount_minor=100),  # another message under that key: 94
        ask(VISA, stan="007007", when=when),  # reversed before it arrived: 12
        ask(VISA, stan="12345"),  # no usable key: 30, nothing written
        ask(VISA, cvv="000"),  # N7
        ask(VISA, pan=sandbox.UNKNOWN_NUMBER),  # 14
        ask(POOR, amount_minor=2000),  # 00: exactly what is left
    ]
    outcomes = services.authorization.authorize_many(asks)
    assert [o.response_code for o in outcomes] == ["00", "51", "00", "00", "94", "12", "30", "N7", "14", "00"]
    assert (outcomes[3].rrn, outcomes[3].auth_code) == (outcomes[2].rrn, outcomes[2].auth_code)
    approved = [o for o in outcomes if o.response_code == "00"]
    assert len({o.rrn for o in approved}) == 3
    holds = Hold.objects.order_by("pk")
    assert [(h.rrn, h.auth_code, h.amount, h.state) for h in holds] == [
        (outcomes[0].rrn, outcomes[0].auth_code, Decimal("30.00"), "held"),
        (outcomes[2].rrn, outcomes[2].auth_code, Decimal("285.00"), "held"),
        (outcomes[9].rrn, outcomes[9].auth_code, Decimal("20.00"), "held")]
    assert all(h.events.get().to_state == "held" for h in holds)
    assert available(POOR) == Decimal("0.00")
    rows = Authorization.objects.order_by("pk")
    assert [r.response_code for r in rows] == ["00", "51", "00", "00", "94", "12", "N7", "14", "00"]
    assert rows[3].duplicate_of_id == rows[4].duplicate_of_id == rows[2].pk


def test_a_batch_is_one_transaction(banks, monkeypatch):
    """A fault anywhere in the batch: nothing of it is written (the issuer host then decides each alone)."""
    real = services.authorization.rules.decide
    calls = []

    def fails_on_the_third(snapshot):
        calls.append(snapshot)
        if len(calls) == 3:
            raise RuntimeError("broken on purpose")
        return real(snapshot)

    monkeypatch.setattr(services.authorization.rules, "decide", fails_on_the_third)
    with pytest.raises(RuntimeError):
        services.authorization.authorize_many([ask(VISA, amount_minor=100 + i) for i in range(4)])
    assert not Authorization.objects.exists() and not Hold.objects.exists()
    assert not MessageKey.objects.exists()


# --- capture and void -------------------------------------------------------------------------------------------


def test_capture_debits_the_account_once(banks):
    outcome = authorize(VISA)
    balance = account_of(VISA).balance
    assert capture(outcome).response_code == "00"
    assert capture(outcome) == services.SettlementOutcome("00", "already captured")
    account = account_of(VISA)
    assert account.balance == balance - Decimal("285.00")
    assert available(VISA) == account.balance
    debit = LedgerEntry.objects.get(kind="debit")
    assert (debit.account, debit.amount, debit.balance_after, debit.hold.rrn) == (
        account, Decimal("285.00"), account.balance, outcome.rrn)
    assert "Tasdid Télécom" in debit.label and outcome.auth_code in debit.label
    assert list(Hold.objects.get().events.values_list("to_state", flat=True)) == ["held", "captured"]


def test_capture_above_the_hold_or_of_nothing_or_another_currency_changes_nothing(banks):
    outcome = authorize(VISA)
    balance = account_of(VISA).balance
    assert capture(outcome, amount_minor=0).response_code == "13"
    assert capture(outcome, amount_minor=28600).response_code == "13"
    assert capture(outcome, currency="978").response_code == "12"
    assert capture(outcome, merchant="600000002").response_code == "12"
    assert services.hold_capture(merchant_id="600000001", rrn="999999999999", original_stan="000001",
                                 original_transmitted_at=timezone.now(), amount_minor=28500,
                                 currency="504").response_code == "12"
    assert Hold.objects.get().state == "held"
    assert account_of(VISA).balance == balance
    assert not LedgerEntry.objects.filter(kind="debit").exists()


def test_void_releases_the_hold_once_and_a_captured_hold_is_not_voided(banks):
    before = available(VISA)
    released = authorize(VISA)
    assert void(released) == services.SettlementOutcome("00", "released")
    assert available(VISA) == before
    assert void(released) == services.SettlementOutcome("00", "already released")
    assert capture(released).response_code == "12"  # no capture after a void
    assert HoldEvent.objects.filter(hold__rrn=released.rrn).count() == 2

    captured = authorize(VISA)
    capture(captured)
    balance = account_of(VISA).balance
    assert void(captured) == services.SettlementOutcome("12", "already captured: cannot be voided")
    assert Hold.objects.get(rrn=captured.rrn).state == "captured"
    assert account_of(VISA).balance == balance


def test_void_of_an_unknown_authorization_is_acknowledged_and_changes_no_hold(banks):
    held = authorize(VISA)
    events = HoldEvent.objects.count()
    outcome = services.hold_void(merchant_id="600000001", rrn="", original_stan="999999",
                                 original_transmitted_at=timezone.now())
    assert outcome == services.SettlementOutcome("00", "no such authorization: a late one will be declined")
    assert Hold.objects.get(rrn=held.rrn).state == "held"
    assert HoldEvent.objects.count() == events
    malformed = services.hold_void(merchant_id="600000001", rrn="", original_stan="٩٩٩٩٩٩",
                                   original_transmitted_at=timezone.now())
    assert malformed == services.SettlementOutcome("00", "no such authorization: nothing to release")
    assert MessageKey.objects.filter(reversed_at__isnull=False).count() == 1


def test_an_authorization_arriving_after_its_reversal_is_declined_and_holds_nothing(banks):
    """The gateway gave up waiting and reversed (by STAN and time); the authorization then reached the bank."""
    when = timezone.now()
    opening = available(VISA)
    first = services.hold_void(merchant_id="600000001", original_stan="004343", original_transmitted_at=when)
    again = services.hold_void(merchant_id="600000001", original_stan="004343",
                               original_transmitted_at=when + dt.timedelta(microseconds=400))  # the same second
    assert first.accepted and again.accepted
    late = authorize(VISA, stan="004343", when=when)
    assert (late.response_code, late.reason, late.auth_code, late.rrn) == (
        "12", "authorization reversed before it arrived", "", "")
    assert Hold.objects.count() == 0 and available(VISA) == opening
    row = Authorization.objects.get()
    assert (row.response_code, row.masked_pan, row.stan) == ("12", "400011******0017", "004343")
    # The same message sent again gets the same answer; the same STAN of another merchant or another second
    # is another message and is approved.
    assert authorize(VISA, stan="004343", when=when).response_code == "12"
    assert authorize(VISA, stan="004343", when=when, merchant="600000002").approved
    assert authorize(VISA, stan="004343", when=when + dt.timedelta(seconds=1)).approved
    assert Hold.objects.count() == 2


def test_a_reversal_after_the_authorization_releases_it_and_marks_nothing(banks):
    when = timezone.now()
    held = authorize(VISA, stan="004444", when=when)
    assert services.hold_void(merchant_id="600000001", original_stan="004444",
                              original_transmitted_at=when).reason == "released"
    assert Hold.objects.get(rrn=held.rrn).state == "released"
    assert not MessageKey.objects.filter(reversed_at__isnull=False).exists()


def test_reversal_of_an_authorization_whose_answer_was_lost_by_stan_and_time(banks):
    when = timezone.now()
    authorize(VISA, stan="004242", when=when)
    before_reversal = available(VISA)
    # Another merchant's reversal with the same STAN and time does not touch it.
    assert services.hold_void(merchant_id="600000002", original_stan="004242",
                              original_transmitted_at=when).reason.startswith("no such")
    assert available(VISA) == before_reversal
    outcome = services.hold_void(merchant_id="600000001", original_stan="004242",
                                 original_transmitted_at=when + dt.timedelta(microseconds=300))
    assert outcome == services.SettlementOutcome("00", "released")
    assert available(VISA) == before_reversal + Decimal("285.00")


# --- 3-D Secure: AReq -------------------------------------------------------------------------------------------


def test_areq_for_a_challenge_card_answers_c_with_the_acs_url(banks, settings):
    message = areq_message(MAIN, server_url=GW)
    ares = services.areq_answer(message=message)
    record = AcsTransaction.objects.get()
    assert ares == {
        "messageType": "ARes", "messageVersion": "2.2.0", "threeDSServerTransID": message["threeDSServerTransID"],
        "dsTransID": str(record.ds_trans_id), "acsTransID": str(record.acs_trans_id), "transStatus": "C",
        "acsURL": settings.BANK_URL + "/acs/challenge", "acsChallengeMandated": "Y", "authenticationType": "02",
    }
    assert (record.state, record.amount, record.merchant_name, record.notification_url) == (
        "challenge", Decimal("285.00"), "Tasdid Télécom", GW + "/3ds/notification")
    assert record.otp_sent_count == 0  # the code goes when the browser arrives
    # Sent again: the same answer, nothing new.
    assert services.areq_answer(message=message) == ares
    assert AcsTransaction.objects.count() == 1
    with pytest.raises(acs.AReqError) as caught:
        services.areq_answer(message={**message, "acctNumber": VISA.number})
    assert caught.value.code == "204"


def test_areq_for_a_card_not_enrolled_or_unknown_answers_u(banks):
    ares = services.areq_answer(message=areq_message(VISA, server_url=GW))
    assert (ares["transStatus"], ares["transStatusReason"]) == ("U", "13")
    assert AcsTransaction.objects.get().state == "not_enrolled"
    unknown = services.areq_answer(message=areq_message(VISA, server_url=GW, acctNumber=sandbox.UNKNOWN_NUMBER))
    foreign = services.areq_answer(message=areq_message(VISA, server_url=GW, acctNumber="4111111111111111"))
    assert (unknown["transStatus"], foreign["transStatus"]) == ("U", "U")
    assert AcsTransaction.objects.count() == 1


def test_frictionless_cavv_authorizes_once_for_that_card_and_amount(banks):
    ares = services.areq_answer(message=areq_message(FRICTIONLESS, server_url=GW))
    assert (ares["transStatus"], ares["eci"]) == ("Y", "05")
    auth = {"eci": "05", "authentication_value": ares["authenticationValue"], "ds_trans_id": ares["dsTransID"],
            "trans_status": "Y"}
    assert authorize(FRICTIONLESS, amount_minor=28400, **auth).response_code == "05"  # another amount
    assert authorize(FRICTIONLESS, **{**auth, "eci": "07"}).response_code == "05"
    assert authorize(FRICTIONLESS, **{**auth, "authentication_value": "x" * 28}).response_code == "05"
    assert authorize(FRICTIONLESS, **{**auth, "ds_trans_id": "nope"}).response_code == "05"
    assert authorize(FRICTIONLESS, **auth).approved
    assert AcsTransaction.objects.get().cavv_used_at is not None
    assert authorize(FRICTIONLESS, **auth).response_code == "05"  # used once
    assert Hold.objects.count() == 1


def test_a_cavv_expires(banks):
    ares = services.areq_answer(message=areq_message(FRICTIONLESS, server_url=GW))
    AcsTransaction.objects.update(ended_at=timezone.now() - services.CAVV_LIFETIME - dt.timedelta(seconds=1))
    assert authorize(FRICTIONLESS, eci="05", authentication_value=ares["authenticationValue"],
                     ds_trans_id=ares["dsTransID"], trans_status="Y").response_code == "05"
    assert Hold.objects.count() == 0


def test_a_cavv_of_one_card_does_not_authorize_another(banks):
    ares = services.areq_answer(message=areq_message(FRICTIONLESS, server_url=GW))
    auth = {"eci": "05", "authentication_value": ares["authenticationValue"], "ds_trans_id": ares["dsTransID"],
            "trans_status": "Y"}
    outcome = authorize(MAIN, **auth)
    assert outcome.response_code == "05"
    assert Hold.objects.count() == 0
    assert AcsTransaction.objects.get().cavv_used_at is None
    assert authorize(FRICTIONLESS, **auth).approved  # still good for the card it was issued to


# --- 3-D Secure: the challenge ----------------------------------------------------------------------------------


def open_challenge(card=MAIN, **kw):
    message = areq_message(card, server_url=GW, **kw)
    ares = services.areq_answer(message=message)
    step = services.challenge_open(acs_trans_id=ares["acsTransID"],
                                   three_ds_server_trans_id=ares["threeDSServerTransID"])
    return ares, step


def last_code() -> str:
    return code_in(Sms.objects.order_by("-pk").first().text)


def test_opening_a_challenge_sends_one_sms_code_hashed_at_rest(banks):
    ares, step = open_challenge()
    assert (step.outcome, step.remaining_tries, step.remaining_sends) == ("open", 3, 2)
    sms = Sms.objects.get()
    assert (sms.sender, sms.recipient) == ("CreditSahel", "+212662000002")
    code = last_code()
    assert "Crédit du Sahel" in sms.text and "285.00 DH" in sms.text and "Tasdid Télécom" in sms.text
    assert "Il expire dans 5 minutes." in sms.text
    assert sms.secrets == [code]
    record = AcsTransaction.objects.get()
    assert record.otp_digest and code not in record.otp_digest
    assert record.otp_expires_at == AcsEvent.objects.get(kind="otp_sent").at + services.OTP_LIFETIME
    # The same CReq again (replayed: it is no secret, it carries no key): refused, no second SMS, nothing moves.
    with pytest.raises(services.CReqReplayed):
        services.challenge_open(acs_trans_id=ares["acsTransID"], three_ds_server_trans_id=ares["threeDSServerTransID"])
    assert Sms.objects.count() == 1 and AcsEvent.objects.filter(kind="creq").count() == 1
    with pytest.raises(services.ChallengeNotFound):
        services.challenge_open(acs_trans_id=ares["acsTransID"], three_ds_server_trans_id="other")


def test_a_creq_after_its_time_fails_the_challenge_without_a_code(banks):
    """EMV 3DS: no CReq within CREQ_LIFETIME of the ARes C, the challenge fails (N, challengeCancel 05); no SMS."""
    ares = services.areq_answer(message=areq_message(MAIN, server_url=GW))
    AcsTransaction.objects.update(created_at=timezone.now() - services.CREQ_LIFETIME - dt.timedelta(seconds=1))
    step = services.challenge_open(acs_trans_id=ares["acsTransID"],
                                   three_ds_server_trans_id=ares["threeDSServerTransID"])
    assert step.outcome == "late" and Sms.objects.count() == 0
    record = AcsTransaction.objects.get()
    assert (record.state, record.trans_status, record.trans_status_reason, record.challenge_cancel) == (
        "failed", "N", "14", "05")
    rreq = services.rreq_message(record)
    assert (rreq["transStatus"], rreq["challengeCancel"]) == ("N", "05") and "authenticationValue" not in rreq


def test_the_right_code_authenticates_once_and_its_cavv_authorizes(banks):
    ares, _step = open_challenge()
    code = last_code()
    wrong = "000000" if code != "000000" else "111111"
    assert services.challenge_submit_code(acs_trans_id=ares["acsTransID"], code=wrong).remaining_tries == 2
    step = services.challenge_submit_code(acs_trans_id=ares["acsTransID"], code=code)
    assert step.outcome == "authenticated"
    record = AcsTransaction.objects.get()
    assert (record.state, record.trans_status, record.eci, record.otp_digest) == ("authenticated", "Y", "02", "")
    rreq = services.rreq_message(record)
    assert rreq == {
        "messageType": "RReq", "messageVersion": "2.2.0", "threeDSServerTransID": ares["threeDSServerTransID"],
        "acsTransID": ares["acsTransID"], "dsTransID": ares["dsTransID"], "transStatus": "Y", "eci": "02",
        "interactionCounter": "02", "messageCategory": "01", "authenticationValue": rreq["authenticationValue"],
    }
    # Single use: the same code again does nothing.
    assert services.challenge_submit_code(acs_trans_id=ares["acsTransID"], code=code).outcome == "ended"
    outcome = authorize(MAIN, eci="02", authentication_value=rreq["authenticationValue"],
                        ds_trans_id=ares["dsTransID"], trans_status="Y")
    assert outcome.approved
    assert services.cres_message(record) == {
        "messageType": "CRes", "messageVersion": "2.2.0", "threeDSServerTransID": ares["threeDSServerTransID"],
        "acsTransID": ares["acsTransID"], "transStatus": "Y", "challengeCompletionInd": "Y",
    }


def test_three_wrong_codes_fail_the_authentication(banks):
    ares, _step = open_challenge()
    code = last_code()
    wrong = "000000" if code != "000000" else "111111"
    outcomes = [services.challenge_submit_code(acs_trans_id=ares["acsTransID"], code=wrong) for _ in range(3)]
    assert [(s.outcome, s.remaining_tries) for s in outcomes] == [("wrong", 2), ("wrong", 1), ("failed", 0)]
    record = AcsTransaction.objects.get()
    assert (record.state, record.trans_status, record.trans_status_reason, record.eci) == ("failed", "N", "01", "00")
    # The right code after that changes nothing.
    assert services.challenge_submit_code(acs_trans_id=ares["acsTransID"], code=code).outcome == "ended"
    assert AcsTransaction.objects.get().state == "failed"
    rreq = services.rreq_message(record)
    assert "authenticationValue" not in rreq and rreq["transStatusReason"] == "01"


def test_an_expired_code_fails_the_authentication(banks):
    ares, _step = open_challenge()
    code = last_code()
    AcsTransaction.objects.update(otp_expires_at=timezone.now() - dt.timedelta(seconds=1))
    step = services.challenge_submit_code(acs_trans_id=ares["acsTransID"], code=code)
    assert step.outcome == "expired"
    record = AcsTransaction.objects.get()
    # EMV 3DS challengeCancel 04: timed out at the ACS (05 is kept for a first CReq that never came in time)
    assert (record.state, record.trans_status, record.trans_status_reason, record.challenge_cancel) == (
        "failed", "N", "14", "04")


def test_resend_replaces_the_code_within_a_limit(banks):
    ares, _step = open_challenge()
    first = last_code()
    step = services.challenge_resend_code(acs_trans_id=ares["acsTransID"])
    assert (step.outcome, step.remaining_sends) == ("resent", 1)
    second = last_code()
    assert services.challenge_resend_code(acs_trans_id=ares["acsTransID"]).outcome == "resent"
    third = last_code()
    limit = services.challenge_resend_code(acs_trans_id=ares["acsTransID"])
    assert (limit.outcome, limit.remaining_sends) == ("resend_limit", 0)
    assert Sms.objects.filter(sender="CreditSahel").count() == 3
    for old in {first, second} - {third}:
        assert services.challenge_submit_code(acs_trans_id=ares["acsTransID"], code=old).outcome == "wrong"
    assert services.challenge_submit_code(acs_trans_id=ares["acsTransID"], code=third).outcome == "authenticated"


def test_cancel_fails_the_authentication(banks):
    ares, _step = open_challenge()
    assert services.challenge_cancel(acs_trans_id=ares["acsTransID"]).outcome == "cancelled"
    record = AcsTransaction.objects.get()
    assert (record.state, record.trans_status, record.challenge_cancel) == ("failed", "N", "01")
    assert services.challenge_cancel(acs_trans_id=ares["acsTransID"]).outcome == "ended"
    assert services.rreq_message(record)["challengeCancel"] == "01"


def test_a_frictionless_or_unknown_transaction_has_no_challenge(banks):
    ares = services.areq_answer(message=areq_message(FRICTIONLESS, server_url=GW))
    with pytest.raises(services.ChallengeNotFound):
        services.challenge_open(acs_trans_id=ares["acsTransID"], three_ds_server_trans_id=ares["threeDSServerTransID"])
    with pytest.raises(services.ChallengeNotFound):
        services.challenge_submit_code(acs_trans_id="not-a-uuid", code="123456")
    assert services.rreq_deliver(acs_trans_id=ares["acsTransID"]) is False


def test_rreq_delivery_is_bounded_in_time_and_happens_once(banks, three_ds_server, monkeypatch):
    ares, _step = open_challenge(threeDSServerURL=three_ds_server.url + "/3ds/rreq")
    services.challenge_cancel(acs_trans_id=ares["acsTransID"])
    monkeypatch.setattr(services.authentication, "RREQ_BUDGET_SECONDS", 0.0)
    assert services.rreq_deliver(acs_trans_id=ares["acsTransID"]) is False
    assert AcsTransaction.objects.get().rreq_attempts == 0 and three_ds_server.rreqs == []
    monkeypatch.setattr(services.authentication, "RREQ_BUDGET_SECONDS", 20.0)
    assert services.rreq_deliver(acs_trans_id=ares["acsTransID"]) is True
    assert services.rreq_deliver(acs_trans_id=ares["acsTransID"]) is True
    record = AcsTransaction.objects.get()
    assert record.rreq_attempts == 1 and record.rreq_delivered_at is not None
    assert [r["transStatus"] for r in three_ds_server.rreqs] == ["N"]


# --- 3-D Secure: too many failed challenges -------------------------------------------------------------------


def fail_challenge(how: str) -> None:
    ares, _step = open_challenge()
    key = ares["acsTransID"]
    if how == "wrong codes":
        wrong = "000000" if last_code() != "000000" else "111111"
        for _ in range(services.OTP_MAX_TRIES):
            services.challenge_submit_code(acs_trans_id=key, code=wrong)
    elif how == "cancelled":
        services.challenge_cancel(acs_trans_id=key)
    elif how == "expired":
        AcsTransaction.objects.filter(acs_trans_id=key).update(otp_expires_at=timezone.now() - dt.timedelta(seconds=1))
        services.challenge_submit_code(acs_trans_id=key, code="123456")
    else:  # abandoned: the code sent, nobody came back, its time over
        AcsTransaction.objects.filter(acs_trans_id=key).update(otp_expires_at=timezone.now() - dt.timedelta(seconds=1))


@pytest.mark.parametrize("how", ["wrong codes", "cancelled", "expired", "abandoned"])
def test_after_three_failed_challenges_in_a_day_the_card_gets_no_new_challenge_nor_sms(banks, how):
    for _ in range(services.CHALLENGE_FAILURE_LIMIT):
        fail_challenge(how)
    sent = Sms.objects.count()
    assert sent == services.CHALLENGE_FAILURE_LIMIT

    message = areq_message(MAIN, server_url=GW)
    ares = services.areq_answer(message=message)
    assert {k: ares[k] for k in ("messageType", "transStatus", "transStatusReason")} == {
        "messageType": "ARes", "transStatus": "R", "transStatusReason": "04"}
    assert "acsURL" not in ares and "authenticationValue" not in ares
    record = AcsTransaction.objects.get(acs_trans_id=ares["acsTransID"])
    assert (record.state, record.trans_status, record.trans_status_reason, record.ended) == (
        "rejected", "R", "04", True)
    # No challenge to open, no SMS; the same AReq again gets the same answer.
    with pytest.raises(services.ChallengeNotFound):
        services.challenge_open(acs_trans_id=ares["acsTransID"], three_ds_server_trans_id=ares["threeDSServerTransID"])
    assert services.areq_answer(message=message) == ares
    assert Sms.objects.count() == sent
    # Other cards are not concerned: the frictionless card still authenticates.
    assert services.areq_answer(message=areq_message(FRICTIONLESS, server_url=GW))["transStatus"] == "Y"


def test_the_limit_is_rolling_and_counts_failures_only(banks):
    open_challenge()  # open, its code still valid: not a failure
    for _ in range(services.CHALLENGE_FAILURE_LIMIT - 1):
        fail_challenge("cancelled")
    assert services.areq_answer(message=areq_message(MAIN, server_url=GW))["transStatus"] == "C"
    fail_challenge("cancelled")
    assert services.areq_answer(message=areq_message(MAIN, server_url=GW))["transStatus"] == "R"
    # The oldest failure leaves the window: one challenge again (a rejection is not a failure).
    oldest = AcsTransaction.objects.filter(state="failed").order_by("ended_at").first()
    AcsTransaction.objects.filter(pk=oldest.pk).update(
        ended_at=timezone.now() - services.CHALLENGE_FAILURE_WINDOW - dt.timedelta(seconds=1))
    assert services.areq_answer(message=areq_message(MAIN, server_url=GW))["transStatus"] == "C"


def test_the_sms_says_the_code_lifetime_the_bank_applies(banks, monkeypatch):
    monkeypatch.setattr(services.authentication, "OTP_LIFETIME", dt.timedelta(minutes=10))
    monkeypatch.setattr(services.authentication, "OTP_LIFETIME_MINUTES", 10)
    open_challenge()
    assert "Il expire dans 10 minutes." in Sms.objects.get().text
    record = AcsTransaction.objects.get()
    assert record.otp_expires_at == AcsEvent.objects.get(kind="otp_sent").at + dt.timedelta(minutes=10)
