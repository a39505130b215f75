"""System checks of the hub's own settings (``manage.py check``; run before every command and
at the start of the web and worker processes)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register

from aanspraak.rates import parse_rate


@register()
def check_rate_limit(app_configs=None, **kwargs) -> list[Error]:
    """HUB_RATE_LIMIT, when set, is a rate such as ``600/min``."""
    if not settings.HUB_RATE_LIMIT:
        return []
    try:
        parse_rate(settings.HUB_RATE_LIMIT)
    except ValueError as exc:
        return [Error(f"HUB_RATE_LIMIT: {exc}", id="aanspraak.E001")]
    return []
