from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "tasdid.portal"
    label = "portal"
