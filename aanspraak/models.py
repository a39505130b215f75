"""Who takes part in the chain: parties, their OAuth2 clients, schools, consent, products."""

from django.db import models
from django.db.models import Q
from oauth2_provider.models import AbstractApplication

from .choices import EndpointAuthMethod, OrganisationIdType, Role, SigningAlgorithm
from .fields import EncryptedTextField
from .rates import RATE_PATTERN


class Party(models.Model):
    """An organisation in the chain: a seller, licence registry, portal, dashboard or school
    administration system. One party may play several roles."""

    name = models.CharField(max_length=200, unique=True)
    is_seller = models.BooleanField(default=False)
    is_licensor = models.BooleanField(default=False)
    is_portal = models.BooleanField(default=False)
    is_dashboard = models.BooleanField(default=False)
    is_school_admin = models.BooleanField(default=False)
    portal_id = models.CharField(
        max_length=200,
        null=True,
        blank=True,
        unique=True,
        help_text="Portals only: the value used in urlStatuses[].portal.",
    )
    # This party's own API, for the hub's outbound calls.
    endpoint_base_url = models.URLField(max_length=500, blank=True)
    endpoint_token_url = models.URLField(max_length=500, blank=True)
    endpoint_client_id = models.CharField(max_length=200, blank=True)
    endpoint_client_secret = EncryptedTextField(blank=True)
    # How the hub authenticates at endpoint_token_url (docs/registry.md, docs/security.md):
    # with the secret, or with assertions signed by this private key (PEM, encrypted at rest
    # like the secret).
    endpoint_auth_method = models.CharField(
        max_length=30,
        choices=EndpointAuthMethod.choices,
        default=EndpointAuthMethod.CLIENT_SECRET_BASIC,
    )
    endpoint_private_key = EncryptedTextField(blank=True)
    endpoint_key_id = models.CharField(
        max_length=200, blank=True, help_text="The kid of the hub's assertions (``keyId``)."
    )
    endpoint_algorithm = models.CharField(
        max_length=10, choices=SigningAlgorithm.choices, default=SigningAlgorithm.RS256
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    ROLE_FIELDS = {
        Role.SELLER: "is_seller",
        Role.LICENSOR: "is_licensor",
        Role.PORTAL: "is_portal",
        Role.DASHBOARD: "is_dashboard",
        Role.SCHOOL_ADMIN: "is_school_admin",
    }

    class Meta:
        verbose_name_plural = "parties"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(is_portal=False) | (Q(portal_id__isnull=False) & ~Q(portal_id="")),
                name="party_portal_has_portal_id",
            ),
            models.CheckConstraint(
                condition=Q(is_portal=True) | Q(portal_id__isnull=True),
                name="party_portal_id_only_for_portals",
            ),
            models.CheckConstraint(
                condition=Q(endpoint_auth_method__in=EndpointAuthMethod.values),
                name="party_endpoint_auth_method_valid",
            ),
            models.CheckConstraint(
                condition=Q(endpoint_algorithm__in=SigningAlgorithm.values),
                name="party_endpoint_algorithm_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def roles(self) -> list[str]:
        return [role for role, field in self.ROLE_FIELDS.items() if getattr(self, field)]

    def has_role(self, role: str) -> bool:
        return bool(getattr(self, self.ROLE_FIELDS[role]))


class Client(AbstractApplication):
    """An OAuth2 client of the hub (django-oauth-toolkit's swappable Application), owned by
    one party and limited to the scopes it was registered with."""

    party = models.ForeignKey(Party, on_delete=models.PROTECT, related_name="clients")
    allowed_scopes = models.TextField(
        help_text="Space-separated scopes this client may obtain.",
    )
    active = models.BooleanField(
        default=True,
        help_text="False: revoked (registry file ``active: false``): no token is issued and "
        "the ones it had are gone.",
    )
    # private_key_jwt (RFC 7523 §2.2): the client's public keys, inline or at a URL; a client
    # with either authenticates with signed assertions only (docs/security.md).
    jwks = models.JSONField(
        null=True, blank=True, help_text='Public keys, {"keys": [...]} (registry ``jwks``).'
    )
    jwks_uri = models.URLField(
        max_length=500, null=True, blank=True, help_text="Where its public keys are (``jwksUri``)."
    )
    rate_limit = models.CharField(
        max_length=40,
        null=True,
        blank=True,
        help_text='Requests allowed per period ("600/min", "20/s", "10000/hour"), registry '
        "file ``rateLimit``; empty: HUB_RATE_LIMIT.",
    )

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"
        verbose_name = "OAuth2 client"
        constraints = [
            models.CheckConstraint(condition=~Q(allowed_scopes=""), name="client_has_scopes"),
            models.CheckConstraint(
                condition=Q(jwks__isnull=True) | Q(jwks_uri__isnull=True),
                name="client_keys_inline_or_uri",
            ),
            # The form aanspraak.services.rate_limits.parse_rate reads.
            models.CheckConstraint(
                condition=Q(rate_limit__isnull=True) | Q(rate_limit__regex=RATE_PATTERN),
                name="client_rate_limit_form",
            ),
        ]

    @property
    def uses_assertions(self) -> bool:
        """Authenticates with private_key_jwt (and never with a secret)."""
        return bool(self.jwks or self.jwks_uri)

    def is_usable(self, request) -> bool:
        # django-oauth-toolkit asks before it issues anything: a revoked client gets nothing.
        return self.active

    @property
    def scope_set(self) -> set[str]:
        return set(self.allowed_scopes.split())


class School(models.Model):
    """A school (the buyer of delivery orders), by OnderwijsaanbiederId and/or secondary ids."""

    organisation_master_identifier = models.CharField(
        max_length=200, null=True, blank=True, unique=True
    )
    name = models.CharField(max_length=300, blank=True)
    administration = models.ForeignKey(
        Party,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="administered_schools",
        help_text="The school-admin party serving /enrollments for this school.",
    )
    consents = models.ManyToManyField(Party, through="Consent", related_name="consented_schools")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name or self.organisation_master_identifier or f"school {self.pk}"

    def reference(self) -> dict:
        """The seeds' SchoolReference of this school (ids loaded by the caller if needed)."""
        ref: dict = {}
        if self.organisation_master_identifier:
            ref["organisationMasterIdentifier"] = self.organisation_master_identifier
        ids = [
            {"organisationId": o.organisation_id, "organisationIdType": o.organisation_id_type}
            for o in self.organisation_ids.all()
        ]
        if ids:
            ref["organisationIds"] = ids
        return ref


class SchoolOrganisationId(models.Model):
    """A secondary identifier of a school (SchoolReference.organisationIds[])."""

    school = models.ForeignKey(School, on_delete=models.CASCADE, related_name="organisation_ids")
    organisation_id = models.CharField(max_length=200)
    organisation_id_type = models.CharField(max_length=20, choices=OrganisationIdType.choices)

    class Meta:
        verbose_name = "school organisation id"
        constraints = [
            models.UniqueConstraint(
                fields=["organisation_id_type", "organisation_id"],
                name="school_organisation_id_unique",
            ),
            models.CheckConstraint(
                condition=Q(organisation_id_type__in=OrganisationIdType.values),
                name="school_organisation_id_type_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organisation_id_type}:{self.organisation_id}"


class Consent(models.Model):
    """A school's consent that a party (portal, dashboard) receives its entitlement data."""

    school = models.ForeignKey(School, on_delete=models.CASCADE)
    party = models.ForeignKey(Party, on_delete=models.CASCADE)
    granted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["school", "party"], name="consent_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.school} → {self.party}"


class Product(models.Model):
    """A learning product (productId) and the licence registry that handles it."""

    product_id = models.CharField(max_length=200, unique=True)
    licensor = models.ForeignKey(Party, on_delete=models.PROTECT, related_name="products")
    name = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["product_id"]

    def __str__(self) -> str:
        return self.product_id


class WorkerHeartbeat(models.Model):
    """Last sign of life of each Celery worker host, written by a periodic task."""

    hostname = models.CharField(max_length=300, unique=True)
    last_seen = models.DateTimeField()

    def __str__(self) -> str:
        return self.hostname
