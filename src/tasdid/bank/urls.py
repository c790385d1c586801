"""The sandbox bank's site: the 3-D Secure ACS (the directory's AReq, the challenge pages), and its staff admin."""

from django.urls import path

from . import views
from .admin import bank_admin

app_name = "bank"

urlpatterns = [
    path("", views.home, name="home"),
    path("acs/areq", views.areq, name="acs_areq"),
    path("acs/challenge", views.challenge_start, name="challenge"),
    path("acs/challenge/<uuid:acs_trans_id>", views.challenge_step, name="challenge_step"),
    path("admin/", bank_admin.urls),
]

# The French 500 page under this party's header (400, 403 and 404 use the project templates as they are).
handler500 = "tasdid.core.http.server_error"
