"""The gateway's staff: merchants, payment sessions and attempts."""

from django.utils.translation import gettext_lazy as _

from tasdid.core.admin_sites import PartyAdminSite

gateway_admin = PartyAdminSite("gateway_admin", _("Tasdid Pay — administration"))
