"""``manage.py check --deploy`` is clean in production mode (docs/operations.md, "HTTPS and the
proxy"; docs/security.md, "Production"): run as production runs it, in a subprocess with the
production environment."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

from cryptography.fernet import Fernet

from tests.aanspraak.test_settings import PROBE, PRODUCTION
from tests.support.processes import ROOT


def production_env(tmp_path, **extra) -> dict[str, str]:
    """Production as the README starts it: generated secrets, the test database and Redis."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "HUB_"))}
    keys = {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "HUB_FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    return {**base, **PRODUCTION, **keys, "HUB_DATA_DIR": str(tmp_path), **extra}


def deploy_check(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_in_production(tmp_path):
    result = deploy_check(production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_is_clean_behind_a_tls_proxy(tmp_path):
    result = deploy_check(production_env(tmp_path, HUB_BEHIND_TLS_PROXY="1"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_names_what_an_operator_turned_off(tmp_path):
    off = {"HUB_SSL_REDIRECT": "off", "HUB_HSTS_SECONDS": "0", "HUB_SECURE_COOKIES": "off"}
    result = deploy_check(production_env(tmp_path, **off))
    assert result.returncode != 0
    for check in ("security.W008", "security.W004", "security.W012", "security.W016"):
        assert check in result.stderr, result.stderr


def probe(env: dict[str, str], expression: str) -> str:
    code = PROBE.split("print(")[0] + f"print({expression})"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_forwarded_proto_header_is_trusted_only_behind_a_tls_proxy(tmp_path):
    settings = "s.SECURE_PROXY_SSL_HEADER, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS"
    assert probe(production_env(tmp_path), settings) == "None True 31536000"
    behind = probe(production_env(tmp_path, HUB_BEHIND_TLS_PROXY="1"), settings)
    assert behind == "('HTTP_X_FORWARDED_PROTO', 'https') True 31536000"
    development = {k: v for k, v in production_env(tmp_path).items() if k != "HUB_ENV"}
    assert probe(development, settings) == "None False 0"
