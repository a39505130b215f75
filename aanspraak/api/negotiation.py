"""Content negotiation and JSON parsing for the chain's API, cheaper than DRF's defaults on
the hot paths (docs/performance.md, "P2: receiving confirmations").

The API speaks JSON only. DRF's negotiation parses the ``Accept`` header into media types on
every request (7 % of a confirmation's time under load); the common headers (none, ``*/*``,
``application/json``) are answered at once here and everything else still goes to DRF, so a
client asking for something else gets DRF's answer, as before.
"""

from __future__ import annotations

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser

_PLAIN_ACCEPT = frozenset({"", "*/*", "application/json"})


class JsonFirstNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, with a shortcut for a client that takes the first renderer."""

    def select_renderer(self, request, renderers, format_suffix=None):
        accept = request.META.get("HTTP_ACCEPT", "").strip()
        if format_suffix is None and accept in _PLAIN_ACCEPT and renderers:
            first = renderers[0]
            if accept != "application/json" or first.media_type == "application/json":
                return first, first.media_type
        return super().select_renderer(request, renderers, format_suffix)


class FastJSONParser(JSONParser):
    """DRF's JSONParser on orjson: the same media type, the same 400 for malformed JSON
    (``JSON parse error - ...``), several times faster on a 9 MB delivery order."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", "utf-8")
        raw = stream.read() if stream is not None else b""
        try:
            if encoding.lower().replace("-", "") not in {"utf8", "ascii"}:
                raw = raw.decode(encoding).encode()
            return orjson.loads(raw)
        except (orjson.JSONDecodeError, UnicodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
