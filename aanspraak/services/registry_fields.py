"""The field types of the registry file's contract (docs/registry.md), shared by its
serializers (``registry_schema``, ``registry_endpoint``): strict mappings that refuse unknown
keys, and values as YAML and JSON write them, each refused with a message in the file's terms.
"""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework import serializers

UNKNOWN_KEY = "unknown key"


def messages(text: str, *keys: str) -> dict[str, str]:
    """The same message for several of a field's error keys."""
    return dict.fromkeys(keys or ("required", "null", "blank", "invalid"), text)


class Strict(serializers.Serializer):
    """A mapping with exactly the declared keys: an unknown key is a problem, so a misspelt
    key never silently does nothing."""

    default_error_messages = messages("must be a mapping", "invalid", "null")

    def to_internal_value(self, data):
        unknown = {}
        if isinstance(data, Mapping):
            unknown = {str(key): [UNKNOWN_KEY] for key in data if key not in self.fields}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({**unknown, **exc.detail}) from exc
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


class Text(serializers.CharField):
    """A non-empty string, kept as written (a YAML number is not a name)."""

    default_error_messages = messages("must be a non-empty string")

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str) or not data.strip():
            self.fail("invalid")
        return data


class Identifier(Text):
    """A code such as a productId: a non-empty string, or a YAML number read as its digits."""

    def to_internal_value(self, data):
        if isinstance(data, int) and not isinstance(data, bool):
            data = str(data)
        return super().to_internal_value(data)


class HttpUrl(Text):
    default_error_messages = messages("must be an http(s) URL")

    def to_internal_value(self, data):
        if not isinstance(data, str) or not data.startswith(("http://", "https://")):
            self.fail("invalid")
        return data


class Boolean(serializers.BooleanField):
    """``true`` or ``false`` as YAML and JSON write them (not "no", 0 or "off")."""

    default_error_messages = messages("must be true or false")

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data
