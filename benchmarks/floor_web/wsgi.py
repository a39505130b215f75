"""WSGI entry point of the web floor (``gunicorn -c config/gunicorn.conf.py
benchmarks.floor_web.wsgi``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.floor_web.settings")
application = get_wsgi_application()
