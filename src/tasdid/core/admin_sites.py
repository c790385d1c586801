"""One admin site per party, on that party's own port: staff of one never browse another's tables."""

from django.contrib.admin import AdminSite
from django.utils.translation import gettext_lazy as _


class PartyAdminSite(AdminSite):
    def __init__(self, name: str, title: str):
        super().__init__(name=name)
        self.site_header = title
        self.site_title = title
        self.index_title = _("Administration")
