"""The clearing file from the switch's journal: a day of captures, reversals and refunds across two merchants and
both banks through the real switch, and the file's lines and totals exact; the command's bad input."""

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tasdid.core import clearing
from tasdid.core import iso8583 as iso
from tasdid.switch.models import JournalEntry
from tasdid.switch.selectors import clearing_details

from .fakes import Acquirer, authorization, next_stan, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

ATLAS_CARD, SAHEL_CARD = "4000110000000017", "5220110000000026"
SHOP_A, SHOP_B = "600000001", "600000002"


def _original(request: iso.Message) -> iso.OriginalData:
    return iso.OriginalData(mti=request.MTI, stan=request.stan, transmitted_at=request.transmitted_at)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _capture(auth, answer, amount: int) -> iso.CompletionRequest:
    return iso.CompletionRequest(amount_minor=amount, currency="504", stan=next_stan(), transmitted_at=_now(),
                                 merchant_id=auth.merchant_id, rrn=answer.rrn, original=_original(auth),
                                 auth_code=answer.auth_code, order_id=auth.order_id)


def _reversal(auth, answer) -> iso.ReversalRequest:
    return iso.ReversalRequest(amount_minor=auth.amount_minor, currency="504", stan=next_stan(),
                               transmitted_at=_now(), merchant_id=auth.merchant_id, original=_original(auth),
                               rrn=answer.rrn, auth_code=answer.auth_code, order_id=auth.order_id)


def _refund(auth, answer, amount: int) -> iso.FinancialRequest:
    return iso.FinancialRequest(processing_code=iso.REFUND, amount_minor=amount, currency="504", stan=next_stan(),
                                transmitted_at=_now(), merchant_id=auth.merchant_id, rrn=answer.rrn,
                                original=_original(auth), order_id=auth.order_id)


def _authorize(client, pan, amount, merchant, order):
    import dataclasses

    auth = dataclasses.replace(authorization(pan, amount=amount, merchant=merchant), order_id=order)
    answer = client.ask(auth)
    assert answer.response_code == "00"
    return auth, answer


def _t(value: dt.datetime) -> str:
    return clearing.timestamp(value)


def test_a_day_through_the_switch_makes_exact_lines_and_totals(switch, atlas, sahel, tmp_path):
    # Crédit du Sahel refuses refunds (51) and one capture of 999 centimes (a refusal is no money moved).
    sahel.decide = lambda m: ("answer", "51" if m.MTI == "0200" or (m.MTI, m.amount_minor) == ("0220", 999) else "00")
    client = Acquirer(switch.port)
    a1, r1 = _authorize(client, ATLAS_CARD, 28500, SHOP_A, "A-1")
    a2, r2 = _authorize(client, ATLAS_CARD, 10000, SHOP_A, "A-2")
    a3, r3 = _authorize(client, SAHEL_CARD, 19900, SHOP_A, "A-3")
    b1, s1 = _authorize(client, ATLAS_CARD, 5000, SHOP_B, "B-1")
    b2, s2 = _authorize(client, SAHEL_CARD, 7000, SHOP_B, "B-2")
    b3, s3 = _authorize(client, SAHEL_CARD, 999, SHOP_B, "B-3")
    cap_a1, rev_a2, ref_a1 = _capture(a1, r1, 28500), _reversal(a2, r2), _refund(a1, r1, 5000)
    cap_a3, cap_b1, rev_b2 = _capture(a3, r3, 15000), _capture(b1, s1, 5000), _reversal(b2, s2)
    ref_b1 = _refund(b1, s1, 1000)
    refused = [_refund(b2, s2, 700), _capture(b3, s3, 999)]
    for message in (cap_a1, rev_a2, ref_a1, cap_a3, cap_b1, rev_b2, ref_b1, *refused):
        answer = client.ask(message)
        expected = "51" if message in refused else "00"
        assert (answer.MTI, answer.response_code) == (iso.RESPONSE_MTI[message.MTI], expected)
    assert client.ask(cap_b1).response_code == "00"  # a repeat, given the same answer: counted once
    wait_until(lambda: JournalEntry.objects.filter(direction="acq_out").count() == 6 + 9 + 1, "journal written")
    day = JournalEntry.objects.order_by("at").first().at.astimezone(dt.UTC).date()
    output = tmp_path / "clearing.csv"

    call_command("clearing", "--date", day.isoformat(), "--output", str(output), "--no-progress",
                 stderr=io.StringIO())

    answered = {(e.merchant_id, e.mti, e.stan): _t(e.at) for e in JournalEntry.objects.filter(direction="acq_out")
                .exclude(note="répétition : même réponse")}
    lines = output.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(";")
    assert header[:4] == ["H", "TASDID-CLEARING", "1", day.isoformat()]

    def d(message, bank, kind, auth, answer):
        mti = iso.RESPONSE_MTI[message.MTI]
        return ";".join(["D", message.merchant_id, bank, kind, message.stan, _t(message.transmitted_at), auth.MTI,
                         auth.stan, _t(auth.transmitted_at), answer.rrn, auth.order_id, str(message.amount_minor),
                         "504", "00", answered[(message.merchant_id, mti, message.stan)]])

    assert lines[1:] == [
        # refunds (0210), captures (0230), reversals (0410), each by DE7 then STAN
        d(ref_a1, "Banque Atlas", "REFUND", a1, r1),
        d(cap_a1, "Banque Atlas", "CAPTURE", a1, r1),
        d(rev_a2, "Banque Atlas", "REVERSAL", a2, r2),
        "S;600000001;Banque Atlas;1;28500;1;10000;1;5000",
        d(cap_a3, "Crédit du Sahel", "CAPTURE", a3, r3),
        "S;600000001;Crédit du Sahel;1;15000;0;0;0;0",
        "M;600000001;2;43500;1;10000;1;5000",
        d(ref_b1, "Banque Atlas", "REFUND", b1, s1),
        d(cap_b1, "Banque Atlas", "CAPTURE", b1, s1),
        "S;600000002;Banque Atlas;1;5000;0;0;1;1000",
        d(rev_b2, "Crédit du Sahel", "REVERSAL", b2, s2),
        "S;600000002;Crédit du Sahel;0;0;1;7000;0;0",
        "M;600000002;1;5000;1;7000;1;1000",
        "T;7;3;48500;2;17000;2;6000",
    ]
    # The file reads back: every column and total checked.
    with output.open("rb") as stream:
        records = list(clearing.read(stream))
    assert records[0].day == day and len(records) == 8
    assert records[2] == clearing.Detail(
        merchant_id=SHOP_A, bank="Banque Atlas", kind="CAPTURE", stan=cap_a1.stan,
        transmitted_at=cap_a1.transmitted_at, original_mti="0100", original_stan=a1.stan,
        original_transmitted_at=a1.transmitted_at, rrn=r1.rrn, order_id="A-1", amount_minor=28500, currency="504",
        response_code="00", answered_at=records[2].answered_at)

    # The gateway's side of the same day, as its flow records it: the file agrees with it but for the refunds,
    # sent here straight through the acquirer, which the gateway has no record of.
    _gateway_records(captures=[(a1, r1, 28500), (a3, r3, 15000), (b1, s1, 5000)], reversals=[a2, b2])
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("gateway_reconcile", str(output), stdout=out)
    assert exit_.value.code == 1
    assert out.getvalue().splitlines() == [
        f"Rapprochement du {day.isoformat()} : 7 opérations dans le fichier, 5 concordantes, 2 écart(s).",
        f"- remboursement 600000001 commande A-1, original 0100 STAN {a1.stan} du {_t(a1.transmitted_at)} : absente "
        "de la passerelle — 50.00 DH dans le fichier, inconnu de la passerelle",
        f"- remboursement 600000002 commande B-1, original 0100 STAN {b1.stan} du {_t(b1.transmitted_at)} : absente "
        "de la passerelle — 10.00 DH dans le fichier, inconnu de la passerelle",
    ]


def _gateway_records(*, captures, reversals) -> None:
    from decimal import Decimal

    from tasdid.gateway import services
    from tasdid.gateway.models import Attempt, PaymentSession, PendingReversal

    now = dt.datetime.now(dt.UTC)
    merchants = {m: services.merchant_register(client_id=m, name=m, return_hosts=["shop.example.ma"],
                                               store_key=f"KEY-{m}-0000000").merchant for m in (SHOP_A, SHOP_B)}
    for auth, answer, amount in captures:
        session = PaymentSession.objects.create(
            token=auth.order_id, merchant=merchants[auth.merchant_id], oid=auth.order_id, amount=Decimal(amount) / 100,
            browser_digest="x", state="succeeded", created_at=now, expires_at=now, updated_at=now)
        Attempt.objects.create(
            session=session, state="captured", amount=Decimal(amount) / 100, brand="VISA",
            masked_pan="400011******0017",
            pan_fingerprint="f", threeds_server_trans_id=auth.order_id, trans_id=auth.order_id, stan=auth.stan,
            transmitted_at=auth.transmitted_at, response_code="00", rrn=answer.rrn, authorized_at=now, settled_at=now,
            deadline=now, created_at=now, updated_at=now)
    for auth in reversals:
        PendingReversal.objects.create(
            merchant_id=auth.merchant_id, original_mti="0100", original_stan=auth.stan,
            original_transmitted_at=auth.transmitted_at, amount_minor=auth.amount_minor, currency="504",
            order_id=auth.order_id, state="done", response_code="00", next_try_at=now, created_at=now, done_at=now)


def test_another_day_is_empty_and_still_a_file(db, tmp_path):
    output = tmp_path / "empty.csv"
    call_command("clearing", "--date", "2026-01-02", "--output", str(output), "--no-progress",
                 stderr=io.StringIO())
    lines = output.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("H;TASDID-CLEARING;1;2026-01-02;")
    assert lines[1:] == ["T;0;0;0;0;0;0;0"]
    assert list(clearing_details(day=dt.date(2026, 1, 2))) == []


@pytest.mark.parametrize("argv", [["--date", "2026-13-01"], ["--date", "hier"]])
def test_a_bad_date_is_refused_and_nothing_written(db, tmp_path, argv):
    output = tmp_path / "never.csv"
    with pytest.raises(CommandError, match="date invalide"):
        call_command("clearing", *argv, "--output", str(output))
    assert not output.exists() and list(tmp_path.iterdir()) == []


def test_an_unwritable_folder_is_refused(db, tmp_path):
    with pytest.raises(CommandError, match="impossible d'écrire"):
        call_command("clearing", "--date", "2026-01-02", "--output", str(tmp_path / "no" / "such" / "f.csv"))


def test_without_output_the_file_goes_to_standard_output_in_utf8(transactional_db, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from tasdid.switch.services import journal_append

    at = dt.datetime(2026, 1, 2, 10, 0, tzinfo=dt.UTC)
    journal_append(entries=[{"at": at, "direction": "acq_out", "mti": "0230", "stan": "000001", "transmitted_at": at,
                             "merchant_id": SHOP_A, "bank_name": "Crédit du Sahel", "response_code": "00",
                             "amount_minor": 100, "currency": "504"}])
    from django.db import connection

    env = {"PATH": "/usr/bin:/bin", "LANG": "C", "DJANGO_SETTINGS_MODULE": "tasdid.settings", "TASDID_SANDBOX": "1",
           "DATABASE_URL": f"sqlite:///{connection.settings_dict['NAME']}", "TASDID_VAR_DIR": str(tmp_path)}
    if connection.vendor != "sqlite":
        pytest.skip("reads the test database from another process: SQLite only")
    done = subprocess.run([str(Path(sys.executable).with_name("tasdid")), "clearing", "--date", "2026-01-02"],
                          env=env, capture_output=True, check=True)
    assert done.stdout.decode("utf-8").splitlines()[1:] == [
        "D;600000001;Crédit du Sahel;CAPTURE;000001;2026-01-02T10:00:00Z;;;;;;100;504;00;2026-01-02T10:00:00Z",
        "S;600000001;Crédit du Sahel;1;100;0;0;0;0", "M;600000001;1;100;0;0;0;0", "T;1;1;100;0;0;0;0"]
