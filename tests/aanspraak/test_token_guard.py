"""The token endpoint against secret guessing: after HUB_TOKEN_FAILURES_PER_MINUTE failed
authentications of one client id from one address within a calendar minute, every attempt of
that pair answers 429 with Retry-After until the minute is over, even with the right secret
(aanspraak/services/token_guard.py)."""

import base64

import pytest
from django.test import Client as HttpClient
from oauth2_provider.models import AccessToken

from aanspraak.services import token_guard
from tests.support.tokens import token_rows

pytestmark = pytest.mark.django_db
TOKEN_URL = "/oauth2/token/"


def ask(client_id: str, secret: str, address: str = "10.0.0.1", *, in_form: bool = False):
    data = {"grant_type": "client_credentials"}
    extra = {"REMOTE_ADDR": address}
    if in_form:
        data |= {"client_id": client_id, "client_secret": secret}
    else:
        pair = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        extra["HTTP_AUTHORIZATION"] = f"Basic {pair}"
    return HttpClient().post(TOKEN_URL, data, **extra)


@pytest.fixture
def frozen_minute(monkeypatch):
    """All calls at 12.5 s into one minute (the window is the calendar minute)."""
    clock = {"now": 1_800_000_000.0 - (1_800_000_000.0 % 60) + 12.5}
    monkeypatch.setattr(token_guard.time, "time", lambda: clock["now"])
    return clock


@pytest.mark.parametrize("in_form", [False, True])
def test_after_the_limit_even_the_right_secret_is_429_until_the_minute_is_over(
    registry, settings, frozen_minute, in_form
):
    settings.HUB_TOKEN_FAILURES_PER_MINUTE = 3
    for _ in range(3):
        wrong = ask("noord-lr", "guess", in_form=in_form)
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    tokens = AccessToken.objects.count()

    refused = ask("noord-lr", "noord-lr-secret", in_form=in_form)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "48"  # 60 - 12.5, rounded up
    assert refused["Content-Type"] == "application/json"
    body = refused.json()
    assert body["error"] == "too_many_attempts"
    assert "noord-lr" in body["error_description"] and "48 seconds" in body["error_description"]
    assert "secret" not in refused.content.decode().lower()
    assert AccessToken.objects.count() == tokens  # nothing issued

    frozen_minute["now"] += 48  # the next minute
    assert ask("noord-lr", "noord-lr-secret", in_form=in_form).status_code == 200


def test_other_clients_and_other_addresses_are_not_held_back(registry, settings, frozen_minute):
    settings.HUB_TOKEN_FAILURES_PER_MINUTE = 2
    for _ in range(2):
        assert ask("noord-lr", "guess").status_code == 401
    assert ask("noord-lr", "noord-lr-secret").status_code == 429
    assert ask("noord-lr", "noord-lr-secret", address="10.0.0.2").status_code == 200
    assert ask("oost-seller", "oost-seller-secret").status_code == 200


def test_successes_do_not_count_and_zero_turns_it_off(registry, settings, frozen_minute):
    settings.HUB_TOKEN_FAILURES_PER_MINUTE = 2
    for _ in range(4):
        assert ask("noord-lr", "noord-lr-secret").status_code == 200
    settings.HUB_TOKEN_FAILURES_PER_MINUTE = 0
    for _ in range(5):
        assert ask("noord-lr", "guess").status_code == 401
    assert ask("noord-lr", "noord-lr-secret").status_code == 200


def test_unknown_client_ids_are_limited_as_well(registry, settings, frozen_minute):
    settings.HUB_TOKEN_FAILURES_PER_MINUTE = 1
    assert ask("nobody", "x").status_code == 401
    assert ask("nobody", "x").status_code == 429


def test_a_cache_that_cannot_be_reached_lets_the_secret_check_decide(registry, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    settings.HUB_TOKEN_FAILURES_PER_MINUTE = 1
    for _ in range(3):
        assert ask("noord-lr", "guess").status_code == 401
    assert ask("noord-lr", "noord-lr-secret").status_code == 200


def test_a_revoked_client_gets_no_token_and_its_tokens_stop_working(registry):
    from aanspraak.models import Client

    token = ask("noord-lr", "noord-lr-secret").json()["access_token"]
    reader = HttpClient(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert reader.get("/entitlements/confirmations/rcv-none").status_code == 404  # served
    client = Client.objects.get(client_id="noord-lr")
    client.active = False
    client.save()  # in this process: at once (other processes: HUB_TOKEN_CACHE_SECONDS)

    refused = reader.get("/entitlements/confirmations/rcv-none")
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused["WWW-Authenticate"]
    answer = ask("noord-lr", "noord-lr-secret")
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"
    assert "revoked" in answer.json()["error_description"]
    assert (
        not AccessToken.objects.filter(application=client)
        .exclude(pk__in=token_rows(token))
        .exists()
    )
