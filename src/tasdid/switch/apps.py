from django.apps import AppConfig


class SwitchConfig(AppConfig):
    name = "tasdid.switch"
    label = "switch"
    verbose_name = "Centre monétique"
