"""The parties share 127.0.0.1 in the demo; each keeps its own session cookie, Secure even over loopback http."""


def test_each_party_has_its_own_secure_session_cookie(parties, page):
    from django.contrib.auth.models import User

    from tasdid.core.staff import staff_grant
    User.objects.create_superuser("admin", "a@example.ma", "pw-Strong-123")
    staff_grant(username="admin", parties=["biller", "gateway"])
    page.goto(parties["biller"] + "/admin/login/")
    page.get_by_label("Nom d’utilisateur").fill("admin")
    page.get_by_label("Mot de passe").fill("pw-Strong-123")
    page.get_by_role("button", name="Connexion").click()
    page.wait_for_url("**/admin/")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert "tasdid_biller_session" in cookies, cookies
    assert cookies["tasdid_biller_session"]["secure"]
    # Signed in on the biller's site only: the gateway's admin asks for its own sign-in.
    page.goto(parties["gateway"] + "/admin/")
    assert "login" in page.url
