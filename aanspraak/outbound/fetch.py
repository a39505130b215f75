"""Reading another party's API: one ``GET`` whose JSON answer the hub needs (the enrollment
and usage clients). Built on :func:`aanspraak.outbound.client.exchange`, so it shares the
pooled clients, the cached OAuth2 tokens, the timeouts and the classification of
:mod:`aanspraak.outbound.policy`.

Every problem becomes a :class:`ChainCallError` with a ``kind`` that names it and
``transient`` saying whether trying again later may help:

========================  ===========  ====================================================
kind                      transient    when
========================  ===========  ====================================================
``unavailable``           yes          5xx, 408, 429, timeout, connection error, token
                                       endpoint down
``unauthorized``          yes (token)  401: with a token URL the cached token is dropped
                                       and a new one fetched next time; without one, no
``forbidden``             no           403 (e.g. the hub lacks the scope)
``not-found``             no           404
``bad-request``           no           400 and the other 4xx
``malformed``             no           2xx with a body that is not JSON or not the shape
                                       of the page (the message names the field)
``no-endpoint``           no           the party has no baseUrl in the registry
========================  ===========  ====================================================
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .client import Endpoint, SendResult, exchange
from .policy import AttemptOutcome

T = TypeVar("T")

MAX_MESSAGE = 500


class MalformedBody(ValueError):
    """A body that does not have the page's shape; the message names the field."""


@dataclass
class ChainCallError(Exception):
    """A call to another party that gave no usable answer."""

    kind: str
    message: str
    http_status: int | None = None
    transient: bool = False
    retry_after: float | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


def _kind(result: SendResult) -> str:
    status = result.http_status
    if status is None:
        return "no-endpoint" if result.outcome is AttemptOutcome.FAILED else "unavailable"
    if status == 401:
        return "unauthorized"
    if status == 403:
        return "forbidden"
    if status == 404:
        return "not-found"
    if result.outcome is AttemptOutcome.RETRY:
        return "unavailable"
    return "bad-request"


def error_of(result: SendResult, what: str) -> ChainCallError:
    """The ChainCallError of an attempt that was not delivered."""
    kind = _kind(result)
    return ChainCallError(
        kind=kind,
        message=f"{what}: {result.error}"[:MAX_MESSAGE],
        http_status=result.http_status,
        transient=result.outcome is AttemptOutcome.RETRY,
        retry_after=result.retry_after,
    )


def fetch_json(
    endpoint: Endpoint,
    path: str,
    parse: Callable[[Any], T],
    *,
    params: dict | None = None,
    what: str = "",
) -> T:
    """``GET path`` at ``endpoint`` and return ``parse(json_body)``. Raises ChainCallError
    for every problem (``parse`` raises MalformedBody for a body of the wrong shape)."""
    what = what or f"GET {path} at {endpoint.name or endpoint.base_url}"
    result, response = exchange(endpoint, "GET", path, None, params=params)
    if result.outcome is not AttemptOutcome.DELIVERED or response is None:
        raise error_of(result, what)
    try:
        data = json.loads(response.content)
    except ValueError as exc:
        raise ChainCallError(
            "malformed",
            f"{what}: HTTP {response.status_code} with a body that is not JSON ({exc})"[
                :MAX_MESSAGE
            ],
            response.status_code,
        ) from None
    try:
        return parse(data)
    except MalformedBody as exc:
        raise ChainCallError(
            "malformed", f"{what}: {exc}"[:MAX_MESSAGE], response.status_code
        ) from None


# --- Small validators for the parsers -----------------------------------------------------


def need_object(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise MalformedBody(f"{path} must be an object")
    return value


def need_string(obj: dict, key: str, path: str, *, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise MalformedBody(f"{path}.{key} is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise MalformedBody(f"{path}.{key} must be a non-empty string")
    return value


def need_count(obj: dict, key: str, path: str) -> int | None:
    """An optional whole number >= 0."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedBody(f"{path}.{key} must be a whole number >= 0")
    return value
