"""The gateway's staff: merchants, payment sessions and attempts with their operations (authorization, capture,
void, refunds), the capture, void and refund of an attempt (actions with a confirmation page), reversals owed to
the switch."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from tasdid.core.admin_sites import PartyAdminSite, ReadOnly

from . import flow, protocol, selectors, services
from .models import (
    Attempt,
    AttemptState,
    CallbackAnswer,
    Event,
    Merchant,
    Operation,
    PaymentSession,
    PendingReversal,
)
from .selectors import capturable_amount, refundable_amount

gateway_admin = PartyAdminSite("gateway_admin", _("Tasdid Pay — administration"))


def masked_key(key: str) -> str:
    """A store key as staff may see it: its last four characters."""
    return "•" * 8 + key[-4:] if len(key) >= 8 else "•" * 8


class MerchantForm(forms.ModelForm):
    """The store key is write-only: typed once, never shown again."""

    new_store_key = forms.CharField(
        label=_("Clé du magasin"), required=False, strip=False, min_length=8, max_length=128,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Obligatoire pour un nouveau marchand ; laissez vide pour conserver la clé actuelle."),
    )
    hosts = forms.CharField(
        label=_("Hôtes de retour autorisés"), widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Un par ligne, hôte ou hôte:port (par exemple 127.0.0.1:8000)."),
    )

    class Meta:
        model = Merchant
        fields = ["client_id", "name", "active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["hosts"].initial = "\n".join(self.instance.return_hosts)

    def clean_hosts(self) -> list[str]:
        hosts = []
        for line in self.cleaned_data["hosts"].split():
            try:
                hosts.append(protocol.normalize_host(line))
            except ValueError:
                raise forms.ValidationError(_("« %(host)s » n'est pas un hôte ou hôte:port valide."),
                                            params={"host": line}) from None
        if not hosts:
            raise forms.ValidationError(_("Indiquez au moins un hôte de retour autorisé."))
        return hosts

    def clean(self):
        data = super().clean()
        if not self.instance.pk and not data.get("new_store_key"):
            self.add_error("new_store_key", _("Indiquez la clé du magasin du nouveau marchand."))
        return data


@admin.register(Merchant, site=gateway_admin)
class MerchantAdmin(admin.ModelAdmin):
    form = MerchantForm
    list_display = ["client_id", "name", "active", "hosts_display", "store_key_display", "updated_at"]
    search_fields = ["client_id", "name"]

    def get_readonly_fields(self, request, obj=None):
        return ["client_id", "store_key_display"] if obj else []

    def get_fields(self, request, obj=None):
        if obj:
            return ["client_id", "name", "active", "hosts", "store_key_display", "new_store_key"]
        return ["client_id", "name", "active", "hosts", "new_store_key"]

    @admin.display(description=_("hôtes de retour"))
    def hosts_display(self, obj: Merchant) -> str:
        return ", ".join(obj.return_hosts)

    @admin.display(description=_("clé du magasin"))
    def store_key_display(self, obj: Merchant) -> str:
        return masked_key(obj.store_key)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        result = services.merchant_register(
            client_id=obj.client_id, name=data["name"], return_hosts=data["hosts"],
            store_key=data.get("new_store_key") or None, active=data["active"],
        )
        obj.pk = result.merchant.pk
        obj.refresh_from_db()


class EventInline(ReadOnly, admin.TabularInline):
    model = Event
    fields = ["at", "from_state", "to_state", "cause"]
    readonly_fields = fields
    extra = 0


class AttemptInline(ReadOnly, admin.TabularInline):
    model = Attempt
    fields = ["trans_id", "state", "amount", "brand", "masked_pan", "md_status", "proc_return_code",
              "callback_answer", "created_at"]
    readonly_fields = fields
    extra = 0
    show_change_link = True


@admin.register(PaymentSession, site=gateway_admin)
class PaymentSessionAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["oid", "merchant", "state", "amount", "created_at", "expires_at"]
    list_filter = ["state", "merchant"]
    search_fields = ["oid"]
    exclude = ["token", "browser_digest"]
    inlines = [AttemptInline, EventInline]


class ToReconcileFilter(admin.SimpleListFilter):
    """The attempts whose callback tries were all spent without the merchant's answer: the authorization still
    held (the merchant may have recorded the payment), or voided at the end of its hold without an answer."""

    title = _("à rapprocher")
    parameter_name = "a_rapprocher"

    def lookups(self, request, model_admin):
        return [("en_attente", _("sans réponse du marchand, autorisation conservée")),
                ("annulees", _("annulées en fin de réservation sans réponse"))]

    def queryset(self, request, queryset):
        if self.value() == "en_attente":
            return queryset.filter(unresolved_at__isnull=False, state=AttemptState.AUTHORIZED, callback_answer="")
        if self.value() == "annulees":
            return queryset.filter(unresolved_at__isnull=False, callback_answer=CallbackAnswer.UNREACHABLE)
        return queryset


class OperationInline(ReadOnly, admin.TabularInline):
    model = Operation
    fields = ["kind", "state", "amount", "stan", "transmitted_at", "response_code", "rrn", "tries", "requested_by",
              "created_at", "decided_at"]
    readonly_fields = fields
    extra = 0
    show_change_link = True


class OperationAmountForm(forms.Form):
    """The confirmation of a capture or a refund asked by staff: the amount (a capture's defaults to the whole
    authorization, a refund's to what is left)."""

    amount = forms.DecimalField(label=_("Montant (DH)"), min_value=0.01, max_digits=12, decimal_places=2)


# The operations staff may ask on an attempt: (title of the confirmation page, button, amount asked or not).
STAFF_OPERATIONS = {
    "capture": (_("Remettre le paiement (capture)"), _("Confirmer la remise"), True),
    "void": (_("Annuler l'autorisation (void)"), _("Confirmer l'annulation"), False),
    "refund": (_("Rembourser le paiement"), _("Confirmer le remboursement"), True),
}


@admin.register(Attempt, site=gateway_admin)
class AttemptAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["trans_id", "session", "state", "amount", "brand", "masked_pan", "proc_return_code",
                    "callback_answer", "unresolved_at", "created_at"]
    list_filter = [ToReconcileFilter, "state", "brand", "callback_answer"]
    search_fields = ["trans_id", "session__oid", "masked_pan"]
    exclude = ["pan_fingerprint", "rreq_authentication_value"]
    readonly_fields = ["order_status_display", "capturable_display", "captured_display", "refundable_display"]
    inlines = [OperationInline, EventInline]
    actions = ["capture", "void", "refund"]

    @admin.display(description=_("statut de la commande"))
    def order_status_display(self, obj: Attempt) -> str:
        return selectors.order_status(obj.session, obj)

    @admin.display(description=_("reste à remettre"))
    def capturable_display(self, obj: Attempt) -> str:
        return f"{capturable_amount(obj)} DH"

    @admin.display(description=_("remis"))
    def captured_display(self, obj: Attempt) -> str:
        return f"{selectors.captured_amount(obj)} DH"

    @admin.display(description=_("reste à rembourser"))
    def refundable_display(self, obj: Attempt) -> str:
        return f"{refundable_amount(obj)} DH"

    def has_operate_permission(self, request) -> bool:
        """Moving money is for staff who may change attempts (the gateway's operators), not for every viewer."""
        return request.user.has_perm("gateway.change_attempt")

    @admin.action(description=_("Remettre (capture) l'autorisation choisie"), permissions=["operate"])
    def capture(self, request, queryset):
        return self._operate(request, queryset, "capture")

    @admin.action(description=_("Annuler (void) l'autorisation choisie"), permissions=["operate"])
    def void(self, request, queryset):
        return self._operate(request, queryset, "void")

    @admin.action(description=_("Rembourser le paiement choisi"), permissions=["operate"])
    def refund(self, request, queryset):
        return self._operate(request, queryset, "refund")

    def _operate(self, request, queryset, kind: str):
        """One attempt at a time: a confirmation page first (the amount for a capture or a refund), then the
        operation, asked in the staff member's name (``staff:<username>``: the operation's ``requested_by`` and its
        events keep it)."""
        attempts = list(queryset.select_related("session__merchant")[:2])
        if len(attempts) != 1:
            self.message_user(request, _("Choisissez une seule tentative de paiement."), messages.WARNING)
            return None
        attempt = attempts[0]
        title, button, with_amount = STAFF_OPERATIONS[kind]
        left = capturable_amount(attempt) if kind == "capture" else refundable_amount(attempt)
        form = None
        if with_amount:
            form = OperationAmountForm(request.POST if "confirm" in request.POST else None,
                                       initial={"amount": left})
        if "confirm" in request.POST and (form is None or form.is_valid()):
            who = f"staff:{request.user.get_username()}"
            amount = form.cleaned_data["amount"] if form is not None else None
            try:
                if kind == "capture":
                    operation = flow.capture(attempt_id=attempt.pk, amount=amount, requested_by=who)
                elif kind == "void":
                    operation = flow.void(attempt_id=attempt.pk, requested_by=who)
                else:
                    operation = flow.refund(attempt_id=attempt.pk, amount=amount, requested_by=who)
            except services.OperationRefused as refused:
                self.message_user(request, refused.message, messages.ERROR)
                return None
            level = messages.SUCCESS if operation.state == "approved" else messages.WARNING
            self.message_user(request, _("%(kind)s de %(amount)s DH sur %(trans_id)s : %(state)s.") % {
                "kind": operation.get_kind_display().capitalize(), "amount": operation.amount,
                "trans_id": attempt.trans_id, "state": operation.get_state_display()}, level)
            return None
        context = {
            **self.admin_site.each_context(request), "title": title, "button": button, "attempt": attempt,
            "form": form, "left": left if with_amount else None, "kind": kind, "opts": self.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME, "order_status": selectors.order_status(
                attempt.session, attempt),
        }
        return TemplateResponse(request, "admin/gateway/attempt/operation_confirm.html", context)


@admin.register(Operation, site=gateway_admin)
class OperationAdmin(ReadOnly, admin.ModelAdmin):
    """The operations of the attempts, one row each with its answer: authorizations (0100), captures (0220), voids
    (0400) and refunds (0200, processing code 20)."""

    list_display = ["created_at", "kind", "attempt", "order", "amount", "state", "stan", "response_code", "rrn",
                    "requested_by", "decided_at"]
    list_filter = ["kind", "state"]
    search_fields = ["attempt__trans_id", "attempt__session__oid", "stan", "rrn"]
    list_select_related = ["attempt__session"]
    date_hierarchy = "created_at"
    inlines = [EventInline]

    @admin.display(description=_("commande"), ordering="attempt__session__oid")
    def order(self, obj: Operation) -> str:
        return obj.attempt.session.oid


@admin.register(PendingReversal, site=gateway_admin)
class PendingReversalAdmin(ReadOnly, admin.ModelAdmin):
    """The reversals (0400) owed to the switch for answers that never came: sent by the task worker until
    acknowledged (tasdid.gateway.rails)."""

    list_display = ["original_mti", "original_stan", "original_transmitted_at", "merchant_id", "order_id",
                    "amount_minor", "state", "tries", "next_try_at", "response_code", "last_error"]
    list_filter = ["state", "original_mti"]
    search_fields = ["original_stan", "order_id", "rrn", "merchant_id"]
    date_hierarchy = "created_at"
