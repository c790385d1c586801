"""The sandbox issuer's records: banks, accounts and their ledger, cards, authorizations, holds, 3-D Secure.

No card number and no CVV are kept: a card is found by its keyed fingerprint, shown by its masked number,
and its CVV is checked against a keyed hash (``tasdid.core.cards``).
"""

from django.db import models
from django.db.models import Q

from . import rules

MONEY = {"max_digits": 14, "decimal_places": 2}


class Bank(models.Model):
    code = models.SlugField(max_length=20, unique=True, verbose_name="code")
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

    bank = models.ForeignKey(Bank, on_delete=models.PROTECT, related_name="accounts", verbose_name="banque")
    number = models.CharField("numéro de compte", max_length=24, unique=True)
    holder_name = models.CharField("titulaire", max_length=120)
    balance = models.DecimalField("solde", **MONEY)
    currency = models.CharField(max_length=3, default="504", verbose_name="devise")
    opened_at = models.DateTimeField(verbose_name="ouvert le")

    class Meta:
        verbose_name = "compte"

    def __str__(self) -> str:
        return f"{self.number} — {self.holder_name}"


class LedgerEntry(models.Model):
    """One movement of an account's balance; append-only."""

    class Kind(models.TextChoices):
        CREDIT = "credit", "crédit"
        DEBIT = "debit", "débit"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="entries", verbose_name="compte")
    kind = models.CharField(max_length=6, choices=Kind.choices, verbose_name="écriture")
    amount = models.DecimalField("montant", **MONEY)  # positive; the kind says which way
    balance_after = models.DecimalField("solde après", **MONEY)
    label = models.CharField("libellé", max_length=200)
    hold = models.OneToOneField("Hold", on_delete=models.PROTECT, null=True, blank=True, related_name="entry",
                                verbose_name="réserve")
    created_at = models.DateTimeField(verbose_name="créé le")

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

    bank = models.ForeignKey(Bank, on_delete=models.PROTECT, related_name="cards", verbose_name="banque")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="cards", verbose_name="compte")
    brand = models.CharField("réseau", max_length=12)
    # core.cards.fingerprint of the number
    fingerprint = models.CharField(max_length=64, unique=True, verbose_name="empreinte")
    masked_pan = models.CharField("numéro masqué", max_length=19)
    last4 = models.CharField(max_length=4, verbose_name="4 derniers chiffres")
    holder_name = models.CharField("titulaire", max_length=120)
    phone = models.CharField("téléphone", max_length=16)  # E.164
    expiry_month = models.PositiveSmallIntegerField(verbose_name="mois d'expiration")
    expiry_year = models.PositiveSmallIntegerField(verbose_name="année d'expiration")  # four digits
    cvv_digest = models.CharField(max_length=64, verbose_name="empreinte du CVV")  # core.cards.cvv_digest
    status = models.CharField("statut", max_length=8, choices=Status.choices, default=Status.ACTIVE)
    three_ds = models.CharField("3-D Secure", max_length=12, choices=ThreeDS.choices, default=ThreeDS.NONE)
    issued_at = models.DateTimeField(verbose_name="émise le")

    class Meta:
        verbose_name = "carte"

    def __str__(self) -> str:
        return self.masked_pan


class Authorization(models.Model):
    """One row per authorization request the bank answered, approved or not. Never the number nor the CVV."""

    card = models.ForeignKey(Card, on_delete=models.PROTECT, null=True, blank=True, related_name="authorizations",
                             verbose_name="carte")
    masked_pan = models.CharField("numéro masqué", max_length=19)
    amount = models.DecimalField("montant", **MONEY)
    currency = models.CharField(max_length=3, verbose_name="devise")
    merchant_id = models.CharField(max_length=32, verbose_name="identifiant marchand")
    merchant_name = models.CharField(max_length=120, blank=True, default="", verbose_name="marchand")
    order_id = models.CharField(max_length=64, blank=True, default="", verbose_name="n° de commande")
    stan = models.CharField(max_length=6, verbose_name="STAN")
    transmitted_at = models.DateTimeField(verbose_name="transmis le")
    eci = models.CharField(max_length=2, blank=True, default="", verbose_name="ECI")
    ds_trans_id = models.CharField(max_length=36, blank=True, default="", verbose_name="identifiant DS (dsTransID)")
    trans_status = models.CharField(max_length=1, blank=True, default="",
                                    verbose_name="statut 3-D Secure (transStatus)")
    response_code = models.CharField(max_length=2, verbose_name="code réponse")
    reason = models.CharField(max_length=120, verbose_name="motif")
    auth_code = models.CharField(max_length=6, blank=True, default="", verbose_name="n° d'autorisation")
    rrn = models.CharField(max_length=12, blank=True, default="", verbose_name="RRN")
    # A second message with the key of an earlier one but other content (answered 94, changes nothing).
    duplicate_of = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, verbose_name="doublon de")
    received_at = models.DateTimeField(verbose_name="reçu le")

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

    merchant_id = models.CharField(max_length=32, verbose_name="identifiant marchand")
    stan = models.CharField(max_length=6, verbose_name="STAN")
    transmitted_at = models.DateTimeField(verbose_name="transmis le")
    created_at = models.DateTimeField(verbose_name="créé le")
    reversed_at = models.DateTimeField(null=True, blank=True, verbose_name="annulé le")

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

    authorization = models.OneToOneField(Authorization, on_delete=models.PROTECT, related_name="hold",
                                         verbose_name="autorisation")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="holds", verbose_name="compte")
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="holds", verbose_name="carte")
    amount = models.DecimalField("montant", **MONEY)
    currency = models.CharField(max_length=3, verbose_name="devise")
    auth_code = models.CharField(max_length=6, verbose_name="n° d'autorisation")
    rrn = models.CharField(max_length=12, unique=True, verbose_name="RRN")
    stan = models.CharField(max_length=6, verbose_name="STAN")
    transmitted_at = models.DateTimeField(verbose_name="transmis le")
    merchant_id = models.CharField(max_length=32, verbose_name="identifiant marchand")
    merchant_name = models.CharField(max_length=120, blank=True, default="", verbose_name="marchand")
    order_id = models.CharField(max_length=64, blank=True, default="", verbose_name="n° de commande")
    state = models.CharField(max_length=8, choices=State.choices, default=State.HELD, verbose_name="état")
    created_at = models.DateTimeField(verbose_name="créé le")
    captured_at = models.DateTimeField(null=True, blank=True, verbose_name="débitée le")
    released_at = models.DateTimeField(null=True, blank=True, verbose_name="libérée le")

    class Meta:
        verbose_name = "réservation"
        constraints = [
            models.UniqueConstraint(fields=["merchant_id", "stan", "transmitted_at"], name="bank_hold_unique_auth"),
        ]
        indexes = [models.Index(fields=["account", "state"])]


class HoldEvent(models.Model):
    hold = models.ForeignKey(Hold, on_delete=models.PROTECT, related_name="events", verbose_name="réserve")
    from_state = models.CharField(max_length=8, blank=True, default="", verbose_name="état de départ")
    to_state = models.CharField(max_length=8, verbose_name="état d'arrivée")
    cause = models.CharField(max_length=200, verbose_name="cause")
    at = models.DateTimeField(verbose_name="date")

    class Meta:
        verbose_name = "événement de réserve"
        verbose_name_plural = "événements de réserve"
        ordering = ["at", "pk"]


class AcsTransaction(models.Model):
    """One 3-D Secure authentication the ACS answered (AReq), and its challenge when there is one."""

    class State(models.TextChoices):
        CHALLENGE = "challenge", "code demandé"
        AUTHENTICATED = "authenticated", "authentifiée (Y)"
        FAILED = "failed", "échec (N)"
        NOT_ENROLLED = "not_enrolled", "non inscrite (U)"
        REJECTED = "rejected", "refusée (R)"

    acs_trans_id = models.UUIDField(unique=True, verbose_name="identifiant ACS (acsTransID)")
    ds_trans_id = models.UUIDField(unique=True, verbose_name="identifiant DS (dsTransID)")
    three_ds_server_trans_id = models.CharField(max_length=36, unique=True,
                                                verbose_name="identifiant 3DS Server (threeDSServerTransID)")
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="acs_transactions", verbose_name="carte")
    message_version = models.CharField(max_length=8, verbose_name="version du message")
    amount = models.DecimalField("montant", **MONEY)
    currency = models.CharField(max_length=3, verbose_name="devise")
    merchant_name = models.CharField(max_length=120, verbose_name="marchand")
    acquirer_merchant_id = models.CharField(max_length=35, blank=True, default="",
                                            verbose_name="identifiant marchand acquéreur")
    purchase_date = models.DateTimeField(verbose_name="date d'achat")
    # checked by acs.parse_areq
    three_ds_server_url = models.CharField(max_length=500, verbose_name="URL du 3DS Server")
    notification_url = models.CharField(max_length=500, verbose_name="URL de notification")
    # The AReq's browserLanguage (fr, ar or en), changed by the challenge page's language switch: the page and
    # the SMS code speak it.
    language = models.CharField(max_length=2, default="fr", verbose_name="langue")
    state = models.CharField(max_length=14, choices=State.choices, verbose_name="état")
    trans_status = models.CharField(max_length=1, verbose_name="statut 3-D Secure (transStatus)")
    trans_status_reason = models.CharField(max_length=2, blank=True, default="", verbose_name="motif du statut")
    challenge_cancel = models.CharField(max_length=2, blank=True, default="", verbose_name="annulation du challenge")
    eci = models.CharField(max_length=2, blank=True, default="", verbose_name="ECI")
    ares = models.JSONField(default=dict, verbose_name="ARes")  # the answer as sent, for a re-sent AReq
    # core.codes.code_digest; "" once used
    otp_digest = models.CharField(max_length=64, blank=True, default="", verbose_name="empreinte de l'OTP")
    otp_sent_count = models.PositiveSmallIntegerField(default=0, verbose_name="OTP envoyés")
    otp_expires_at = models.DateTimeField(null=True, blank=True, verbose_name="OTP expire le")
    otp_failures = models.PositiveSmallIntegerField(default=0, verbose_name="OTP erronés")
    interaction_counter = models.PositiveSmallIntegerField(default=0, verbose_name="compteur d'interactions")
    # The browser's first CReq: a challenge opens once (core.threeds: the CReq carries no key).
    creq_received_at = models.DateTimeField(null=True, blank=True, verbose_name="CReq reçue le")
    cavv_used_at = models.DateTimeField(null=True, blank=True, verbose_name="CAVV utilisé le")
    rreq_attempts = models.PositiveSmallIntegerField(default=0, verbose_name="envois de la RReq")
    rreq_delivered_at = models.DateTimeField(null=True, blank=True, verbose_name="RReq délivrée le")
    created_at = models.DateTimeField(verbose_name="créé le")
    ended_at = models.DateTimeField(null=True, blank=True, verbose_name="terminé le")

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
    transaction = models.ForeignKey(AcsTransaction, on_delete=models.PROTECT, related_name="events",
                                    verbose_name="transaction 3-D Secure")
    kind = models.CharField(max_length=20, verbose_name="type")
    detail = models.CharField(max_length=200, blank=True, default="", verbose_name="détail")
    at = models.DateTimeField(verbose_name="date")

    class Meta:
        verbose_name = "événement 3-D Secure"
        verbose_name_plural = "événements 3-D Secure"
        ordering = ["at", "pk"]


class Refund(models.Model):
    """A refund (0200, processing code 20) the bank answered: a credit to the card's account, approved or not.

    Keyed like an authorization by merchant, STAN and transmission time: the same message again gets the same
    answer and credits nothing more. ``hold`` is the captured payment refunded when the request named it (DE37);
    the refunds of one payment never exceed what was captured."""

    merchant_id = models.CharField(max_length=32, verbose_name="marchand (DE42)")
    stan = models.CharField(max_length=6, verbose_name="STAN")
    transmitted_at = models.DateTimeField(verbose_name="transmis le (DE7)")
    card = models.ForeignKey(Card, on_delete=models.PROTECT, null=True, blank=True, related_name="refunds",
                             verbose_name="carte")
    hold = models.ForeignKey(Hold, on_delete=models.PROTECT, null=True, blank=True, related_name="refunds",
                             verbose_name="blocage remboursé")
    masked_pan = models.CharField("numéro masqué", max_length=19, blank=True, default="")
    original_rrn = models.CharField(max_length=12, blank=True, default="", verbose_name="RRN du paiement")
    amount = models.DecimalField("montant", **MONEY)
    currency = models.CharField(max_length=3, verbose_name="devise")
    response_code = models.CharField(max_length=2, verbose_name="code réponse (DE39)")
    reason = models.CharField(max_length=120, verbose_name="motif")
    rrn = models.CharField(max_length=12, blank=True, default="", verbose_name="RRN")
    credit = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="refund", verbose_name="écriture de crédit")
    reversal = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="refund_reversed", verbose_name="écriture d'annulation")
    received_at = models.DateTimeField(verbose_name="reçu le")
    reversed_at = models.DateTimeField(null=True, blank=True, verbose_name="annulé le")

    class Meta:
        verbose_name = "remboursement"
        verbose_name_plural = "remboursements"
        constraints = [
            models.UniqueConstraint(fields=["merchant_id", "stan", "transmitted_at"],
                                    name="bank_refund_unique_message"),
        ]
