"""The support search's lookup of confirmations and activations by their
entitlementReceiveId (docs/support-desk.md, "Search"), registered with
``entitlements.selectors.search`` when the app is ready: entitlements may not import this
app, so the search learns of it this way."""

from __future__ import annotations

import uuid

from django.db.models import Q

from aanspraak.models import Party
from confirmations.models import Confirmation
from entitlements.models import Entitlement
from entitlements.selectors.search import Terms, parse_terms


def entitlements_by_receive_id(terms: Terms) -> set[int]:
    """Entitlements that a confirmation or activation with one of these receive ids is
    about: the one the worker resolved, or (still pending, or rejected before resolving)
    the entitlementId it named. At most three queries.

    The unique index is (sender, receive_id, kind); naming every sender lets PostgreSQL
    walk it for one receive id (the senders are the registry's few hundred parties), so the
    hot path's single INSERT needs no extra index for this lookup."""
    receive_ids = terms.strings
    if not receive_ids:
        return set()
    senders = list(Party.objects.values_list("pk", flat=True))
    rows = Confirmation.objects.filter(
        sender_id__in=senders, receive_id__in=receive_ids
    ).values_list("entitlement_id", "entitlement_ref")
    found: set[int] = set()
    named: set[uuid.UUID] = set()
    for entitlement_pk, ref in rows:
        if entitlement_pk is not None:
            found.add(entitlement_pk)
            continue
        try:
            named.add(uuid.UUID(ref))
        except ValueError:
            continue  # a rejected confirmation may name no entitlement at all
    if named:
        found.update(
            Entitlement.objects.filter(entitlement_id__in=named).values_list("pk", flat=True)
        )
    return found


def confirmations_q(search: str) -> Q | None:
    """The confirmation changelist's search: by entitlementReceiveId (the unique index, every
    sender named), or by the entitlementId of the entitlement it was resolved to (the replay
    index). None when there is nothing to search for. At most two queries."""
    terms = parse_terms(search)
    if not terms.strings:
        return None
    senders = list(Party.objects.values_list("pk", flat=True))
    q = Q(sender_id__in=senders, receive_id__in=terms.strings)
    if terms.uuids:
        pks = list(
            Entitlement.objects.filter(entitlement_id__in=terms.uuids).values_list("pk", flat=True)
        )
        q |= Q(entitlement_id__in=pks)
    return q
