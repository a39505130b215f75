"""``python manage.py simulate_party``: play a licence registry, a portal and/or a seller on
one port, answering the hub's messages with confirmations (see aanspraak/simulation/party.py)."""

from __future__ import annotations

import contextlib
import json
import logging

from django.core.management.base import BaseCommand, CommandError

from aanspraak.simulation.config import SimulatorConfig
from aanspraak.simulation.party import PartySimulator


def _credentials(value: str | None, flag: str) -> tuple[str, str] | None:
    if value is None:
        return None
    client_id, sep, secret = value.partition(":")
    if not sep or not client_id or not secret:
        raise CommandError(f"{flag} must be CLIENT_ID:SECRET")
    return client_id, secret


def _enrollments(path: str | None) -> dict[str, dict] | None:
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            table = json.load(handle)
    except (OSError, ValueError) as exc:
        raise CommandError(f"--administration {path}: {exc}") from None
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        raise CommandError("--administration: the file must map enrollmentId to an Enrollment")
    return table


def _share(value: str) -> float:
    share = float(value)
    if not 0.0 <= share <= 1.0:
        raise ValueError("a share is between 0 and 1")
    return share


class Command(BaseCommand):
    help = (
        "Simulate the hub's counterparts on one port: a licence registry (--registry), a "
        "portal (--portal PORTAL_ID) and/or a seller (--seller). With several roles, use "
        "http://HOST:PORT/registry, /portal and /seller as their baseUrls."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=9001)
        parser.add_argument("--hub", default="http://127.0.0.1:8000", help="the hub's base URL")
        parser.add_argument("--registry", action="store_true", help="play a licence registry")
        parser.add_argument(
            "--registry-client",
            metavar="ID:SECRET",
            help="the registry's OAuth2 client at the hub (scopes eduv.entitlement.licensor "
            "and eduv.usage.licensor)",
        )
        parser.add_argument("--portal", metavar="PORTAL_ID", help="play this portal")
        parser.add_argument(
            "--portal-client", metavar="ID:SECRET", help="the portal's OAuth2 client at the hub"
        )
        parser.add_argument("--seller", action="store_true", help="play a seller")
        parser.add_argument(
            "--administration",
            metavar="ENROLLMENTS_JSON",
            help="play a school administration system serving GET /enrollments/school/{id} "
            "from this JSON file: an object of enrollmentId -> Enrollment (seed 004)",
        )
        parser.add_argument(
            "--delay", type=float, default=0.5, help="seconds before confirming (default 0.5)"
        )
        parser.add_argument(
            "--licensed-share",
            type=_share,
            default=0.0,
            help="share of entitlements activated (licensed) after being entitled",
        )
        parser.add_argument(
            "--fail-share", type=_share, default=0.0, help="share of requests answered 503"
        )
        parser.add_argument(
            "--slow-share", type=_share, default=0.0, help="share of requests answered slowly"
        )
        parser.add_argument("--slow-seconds", type=float, default=5.0)
        parser.add_argument("--seed", type=int, default=None, help="seed of the random choices")
        parser.add_argument(
            "--require-token",
            action="store_true",
            help="refuse the hub's requests without a token from this simulator's /oauth2/token",
        )

    def handle(self, *args, **options):
        logging.getLogger("httpx").setLevel(logging.WARNING)
        config = SimulatorConfig(
            hub_url=options["hub"],
            host=options["host"],
            port=options["port"],
            registry=options["registry"],
            portal_id=options["portal"],
            seller=options["seller"],
            registry_client=_credentials(options["registry_client"], "--registry-client"),
            portal_client=_credentials(options["portal_client"], "--portal-client"),
            delay=options["delay"],
            licensed_share=options["licensed_share"],
            fail_share=options["fail_share"],
            slow_share=options["slow_share"],
            slow_seconds=options["slow_seconds"],
            seed=options["seed"],
            require_token=options["require_token"],
            enrollments=_enrollments(options["administration"]),
        )
        if not config.roles:
            raise CommandError(
                "play at least one role: --registry, --portal PORTAL_ID, --seller, "
                "--administration FILE"
            )
        if config.registry and not config.registry_client:
            raise CommandError("--registry needs --registry-client ID:SECRET to confirm")
        if config.portal_id and not config.portal_client:
            raise CommandError("--portal needs --portal-client ID:SECRET to confirm")
        simulator = PartySimulator(config)
        self.stdout.write(
            f"simulating {', '.join(config.roles)} at {simulator.base_url} for hub "
            f"{config.hub_url}",
        )
        self.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            simulator.serve_forever()
