"""``python manage.py reconcile_usage [--contract ID]``: compare each contract's usage at the
licence registries with the hub's own figures and store the differences (see
entitlements.services.usage); they are shown in admin under "Usage reconciliations"."""

from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand

from entitlements.services.usage import reconcile_contracts


class ProgressBar:
    """A one-line progress bar on a terminal stream (plain lines when it is not a TTY)."""

    def __init__(self, stream=None, width: int = 30):
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()

    def __call__(self, done: int, total: int, label: str) -> None:
        filled = int(self.width * done / total) if total else self.width
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = time.monotonic() - self.started
        line = f"[{bar}] {done}/{total} {elapsed:5.1f}s {label}"
        if self.tty:
            self.stream.write("\r\033[K" + line + ("\n" if done == total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


class Command(BaseCommand):
    help = (
        "Fetch each contract's DeliveryOrderUsage from the licence registries "
        "(GET /usage/contracts/{id}), compare it with the hub's entitlements and store the "
        "differences (admin: Usage reconciliations)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--contract", metavar="ID", help="reconcile only this contractId")
        parser.add_argument(
            "--no-progress", action="store_true", help="do not draw the progress bar"
        )

    def handle(self, *args, **options):
        progress = None if options["no_progress"] else ProgressBar(self.stderr._out)
        results = reconcile_contracts(options["contract"], progress)
        if not results:
            which = f"contract {options['contract']}" if options["contract"] else "contracts"
            self.stdout.write(f"no {which} with entitlements to reconcile")
            return
        for r in results:
            line = f"{r.contract_id} at {r.licensor.name}: {r.outcome}"
            if r.outcome == "different":
                line += f" ({r.difference_count} differences)"
            elif r.outcome == "failed":
                line += f" ({r.error})"
            self.stdout.write(line)
