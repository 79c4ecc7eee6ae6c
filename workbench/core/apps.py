from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "workbench.core"
    label = "core"
    verbose_name = "Core"
