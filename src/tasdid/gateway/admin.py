"""The gateway's staff: merchants, payment sessions and attempts with their operations (authorization, capture,
void, refunds), the capture, void and refund of an attempt (actions with a confirmation page), reversals owed to
the switch."""

import datetime as dt
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.http import Http404, HttpResponse, HttpResponseRedirect, QueryDict
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.formats import date_format
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from tasdid.core.admin_sites import PartyAdminSite, ReadOnly
from tasdid.core.cards import mask_card_numbers
from tasdid.core.http import no_store, see_other

from . import flow, protocol, selectors, services
from .models import (
    ApiAddressLock,
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
from .report import STATUS_LABELS, bar_chart, csv_text
from .selectors import (
    TransactionSearch,
    capturable_amount,
    daily_report,
    day_attempts,
    day_bounds,
    merchant_transactions,
    refundable_amount,
    refunds_approved_for,
)

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
        fields = ["client_id", "name", "mode", "active"]

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


class RotationForm(forms.Form):
    confirmation = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)
    overlap_days = forms.IntegerField(
        label=_("Ancienne clé encore acceptée pendant (jours)"), min_value=0,
        max_value=services.MAX_STORE_KEY_OVERLAP.days, initial=services.STORE_KEY_OVERLAP.days,
        help_text=_("Le temps pour le marchand d'installer la nouvelle clé : ses demandes signées avec l'ancienne "
                    "restent acceptées jusque-là, et leurs rappels et retours signés avec l'ancienne. Celles "
                    "signées avec la nouvelle ont leurs rappels et retours signés avec la nouvelle."),
    )


_DIGITS6 = RegexValidator(r"^[0-9]{6}$", _("Saisissez exactement les 6 premiers chiffres de la carte."))
_DIGITS4 = RegexValidator(r"^[0-9]{4}$", _("Saisissez exactement les 4 derniers chiffres de la carte."))


def shown_again(data, *, empty=()) -> QueryDict:
    """Search data as a page may write it back (its inputs, its links): the fields ``empty`` emptied, every card
    number masked (first 6 and last 4)."""
    shown = QueryDict(mutable=True)
    for name in data:
        values = data.getlist(name) if hasattr(data, "getlist") else [data[name]]
        shown.setlist(name, [""] if name in empty else [mask_card_numbers(str(v)) for v in values])
    return shown


# The dates the back office searches and reports on: a day past these has no attempt, and its bounds in the
# platform's time zone would not fit Python's dates (9999-12-31 has no next day).
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2099, 12, 31)


def _day_field(label, *, required: bool = False) -> forms.DateField:
    message = _("Indiquez une date entre le 1er janvier 2000 et le 31 décembre 2099.")
    return forms.DateField(
        label=label, required=required,
        validators=[MinValueValidator(FIRST_DAY, message), MaxValueValidator(LAST_DAY, message)],
        widget=forms.DateInput(attrs={"type": "date", "min": FIRST_DAY.isoformat(), "max": LAST_DAY.isoformat()}))


class TransactionSearchForm(forms.Form):
    """The search of a merchant's transactions (GET). A card is looked up by its first six and last four digits
    only, never by its full number (the gateway does not keep it)."""

    oid = forms.CharField(label=_("Commande (oid)"), required=False, max_length=64)
    card_first6 = forms.CharField(label=_("Carte : 6 premiers chiffres"), required=False, max_length=6,
                                  validators=[_DIGITS6], widget=forms.TextInput(attrs={"inputmode": "numeric"}))
    card_last4 = forms.CharField(label=_("Carte : 4 derniers chiffres"), required=False, max_length=4,
                                 validators=[_DIGITS4], widget=forms.TextInput(attrs={"inputmode": "numeric"}))
    date_from = _day_field(_("Du"))
    date_to = _day_field(_("Au"))
    status = forms.ChoiceField(label=_("État"), required=False,
                               choices=[("", _("tous")), *AttemptState.choices])
    amount = forms.DecimalField(label=_("Montant (DH)"), required=False, min_value=0, max_digits=12,
                                decimal_places=2, localize=False)

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", _("La date de fin précède la date de début."))
        return data

    def full_clean(self):
        """Checked, then what the page shows again made safe: a card field in error shows empty (a full card
        number typed there is not written back), and a card number in any field shows masked."""
        super().full_clean()
        if self.is_bound:
            self.data = shown_again(self.data, empty=[name for name in ("card_first6", "card_last4")
                                                      if name in self._errors])

    def search(self) -> TransactionSearch:
        data = self.cleaned_data
        return TransactionSearch(oid=data["oid"].strip(), card_first6=data["card_first6"],
                                 card_last4=data["card_last4"], date_from=data["date_from"],
                                 date_to=data["date_to"], status=data["status"], amount=data["amount"])


class ReportDayForm(forms.Form):
    day = _day_field(_("Jour"), required=True)


@admin.register(Merchant, site=gateway_admin)
class MerchantAdmin(admin.ModelAdmin):
    form = MerchantForm
    list_display = ["client_id", "name", "mode", "active", "hosts_display", "store_key_display", "back_office",
                    "updated_at"]
    list_filter = ["mode", "active"]
    search_fields = ["client_id", "name"]
    actions = ["rotate_store_key"]
    transactions_per_page = 50

    def get_readonly_fields(self, request, obj=None):
        return ["client_id", "store_key_display", "previous_key_display", "back_office"] if obj else []

    def get_fields(self, request, obj=None):
        if obj:
            return ["client_id", "name", "mode", "active", "hosts", "store_key_display", "previous_key_display",
                    "new_store_key", "back_office"]
        return ["client_id", "name", "mode", "active", "hosts", "new_store_key"]

    @admin.display(description=_("hôtes de retour"))
    def hosts_display(self, obj: Merchant) -> str:
        return ", ".join(obj.return_hosts)

    @admin.display(description=_("clé du magasin"))
    def store_key_display(self, obj: Merchant) -> str:
        return masked_key(obj.store_key)

    @admin.display(description=_("clé précédente"))
    def previous_key_display(self, obj: Merchant) -> str:
        if not obj.previous_store_key_sealed or not obj.previous_store_key_until:
            return "—"
        until = date_format(timezone.localtime(obj.previous_store_key_until), "DATETIME_FORMAT")
        if obj.previous_store_key_until <= timezone.now():
            return _("%(key)s, plus acceptée depuis le %(until)s") % {
                "key": masked_key(obj.previous_store_key), "until": until}
        return _("%(key)s, acceptée jusqu'au %(until)s") % {"key": masked_key(obj.previous_store_key), "until": until}

    @admin.display(description=_("suivi"))
    def back_office(self, obj: Merchant) -> str:
        links = [(reverse(f"{self.admin_site.name}:gateway_merchant_transactions", args=[obj.pk]), _("transactions")),
                 (reverse(f"{self.admin_site.name}:gateway_merchant_report", args=[obj.pk]), _("rapport du jour")),
                 (reverse(f"{self.admin_site.name}:gateway_merchant_rotation", args=[obj.pk]),
                  _("changer la clé du magasin"))]
        return format_html_join(" · ", '<a href="{}">{}</a>', links)

    @method_decorator(sensitive_post_parameters("new_store_key"))
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, extra_context)

    @sensitive_variables("data")
    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        result = services.merchant_register(
            client_id=obj.client_id, name=data["name"], return_hosts=data["hosts"],
            store_key=data.get("new_store_key") or None, active=data["active"], mode=data["mode"],
        )
        obj.pk = result.merchant.pk
        obj.refresh_from_db()

    # --- store key rotation ---

    @admin.action(description=_("Changer la clé du magasin (l'ancienne reste acceptée un temps)"),
                  permissions=["rotate_store_key"])
    def rotate_store_key(self, request, queryset):
        merchants = list(queryset[:2])
        if len(merchants) != 1:
            self.message_user(request, _("Choisissez un seul marchand pour changer sa clé."), messages.ERROR)
            return None
        return HttpResponseRedirect(
            reverse(f"{self.admin_site.name}:gateway_merchant_rotation", args=[merchants[0].pk]))

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/rotation/", view(self.rotation_view), name="gateway_merchant_rotation"),
            path("<int:pk>/transactions/", view(self.transactions_view), name="gateway_merchant_transactions"),
            path("<int:pk>/rapport/", view(self.report_view), name="gateway_merchant_report"),
            path("<int:pk>/rapport.csv", view(self.report_csv_view), name="gateway_merchant_report_csv"),
            *super().get_urls(),
        ]

    def has_rotate_store_key_permission(self, request, obj=None) -> bool:
        """Rotating a store key asks for its own permission (gateway.rotate_store_key), beyond changing the
        merchant: the gateway staff group does not carry it (core.staff.RESERVED_PERMISSIONS)."""
        return self.has_change_permission(request, obj) and request.user.has_perm("gateway.rotate_store_key")

    def has_transactions_permission(self, request, obj=None) -> bool:
        """The transactions, the daily report and its CSV: seeing the merchant and its card attempts."""
        return self.has_view_permission(request, obj) and request.user.has_perm("gateway.view_attempt")

    def _merchant(self, request, pk: int, *, rotate: bool = False) -> Merchant:
        merchant = Merchant.objects.filter(pk=pk).first()
        if merchant is None:
            raise Http404(_("Marchand inconnu."))
        allowed = (self.has_rotate_store_key_permission(request, merchant) if rotate
                   else self.has_transactions_permission(request, merchant))
        if not allowed:
            raise PermissionDenied
        return merchant

    def _context(self, request, merchant: Merchant, title: str, **extra) -> dict:
        return {**self.admin_site.each_context(request), "opts": self.model._meta, "merchant": merchant,
                "title": title, "subtitle": str(merchant), **extra}

    @method_decorator(sensitive_post_parameters())
    @sensitive_variables("rotation", "context")
    def rotation_view(self, request, pk: int):
        """GET: the confirmation, with the overlap asked. POST: the rotation, the new key shown this once. Each
        confirmation page rotates once: it carries the key's state it was shown for, and a second post of it (the
        browser's reload, a double submit, another tab) finds the key changed and changes nothing."""
        merchant = self._merchant(request, pk, rotate=True)
        if request.method != "POST":
            form = RotationForm(initial={"confirmation": services.rotation_confirmation(merchant)})
        else:
            form = RotationForm(request.POST)
            if form.is_valid():
                try:
                    rotation = services.merchant_rotate_store_key(
                        merchant_id=merchant.pk, overlap=dt.timedelta(days=form.cleaned_data["overlap_days"]),
                        confirmation=form.cleaned_data["confirmation"])
                except services.RotationOutdated:
                    self.message_user(request, _("Cette confirmation a déjà servi : la clé du magasin n'a pas été "
                                                 "changée une nouvelle fois."), messages.WARNING)
                    return see_other(reverse(f"{self.admin_site.name}:gateway_merchant_change", args=[merchant.pk]))
                self.log_change(request, merchant, [{"changed": {"fields": ["store_key_sealed"]}}])
                context = self._context(request, rotation.merchant, _("Nouvelle clé du magasin"),
                                        new_key=rotation.new_key, previous_until=rotation.previous_until)
                return no_store(TemplateResponse(request, "gateway/admin/merchant_rotated.html", context))
        context = self._context(request, merchant, _("Changer la clé du magasin"), form=form)
        return no_store(TemplateResponse(request, "gateway/admin/merchant_rotation.html", context))

    # --- transactions and the daily report ---

    def transactions_view(self, request, pk: int):
        merchant = self._merchant(request, pk)
        form = TransactionSearchForm(request.GET or None)
        page = None
        if form.is_bound and form.is_valid():
            rows = merchant_transactions(merchant, form.search())
        elif not form.is_bound:
            rows = merchant_transactions(merchant)
        else:
            rows = None
        if rows is not None:
            page = Paginator(rows, self.transactions_per_page).get_page(request.GET.get("page"))
        query = form.data.copy() if form.is_bound else QueryDict(mutable=True)
        query.pop("page", None)
        context = self._context(request, merchant, _("Transactions du marchand"), form=form, page=page,
                                query=query.urlencode())
        return TemplateResponse(request, "gateway/admin/merchant_transactions.html", context)

    def _day(self, request) -> tuple[ReportDayForm, dt.date]:
        form = ReportDayForm(request.GET if "day" in request.GET else {"day": timezone.localdate().isoformat()})
        day = form.cleaned_data["day"] if form.is_valid() else timezone.localdate()
        return form, day

    def report_view(self, request, pk: int):
        merchant = self._merchant(request, pk)
        form, day = self._day(request)
        report = daily_report(merchant, day)
        day_text = date_format(day, "DATE_FORMAT")
        chart = bar_chart(report.lines, title=_("Montants du %(day)s par état") % {"day": day_text})
        lines = [(line, STATUS_LABELS[line.status]) for line in report.lines]
        csv_url = reverse(f"{self.admin_site.name}:gateway_merchant_report_csv", args=[merchant.pk])
        context = self._context(request, merchant, _("Rapport de règlement du jour"), form=form, report=report,
                                lines=lines, chart=chart, day=day, day_text=day_text,
                                csv_url=f"{csv_url}?day={day.isoformat()}")
        return TemplateResponse(request, "gateway/admin/merchant_report.html", context)

    def report_csv_view(self, request, pk: int):
        """The day's transactions: the attempts begun that day and the refunds approved that day, masked cards
        only, amounts as decimals."""
        merchant = self._merchant(request, pk)
        form, day = self._day(request)
        if not form.is_valid():
            return HttpResponse(_("Jour invalide : indiquez une date AAAA-MM-JJ."), status=400,
                                content_type="text/plain; charset=utf-8")
        header = [_("date"), _("opération"), _("commande"), _("TransId"), _("état"), _("montant"), _("devise"),
                  _("carte"), _("type de carte"), _("n° d'autorisation"), _("code réponse")]
        tz = timezone.get_default_timezone()
        start, end = day_bounds(day)
        rows = [
            [timezone.localtime(a.created_at, tz).isoformat(timespec="seconds"), _("paiement"), a.session.oid,
             a.trans_id, a.get_state_display(), a.amount, a.session.currency, a.masked_pan, a.brand, a.auth_code,
             a.response_code]
            for a in day_attempts(merchant, day)
        ] + [
            [timezone.localtime(op.decided_at, tz).isoformat(timespec="seconds"), op.get_kind_display(),
             op.attempt.session.oid, op.attempt.trans_id, op.get_state_display(), op.amount, op.currency,
             op.attempt.masked_pan, op.attempt.brand, "", op.response_code]
            for op in refunds_approved_for(merchant, start=start, end=end)
        ]
        response = HttpResponse(csv_text(header, rows), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="tasdid-{merchant.pk}-{day.isoformat()}.csv"'
        return no_store(response)


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


class ApiAddressLockInline(ReadOnly, admin.TabularInline):
    """The client addresses that gave the user wrong passwords lately, and those locked (lifted by the action
    « Lever les blocages »)."""

    model = ApiAddressLock
    fields = ["address", "failures", "last_failure_at", "locked_until"]
    readonly_fields = fields
    extra = 0


@admin.register(MerchantApiUser, site=gateway_admin)
class MerchantApiUserAdmin(admin.ModelAdmin):
    """The logins of merchants' programs to the XML API (/fim/api)."""

    form = MerchantApiUserForm
    list_display = ["name", "merchant", "active", "locked_until", "last_used_at", "created_at"]
    list_filter = ["active", "merchant"]
    search_fields = ["name", "merchant__client_id"]
    readonly_fields = ["failed_attempts", "failures_since", "locked_until", "last_used_at", "created_at"]
    inlines = [ApiAddressLockInline]
    actions = ["unlock"]

    def get_inlines(self, request, obj=None):
        return self.inlines if obj else []

    @admin.action(description=_("Lever les blocages (l'utilisateur et ses adresses)"), permissions=["change"])
    def unlock(self, request, queryset):
        lifted = sum(services.api_user_unlock(user_id=pk) for pk in queryset.values_list("pk", flat=True))
        self.message_user(request, _("Blocages levés : %(users)s utilisateur(s), %(addresses)s adresse(s).")
                          % {"users": queryset.count(), "addresses": lifted}, messages.SUCCESS)

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
    fields = ["kind", "state", "amount", "stan", "transmitted_at", "response_code", "rrn", "tries", "requested_by",
              "created_at", "decided_at"]
    readonly_fields = fields
    extra = 0
    show_change_link = True


def _posted_amount(text: str | None) -> Decimal:
    """The amount left to refund that the confirmation page showed; -1 (never what is left) when absent or junk."""
    try:
        value = Decimal((text or "").strip())
    except ArithmeticError:
        return Decimal("-1")
    return value if value.is_finite() else Decimal("-1")


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
                else:  # refused if what is left changed since the page was shown (a confirmation posted twice)
                    operation = flow.refund(attempt_id=attempt.pk, amount=amount, requested_by=who,
                                            expected_left=_posted_amount(request.POST.get("left")))
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
