"""URLs of the entitlements app."""

urlpatterns: list = []
