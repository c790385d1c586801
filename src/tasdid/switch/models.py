"""The switch's records: the BIN routing table, the journal of every ISO 8583 message, the reversals owed.

No card number and no CVV: the journal keeps the masked number (first 6 + last 4 at most), a reversal names its
original by STAN and DE7 (DE90), which is all an issuer needs.
"""

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

bin_prefix_validator = RegexValidator(r"^[0-9]{1,11}$", "De 1 à 11 chiffres.")


class Route(models.Model):
    """A BIN prefix and the issuer host that authorizes its cards; the longest matching prefix wins.

    An empty host sends the cards to the default issuer host (TASDID_ISSUER_HOST / TASDID_ISSUER_PORT), so the
    seeded routes follow that setting.
    """

    bin_prefix = models.CharField("préfixe BIN", max_length=11, unique=True, validators=[bin_prefix_validator])
    bank_name = models.CharField("banque émettrice", max_length=80)
    issuer_host = models.CharField("hôte émetteur", max_length=255, blank=True,
                                   help_text="Vide : l'hôte émetteur par défaut (TASDID_ISSUER_HOST).")
    issuer_port = models.PositiveIntegerField(
        "port de l'hôte émetteur", null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text="Vide : le port par défaut (TASDID_ISSUER_PORT).")
    acs_url = models.URLField(
        "URL de l'ACS (3-D Secure)", max_length=255, blank=True,
        help_text="Où l'annuaire 3-D Secure envoie l'AReq de ces cartes. Vide : l'ACS par défaut "
                  "(TASDID_3DS_ACS_URL).")
    active = models.BooleanField("active", default=True)

    class Meta:
        verbose_name = "route BIN"
        verbose_name_plural = "routes BIN"
        ordering = ("bin_prefix",)

    def __str__(self) -> str:
        return f"{self.bin_prefix} → {self.bank_name}"


class JournalEntry(models.Model):
    """One ISO 8583 message the switch received or sent; append-only."""

    class Direction(models.TextChoices):
        FROM_ACQUIRER = "acq_in", "reçu de l'acquéreur"
        TO_ACQUIRER = "acq_out", "envoyé à l'acquéreur"
        TO_ISSUER = "iss_out", "envoyé à l'émetteur"
        FROM_ISSUER = "iss_in", "reçu de l'émetteur"

    at = models.DateTimeField("horodatage", db_index=True)
    direction = models.CharField("sens", max_length=7, choices=Direction.choices)
    peer = models.CharField("correspondant", max_length=80, blank=True)
    bank_name = models.CharField("banque émettrice", max_length=80, blank=True)
    mti = models.CharField("type (MTI)", max_length=4, blank=True)
    stan = models.CharField("STAN (DE11)", max_length=6, blank=True, db_index=True)
    transmitted_at = models.DateTimeField("date de transmission (DE7)", null=True, blank=True)
    # The same exchange seen from the other side: for an issuer leg, the acquirer's STAN and DE7; for an acquirer
    # leg, the switch's own, when the request was forwarded.
    # Indexed only where the switch looks a row up by it (the composite index below for related_stan): the
    # admin's search takes a part of the value (LIKE '%…%'), which no B-tree index serves, and each index costs
    # every row of the hot path a write.
    related_stan = models.CharField("STAN de l'autre côté", max_length=6, blank=True)
    related_transmitted_at = models.DateTimeField("DE7 de l'autre côté", null=True, blank=True)
    rrn = models.CharField("référence (RRN, DE37)", max_length=12, blank=True)
    response_code = models.CharField("code réponse (DE39)", max_length=2, blank=True)
    masked_pan = models.CharField("carte (masquée)", max_length=19, blank=True)
    merchant_id = models.CharField("commerçant (DE42)", max_length=15, blank=True)
    processing_code = models.CharField("code de traitement (DE3)", max_length=6, blank=True)
    amount_minor = models.BigIntegerField("montant (centimes)", null=True, blank=True)
    currency = models.CharField("devise (DE49)", max_length=3, blank=True, default="")
    # DE90 and DE48 OI as the acquirer sent them; an answer to the acquirer carries its request's (the clearing
    # file names each operation by its original, which the gateway knows).
    original_mti = models.CharField("type de l'original (DE90)", max_length=4, blank=True, default="")
    original_stan = models.CharField("STAN de l'original (DE90)", max_length=6, blank=True, default="")
    original_transmitted_at = models.DateTimeField("DE7 de l'original (DE90)", null=True, blank=True)
    order_id = models.CharField("commande (DE48 OI)", max_length=64, blank=True, default="")
    latency_ms = models.PositiveIntegerField("latence (ms)", null=True, blank=True)
    note = models.CharField("remarque", max_length=200, blank=True)

    class Meta:
        verbose_name = "message du journal"
        verbose_name_plural = "journal des messages"
        ordering = ("-at", "-id")
        indexes = [models.Index(fields=["direction", "merchant_id", "mti", "related_stan"]),
                   models.Index(fields=["direction", "mti", "at"], name="switch_journal_clearing")]

    def __str__(self) -> str:
        return f"{self.get_direction_display()} {self.mti} STAN {self.stan}"


class PendingReversal(models.Model):
    """A reversal (0400) the switch owes an issuer after a request went unanswered: sent until a 0410 comes,
    across restarts."""

    created_at = models.DateTimeField("créée le")
    issuer_host = models.CharField("hôte émetteur", max_length=255)
    issuer_port = models.PositiveIntegerField("port de l'hôte émetteur")
    bank_name = models.CharField("banque émettrice", max_length=80, blank=True)
    # DE90: the original as the issuer received it (the switch's STAN and DE7).
    original_mti = models.CharField("type de l'original", max_length=4)
    original_stan = models.CharField("STAN de l'original", max_length=6)
    original_transmitted_at = models.DateTimeField("DE7 de l'original")
    processing_code = models.CharField("code de traitement", max_length=6)
    amount_minor = models.BigIntegerField("montant (centimes)")
    currency = models.CharField("devise", max_length=3)
    merchant_id = models.CharField("commerçant (DE42)", max_length=15)
    order_id = models.CharField("commande", max_length=64, blank=True)
    attempts = models.PositiveIntegerField("envois", default=0)
    next_attempt_at = models.DateTimeField("prochain envoi", db_index=True)
    last_error = models.CharField("dernière erreur", max_length=200, blank=True)
    acknowledged_at = models.DateTimeField("acquittée le", null=True, blank=True)
    response_code = models.CharField("code réponse du 0410", max_length=2, blank=True)

    class Meta:
        verbose_name = "annulation en attente"
        verbose_name_plural = "annulations en attente"
        ordering = ("-created_at",)
        constraints = [models.UniqueConstraint(fields=["issuer_host", "issuer_port", "original_stan",
                                                       "original_transmitted_at"], name="switch_reversal_once")]

    def __str__(self) -> str:
        return f"0400 de {self.original_mti} STAN {self.original_stan} ({self.bank_name})"

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None


class DirectoryTransaction(models.Model):
    """One authentication through the 3-D Secure directory: which ACS it went to, and where the 3DS Server wants
    the RReq (the directory sets itself as the ACS's threeDSServerURL and relays). No card number."""

    ds_trans_id = models.UUIDField("dsTransID", unique=True)
    three_ds_server_trans_id = models.UUIDField("threeDSServerTransID", unique=True)
    acs_trans_id = models.UUIDField("acsTransID", null=True, blank=True)
    three_ds_server_url = models.URLField("URL RReq du serveur 3DS", max_length=500)
    acs_url = models.URLField("URL de l'ACS", max_length=255)
    bank_name = models.CharField("banque émettrice", max_length=80)
    masked_pan = models.CharField("carte (masquée)", max_length=19)
    created_at = models.DateTimeField("créée le", db_index=True)
    trans_status = models.CharField("transStatus (ARes)", max_length=1, blank=True)
    rreq_status = models.CharField("transStatus (RReq)", max_length=1, blank=True)

    class Meta:
        verbose_name = "authentification 3-D Secure"
        verbose_name_plural = "authentifications 3-D Secure"
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.ds_trans_id} ({self.bank_name})"
