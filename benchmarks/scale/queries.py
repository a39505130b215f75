"""The hub's hot and periodic queries, as calls of its own selectors and services, measured
one by one, and the GET of the big order against its ``json_agg`` floor."""

from __future__ import annotations

import inspect
import math
import time
import uuid

from .explain import BIG_TABLES, QueryResult, measure

BIG_ORDER_ID = "DO-SCALE-BIG-1"


def json_agg_floor(order_id: str) -> tuple[float, int]:
    """The same order's entitlements as one JSON document built by PostgreSQL (the floor of
    any GET): (best of two, in ms; bytes)."""
    from django.db import connection

    sql = """
        SELECT json_agg(json_strip_nulls(json_build_object(
            'entitlementId', e.entitlement_id, 'deliveryOrderId', o.delivery_order_id,
            'contractId', o.contract_id, 'productId', p.product_id,
            'startDate', o.start_date, 'activationUntilDate', o.activation_until_date,
            'expirationDate', o.expiration_date, 'endDate', e.end_date,
            'entitlementType', e.entitlement_type,
            'entitlementSpecification', e.specification, 'entitlementStatus', e.status,
            'urlStatuses', (
                SELECT json_agg(json_build_object('portal', pa.portal_id, 'urlStatus', u.status)
                                ORDER BY pa.portal_id)
                FROM entitlements_entitlementurlstatus u
                JOIN aanspraak_party pa ON pa.id = u.portal_id WHERE u.entitlement_id = e.id),
            'dateCreated', to_char(e.date_created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
            'dateLastModified',
                to_char(e.date_last_modified AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
        )) ORDER BY e.id)::text
        FROM entitlements_entitlement e
        JOIN entitlements_deliveryorder o ON o.id = e.delivery_order_id
        JOIN aanspraak_product p ON p.id = o.product_id
        WHERE o.delivery_order_id = %s
    """
    best, size = math.inf, 0
    for _ in range(2):
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(sql, [order_id])
            size = len(cursor.fetchone()[0] or "")
        best = min(best, (time.perf_counter() - started) * 1000)
    return best, size


def hub_queries() -> list[tuple[str, object, str]]:
    """The hub's hot and periodic queries, as calls of its own selectors and services (so
    the statements explained are the ones the code runs today)."""
    from django.conf import settings
    from django.utils import timezone

    from aanspraak.choices import Scope
    from aanspraak.models import Party
    from confirmations.models import Confirmation
    from confirmations.selectors.outcome import confirmation_outcome
    from confirmations.selectors.pending import has_overdue_pending
    from confirmations.services.apply import apply_pending_batch
    from confirmations.services.receive import receive_confirmation
    from entitlements import outbox
    from entitlements.api.read import stream_json_array
    from entitlements.intake import receive_delivery_order
    from entitlements.models import DeliveryOrder, OutboundMessage
    from entitlements.selectors.deliveryorders import entitlement_json, visible_orders
    from entitlements.selectors.usage import hub_statuses, hub_usage
    from entitlements.services import enrollment, expiry

    seller = Party.objects.get(name="Boekhandel Oost")
    zuid = Party.objects.get(name="Portal Zuid")
    noord = Party.objects.get(name="Uitgeverij Noord")
    big = DeliveryOrder.objects.get(delivery_order_id=BIG_ORDER_ID)
    decided = (
        Confirmation.objects.filter(sender=zuid, message__isnull=False)
        .values_list("receive_id", flat=True)
        .first()
    )
    message = (
        OutboundMessage.objects.filter(recipient=zuid, state="delivered")
        .select_related("entitlement")
        .first()
    )

    def get_order():
        orders = visible_orders(seller, frozenset({Scope.ENTITLEMENT_SELLER}), BIG_ORDER_ID)
        for _chunk in stream_json_array(entitlement_json(orders)):
            pass

    def expiry_batch():
        size = int(getattr(settings, "HUB_EXPIRY_BATCH_SIZE", 5000))
        if "max_batches" in inspect.signature(expiry.expire_due).parameters:
            expiry.expire_due(batch_size=size, max_batches=1)
        else:  # the sweep before docs/performance.md "Scale": one batch over all orders
            expiry._expire_batch(timezone.localdate(), size)

    def receive():
        receive_confirmation(
            sender=zuid,
            client=None,
            body={"scale": True},
            reference_id=str(message.reference_id),
            receive_id=str(uuid.uuid4()),
            entitlement_id=str(message.entitlement.entitlement_id),
            product_id="9789001000011",
            processed_timestamp=timezone.now(),
            new_entitlement_status=None,
            url_portal="portal-zuid",
            new_url_status="processed",
        )

    def intake():
        from benchmarks.intake import body

        order = body(100, "DO-SCALE-INTAKE")
        receive_delivery_order(seller, order)
        receive_delivery_order(seller, order)  # the re-send: the repeat's reads

    def usage():
        figures = hub_usage(big.contract_id)
        for _ in hub_statuses(big.contract_id, noord.pk):
            pass
        return figures

    return [
        ("GET of the 50,000 order", get_order, f"{BIG_ORDER_ID}, read by its seller"),
        ("expiry sweep batch", expiry_batch, "one batch of HUB_EXPIRY_BATCH_SIZE"),
        (
            "dispatch claim (recipient with 50,000 due)",
            lambda: outbox.claim_due(zuid.pk),
            "Portal Zuid",
        ),
        ("apply claim (pending backlog)", lambda: apply_pending_batch(), "one batch"),
        ("enrollment lookup claim", lambda: enrollment.claim_due(), ""),
        ("usage reconciliation aggregate", usage, f"contract {big.contract_id}"),
        ("sweep: pending confirmations", lambda: has_overdue_pending(), ""),
        ("sweep: due outbound recipients", lambda: outbox.due_recipients(), ""),
        ("sweep: due enrollment lookups", lambda: enrollment.has_due(), ""),
        ("confirmation receive insert", receive, ""),
        ("confirmation outcome lookup", lambda: confirmation_outcome(zuid, decided), ""),
        ("intake (new order of 100, then its re-send)", intake, "COPY statements not shown"),
    ]


def run_queries() -> tuple[list[QueryResult], dict]:
    """Measure every hub query, and the GET against its json_agg floor."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        jit = cursor.fetchone()[0]
        counts = {}
        for table in BIG_TABLES:
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [table])
            row = cursor.fetchone()
            counts[table] = int(row[0]) if row else 0
    results = []
    for name, call, note in hub_queries():
        print(f"measuring {name} ...", flush=True)
        results.append(measure(name, call, note))
    floor_ms, floor_bytes = json_agg_floor(BIG_ORDER_ID)
    get = results[0]
    extra = {
        "jit": jit,
        "rows": counts,
        "floor_ms": floor_ms,
        "floor_bytes": floor_bytes,
        "get_ms": get.wall_ms,
        "get_over_floor": get.wall_ms / floor_ms if floor_ms else None,
    }
    return results, extra
