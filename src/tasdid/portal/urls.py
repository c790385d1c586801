"""The biller's site: the customer pages, the staff admin and, in sandbox mode, the sandbox phone and mailbox."""

from django.conf import settings
from django.urls import include, path

from tasdid.billing.admin import biller_admin

from . import views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("mobile", views.mobile, name="mobile"),
    path("fixe", views.fixed, name="fixed"),
    path("internet", views.internet, name="internet"),
    path("factures", views.invoices, name="invoices"),
    path("conditions", views.conditions, name="terms"),
    path("admin/", biller_admin.urls),
]

if settings.SANDBOX:
    urlpatterns += [path("sandbox/", include("tasdid.messaging.sandbox_urls"))]
