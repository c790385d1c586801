from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "tasdid.messaging"
    label = "messaging"
