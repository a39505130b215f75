"""Celery tasks of the entitlements app: thin shells that take ids and call services.

Nothing imports this module: services enqueue these tasks by name after commit
(``aanspraak.enqueue``), so the dependencies go one way, tasks → services."""

from celery import shared_task

from entitlements import outbox
from entitlements.services.enrollment import has_due, resolve_due
from entitlements.services.expiry import expire_due
from entitlements.services.usage import reconcile_contracts


@shared_task(name="entitlements.tasks.drain_recipient")
def drain_recipient(recipient_id: int) -> dict:
    """Send the due outbound messages of one recipient (see entitlements.outbox). Runs on
    the ``outbound`` queue; returns at once when another drain of the recipient is running."""
    report = outbox.drain(recipient_id)
    if report.more:
        # Time budget spent: queue again behind the other recipients' drains (fairness).
        drain_recipient.delay(recipient_id)
    return {
        "recipient": recipient_id,
        "batches": report.batches,
        "delivered": report.delivered,
        "retry": report.retry,
        "failed": report.failed,
        "more": report.more,
        "busy": report.busy,
    }


@shared_task(name="entitlements.tasks.sweep_outbound")
def sweep_outbound() -> int:
    """Start a drain for every recipient with due messages (retries, lost wake-ups)."""
    recipients = outbox.due_recipients()
    for recipient_id in recipients:
        drain_recipient.delay(recipient_id)
    return len(recipients)


@shared_task(name="entitlements.tasks.expire_entitlements")
def expire_entitlements() -> int:
    """Move entitlements past their order's expirationDate to expired."""
    return expire_due().entitlements


@shared_task(name="entitlements.tasks.resolve_enrollments")
def resolve_enrollments() -> dict:
    """Resolve the due enrollment lookups (see entitlements.services.enrollment). Runs on
    the ``outbound`` queue (it calls the schools' administration systems)."""
    report = resolve_due()
    if report.more:
        resolve_enrollments.delay()
    return {
        "batches": report.batches,
        "resolved": report.resolved,
        "retry": report.retry,
        "failed": report.failed,
        "more": report.more,
    }


@shared_task(name="entitlements.tasks.sweep_enrollments")
def sweep_enrollments() -> bool:
    """Start a resolver run when lookups are due (retries, lost wake-ups)."""
    if has_due():
        resolve_enrollments.delay()
        return True
    return False


@shared_task(name="entitlements.tasks.reconcile_usage")
def reconcile_usage() -> dict:
    """Reconcile every contract's usage with the licence registries (periodic)."""
    results = reconcile_contracts()
    outcomes: dict[str, int] = {}
    for result in results:
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
    return outcomes
