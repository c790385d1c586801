"""Staff accounts of the parties' admin sites, signed in through the real login form."""

from django.contrib.auth.models import User
from django.test import Client

from tasdid.core.http import party_cookie_name
from tasdid.core.staff import staff_grant

PASSWORD = "pw-Strong-123"


def party_client(party: str, **kwargs) -> Client:
    """A browser on one party's site (its requests are tagged as the party's WSGI application tags them)."""
    return Client(**{"tasdid.party": party}, **kwargs)


def staff_account(username: str = "staff", *, parties=("biller",), superuser: bool = True) -> User:
    """An account in the staff group of each of ``parties`` (a superuser unless told otherwise)."""
    if superuser:
        user = User.objects.create_superuser(username, f"{username}@example.ma", PASSWORD)
    else:
        user = User.objects.create_user(username, f"{username}@example.ma", PASSWORD, is_staff=True)
    staff_grant(username=username, parties=parties)
    return user


def signed_in(party: str, username: str = "staff") -> Client:
    """A browser signed in to ``party``'s admin site through its login form."""
    client = party_client(party)
    response = client.post("/admin/login/", {"username": username, "password": PASSWORD, "next": "/admin/"})
    assert (response.status_code, response.get("Location")) == (302, "/admin/"), response.content.decode()[:2000]
    assert party_cookie_name(party) in client.cookies
    return client
