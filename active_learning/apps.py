from django.apps import AppConfig


class ActiveLearningConfig(AppConfig):
    name = "active_learning"
    verbose_name = "Active learning"

    def ready(self) -> None:
        # Labeling never imports this app: it calls what is registered here (labeling.hooks).
        from active_learning import hooks

        hooks.register()
