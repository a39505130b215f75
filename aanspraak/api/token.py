"""``POST /oauth2/token/``: django-oauth-toolkit's token endpoint, with failed client
authentications limited per client id and address (``aanspraak.services.token_guard``)."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from django.http import HttpRequest, HttpResponse, JsonResponse
from oauth2_provider import views as oauth2_views

from aanspraak.models import Client
from aanspraak.services import client_assertions
from aanspraak.services.token_guard import blocked_for, record_failure

TOKEN_URL_HEADER = "HUB_TOKEN_URL"


def client_id_of(request: HttpRequest) -> str:
    """The client id a token request names: HTTP Basic (``client_secret_basic``, whose parts
    are form-encoded, RFC 6749 §2.3.1), else the form's ``client_id``, else a client
    assertion's ``iss`` (unverified: it only counts failures); "" if none."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return unquote_plus(decoded.partition(":")[0])
    assertion = request.POST.get("client_assertion")
    return request.POST.get("client_id") or (
        client_assertions.issuer(assertion) if assertion else ""
    )


def too_many_attempts(client_id: str, wait: int) -> HttpResponse:
    """429 with ``Retry-After`` and an OAuth2-style error body (RFC 6749 §5.2 shape)."""
    response = JsonResponse(
        {
            "error": "too_many_attempts",
            "error_description": (
                f"Too many failed client authentications for client {client_id or '(none)'} "
                f"from this address in this minute; retry after {wait} seconds."
            ),
        },
        status=429,
    )
    response["Retry-After"] = str(wait)
    response["Cache-Control"] = "no-store"
    return response


def revoked(client_id: str) -> HttpResponse:
    """A revoked client's token request: ``invalid_client``, as for any client that cannot
    authenticate (RFC 6749 §5.2), saying why; nothing issued."""
    response = JsonResponse(
        {
            "error": "invalid_client",
            "error_description": f"Client {client_id} is revoked (active: false in the "
            "registry file).",
        },
        status=401,
    )
    response["Cache-Control"] = "no-store"
    response["WWW-Authenticate"] = 'Basic realm="aanspraakmanager"'
    return response


class TokenView(oauth2_views.TokenView):
    """The token endpoint; a client id that failed to authenticate too often from one address
    this minute is answered 429, even with the right secret, until the minute is over."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        client_id = client_id_of(request)
        address = request.META.get("REMOTE_ADDR", "")
        wait = blocked_for(client_id, address)
        if wait:
            return too_many_attempts(client_id, wait)
        # The URL the client called: a client assertion's audience (django-oauth-toolkit hands
        # the validator only the path, and the request's META as its headers).
        request.META[TOKEN_URL_HEADER] = request.build_absolute_uri(request.path)
        if client_id and Client.objects.filter(client_id=client_id, active=False).exists():
            return revoked(client_id)
        response = super().post(request, *args, **kwargs)
        if response.status_code == 401:  # invalid_client: the secret (or client) was wrong
            record_failure(client_id, address)
        return response
