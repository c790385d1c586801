"""The biller's records, after the guide's sample bill: customers hold service lines; a monthly bill groups
one invoice per line; an invoice has its priced lines; a payment order asks the gateway to collect some
invoices; a payment records what was settled and its receipt."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class ImportBatch(models.Model):
    """One run of ``tasdid import-bills`` that wrote something. The import writes its rows in short transactions,
    each tagged with its batch, so that the site keeps answering; they stay invisible to every reader
    (``Published`` managers) until the whole file has been checked and written, then the batch is published in
    one short step. The rows of a batch never published (refused file, killed import) are deleted, at once or by
    the next import (services.importing), and the batch marked discarded: kept, as a record of the attempt, and
    because deleting it would make the database look for its rows in four large tables.

    The marks are the highest ids before the import began: its rows are above them, so deleting them walks the
    primary keys and needs no index on the batch column (which would slow every import)."""

    started_at = models.DateTimeField(_("commencé le"))
    published_at = models.DateTimeField(_("publié le"), null=True, blank=True)
    discarded_at = models.DateTimeField(_("abandonné le"), null=True, blank=True)
    source = models.CharField(_("fichier"), max_length=255, blank=True, default="")
    customer_mark = models.BigIntegerField(default=0, verbose_name=_("repère clients"))
    line_mark = models.BigIntegerField(default=0, verbose_name=_("repère lignes"))
    bill_mark = models.BigIntegerField(default=0, verbose_name=_("repère factures mensuelles"))
    invoice_mark = models.BigIntegerField(default=0, verbose_name=_("repère factures"))

    class Meta:
        verbose_name = _("import de factures")
        verbose_name_plural = _("imports de factures")

    def __str__(self) -> str:
        return f"{self.source} {self.started_at:%Y-%m-%d %H:%M}"


class Published(models.Manager):
    """Rows written before batches existed or by a published import; the rows of an import still running, or of
    one that failed or was killed, are left out. Every reader goes through it (it is ``objects``); only the
    import itself uses ``all_objects``."""

    def get_queryset(self):
        published = ImportBatch.objects.filter(published_at__isnull=False).values("pk")
        # A subquery, not a join: select_for_update stays allowed on PostgreSQL (no nullable side of a join).
        return super().get_queryset().filter(Q(import_batch_id__isnull=True) | Q(import_batch_id__in=published))


def _import_batch_field():
    # No index: readers filter the rows they found by other keys; the import's clean-up walks ids (marks).
    return models.ForeignKey(ImportBatch, on_delete=models.PROTECT, null=True, blank=True, db_index=False,
                             related_name="+", editable=False, verbose_name=_("import"))


class Customer(models.Model):
    client_number = models.CharField(_("N° client"), max_length=20, unique=True)
    name = models.CharField(_("nom"), max_length=200)
    # The postal address printed under the name on the bill, one line per line; staff enter it (the import's
    # format has no address yet).
    address = models.TextField(_("adresse"), max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("créé le"))
    import_batch = _import_batch_field()

    all_objects = models.Manager()
    objects = Published()

    class Meta:
        default_manager_name = "objects"
        verbose_name = _("client")
        ordering = ["client_number"]

    def __str__(self) -> str:
        return f"{self.client_number} {self.name}"


class ServiceLine(models.Model):
    """A mobile number, a fixed number with its payment code, or an internet payment identifier."""

    class Kind(models.TextChoices):
        MOBILE = "mobile", _("Mobile")
        FIXED = "fixed", _("Fixe")
        INTERNET = "internet", _("Internet")

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="lines", verbose_name=_("client"))
    kind = models.CharField(_("catégorie"), max_length=8, choices=Kind.choices)
    # E.164 ("+212612345678") for mobile and fixed lines.
    number = models.CharField(_("numéro"), max_length=16, null=True, blank=True)
    # Internet: the "identifiant de paiement" printed on the bill, digits only ("12345678" for "12 345 678").
    payment_identifier = models.CharField(_("identifiant de paiement"), max_length=16, null=True, blank=True)
    # Fixed: keyed hash of the "code de paiement fixe" printed on the bill (tasdid.core.codes).
    payment_code_digest = models.CharField(max_length=64, blank=True, default="",
                                           verbose_name=_("empreinte du code de paiement"))
    label = models.CharField(_("offre"), max_length=200, blank=True, default="")
    # Wrong codes in a row, and the lock they lead to (fidelio and payment codes alike).
    failed_attempts = models.PositiveSmallIntegerField(default=0, verbose_name=_("codes erronés de suite"))
    locked_until = models.DateTimeField(null=True, blank=True, verbose_name=_("bloquée jusqu'au"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("créé le"))
    import_batch = _import_batch_field()

    all_objects = models.Manager()
    objects = Published()

    class Meta:
        default_manager_name = "objects"
        verbose_name = _("ligne")
        constraints = [
            models.UniqueConstraint(fields=["kind", "number"], condition=Q(number__isnull=False),
                                    name="line_unique_number"),
            models.UniqueConstraint(fields=["payment_identifier"], condition=Q(payment_identifier__isnull=False),
                                    name="line_unique_payment_identifier"),
            models.CheckConstraint(
                condition=(Q(kind="mobile", number__isnull=False, payment_identifier__isnull=True)
                           | Q(kind="fixed", number__isnull=False, payment_identifier__isnull=True)
                           | Q(kind="internet", number__isnull=True, payment_identifier__isnull=False)),
                name="line_kind_fields",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.number or self.payment_identifier}"


class FidelioCode(models.Model):
    """A code sent by SMS to a mobile line on request ("code" to 1111); hashed, expires, used once."""

    line = models.ForeignKey(ServiceLine, on_delete=models.CASCADE, related_name="fidelio_codes",
                             verbose_name=_("ligne"))
    digest = models.CharField(max_length=64, verbose_name=_("empreinte"))
    created_at = models.DateTimeField(verbose_name=_("créé le"))
    expires_at = models.DateTimeField(verbose_name=_("expire le"))
    used_at = models.DateTimeField(null=True, blank=True, verbose_name=_("utilisé le"))

    class Meta:
        verbose_name_plural = _("codes fidelio")
        verbose_name = _("code fidelio")
        indexes = [models.Index(fields=["line", "expires_at"])]


class IdentificationAttempt(models.Model):
    """Every try to reach a line's invoices, for rate limits per client address and per line, and audit."""

    at = models.DateTimeField(db_index=True, verbose_name=_("le"))
    client_ip = models.GenericIPAddressField(null=True, blank=True, verbose_name=_("adresse IP"))
    kind = models.CharField(max_length=8, choices=ServiceLine.Kind.choices, verbose_name=_("catégorie"))
    line = models.ForeignKey(ServiceLine, on_delete=models.SET_NULL, null=True, blank=True, verbose_name=_("ligne"))
    succeeded = models.BooleanField(default=False, verbose_name=_("réussie"))
    reason = models.CharField(max_length=32, blank=True, default="", verbose_name=_("motif"))

    class Meta:
        verbose_name = _("tentative d'identification")
        verbose_name_plural = _("tentatives d'identification")
        indexes = [models.Index(fields=["client_ip", "at"])]


class Bill(models.Model):
    """The monthly statement: "Facture du mois de …", its due date, totals and loyalty points."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="bills", verbose_name=_("client"))
    month = models.DateField(_("mois"), help_text=_("Premier jour du mois facturé."))
    due_date = models.DateField(_("date limite de paiement"))
    total_ht = models.DecimalField(_("total HT"), max_digits=12, decimal_places=2)
    total_vat = models.DecimalField(_("dont TVA (20 %)"), max_digits=12, decimal_places=2)
    total_ttc = models.DecimalField(_("total TTC"), max_digits=12, decimal_places=2)
    loyalty_points = models.PositiveIntegerField(_("points convertibles"), default=0)
    loyalty_balance = models.PositiveIntegerField(_("solde du compte points"), default=0)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("créé le"))
    import_batch = _import_batch_field()

    all_objects = models.Manager()
    objects = Published()

    class Meta:
        default_manager_name = "objects"
        verbose_name = _("facture mensuelle")
        verbose_name_plural = _("factures mensuelles")
        constraints = [models.UniqueConstraint(fields=["customer", "month"], name="bill_unique_month")]
        ordering = ["-month"]

    def __str__(self) -> str:
        return f"{self.customer.client_number} {self.month:%m/%Y}"


class Invoice(models.Model):
    """One service's invoice on a bill ("Réf Facture Fixe n° …"), paid once."""

    class Status(models.TextChoices):
        UNPAID = "unpaid", _("à payer")
        PAID = "paid", _("payée")
        # Paid, then refunded to the card and closed: nothing more is due (a refund reopens it instead when staff
        # choose so: « à payer » again, no longer tied to the payment).
        REFUNDED = "refunded", _("remboursée")

    reference = models.CharField(_("référence"), max_length=20, unique=True)
    bill = models.ForeignKey(Bill, on_delete=models.PROTECT, related_name="invoices",
                             verbose_name=_("facture mensuelle"))
    line = models.ForeignKey(ServiceLine, on_delete=models.PROTECT, related_name="invoices", verbose_name=_("ligne"))
    amount_ht = models.DecimalField(_("montant HT"), max_digits=12, decimal_places=2)
    amount_vat = models.DecimalField(_("TVA"), max_digits=12, decimal_places=2)
    amount_ttc = models.DecimalField(_("montant à payer TTC"), max_digits=12, decimal_places=2)
    status = models.CharField(_("statut"), max_length=8, choices=Status.choices, default=Status.UNPAID)
    paid_at = models.DateTimeField(null=True, blank=True, verbose_name=_("payée le"))
    payment = models.ForeignKey("Payment", on_delete=models.PROTECT, null=True, blank=True, related_name="invoices",
                                verbose_name=_("paiement"))
    import_batch = _import_batch_field()

    all_objects = models.Manager()
    objects = Published()

    class Meta:
        default_manager_name = "objects"
        verbose_name = _("facture")
        indexes = [models.Index(fields=["line", "status"])]
        constraints = [
            models.CheckConstraint(
                condition=(Q(status="unpaid", payment__isnull=True, paid_at__isnull=True)
                           | Q(status__in=["paid", "refunded"], payment__isnull=False, paid_at__isnull=False)),
                name="invoice_paid_has_payment",
            ),
            models.CheckConstraint(condition=Q(amount_ttc__gt=0), name="invoice_positive_amount"),
        ]

    def __str__(self) -> str:
        return self.reference


class InvoiceLine(models.Model):
    """A priced line of an invoice: subscription, option… with its period; HT, possibly free."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines", verbose_name=_("facture"))
    position = models.PositiveSmallIntegerField(verbose_name=_("rang"))
    section = models.CharField(_("rubrique"), max_length=100, blank=True, default="")
    label = models.CharField(_("libellé"), max_length=200)
    period_start = models.DateField(_("date début"), null=True, blank=True)
    period_end = models.DateField(_("date fin"), null=True, blank=True)
    amount_ht = models.DecimalField(_("montant DH HT"), max_digits=12, decimal_places=2)
    free = models.BooleanField(_("gratuit"), default=False)

    class Meta:
        verbose_name = _("ligne de facture")
        verbose_name_plural = _("lignes de facture")
        ordering = ["invoice", "position"]
        constraints = [models.UniqueConstraint(fields=["invoice", "position"], name="invoice_line_position")]


class PaymentOrder(models.Model):
    """What the biller asks the gateway to collect: some unpaid invoices of one line (the merchant's oid)."""

    class State(models.TextChoices):
        CREATED = "created", _("créé")
        PAID = "paid", _("payé")
        FAILED = "failed", _("échoué")
        EXPIRED = "expired", _("expiré")  # abandoned: no word from the gateway in time (a late payment still settles)
        # Paid here, but the gateway never captured it (its authorization was voided): found by reconciliation,
        # the invoices reopened, the payment kept as history (services.reconciliation).
        VOIDED = "voided", _("annulé")

    oid = models.CharField(max_length=64, unique=True, verbose_name=_("n° de commande (oid)"))
    line = models.ForeignKey(ServiceLine, on_delete=models.PROTECT, related_name="payment_orders",
                             verbose_name=_("ligne"))
    email = models.EmailField(verbose_name=_("email de notification"))
    amount = models.DecimalField(max_digits=12, decimal_places=2, verbose_name=_("montant"))
    state = models.CharField(max_length=8, choices=State.choices, default=State.CREATED, verbose_name=_("état"))
    failure_code = models.CharField(max_length=8, blank=True, default="", verbose_name=_("code d'échec"))
    failure_message = models.CharField(max_length=255, blank=True, default="", verbose_name=_("message d'échec"))
    created_at = models.DateTimeField(verbose_name=_("créé le"))
    updated_at = models.DateTimeField(verbose_name=_("modifié le"))
    # When reconciliation last settled this order against the gateway's status (agreed, recorded or flagged):
    # it is not asked about again (services.reconciliation).
    reconciled_at = models.DateTimeField(_("rapproché le"), null=True, blank=True)
    # The language of the page the customer paid from: sent to the gateway (its payment page speaks it) and used
    # for everything the customer receives later about this order (the receipt email and its PDF).
    language = models.CharField(_("langue"), max_length=8, choices=settings.LANGUAGES, default="fr")

    class Meta:
        verbose_name_plural = _("ordres de paiement")
        verbose_name = _("ordre de paiement")
        indexes = [
            models.Index(fields=["state", "created_at"], name="order_state_created"),  # the expiry sweep
            # Reconciliation's worklist: only the orders not yet reconciled, a small part of them all.
            models.Index(fields=["state", "created_at"], condition=Q(reconciled_at__isnull=True),
                         name="order_unreconciled"),
        ]

    def __str__(self) -> str:
        return self.oid


class PaymentOrderItem(models.Model):
    order = models.ForeignKey(PaymentOrder, on_delete=models.CASCADE, related_name="items",
                              verbose_name=_("ordre de paiement"))
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="order_items",
                                verbose_name=_("facture"))
    amount = models.DecimalField(max_digits=12, decimal_places=2, verbose_name=_("montant"))

    class Meta:
        verbose_name = _("facture de l'ordre")
        verbose_name_plural = _("factures de l'ordre")
        constraints = [models.UniqueConstraint(fields=["order", "invoice"], name="order_item_unique")]


class PaymentOrderEvent(models.Model):
    """Append-only: every state change of an order, with its time and cause."""

    order = models.ForeignKey(PaymentOrder, on_delete=models.CASCADE, related_name="events",
                              verbose_name=_("ordre de paiement"))
    at = models.DateTimeField(verbose_name=_("le"))
    from_state = models.CharField(max_length=8, blank=True, default="", verbose_name=_("état de départ"))
    to_state = models.CharField(max_length=8, verbose_name=_("état d'arrivée"))
    cause = models.CharField(max_length=255, verbose_name=_("cause"))

    class Meta:
        verbose_name = _("événement de l'ordre")
        verbose_name_plural = _("événements de l'ordre")


class Payment(models.Model):
    """A settled payment: which invoices, how much, the gateway's references, the receipt."""

    order = models.OneToOneField(PaymentOrder, on_delete=models.PROTECT, related_name="payment",
                                 verbose_name=_("ordre de paiement"))
    receipt_number = models.CharField(_("n° de reçu"), max_length=32, unique=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2, verbose_name=_("montant"))
    email = models.EmailField(verbose_name=_("email du payeur"))
    paid_at = models.DateTimeField(verbose_name=_("payé le"))
    trans_id = models.CharField(max_length=64, verbose_name=_("n° de transaction"))
    auth_code = models.CharField(max_length=16, verbose_name=_("n° d'autorisation"))
    host_ref = models.CharField(max_length=32, blank=True, default="", verbose_name=_("référence hôte (HostRefNum)"))
    masked_pan = models.CharField(max_length=19, verbose_name=_("carte"))
    card_brand = models.CharField(max_length=16, verbose_name=_("type de carte"))
    merchant_name = models.CharField(max_length=200, verbose_name=_("marchand"))
    # When the receipt email went into the outbox (tasks.send_receipt_email): it is queued once per payment.
    receipt_email_queued_at = models.DateTimeField(_("email du reçu mis en file le"), null=True, blank=True)
    # What the gateway refunded of it (approved refunds: services.refunds).
    refunded_amount = models.DecimalField(_("montant remboursé"), max_digits=12, decimal_places=2,
                                          default=Decimal("0.00"))

    class Meta:
        verbose_name = _("paiement")
        constraints = [
            models.UniqueConstraint(fields=["trans_id"], name="payment_unique_trans_id"),
            models.CheckConstraint(condition=Q(refunded_amount__gte=0, refunded_amount__lte=F("amount")),
                                   name="payment_refunded_within_amount"),
        ]

    def __str__(self) -> str:
        return self.receipt_number


class Refund(models.Model):
    """A refund of a payment to the customer's card, asked by the biller's staff (services.refunds): one invoice
    of the payment, or all it has left (``invoice`` empty). The row is committed before the gateway is asked;
    ``key`` is the request's idempotency key at the gateway: the same refund sent again after a lost answer is
    refunded once, and two refunds of the same amount stay two. What becomes of the invoices once it is approved
    is the staff's choice (``invoices_afterwards``)."""

    class State(models.TextChoices):
        PENDING = "pending", _("en cours")  # recorded, the gateway's answer awaited
        APPROVED = "approved", _("accepté")
        REFUSED = "refused", _("refusé")  # nothing moved
        UNKNOWN = "unknown", _("sans réponse")  # sent, no usable answer: to send again (the same key)

    class Afterwards(models.TextChoices):
        REOPEN = "reopen", _("rouvrir la facture (de nouveau à payer)")
        CLOSE = "close", _("clore la facture comme remboursée")

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds",
                                verbose_name=_("paiement"))
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="refunds",
                                verbose_name=_("facture"), help_text=_("Vide : tout ce qui restait du paiement."))
    # The invoices it covers, comma-separated references (the invoice's own link to the payment goes when it is
    # reopened; this keeps which ones the refund was for).
    invoice_references = models.CharField(_("factures"), max_length=1000)
    amount = models.DecimalField(_("montant"), max_digits=12, decimal_places=2)
    invoices_afterwards = models.CharField(_("factures ensuite"), max_length=8, choices=Afterwards.choices)
    key = models.CharField(_("clé d'idempotence"), max_length=64, unique=True)
    state = models.CharField(_("état"), max_length=8, choices=State.choices, default=State.PENDING)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                                     verbose_name=_("demandé par"))
    created_at = models.DateTimeField(_("demandé le"))
    sent_at = models.DateTimeField(_("envoyé le"), null=True, blank=True)
    sends = models.PositiveSmallIntegerField(_("envois"), default=0)
    answered_at = models.DateTimeField(_("réponse le"), null=True, blank=True)
    # The gateway's answer (CC5Response), or why none could be used.
    response = models.CharField(_("réponse de la passerelle"), max_length=16, blank=True, default="")
    proc_return_code = models.CharField(_("code retour"), max_length=8, blank=True, default="")
    error_code = models.CharField(_("code d'erreur"), max_length=32, blank=True, default="")
    message = models.CharField(_("message"), max_length=255, blank=True, default="")
    trans_id = models.CharField(_("n° de transaction du remboursement"), max_length=64, blank=True, default="")
    host_ref = models.CharField(_("référence hôte (HostRefNum)"), max_length=32, blank=True, default="")
    email_queued_at = models.DateTimeField(_("email au client mis en file le"), null=True, blank=True)

    class Meta:
        verbose_name = _("remboursement")
        verbose_name_plural = _("remboursements")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["state", "created_at"], name="refund_state_created")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_positive_amount"),
            models.CheckConstraint(condition=Q(state="approved", answered_at__isnull=False) | ~Q(state="approved"),
                                   name="refund_approved_answered"),
        ]

    def __str__(self) -> str:
        return f"{self.payment.receipt_number} {self.amount} ({self.get_state_display()})"


class ReceiptSequence(models.Model):
    """The last receipt number given out in a year; its row is locked while the next one is taken, so two
    payments settling at once never share a number (tasdid.billing.receipts)."""

    year = models.PositiveSmallIntegerField(unique=True, verbose_name=_("année"))
    last_number = models.PositiveIntegerField(default=0, verbose_name=_("dernier numéro"))

    class Meta:
        verbose_name = _("séquence des reçus")


class ReceiptCheck(models.Model):
    """Every check of a receipt on the public verification page (by its link or by the form), for the rate limit
    per client address that keeps verification codes from being guessed, and audit."""

    at = models.DateTimeField(_("le"), db_index=True)
    client_ip = models.GenericIPAddressField(_("adresse IP"), null=True, blank=True)
    # The number asked about when it had the shape of one (junk is not kept).
    receipt_number = models.CharField(_("n° de reçu"), max_length=32, blank=True, default="")
    genuine = models.BooleanField(_("authentique"), default=False)
    # Refused unanswered: too many wrong checks from this address.
    limited = models.BooleanField(_("limitée"), default=False)

    class Meta:
        verbose_name = _("vérification de reçu")
        verbose_name_plural = _("vérifications de reçu")
        indexes = [models.Index(fields=["client_ip", "at"])]

    def __str__(self) -> str:
        return f"{self.receipt_number or '-'} {self.at:%Y-%m-%d %H:%M}"


class Discrepancy(models.Model):
    """What reconciliation found the biller and the gateway disagree on, for staff to act upon (refund, call the
    customer…). One row per order and kind; written once, in the transaction that reopened the invoices."""

    class Kind(models.TextChoices):
        NOT_CAPTURED = "not_captured", _("payé chez le facturier, non encaissé par la passerelle")
        NOT_RECORDED = "not_recorded", _("encaissé par la passerelle, impossible à enregistrer")
        MISMATCH = "mismatch", _("encaissé par la passerelle, montant ou transaction différents")

    order = models.ForeignKey(PaymentOrder, on_delete=models.PROTECT, related_name="discrepancies",
                              verbose_name=_("ordre de paiement"))
    kind = models.CharField(_("écart"), max_length=16, choices=Kind.choices)
    found_at = models.DateTimeField(_("constaté le"))
    gateway_status = models.CharField(_("statut passerelle"), max_length=16)
    amount = models.DecimalField(_("montant facturier"), max_digits=12, decimal_places=2)
    captured_amount = models.DecimalField(_("montant encaissé"), max_digits=12, decimal_places=2)
    receipt_number = models.CharField(_("n° de reçu"), max_length=32, blank=True, default="")
    trans_id = models.CharField(_("transaction"), max_length=64, blank=True, default="")
    # The invoices this discrepancy concerns (reopened ones for NOT_CAPTURED), comma-separated references: the
    # invoices no longer point at a voided payment, this keeps which ones it had settled.
    invoice_references = models.CharField(_("factures"), max_length=1000, blank=True, default="")
    detail = models.CharField(_("détail"), max_length=255, blank=True, default="")

    class Meta:
        verbose_name = _("écart de rapprochement")
        verbose_name_plural = _("écarts de rapprochement")
        ordering = ["-found_at"]
        constraints = [models.UniqueConstraint(fields=["order", "kind"], name="discrepancy_once_per_order")]

    def __str__(self) -> str:
        return f"{self.order.oid} {self.kind}"


class ReconciliationSchedule(models.Model):
    """The one chain of periodic reconciliation tasks: each run enqueues the next with this token; starting
    the schedule again draws a new token, and a task of an older chain then ends without a successor."""

    token = models.CharField(max_length=32, verbose_name=_("jeton"))
    started_at = models.DateTimeField(verbose_name=_("commencé le"))
    last_run_at = models.DateTimeField(null=True, blank=True, verbose_name=_("dernier passage le"))

    class Meta:
        verbose_name = _("rapprochement périodique")
