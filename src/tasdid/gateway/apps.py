from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "tasdid.gateway"
    label = "gateway"
