"""What a simulated party plays and how it behaves, and what it records (``party.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field

REGISTRY, PORTAL, SELLER, ADMINISTRATION = "registry", "portal", "seller", "administration"
USAGE_TOTALS = {
    "entitled": "totalEntitled",
    "licensed": "totalLicensed",
    "cancelled": "totalCancelled",
    "blocked": "totalBlocked",
    "expired": "totalExpired",
}
MAX_SEND_TRIES = 12


@dataclass
class SimulatorConfig:
    """What the simulator plays and how it behaves."""

    hub_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 0
    registry: bool = False
    portal_id: str | None = None
    seller: bool = False
    registry_client: tuple[str, str] | None = None
    portal_client: tuple[str, str] | None = None
    delay: float = 0.5
    licensed_share: float = 0.0
    fail_share: float = 0.0
    slow_share: float = 0.0
    slow_seconds: float = 5.0
    seed: int | None = None
    require_token: bool = False
    # enrollmentId -> Enrollment (seed 004) served as administration system; None: not played.
    enrollments: dict[str, dict] | None = None

    @property
    def roles(self) -> list[str]:
        roles = []
        if self.enrollments is not None:
            roles.append(ADMINISTRATION)
        if self.registry:
            roles.append(REGISTRY)
        if self.portal_id:
            roles.append(PORTAL)
        if self.seller:
            roles.append(SELLER)
        return roles


@dataclass
class Counters:
    received: int = 0
    failed_on_purpose: int = 0
    slow_on_purpose: int = 0
    duplicates: int = 0
    confirmations_sent: int = 0
    activations_sent: int = 0
    send_failures: int = 0
    seller_confirmations: int = 0


@dataclass
class Sent:
    path: str
    body: dict
    http_status: int | None
    outcome: str


@dataclass
class ReceivedMessage:
    role: str
    path: str
    body: dict
    headers: dict = field(default_factory=dict)
