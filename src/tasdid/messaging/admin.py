"""The outbox in a party's admin: every SMS and email with its state, tries, last error and next try, and a
"Renvoyer" action for the failed ones. Shown on the biller's site (``register_outbox(biller_admin)``): messaging
is infrastructure and has no admin site of its own. An SMS's codes are never shown, even while it is queued."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from tasdid.core.admin_sites import ReadOnlyAdmin

from . import services
from .models import Email, Sms


def _report(modeladmin, request, *, resent: int, skipped: int) -> None:
    if resent:
        modeladmin.message_user(request, ngettext("%d message remis en file d'envoi.",
                                                  "%d messages remis en file d'envoi.", resent) % resent,
                                messages.SUCCESS)
    if skipped:
        modeladmin.message_user(request, ngettext(
            "%d message ignoré : seul un message en échec peut être renvoyé (et jamais un SMS dont le code a été "
            "masqué).", "%d messages ignorés : seul un message en échec peut être renvoyé (et jamais un SMS dont "
            "le code a été masqué).", skipped) % skipped, messages.WARNING)


class EmailAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "to", "subject", "status", "attempts", "next_try_at", "last_error", "sent_at")
    list_filter = ("status",)
    search_fields = ("to", "subject")
    date_hierarchy = "created_at"
    fields = ("to", "subject", "status", "attempts", "resends", "next_try_at", "last_error", "created_at",
              "sent_at", "message_id", "body_text")
    readonly_fields = fields
    actions = ("resend",)

    @admin.action(description=_("Renvoyer les emails en échec"))
    def resend(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        resent = sum(services.email_resend(email_id=pk) for pk in ids)
        _report(self, request, resent=resent, skipped=len(ids) - resent)


class SmsAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "direction", "sender", "recipient", "shown_text", "status", "attempts",
                    "next_try_at", "last_error", "smsc_id")
    list_filter = ("status", "direction")
    search_fields = ("recipient", "sender", "smsc_id")
    date_hierarchy = "created_at"
    fields = ("direction", "sender", "recipient", "shown_text", "status", "attempts", "resends", "next_try_at",
              "last_error", "created_at", "accepted_at", "delivered_at", "smsc_id", "message_id")
    readonly_fields = fields
    actions = ("resend",)

    @admin.display(description=_("texte"))
    def shown_text(self, sms: Sms) -> str:
        return services.redact(sms.text, sms.secrets)

    @admin.action(description=_("Renvoyer les SMS en échec"))
    def resend(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        resent = sum(services.sms_resend(sms_id=pk) for pk in ids)
        _report(self, request, resent=resent, skipped=len(ids) - resent)


def register_outbox(site: admin.AdminSite) -> None:
    site.register(Email, EmailAdmin)
    site.register(Sms, SmsAdmin)
