"""The gateway's records: merchants, payment sessions (one per merchant order), card attempts (one per card
submit) and their append-only events, with the allowed state transitions beside the models."""

import datetime as dt

from django.db import models
from django.utils.translation import gettext_lazy as _

from . import store_keys


class MerchantMode(models.TextChoices):
    """A merchant in test takes only the sandbox's cards (a platform in sandbox mode, TASDID_SANDBOX=1): on a
    production platform its payment requests are refused until staff switch it to production."""

    TEST = "test", _("test (bac à sable)")
    PRODUCTION = "production", _("production")


class Merchant(models.Model):
    """A shop registered with the gateway (``tasdid merchant add``): its client id, its ver3 store key and the
    hosts its browser and callback URLs may point to.

    The store key is kept sealed (gateway.store_keys), never in clear: ``store_key`` reads and writes it. After a
    rotation the previous key is still accepted on the merchant's requests until ``previous_store_key_until``;
    the gateway signs with the current one only."""

    client_id = models.CharField(_("identifiant marchand (clientid)"), max_length=32, unique=True)
    name = models.CharField(_("nom"), max_length=200)
    # Shared secret of the ver3 hash, sealed: the gateway needs it in clear to sign callbacks. Never shown in full.
    store_key_sealed = models.TextField(_("clé du magasin (chiffrée)"))
    previous_store_key_sealed = models.TextField(_("clé précédente (chiffrée)"), blank=True, default="")
    previous_store_key_until = models.DateTimeField(_("clé précédente acceptée jusqu'au"), null=True, blank=True)
    store_key_changed_at = models.DateTimeField(_("clé du magasin changée le"), null=True, blank=True)
    # When the previous key had become the current one (its store_key_changed_at): a session names the key
    # that signed its request by this date (PaymentSession.request_key_since), never by the key.
    previous_store_key_changed_at = models.DateTimeField(_("clé précédente en usage depuis le"), null=True, blank=True,
                                                         editable=False)
    mode = models.CharField(_("mode"), max_length=10, choices=MerchantMode.choices, default=MerchantMode.TEST)
    # "host:port" entries, lower-case, a port always written (80/443 when the URL has none).
    return_hosts = models.JSONField(_("hôtes de retour autorisés"), default=list)
    active = models.BooleanField(_("actif"), default=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name="créé le")
    updated_at = models.DateTimeField(auto_now=True, verbose_name="modifié le")

    class Meta:
        verbose_name = _("marchand")
        ordering = ["client_id"]
        # Not given with the gateway staff group (core.staff.RESERVED_PERMISSIONS): granted by name.
        permissions = [("rotate_store_key", _("Peut changer la clé du magasin d'un marchand"))]

    def __str__(self) -> str:
        return f"{self.client_id} {self.name}"

    @property
    def store_key(self) -> str:
        return store_keys.unseal(self.store_key_sealed)

    @store_key.setter
    def store_key(self, value: str) -> None:
        self.store_key_sealed = store_keys.seal(value)

    @property
    def previous_store_key(self) -> str:
        return store_keys.unseal(self.previous_store_key_sealed)

    def store_keys_accepted(self, now: dt.datetime) -> list[str]:
        """The keys a request of this merchant may be signed with at ``now``: the current one, and the previous
        one until its date."""
        return [key for _since, key in self.store_keys_held(now)]

    def store_keys_held(self, now: dt.datetime) -> list[tuple[dt.datetime | None, str]]:
        """store_keys_accepted, each with the date it became the current key (what names it)."""
        keys = [(self.store_key_changed_at, self.store_key)]
        if self.previous_store_key_sealed and self.previous_store_key_until and now < self.previous_store_key_until:
            keys.append((self.previous_store_key_changed_at, self.previous_store_key))
        return keys


class SessionState(models.TextChoices):
    OPEN = "open", _("ouverte")
    PROCESSING = "processing", _("paiement en cours")
    SUCCEEDED = "succeeded", _("payée")
    FAILED = "failed", _("échouée")
    EXPIRED = "expired", _("expirée")
    CANCELLED = "cancelled", _("annulée par le client")


# Allowed moves of a payment session; every other move is refused. A session is paid (or fails) once; the
# customer may cancel it while no card is being paid (« Annuler »).
SESSION_TRANSITIONS: dict[str, frozenset[str]] = {
    SessionState.OPEN: frozenset({SessionState.PROCESSING, SessionState.EXPIRED, SessionState.CANCELLED}),
    SessionState.PROCESSING: frozenset({SessionState.SUCCEEDED, SessionState.FAILED}),
    SessionState.SUCCEEDED: frozenset(),
    SessionState.FAILED: frozenset(),
    SessionState.EXPIRED: frozenset(),
    SessionState.CANCELLED: frozenset(),
}
SESSION_ORDER = [SessionState.OPEN, SessionState.PROCESSING, SessionState.SUCCEEDED, SessionState.FAILED,
                 SessionState.EXPIRED, SessionState.CANCELLED]


class PaymentSession(models.Model):
    """One merchant order being paid on the hosted page: the request as posted, the invoices and which of
    them the customer deferred, bound to the browser that posted it."""

    token = models.CharField(max_length=64, unique=True, verbose_name="jeton")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="sessions", verbose_name="marchand")
    oid = models.CharField(_("commande (oid)"), max_length=64)
    # Every field the merchant posted but ``hash``, names as posted: echoed back in the callback and returns.
    request_fields = models.JSONField(default=dict, verbose_name="champs de la demande")
    amount = models.DecimalField(_("montant demandé"), max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="504", verbose_name="devise")
    # The bill extension: [{"ref", "label", "amount"}] in the merchant's order; empty without it.
    items = models.JSONField(default=list, verbose_name="factures")
    allow_defer = models.BooleanField(default=False, verbose_name="report permis")
    deferred_refs = models.JSONField(default=list, verbose_name="factures reportées")
    lang = models.CharField(max_length=2, default="fr", verbose_name="langue")
    # Which of the merchant's store keys signed its request, named by the date it became current
    # (Merchant.store_keys_held): the session's callbacks and returns are signed with it while it is held.
    request_key_since = models.DateTimeField(_("clé de la demande en usage depuis le"), null=True, blank=True,
                                             editable=False)
    # SHA-256 of a random key kept in the gateway's browser session: only that browser sees the page.
    browser_digest = models.CharField(max_length=64, verbose_name="empreinte du navigateur")
    state = models.CharField(max_length=12, choices=SessionState.choices, default=SessionState.OPEN,
                             verbose_name="état")
    created_at = models.DateTimeField(verbose_name="créé le")
    expires_at = models.DateTimeField(verbose_name="expire le")
    updated_at = models.DateTimeField(verbose_name="modifié le")

    class Meta:
        verbose_name = _("session de paiement")
        verbose_name_plural = _("sessions de paiement")
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["merchant", "oid"], name="gateway_session_unique_oid")]
        indexes = [models.Index(fields=["state", "expires_at"]),
                   models.Index(fields=["merchant", "created_at"], name="gateway_session_merchant_day")]

    def __str__(self) -> str:
        return f"{self.merchant.client_id}/{self.oid}"


class AttemptState(models.TextChoices):
    AUTHENTICATING = "authenticating", _("authentification 3-D Secure")
    CHALLENGE = "challenge", _("code 3-D Secure demandé")
    AUTHORIZING = "authorizing", _("autorisation en cours")
    AUTHORIZED = "authorized", _("autorisée")
    DECLINED = "declined", _("refusée")
    FAILED = "failed", _("échouée")
    CAPTURING = "capturing", _("remise en cours")
    CAPTURED = "captured", _("remise")
    VOIDING = "voiding", _("annulation en cours")
    VOIDED = "voided", _("annulée")


# Allowed moves of a card attempt. An authorization whose answer never came is reversed (AUTHORIZING ->
# VOIDING); an approved one ends captured or voided (DESIGN.md §7, invariant 2). One whose callback tries are
# spent without the merchant's answer stays AUTHORIZED, marked ``unresolved_at`` (a note, not a move), until the
# merchant answers or its hold ends. The one move back: an approval that arrives after its reversal was
# acknowledged (VOIDED -> VOIDING), voided again with its RRN.
ATTEMPT_TRANSITIONS: dict[str, frozenset[str]] = {
    AttemptState.AUTHENTICATING: frozenset({AttemptState.CHALLENGE, AttemptState.AUTHORIZING, AttemptState.FAILED}),
    AttemptState.CHALLENGE: frozenset({AttemptState.AUTHORIZING, AttemptState.FAILED}),
    AttemptState.AUTHORIZING: frozenset({AttemptState.AUTHORIZED, AttemptState.DECLINED, AttemptState.VOIDING}),
    AttemptState.AUTHORIZED: frozenset({AttemptState.CAPTURING, AttemptState.VOIDING}),
    AttemptState.CAPTURING: frozenset({AttemptState.CAPTURED}),
    AttemptState.VOIDING: frozenset({AttemptState.VOIDED}),
    AttemptState.DECLINED: frozenset(),
    AttemptState.FAILED: frozenset(),
    AttemptState.CAPTURED: frozenset(),
    AttemptState.VOIDED: frozenset({AttemptState.VOIDING}),
}
# The order states are reached in: every allowed move goes forward in it, but VOIDED -> VOIDING.
ATTEMPT_ORDER = [
    AttemptState.AUTHENTICATING, AttemptState.CHALLENGE, AttemptState.AUTHORIZING, AttemptState.AUTHORIZED,
    AttemptState.DECLINED, AttemptState.FAILED, AttemptState.CAPTURING, AttemptState.CAPTURED,
    AttemptState.VOIDING, AttemptState.VOIDED,
]
# Where an attempt rests: nothing moves it any more, except a late approval for VOIDED.
ATTEMPT_TERMINAL = frozenset({AttemptState.DECLINED, AttemptState.FAILED, AttemptState.CAPTURED, AttemptState.VOIDED})


class CallbackAnswer(models.TextChoices):
    POSTAUTH = "POSTAUTH", _("remise demandée (ACTION=POSTAUTH)")
    APPROVED = "APPROVED", _("acquitté sans remise (APPROVED)")
    FAILURE = "FAILURE", _("refusé par le marchand (FAILURE)")
    UNREACHABLE = "UNREACHABLE", _("marchand injoignable, ou sans réponse claire après tous les essais")


class Attempt(models.Model):
    """One card submit of a session: its 3-D Secure authentication, its authorization and its settlement.
    Holds the masked card only; the card number and CVV are never stored."""

    session = models.ForeignKey(PaymentSession, on_delete=models.PROTECT, related_name="attempts",
                                verbose_name="session de paiement")
    state = models.CharField(max_length=14, choices=AttemptState.choices, verbose_name="état")
    # What was paid and what was deferred when the customer submitted (refs), and the amount to authorize.
    amount = models.DecimalField(_("montant"), max_digits=12, decimal_places=2)
    paid_refs = models.JSONField(default=list, verbose_name="factures payées")
    deferred_refs = models.JSONField(default=list, verbose_name="factures reportées")
    brand = models.CharField(_("type de carte"), max_length=12)
    masked_pan = models.CharField(_("carte"), max_length=19)
    pan_fingerprint = models.CharField(max_length=64, verbose_name="empreinte de la carte")
    # 3-D Secure
    threeds_server_trans_id = models.CharField(max_length=36, unique=True,
                                               verbose_name="identifiant 3DS Server (threeDSServerTransID)")
    ds_trans_id = models.CharField(max_length=36, blank=True, default="", verbose_name="identifiant DS (dsTransID)")
    acs_trans_id = models.CharField(max_length=36, blank=True, default="", verbose_name="identifiant ACS (acsTransID)")
    # final 3DS result used
    trans_status = models.CharField(max_length=1, blank=True, default="",
                                    verbose_name="statut 3-D Secure (transStatus)")
    rreq_received_at = models.DateTimeField(null=True, blank=True, verbose_name="RReq reçue le")
    rreq_trans_status = models.CharField(max_length=1, blank=True, default="", verbose_name="statut de la RReq")
    rreq_eci = models.CharField(max_length=2, blank=True, default="", verbose_name="ECI de la RReq")
    rreq_authentication_value = models.CharField(max_length=64, blank=True, default="",
                                                 verbose_name="valeur d'authentification (RReq)")
    rreq_trans_status_reason = models.CharField(max_length=2, blank=True, default="",
                                                verbose_name="motif du statut (RReq)")
    md_status = models.CharField(max_length=1, blank=True, default="", verbose_name="mdStatus")
    eci = models.CharField(max_length=2, blank=True, default="", verbose_name="ECI")
    # Authorization (ISO 8583 references)
    trans_id = models.CharField(_("TransId"), max_length=20, unique=True)
    stan = models.CharField(max_length=6, blank=True, default="", verbose_name="STAN")
    transmitted_at = models.DateTimeField(null=True, blank=True, verbose_name="transmis le")
    response_code = models.CharField(max_length=2, blank=True, default="", verbose_name="code réponse")
    auth_code = models.CharField(max_length=6, blank=True, default="", verbose_name="n° d'autorisation")
    rrn = models.CharField(max_length=12, blank=True, default="", verbose_name="RRN")
    authorized_at = models.DateTimeField(null=True, blank=True, verbose_name="autorisé le")
    # The result as told to the merchant
    proc_return_code = models.CharField(max_length=2, blank=True, default="", verbose_name="ProcReturnCode")
    err_msg = models.CharField(max_length=255, blank=True, default="", verbose_name="ErrMsg")
    callback_answer = models.CharField(max_length=11, choices=CallbackAnswer.choices, blank=True, default="",
                                       verbose_name="réponse au callback")
    callback_at = models.DateTimeField(null=True, blank=True, verbose_name="callback le")
    # Tries of the callback whose outcome was recorded: an ambiguous one (sent, no usable answer) is tried again.
    callback_tries = models.PositiveSmallIntegerField(default=0, verbose_name="essais de callback")
    # Tries begun, committed before each send: a try begun and never recorded (the process died) may have been
    # delivered, so a refused connection after it proves nothing (services.attempt_record_callback).
    callback_tries_begun = models.PositiveSmallIntegerField(_("essais du rappel commencés"), default=0)
    callback_last_begun_at = models.DateTimeField(_("dernier essai du rappel commencé le"), null=True, blank=True)
    # Every try spent without the merchant's answer: the authorization is kept apart for reconciliation (the
    # order status UNRESOLVED while no answer came). Kept once set, as the record that it had to be reconciled.
    unresolved_at = models.DateTimeField(_("à rapprocher depuis"), null=True, blank=True)
    # Settlement
    settle_tries = models.PositiveIntegerField(default=0, verbose_name="essais de règlement")
    settled_at = models.DateTimeField(null=True, blank=True, verbose_name="réglé le")
    # When the sweeper takes over if nothing else moved the attempt.
    deadline = models.DateTimeField(db_index=True, verbose_name="échéance")
    # When the pending watch task looks at the attempt (at or before its deadline; it watches again at the
    # deadline if that moved later): one watch per attempt, not one per move. None while none is pending.
    watch_at = models.DateTimeField(null=True, blank=True, verbose_name="surveillance prévue le")
    created_at = models.DateTimeField(verbose_name="créé le")
    updated_at = models.DateTimeField(verbose_name="modifié le")

    class Meta:
        verbose_name = _("tentative de paiement")
        verbose_name_plural = _("tentatives de paiement")
        ordering = ["-created_at"]
        # The back office's transaction list and daily report: a merchant's attempts by date (through their
        # sessions), by state, and by the masked card's first six digits (a prefix: LIKE 'xxxxxx%').
        indexes = [
            models.Index(fields=["session", "created_at"], name="gateway_attempt_session_day"),
            models.Index(fields=["created_at"], name="gateway_attempt_created"),
            models.Index(fields=["state", "created_at"], name="gateway_attempt_state_day"),
            models.Index(fields=["masked_pan"], name="gateway_attempt_masked_pan",
                         opclasses=["varchar_pattern_ops"]),
        ]

    def __str__(self) -> str:
        return f"{self.trans_id} ({self.get_state_display()})"


class OperationKind(models.TextChoices):
    """What an operation row does to an attempt's money: its authorization (a hold), each capture of it, its
    void, each refund of what was captured ("one row per operation")."""

    AUTHORIZATION = "authorization", _("autorisation")
    CAPTURE = "capture", _("remise")
    VOID = "void", _("annulation de l'autorisation")
    REFUND = "refund", _("remboursement")


class OperationState(models.TextChoices):
    PENDING = "pending", _("en cours, sans réponse encore")
    APPROVED = "approved", _("acceptée")
    REFUSED = "refused", _("refusée")
    REVERSING = "reversing", _("annulation en cours")
    REVERSED = "reversed", _("annulée")


# Allowed moves of an operation. PENDING is recorded (with its STAN and DE7) and committed before the message
# leaves, so that a crash between the two loses nothing. A refund (0200) or an authorization (0100) without an
# answer in time is reversed (REVERSING: its 0400 is owed, ``PendingReversal``), then REVERSED once the switch
# acknowledged the reversal (for an authorization: once its void went through). A capture (0220) or a void
# (0400) is never refused for good: it stays PENDING, sent again (a new STAN and DE7 each time, recorded before
# each send) until the switch accepts it (every approval ends settled).
OPERATION_TRANSITIONS: dict[str, frozenset[str]] = {
    OperationState.PENDING: frozenset({OperationState.APPROVED, OperationState.REFUSED, OperationState.REVERSING}),
    OperationState.REVERSING: frozenset({OperationState.REVERSED}),
    OperationState.APPROVED: frozenset(),
    OperationState.REFUSED: frozenset(),
    OperationState.REVERSED: frozenset(),
}
# The states in which an operation holds or moves money, or may: a refund in one of them counts against what is
# left to refund (a refund with no answer yet may have been credited, until its reversal says otherwise), a
# capture in one of them against what is left to capture.
OPERATION_COUNTED = frozenset({OperationState.PENDING, OperationState.APPROVED, OperationState.REVERSING})


class Operation(models.Model):
    """One operation of an attempt on the card rails, with its own state, amount and rail references: its
    authorization (0100), its capture (0220, the whole authorized amount or part of it, once: the rest is
    released), its void (0400 of the 0100), and each refund of what was captured (0200, processing code 20),
    whole or partial, several up to the amount captured. The attempt keeps the card and 3-D Secure; the order's
    status and its capturable and refundable amounts derive from these rows (``selectors``). Nothing of the card
    is kept here."""

    attempt = models.ForeignKey(Attempt, on_delete=models.PROTECT, related_name="operations",
                                verbose_name=_("tentative de paiement"))
    kind = models.CharField(_("type"), max_length=13, choices=OperationKind.choices)
    state = models.CharField(_("état"), max_length=10, choices=OperationState.choices)
    amount = models.DecimalField(_("montant"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("devise"), max_length=3, default="504")
    # The operation's own message: STAN (DE11) and transmission time (DE7, whole seconds, UTC) sent to the switch,
    # the switch's answer (DE39) and the RRN (DE37) it gave. A capture or a void sent again goes under a new STAN
    # and DE7, recorded here before each send (``tries``). Empty for a capture or a void recorded before the
    # gateway kept one row per operation (its STAN was not kept then).
    stan = models.CharField(_("STAN"), max_length=6, blank=True)
    transmitted_at = models.DateTimeField(_("transmise le"))
    response_code = models.CharField(_("code réponse"), max_length=2, blank=True, default="")
    rrn = models.CharField(_("RRN"), max_length=12, blank=True, default="")
    tries = models.PositiveIntegerField(_("envois"), default=0)
    # Who asked for it (a staff member, a merchant's API user, a command), as an audit trail names them.
    requested_by = models.CharField(_("demandée par"), max_length=150, blank=True, default="")
    created_at = models.DateTimeField(_("créée le"))
    decided_at = models.DateTimeField(_("décidée le"), null=True, blank=True)
    updated_at = models.DateTimeField(_("modifiée le"))

    class Meta:
        verbose_name = _("opération")
        verbose_name_plural = _("opérations")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["stan", "transmitted_at"], condition=~models.Q(stan=""),
                                    name="gateway_operation_message"),
            # One authorization and one capture at most per attempt (a capture, partial or whole, releases the rest).
            models.UniqueConstraint(fields=["attempt", "kind"], condition=models.Q(kind__in=["authorization",
                                                                                             "capture"]),
                                    name="gateway_operation_one_per_attempt"),
        ]
        indexes = [models.Index(fields=["kind", "state", "decided_at"]), models.Index(fields=["state", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} ({self.get_state_display()})"


class Event(models.Model):
    """An append-only record of one state move (or one message received) of a session or an attempt."""

    class Subject(models.TextChoices):
        SESSION = "session", _("session")
        ATTEMPT = "attempt", _("tentative")
        OPERATION = "operation", _("opération")

    subject = models.CharField(max_length=9, choices=Subject.choices, verbose_name="objet")
    session = models.ForeignKey(PaymentSession, on_delete=models.PROTECT, related_name="events",
                                verbose_name="session de paiement")
    attempt = models.ForeignKey(Attempt, on_delete=models.PROTECT, related_name="events", null=True, blank=True,
                                verbose_name="tentative")
    operation = models.ForeignKey("Operation", on_delete=models.PROTECT, related_name="events", null=True,
                                  blank=True, verbose_name=_("opération"))
    from_state = models.CharField(max_length=14, blank=True, default="", verbose_name="état de départ")
    to_state = models.CharField(max_length=14, verbose_name="état d'arrivée")
    cause = models.CharField(max_length=255, verbose_name="cause")
    at = models.DateTimeField(verbose_name="date")

    class Meta:
        verbose_name = _("événement")
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.from_state or '∅'} → {self.to_state}: {self.cause}"


class StanDay(models.Model):
    """The last system trace audit number (ISO 8583 DE11) used on a day: unique per message for the day."""

    day = models.DateField(unique=True, verbose_name="jour")
    last = models.PositiveIntegerField(default=0, verbose_name="dernier STAN")

    class Meta:
        verbose_name = "compteur STAN du jour"
        verbose_name_plural = "compteurs STAN"


class PendingReversal(models.Model):
    """A reversal (ISO 8583 0400) the gateway owes the switch: the answer to a request that holds or moves money
    (an authorization 0100, a refund 0200) never came, or a void (0400) went unanswered. Sent with a backoff,
    each time under a STAN of its own, until a 0410 says it is done (``tasdid.gateway.rails``); one row per
    original message. Nothing of the card is kept."""

    class State(models.TextChoices):
        PENDING = "pending", "à envoyer"
        DONE = "done", "acquittée"

    merchant_id = models.CharField("marchand (DE42)", max_length=15)
    original_mti = models.CharField("type du message d'origine", max_length=4)
    original_stan = models.CharField("STAN d'origine", max_length=6)
    original_transmitted_at = models.DateTimeField("DE7 d'origine")
    processing_code = models.CharField("code de traitement (DE3)", max_length=6, default="000000")
    amount_minor = models.BigIntegerField("montant (centimes)")
    currency = models.CharField("devise", max_length=3)
    order_id = models.CharField("commande", max_length=64, blank=True, default="")
    rrn = models.CharField("RRN", max_length=12, blank=True, default="")
    auth_code = models.CharField("code d'autorisation", max_length=6, blank=True, default="")
    state = models.CharField("état", max_length=7, choices=State.choices, default=State.PENDING)
    tries = models.PositiveIntegerField("envois", default=0)
    next_try_at = models.DateTimeField("prochain envoi", db_index=True)
    last_error = models.CharField("dernière erreur", max_length=200, blank=True, default="")
    response_code = models.CharField("code réponse (DE39)", max_length=2, blank=True, default="")
    created_at = models.DateTimeField("créée le")
    done_at = models.DateTimeField("acquittée le", null=True, blank=True)

    class Meta:
        verbose_name = "annulation (reversal) en attente"
        verbose_name_plural = "annulations (reversals) en attente"
        ordering = ["next_try_at", "pk"]
        constraints = [models.UniqueConstraint(
            fields=["merchant_id", "original_mti", "original_stan", "original_transmitted_at"],
            name="gateway_reversal_one_per_original")]

    def __str__(self) -> str:
        return f"0400 de {self.original_mti} STAN {self.original_stan} ({self.state})"


class MerchantApiUser(models.Model):
    """A login of a merchant's programs to the XML API (``/fim/api``): the ``Name`` and ``Password`` of its
    ``CC5Request``, for that merchant's ``ClientId`` only. The password is kept as a Django password hash, never in
    clear. Wrong passwords are counted per client address (``ApiAddressLock``): a few in a row lock that address
    for this user only; many from all addresses within a while lock the user itself (``failed_attempts`` since
    ``failures_since``, ``locked_until``)."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="api_users",
                                 verbose_name=_("marchand"))
    name = models.CharField(_("nom d'utilisateur API (Name)"), max_length=64, unique=True)
    password = models.CharField(_("mot de passe (empreinte)"), max_length=200)
    active = models.BooleanField(_("actif"), default=True)
    failed_attempts = models.PositiveSmallIntegerField(_("mots de passe erronés, toutes adresses"), default=0)
    failures_since = models.DateTimeField(_("mots de passe erronés comptés depuis"), null=True, blank=True)
    locked_until = models.DateTimeField(_("bloqué jusqu'au"), null=True, blank=True)
    created_at = models.DateTimeField(_("créé le"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("dernière utilisation"), null=True, blank=True)

    class Meta:
        verbose_name = _("utilisateur de l'API marchand")
        verbose_name_plural = _("utilisateurs de l'API marchand")
        ordering = ["merchant", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.merchant.client_id})"


class ApiAddressLock(models.Model):
    """The wrong passwords given for an API user from one client address (an IPv4 address, or an IPv6 /64), in a
    row: at services.API_LOCK_AFTER_FAILURES that address is refused for this user until ``locked_until``, while
    the user's programs elsewhere go on. A right password from the address ends its row."""

    api_user = models.ForeignKey(MerchantApiUser, on_delete=models.CASCADE, related_name="address_locks",
                                 verbose_name=_("utilisateur de l'API marchand"))
    address = models.CharField(_("adresse du client"), max_length=64)
    failures = models.PositiveSmallIntegerField(_("mots de passe erronés de suite"), default=0)
    last_failure_at = models.DateTimeField(_("dernier mot de passe erroné le"))
    locked_until = models.DateTimeField(_("bloquée jusqu'au"), null=True, blank=True)

    class Meta:
        verbose_name = _("blocage par adresse")
        verbose_name_plural = _("blocages par adresse")
        ordering = ["api_user", "-last_failure_at"]
        constraints = [models.UniqueConstraint(fields=["api_user", "address"], name="gateway_api_address_once")]

    def __str__(self) -> str:
        return self.address


class ApiRequestRecord(models.Model):
    """One operation asked through the XML API, kept to answer the same request again with the same answer
    (docs/merchant-protocol.md §9): the request's idempotency key (a hash of what identifies it), claimed before
    anything moves, then the answer sent. A request being processed is IN_FLIGHT: a duplicate arriving meanwhile
    waits for its answer and moves nothing; one arriving long after a claim whose process died answers from the
    operation it recorded, or takes the claim over when it recorded none."""

    class State(models.TextChoices):
        IN_FLIGHT = "in_flight", _("en cours")
        DONE = "done", _("répondue")

    api_user = models.ForeignKey(MerchantApiUser, on_delete=models.PROTECT, related_name="requests",
                                 verbose_name=_("utilisateur de l'API marchand"))
    key = models.CharField(_("clé d'idempotence"), max_length=64)
    kind = models.CharField(_("type"), max_length=10)
    order_id = models.CharField(_("commande"), max_length=64)
    state = models.CharField(_("état"), max_length=9, choices=State.choices, default=State.IN_FLIGHT)
    answer = models.TextField(_("réponse envoyée"), blank=True, default="")
    # The operation it recorded (a capture, a void, a refund, or the one it found already recorded), set in the
    # transaction that records it, before anything is sent: a repeat finding the claim left in flight by a process
    # that died answers from that operation instead of acting again.
    operation = models.ForeignKey("Operation", on_delete=models.PROTECT, related_name="api_requests", null=True,
                                  blank=True, verbose_name=_("opération"))
    # When it was claimed (again, after the replay window or taken over from a process that died): what a claim
    # holder compares to know the claim is still its own.
    created_at = models.DateTimeField(_("reçue le"))
    answered_at = models.DateTimeField(_("répondue le"), null=True, blank=True)

    class Meta:
        verbose_name = _("demande de l'API marchand")
        verbose_name_plural = _("demandes de l'API marchand")
        ordering = ["-created_at", "-pk"]
        # Once per merchant: the key hashes the ClientId, so that a repeat sent by another API user of the same
        # merchant (credentials being rotated) is still the same request.
        constraints = [models.UniqueConstraint(fields=["key"], name="gateway_api_request_once")]

    def __str__(self) -> str:
        return f"{self.kind} {self.order_id} ({self.get_state_display()})"
