"""URLs of the confirmations app."""

urlpatterns: list = []
