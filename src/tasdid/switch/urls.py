"""The centre monétique's site (TASDID_SWITCH_URL, demo port 8003): its staff admin; the 3-D Secure directory
comes here later."""

from django.urls import path
from django.views.generic import RedirectView

from .admin import switch_admin

app_name = "switch"

urlpatterns = [
    path("", RedirectView.as_view(url="admin/", permanent=False), name="home"),
    path("admin/", switch_admin.urls),
]

handler500 = "tasdid.core.http.server_error"
