"""Request ids and the one log line per request (docs/operations.md, "Logs").

Every response carries ``X-Request-ID``: the client's own when it is 1 to 200 characters of
``A-Z a-z 0-9 . _ : -`` (and holds nothing shaped like a credential), else a new UUID. While
the request runs its id is the *current request id* (a context variable): every log line
written meanwhile carries it, and the rows the request creates for the workers (a
confirmation, the outbound messages of an intake or a cancel) store it, so the worker's lines
about them carry the same id.

``RequestIdMiddleware`` sits first in ``MIDDLEWARE`` and writes one record per request on the
``aanspraak.requests`` logger. It sits on every hot path (the confirmation PUT costs some
2.5 ms of CPU; docs/performance.md), so it does the least it can: one ``uuid4().hex`` when the
client sent no id, one regular expression when it did, one log record made without a caller
lookup and formatted once (``aanspraak.log_format.emit``).
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from .log_format import current_request_id, emit, request_id_var
from .logs import redact

__all__ = ["HEADER", "RequestIdMiddleware", "accepted_request_id", "current_request_id"]

HEADER = "X-Request-ID"
_META_KEY = "HTTP_X_REQUEST_ID"
_VALID = re.compile(r"[A-Za-z0-9._:-]{1,200}")
# Characters without which none of the credential shapes of aanspraak.logs can occur in a
# valid id or a path: only then is the (slower) redaction run.
_SUSPECT = ("=", ":", " ", "eyJ")

request_log = logging.getLogger("aanspraak.requests")


def _suspect(text: str) -> bool:
    return any(mark in text for mark in _SUSPECT) and redact(text) != text


def accepted_request_id(header: str | None) -> str:
    """The client's ``X-Request-ID`` if it is valid, else a new UUID (32 hex digits). A value
    shaped like a credential (``token:…``, a JWT) is replaced: ids are logged and echoed."""
    if header is not None and _VALID.fullmatch(header) and not _suspect(header):
        return header
    return uuid.uuid4().hex


def _client_id(request) -> str | None:
    # ``auth`` is set on the Django request by DRF's authentication: the token cache's entry
    # (``client``) or django-oauth-toolkit's AccessToken (``application``). Only the public
    # clientId is logged, never the token.
    auth = getattr(request, "auth", None)
    if auth is None:
        return None
    client = getattr(auth, "client", None) or getattr(auth, "application", None)
    return getattr(client, "client_id", None)


class RequestIdMiddleware:
    """Sets the request id (``request.request_id`` and the current request id), answers it
    in ``X-Request-ID`` and logs one line per request: request_id, method, route, path,
    status, duration_ms, client. For a streamed answer the duration ends when streaming
    starts."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        request_id = accepted_request_id(request.META.get(_META_KEY))
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response[HEADER] = request_id
        if request_log.isEnabledFor(logging.INFO):
            _log_request(request, response, request_id, started)
        return response


def _log_request(request, response, request_id: str, started: float) -> None:
    match = request.resolver_match
    path = request.path
    if _suspect(path):
        path = redact(path)
    fields = {
        "request_id": request_id,
        "method": request.method,
        "route": match.route if match is not None else None,
        "path": path,
        "status": response.status_code,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        "client": _client_id(request),
    }
    emit(request_log, logging.INFO, "request", fields)
