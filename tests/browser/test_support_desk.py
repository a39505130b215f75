"""The support desk's pages in a real browser (docs/support-desk.md): log in to the admin,
find a student by ECK iD, read the entitlement's timeline, see an order's totals chart, and
propose a cancel through its confirmation page. The screenshots of docs/support-desk.md are
taken here (``HUB_SCREENSHOTS=docs/support-desk``)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import APPLIED_RECEIVE_ID, DUPLICATE_RECEIVE_ID

pytestmark = pytest.mark.browser


def log_in(page: Page, desk, shoot=None) -> None:
    """Log in through the admin's own login form."""
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", desk.username)
    page.fill("#id_password", desk.password)
    if shoot:
        shoot(page, "login")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#user-tools")).to_contain_text(desk.username)


def search_student(page: Page, desk) -> None:
    """The entitlement changelist searched by the student's ECK iD: one row, the student."""
    page.goto("/admin/entitlements/entitlement/")
    page.fill("#searchbar", desk.eck_id)
    page.locator("#changelist-search").get_by_role("button", name="Search").click()
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(str(desk.student.entitlement_id))


def test_log_in_and_find_a_student_by_eck_id(page, desk, shots):
    log_in(page, desk, shots)
    search_student(page, desk)
    shots(page, "search")

    page.locator("#result_list tbody tr").first.get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(rf"/admin/entitlements/entitlement/{desk.student.pk}/"))
    # The change page shows the entitlement itself, its status and its events.
    expect(page.locator("#content")).to_contain_text(str(desk.student.entitlement_id))
    expect(page.locator("#content")).to_contain_text("entitled")


def test_timeline_shows_the_confirmations_outcomes(page, desk, shots):
    log_in(page, desk)
    page.goto(f"/admin/entitlements/entitlement/{desk.student.pk}/change/")
    page.get_by_role("link", name=re.compile("Timeline")).first.click()
    expect(page).to_have_url(
        re.compile(rf"/admin/entitlements/entitlement/{desk.student.pk}/timeline/$")
    )
    timeline = page.locator("table#timeline")
    expect(timeline).to_be_visible()
    # The confirmation's own row (the status event it caused names it too).
    applied = timeline.locator("tr.kind-confirmation", has_text=APPLIED_RECEIVE_ID)
    expect(applied).to_have_count(1)
    expect(applied.locator(".outcome")).to_contain_text("applied")
    duplicate = timeline.locator("tr.kind-confirmation", has_text=DUPLICATE_RECEIVE_ID)
    expect(duplicate.locator(".outcome")).to_contain_text("duplicate")
    # Time order: the confirmation processed first comes first.
    texts = timeline.locator("tr.kind-confirmation").all_inner_texts()
    first = next(i for i, t in enumerate(texts) if APPLIED_RECEIVE_ID in t)
    second = next(i for i, t in enumerate(texts) if DUPLICATE_RECEIVE_ID in t)
    assert first < second
    shots(page, "timeline", full_page=True)


def test_order_page_shows_the_totals_chart(page, desk, shots):
    log_in(page, desk)
    page.goto(f"/admin/entitlements/deliveryorder/{desk.order.pk}/change/")
    chart = page.locator("svg.status-chart[role=img]")
    expect(chart).to_be_visible()
    links = chart.locator("a")
    hrefs = [
        link.evaluate("a => a.getAttribute('href') || a.getAttribute('xlink:href')")
        for link in links.all()
    ]
    # Totals per entitlement status and per URL status, each a link to the changelist.
    assert len(hrefs) >= 2, hrefs
    assert all("/admin/entitlements/entitlement/" in href for href in hrefs), hrefs
    chart.scroll_into_view_if_needed()
    shots(page, "order", full_page=True)

    # The total of `entitled` lists exactly the one student the registry confirmed.
    entitled = next(i for i, href in enumerate(hrefs) if "entitled" in href)
    links.nth(entitled).click()
    expect(page).to_have_url(re.compile(r"/admin/entitlements/entitlement/\?"))
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(str(desk.student.entitlement_id))


def test_cancel_action_through_its_confirmation_page(page, desk, shots):
    from entitlements.models import OutboundMessage

    end_date = dt.date(2026, 12, 31)
    log_in(page, desk)
    search_student(page, desk)
    page.locator("#result_list tbody tr").first.locator("input.action-select").check()
    page.select_option("select[name=action]", "propose_cancel")
    page.get_by_role("button", name="Go").click()

    # The intermediate page: nothing is proposed until the desk confirms with an end date.
    end = page.locator("input[type=date][name=end_date]")
    expect(end).to_be_visible()
    assert not OutboundMessage.objects.filter(proposed_entitlement_status="cancelled").exists()
    end.fill(end_date.isoformat())
    shots(page, "cancel-confirm")
    page.locator('input[type=submit][name=confirm][value="Yes, propose"]').click()

    message = page.locator("ul.messagelist li").first
    expect(message).to_have_text(re.compile(r"^\s*Proposed cancelled"))
    expect(page).to_have_url(re.compile(r"/admin/entitlements/entitlement/"))
    shots(page, "cancelled")

    proposals = OutboundMessage.objects.filter(
        entitlement=desk.student, proposed_entitlement_status="cancelled"
    )
    assert proposals.exists()
    assert set(proposals.values_list("proposed_end_date", "requested_by")) == {
        (end_date, desk.username)
    }
    # Only the selected student: the other two of the order are left alone.
    assert not OutboundMessage.objects.filter(proposed_entitlement_status="cancelled").exclude(
        entitlement=desk.student
    )
    assert desk.woken_drains, "the outbound drains were not woken after the proposal"
