"""The biller's site (settings.PARTY_URLCONFS["biller"]): the customer pages under the "portal" namespace, the
staff admin and, in sandbox mode, the sandbox phone and mailbox."""

from django.conf import settings
from django.urls import include, path

from tasdid.billing.admin import biller_admin

from . import payment_views, verify_views, views

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
    # Payment: the order and the merchant request, the gateway's callback and returns, the receipt.
    path("paiement", payment_views.pay, name="pay"),
    path("paiement/callback", payment_views.payment_callback, name="payment_callback"),
    path("paiement/ok", payment_views.payment_ok, name="payment_ok"),
    path("paiement/echec", payment_views.payment_failed, name="payment_failed"),
    path("recu/<str:receipt_number>/<str:token>", payment_views.receipt, name="receipt"),
    path("recu/<str:receipt_number>/<str:token>/pdf", payment_views.receipt_pdf, name="receipt_pdf"),
    # The public check of a receipt (tasdid.billing.receipts.VERIFY_PATH): the form, and the link of its QR code.
    path("verifier", verify_views.receipt_verify, name="receipt_verify"),
    path("verifier/<str:receipt_number>/<str:code>", verify_views.receipt_verify_link, name="receipt_verify_link"),
]

urlpatterns = [
    path("", include((pages, app_name))),
    path("admin/", biller_admin.urls),
]

if settings.SANDBOX:
    urlpatterns += [path("sandbox/", include("tasdid.messaging.sandbox_urls"))]

# The French 500 page under this party's header (400, 403 and 404 use the project templates as they are).
handler500 = "tasdid.core.http.server_error"
