"""Key rotation for secrets encrypted at rest."""

from django.db import transaction

from aanspraak.models import Party


def reencrypt_party_secrets() -> int:
    """Read every stored endpoint secret (any configured key decrypts) and write it back
    (the first key encrypts). Returns how many were rewritten."""
    count = 0
    with transaction.atomic():
        for party in Party.objects.select_for_update().exclude(endpoint_client_secret=""):
            party.save(update_fields=["endpoint_client_secret"])
            count += 1
    return count
