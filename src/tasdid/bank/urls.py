"""The sandbox bank's site: the ACS (3-D Secure challenge pages and messages)."""

from django.urls import path

from .admin import bank_admin

app_name = "bank"

urlpatterns = [
    path("admin/", bank_admin.urls),
]
