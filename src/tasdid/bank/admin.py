"""The sandbox bank's staff: banks, cards, accounts, holds, authorizations, 3-D Secure challenges."""

from django.utils.translation import gettext_lazy as _

from tasdid.core.admin_sites import PartyAdminSite

bank_admin = PartyAdminSite("bank_admin", _("Banque (bac à sable) — administration"))
