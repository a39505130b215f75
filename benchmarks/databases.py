"""Throw-away databases on the PostgreSQL server of ``DATABASE_URL``: ``make bench``, the
intake and apply workloads and the scale benchmark each create one of their own and drop it
on every exit path, so they never touch real or test data."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlparse, urlunparse


def postgres_url(default: str = "") -> str | None:
    """``DATABASE_URL`` (else ``default``) if it names a PostgreSQL server; else None, with
    the reason on stderr (the benchmarks then exit 2)."""
    url = os.environ.get("DATABASE_URL", default)
    if not url.startswith(("postgres://", "postgresql://")):
        print("set DATABASE_URL to a PostgreSQL server (postgres://...)", file=sys.stderr)
        return None
    return url


def bench_database_url(url: str, suffix: str = "_bench") -> tuple[str, str, str]:
    """(URL of the benchmark's database, URL of the server's ``postgres`` database, name)."""
    parsed = urlparse(url)
    name = (parsed.path.lstrip("/") or "aanspraak") + suffix
    admin = urlunparse(parsed._replace(path="/postgres"))
    return urlunparse(parsed._replace(path="/" + name)), admin, name


def recreate_database(admin_url: str, name: str) -> None:
    """Create the database ``name`` afresh (dropped first, with its connections, if it exists)."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(admin_url: str, name: str) -> None:
    """Drop the database ``name``, closing its connections."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
