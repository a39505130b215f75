"""``python manage.py rotate_field_keys``: re-encrypt stored secrets with the newest key."""

from django.core.management.base import BaseCommand

from aanspraak.services.secrets import reencrypt_party_secrets


class Command(BaseCommand):
    help = (
        "Re-encrypt the hub's stored outbound credentials with the first key of "
        "HUB_FIELD_ENCRYPTION_KEYS (run after putting a new key in front)."
    )

    def handle(self, *args, **options):
        count = reencrypt_party_secrets()
        self.stdout.write(f"re-encrypted {count} secret(s)")
