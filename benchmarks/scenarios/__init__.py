"""The scenarios of ``make bench`` (P1–P6), each measured against its floor in the same run.

Each scenario function takes the running :class:`Bench` and returns :class:`Figure` rows
(the median of ``bench.runs`` runs) and the latency distributions for the plot. What each
floor is, and why it is the right one: docs/performance.md, "The scenarios and their
floors".

One module per group of scenarios: ``read`` (P1), ``confirmations`` (P2, scale-out, P5),
``delivery`` (P6), ``apply`` (P3), ``intake`` (P4); what they share is in ``bench`` (the
:class:`Bench` and its :class:`Figure` rows), ``parties`` (the registry and tokens) and
``orders``.
"""

from __future__ import annotations

from .apply import p3_apply
from .bench import Bench, Figure
from .confirmations import p2_confirmations, p5_end_to_end, scale_out_web
from .delivery import p6_dispatch
from .intake import p4_intake
from .orders import order_in_process, settle_messages
from .parties import fetch_tokens, registry_text
from .read import p1_read

__all__ = [
    "SCENARIOS",
    "Bench",
    "Figure",
    "fetch_tokens",
    "order_in_process",
    "p1_read",
    "p2_confirmations",
    "p3_apply",
    "p4_intake",
    "p5_end_to_end",
    "p6_dispatch",
    "registry_text",
    "scale_out_web",
    "settle_messages",
]

# The order ``make bench`` runs them in (and ``--only`` picks from).
SCENARIOS = ("P1", "P2", "SCALE-OUT", "P6", "P3", "P5", "P4")
