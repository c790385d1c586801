"""The sandbox issuer's records: banks, accounts and their ledger, cards, authorizations, holds, 3-D Secure.

No card number and no CVV are kept: a card is found by its keyed fingerprint, shown by its masked number,
and its CVV is checked against a keyed hash (``tasdid.core.cards``).
"""

from django.db import models
from django.db.models import Q

from . import rules

MONEY = {"max_digits": 14, "decimal_places": 2}


class Bank(models.Model):
    code = models.SlugField(max_length=20, unique=True)
    name = models.CharField("nom", max_length=80)
    short_name = models.CharField("nom court (expéditeur SMS)", max_length=11)
    logo = models.CharField("logo (fichier statique)", max_length=120)
    bin_prefixes = models.JSONField("préfixes BIN", default=list)

    class Meta:
        verbose_name = "banque"

    def __str__(self) -> str:
        return self.name


class Account(models.Model):
    """A cardholder's account. Available balance = balance - active holds (``selectors.account_available``)."""

    bank = models.ForeignKey(Bank, on_delete=models.PROTECT, related_name="accounts")
    number = models.CharField("numéro de compte", max_length=24, unique=True)
    holder_name = models.CharField("titulaire", max_length=120)
    balance = models.DecimalField("solde", **MONEY)
    currency = models.CharField(max_length=3, default="504")
    opened_at = models.DateTimeField()

    class Meta:
        verbose_name = "compte"

    def __str__(self) -> str:
        return f"{self.number} — {self.holder_name}"


class LedgerEntry(models.Model):
    """One movement of an account's balance; append-only."""

    class Kind(models.TextChoices):
        CREDIT = "credit", "crédit"
        DEBIT = "debit", "débit"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries")
    kind = models.CharField(max_length=6, choices=Kind.choices)
    amount = models.DecimalField("montant", **MONEY)  # positive; the kind says which way
    balance_after = models.DecimalField("solde après", **MONEY)
    label = models.CharField("libellé", max_length=200)
    hold = models.OneToOneField("Hold", on_delete=models.PROTECT, null=True, blank=True, related_name="entry")
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = "écriture"
        ordering = ["created_at", "pk"]


class Card(models.Model):
    class Status(models.TextChoices):
        ACTIVE = rules.ACTIVE, "active"
        LOST = rules.LOST_STATUS, "perdue"
        STOLEN = rules.STOLEN_STATUS, "volée"
        BLOCKED = rules.BLOCKED, "bloquée"

    class ThreeDS(models.TextChoices):
        NONE = rules.NOT_ENROLLED, "non inscrite"
        CHALLENGE = "challenge", "code par SMS"
        FRICTIONLESS = "frictionless", "sans code (frictionless)"

    bank = models.ForeignKey(Bank, on_delete=models.PROTECT, related_name="cards")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="cards")
    brand = models.CharField("réseau", max_length=12)
    fingerprint = models.CharField(max_length=64, unique=True)  # core.cards.fingerprint of the number
    masked_pan = models.CharField("numéro masqué", max_length=19)
    last4 = models.CharField(max_length=4)
    holder_name = models.CharField("titulaire", max_length=120)
    phone = models.CharField("téléphone", max_length=16)  # E.164
    expiry_month = models.PositiveSmallIntegerField()
    expiry_year = models.PositiveSmallIntegerField()  # four digits
    cvv_digest = models.CharField(max_length=64)  # core.cards.cvv_digest
    status = models.CharField("statut", max_length=8, choices=Status.choices, default=Status.ACTIVE)
    three_ds = models.CharField("3-D Secure", max_length=12, choices=ThreeDS.choices, default=ThreeDS.NONE)
    issued_at = models.DateTimeField()

    class Meta:
        verbose_name = "carte"

    def __str__(self) -> str:
        return self.masked_pan


class Authorization(models.Model):
    """One row per authorization request the bank answered, approved or not. Never the number nor the CVV."""

    card = models.ForeignKey(Card, on_delete=models.PROTECT, null=True, blank=True, related_name="authorizations")
    masked_pan = models.CharField("numéro masqué", max_length=19)
    amount = models.DecimalField("montant", **MONEY)
    currency = models.CharField(max_length=3)
    merchant_id = models.CharField(max_length=32)
    merchant_name = models.CharField(max_length=120, blank=True, default="")
    order_id = models.CharField(max_length=64, blank=True, default="")
    stan = models.CharField(max_length=6)
    transmitted_at = models.DateTimeField()
    eci = models.CharField(max_length=2, blank=True, default="")
    ds_trans_id = models.CharField(max_length=36, blank=True, default="")
    trans_status = models.CharField(max_length=1, blank=True, default="")
    response_code = models.CharField(max_length=2)
    reason = models.CharField(max_length=120)
    auth_code = models.CharField(max_length=6, blank=True, default="")
    rrn = models.CharField(max_length=12, blank=True, default="")
    # A second message with the key of an earlier one but other content (answered 94, changes nothing).
    duplicate_of = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True)
    received_at = models.DateTimeField()

    class Meta:
        verbose_name = "autorisation"
        constraints = [
            models.UniqueConstraint(
                fields=["merchant_id", "stan", "transmitted_at"], condition=Q(duplicate_of__isnull=True),
                name="bank_authorization_unique_message",
            ),
        ]


class MessageKey(models.Model):
    """The key an authorization and its reversal share: merchant, STAN and transmission time (DE42, DE11, DE7).

    Both lock this row first, so that a reversal and the authorization it cancels never pass each other
    unseen. A reversal that finds no authorization marks the key reversed (the authorization may still be on its
    way, or its answer got lost before it was recorded); the authorization that arrives after it is declined."""

    merchant_id = models.CharField(max_length=32)
    stan = models.CharField(max_length=6)
    transmitted_at = models.DateTimeField()
    created_at = models.DateTimeField()
    reversed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "clé de message"
        constraints = [
            models.UniqueConstraint(fields=["merchant_id", "stan", "transmitted_at"], name="bank_message_key_unique"),
        ]


class Hold(models.Model):
    """The amount an approval reserves on the account until it is captured (debited) or released."""

    class State(models.TextChoices):
        HELD = "held", "réservé"
        CAPTURED = "captured", "débité"
        RELEASED = "released", "libéré"

    # Allowed moves; everything else is refused (one function moves a state: services.hold_capture/hold_void).
    TRANSITIONS = {State.HELD: {State.CAPTURED, State.RELEASED}, State.CAPTURED: set(), State.RELEASED: set()}

    authorization = models.OneToOneField(Authorization, on_delete=models.PROTECT, related_name="hold")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="holds")
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="holds")
    amount = models.DecimalField("montant", **MONEY)
    currency = models.CharField(max_length=3)
    auth_code = models.CharField(max_length=6)
    rrn = models.CharField(max_length=12, unique=True)
    stan = models.CharField(max_length=6)
    transmitted_at = models.DateTimeField()
    merchant_id = models.CharField(max_length=32)
    merchant_name = models.CharField(max_length=120, blank=True, default="")
    order_id = models.CharField(max_length=64, blank=True, default="")
    state = models.CharField(max_length=8, choices=State.choices, default=State.HELD)
    created_at = models.DateTimeField()
    captured_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "réservation"
        constraints = [
            models.UniqueConstraint(fields=["merchant_id", "stan", "transmitted_at"], name="bank_hold_unique_auth"),
        ]
        indexes = [models.Index(fields=["account", "state"])]


class HoldEvent(models.Model):
    hold = models.ForeignKey(Hold, on_delete=models.PROTECT, related_name="events")
    from_state = models.CharField(max_length=8, blank=True, default="")
    to_state = models.CharField(max_length=8)
    cause = models.CharField(max_length=200)
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "pk"]


class AcsTransaction(models.Model):
    """One 3-D Secure authentication the ACS answered (AReq), and its challenge when there is one."""

    class State(models.TextChoices):
        CHALLENGE = "challenge", "code demandé"
        AUTHENTICATED = "authenticated", "authentifiée (Y)"
        FAILED = "failed", "échec (N)"
        NOT_ENROLLED = "not_enrolled", "non inscrite (U)"
        REJECTED = "rejected", "refusée (R)"

    acs_trans_id = models.UUIDField(unique=True)
    ds_trans_id = models.UUIDField(unique=True)
    three_ds_server_trans_id = models.CharField(max_length=36, unique=True)
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="acs_transactions")
    message_version = models.CharField(max_length=8)
    amount = models.DecimalField("montant", **MONEY)
    currency = models.CharField(max_length=3)
    merchant_name = models.CharField(max_length=120)
    acquirer_merchant_id = models.CharField(max_length=35, blank=True, default="")
    purchase_date = models.DateTimeField()
    three_ds_server_url = models.CharField(max_length=500)  # checked by acs.parse_areq
    notification_url = models.CharField(max_length=500)
    state = models.CharField(max_length=14, choices=State.choices)
    trans_status = models.CharField(max_length=1)
    trans_status_reason = models.CharField(max_length=2, blank=True, default="")
    challenge_cancel = models.CharField(max_length=2, blank=True, default="")
    eci = models.CharField(max_length=2, blank=True, default="")
    ares = models.JSONField(default=dict)  # the answer as sent, for a re-sent AReq
    otp_digest = models.CharField(max_length=64, blank=True, default="")  # core.codes.code_digest; "" once used
    otp_sent_count = models.PositiveSmallIntegerField(default=0)
    otp_expires_at = models.DateTimeField(null=True, blank=True)
    otp_failures = models.PositiveSmallIntegerField(default=0)
    interaction_counter = models.PositiveSmallIntegerField(default=0)
    cavv_used_at = models.DateTimeField(null=True, blank=True)
    rreq_attempts = models.PositiveSmallIntegerField(default=0)
    rreq_delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "authentification 3-D Secure"
        verbose_name_plural = "authentifications 3-D Secure"

    @property
    def ended(self) -> bool:
        return self.state != self.State.CHALLENGE

    @property
    def is_challenge(self) -> bool:
        """Answered C (a code to type), as opposed to frictionless or not enrolled."""
        return self.ares.get("transStatus") == "C"


class AcsEvent(models.Model):
    transaction = models.ForeignKey(AcsTransaction, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=20)
    detail = models.CharField(max_length=200, blank=True, default="")
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "pk"]


class Refund(models.Model):
    """A refund (0200, processing code 20) the bank answered: a credit to the card's account, approved or not.

    Keyed like an authorization by merchant, STAN and transmission time: the same message again gets the same
    answer and credits nothing more. ``hold`` is the captured payment refunded when the request named it (DE37);
    the refunds of one payment never exceed what was captured."""

    merchant_id = models.CharField(max_length=32)
    stan = models.CharField(max_length=6)
    transmitted_at = models.DateTimeField()
    card = models.ForeignKey(Card, on_delete=models.PROTECT, null=True, blank=True, related_name="refunds")
    hold = models.ForeignKey(Hold, on_delete=models.PROTECT, null=True, blank=True, related_name="refunds")
    masked_pan = models.CharField("numéro masqué", max_length=19, blank=True, default="")
    original_rrn = models.CharField(max_length=12, blank=True, default="")
    amount = models.DecimalField("montant", **MONEY)
    currency = models.CharField(max_length=3)
    response_code = models.CharField(max_length=2)
    reason = models.CharField(max_length=120)
    rrn = models.CharField(max_length=12, blank=True, default="")
    credit = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="refund")
    reversal = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="refund_reversed")
    received_at = models.DateTimeField()
    reversed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "remboursement"
        constraints = [
            models.UniqueConstraint(fields=["merchant_id", "stan", "transmitted_at"],
                                    name="bank_refund_unique_message"),
        ]
