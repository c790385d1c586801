"""The centre monétique's site (TASDID_SWITCH_URL, demo port 8003): the 3-D Secure directory and its staff
admin."""

from django.urls import path
from django.views.generic import RedirectView

from . import views
from .admin import switch_admin

app_name = "switch"

urlpatterns = [
    path("", RedirectView.as_view(url="admin/", permanent=False), name="home"),
    path("3ds/areq", views.areq, name="areq"),
    path("3ds/rreq", views.rreq, name="rreq"),
    path("admin/", switch_admin.urls),
]

handler500 = "tasdid.core.http.server_error"
