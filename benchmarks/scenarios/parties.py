"""The parties of the benchmark's chain: the registry file (a seller, a licence registry, a
portal and a school, all answered by the loopback party server) and an access token per
role from the hub's own token endpoint."""

from __future__ import annotations

import httpx

PRODUCT = "9789001000011"
SCHOOL = "110A133"
PROCESSED_AT = "2026-09-01T08:00:00Z"


BENCH_REGISTRY = """
parties:
  - name: Bench Seller
    roles: [seller]
    endpoint:
      baseUrl: "{party}/seller"
      tokenUrl: "{party}/token"
      clientId: hub
      clientSecret: s
    clients:
      - {{clientId: bench-seller, clientSecret: {secret}, scopes: [eduv.entitlement.seller]}}
  - name: Bench Registry
    roles: [licensor]
    endpoint:
      baseUrl: "{party}/registry"
      tokenUrl: "{party}/token"
      clientId: hub
      clientSecret: s
    products: ["{product}"]
    clients:
      - clientId: bench-registry
        clientSecret: {secret}
        scopes: [eduv.entitlement.licensor, eduv.usage.licensor]
        # A limit under load, high enough not to refuse (P2 measures its cost).
        rateLimit: 100000000/hour
  - name: Bench Portal
    roles: [portal]
    portalId: bench-portal
    endpoint:
      baseUrl: "{party}/portal"
      tokenUrl: "{party}/token"
      clientId: hub
      clientSecret: s
    clients:
      - {{clientId: bench-portal, clientSecret: {secret}, scopes: [eduv.entitlement.portal]}}
schools:
  - organisationMasterIdentifier: "{school}"
    name: Bench College
    consents: [Bench Portal]
"""
CLIENT_SECRET = "bench-client-secret"
ROLES = {"seller": "bench-seller", "licensor": "bench-registry", "portal": "bench-portal"}


def registry_text(party_url: str) -> str:
    """The registry file of the bench, its parties' endpoints on the party server."""
    return BENCH_REGISTRY.format(
        party=party_url, secret=CLIENT_SECRET, product=PRODUCT, school=SCHOOL
    )


def fetch_tokens(hub_url: str) -> dict[str, str]:
    """An access token per role from the hub's own token endpoint."""
    tokens = {}
    for role, client_id in ROLES.items():
        answer = httpx.post(
            f"{hub_url}/oauth2/token/",
            data={"grant_type": "client_credentials"},
            auth=(client_id, CLIENT_SECRET),
            timeout=30,
        )
        answer.raise_for_status()
        tokens[role] = answer.json()["access_token"]
    return tokens
