"""The hub's log lines during an in-process micro-benchmark: written as production writes
them (same handler, same formatter), but to /dev/null instead of the terminal."""

from __future__ import annotations

import logging
import os


def log_to_devnull() -> None:
    """Point every stream handler of the root logger at /dev/null, for the whole run."""
    devnull = open(os.devnull, "w")  # noqa: SIM115 (open for the whole run)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(devnull)
