"""Keys made at test time (none are committed): PEM private keys as the registry file takes
them, and their public halves as joserfc keys for a loopback token endpoint that verifies."""

from __future__ import annotations

from functools import cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
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
