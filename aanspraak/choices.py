"""Enumerations shared across the hub: roles, OAuth2 scopes, the seeds' identifier types, the
chain's functional status codes, how the hub authenticates towards a party and the outcome of
an outbound attempt."""

from enum import IntEnum

from django.db import models


class Role(models.TextChoices):
    SELLER = "seller", "Bestelomgeving leermiddelen (seller)"
    LICENSOR = "licensor", "Licentieregistratie (licence registry)"
    PORTAL = "portal", "Leermiddelenportaal (portal)"
    DASHBOARD = "dashboard", "Leermiddelendashboard (dashboard)"
    SCHOOL_ADMIN = "school-admin", "Administratiesysteem onderwijsdeelnemer (school admin)"


class Scope(models.TextChoices):
    ENTITLEMENT_SELLER = "eduv.entitlement.seller", "Seller: place and read delivery orders"
    ENTITLEMENT_LICENSOR = "eduv.entitlement.licensor", "Licence registry: read and confirm"
    ENTITLEMENT_PORTAL = "eduv.entitlement.portal", "Portal: read and confirm (with consent)"
    ENTITLEMENT_DASHBOARD = "eduv.entitlement.dashboard", "Dashboard: read (with consent)"
    USAGE_LICENSOR = "eduv.usage.licensor", "Licence registry: report initial activations"


# The role a party must have before a client of it may be registered with a scope.
SCOPE_ROLE: dict[str, str] = {
    Scope.ENTITLEMENT_SELLER: Role.SELLER,
    Scope.ENTITLEMENT_LICENSOR: Role.LICENSOR,
    Scope.ENTITLEMENT_PORTAL: Role.PORTAL,
    Scope.ENTITLEMENT_DASHBOARD: Role.DASHBOARD,
    Scope.USAGE_LICENSOR: Role.LICENSOR,
}


class OrganisationIdType(models.TextChoices):
    OIE_CODE = "OIE_CODE"
    BP_ID = "BP_ID"
    DD_ID = "DD_ID"
    AS_ID = "AS_ID"


class UserIdType(models.TextChoices):
    NEPPI = "NEPPI"
    BPI = "BPI"
    EDUID = "eduID"
    NEPRI = "NEPRI"
    ASI = "ASI"
    ECKID = "eckId"


class EndpointAuthMethod(models.TextChoices):
    """How the hub authenticates at a party's token endpoint (registry ``endpoint.authMethod``,
    docs/registry.md)."""

    CLIENT_SECRET_BASIC = "client_secret_basic", "client_secret_basic"
    CLIENT_SECRET_POST = "client_secret_post", "client_secret_post"
    PRIVATE_KEY_JWT = "private_key_jwt", "private_key_jwt"


class SigningAlgorithm(models.TextChoices):
    """What the hub signs its client assertions with (registry ``endpoint.algorithm``)."""

    RS256 = "RS256", "RS256"
    PS256 = "PS256", "PS256"
    ES256 = "ES256", "ES256"


class AttemptOutcome(models.TextChoices):
    """What one outbound attempt came to (``aanspraak.outbound.policy.classify``); also the
    stored ``DeliveryAttempt.outcome``."""

    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"


class FunctionalCode(IntEnum):
    """The chain's functional status codes, the ``status`` of every StatusResponse
    (docs/api.md, "Errors"). Write a code only through this enum."""

    SCHEMA_INCORRECT = 11
    SCHEMA_VERSION_NOT_SUPPORTED = 12
    SCOPE_REQUIRED = 21
    CONSENT_REQUIRED = 22
    ORGANISATION_UNKNOWN = 23
    OTHER = 99

    @property
    def meaning(self) -> str:
        """The code's meaning in words (``schema incorrect``), as the OpenAPI document lists it."""
        return self.name.lower().replace("_", " ")
