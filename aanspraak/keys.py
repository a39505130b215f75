"""The hub's private key towards a party that wants ``private_key_jwt`` (registry
``endpoint.privateKey`` or ``endpoint.privateKeyFile``, docs/registry.md): a PEM private key
that must fit the signing algorithm. Checked when the registry file is loaded
(``aanspraak.services.registry_endpoint``) and in admin; read again when the outbound client
signs (``aanspraak.outbound.client``).

A :class:`KeyProblem` says what is wrong and never quotes the key: its message ends up in
registry errors, admin forms and delivery attempts.
"""

from __future__ import annotations

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc.jwk import ECKey, RSAKey

from .choices import SigningAlgorithm

# NL GOV Assurance profile for OAuth 2.0 (docs/security.md): RSA keys of at least 2048 bits.
MIN_RSA_BITS = 2048


class KeyProblem(ValueError):
    """The key cannot sign with the algorithm; the message names why, never the key."""


def load_private_key(pem: str, algorithm: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """The private key ``pem`` holds, checked against ``algorithm`` (RS256 and PS256: RSA of at
    least 2048 bits; ES256: EC on P-256). Raises :class:`KeyProblem`."""
    if algorithm not in SigningAlgorithm.values:
        raise KeyProblem(f"unknown algorithm {algorithm!r}: one of {', '.join(SigningAlgorithm)}")
    text = pem.strip()
    if "PRIVATE KEY-----" not in text:
        if "PUBLIC KEY-----" in text or "CERTIFICATE-----" in text:
            raise KeyProblem("is a public key or certificate: give the private key (PEM)")
        raise KeyProblem("is not a PEM private key (-----BEGIN PRIVATE KEY-----)")
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except TypeError:
        # The hub stores the key encrypted itself (HUB_FIELD_ENCRYPTION_KEYS); a passphrase
        # would only move the secret elsewhere.
        raise KeyProblem("is encrypted with a passphrase: give it unencrypted") from None
    except (ValueError, UnsupportedAlgorithm):
        # from None: cryptography's message is not needed and must not drag key bytes along.
        raise KeyProblem("does not parse as a PEM private key") from None
    if algorithm == SigningAlgorithm.ES256:
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise KeyProblem(f"ES256 needs an EC key on P-256; this is {_kind(key)}")
        return key
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyProblem(f"{algorithm} needs an RSA key; this is {_kind(key)}")
    if key.key_size < MIN_RSA_BITS:
        raise KeyProblem(f"is an RSA key of {key.key_size} bits: at least {MIN_RSA_BITS} needed")
    return key


def signing_key(pem: str, algorithm: str, kid: str = "") -> RSAKey | ECKey:
    """The key as joserfc (which Authlib signs with) takes it; ``kid`` becomes its key id."""
    key = load_private_key(pem, algorithm)
    parameters = {"kid": kid} if kid else None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return ECKey.import_key(key, parameters)
    return RSAKey.import_key(key, parameters)


def _kind(key) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return f"an RSA key ({key.key_size} bits)"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return f"an EC key on {key.curve.name}"
    return f"a key of type {type(key).__name__.removeprefix('_').removesuffix('PrivateKey')}"
