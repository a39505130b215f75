"""The hub's outbound HTTP: one small, reusable module for every call the hub makes to another
party (Entitlement requests, delivery-order confirmations, and later the usage and enrollment
clients).

- :mod:`aanspraak.outbound.client`: ``Endpoint`` (where and how to reach a party) and
  ``send`` (one JSON request with a pooled httpx client and, when the party has a token URL,
  an OAuth2 client-credentials bearer token cached until it expires, via Authlib).
- :mod:`aanspraak.outbound.policy`: how a result is classified (delivered, retry, failed) and
  when the next attempt is due (exponential backoff with full jitter, ``Retry-After``, a
  horizon).
- :mod:`aanspraak.outbound.fetch`: ``fetch_json`` for GETs whose answer is read, with
  ``ChainCallError`` kinds (docs/chain-clients.md); :mod:`aanspraak.outbound.enrollments`
  (seed 004) and :mod:`aanspraak.outbound.usage` (seed 001) are built on it.
"""

import warnings

import authlib.deprecate

# Authlib 1.9 prefers the httpx2 fork and warns when it falls back to httpx, which the hub
# uses everywhere; the fallback works as before. Authlib's own module turns its warnings to
# "always" when imported, so the filter goes in after that and before its httpx client.
warnings.filterwarnings(
    "ignore",
    message="The httpx module is deprecated",
    category=authlib.deprecate.AuthlibDeprecationWarning,
)

from .client import Endpoint, SendResult, endpoint_for_party, send  # noqa: E402
from .policy import AttemptOutcome, RetryPolicy, classify  # noqa: E402

__all__ = [
    "AttemptOutcome",
    "Endpoint",
    "RetryPolicy",
    "SendResult",
    "classify",
    "endpoint_for_party",
    "send",
]
