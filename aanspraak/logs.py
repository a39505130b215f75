"""Secrets never reach a log record (docs/security.md, "Secrets").

Libraries log more than they should at DEBUG: oauthlib logs every token it issues, with the
access token in it ("Issuing token to client id ..., {'access_token': ...}"). A handler's
filter would clean only that handler's output, so the record itself is cleaned when it is
made: ``install`` wraps the log-record factory, and every record whose message holds a
credential gets its message rewritten with the value replaced by ``[redacted]`` (and its
arguments dropped). Records are made only for the levels that are logged, so the cost is
one format and three regular expressions per line actually written.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

# key=value, key: value, 'key': 'value' for the names of OAuth2 credentials.
_FIELD = re.compile(
    r"""(?P<key>\b(?:access_token|refresh_token|id_token|client_secret|client_assertion|"""
    r"""password|secret|token)\b['"]?\s*[:=]\s*)(?P<quote>['"]?)[^'"&\s,;}]+""",
    re.IGNORECASE,
)
# Authorization header values.
_AUTHORIZATION = re.compile(r"\b(?P<scheme>Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}")
# Anything shaped like a JWT (a client assertion): header.payload.signature.
_JWT = re.compile(r"\beyJ[\w-]*\.[\w-]+\.[\w-]*")


def redact(text: str) -> str:
    """``text`` with every credential it carries replaced by ``[redacted]``."""
    text = _FIELD.sub(lambda m: f"{m['key']}{m['quote']}{REDACTED}", text)
    text = _AUTHORIZATION.sub(lambda m: f"{m['scheme']} {REDACTED}", text)
    return _JWT.sub(REDACTED, text)


def _clean(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a malformed call: logging reports it when the record is handled
        return
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, ()


def install() -> None:
    """Clean every log record of this process from now on (idempotent)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacting", False):
        return

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _clean(record)
        return record

    factory.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
