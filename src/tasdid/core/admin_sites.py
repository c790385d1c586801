"""One admin site per party, on that party's own port, open only to that party's staff.

Who may enter: an active staff account in the party's staff group (tasdid.core.staff); being a superuser is
not enough on its own, so that the staff of one party never browse another's tables, whatever port their
browser reaches. The login form refuses anyone else.

Accounts: each party's site lists, adds and edits the accounts of its own staff (a superuser member does it);
an account added there joins that party's group. Accounts are shared by the parties of one deployment, so an
account that also belongs to another party's staff is read-only on each site, its password included: no
party's staff can take over an account that opens another party's admin. Memberships and superuser status are
granted by the operator, with ``tasdid staff-grant USERNAME PARTY…`` (and ``tasdid createsuperuser``).

Language: every admin is in French, whatever the ``?lang=`` or the language cookie a staff member's browser
carries from the customer pages of the same host (the customer's choice is not the staff's).
"""

from functools import wraps

from django.contrib import admin
from django.contrib.admin import AdminSite
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from . import i18n
from .http import PARTIES, party_of
from .staff import STAFF_GROUPS, is_party_staff, other_parties_of, staff_group


class PartyAuthenticationForm(AdminAuthenticationForm):
    """The admin's login form, which lets in only the staff of the party the request is for."""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if not is_party_staff(user, party_of(self.request)):
            raise ValidationError(self.error_messages["invalid_login"], code="invalid_login",
                                  params={"username": self.username_field.verbose_name})


class PartyAdminSite(AdminSite):
    login_form = PartyAuthenticationForm

    def __init__(self, name: str, title: str, *, party: str | None = None):
        """``party`` defaults to the site's name without "_admin" ("gateway_admin" -> "gateway")."""
        super().__init__(name=name)
        self.party = party or name.removesuffix("_admin")
        if self.party not in PARTIES:
            raise ValueError(f"admin site {name!r}: unknown party {self.party!r}")
        self.site_header = title
        self.site_title = title
        self.index_title = _("Administration")
        self.register(User, PartyUserAdmin)

    def has_permission(self, request) -> bool:
        return getattr(request, "party", None) == self.party and is_party_staff(request.user, self.party)

    def admin_view(self, view, cacheable=False):
        return in_french(super().admin_view(view, cacheable))

    def login(self, request, extra_context=None):
        i18n.use(request, "fr")
        return super().login(request, extra_context)


def in_french(view):
    """``view`` served in French (the admin's only language)."""

    @wraps(view)
    def french(request, *args, **kwargs):
        i18n.use(request, "fr")
        return view(request, *args, **kwargs)

    return french


class PartyUserAdmin(UserAdmin):
    """The party's staff accounts (see the module's docstring)."""

    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Informations personnelles"), {"fields": ("first_name", "last_name", "email")}),
        (_("Accès"), {"fields": ("is_active", "is_superuser")}),
        (_("Dates importantes"), {"fields": ("last_login", "date_joined")}),
    )
    readonly_fields = ("is_superuser", "last_login", "date_joined")
    list_display = ("username", "email", "first_name", "last_name", "is_active", "is_superuser")
    list_filter = ("is_active", "is_superuser")
    filter_horizontal = ()

    @property
    def party(self) -> str:
        return self.admin_site.party

    def get_queryset(self, request):
        return super().get_queryset(request).filter(groups__name=STAFF_GROUPS[self.party])

    def _only_ours(self, obj) -> bool:
        return obj is None or not other_parties_of(obj, self.party)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and self._only_ours(obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and self._only_ours(obj)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.is_staff = True
        super().save_model(request, obj, form, change)
        if not change:
            obj.groups.add(staff_group(party=self.party))


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
