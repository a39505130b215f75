"""Pieces of the seed-002 Entitlement document shared by the read API
(``selectors/deliveryorders.py``) and the Entitlement requests the hub sends (``outbox``),
so both write the order's fields the same way and in the seed's order."""

from __future__ import annotations

import datetime as dt


def order_fields(
    *,
    delivery_order_id: str,
    contract_id: str | None,
    product_id: str,
    start_date: dt.date,
    activation_until_date: dt.date,
    expiration_date: dt.date | None,
) -> dict:
    """The fields of an Entitlement that come from its delivery order; optional ones without
    a value are left out."""
    fields = {"deliveryOrderId": delivery_order_id}
    if contract_id:
        fields["contractId"] = contract_id
    fields["productId"] = product_id
    fields["startDate"] = start_date.isoformat()
    fields["activationUntilDate"] = activation_until_date.isoformat()
    if expiration_date is not None:
        fields["expirationDate"] = expiration_date.isoformat()
    return fields
