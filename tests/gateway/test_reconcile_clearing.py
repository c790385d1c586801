"""tasdid gateway-reconcile: the gateway's captures and reversals against the switch's clearing file; every
difference listed in French, exit 1; a bad file refused with a clear message (exit 2), nothing changed."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tasdid.core import clearing
from tasdid.gateway.backfill import attempt_operations
from tasdid.gateway.models import (
    Attempt,
    AttemptState,
    Operation,
    OperationKind,
    OperationState,
    PaymentSession,
    PendingReversal,
)

from .conftest import make_merchant

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 12, 7)
AT = dt.datetime(2026, 12, 7, 10, 0, 0, tzinfo=dt.UTC)
SHOP_A, SHOP_B = "600000001", "600000002"


def _attempt(merchant, n: int, amount: str, *, state=AttemptState.CAPTURED, settled=True) -> Attempt:
    authorized = AT + dt.timedelta(minutes=n)
    session = PaymentSession.objects.create(
        token=f"tok{n}", merchant=merchant, oid=f"ORDER-{n}", amount=Decimal(amount), browser_digest="x",
        state="succeeded", created_at=authorized, expires_at=authorized, updated_at=authorized)
    attempt = Attempt.objects.create(
        session=session, state=state, amount=Decimal(amount), brand="VISA", masked_pan="400011******0017",
        pan_fingerprint="f", threeds_server_trans_id=f"3ds-{n}", trans_id=f"T{n:06d}", stan=f"{n:06d}",
        transmitted_at=authorized.replace(microsecond=123456), response_code="00", rrn=f"{n:012d}",
        authorized_at=authorized, settled_at=authorized + dt.timedelta(seconds=30) if settled else None,
        deadline=authorized, created_at=authorized, updated_at=authorized)
    Operation.objects.bulk_create(attempt_operations(attempt, Operation))  # its rows, as migration 0009 makes them
    return attempt


def _reversal(merchant_id: str, n: int, amount: int, *, state=PendingReversal.State.DONE) -> PendingReversal:
    original = AT + dt.timedelta(minutes=n)
    return PendingReversal.objects.create(
        merchant_id=merchant_id, original_mti="0100", original_stan=f"{n:06d}", original_transmitted_at=original,
        amount_minor=amount, currency="504", order_id=f"ORDER-{n}", rrn=f"{n:012d}", state=state,
        response_code="00" if state == PendingReversal.State.DONE else "", next_try_at=original,
        created_at=original, done_at=original + dt.timedelta(minutes=1) if state == PendingReversal.State.DONE
        else None)


def _detail(merchant_id: str, bank: str, kind: str, n: int, amount: int, *, stan: int) -> clearing.Detail:
    original = AT + dt.timedelta(minutes=n)
    return clearing.Detail(
        merchant_id=merchant_id, bank=bank, kind=kind, stan=f"{stan:06d}", transmitted_at=original
        + dt.timedelta(seconds=20), original_mti="0100", original_stan=f"{n:06d}", original_transmitted_at=original,
        rrn=f"{n:012d}", order_id=f"ORDER-{n}", amount_minor=amount, currency="504", response_code="00",
        answered_at=original + dt.timedelta(seconds=21))


@pytest.fixture
def day():
    """The gateway's day: shop A captured 1 (285.00, Atlas) and 3 (150.00, Sahel) and reversed 2 (100.00);
    shop B captured 4 (50.00) and reversed 5 (70.00). Two more records that are not the day's: 6 still being
    captured, and 7 whose reversal waits to be sent."""
    a, b = make_merchant(client_id=SHOP_A), make_merchant(client_id=SHOP_B, store_key="OTHER-KEY-12345")
    _attempt(a, 1, "285.00")
    _attempt(a, 2, "100.00", state=AttemptState.VOIDED)
    _reversal(SHOP_A, 2, 10000)
    _attempt(a, 3, "150.00")
    _attempt(b, 4, "50.00")
    _attempt(b, 5, "70.00", state=AttemptState.VOIDED)
    _reversal(SHOP_B, 5, 7000)
    _attempt(b, 6, "20.00", state=AttemptState.CAPTURING, settled=False)
    _reversal(SHOP_B, 7, 3000, state=PendingReversal.State.PENDING)


def _matching() -> list[clearing.Detail]:
    return [
        _detail(SHOP_A, "Banque Atlas", "CAPTURE", 1, 28500, stan=101),
        _detail(SHOP_A, "Banque Atlas", "REVERSAL", 2, 10000, stan=102),
        _detail(SHOP_A, "Crédit du Sahel", "CAPTURE", 3, 15000, stan=103),
        _detail(SHOP_B, "Banque Atlas", "CAPTURE", 4, 5000, stan=104),
        _detail(SHOP_B, "Crédit du Sahel", "REVERSAL", 5, 7000, stan=105),
    ]


def _file(tmp_path, details, name="clearing.csv"):
    path = tmp_path / name
    with path.open("w", encoding="utf-8", newline="") as out:
        clearing.write_all(out, details, day=DAY, generated_at=dt.datetime(2026, 12, 8, 0, 5, tzinfo=dt.UTC))
    return path


def _reconcile(path) -> tuple[int, list[str]]:
    out = io.StringIO()
    try:
        call_command("gateway_reconcile", str(path), stdout=out)
    except SystemExit as exit_:
        return exit_.code, out.getvalue().splitlines()
    return 0, out.getvalue().splitlines()


def _snapshot():
    return (list(Attempt.objects.order_by("pk").values()), list(PendingReversal.objects.order_by("pk").values()))


def test_a_matching_file_has_no_difference(day, tmp_path):
    assert _reconcile(_file(tmp_path, _matching())) == (
        0, ["Rapprochement du 2026-12-07 : 5 opérations dans le fichier, 5 concordantes, 0 écart(s)."])


def test_every_difference_is_listed_and_exit_1(day, tmp_path):
    details = _matching()
    del details[3]  # shop B's capture 4: at the gateway, not in the file
    details[0] = _detail(SHOP_A, "Banque Atlas", "CAPTURE", 1, 28000, stan=101)  # amount changed
    details.insert(2, _detail(SHOP_A, "Banque Atlas", "CAPTURE", 9, 4200, stan=109))  # unknown to the gateway
    details.append(_detail(SHOP_B, "Crédit du Sahel", "CAPTURE", 6, 2000, stan=106))  # the gateway still captures
    details.append(_detail(SHOP_B, "Crédit du Sahel", "REVERSAL", 7, 3000, stan=107))  # the gateway still sends
    details.append(_detail(SHOP_B, "Crédit du Sahel", "REFUND", 4, 1000, stan=108))  # no refund at the gateway
    before = _snapshot()

    code, lines = _reconcile(_file(tmp_path, details))

    assert code == 1
    assert lines == [
        "Rapprochement du 2026-12-07 : 8 opérations dans le fichier, 3 concordantes, 6 écart(s).",
        "- remise 600000001 TransId T000001, commande ORDER-1 : montant différent — 280.00 DH dans le fichier, "
        "285.00 DH à la passerelle",
        "- remise 600000001 commande ORDER-9, original 0100 STAN 000009 du 2026-12-07T10:09:00Z : absente de la "
        "passerelle — 42.00 DH dans le fichier, inconnue de la passerelle",
        "- remise 600000002 TransId T000006, commande ORDER-6 : état différent — approuvée dans le fichier, "
        "« remise en cours » à la passerelle",
        "- annulation 600000002 commande ORDER-7, original 0100 STAN 000007 du 2026-12-07T10:07:00Z : état "
        "différent — approuvée dans le fichier, « à envoyer » à la passerelle",
        "- remboursement 600000002 commande ORDER-4, original 0100 STAN 000004 du 2026-12-07T10:04:00Z : absente "
        "de la passerelle — 10.00 DH dans le fichier, inconnu de la passerelle",
        "- remise 600000002 TransId T000004, commande ORDER-4 : absente du fichier — 50.00 DH à la passerelle, "
        "aucune ligne dans le fichier",
    ]
    assert _snapshot() == before


def test_a_reversal_missing_from_the_file_is_listed(day, tmp_path):
    code, lines = _reconcile(_file(tmp_path, [d for d in _matching() if d.kind != "REVERSAL"]))
    assert code == 1
    assert lines[1:] == [
        "- annulation 600000001 commande ORDER-2, original 0100 STAN 000002 du 2026-12-07T10:02:00Z : absente du "
        "fichier — 100.00 DH à la passerelle, aucune ligne dans le fichier",
        "- annulation 600000002 commande ORDER-5, original 0100 STAN 000005 du 2026-12-07T10:05:00Z : absente du "
        "fichier — 70.00 DH à la passerelle, aucune ligne dans le fichier",
    ]


def _refund(attempt: Attempt, stan: int, amount: str, state: str) -> Operation:
    sent = attempt.transmitted_at.replace(microsecond=0) + dt.timedelta(seconds=20)
    decided = None if state == OperationState.PENDING else sent + dt.timedelta(seconds=1)
    return Operation.objects.create(
        attempt=attempt, kind=OperationKind.REFUND, state=state, amount=Decimal(amount), stan=f"{stan:06d}",
        transmitted_at=sent, response_code="00" if state != OperationState.PENDING else "", created_at=sent,
        decided_at=decided, updated_at=sent)


def test_refunds_are_compared_by_their_own_stan_and_de7(day, tmp_path):
    """Shop A's payment 1 refunded three times: 50.00 approved, 20.00 still without an answer at the gateway,
    10.00 reversed by the gateway for want of an answer (its reversal is a line of its own, not in this file);
    shop B's payment 4 refunded 5.00, approved, which the file does not have."""
    one, four = Attempt.objects.get(trans_id="T000001"), Attempt.objects.get(trans_id="T000004")
    _refund(one, 201, "50.00", OperationState.APPROVED)
    _refund(one, 202, "20.00", OperationState.PENDING)
    _refund(one, 203, "10.00", OperationState.REVERSED)
    _refund(four, 204, "5.00", OperationState.APPROVED)
    matching = _matching()
    details = [*matching[:2], _detail(SHOP_A, "Banque Atlas", "REFUND", 1, 5000, stan=201),
               _detail(SHOP_A, "Banque Atlas", "REFUND", 1, 2000, stan=202),
               _detail(SHOP_A, "Banque Atlas", "REFUND", 1, 1000, stan=203),
               _detail(SHOP_A, "Banque Atlas", "REFUND", 1, 700, stan=299),  # 299: the gateway sent none
               *matching[2:]]

    code, lines = _reconcile(_file(tmp_path, details))

    assert code == 1
    assert lines == [
        "Rapprochement du 2026-12-07 : 9 opérations dans le fichier, 7 concordantes, 3 écart(s).",
        "- remboursement 600000001 TransId T000001, commande ORDER-1, remboursement STAN 000202 du "
        "2026-12-07T10:01:20Z : état différent — approuvée dans le fichier, « en cours, sans réponse encore » à "
        "la passerelle",
        "- remboursement 600000001 commande ORDER-1, original 0100 STAN 000001 du 2026-12-07T10:01:00Z : absente "
        "de la passerelle — 7.00 DH dans le fichier, inconnu de la passerelle",
        "- remboursement 600000002 TransId T000004, commande ORDER-4, remboursement STAN 000204 du "
        "2026-12-07T10:04:20Z : absente du fichier — 5.00 DH à la passerelle, aucune ligne dans le fichier",
    ]


def _good_bytes(tmp_path) -> bytes:
    return _file(tmp_path, _matching(), "good.csv").read_bytes()


def _bad(tmp_path, name: str, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(("damage", "message"), [
    (lambda b: b.replace(b"H;TASDID-CLEARING;1;", b"H;OTHER-FILE;1;", 1),
     "ligne 1 : en-tête attendu « H;TASDID-CLEARING;1;AAAA-MM-JJ;… » : ce n'est pas un fichier de compensation"),
    (lambda b: b.replace(b"TASDID-CLEARING;1;", b"TASDID-CLEARING;2;", 1),
     "ligne 1 : version 2 du format, seule la version 1 est lue"),
    (lambda b: b[:b.index(b"\nT;") + 1], "ligne T (totaux du fichier) absente : fichier tronqué"),
    (lambda b: b[:-5], "ligne 13 : ligne incomplète (fichier tronqué ?)"),
    (lambda b: b.replace("Crédit".encode(), "Crédit".encode("latin-1"), 1),
     "ligne 5 : le fichier n'est pas en UTF-8"),
    (lambda b: b.replace(b";28500;504;", b";285.00;504;", 1),
     "ligne 2 : montant : « 285.00 » n'est pas un nombre entier positif"),
    (lambda b: b.replace(b";28500;504;", b";-28500;504;", 1),
     "ligne 2 : montant : « -28500 » n'est pas un nombre entier positif"),
    (lambda b: b.replace(b"S;600000001;Banque Atlas;1;28500;", b"S;600000001;Banque Atlas;1;28501;", 1),
     "ligne 4 : total de 600000001 chez « Banque Atlas » : captures_minor vaut 28501, les lignes de détail donnent "
     "28500"),
    (lambda b: b.replace(b"\nT;5;", b"\nT;6;", 1),
     "ligne 13 : la ligne T annonce 6 lignes de détail, le fichier en a 5 (fichier tronqué ?)"),
    (lambda b: b.replace(b";CAPTURE;", b";PURCHASE;", 1),
     "ligne 2 : type d'opération « PURCHASE » inconnu (CAPTURE, REVERSAL, REFUND attendus)"),
    (lambda b: b.replace(b";2026-12-07T10:01:20Z;", b";2026-12-32T10:01:20Z;", 1),
     "ligne 2 : DE7 : « 2026-12-32T10:01:20Z » n'est pas une date valide"),
    (lambda b: b + b"D;extra\n", "ligne 14 : des lignes suivent la ligne T"),
    (lambda b: b"", "le fichier est vide"),
])
def test_a_bad_file_is_refused_in_french_and_nothing_changes(day, tmp_path, damage, message):
    path = _bad(tmp_path, "bad.csv", damage(_good_bytes(tmp_path)))
    before = _snapshot()
    out = io.StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("gateway_reconcile", str(path), stdout=out)
    assert str(refused.value) == f"fichier de compensation refusé, aucun rapprochement fait : {path} : {message}"
    assert refused.value.returncode == 2
    assert out.getvalue() == "" and _snapshot() == before


def test_a_missing_file_is_refused(day, tmp_path):
    with pytest.raises(CommandError, match=r"fichier illisible : .*nope\.csv : No such file") as refused:
        call_command("gateway_reconcile", str(tmp_path / "nope.csv"))
    assert refused.value.returncode == 2
