"""URLs of the aanspraak app."""

urlpatterns: list = []
