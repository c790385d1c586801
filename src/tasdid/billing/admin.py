"""The biller's staff: browse and search customers, lines, bills, invoices, orders and payments.

Customers, lines, bills and invoices come from the bill import, payments from the gateway: the admin shows
them and never edits them (amounts are money, a paid invoice's most of all), except a customer's name and a
line's offer label. Codes are never shown, not even hashed.
"""

from django.contrib import admin
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from tasdid.core.admin_sites import PartyAdminSite, ReadOnlyAdmin, ReadOnlyInline
from tasdid.core.phones import PhoneError, parse_number
from tasdid.messaging.admin import register_outbox

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
    ServiceLine,
)
from .selectors.invoices import line_display

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
    fields = ("client_number", "name", "created_at")
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
    list_display = ("customer", "month", "due_date", "total_ht", "total_vat", "total_ttc", "loyalty_points")
    list_filter = ("month",)
    list_select_related = ("customer",)
    search_fields = ("customer__client_number", "customer__name", "invoices__reference")
    date_hierarchy = "month"
    inlines = (InvoiceInline,)


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


@admin.register(Payment, site=biller_admin)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ("receipt_number", "amount", "paid_at", "masked_pan", "card_brand", "trans_id", "auth_code")
    search_fields = ("receipt_number", "trans_id", "order__oid", "invoices__reference", "email")
    date_hierarchy = "paid_at"
    inlines = (InvoiceInline,)


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
