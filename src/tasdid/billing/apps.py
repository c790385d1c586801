from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "tasdid.billing"
    label = "billing"
