"""Fixtures of the real-browser test (docs/support-desk.md): the system's Chromium driven by
Playwright against the hub served by pytest-django's live server, and the desk's data.

Playwright never downloads a browser here: it starts the Debian package's ``chromium``
(``HUB_CHROMIUM``, default ``/usr/bin/chromium``), which ``make test`` installs where it is
missing. Without it the tests fail, never skip: a green run must mean the pages were seen.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support.processes import ROOT

CHROMIUM = os.environ.get("HUB_CHROMIUM", "/usr/bin/chromium")
# The admin as a desk member sees it on a laptop; the screenshots of docs/support-desk.md.
VIEWPORT = {"width": 1280, "height": 800}
ECK_ID = "https://ketenid.nl/201703/desk-student-0001"
APPLIED_RECEIVE_ID = "rcv-desk-0001"
DUPLICATE_RECEIVE_ID = "rcv-desk-0002"


@pytest.fixture(scope="module")
def chromium_browser():
    """One headless Chromium for the module (the system's, never a downloaded one)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: `make test` installs the Debian package "
            "`chromium` (or set HUB_CHROMIUM to a Chromium executable)."
        )
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch:
        # Playwright's sync API keeps its event loop in this thread (in a greenlet), which
        # Django's async-safety check takes for async code and then refuses the ORM. The
        # tests' ORM calls are plain synchronous calls between page steps, so the check is
        # off while the browser lives: module scope, so no other test module runs with it.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            yield browser
            browser.close()


@pytest.fixture
def page(chromium_browser, live_server):
    """A fresh browser context (no cookies) on the live server, with short timeouts: a
    missing element fails the test in seconds, not after Playwright's default 30 s."""
    from playwright.sync_api import expect

    context = chromium_browser.new_context(viewport=VIEWPORT, base_url=live_server.url)
    context.set_default_timeout(10_000)
    expect.set_options(timeout=5_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def shots(tmp_path):
    """Where screenshots go: ``HUB_SCREENSHOTS`` (e.g. ``docs/support-desk``, relative to the
    repository) when set, so that the docs can be regenerated; the test's tmp_path otherwise,
    so that a CI run never rewrites the repository."""
    target = os.environ.get("HUB_SCREENSHOTS")
    folder = (ROOT / target) if target else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)

    def shoot(page, name: str, *, full_page: bool = False) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return shoot


@pytest.fixture
def desk(live_server, registry, woken_drains):
    """The desk's world, committed (the live server is another thread on its own connection):
    the test registry (``registry``), an order of three students, one of them with a fixed
    ECK iD and two confirmations of the licence registry applied by the worker's service
    (``applied``, then ``duplicate``), and a superuser to log in with."""
    from django.contrib.auth import get_user_model

    from confirmations.models import Confirmation
    from confirmations.services.apply import apply_all_pending
    from entitlements.models import Entitlement
    from tests.support.confirm_helpers import T0, licensor_body, request_to, store
    from tests.support.factories import make_order

    order = make_order(registry, 3, delivery_order_id="DO-2026-0042")
    student = order.entitlements.order_by("id").first()
    # A recognisable ECK iD for the search and the screenshots.
    spec = {**student.specification, "user": {"userMasterIdentifier": ECK_ID}}
    Entitlement.objects.filter(pk=student.pk).update(
        user_master_identifier=ECK_ID, specification=spec
    )
    sent = request_to(student, registry.licensor)
    store(registry.licensor, licensor_body(sent, "entitled", receive_id=APPLIED_RECEIVE_ID))
    later = T0 + dt.timedelta(hours=1)
    store(
        registry.licensor,
        licensor_body(sent, "entitled", at=later, receive_id=DUPLICATE_RECEIVE_ID),
    )
    assert apply_all_pending() == 2
    outcomes = dict(Confirmation.objects.values_list("receive_id", "state"))
    assert outcomes == {APPLIED_RECEIVE_ID: "applied", DUPLICATE_RECEIVE_ID: "duplicate"}

    password = secrets.token_urlsafe(16)
    user = get_user_model().objects.create_superuser("desk", "desk@example.org", password)
    student.refresh_from_db()
    assert student.status == "entitled"
    return SimpleNamespace(
        order=order,
        student=student,
        eck_id=ECK_ID,
        username=user.get_username(),
        password=password,
        woken_drains=woken_drains,
        url=live_server.url,
    )
