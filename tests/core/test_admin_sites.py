"""Each party's admin site lets in only that party's staff; a session belongs to the party it was made for."""

import pytest
from django.contrib.auth.models import Group, User
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.core.management.base import CommandError

from tasdid.core.http import SESSION_PARTY_KEY, party_cookie_name
from tasdid.core.staff import STAFF_GROUPS, staff_grant
from tests.support.staff import PASSWORD, party_client, signed_in, staff_account

pytestmark = pytest.mark.django_db

PARTIES = ("biller", "gateway", "bank", "switch")
MODELS = {"biller": "billing/invoice", "gateway": "gateway/merchant", "bank": "bank/card", "switch": "switch/route"}


def login(party: str, username: str):
    return party_client(party).post("/admin/login/", {"username": username, "password": PASSWORD,
                                                      "next": "/admin/"})


def refused(response) -> bool:
    """The login form came back with Django's own "not a staff account" error, and nobody signed in."""
    errors = response.context["form"].errors.as_data() if response.status_code == 200 else {}
    return ([e.code for e in errors.get("__all__", [])] == ["invalid_login"]
            and "compte autorisé" in response.content.decode() and "_auth_user_id" not in response.wsgi_request.session)


@pytest.mark.parametrize("party", PARTIES)
def test_a_superuser_outside_the_party_staff_is_refused_at_login(party):
    User.objects.create_superuser("root", "root@example.ma", PASSWORD)
    response = login(party, "root")
    assert refused(response)
    assert party_client(party).get("/admin/").status_code == 302


@pytest.mark.parametrize("party", PARTIES)
def test_staff_of_one_party_open_its_site_and_no_other(party):
    staff_account("member", parties=[party])
    client = signed_in(party, "member")
    assert client.get("/admin/").status_code == 200
    assert client.get(f"/admin/{MODELS[party]}/").status_code == 200
    for other in PARTIES:
        if other != party:
            response = login(other, "member")
            assert refused(response), other


def test_a_member_who_is_no_longer_active_or_staff_is_shut_out_at_once():
    user = staff_account("member", parties=["biller"])
    client = signed_in("biller", "member")
    User.objects.filter(pk=user.pk).update(is_staff=False)
    response = client.get("/admin/")
    assert (response.status_code, response["Location"]) == (302, "/admin/login/?next=/admin/")
    User.objects.filter(pk=user.pk).update(is_staff=True)
    assert client.get("/admin/").status_code == 200
    user.groups.clear()
    assert client.get("/admin/").status_code == 302


def test_a_member_who_is_not_a_superuser_works_with_the_party_permissions():
    staff_account("clerk", parties=["biller"], superuser=False)
    client = signed_in("biller", "clerk")
    assert client.get("/admin/billing/invoice/").status_code == 200
    assert client.get("/admin/billing/customer/").status_code == 200
    # Accounts are for superusers of the party: a clerk gets the French 403 page.
    response = client.get("/admin/auth/user/")
    assert response.status_code == 403 and "<h1>Accès refusé</h1>" in response.content.decode()
    assert set(Group.objects.get(name="biller staff").permissions.values_list("content_type__app_label",
                                                                              flat=True)) == {"billing"}


def test_a_session_copied_under_another_party_cookie_is_an_empty_session():
    staff_account("admin", parties=PARTIES)
    biller = signed_in("biller", "admin")
    stolen = biller.cookies[party_cookie_name("biller")].value
    assert Session.objects.get(session_key=stolen).get_decoded()[SESSION_PARTY_KEY] == "biller"

    gateway = party_client("gateway")
    gateway.cookies[party_cookie_name("gateway")] = stolen
    response = gateway.get("/admin/")
    assert (response.status_code, response["Location"]) == (302, "/admin/login/?next=/admin/")
    # The gateway's login page writes its CSRF secret to a session: a new one, never the biller's.
    login_page = gateway.get("/admin/login/")
    assert login_page.status_code == 200 and "Connexion" in login_page.content.decode()
    own = gateway.cookies[party_cookie_name("gateway")].value
    assert own and own != stolen
    assert Session.objects.get(session_key=own).get_decoded()[SESSION_PARTY_KEY] == "gateway"
    biller_data = Session.objects.get(session_key=stolen).get_decoded()
    assert biller_data[SESSION_PARTY_KEY] == "biller" and "_auth_user_id" in biller_data
    # The biller's session is untouched and still signed in on the biller's site.
    assert biller.get("/admin/").status_code == 200


def test_a_session_without_its_party_is_not_read():
    """A session written outside the middleware (no party recorded) opens nothing."""
    from django.contrib.sessions.backends.db import SessionStore

    user = staff_account("admin", parties=PARTIES)
    session = SessionStore()
    session.update({"_auth_user_id": str(user.pk), "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
                    "_auth_user_hash": user.get_session_auth_hash()})
    session.save()
    client = party_client("biller")
    client.cookies[party_cookie_name("biller")] = session.session_key
    assert client.get("/admin/").status_code == 302


def test_each_site_manages_only_its_own_staff_accounts():
    staff_account("boss", parties=["biller"])
    staff_account("cashier", parties=["biller"], superuser=False)
    staff_account("banker", parties=["bank"])
    staff_account("admin", parties=PARTIES)
    client = signed_in("biller", "boss")

    listing = client.get("/admin/auth/user/")
    assert [u.username for u in listing.context["cl"].result_list] == ["admin", "boss", "cashier"]
    assert client.get(f"/admin/auth/user/{User.objects.get(username='banker').pk}/change/").status_code == 302

    # An account added here joins the biller's staff only.
    response = client.post("/admin/auth/user/add/", {
        "username": "newcomer", "password1": "Un-Mot-De-Passe-42", "password2": "Un-Mot-De-Passe-42",
        "usable_password": "true"})
    assert response.status_code == 302, response.content.decode()[:3000]
    newcomer = User.objects.get(username="newcomer")
    assert newcomer.is_staff and not newcomer.is_superuser
    assert list(newcomer.groups.values_list("name", flat=True)) == ["biller staff"]

    # An account that also opens another party's site is read-only here, its password included.
    admin_user = User.objects.get(username="admin")
    change = client.get(f"/admin/auth/user/{admin_user.pk}/change/")
    assert change.status_code == 200 and 'name="_save"' not in change.content.decode()
    before = admin_user.password
    denied = client.post(f"/admin/auth/user/{admin_user.pk}/password/",
                         {"password1": "Pris-Par-Le-Facturier-1", "password2": "Pris-Par-Le-Facturier-1"})
    assert denied.status_code == 403
    admin_user.refresh_from_db()
    assert admin_user.password == before
    # One of its own: editable, but never to superuser (the field is read-only).
    cashier = User.objects.get(username="cashier")
    edit = client.post(f"/admin/auth/user/{cashier.pk}/change/", {
        "username": "cashier", "first_name": "Nadia", "last_name": "", "email": "cashier@example.ma",
        "is_active": "on", "is_superuser": "on", "last_login_0": "", "last_login_1": "",
        "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00"})
    assert edit.status_code == 302, edit.content.decode()[:3000]
    cashier.refresh_from_db()
    assert (cashier.first_name, cashier.is_superuser) == ("Nadia", False)
    # Groups are not managed on any site.
    assert client.get("/admin/auth/group/").status_code == 404


def test_staff_grant_command_creates_the_groups_and_refuses_an_unknown_account(capsys):
    User.objects.create_user("ops", "ops@example.ma", PASSWORD)
    call_command("staff_grant", "ops", "gateway", "bank")
    user = User.objects.get(username="ops")
    assert user.is_staff and sorted(user.groups.values_list("name", flat=True)) == ["bank staff", "gateway staff"]
    assert capsys.readouterr().out.splitlines() == [
        "ops : membre de « gateway staff » (administration gateway).",
        "ops : membre de « bank staff » (administration bank).",
    ]
    with pytest.raises(CommandError, match=r"Aucun compte « personne »\."):
        call_command("staff_grant", "personne", "biller")
    staff_grant(username="ops", parties=["gateway"])  # granting again changes nothing
    assert Group.objects.filter(name__in=STAFF_GROUPS.values()).count() == 2
