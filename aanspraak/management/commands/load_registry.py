"""``python manage.py load_registry FILE``: upsert parties, clients, products, schools and
consents from a YAML or JSON file (docs/registry.md)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from aanspraak.services.registry import RegistryError, load_registry, read_registry_file


class Command(BaseCommand):
    help = "Load the party registry from a YAML or JSON file (idempotent, all or nothing)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="path of the registry file (.yaml, .yml or .json)")

    def handle(self, *args, **options):
        try:
            path = Path(options["file"])
            # A relative privateKeyFile is relative to the registry file (docs/registry.md).
            report = load_registry(read_registry_file(path), base_dir=path.resolve().parent)
        except FileNotFoundError as exc:
            raise CommandError(f"registry file not found: {options['file']}") from exc
        except RegistryError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(report.summary() or "nothing to load")
        self.stdout.write("changed" if report.changed else "nothing changed")
