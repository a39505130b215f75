"""Worker liveness."""

import socket

from django.utils import timezone

from aanspraak.models import WorkerHeartbeat


def record_heartbeat(hostname: str | None = None) -> WorkerHeartbeat:
    """Upsert the heartbeat row of this worker host."""
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
        hostname=hostname or socket.gethostname(), defaults={"last_seen": timezone.now()}
    )
    return heartbeat
