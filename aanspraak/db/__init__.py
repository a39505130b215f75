"""Database backends of the hub (``DATABASES["default"]["ENGINE"]``)."""
