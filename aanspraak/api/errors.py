"""The error contract: every API error is a StatusResponse ``{"status", "statusMessage"}``
(docs/api.md, "Errors") with the right HTTP code and the chain's functional code."""

from __future__ import annotations

import sys

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from aanspraak.choices import FunctionalCode


def status_body(code: FunctionalCode, message: str) -> dict:
    """A StatusResponse body. A NUL the message quotes from the request (a field name, a
    path) is written ``\\u0000``: the answer never carries the character it refuses, and
    ``statusMessage`` is never blank (docs/openapi.yaml; found by tests/fuzz)."""
    return {"status": int(code), "statusMessage": message.replace("\x00", "\\u0000")}


class ApiError(exceptions.APIException):
    """An API error with a functional code; raise it from services' callers in views."""

    status_code = status.HTTP_400_BAD_REQUEST
    functional_code = FunctionalCode.OTHER

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        code: FunctionalCode | None = None,
    ):
        super().__init__(detail=message)
        if http_status is not None:
            self.status_code = http_status
        if code is not None:
            self.functional_code = FunctionalCode(code)


class SchemaError(ApiError):
    status_code = status.HTTP_400_BAD_REQUEST
    functional_code = FunctionalCode.SCHEMA_INCORRECT


class ScopeRequired(ApiError):
    status_code = status.HTTP_403_FORBIDDEN
    functional_code = FunctionalCode.SCOPE_REQUIRED


class ConsentRequired(ApiError):
    status_code = status.HTTP_403_FORBIDDEN
    functional_code = FunctionalCode.CONSENT_REQUIRED


class Forbidden(ApiError):
    status_code = status.HTTP_403_FORBIDDEN
    functional_code = FunctionalCode.OTHER


class NotFound(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    functional_code = FunctionalCode.OTHER


def _flatten(detail, prefix: str = "") -> list[str]:
    """Turn DRF's nested validation detail into ``field.path: message`` lines."""
    if isinstance(detail, dict):
        lines: list[str] = []
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else str(key)
            path = f"{prefix}.{name}" if prefix and name else (prefix or name)
            lines += _flatten(value, path)
        return lines
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return [f"{prefix}: {item}" if prefix else str(item) for item in detail]
        lines = []
        for index, item in enumerate(detail):
            lines += _flatten(item, f"{prefix}[{index}]")
        return lines
    return [f"{prefix}: {detail}" if prefix else str(detail)]


RETRY_SOON = {"Retry-After": "1"}
# The database is gone (restarting, unreachable) or the connection broke: nothing was
# stored, and a retry soon will do (Django replaces a broken connection at the end of the
# request). DRF views, other views (the token endpoint) and middleware all answer it.
DATABASE_ERRORS = (OperationalError, InterfaceError)
DATABASE_UNAVAILABLE = (
    "The Aanspraakmanager's database is unavailable for a moment; nothing was stored. "
    "Retry the request."
)


def database_unavailable() -> JsonResponse:
    """The 503 StatusResponse, with ``Retry-After``, of a database that is away."""
    response = json_error(status.HTTP_503_SERVICE_UNAVAILABLE, DATABASE_UNAVAILABLE)
    for header, value in RETRY_SOON.items():
        response[header] = value
    return response


def exception_handler(exc, context) -> Response | None:
    """DRF exception handler: the StatusResponse body for every error."""
    # Imported here: rest_framework.views loads the permission classes, which import this.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, DATABASE_ERRORS):
        body = status_body(FunctionalCode.OTHER, DATABASE_UNAVAILABLE)
        return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers=RETRY_SOON)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # not an API exception: Django's handler500 answers
    if isinstance(exc, ApiError):
        code, message = exc.functional_code, str(exc.detail)
    elif isinstance(exc, exceptions.ValidationError | exceptions.ParseError):
        code = FunctionalCode.SCHEMA_INCORRECT
        message = "; ".join(_flatten(exc.detail))
    elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        code = FunctionalCode.OTHER
        message = (
            "A valid bearer access token is required: obtain one at /oauth2/token/ with the "
            "client credentials grant; the token given is missing, malformed, expired or revoked."
        )
        challenge = 'Bearer realm="aanspraakmanager"'
        if context["request"].META.get("HTTP_AUTHORIZATION"):
            # RFC 6750 §3.1: a token was sent but is not valid (unknown, expired, revoked).
            challenge += ', error="invalid_token"'
        response["WWW-Authenticate"] = challenge
        response.status_code = status.HTTP_401_UNAUTHORIZED
    elif isinstance(exc, exceptions.MethodNotAllowed):
        code = FunctionalCode.OTHER
        message = f"Method {context['request'].method} is not allowed on this endpoint."
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        code = FunctionalCode.SCHEMA_INCORRECT
        message = "The request body must be JSON (Content-Type: application/json)."
    else:
        code = FunctionalCode.OTHER
        message = (
            str(exc.detail)
            if not isinstance(exc.detail, dict | list)
            else "; ".join(_flatten(exc.detail))
        )
    response.data = status_body(code, message)
    return response


def json_error(
    http_status: int, message: str, code: FunctionalCode = FunctionalCode.OTHER
) -> JsonResponse:
    """A plain Django StatusResponse (outside DRF views)."""
    return JsonResponse(status_body(code, message), status=http_status)


def handler400(request, exception=None):
    return json_error(400, "Bad request.", FunctionalCode.SCHEMA_INCORRECT)


def handler403(request, exception=None):
    return json_error(403, "Forbidden.")


def handler404(request, exception=None):
    return json_error(404, f"No such resource: {request.path}")


def handler500(request):
    # Called while Django handles the uncaught exception: a database error from outside a
    # view (a middleware) is still the 503 of a database that is away, not an internal error.
    if isinstance(sys.exc_info()[1], DATABASE_ERRORS):
        return database_unavailable()
    return json_error(500, "Internal error of the Aanspraakmanager; it has been logged.")
