"""The one writer of status changes (docs/architecture.md, "One writer of status changes").

Every change of an entitlement's status or of a URL status, whatever caused it (a
confirmation or activation through the replay, a delivery, expiry, an unresolved enrollment
of a cancelled order), is written by ``write_changes``: checked against the transition table
(``entitlements.rules.transitions``), written set-based, with its ``StatusEvent``. Nothing
else updates a status column. ``write_states`` is the confirmation worker's diff on top of it.

A package of its own, below ``services`` and ``outbox`` alike: both write statuses (expiry and
enrollment; a delivery), and ``services`` already imports ``outbox`` to build and wake
messages, so the writer cannot live in either without an import cycle.
"""

from .write import (
    IllegalMove,
    LockedEntitlement,
    LockedUrlStatus,
    StatusChange,
    TargetState,
    UrlChange,
    WriteResult,
    Written,
    write_changes,
    write_states,
)

__all__ = [
    "IllegalMove",
    "LockedEntitlement",
    "LockedUrlStatus",
    "StatusChange",
    "TargetState",
    "UrlChange",
    "WriteResult",
    "Written",
    "write_changes",
    "write_states",
]
