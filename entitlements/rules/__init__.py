"""The rules of statuses, as data and pure functions (no database): the transition table
(``transitions``), when entitlements expire (``expiry``), and the pieces of the seed's
Entitlement document that the read API and the outbound requests share (``documents``)."""
