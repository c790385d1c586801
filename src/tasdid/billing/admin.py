"""The biller's staff: browse and search customers, lines, bills, invoices, orders and payments."""

from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.utils.translation import gettext_lazy as _

from tasdid.core.admin_sites import PartyAdminSite

biller_admin = PartyAdminSite("biller_admin", _("Tasdid — espace facturier"))
biller_admin.register(User, UserAdmin)
biller_admin.register(Group, GroupAdmin)
