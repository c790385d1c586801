"""The gateway's site: the merchant protocol endpoint, the hosted payment page, the 3DS server endpoints."""

from django.urls import path

from .admin import gateway_admin

app_name = "gateway"

urlpatterns = [
    path("admin/", gateway_admin.urls),
]
