"""The sandbox bank's site: the 3-D Secure directory and ACS (AReq, challenge pages), and its staff admin."""

from django.urls import path

from . import views
from .admin import bank_admin

app_name = "bank"

urlpatterns = [
    path("", views.home, name="home"),
    path("3ds/areq", views.areq, name="areq"),
    path("acs/challenge", views.challenge_start, name="challenge"),
    path("acs/challenge/<uuid:acs_trans_id>", views.challenge_step, name="challenge_step"),
    path("admin/", bank_admin.urls),
]
