"""Settings of the web floor: the least a Django view can do for a durable write, run under
the hub's own gunicorn configuration against the benchmark's database (see
docs/performance.md, "The scenarios and their floors")."""

import os

import dj_database_url

SECRET_KEY = "benchmark-floor-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["benchmarks.floor_web"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "benchmarks.floor_web.urls"
# The same connection handling as the hub (config/settings.py).
DATABASES = {
    "default": dj_database_url.parse(
        os.environ["DATABASE_URL"],
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
