"""Per-client rate limits (aanspraak/services/rate_limits.py): a client's own ``rateLimit``,
else HUB_RATE_LIMIT, else none; 429 with Retry-After and a StatusResponse saying the limit;
the count shared by all web processes; other clients unaffected."""

import pytest
from django.core.checks import run_checks
from django.db import IntegrityError, transaction

from aanspraak.models import Client
from aanspraak.rates import Rate, parse_rate
from aanspraak.services import rate_limits
from confirmations.models import Confirmation
from tests.support.confirm_helpers import licensor_body, request_to
from tests.support.factories import make_order

URL = "/entitlements/confirmations"


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("600/min", (600, 60)),
        ("20/s", (20, 1)),
        ("10000/hour", (10000, 3600)),
        ("5/day", (5, 86400)),
    ],
)
def test_rates_are_read_as_the_registry_writes_them(text, rate):
    assert (parse_rate(text).count, parse_rate(text).period) == rate


@pytest.mark.parametrize("text", ["fast", "0/min", "10/week", "10 / min", "-1/s", "", "1e3/s"])
def test_anything_else_is_refused_with_the_forms_it_takes(text):
    with pytest.raises(ValueError, match="600/min"):
        parse_rate(text)


@pytest.mark.django_db
def test_the_database_refuses_a_rate_of_another_form(registry):
    client = registry.clients["noord-lr"]
    with pytest.raises(IntegrityError), transaction.atomic():
        Client.objects.filter(pk=client.pk).update(rate_limit="fast")
    Client.objects.filter(pk=client.pk).update(rate_limit="600/min")


def test_a_bad_hub_rate_limit_fails_the_system_check(settings):
    settings.HUB_RATE_LIMIT = "lots"
    errors = [e for e in run_checks() if e.id == "aanspraak.E001"]
    assert errors and "HUB_RATE_LIMIT" in errors[0].msg
    settings.HUB_RATE_LIMIT = "600/min"
    assert not [e for e in run_checks() if e.id == "aanspraak.E001"]


@pytest.fixture
def bodies(registry):
    entitlements = list(make_order(registry, 6).entitlements.order_by("id"))
    return [licensor_body(request_to(e, registry.licensor)) for e in entitlements]


@pytest.mark.django_db
def test_over_its_limit_a_client_gets_429_and_others_go_on(registry, auth_client, bodies):
    Client.objects.filter(client_id="noord-lr").update(rate_limit="3/min")
    licensor = auth_client("noord-lr")
    for body in bodies[:3]:
        assert licensor.put(URL, body, format="json").status_code == 202
    refused = licensor.put(URL, bodies[3], format="json")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    answer = refused.json()
    assert answer["status"] == 99
    assert "3/min" in answer["statusMessage"] and "noord-lr" in answer["statusMessage"]
    assert f"Retry after {refused['Retry-After']} seconds" in answer["statusMessage"]
    assert not Confirmation.objects.filter(receive_id=bodies[3]["entitlementReceiveId"]).exists()
    # Another client (its own count, no limit of its own) is not held back.
    berg = auth_client("berg-lr")
    assert berg.get("/entitlements/confirmations/rcv-none").status_code == 404


@pytest.mark.django_db
def test_hub_rate_limit_applies_to_clients_without_their_own(
    settings, registry, auth_client, bodies
):
    settings.HUB_RATE_LIMIT = "2/min"
    licensor = auth_client("noord-lr")
    codes = [licensor.put(URL, body, format="json").status_code for body in bodies[:3]]
    assert codes == [202, 202, 429]
    Client.objects.filter(client_id="noord-lr").update(rate_limit="100/min")  # its own wins
    assert auth_client("noord-lr").put(URL, bodies[3], format="json").status_code == 202


@pytest.mark.django_db
def test_without_any_limit_nothing_is_limited(settings, registry, auth_client, bodies):
    settings.HUB_RATE_LIMIT = None
    licensor = auth_client("noord-lr")
    assert all(licensor.put(URL, b, format="json").status_code == 202 for b in bodies)


@pytest.mark.django_db
def test_the_count_is_shared_by_the_web_processes():
    """A second process (this one with its own state forgotten) continues the shared count."""
    rate, now = Rate(5, 60, "5/min"), 1_800_000_000.0
    assert [rate_limits.hit(7, rate, now) for _ in range(3)] == [0, 0, 0]
    rate_limits.reset()  # "another web process": nothing of its own, the shared count only
    assert [rate_limits.hit(7, rate, now + 1) for _ in range(3)] == [0, 0, 59]
    assert rate_limits.hit(7, rate, now + 60) == 0  # the next minute starts again


@pytest.mark.django_db
def test_a_large_limit_is_counted_in_steps_and_exceeded_by_at_most_a_step_per_process():
    rate, now = Rate(1000, 60, "1000/min"), 1_800_000_000.0
    processes = 3
    allowed = 0
    for _ in range(processes):
        rate_limits.reset()
        allowed += sum(rate_limits.hit(8, rate, now) == 0 for _ in range(1200))
    assert rate.count <= allowed <= rate.count + processes * (rate.count // 100)


@pytest.mark.django_db
def test_a_cache_that_cannot_be_reached_limits_nothing(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    rate = Rate(1, 60, "1/min")
    assert [rate_limits.hit(9, rate, 1_800_000_000.0) for _ in range(3)] == [0, 0, 0]


@pytest.mark.django_db
def test_on_redis_a_step_is_one_pipelined_incrby_with_its_expiry(monkeypatch):
    """The shared count is written with INCRBY and EXPIRE in one round trip, not with the
    cache API's add and incr (three round trips, a tenth of a confirmation's CPU)."""
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    backend = caches["default"]
    assert isinstance(backend, RedisCache), "the tests run on the hub's Redis"

    def refuse(*args, **kwargs):
        raise AssertionError("the cache API was used instead of the pipeline")

    monkeypatch.setattr(RedisCache, "add", refuse)
    monkeypatch.setattr(RedisCache, "incr", refuse)
    rate, now = Rate(5, 60, "5/min"), 1_800_000_000.0
    assert [rate_limits.hit(10, rate, now) for _ in range(6)] == [0, 0, 0, 0, 0, 60]
    key = backend.make_and_validate_key(f"rate:10:5/min:{int(now // 60)}")
    redis = backend._cache.get_client(write=True)
    assert int(redis.get(key)) == 5  # the refused sixth is not counted
    assert 0 < redis.ttl(key) <= 120
