"""The Celery app: ``celery -A config worker`` and ``celery -A config beat``."""

import gc
import logging.config
import os

from celery import Celery
from celery.signals import setup_logging, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("aanspraak")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def use_hub_logging(**kwargs) -> None:
    """Workers log as the web does (settings.LOGGING: JSON lines unless HUB_LOG_FORMAT=text):
    with a receiver on this signal Celery leaves logging alone instead of putting its own
    handler and format on the root logger (docs/operations.md, "Logs")."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@worker_process_init.connect
def freeze_startup_heap(**kwargs) -> None:
    """A pool process starts with the parent's heap (Django, Celery, the hub's modules):
    frozen, the garbage collector's full collections skip it. Unfrozen, each walked it all,
    95-157 ms under load with every sender thread stopped (docs/performance.md, "Garbage
    collection"). ``freeze`` only moves list heads, so the heap stays shared with the parent
    (no ``collect`` first, which would touch, and copy, every page)."""
    gc.freeze()
