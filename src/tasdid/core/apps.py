from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "tasdid.core"
    label = "core"
    verbose_name = "Tasdid"

    def ready(self) -> None:
        from . import bench

        bench.install()
