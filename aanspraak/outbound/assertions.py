"""The hub's client assertions towards a party that wants ``private_key_jwt`` (RFC 7523 §2.2,
as the NL GOV Assurance profile for OAuth 2.0 prescribes; docs/security.md, "The hub's own
outbound calls").

Authlib builds and sends them (``authlib.oauth2.rfc7523.PrivateKeyJWT``, registered on the
endpoint's ``OAuth2Client``): ``iss`` = ``sub`` = the hub's clientId at the party, ``aud`` the
token endpoint's URL, ``iat``, ``exp`` and a new random ``jti`` for every token request. What
the hub adds: its key (``endpoint.privateKey``), the ``kid`` (``endpoint.keyId``), the algorithm
and a short lifetime.
"""

from __future__ import annotations

from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from joserfc.jwk import ECKey, RSAKey

from aanspraak.keys import signing_key

# Seconds from iat to exp. Authlib's default is an hour; the profile wants assertions that
# are short-lived (the hub's own token endpoint refuses more than 10 minutes, docs/security.md)
# and each one is used for a single token request at once anyway.
ASSERTION_LIFETIME_SECONDS = 120


class HubPrivateKeyJWT(PrivateKeyJWT):
    """Authlib's ``private_key_jwt`` client authentication with the hub's key for one party.
    The PEM is parsed at the first token request: a key that no longer parses is a failed
    token request (retried, with a message that never quotes the key), not a crash."""

    def __init__(self, token_endpoint: str, pem: str, algorithm: str, key_id: str = ""):
        super().__init__(token_endpoint, headers={"kid": key_id} if key_id else None, alg=algorithm)
        self._pem = pem
        self._key: RSAKey | ECKey | None = None

    def __repr__(self) -> str:  # never the key
        return f"HubPrivateKeyJWT({self.token_endpoint!r}, alg={self.alg!r})"

    def sign(self, auth, token_endpoint: str) -> str:
        """A new assertion (new ``jti``, ``iat`` now) for one token request."""
        if self._key is None:
            self._key = signing_key(self._pem, self.alg)
        return private_key_jwt_sign(
            self._key,
            client_id=auth.client_id,
            token_endpoint=token_endpoint,
            alg=self.alg,
            # Copies: Authlib writes alg into the header and jti into the claims it is given,
            # and a shared claims dict would carry one jti into every later assertion.
            header=dict(self.headers or {}),
            claims=None,
            expires_in=ASSERTION_LIFETIME_SECONDS,
        )
