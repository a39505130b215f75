"""A party's ``endpoint`` in the registry file (docs/registry.md): where the hub reaches the
party's API and how it authenticates at the party's token endpoint: with a secret
(``client_secret_basic``, ``client_secret_post``) or with assertions signed by its private key
(``private_key_jwt``, docs/security.md).

The private key is read and checked here, when the file is loaded, so a party never first
hears of a broken key when a message is due. ``privateKeyFile`` is read relative to the
registry file's folder (the ``base_dir`` of the serializer's context). No message quotes the
key.
"""

from __future__ import annotations

from pathlib import Path

from django.db.models import TextChoices
from rest_framework import serializers
from rest_framework.settings import api_settings

from aanspraak.choices import EndpointAuthMethod, SigningAlgorithm
from aanspraak.keys import KeyProblem, load_private_key

from .registry_fields import HttpUrl, Strict, Text, messages

KEY_KEYS = ("privateKey", "privateKeyFile", "keyId", "algorithm")
# A PEM private key is a few kB; a larger file is not one (and is not read whole).
MAX_KEY_FILE_BYTES = 64 * 1024


def _choice(choices: type[TextChoices]) -> serializers.ChoiceField:
    """An optional key whose value is one of ``choices``."""
    return serializers.ChoiceField(
        choices.choices,
        required=False,
        error_messages=messages(
            f"must be one of {', '.join(choices.values)}", "invalid_choice", "null", "blank"
        ),
    )


class EndpointSerializer(Strict):
    """``baseUrl``; ``tokenUrl`` and ``clientId`` with a ``clientSecret`` or, for
    ``authMethod: private_key_jwt``, a ``privateKey`` or ``privateKeyFile`` (and optional
    ``keyId`` and ``algorithm``)."""

    baseUrl = HttpUrl(error_messages=messages("required in an endpoint", "required", "null"))
    tokenUrl = HttpUrl(required=False, allow_null=True)
    clientId = Text(required=False)
    authMethod = _choice(EndpointAuthMethod)
    clientSecret = Text(required=False)
    privateKey = Text(required=False)
    privateKeyFile = Text(required=False)
    keyId = Text(required=False)
    algorithm = _choice(SigningAlgorithm)

    def validate(self, attrs):
        method = attrs.setdefault("authMethod", EndpointAuthMethod.CLIENT_SECRET_BASIC)
        if method == EndpointAuthMethod.PRIVATE_KEY_JWT:
            return self._with_key(attrs)
        stray = [key for key in KEY_KEYS if key in attrs]
        if stray:
            raise serializers.ValidationError(
                {key: [f"only with authMethod private_key_jwt (this is {method})"] for key in stray}
            )
        if attrs.get("tokenUrl") and not (attrs.get("clientId") and attrs.get("clientSecret")):
            raise serializers.ValidationError("tokenUrl needs clientId and clientSecret")
        return attrs

    def _with_key(self, attrs: dict) -> dict:
        """private_key_jwt: a token endpoint, a client id and exactly one key that parses and
        fits the algorithm; the key's PEM text ends up in ``privateKey``."""
        errors: dict[str, list[str]] = {}
        whole: list[str] = []
        if not (attrs.get("tokenUrl") and attrs.get("clientId")):
            whole.append("authMethod private_key_jwt needs tokenUrl and clientId")
        if "clientSecret" in attrs:
            errors["clientSecret"] = ["not used with authMethod private_key_jwt: remove it"]
        given = [key for key in ("privateKey", "privateKeyFile") if key in attrs]
        algorithm = attrs.setdefault("algorithm", SigningAlgorithm.RS256)
        if len(given) != 1:
            has = f" (it has {' and '.join(given)})" if given else ""
            whole.append(
                f"authMethod private_key_jwt needs exactly one of privateKey or privateKeyFile{has}"
            )
        elif given == ["privateKey"]:
            try:
                load_private_key(attrs["privateKey"], algorithm)
            except KeyProblem as exc:
                errors["privateKey"] = [str(exc)]
        else:
            path = _key_path(attrs["privateKeyFile"], self.context.get("base_dir"))
            try:
                attrs["privateKey"] = _read_key(path)
                load_private_key(attrs["privateKey"], algorithm)
            except KeyProblem as exc:
                errors["privateKeyFile"] = [f"{path}: {exc}"]
        if whole:
            errors[api_settings.NON_FIELD_ERRORS_KEY] = whole
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def _key_path(name: str, base_dir: str | Path | None) -> Path:
    """A relative path is relative to the registry file's folder (else the current one)."""
    path = Path(name)
    return path if path.is_absolute() else Path(base_dir or ".") / path


def _read_key(path: Path) -> str:
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError:
        raise KeyProblem("no such file") from None
    except OSError as exc:
        raise KeyProblem(f"cannot be read ({type(exc).__name__})") from None
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise KeyProblem(f"is larger than {MAX_KEY_FILE_BYTES} bytes: not a PEM key")
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise KeyProblem("is not a PEM (text) file") from None
