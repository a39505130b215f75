"""Error answers outside DRF views are StatusResponse JSON too."""

from __future__ import annotations

from aanspraak.choices import FunctionalCode

from .errors import DATABASE_ERRORS, database_unavailable, json_error

# Headers of the original error that the StatusResponse keeps.
KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After")


class StatusResponseErrorMiddleware:
    """Turns a non-JSON error response (4xx/5xx) from anywhere in the stack, such as Django's
    bare ``HttpResponseNotAllowed`` of a wrong method on ``/oauth2/token/``, into a
    StatusResponse with the same HTTP status. The admin keeps its own pages. A view's
    database error (the database away) becomes the 503 StatusResponse."""

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

    def process_exception(self, request, exception):
        """A database that is away answers 503 from every view, not only DRF's: the token
        endpoint is django-oauth-toolkit's (docs/api.md, "Errors")."""
        if isinstance(exception, DATABASE_ERRORS):
            return database_unavailable()
        return None
