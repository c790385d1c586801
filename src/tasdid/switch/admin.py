"""The centre monétique's staff: the BIN routing table (editable), the journal, the reversals and the 3-D Secure
directory's authentications (read-only)."""

from django.contrib import admin
from django.db import models
from django.utils.translation import gettext_lazy as _

from tasdid.core.admin_sites import PartyAdminSite, ReadOnlyAdmin

from .models import DirectoryTransaction, JournalEntry, PendingReversal, Route

switch_admin = PartyAdminSite("switch_admin", _("Centre monétique — administration"))


@admin.register(Route, site=switch_admin)
class RouteAdmin(admin.ModelAdmin):
    list_display = ("bin_prefix", "bank_name", "issuer_host", "issuer_port", "acs_url", "active")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}  # an ACS URL typed without its scheme
    list_filter = ("active", "bank_name")
    search_fields = ("bin_prefix", "bank_name")


@admin.register(JournalEntry, site=switch_admin)
class JournalEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "direction", "mti", "stan", "related_stan", "rrn", "response_code", "masked_pan",
                    "bank_name", "amount_minor", "latency_ms", "note")
    list_filter = ("direction", "mti", "response_code", "bank_name")
    search_fields = ("stan", "related_stan", "rrn", "masked_pan", "merchant_id", "peer")
    date_hierarchy = "at"
    show_full_result_count = False  # the journal grows large: no COUNT(*) of the whole table per page


@admin.register(PendingReversal, site=switch_admin)
class PendingReversalAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "bank_name", "original_mti", "original_stan", "amount_minor", "attempts",
                    "next_attempt_at", "acknowledged_at", "response_code", "last_error")
    list_filter = ("bank_name", ("acknowledged_at", admin.EmptyFieldListFilter))
    search_fields = ("original_stan", "merchant_id", "order_id")


@admin.register(DirectoryTransaction, site=switch_admin)
class DirectoryTransactionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "bank_name", "masked_pan", "trans_status", "rreq_status", "ds_trans_id")
    list_filter = ("bank_name", "trans_status", "rreq_status")
    search_fields = ("masked_pan", "ds_trans_id", "three_ds_server_trans_id")
    date_hierarchy = "created_at"
