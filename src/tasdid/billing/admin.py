"""The biller's staff: browse and search customers, lines, bills, invoices, orders and payments.

Customers, lines, bills and invoices come from the bill import, payments from the gateway: the admin shows
them and never edits them (amounts are money, a paid invoice's most of all), except a customer's name and a
line's offer label. Codes are never shown, not even hashed.
"""

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import translation
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from tasdid.core import i18n
from tasdid.core.admin_sites import PartyAdminSite, ReadOnlyAdmin, ReadOnlyInline
from tasdid.core.money import dh
from tasdid.core.phones import PhoneError, parse_number
from tasdid.messaging.admin import register_outbox

from .documents import bill_pdf
from .models import (
    Bill,
    Customer,
    Discrepancy,
    FidelioCode,
    IdentificationAttempt,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentOrder,
    PaymentOrderEvent,
    PaymentOrderItem,
    ReceiptCheck,
    Refund,
    ServiceLine,
)
from .selectors.bills import bill_document
from .selectors.invoices import line_display
from .selectors.payments import month_label
from .selectors.refunds import UNANSWERED, RefundableInvoice, refundable_invoices, refunds_of
from .services.refunds import RefundError, refund_open, refund_send

# Its staff accounts are on it too (tasdid.core.admin_sites.PartyUserAdmin), as on every party's site.
biller_admin = PartyAdminSite("biller_admin", _("Tasdid — espace facturier"))


def _searched_number(term: str) -> str | None:
    """A phone number typed as on a bill ("06 61 00 00 01") in the stored form (E.164), if it is one."""
    try:
        return parse_number(term)
    except PhoneError:
        return None


def _search_numbers(queryset, term: str, *, number_field: str, identifier_field: str):
    """What staff type as printed on a bill: a phone number in any spelling, an identifier with its spaces."""
    number = _searched_number(term)
    digits = "".join(term.split())
    condition = Q()
    if number:
        condition |= Q(**{number_field: number})
    if digits.isdigit() and len(digits) == 8:
        condition |= Q(**{identifier_field: digits})
    return queryset.filter(condition) if condition else queryset.none()


class ServiceLineInline(ReadOnlyInline):
    model = ServiceLine
    fields = ("kind", "shown_number", "label", "locked_until")
    readonly_fields = fields

    @admin.display(description=_("numéro / identifiant"))
    def shown_number(self, line: ServiceLine) -> str:
        return line_display(line)


class BillInline(ReadOnlyInline):
    model = Bill
    fields = ("month", "due_date", "total_ttc", "loyalty_points")
    readonly_fields = fields


@admin.register(Customer, site=biller_admin)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("client_number", "name", "created_at")
    search_fields = ("client_number", "name")
    fields = ("client_number", "name", "address", "created_at")
    readonly_fields = ("client_number", "created_at")
    inlines = (ServiceLineInline, BillInline)
    ordering = ("client_number",)

    def has_add_permission(self, request):
        return False  # customers come from the bill import

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        results, duplicates = super().get_search_results(request, queryset, search_term)
        if search_term.strip():
            lines = _search_numbers(ServiceLine.objects.all(), search_term.strip(), number_field="number",
                                    identifier_field="payment_identifier")
            results |= queryset.filter(pk__in=lines.values("customer_id"))
        return results, duplicates


@admin.register(ServiceLine, site=biller_admin)
class ServiceLineAdmin(admin.ModelAdmin):
    list_display = ("shown_number", "kind", "customer", "label", "failed_attempts", "locked_until")
    list_filter = ("kind",)
    list_select_related = ("customer",)
    search_fields = ("customer__client_number", "customer__name", "label")
    # Never the payment code's digest: the admin has no use for it and must not leak it.
    fields = ("customer", "kind", "number", "payment_identifier", "label", "failed_attempts", "locked_until",
              "created_at")
    readonly_fields = ("customer", "kind", "number", "payment_identifier", "failed_attempts", "locked_until",
                       "created_at")
    ordering = ("customer__client_number", "kind")

    @admin.display(description=_("numéro / identifiant"))
    def shown_number(self, line: ServiceLine) -> str:
        return line_display(line)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        results, duplicates = super().get_search_results(request, queryset, search_term)
        if search_term.strip():
            results |= _search_numbers(queryset, search_term.strip(), number_field="number",
                                       identifier_field="payment_identifier")
        return results, duplicates


class InvoiceInline(ReadOnlyInline):
    model = Invoice
    fields = ("reference", "line", "amount_ht", "amount_vat", "amount_ttc", "status", "paid_at")
    readonly_fields = fields


@admin.register(Bill, site=biller_admin)
class BillAdmin(ReadOnlyAdmin):
    list_display = ("customer", "month", "due_date", "total_ht", "total_vat", "total_ttc", "loyalty_points",
                    "pdf_link")
    list_filter = ("month",)
    list_select_related = ("customer",)
    search_fields = ("customer__client_number", "customer__name", "invoices__reference")
    date_hierarchy = "month"
    fields = ("customer", "month", "due_date", "total_ht", "total_vat", "total_ttc", "loyalty_points",
              "loyalty_balance", "pdf_links")
    readonly_fields = fields
    inlines = (InvoiceInline,)

    def get_urls(self):
        # Behind admin_view: the biller's staff only (PartyAdminSite.has_permission), others go to the login page.
        return [path("<int:bill_id>/pdf/", self.admin_site.admin_view(self.pdf_view), name="billing_bill_pdf"),
                *super().get_urls()]

    def pdf_view(self, request, bill_id: int) -> HttpResponse:
        """The bill as the customer gets it (tasdid.billing.documents), in ``?language=`` or the admin's language
        (not ``?lang=``, which would switch the admin's own language too)."""
        if not self.has_view_permission(request):
            raise Http404
        bill = bill_document(bill_id=bill_id)
        if bill is None:
            raise Http404
        language = i18n.known(request.GET.get("language")) or translation.get_language()
        response = HttpResponse(bill_pdf(bill, language=language), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{bill.filename}"'
        response["Cache-Control"] = "no-store"
        return response

    def _pdf_url(self, bill: Bill) -> str:
        return reverse(f"{self.admin_site.name}:billing_bill_pdf", args=[bill.pk])

    @admin.display(description=_("facture (PDF)"))
    def pdf_link(self, bill: Bill) -> str:
        return format_html('<a href="{}" download>PDF</a>', self._pdf_url(bill))

    @admin.display(description=_("facture (PDF)"))
    def pdf_links(self, bill: Bill) -> str:
        """One link per language of the bill."""
        url = self._pdf_url(bill)
        return format_html_join(" · ", '<a href="{}?language={}" download lang="{}">{}</a>',
                                ((url, code, code, name) for code, name in settings.LANGUAGES))


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    fields = ("position", "section", "label", "period_start", "period_end", "amount_ht", "free")
    readonly_fields = fields
    show_change_link = False


@admin.register(Invoice, site=biller_admin)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ("reference", "customer", "line", "month", "due_date", "amount_ttc", "status", "paid_at")
    list_filter = ("status", "line__kind", "bill__month")
    list_select_related = ("bill__customer", "line")
    search_fields = ("reference", "bill__customer__client_number", "bill__customer__name")
    fields = ("reference", "bill", "line", "amount_ht", "amount_vat", "amount_ttc", "status", "paid_at", "payment")
    inlines = (InvoiceLineInline,)

    @admin.display(description=_("client"), ordering="bill__customer__client_number")
    def customer(self, invoice: Invoice) -> Customer:
        return invoice.bill.customer

    @admin.display(description=_("mois"), ordering="bill__month")
    def month(self, invoice: Invoice) -> str:
        return f"{invoice.bill.month:%m/%Y}"

    @admin.display(description=_("date limite de paiement"), ordering="bill__due_date")
    def due_date(self, invoice: Invoice):
        return invoice.bill.due_date

    def get_search_results(self, request, queryset, search_term):
        results, duplicates = super().get_search_results(request, queryset, search_term)
        if search_term.strip():
            lines = _search_numbers(ServiceLine.objects.all(), search_term.strip(), number_field="number",
                                    identifier_field="payment_identifier")
            results |= queryset.filter(line__in=lines)
        return results, duplicates


class PaymentOrderItemInline(ReadOnlyInline):
    model = PaymentOrderItem
    fields = ("invoice", "amount")
    readonly_fields = fields


class PaymentOrderEventInline(ReadOnlyInline):
    model = PaymentOrderEvent
    fields = ("at", "from_state", "to_state", "cause")
    readonly_fields = fields
    show_change_link = False


@admin.register(PaymentOrder, site=biller_admin)
class PaymentOrderAdmin(ReadOnlyAdmin):
    list_display = ("oid", "line", "amount", "state", "failure_code", "created_at", "updated_at", "reconciled_at")
    list_filter = ("state", ("reconciled_at", admin.EmptyFieldListFilter))
    list_select_related = ("line",)
    search_fields = ("oid", "email", "items__invoice__reference")
    inlines = (PaymentOrderItemInline, PaymentOrderEventInline)


class RefundInline(ReadOnlyInline):
    """The payment's refunds: its audit trail, who asked and what the gateway said."""

    model = Refund
    fk_name = "payment"
    fields = ("created_at", "requested_by", "amount", "invoice_references", "invoices_afterwards", "state",
              "answered_at", "trans_id", "message")
    readonly_fields = fields
    ordering = ("created_at", "pk")


ALL = "all"


def _id(text: str) -> int:
    """An invoice's id as posted; 0 (no invoice) for junk: the service then says it is not refundable."""
    return int(text) if text.isascii() and text.isdecimal() and len(text) < 19 else 0


class RefundForm(forms.Form):
    """What to refund of a payment: all it has left, or one of its invoices; and what becomes of the invoices."""

    what = forms.ChoiceField(label=_("Que rembourser ?"), widget=forms.RadioSelect)
    afterwards = forms.ChoiceField(label=_("Ensuite, les factures remboursées sont :"),
                                   choices=Refund.Afterwards.choices, widget=forms.RadioSelect)

    def __init__(self, *args, refundable: list[RefundableInvoice], **kwargs):
        super().__init__(*args, **kwargs)
        self.refundable = refundable
        total = sum(item.amount for item in refundable)
        choices = [(ALL, _("Tout ce qui reste du paiement : %(amount)s (%(count)s facture(s))")
                    % {"amount": dh(total), "count": len(refundable)})] if refundable else []
        choices += [(str(item.invoice.pk), _("La facture %(reference)s (%(month)s) : %(amount)s")
                     % {"reference": item.invoice.reference, "month": month_label(item.invoice.bill.month),
                        "amount": dh(item.amount)}) for item in refundable]
        self.fields["what"].choices = choices

    def chosen(self) -> list[RefundableInvoice]:
        what = self.cleaned_data["what"]
        return self.refundable if what == ALL else [i for i in self.refundable if str(i.invoice.pk) == what]


@admin.register(Payment, site=biller_admin)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ("receipt_number", "amount", "refunded_amount", "paid_at", "masked_pan", "card_brand", "trans_id",
                    "auth_code")
    search_fields = ("receipt_number", "trans_id", "order__oid", "invoices__reference", "email")
    date_hierarchy = "paid_at"
    readonly_fields = ("refund_link",)
    inlines = (InvoiceInline, RefundInline)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [path("<int:payment_id>/rembourser/", view(self.refund_view), name="billing_payment_refund"),
                path("<int:payment_id>/rembourser/<int:refund_id>/", view(self.refund_result_view),
                     name="billing_payment_refund_result"),
                *super().get_urls()]

    def _can_refund(self, request) -> bool:
        return self.has_view_permission(request) and request.user.has_perm("billing.add_refund")

    @admin.display(description=_("remboursement"))
    def refund_link(self, payment: Payment) -> str:
        if not refundable_invoices(payment=payment):
            return _("Rien à rembourser")
        url = reverse(f"{self.admin_site.name}:billing_payment_refund", args=[payment.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, _("Rembourser"))

    def _payment(self, payment_id: int) -> Payment:
        payment = Payment.objects.select_related("order").filter(pk=payment_id).first()
        if payment is None:
            raise Http404
        return payment

    def refund_view(self, request, payment_id: int):
        """« Rembourser »: the choice (all that is left, or one invoice; the invoices reopened or closed), a
        confirmation step, then the refund recorded, sent to the gateway, and its result shown."""
        if not self._can_refund(request):
            raise PermissionDenied
        payment = self._payment(payment_id)
        refundable = refundable_invoices(payment=payment)
        confirming = False
        error = ""
        if request.method == "POST" and "confirm" in request.POST:
            # Decided by the service under the payment's lock, not by the choices this page offered: a page left
            # open while another refund went through gets the service's reason.
            what = request.POST.get("what", "")
            try:
                refund = refund_open(payment_id=payment.pk, invoice_id=None if what == ALL else _id(what),
                                     afterwards=request.POST.get("afterwards", ""), requested_by_id=request.user.pk)
            except RefundError as exc:
                error = str(exc)
            else:
                refund_send(refund_id=refund.pk)
                return redirect(f"{self.admin_site.name}:billing_payment_refund_result", payment.pk, refund.pk)
            refundable = refundable_invoices(payment=payment)
            form = RefundForm(refundable=refundable)
        elif request.method == "POST":
            form = RefundForm(request.POST, refundable=refundable)
            confirming = form.is_valid()
        else:
            form = RefundForm(refundable=refundable)
        chosen = form.chosen() if confirming else []
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "payment": payment, "form": form,
            "title": _("Rembourser le paiement %(number)s") % {"number": payment.receipt_number},
            "confirming": confirming, "chosen": chosen, "chosen_total": sum(i.amount for i in chosen),
            "afterwards": dict(Refund.Afterwards.choices).get(form.cleaned_data.get("afterwards"))
            if confirming else "",
            "refunds": refunds_of(payment_id=payment.pk), "nothing_left": not refundable, "error": error,
        }
        return TemplateResponse(request, "admin/billing/payment/refund.html", context)

    def refund_result_view(self, request, payment_id: int, refund_id: int):
        """A refund's result; « Envoyer de nouveau » while it has no answer (the same key: refunded once)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        payment = self._payment(payment_id)
        refund = Refund.objects.select_related("requested_by").filter(pk=refund_id, payment=payment).first()
        if refund is None:
            raise Http404
        if request.method == "POST" and self._can_refund(request) and refund.state in UNANSWERED:
            refund_send(refund_id=refund.pk)
            return redirect(f"{self.admin_site.name}:billing_payment_refund_result", payment.pk, refund.pk)
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "payment": payment, "refund": refund,
            "title": _("Remboursement du paiement %(number)s") % {"number": payment.receipt_number},
            "unanswered": refund.state in UNANSWERED, "can_refund": self._can_refund(request),
            "payment_url": reverse(f"{self.admin_site.name}:billing_payment_change", args=[payment.pk]),
        }
        return TemplateResponse(request, "admin/billing/payment/refund_result.html", context)


@admin.register(Refund, site=biller_admin)
class RefundAdmin(ReadOnlyAdmin):
    """Every refund asked, with who asked it and the gateway's answer (asked from a payment's page)."""

    list_display = ("created_at", "payment", "amount", "invoice_references", "invoices_afterwards", "state",
                    "requested_by", "answered_at", "result_link")
    list_filter = ("state", "invoices_afterwards")
    list_select_related = ("payment", "requested_by")
    search_fields = ("payment__receipt_number", "payment__order__oid", "invoice_references", "trans_id", "key")
    date_hierarchy = "created_at"

    @admin.display(description=_("résultat"))
    def result_link(self, refund: Refund) -> str:
        url = reverse(f"{self.admin_site.name}:billing_payment_refund_result", args=[refund.payment_id, refund.pk])
        return format_html('<a href="{}">{}</a>', url, _("Voir"))


@admin.register(Discrepancy, site=biller_admin)
class DiscrepancyAdmin(ReadOnlyAdmin):
    """What reconciliation flagged (services.reconciliation): each row was also logged at ERROR and emailed to
    settings.RECONCILE_ALERT_EMAIL."""

    list_display = ("found_at", "order", "kind", "gateway_status", "amount", "captured_amount", "receipt_number",
                    "invoice_references")
    list_filter = ("kind", "gateway_status")
    list_select_related = ("order",)
    search_fields = ("order__oid", "receipt_number", "trans_id", "invoice_references")
    date_hierarchy = "found_at"


@admin.register(IdentificationAttempt, site=biller_admin)
class IdentificationAttemptAdmin(ReadOnlyAdmin):
    list_display = ("at", "kind", "line", "client_ip", "succeeded", "reason")
    list_filter = ("kind", "succeeded", "reason")
    list_select_related = ("line",)
    search_fields = ("client_ip",)
    date_hierarchy = "at"


@admin.register(ReceiptCheck, site=biller_admin)
class ReceiptCheckAdmin(ReadOnlyAdmin):
    list_display = ("at", "receipt_number", "client_ip", "genuine", "limited")
    list_filter = ("genuine", "limited")
    search_fields = ("client_ip", "receipt_number")
    date_hierarchy = "at"


@admin.register(FidelioCode, site=biller_admin)
class FidelioCodeAdmin(ReadOnlyAdmin):
    list_display = ("line", "created_at", "expires_at", "used_at")
    list_select_related = ("line",)
    fields = ("line", "created_at", "expires_at", "used_at")  # never the digest


# The outbox (receipts by email, codes by SMS): failures, retries and "Renvoyer" (tasdid.messaging.admin).
register_outbox(biller_admin)
