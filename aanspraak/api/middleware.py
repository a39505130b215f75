"""Error answers outside DRF views are StatusResponse JSON too."""

from __future__ import annotations

from aanspraak.choices import FunctionalCode

from .errors import json_error

# Headers of the original error that the StatusResponse keeps.
KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After")


class StatusResponseErrorMiddleware:
    """Turns a non-JSON error response (4xx/5xx) from anywhere in the stack, such as Django's
    bare ``HttpResponseNotAllowed`` of a wrong method on ``/oauth2/token/``, into a
    StatusResponse with the same HTTP status. The admin keeps its own pages."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code < 400
            or response.streaming
            or request.path.startswith("/admin/")
            or response.get("Content-Type", "").startswith("application/json")
        ):
            return response
        code = (
            FunctionalCode.SCHEMA_INCORRECT if response.status_code == 400 else FunctionalCode.OTHER
        )
        replacement = json_error(
            response.status_code, f"{response.status_code} {response.reason_phrase}.", code
        )
        for header in KEPT_HEADERS:
            if header in response:
                replacement[header] = response[header]
        return replacement
