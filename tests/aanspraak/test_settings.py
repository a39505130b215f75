"""Settings come from the environment; production refuses to start half-configured."""

import os
import subprocess
import sys

import pytest

from tests.support.processes import ROOT

PROBE = (
    "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); "
    "django.setup(); from django.conf import settings as s; "
    "print(s.DEBUG, s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL)"
)


def run_probe(tmp_path, **env):
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "HUB_", "DATABASE_URL", "CELERY_"))
    }
    base["HUB_DATA_DIR"] = str(tmp_path)
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_embedded_default_with_nothing_set(tmp_path):
    result = run_probe(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "django.db.backends.sqlite3", "filesystem://"]


def test_database_and_broker_urls(tmp_path):
    result = run_probe(
        tmp_path,
        DATABASE_URL="postgres://u:p@db.example:5432/hub",
        CELERY_BROKER_URL="redis://redis.example:6379/0",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "False",
        "aanspraak.db.postgresql",
        "redis://redis.example:6379/0",
    ]


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_SECRET_KEY": "k" * 50}, "DJANGO_ALLOWED_HOSTS"),
        (
            {"DJANGO_SECRET_KEY": "k" * 50, "DJANGO_ALLOWED_HOSTS": "hub.example"},
            "HUB_FIELD_ENCRYPTION_KEYS",
        ),
    ],
)
def test_production_refuses_to_start_half_configured(tmp_path, env, missing):
    result = run_probe(tmp_path, HUB_ENV="production", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and missing in result.stderr


PRODUCTION = {
    "HUB_ENV": "production",
    "DJANGO_SECRET_KEY": "k" * 50,
    "DJANGO_ALLOWED_HOSTS": "hub.example",
    "HUB_FIELD_ENCRYPTION_KEYS": "3q2-7w8mJ1k8E7oJc5gq0x9kYQb3D5w2l3YwZbq3f2Q=",
}


def test_production_starts_when_configured(tmp_path):
    result = run_probe(tmp_path, **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "False"


def test_production_refuses_debug(tmp_path):
    result = run_probe(tmp_path, **PRODUCTION, DJANGO_DEBUG="1")
    assert result.returncode != 0 and "DJANGO_DEBUG" in result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_URL": "postgres://postgres@127.0.0.1:1/x"}, "PostgreSQL at 127.0.0.1:1"),
        ({"CELERY_BROKER_URL": "redis://127.0.0.1:1/0"}, "Redis at redis://127.0.0.1:1/0"),
        ({"DATABASE_URL": ""}, "needs PostgreSQL"),
    ],
)
def test_suite_fails_not_skips_without_its_services(env, message):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/aanspraak/test_settings.py",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert message in result.stdout + result.stderr
