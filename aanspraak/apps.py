from django.apps import AppConfig


class AanspraakConfig(AppConfig):
    name = "aanspraak"
    verbose_name = "Parties, schools and access"
