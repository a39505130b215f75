"""A party's ``endpoint`` in the registry file: ``authMethod`` and, for private_key_jwt, the
hub's private key inline or in a file, checked on load, stored encrypted, updated on reload
(docs/registry.md)."""

from __future__ import annotations

import copy

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.db import connection

from aanspraak.models import Party
from aanspraak.services.registry import RegistryError, load_registry, validate_registry
from tests.support.factories import REGISTRY
from tests.support.keys import ec_pem, encrypted_pem, key_material, public_pem, rsa_pem

pytestmark = pytest.mark.django_db
NOORD = 2  # parties[2] is Uitgeverij Noord
WHERE = "parties[2] (Uitgeverij Noord).endpoint"
TOKEN = {"tokenUrl": "http://127.0.0.1:9101/oauth2/token", "clientId": "hub"}


def registry_with(**endpoint) -> dict:
    data = copy.deepcopy(REGISTRY)
    data["parties"][NOORD]["endpoint"].update(endpoint)
    for key, value in endpoint.items():
        if value is None:
            del data["parties"][NOORD]["endpoint"][key]
    return data


def jwt_endpoint(**extra) -> dict:
    return registry_with(**TOKEN, authMethod="private_key_jwt", **extra)


def noord() -> Party:
    return Party.objects.get(name="Uitgeverij Noord")


def test_a_private_key_is_stored_encrypted_and_a_second_load_writes_nothing():
    pem = rsa_pem()
    report = load_registry(jwt_endpoint(privateKey=pem, keyId="hub-1", algorithm="PS256"))
    party = noord()
    assert party.endpoint_auth_method == "private_key_jwt"
    assert (party.endpoint_private_key, party.endpoint_key_id) == (pem, "hub-1")
    assert party.endpoint_algorithm == "PS256" and party.endpoint_client_secret == ""
    with connection.cursor() as cursor:
        cursor.execute("select endpoint_private_key from aanspraak_party where id = %s", [party.pk])
        stored = cursor.fetchone()[0]
    assert stored.startswith("fernet:")
    assert not any(line in stored for line in key_material(pem))
    assert report.created["party"] == 8
    assert not load_registry(jwt_endpoint(privateKey=pem, keyId="hub-1", algorithm="PS256")).changed


def test_reload_updates_the_key_and_back_to_a_secret_clears_it():
    load_registry(jwt_endpoint(privateKey=rsa_pem(0)))
    assert noord().endpoint_algorithm == "RS256" and noord().endpoint_key_id == ""  # defaults
    report = load_registry(jwt_endpoint(privateKey=ec_pem(), algorithm="ES256", keyId="ec-1"))
    assert report.updated["party"] == 1
    party = noord()
    assert (party.endpoint_private_key, party.endpoint_algorithm) == (ec_pem(), "ES256")
    load_registry(registry_with(**TOKEN, authMethod="client_secret_post", clientSecret="s3"))
    party = noord()
    assert party.endpoint_auth_method == "client_secret_post"
    assert (party.endpoint_private_key, party.endpoint_key_id) == ("", "")
    assert party.endpoint_client_secret == "s3"


def test_existing_files_keep_their_meaning():
    load_registry(registry_with(**TOKEN, clientSecret="s3"))
    party = noord()
    assert party.endpoint_auth_method == "client_secret_basic"
    assert party.endpoint_private_key == "" and party.endpoint_algorithm == "RS256"


def test_a_key_file_is_read_relative_to_the_registry_file_and_again_on_reload(tmp_path):
    (tmp_path / "keys").mkdir()
    key_file = tmp_path / "keys" / "hub-noord.pem"
    key_file.write_text(rsa_pem(0))
    registry_file = tmp_path / "registry.yaml"
    registry_file.write_text(yaml.safe_dump(jwt_endpoint(privateKeyFile="keys/hub-noord.pem")))
    call_command("load_registry", str(registry_file))
    assert noord().endpoint_private_key == rsa_pem(0)
    key_file.write_text(rsa_pem(1))  # rotation: the new key in the file, then a reload
    call_command("load_registry", str(registry_file))
    assert noord().endpoint_private_key == rsa_pem(1)
    # An absolute path is used as it is.
    data = jwt_endpoint(privateKeyFile=str(key_file))
    assert validate_registry(data) == []
    key_file.write_text(public_pem(rsa_pem(1)))
    with pytest.raises(CommandError) as refused:
        call_command("load_registry", str(registry_file))
    assert f"{WHERE}.privateKeyFile: {key_file}: is a public key or certificate" in str(
        refused.value
    )
    assert noord().endpoint_private_key == rsa_pem(1)  # nothing written


def test_rotate_field_keys_re_encrypts_the_private_key(settings, capsys):
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.HUB_FIELD_ENCRYPTION_KEYS = [old]
    load_registry(jwt_endpoint(privateKey=rsa_pem()))
    settings.HUB_FIELD_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_field_keys")
    assert "re-encrypted 1 secret" in capsys.readouterr().out
    settings.HUB_FIELD_ENCRYPTION_KEYS = [new]  # the old key is gone: still readable
    assert noord().endpoint_private_key == rsa_pem()


@pytest.mark.parametrize(
    ("endpoint", "problem"),
    [
        (
            {**TOKEN, "authMethod": "mtls", "clientSecret": "s"},
            f"{WHERE}.authMethod: must be one of client_secret_basic, client_secret_post, "
            "private_key_jwt",
        ),
        (
            {**TOKEN, "authMethod": "private_key_jwt"},
            f"{WHERE}: authMethod private_key_jwt needs exactly one of privateKey or "
            "privateKeyFile",
        ),
        (
            {
                **TOKEN,
                "authMethod": "private_key_jwt",
                "privateKey": rsa_pem(),
                "privateKeyFile": "k",
            },
            "needs exactly one of privateKey or privateKeyFile (it has privateKey and "
            "privateKeyFile)",
        ),
        (
            {"authMethod": "private_key_jwt", "privateKey": rsa_pem()},
            f"{WHERE}: authMethod private_key_jwt needs tokenUrl and clientId",
        ),
        (
            {
                **TOKEN,
                "authMethod": "private_key_jwt",
                "privateKey": rsa_pem(),
                "clientSecret": "s",
            },
            f"{WHERE}.clientSecret: not used with authMethod private_key_jwt: remove it",
        ),
        (
            {**TOKEN, "clientSecret": "s", "privateKey": rsa_pem()},
            f"{WHERE}.privateKey: only with authMethod private_key_jwt (this is "
            "client_secret_basic)",
        ),
        (
            {**TOKEN, "authMethod": "client_secret_post", "clientSecret": "s", "keyId": "k1"},
            f"{WHERE}.keyId: only with authMethod private_key_jwt (this is client_secret_post)",
        ),
        (
            {**TOKEN, "authMethod": "client_secret_post", "clientSecret": None},
            f"{WHERE}: tokenUrl needs clientId and clientSecret",
        ),
        (
            {
                **TOKEN,
                "authMethod": "private_key_jwt",
                "privateKey": rsa_pem(),
                "algorithm": "HS256",
            },
            f"{WHERE}.algorithm: must be one of RS256, PS256, ES256",
        ),
        (
            {
                **TOKEN,
                "authMethod": "private_key_jwt",
                "privateKey": rsa_pem(),
                "algorithm": "ES256",
            },
            f"{WHERE}.privateKey: ES256 needs an EC key on P-256; this is an RSA key (2048 bits)",
        ),
        (
            {
                **TOKEN,
                "authMethod": "private_key_jwt",
                "privateKey": ec_pem(),
                "algorithm": "PS256",
            },
            f"{WHERE}.privateKey: PS256 needs an RSA key; this is an EC key on secp256r1",
        ),
        (
            {
                **TOKEN,
                "authMethod": "private_key_jwt",
                "privateKey": ec_pem(curve="P-384"),
                "algorithm": "ES256",
            },
            "ES256 needs an EC key on P-256; this is an EC key on secp384r1",
        ),
        (
            {**TOKEN, "authMethod": "private_key_jwt", "privateKey": rsa_pem(bits=1024)},
            f"{WHERE}.privateKey: is an RSA key of 1024 bits: at least 2048 needed",
        ),
        (
            {**TOKEN, "authMethod": "private_key_jwt", "privateKey": public_pem(rsa_pem())},
            f"{WHERE}.privateKey: is a public key or certificate: give the private key (PEM)",
        ),
        (
            {**TOKEN, "authMethod": "private_key_jwt", "privateKey": encrypted_pem()},
            f"{WHERE}.privateKey: is encrypted with a passphrase: give it unencrypted",
        ),
        (
            {
                **TOKEN,
                "authMethod": "private_key_jwt",
                "privateKey": rsa_pem().replace("\n", "\nXX", 3),
            },
            f"{WHERE}.privateKey: does not parse as a PEM private key",
        ),
        (
            {**TOKEN, "authMethod": "private_key_jwt", "privateKey": "hub-secret"},
            f"{WHERE}.privateKey: is not a PEM private key",
        ),
        (
            {**TOKEN, "authMethod": "private_key_jwt", "privateKey": 12345},
            f"{WHERE}.privateKey: must be a non-empty string",
        ),
        (
            {**TOKEN, "authMethod": "private_key_jwt", "privateKeyFile": "missing.pem"},
            "missing.pem: no such file",
        ),
        (
            {**TOKEN, "authMethod": "private_key_jwt", "privateKeyFile": "binary.der"},
            "binary.der: is not a PEM (text) file",
        ),
        (
            {**TOKEN, "authMethod": "private_key_jwt", "privateKeyFile": "."},
            "cannot be read (IsADirectoryError)",
        ),
        (
            {**TOKEN, "authMethod": "private_key_jwt", "privateKey": rsa_pem(), "keyid": "k"},
            f"{WHERE}.keyid: unknown key",
        ),
    ],
)
def test_bad_endpoints_name_the_key_never_the_key_material_and_write_nothing(
    tmp_path, endpoint, problem
):
    (tmp_path / "binary.der").write_bytes(b"\x30\x82\xff\xfe" * 64)
    with pytest.raises(RegistryError) as refused:
        load_registry(registry_with(**endpoint), base_dir=tmp_path)
    message = str(refused.value)
    assert problem in message
    for value in endpoint.values():
        if isinstance(value, str) and "KEY-----" in value:
            assert not any(line in message for line in key_material(value))
    assert not Party.objects.exists()
