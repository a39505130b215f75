"""The garbage collector kept off the hot paths (docs/performance.md, "Garbage collection"):
the API's requests leave no reference cycle behind, so each is freed by reference counting
when it ends; the web and worker processes freeze their startup heap, so a full collection
does not walk it.

The requests go through Django's WSGI handler itself, as gunicorn calls it: the test client
ties its responses into cycles of its own.
"""

import asyncio
import gc
import json
import os
import runpy
import uuid
from collections import Counter
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.test import RequestFactory

from tests.support.confirm_helpers import activation_body, licensor_body, request_to
from tests.support.factories import make_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def entitlement(registry):
    return make_order(registry, 2).entitlements.order_by("id").first()


def _call(handler: WSGIHandler, method: str, path: str, token: str, body: dict | None = None):
    raw = json.dumps(body).encode() if body is not None else b""
    # Django's own environ for the request; the handler then runs as gunicorn calls it.
    environ = (
        RequestFactory()
        .generic(method, path, raw, "application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
        .environ
    )
    statuses = []
    answer = handler(environ, lambda status, headers, exc_info=None: statuses.append(status))
    b"".join(answer)
    answer.close()  # what gunicorn does: the end of the request
    return statuses[0]


def _garbage_of(request, times: int = 10) -> Counter:
    """The types of the objects only the garbage collector could free after ``times`` calls."""
    # As Django's test client does: the test's transaction is not a connection to close.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        request()  # first: the token cache, the prepared INSERT, lazy imports
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        for _ in range(times):
            request()
        gc.collect()
        return Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def test_a_confirmation_put_leaves_no_reference_cycle(registry, make_token, entitlement):
    handler, token = WSGIHandler(), make_token("noord-lr")
    message = request_to(entitlement, registry.licensor)

    def confirm():
        body = licensor_body(message, receive_id=uuid.uuid4().hex)
        assert _call(handler, "PUT", "/entitlements/confirmations", token, body).startswith("202")

    assert _garbage_of(confirm) == Counter()


def test_an_activation_put_leaves_no_reference_cycle(make_token, entitlement):
    handler, token = WSGIHandler(), make_token("noord-lr")

    def activate():
        body = activation_body(entitlement, ref=uuid.uuid4().hex)
        assert _call(handler, "PUT", "/usage/activation", token, body).startswith("202")

    assert _garbage_of(activate) == Counter()


def test_reading_an_order_leaves_no_reference_cycle(make_token, entitlement):
    handler, token = WSGIHandler(), make_token("oost-seller")
    path = f"/entitlements/deliveryorder/{entitlement.delivery_order.delivery_order_id}"

    def read():
        assert _call(handler, "GET", path, token).startswith("200")

    assert _garbage_of(read) == Counter()


def test_the_admins_user_is_still_the_sessions_user(registry, django_user_model):
    # The hub's AuthenticationMiddleware holds the request weakly; what it answers is Django's.
    from django.contrib.auth import login
    from django.contrib.sessions.middleware import SessionMiddleware
    from django.test import RequestFactory

    from aanspraak.middleware import AuthenticationMiddleware

    staff = django_user_model.objects.create_user("alice", password="x", is_staff=True)
    first = RequestFactory().get("/admin/")
    SessionMiddleware(lambda r: None).process_request(first)
    first.user = staff
    login(first, staff)
    first.session.save()

    request = RequestFactory().get("/admin/")
    request.COOKIES["sessionid"] = first.session.session_key
    SessionMiddleware(lambda r: None).process_request(request)
    AuthenticationMiddleware(lambda r: None).process_request(request)
    assert request.user == staff
    # auser() reaches this request (Django caches its answer there; the lookup itself would
    # run in another thread, outside this test's transaction).
    request._acached_user = staff
    assert asyncio.run(request.auser()) is staff


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    yield
    gc.unfreeze()


def test_a_web_process_freezes_its_heap_once_the_app_is_loaded(unfrozen):
    # The configuration file sets defaults in the environment: keep them out of this process.
    with mock.patch.dict(os.environ):
        conf = runpy.run_path(str(Path(settings.BASE_DIR) / "config" / "gunicorn.conf.py"))
    conf["post_worker_init"](worker=None)
    assert gc.get_freeze_count() > 10_000


def test_a_worker_pool_process_freezes_its_heap_when_it_starts(unfrozen):
    from celery.signals import worker_process_init

    worker_process_init.send(sender=None)
    assert gc.get_freeze_count() > 10_000
