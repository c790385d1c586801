"""The biller's site (settings.PARTY_URLCONFS["biller"]): the customer pages under the "portal" namespace, the
staff admin and, in sandbox mode, the sandbox phone and mailbox."""

from django.conf import settings
from django.urls import include, path

from tasdid.billing.admin import biller_admin

from . import views

app_name = "portal"

# The customer pages, reversed as "portal:<name>". A root URLconf gets no namespace of its own, hence the include
# below; the admin site keeps its own namespace at the root.
pages = [
    path("", views.home, name="home"),
    path("mobile", views.mobile, name="mobile"),
    path("fixe", views.fixed, name="fixed"),
    path("internet", views.internet, name="internet"),
    path("factures", views.invoices, name="invoices"),
    path("conditions", views.conditions, name="terms"),
]

urlpatterns = [
    path("", include((pages, app_name))),
    path("admin/", biller_admin.urls),
]

if settings.SANDBOX:
    urlpatterns += [path("sandbox/", include("tasdid.messaging.sandbox_urls"))]
