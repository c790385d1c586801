"""The sandbox bank's staff: banks, cards, accounts, holds, authorizations, refunds, 3-D Secure
challenges.

Records of money and messages are read-only here: they move only through the services.
"""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from tasdid.core.admin_sites import PartyAdminSite, ReadOnlyAdmin, ReadOnlyInline

from .models import (
    Account,
    AcsEvent,
    AcsTransaction,
    Authorization,
    Bank,
    Card,
    Hold,
    HoldEvent,
    LedgerEntry,
    Refund,
)

bank_admin = PartyAdminSite("bank_admin", _("Banque (bac à sable) — administration"))


@admin.register(Bank, site=bank_admin)
class BankAdmin(admin.ModelAdmin):
    list_display = ("name", "short_name", "code", "bin_prefixes")


class CardInline(ReadOnlyInline):
    model = Card
    fields = ("masked_pan", "brand", "status", "three_ds", "expiry_month", "expiry_year")
    readonly_fields = fields


class LedgerInline(ReadOnlyInline):
    model = LedgerEntry
    fields = ("created_at", "kind", "amount", "balance_after", "label")
    readonly_fields = fields


@admin.register(Account, site=bank_admin)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ("number", "holder_name", "bank", "balance")
    list_filter = ("bank",)
    search_fields = ("number", "holder_name")
    inlines = (CardInline, LedgerInline)


@admin.register(Card, site=bank_admin)
class CardAdmin(admin.ModelAdmin):
    """Staff may change a card's status (lost, stolen, blocked) and its 3-D Secure enrolment; nothing else."""

    list_display = ("masked_pan", "brand", "bank", "holder_name", "status", "three_ds")
    list_filter = ("bank", "brand", "status", "three_ds")
    search_fields = ("last4", "holder_name")
    fields = ("bank", "account", "brand", "masked_pan", "holder_name", "phone", "expiry_month", "expiry_year",
              "status", "three_ds", "issued_at")
    readonly_fields = ("bank", "account", "brand", "masked_pan", "holder_name", "phone", "expiry_month",
                       "expiry_year", "issued_at")

    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Authorization, site=bank_admin)
class AuthorizationAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "masked_pan", "amount", "merchant_name", "response_code", "reason", "eci",
                    "auth_code", "rrn")
    list_filter = ("response_code",)
    search_fields = ("rrn", "auth_code", "stan", "order_id", "merchant_id")
    date_hierarchy = "received_at"


@admin.register(Refund, site=bank_admin)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "masked_pan", "amount", "merchant_id", "original_rrn", "response_code", "reason",
                    "reversed_at")
    list_filter = ("response_code",)
    search_fields = ("rrn", "original_rrn", "stan", "merchant_id")
    date_hierarchy = "received_at"


class HoldEventInline(ReadOnlyInline):
    model = HoldEvent
    fields = ("at", "from_state", "to_state", "cause")
    readonly_fields = fields


@admin.register(Hold, site=bank_admin)
class HoldAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "card", "amount", "merchant_name", "auth_code", "rrn", "state")
    list_filter = ("state",)
    search_fields = ("rrn", "auth_code", "stan", "order_id")
    inlines = (HoldEventInline,)


class AcsEventInline(ReadOnlyInline):
    model = AcsEvent
    fields = ("at", "kind", "detail")
    readonly_fields = fields


@admin.register(AcsTransaction, site=bank_admin)
class AcsTransactionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "card", "amount", "merchant_name", "state", "trans_status", "otp_failures",
                    "rreq_delivered_at")
    list_filter = ("state", "trans_status")
    search_fields = ("acs_trans_id", "three_ds_server_trans_id")
    exclude = ("otp_digest",)
    inlines = (AcsEventInline,)
