"""Keys made at test time (none are committed): PEM private keys as the registry file takes
them, their public halves as joserfc keys for a loopback token endpoint that verifies, and
client assertions signed with them (private_key_jwt, RFC 7523)."""

from __future__ import annotations

import time
import uuid
from functools import cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey


def _pem(key, password: bytes | None = None) -> str:
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    ).decode()


@cache
def _rsa(bits: int, n: int):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@cache
def _ec(curve: str, n: int):
    return ec.generate_private_key({"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1()}[curve])


def rsa_pem(n: int = 0, bits: int = 2048) -> str:
    """The ``n``-th RSA private key of this test run (the same one every call)."""
    return _pem(_rsa(bits, n))


def ec_pem(n: int = 0, curve: str = "P-256") -> str:
    """The ``n``-th EC private key on ``curve`` of this test run."""
    return _pem(_ec(curve, n))


def encrypted_pem() -> str:
    return _pem(_rsa(2048, 0), password=b"passphrase")


def public_pem(pem: str) -> str:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def public_jose_key(pem: str) -> RSAKey | ECKey:
    """The public half of ``pem`` as joserfc verifies with it."""
    public = serialization.load_pem_private_key(pem.encode(), password=None).public_key()
    return (ECKey if isinstance(public, ec.EllipticCurvePublicKey) else RSAKey).import_key(public)


def key_material(pem: str) -> list[str]:
    """The base64 lines of a PEM: none of them may show up in an error, a log or a repr."""
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def signed_assertion(
    client_id: str,
    key,
    audience: str,
    *,
    alg: str = "RS256",
    header: dict | None = None,
    algorithms: list[str] | None = None,
    **claims,
) -> str:
    """A client assertion of ``client_id`` (iss = sub) for ``audience``, valid for five
    minutes with a fresh jti, signed with the joserfc ``key``. ``claims`` override the
    standard ones; a claim given as None is left out."""
    now = int(time.time())
    body = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        **claims,
    }
    body = {name: value for name, value in body.items() if value is not None}
    head = {"alg": alg, "kid": key.kid} if header is None else header
    return jwt.encode(head, body, key, algorithms=algorithms)
