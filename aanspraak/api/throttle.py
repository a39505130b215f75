"""Per-client rate limits on every API request (``aanspraak.services.rate_limits``): DRF runs
the throttle after the token and scope checks, so the caller is known."""

from __future__ import annotations

from rest_framework import status
from rest_framework.throttling import BaseThrottle

from aanspraak.rates import Rate
from aanspraak.services.rate_limits import hit, limit_of

from .errors import ApiError, FunctionalCode


class RateLimited(ApiError):
    """429 with ``Retry-After`` (DRF sets it from ``wait``) and a StatusResponse saying the
    limit."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    functional_code = FunctionalCode.OTHER

    def __init__(self, client_id: str, rate: Rate, wait: int):
        super().__init__(
            f"Rate limit of client {client_id} reached: {rate.text}. Retry after {wait} seconds."
        )
        self.wait = wait


class ClientRateThrottle(BaseThrottle):
    """Refuses a request over its client's rate limit (none: every request goes ahead)."""

    def allow_request(self, request, view) -> bool:
        caller = getattr(request, "caller", None)  # set by HasChainScope
        if caller is None:
            return True
        rate = limit_of(caller.client.rate_limit)
        if rate is None:
            return True
        wait = hit(caller.client.pk, rate)
        if wait:
            raise RateLimited(caller.client.client_id, rate, wait)
        return True
