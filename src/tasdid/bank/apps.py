from django.apps import AppConfig


class BankConfig(AppConfig):
    name = "tasdid.bank"
    label = "bank"
