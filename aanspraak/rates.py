"""A rate limit as the registry file and ``HUB_RATE_LIMIT`` write it: ``COUNT/UNIT``
(``"600/min"``, ``"20/s"``, ``"10000/hour"``); read by the limiter
(``aanspraak.services.rate_limits``) and checked by the database (``Client.rate_limit``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
# The form of a rate, also checked by the database (aanspraak.Client.rate_limit).
RATE_PATTERN = r"^[1-9][0-9]{0,8}/(" + "|".join(UNITS) + r")$"
_RATE = re.compile(RATE_PATTERN)


@dataclass(frozen=True, slots=True)
class Rate:
    """``count`` requests per ``period`` seconds, as written (``text``)."""

    count: int
    period: int
    text: str


@lru_cache(maxsize=256)
def parse_rate(text: str) -> Rate:
    """``"600/min"`` -> Rate(600, 60); ValueError naming the accepted forms otherwise."""
    if not isinstance(text, str) or not _RATE.match(text.strip()):
        raise ValueError(
            f"{text!r} is not a rate: write COUNT/UNIT with UNIT one of s, min, hour, day "
            '(e.g. "600/min", "20/s", "10000/hour")'
        )
    count, unit = text.strip().split("/")
    return Rate(int(count), UNITS[unit], text.strip())
