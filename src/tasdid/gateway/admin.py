"""The gateway's staff: merchants, payment sessions and attempts, their refunds, reversals owed to the switch."""

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from tasdid.core.admin_sites import PartyAdminSite, ReadOnly

from . import protocol, services
from .models import (
    Attempt,
    AttemptState,
    CallbackAnswer,
    Event,
    Merchant,
    MerchantApiUser,
    Operation,
    PaymentSession,
    PendingReversal,
)
from .selectors import refundable_amount

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


class MerchantApiUserForm(forms.ModelForm):
    """The password is write-only: generated (shown once) or typed, kept as a hash, never shown again."""

    new_password = forms.CharField(
        label=_("Mot de passe"), required=False, strip=False, min_length=services.API_MIN_PASSWORD, max_length=128,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Laissez vide : un mot de passe est généré pour un nouvel utilisateur et affiché une seule fois "
                    "; pour un utilisateur existant, la valeur actuelle est conservée."),
    )

    class Meta:
        model = MerchantApiUser
        fields = ["merchant", "name", "active"]

    def clean_name(self) -> str:
        name = (self.cleaned_data.get("name") or "").strip()
        if not services.API_NAME.fullmatch(name):
            raise forms.ValidationError(_("Le nom d'utilisateur API doit comporter de 3 à 64 caractères : lettres, "
                                          "chiffres, . _ @ -."))
        return name


@admin.register(MerchantApiUser, site=gateway_admin)
class MerchantApiUserAdmin(admin.ModelAdmin):
    """The logins of merchants' programs to the XML API (/fim/api)."""

    form = MerchantApiUserForm
    list_display = ["name", "merchant", "active", "locked_until", "last_used_at", "created_at"]
    list_filter = ["active", "merchant"]
    search_fields = ["name", "merchant__client_id"]
    readonly_fields = ["failed_attempts", "locked_until", "last_used_at", "created_at"]

    def get_fields(self, request, obj=None):
        if obj:
            return ["merchant", "name", "active", "new_password", *self.readonly_fields]
        return ["merchant", "name", "active", "new_password"]

    def get_readonly_fields(self, request, obj=None):
        return ["merchant", "name", *self.readonly_fields] if obj else []

    def save_model(self, request, obj, form, change):
        password = form.cleaned_data.get("new_password") or None
        if not change:
            created = services.api_user_create(merchant=obj.merchant, name=obj.name, password=password)
            obj.pk = created.user.pk
            obj.refresh_from_db()
            if password is None:
                messages.warning(request, _("Mot de passe de « %(name)s », affiché une seule fois : %(password)s")
                                 % {"name": obj.name, "password": created.password})
            if not form.cleaned_data.get("active", True):
                MerchantApiUser.objects.filter(pk=obj.pk).update(active=False)
            return
        MerchantApiUser.objects.filter(pk=obj.pk).update(active=obj.active)
        if password:
            services.api_user_set_password(user_id=obj.pk, password=password)
            messages.success(request, _("Mot de passe de « %(name)s » changé ; son blocage éventuel est levé.")
                             % {"name": obj.name})


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
    fields = ["kind", "state", "amount", "stan", "transmitted_at", "response_code", "rrn", "requested_by",
              "created_at", "decided_at"]
    readonly_fields = fields
    extra = 0
    show_change_link = True


@admin.register(Attempt, site=gateway_admin)
class AttemptAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ["trans_id", "session", "state", "amount", "brand", "masked_pan", "proc_return_code",
                    "callback_answer", "unresolved_at", "created_at"]
    list_filter = [ToReconcileFilter, "state", "brand", "callback_answer"]
    search_fields = ["trans_id", "session__oid", "masked_pan"]
    exclude = ["pan_fingerprint", "rreq_authentication_value"]
    readonly_fields = ["refundable_display"]
    inlines = [OperationInline, EventInline]

    @admin.display(description=_("reste à rembourser"))
    def refundable_display(self, obj: Attempt) -> str:
        return f"{refundable_amount(obj)} DH"


@admin.register(Operation, site=gateway_admin)
class OperationAdmin(ReadOnly, admin.ModelAdmin):
    """The refunds (ISO 8583 0200, processing code 20) of captured payments, one row each, with their answer."""

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
