"""The hub's log formats (docs/operations.md, "Logs"): one JSON object per line (the default,
``HUB_LOG_FORMAT=json``) or plain text (``HUB_LOG_FORMAT=text``, the demo's).

A line holds ``time`` (UTC), ``level``, ``logger`` and ``message``, then the record's own
fields (``extra={...}``: plain values the code chooses, never a credential; the message
itself is cleaned by ``aanspraak.logs``), the exception if any, and the current request id
when the line is written inside a request and names none itself.

Many lines of one kind (the confirmations a batch decided, the messages it delivered) are one
record with ``each``, a list of field dicts: the formatter writes one line per item, each
with the record's other fields. One record, one handler call and one write for a batch of
500, instead of 500 of each (``log_each``).
"""

from __future__ import annotations

import datetime as dt
import logging
from contextvars import ContextVar

import orjson

EACH = "each"
# Fields given whole to ``emit`` (no scan of the record's attributes for them).
FIELDS = "hub_fields"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# The attributes every LogRecord has: anything else on a record is a field of its own.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


# The id of the request this code runs in (set by aanspraak.request_ids), on every line.
request_id_var: ContextVar[str | None] = ContextVar("hub_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request this code runs in; None outside a request (workers, commands)."""
    return request_id_var.get()


def _fields(record: logging.LogRecord) -> dict:
    fields = record.__dict__.get(FIELDS)
    if fields is not None:
        return dict(fields)
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


def emit(logger: logging.Logger, level: int, message: str, fields: dict) -> None:
    """Log ``message`` with ``fields``, for lines on hot paths; the caller has checked
    ``logger.isEnabledFor(level)``. What ``logger.info(message, extra=fields)`` does without
    the caller lookup (a stack walk for file and line), the scan of the record for its fields
    and the log-record factory: ``message`` must be constant text (the factory cleans
    messages of credentials, aanspraak/logs.py), ``fields`` plain values, never a
    credential."""
    record = logging.LogRecord(logger.name, level, "", 0, message, (), None)
    record.hub_fields = fields
    logger.handle(record)


def log_each(logger: logging.Logger, level: int, message: str, items: list[dict], **common):
    """Log one line per item of ``items`` (field dicts), each also holding ``common``, as one
    record (``emit``): cheap enough for every row of a batch. Nothing is done when the level
    is off or there are no items."""
    if items and logger.isEnabledFor(level):
        emit(logger, level, message, {EACH: items, **common})


def _orjson_default(value):
    return str(value)


# A library's fields may be anything: dicts with non-string keys, objects orjson cannot encode
# (written as their str()).
_OPTIONS = orjson.OPT_NON_STR_KEYS


class JsonFormatter(logging.Formatter):
    """One JSON object per line, encoded with orjson."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = record.__dict__.get(FIELDS)
        doc.update(_fields(record) if fields is None else fields)
        if "request_id" not in doc:
            request_id = request_id_var.get()
            if request_id is not None:
                doc["request_id"] = request_id
        if record.exc_info:
            doc["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            doc["stack_info"] = self.formatStack(record.stack_info)
        items = doc.pop(EACH, None)
        if items is None:
            return orjson.dumps(doc, default=_orjson_default, option=_OPTIONS).decode()
        return "\n".join(
            orjson.dumps({**doc, **item}, default=_orjson_default, option=_OPTIONS).decode()
            for item in items
        )


class TextFormatter(logging.Formatter):
    """Plain text: ``TEXT_FORMAT`` (or the one given), then the record's fields as
    ``key=value``."""

    def __init__(self, fmt: str | None = TEXT_FORMAT, **kwargs):
        super().__init__(fmt, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _fields(record)
        items = fields.pop(EACH, None)
        if "request_id" not in fields:
            request_id = request_id_var.get()
            if request_id is not None:
                fields["request_id"] = request_id
        head, _, tail = line.partition("\n")  # an exception's traceback stays below
        if items is None:
            return _joined(head, fields) + (f"\n{tail}" if tail else "")
        lines = [_joined(head, {**fields, **item}) for item in items]
        return "\n".join(lines) + (f"\n{tail}" if tail else "")


def _joined(head: str, fields: dict) -> str:
    return " ".join([head, *(f"{key}={_text(value)}" for key, value in fields.items())])


def _text(value) -> str:
    text = str(value)
    return text if text and " " not in text else repr(text)


def use_text_format() -> None:
    """Switch this process's JSON handlers on the root logger to plain text (the demo
    command, whose own process started before it could set HUB_LOG_FORMAT)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, JsonFormatter):
            handler.setFormatter(TextFormatter(TEXT_FORMAT))
