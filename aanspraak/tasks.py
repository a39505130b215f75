"""Celery tasks of the shared app: thin shells around services."""

from celery import shared_task

from .services.workers import record_heartbeat


@shared_task(name="aanspraak.tasks.heartbeat")
def heartbeat() -> None:
    """Record that a worker is alive (shown in admin; used by the embedded-default test)."""
    record_heartbeat()
