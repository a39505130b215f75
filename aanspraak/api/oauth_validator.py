"""django-oauth-toolkit's request validator, with client authentication by signed assertion
(``private_key_jwt``, ``aanspraak.services.client_assertions``) next to the client secret.

A refused assertion raises ``invalid_client`` with an ``error_description`` naming the rule
that failed (oauthlib renders it, RFC 6749 §5.2); a client registered with keys cannot use a
secret at all.
"""

from __future__ import annotations

from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.oauth2.rfc6749 import errors

from aanspraak.models import Client
from aanspraak.services import client_assertions

from .token import TOKEN_URL_HEADER


class HubOAuth2Validator(OAuth2Validator):
    def authenticate_client(self, request, *args, **kwargs) -> bool:
        assertion_type = getattr(request, "client_assertion_type", None)
        if assertion_type is not None:
            return self._authenticate_assertion(request, assertion_type)
        if not super().authenticate_client(request, *args, **kwargs):
            return False
        if request.client.uses_assertions:
            raise errors.InvalidClientError(
                description=f"client {request.client.client_id} authenticates with "
                "private_key_jwt (client_assertion); a client secret is not accepted",
                request=request,
            )
        return True

    def _authenticate_assertion(self, request, assertion_type: str) -> bool:
        if assertion_type != client_assertions.ASSERTION_TYPE:
            raise errors.InvalidClientError(
                description=f"client_assertion_type must be {client_assertions.ASSERTION_TYPE}",
                request=request,
            )
        assertion = getattr(request, "client_assertion", None)
        if not assertion:
            raise errors.InvalidClientError(
                description="client_assertion is missing", request=request
            )
        token_url = request.headers.get(TOKEN_URL_HEADER) or request.uri.split("?", 1)[0]
        try:
            client: Client = client_assertions.authenticate(
                assertion, getattr(request, "client_id", None), token_url
            )
        except client_assertions.AssertionRefused as refused:
            raise errors.InvalidClientError(description=str(refused), request=request) from None
        request.client = client
        request.client_id = client.client_id
        return True
