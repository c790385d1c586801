"""One admin site per party, on that party's own port: staff of one never browse another's tables."""

from django.contrib import admin
from django.contrib.admin import AdminSite
from django.utils.translation import gettext_lazy as _


class PartyAdminSite(AdminSite):
    def __init__(self, name: str, title: str):
        super().__init__(name=name)
        self.site_header = title
        self.site_title = title
        self.index_title = _("Administration")


class ReadOnly:
    """Mixin for records whose history matters (money moved, events): shown and searched, never added, changed
    or deleted by staff."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdmin(ReadOnly, admin.ModelAdmin):
    pass


class ReadOnlyInline(ReadOnly, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True
