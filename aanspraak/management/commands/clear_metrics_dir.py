"""``manage.py clear_metrics_dir``: empty prometheus_client's multiprocess directory
(``PROMETHEUS_MULTIPROC_DIR``) before the hub's processes start (docs/operations.md,
"Metrics"). Run it while none of the processes that share the directory runs: their counters
would be lost."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Empty PROMETHEUS_MULTIPROC_DIR (metrics of earlier processes). Run it before the "
        "web and worker processes start, never while they run."
    )

    def handle(self, *args, **options):
        directory = Path(settings.PROMETHEUS_MULTIPROC_DIR)
        directory.mkdir(parents=True, exist_ok=True)
        removed = 0
        # Only prometheus_client's own files: a directory set by mistake to a shared folder
        # loses nothing else.
        for path in directory.glob("*.db"):
            path.unlink(missing_ok=True)
            removed += 1
        self.stdout.write(f"Removed {removed} metrics file(s) from {directory}.")
