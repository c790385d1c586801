"""The biller's site: the customer pages, the staff admin and, in sandbox mode, the sandbox phone."""

from django.conf import settings
from django.urls import include, path

from tasdid.billing.admin import biller_admin

from . import payment_views, views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("admin/", biller_admin.urls),
    # Payment: the order and the merchant request, the gateway's callback and returns, the receipt.
    path("paiement", payment_views.pay, name="pay"),
    path("paiement/callback", payment_views.payment_callback, name="payment_callback"),
    path("paiement/ok", payment_views.payment_ok, name="payment_ok"),
    path("paiement/echec", payment_views.payment_failed, name="payment_failed"),
    path("recu/<str:receipt_number>/<str:token>", payment_views.receipt, name="receipt"),
    path("recu/<str:receipt_number>/<str:token>/pdf", payment_views.receipt_pdf, name="receipt_pdf"),
]

if settings.SANDBOX:
    urlpatterns += [path("sandbox/", include("tasdid.messaging.sandbox_urls"))]
