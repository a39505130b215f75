"""What every API request must pass before a view reads it (docs/api.md, "Errors"): the size
of its body (413), the major API version it asks for (400, status 12) and the media type of
its body (415). Each answer is a StatusResponse, and nothing has been read or written yet.

A middleware, not a DRF parser or view check: the size must be refused before the body is read
(a parser reads it whole), and the token endpoint and error pages are not DRF views. It costs a
few dictionary look-ups on the confirmations' hot path (docs/performance.md, P2).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from .errors import FunctionalCode, json_error

# The admin keeps Django's own pages and limits; health and metrics (aanspraak/operations.py)
# are not the chain's API either.
NOT_API = ("/admin/", "/healthz", "/readyz", "/metrics")
# OAuth2 (RFC 6749) takes form-encoded bodies and no API-Version: only the size applies.
OAUTH = ("/oauth2/",)
BODY_METHODS = frozenset({"PUT", "POST", "PATCH"})
# The one endpoint whose bodies are large: a delivery order of 100,000 students.
ORDER_PATH = "/deliveryorders"


def body_limit(path: str) -> int:
    """The most bytes a request body to ``path`` may have."""
    if path == ORDER_PATH:
        return settings.HUB_MAX_ORDER_BYTES
    return settings.HUB_MAX_BODY_BYTES


def _too_large(request: HttpRequest) -> HttpResponse | None:
    length = request.META.get("CONTENT_LENGTH")
    if not length:
        return None
    try:
        size = int(length)
    except ValueError:
        return json_error(
            400, f"Content-Length {length!r} is not a number.", FunctionalCode.SCHEMA_INCORRECT
        )
    limit = body_limit(request.path_info)
    if size <= limit:
        return None
    return json_error(
        413,
        f"The request body is {size:,} bytes; this endpoint takes at most {limit:,} bytes. "
        "Nothing was stored.",
    )


def _unserved_version(request: HttpRequest) -> HttpResponse | None:
    asked = request.META.get("HTTP_API_VERSION")
    if asked is None:
        return None
    served = settings.HUB_API_VERSION
    if asked.strip().split(".", 1)[0] == served.split(".", 1)[0]:
        return None
    return json_error(
        400,
        f"API-Version {asked.strip()!r} is not served: this hub serves major version "
        f"{served.split('.', 1)[0]} (API-Version {served}). Leave the header out, or ask for "
        f"{served}.",
        FunctionalCode.SCHEMA_VERSION_NOT_SUPPORTED,
    )


def is_json_media_type(media_type: str) -> bool:
    """``application/json`` or a structured-syntax ``application/*+json`` (RFC 6839)."""
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _has_body(request: HttpRequest) -> bool:
    meta = request.META
    return meta.get("CONTENT_LENGTH") not in (None, "", "0") or "HTTP_TRANSFER_ENCODING" in meta


def _not_json(request: HttpRequest) -> HttpResponse | None:
    # A PUT without a body is the view's to refuse (400, naming the fields it lacks).
    if request.method not in BODY_METHODS or not _has_body(request):
        return None
    content_type = request.META.get("CONTENT_TYPE", "")
    media_type, _, parameters = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type == "application/json":
        return None
    if is_json_media_type(media_type):
        # JSON by another name: the parsers (DRF's and the intake's) read application/json.
        request.META["CONTENT_TYPE"] = "application/json" + (f";{parameters}" if parameters else "")
        return None
    given = f"Content-Type {media_type}" if media_type else "no Content-Type"
    return json_error(
        415,
        f"The request body must be JSON (Content-Type: application/json or application/*+json; "
        f"a charset parameter is fine); the request has {given}.",
        FunctionalCode.SCHEMA_INCORRECT,
    )


class RequestChecksMiddleware:
    """413 for a body over its endpoint's limit, 400/12 for an ``API-Version`` of another
    major version, 415 for a body that is not JSON; the admin is left alone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path.startswith(NOT_API):
            return self.get_response(request)
        refused = _too_large(request)
        if refused is None and not path.startswith(OAUTH):
            refused = _unserved_version(request) or _not_json(request)
        return refused or self.get_response(request)
