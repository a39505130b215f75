"""The hub served by gunicorn, as in production: token over real HTTP, JSON errors."""

import httpx

from aanspraak.services.registry import load_registry
from tests.support.factories import REGISTRY


def test_token_over_http_and_json_404(hub_server, settings):
    load_registry(REGISTRY)  # committed: the test is transactional (worker_env)
    response = httpx.post(
        f"{hub_server.url}/oauth2/token/",
        data={"grant_type": "client_credentials"},
        auth=("noord-lr", "noord-lr-secret"),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert set(body["scope"].split()) == {"eduv.entitlement.licensor", "eduv.usage.licensor"}
    assert response.headers["API-Version"] == settings.HUB_API_VERSION

    missing = httpx.get(f"{hub_server.url}/no/such/thing", timeout=10)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/json")
    assert missing.json()["status"] == 99
