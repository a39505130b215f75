"""Test set-up: the suite runs against real PostgreSQL and Redis and fails (never skips) when
they cannot be reached."""

from __future__ import annotations

import copy
import datetime as dt
import os
import secrets
from types import SimpleNamespace

import pytest
from django.utils import timezone

from tests.support.factories import REGISTRY


def pytest_sessionstart(session):
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        pytest.exit(
            "The test suite needs PostgreSQL: set DATABASE_URL (the README's test command does).",
            returncode=3,
        )
    import psycopg

    db = settings.DATABASES["default"]
    try:
        psycopg.connect(
            host=db["HOST"],
            port=db["PORT"] or 5432,
            user=db["USER"],
            password=db["PASSWORD"],
            dbname="postgres",
            connect_timeout=5,
        ).close()
    except psycopg.Error as exc:
        pytest.exit(f"PostgreSQL at {db['HOST']}:{db['PORT']} is unreachable: {exc}", returncode=3)

    import redis

    broker = settings.CELERY_BROKER_URL
    if not broker.startswith("redis://"):
        pytest.exit(
            "The test suite needs Redis: set CELERY_BROKER_URL (the README's test command does).",
            returncode=3,
        )
    try:
        redis.Redis.from_url(broker, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        pytest.exit(f"Redis at {broker} is unreachable: {exc}", returncode=3)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Client secrets are hashed; PBKDF2's cost would dominate the suite's run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _own_cache_keys(settings):
    """Each test has cache keys of its own (the shared cache is the test Redis): counts such
    as the token endpoint's failures never carry over from one test to the next."""
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["KEY_PREFIX"] = f"test-{secrets.token_hex(4)}"
    settings.CACHES = caches
    from aanspraak.services import rate_limits

    rate_limits.reset()  # and this process's own share of the counts


@pytest.fixture(autouse=True)
def _fresh_outbound_sessions():
    """Every test starts with no pooled HTTP clients and no cached tokens of other parties
    (they are per process; a loopback server of an earlier test is gone)."""
    from aanspraak.outbound import client as outbound_client

    outbound_client.reset_sessions()
    yield
    outbound_client.reset_sessions()


@pytest.fixture
def registry(db):
    """The test registry (tests/factories.py REGISTRY) loaded, as a namespace of objects."""
    from aanspraak.models import Client, Party, Product, School
    from aanspraak.services.registry import load_registry

    load_registry(REGISTRY)
    parties = {p.name: p for p in Party.objects.all()}
    return SimpleNamespace(
        seller=parties["Boekhandel Oost"],
        other_seller=parties["Boekhandel Zee"],
        licensor=parties["Uitgeverij Noord"],
        other_licensor=parties["Uitgeverij Berg"],
        portal=parties["Portal Zuid"],
        other_portal=parties["Portal Klei"],
        dashboard=parties["Dashboard West"],
        school_admin=parties["SIS Example"],
        school=School.objects.get(organisation_master_identifier="110A133"),
        other_school=School.objects.get(organisation_master_identifier="220B244"),
        product=Product.objects.get(product_id="9789001000011"),
        other_product=Product.objects.get(product_id="9789002000010"),
        clients={c.client_id: c for c in Client.objects.all()},
    )


@pytest.fixture
def make_token(registry):
    """Issue an access token for a registry client: ``make_token("noord-lr", scope=..., ...)``."""
    from oauth2_provider.models import AccessToken

    def _make(client_id: str, scope: str | None = None, expires_in: int = 3600) -> str:
        client = registry.clients[client_id]
        token = secrets.token_urlsafe(30)
        AccessToken.objects.create(
            application=client,
            token=token,
            scope=scope if scope is not None else client.allowed_scopes,
            expires=timezone.now() + dt.timedelta(seconds=expires_in),
        )
        return token

    return _make


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def auth_client(make_token):
    """An APIClient authenticated as a registry client: ``auth_client("noord-lr")``."""
    from rest_framework.test import APIClient

    def _client(client_id: str, scope: str | None = None) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(client_id, scope)}")
        return client

    return _client


@pytest.fixture
def subprocess_env():
    """The environment for worker or server subprocesses of a test."""
    return dict(os.environ)


@pytest.fixture
def worker_env(transactional_db, _fast_password_hashing):
    """Environment for a subprocess (Celery worker, gunicorn) that must see the test database:
    the committed data of a ``transactional_db`` test."""
    from django.conf import settings
    from django.db import connection

    db = settings.DATABASES["default"]
    env = dict(os.environ)
    env["DATABASE_URL"] = (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}"
        f"/{connection.settings_dict['NAME']}"
    )
    env["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
    env["PYTHONUNBUFFERED"] = "1"
    env["DJANGO_PASSWORD_HASHERS"] = ",".join(settings.PASSWORD_HASHERS)
    return env


@pytest.fixture
def celery_worker_process(worker_env, tmp_path):
    """Start a real ``celery -A config worker`` process against the test database and the
    test Redis; yields a handle with ``.proc`` and ``.log``; stops it afterwards.

    Call the fixture's ``start(extra_args=[...], env={...})`` to launch (so a test can pick
    queues or restart a worker)."""
    from tests.support.processes import CeleryWorker

    workers: list[CeleryWorker] = []

    def start(extra_args: list[str] | None = None, env: dict | None = None) -> CeleryWorker:
        worker = CeleryWorker({**worker_env, **(env or {})}, tmp_path, extra_args or [])
        worker.start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def hub_server(worker_env, tmp_path):
    """The hub under gunicorn on a free loopback port (``.url``), on the test database."""
    from tests.support.processes import HubServer

    server = HubServer(worker_env, tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def party_server():
    """Start loopback parties (``party_server(answer)``); all stopped at the end."""
    from tests.support.loopback import LoopbackParty

    servers: list[LoopbackParty] = []

    def start(answer=None) -> LoopbackParty:
        server = LoopbackParty(answer).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def woken_drains(monkeypatch):
    """Recipients whose drain was enqueued (by name, ``aanspraak.enqueue``), recorded instead
    of sent to the broker; other tasks sent by name are dropped."""
    from celery import current_app

    calls: list[int] = []

    def send_task(name, args=(), **kwargs):
        if name == "entitlements.tasks.drain_recipient":
            calls.append(args[0])

    monkeypatch.setattr(current_app._get_current_object(), "send_task", send_task)
    return calls
