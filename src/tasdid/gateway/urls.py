"""The gateway's site: the merchant protocol endpoint, the hosted payment page, the 3DS server endpoints."""

from django.urls import path

from . import views
from .admin import gateway_admin

urlpatterns = [
    path("", views.home, name="gateway_home"),
    path("fim/est3Dgate", views.est3dgate, name="gateway_est3dgate"),
    path("fim/status", views.order_status, name="gateway_order_status"),
    path("fim/api", views.merchant_api, name="gateway_merchant_api"),
    path("fim/refus", views.refusal, name="gateway_refusal"),
    path("paiement/<slug:token>", views.pay, name="gateway_pay"),
    path("3ds/rreq", views.rreq, name="gateway_rreq"),
    path("3ds/notification", views.notification, name="gateway_notification"),
    path("conditions", views.conditions, name="gateway_conditions"),
    path("admin/", gateway_admin.urls),
]

# The French 500 page under this party's header (400, 403 and 404 use the project templates as they are).
handler500 = "tasdid.core.http.server_error"
