"""Where the scale benchmark's database of its own is (on the server of ``DATABASE_URL``;
``benchmarks/databases.py`` creates and drops it), and Django set up on it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]


def server_urls(dsn_db: str) -> tuple[str, str]:
    """(admin URL, URL of ``dsn_db``) on the server of ``DATABASE_URL``."""
    url = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    parts = urlsplit(url)
    return (
        urlunsplit(parts._replace(path="/postgres")),
        urlunsplit(parts._replace(path="/" + dsn_db)),
    )


def setup_django(database_url: str) -> None:
    """Set Django up in this process on ``database_url``."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()
