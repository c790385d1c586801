"""Each party's staff: one group per party ("biller staff", "gateway staff", "bank staff").

Accounts are Django users, shared by the parties of one deployment; what lets an account into a party's admin
site is membership of that party's group (tasdid.core.admin_sites), superuser or not. The group carries the
model permissions of the party's own apps, so that a member who is not a superuser can work there too. Groups
are created on demand, with their permissions, by ``staff_grant`` (``tasdid staff-grant``, ``tasdid demo``).
"""

from collections.abc import Iterable

from django.contrib.auth.models import Group, Permission, User
from django.db import transaction

from .http import PARTIES

STAFF_GROUPS = {"biller": "biller staff", "gateway": "gateway staff", "bank": "bank staff", "switch": "switch staff"}
# The apps whose tables a party's staff work on (their admin site shows these).
PARTY_APPS = {"biller": ("billing",), "gateway": ("gateway",), "bank": ("bank",), "switch": ("switch",)}
# Permissions of a party's apps its staff group does not carry: granted to an account by name
# (``tasdid staff-grant USERNAME PARTY --permission app_label.codename``).
RESERVED_PERMISSIONS = frozenset({"gateway.rotate_store_key"})


class UnknownParty(ValueError):
    pass


def _checked(party: str) -> str:
    if party not in PARTIES:
        raise UnknownParty(party)
    return party


def is_party_staff(user, party: str) -> bool:
    """An active staff account that belongs to ``party``'s staff group (remembered on the user object)."""
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    cache = getattr(user, "_tasdid_party_staff", None)
    if cache is None:
        cache = {}
        user._tasdid_party_staff = cache  # one query per party and request, however often the admin asks
    if party not in cache:
        cache[party] = user.groups.filter(name=STAFF_GROUPS[_checked(party)]).exists()
    return cache[party]


def other_parties_of(user: User, party: str) -> list[str]:
    """The other parties whose staff ``user`` belongs to."""
    names = set(user.groups.filter(name__in=STAFF_GROUPS.values()).values_list("name", flat=True))
    return [p for p, name in STAFF_GROUPS.items() if p != party and name in names]


@transaction.atomic
def staff_group(*, party: str) -> Group:
    """The party's staff group, created if missing, with every permission of the party's apps but the reserved
    ones (RESERVED_PERMISSIONS)."""
    group, _ = Group.objects.get_or_create(name=STAFF_GROUPS[_checked(party)])
    group.permissions.set([
        p for p in Permission.objects.filter(content_type__app_label__in=PARTY_APPS[party]).select_related(
            "content_type")
        if f"{p.content_type.app_label}.{p.codename}" not in RESERVED_PERMISSIONS])
    return group


@transaction.atomic
def staff_grant(*, username: str, parties: Iterable[str], permissions: Iterable[str] = ()) -> User:
    """Make ``username`` a staff member of each of ``parties`` (User.DoesNotExist if there is no such account),
    with the reserved ``permissions`` named (``app_label.codename``; ValueError for another name)."""
    user = User.objects.select_for_update().get(username=username)
    groups = [staff_group(party=party) for party in parties]
    granted = []
    for name in permissions:
        app_label, _dot, codename = name.partition(".")
        permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
        if name not in RESERVED_PERMISSIONS or permission is None:
            raise ValueError(name)
        granted.append(permission)
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    user.groups.add(*groups)
    user.user_permissions.add(*granted)
    return user
