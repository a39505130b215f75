"""Key rotation for secrets encrypted at rest."""

from django.db import transaction
from django.db.models import Q

from aanspraak.models import Party


def reencrypt_party_secrets() -> int:
    """Read every stored endpoint secret and private key (any configured key decrypts) and
    write them back (the first key encrypts). Returns how many parties were rewritten."""
    count = 0
    fields = ["endpoint_client_secret", "endpoint_private_key"]
    with transaction.atomic():
        stored = ~Q(endpoint_client_secret="") | ~Q(endpoint_private_key="")
        for party in Party.objects.select_for_update().filter(stored):
            party.save(update_fields=fields)
            count += 1
    return count
