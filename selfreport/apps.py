from django.apps import AppConfig


class SelfreportConfig(AppConfig):
    name = "selfreport"
    verbose_name = "Participant self-report"
